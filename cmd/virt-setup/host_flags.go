package main

import (
	"context"
	"errors"

	"github.com/spf13/pflag"

	"github.com/virt-setup/virt-setup/probe"
)

// hostOptions choose which host the facts come from: this one, a directory laid out like "/", or a
// recorded host profile.
type hostOptions struct {
	Root        string
	User        string
	HostProfile string
	NoLive      bool
}

func (o *hostOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Root, "root", "", "probe a directory laid out like / (a fake or mounted host) instead of this host")
	fs.StringVar(&o.User, "user", "", "with --root: the user to describe, from ROOT/etc/passwd")
	fs.StringVar(&o.HostProfile, "host-profile", "", "replay a host recorded with 'probe --json' (a file, or a shipped profile name)")
	fs.BoolVar(&o.NoLive, "no-live", false, "do not run the live tests (overlay mounts in a user namespace)")
}

func (o *hostOptions) validate() error {
	if o.HostProfile != "" && (o.Root != "" || o.User != "") {
		return usageError{errors.New("--host-profile replays a recorded host; it cannot be combined with --root or --user")}
	}
	if o.User != "" && o.Root == "" {
		return usageError{errors.New("--user works only with --root: on this host the probe describes the user running it; run virt-setup as that user (log in with ssh or machinectl shell, not su)")}
	}
	return nil
}

// facts gathers the facts from the chosen source.
func (o *hostOptions) facts(ctx context.Context, onEvent func(probe.Event)) (*probe.Facts, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.HostProfile != "" {
		return probe.LoadProfile(o.HostProfile)
	}
	return probe.Run(ctx, probe.Options{
		Root:     o.Root,
		User:     o.User,
		SkipLive: o.NoLive,
		Tool:     version,
		OnEvent:  onEvent,
	})
}

package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/virt-setup/virt-setup/probe"
)

// probeOptions are the inputs of `virt-setup probe`.
type probeOptions struct {
	streams
	host hostOptions
	JSON bool
}

func newProbeCmd(s streams, runF func(context.Context, *probeOptions) error) *cobra.Command {
	opts := &probeOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Show what this host offers a rootless containerd setup, with the evidence",
		Long: `probe gathers the facts a rootless containerd setup depends on: identity, distro and kernel,
SELinux and AppArmor, user namespaces and sub-ids, cgroups and their delegation, the systemd user
manager, /dev/fuse and /dev/net/tun, every binary involved and its version, and what an earlier setup
left behind. On this host it also really mounts overlayfs (and fuse-overlayfs) inside a new user
namespace. Every fact carries the file or command it came from.`,
		Example: `  virt-setup probe
  virt-setup probe --json > host.json
  virt-setup probe --root /mnt/otherhost --user alice
  virt-setup probe --host-profile ubuntu-24.04`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return probeRun(c.Context(), opts)
		},
	}
	opts.host.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document: facts, checks and recommendation (schema: docs/schema.md)")
	return cmd
}

func probeRun(ctx context.Context, opts *probeOptions) error {
	f, err := opts.host.facts(ctx, nil)
	if err != nil {
		return err
	}
	report := probe.NewReport(f)
	if opts.JSON {
		return writeJSON(opts.Out, report)
	}
	renderFacts(opts.Out, f, newStyles(opts.Out))
	fmt.Fprintf(opts.Out, "\nRecommended snapshotter: %s. Run 'virt-setup doctor' for the checks and the reasons.\n", report.Recommendation.Snapshotter)
	return nil
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

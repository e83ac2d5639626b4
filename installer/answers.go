package installer

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/virt-setup/virt-setup/probe"
)

// AnswersSchemaVersion is the version of the answers file format.
const AnswersSchemaVersion = 1

// Answers are the user's choices: what the wizard asks and what `--answers FILE` replays. Every
// value is one of a fixed set (or a bounded number), so an answers file can never smuggle a path or
// a command into what the installer runs.
type Answers struct {
	SchemaVersion int `toml:"schema_version" comment:"Format of this file; virt-setup refuses versions it does not know."`
	// Snapshotter is "overlayfs", "fuse-overlayfs" or "native".
	Snapshotter string `toml:"snapshotter" comment:"overlayfs, fuse-overlayfs or native"`
	// ServiceMode is "systemd" (user units through containerd-rootless-setuptool.sh) or "direct"
	// (virt-setup starts containerd-rootless.sh itself, for hosts without a systemd user manager).
	ServiceMode string             `toml:"service_mode" comment:"systemd (user units) or direct (no systemd user manager)"`
	AddOns      AddOnAnswers       `toml:"addons"`
	RootlessKit RootlessKitAnswers `toml:"rootlesskit"`
}

// AddOnAnswers are the optional components.
type AddOnAnswers struct {
	BuildKit     bool `toml:"buildkit" comment:"buildkitd for nerdctl build"`
	Stargz       bool `toml:"stargz" comment:"the stargz snapshotter, for lazy pulling of eStargz images"`
	Bypass4netns bool `toml:"bypass4netns" comment:"bypass4netnsd, which gives opted-in containers host-speed networking"`
}

// RootlessKitAnswers are the settings containerd-rootless.sh passes to RootlessKit.
type RootlessKitAnswers struct {
	NetworkDriver string `toml:"network_driver" comment:"slirp4netns, pasta, vpnkit, gvisor-tap-vsock or lxc-user-nic"`
	MTU           int    `toml:"mtu" comment:"1280 to 65520; 65520 for slirp4netns, pasta and gvisor-tap-vsock, 1500 otherwise"`
	PortDriver    string `toml:"port_driver" comment:"builtin, slirp4netns, implicit or gvisor-tap-vsock"`
	// Slirp4netnsSandbox and Slirp4netnsSeccomp are "auto", "true" or "false".
	Slirp4netnsSandbox string `toml:"slirp4netns_sandbox" comment:"auto, true or false"`
	Slirp4netnsSeccomp string `toml:"slirp4netns_seccomp" comment:"auto, true or false"`
	// DetachNetns is "auto", "true" or "false" (RootlessKit 2.0 or newer).
	DetachNetns string `toml:"detach_netns" comment:"auto, true or false (needs RootlessKit 2.0)"`
}

// Allowed values, one list per key; Validate and the error messages use them.
var (
	Snapshotters   = []string{"overlayfs", "fuse-overlayfs", "native"}
	ServiceModes   = []string{"systemd", "direct"}
	NetworkDrivers = []string{"slirp4netns", "pasta", "vpnkit", "gvisor-tap-vsock", "lxc-user-nic"}
	PortDrivers    = []string{"builtin", "slirp4netns", "implicit", "gvisor-tap-vsock"}
	Tristates      = []string{"auto", "true", "false"}
)

// MTU bounds: IPv6 needs 1280; 65520 is the most slirp4netns and pasta take.
const (
	MinMTU = 1280
	MaxMTU = 65520
)

// InvalidError is one invalid value in an answers file.
type InvalidError struct {
	Key     string
	Value   string
	Allowed []string
	// Msg replaces the "is not one of" wording when set.
	Msg string
}

// Error implements error.
func (e *InvalidError) Error() string {
	if e.Msg != "" {
		return fmt.Sprintf("%s = %s: %s", e.Key, e.Value, e.Msg)
	}
	return fmt.Sprintf("%s = %s is not allowed; use one of: %s", e.Key, e.Value, strings.Join(e.Allowed, ", "))
}

// Validate checks every value and returns all problems at once (errors.Join of *InvalidError).
func (a Answers) Validate() error {
	var errs []error
	oneOf := func(key, v string, allowed []string) {
		if !slices.Contains(allowed, v) {
			errs = append(errs, &InvalidError{Key: key, Value: fmt.Sprintf("%q", v), Allowed: allowed})
		}
	}
	if a.SchemaVersion != AnswersSchemaVersion {
		errs = append(errs, &InvalidError{Key: "schema_version", Value: fmt.Sprint(a.SchemaVersion),
			Msg: fmt.Sprintf("this virt-setup reads version %d; write the file again with `virt-setup plan --save-answers FILE`", AnswersSchemaVersion)})
	}
	oneOf("snapshotter", a.Snapshotter, Snapshotters)
	oneOf("service_mode", a.ServiceMode, ServiceModes)
	rk := a.RootlessKit
	oneOf("rootlesskit.network_driver", rk.NetworkDriver, NetworkDrivers)
	oneOf("rootlesskit.port_driver", rk.PortDriver, PortDrivers)
	oneOf("rootlesskit.slirp4netns_sandbox", rk.Slirp4netnsSandbox, Tristates)
	oneOf("rootlesskit.slirp4netns_seccomp", rk.Slirp4netnsSeccomp, Tristates)
	oneOf("rootlesskit.detach_netns", rk.DetachNetns, Tristates)
	if rk.MTU < MinMTU || rk.MTU > MaxMTU {
		errs = append(errs, &InvalidError{Key: "rootlesskit.mtu", Value: fmt.Sprint(rk.MTU), Msg: fmt.Sprintf("must be between %d and %d", MinMTU, MaxMTU)})
	}
	if rk.PortDriver == "slirp4netns" && rk.NetworkDriver != "slirp4netns" {
		errs = append(errs, &InvalidError{Key: "rootlesskit.port_driver", Value: `"slirp4netns"`, Msg: "needs network_driver = \"slirp4netns\""})
	}
	if rk.PortDriver == "implicit" && rk.NetworkDriver != "pasta" {
		errs = append(errs, &InvalidError{Key: "rootlesskit.port_driver", Value: `"implicit"`, Msg: "needs network_driver = \"pasta\""})
	}
	if rk.PortDriver == "gvisor-tap-vsock" && rk.NetworkDriver != "gvisor-tap-vsock" {
		errs = append(errs, &InvalidError{Key: "rootlesskit.port_driver", Value: `"gvisor-tap-vsock"`, Msg: "needs network_driver = \"gvisor-tap-vsock\""})
	}
	return errors.Join(errs...)
}

// ParseAnswers decodes an answers file strictly (an unknown key is an error, as a typo would
// otherwise be silently ignored) and validates it. name is used in messages.
func ParseAnswers(b []byte, name string) (Answers, error) {
	var a Answers
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		var se *toml.StrictMissingError
		if errors.As(err, &se) {
			var keys []string
			for _, e := range se.Errors {
				keys = append(keys, strings.Join(e.Key(), "."))
			}
			return Answers{}, fmt.Errorf("%s: unknown key %s (a typo?); see `virt-setup plan --save-answers FILE` for a complete file",
				name, strings.Join(keys, ", "))
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return Answers{}, fmt.Errorf("%s:%d:%d: %s", name, row, col, de.Error())
		}
		return Answers{}, fmt.Errorf("%s: %w", name, err)
	}
	if err := a.Validate(); err != nil {
		return Answers{}, fmt.Errorf("%s: %w", name, err)
	}
	return a, nil
}

// Marshal encodes answers as a commented TOML file.
func (a Answers) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# virt-setup answers: the choices for a rootless containerd setup.\n")
	buf.WriteString("# Replay with: virt-setup install --answers FILE\n\n")
	enc := toml.NewEncoder(&buf)
	if err := enc.Encode(a); err != nil {
		return nil, fmt.Errorf("encode answers: %w", err)
	}
	return buf.Bytes(), nil
}

// DefaultAnswers are the recommended choices for a host: the recommendation's snapshotter and
// RootlessKit settings, every add-on the host can run except stargz (it needs a registry to be of
// use), and the systemd service mode when a systemd user manager is reachable.
func DefaultAnswers(f *probe.Facts, rec probe.Recommendation) Answers {
	a := Answers{
		SchemaVersion: AnswersSchemaVersion,
		Snapshotter:   rec.Snapshotter,
		ServiceMode:   "direct",
		AddOns: AddOnAnswers{
			BuildKit:     rec.AddOns.BuildKit.Available,
			Bypass4netns: rec.AddOns.Bypass4netns.Available,
		},
		RootlessKit: RootlessKitAnswers{
			NetworkDriver:      rec.RootlessKit.NetworkDriver,
			MTU:                rec.RootlessKit.MTU,
			PortDriver:         rec.RootlessKit.PortDriver,
			Slirp4netnsSandbox: "auto",
			Slirp4netnsSeccomp: "auto",
			DetachNetns:        "false",
		},
	}
	if f != nil && f.Systemd.UserManager.Known && f.Systemd.UserManager.Value {
		a.ServiceMode = "systemd"
	}
	if rec.RootlessKit.DetachNetns {
		a.RootlessKit.DetachNetns = "true"
	}
	if a.Snapshotter == "" {
		a.Snapshotter = "native"
	}
	if a.RootlessKit.NetworkDriver == "" {
		// Nothing usable was found; slirp4netns is what the doctor's fix installs.
		a.RootlessKit.NetworkDriver = "slirp4netns"
	}
	if a.RootlessKit.MTU == 0 {
		a.RootlessKit.MTU = 1500
		if slices.Contains([]string{"slirp4netns", "pasta", "gvisor-tap-vsock"}, a.RootlessKit.NetworkDriver) {
			a.RootlessKit.MTU = 65520
		}
	}
	if a.RootlessKit.PortDriver == "" {
		a.RootlessKit.PortDriver = "builtin"
	}
	return a
}

// RootlessKitEnv is the containerd-rootless.sh environment for these answers. An explicit network
// driver makes containerd-rootless.sh use MTU 1500 unless one is given, so the MTU is always set.
func (a Answers) RootlessKitEnv() map[string]string {
	rk := a.RootlessKit
	return map[string]string{
		"CONTAINERD_ROOTLESS_ROOTLESSKIT_NET":                 rk.NetworkDriver,
		"CONTAINERD_ROOTLESS_ROOTLESSKIT_MTU":                 fmt.Sprint(rk.MTU),
		"CONTAINERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER":         rk.PortDriver,
		"CONTAINERD_ROOTLESS_ROOTLESSKIT_SLIRP4NETNS_SANDBOX": rk.Slirp4netnsSandbox,
		"CONTAINERD_ROOTLESS_ROOTLESSKIT_SLIRP4NETNS_SECCOMP": rk.Slirp4netnsSeccomp,
		"CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS":        rk.DetachNetns,
	}
}

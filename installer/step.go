package installer

import (
	"context"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// Step is one typed action of a plan. Steps are idempotent: Check says whether the effect is
// already in place, and the engine skips the step when it is, so running a plan twice changes
// nothing the second time.
type Step interface {
	// Info describes the step for the plan view: what it runs and what it writes.
	Info() StepInfo
	// Check reports whether the step's effect is already in place. It must not change anything.
	Check(ctx context.Context, rt *Runtime) (done bool, err error)
	// Apply makes the change. It reports output lines through rt.Output and records in rec what Undo
	// will need, before each change, not after. rec starts as the record earlier runs left for the
	// step. The engine saves rec in the journal after Apply returns, also when Apply fails half-way;
	// a step about to change the host calls rt.Checkpoint(rec) first, so that even a process killed
	// mid-step leaves a journal uninstall can undo from.
	Apply(ctx context.Context, rt *Runtime, rec *Record) error
	// Undo reverts what Apply did, from the record the journal kept.
	Undo(ctx context.Context, rt *Runtime, rec Record) error
}

// Step kinds, for grouping and rendering.
const (
	KindPrivileged = "privileged" // commands that need root, shown and confirmed as one script
	KindFile       = "file"       // a file written atomically, with a backup
	KindCommand    = "command"    // a command run as the user
	KindService    = "service"    // a background service started, stopped or (re)configured
	KindVerify     = "verify"     // a check of the result
)

// StepInfo describes a step before it runs.
type StepInfo struct {
	// ID is stable across runs of the same plan (the journal is keyed by it), e.g.
	// "file:~/.config/nerdctl/nerdctl.toml".
	ID    string `json:"id"`
	Title string `json:"title"`
	Kind  string `json:"kind"`
	// Privileged is true when the step needs root; such steps never run without consent.
	Privileged bool `json:"privileged,omitempty"`
	// Commands are the command lines the step will run, shell-quoted.
	Commands []string `json:"commands,omitempty"`
	// Files are the files the step will create or change, each with a unified diff.
	Files []FileChange `json:"files,omitempty"`
	// Timeout bounds Apply; zero means DefaultStepTimeout.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Error says why the step cannot be planned (e.g. a config file virt-setup cannot merge into);
	// such a step will fail when applied, so the plan view shows it up front.
	Error string `json:"error,omitempty"`
}

// DefaultStepTimeout bounds a step that sets no timeout of its own.
const DefaultStepTimeout = 2 * time.Minute

// FileChange is one file a step creates or changes.
type FileChange struct {
	Path string `json:"path"`
	// Create is true when the file does not exist yet.
	Create bool `json:"create,omitempty"`
	// Diff is a unified diff from the current content to the new one ("" when unchanged).
	Diff string `json:"diff"`
}

// Record is what a step leaves in the journal so that it can be undone.
type Record struct {
	// Files were created or replaced; each replaced one has a byte-for-byte backup.
	Files []FileRecord `json:"files,omitempty"`
	// Processes were started in the background (direct mode), each with its pid file.
	Processes []ProcessRecord `json:"processes,omitempty"`
	// Units are systemd user units the step installed.
	Units []string `json:"units,omitempty"`
	// Data holds anything else a step needs to undo itself.
	Data map[string]string `json:"data,omitempty"`
}

// FileRecord is one file a step created or replaced.
type FileRecord struct {
	Path string `json:"path"`
	// Existed is false when the step created the file: undo removes it.
	Existed bool `json:"existed"`
	// Backup is where the previous content was saved (when Existed).
	Backup string `json:"backup,omitempty"`
	// Mode is the previous file mode (when Existed).
	Mode uint32 `json:"mode,omitempty"`
	// CreatedDirs are directories the step created for the file, removed on undo when empty.
	CreatedDirs []string `json:"created_dirs,omitempty"`
}

// ProcessRecord is a background process a step started.
type ProcessRecord struct {
	Name    string `json:"name"`
	PIDFile string `json:"pid_file"`
}

// Paths are the user's directories, resolved once (XDG defaults applied).
type Paths struct {
	Home       string `json:"home"`
	ConfigHome string `json:"config_home"` // $XDG_CONFIG_HOME or ~/.config
	DataHome   string `json:"data_home"`   // $XDG_DATA_HOME or ~/.local/share
	StateHome  string `json:"state_home"`  // $XDG_STATE_HOME or ~/.local/state
	RuntimeDir string `json:"runtime_dir"` // $XDG_RUNTIME_DIR
}

// VirtSetupState is virt-setup's own state directory: journal, backups, logs, pid files.
func (p Paths) VirtSetupState() string { return p.StateHome + "/virt-setup" }

// Runtime is what a step runs with.
type Runtime struct {
	Runner sys.Runner
	Paths  Paths
	// Env is the user's environment for the programs steps start.
	Env []string
	// Output reports one line of a step's output (a command's stdout/stderr, a progress message).
	Output func(line string)
	Now    func() time.Time
	// RunPrivileged runs a reviewed root script with the user's consent (sudo with the terminal,
	// or the wizard handing the terminal over). Nil means no consent was given: privileged steps
	// then stop the run and say how to run the script by hand.
	RunPrivileged func(ctx context.Context, scriptPath string) error
	// Checkpoint saves the record of the step in progress to the journal at once. The engine sets
	// it while a step applies; it is nil elsewhere (use rt.checkpoint, which allows for that).
	Checkpoint func(rec *Record) error
}

// checkpoint saves rec through Checkpoint when the engine provided one.
func (rt *Runtime) checkpoint(rec *Record) error {
	if rt.Checkpoint == nil {
		return nil
	}
	return rt.Checkpoint(rec)
}

// Plan is an ordered list of steps for one set of answers.
type Plan struct {
	Answers Answers `json:"answers"`
	Steps   []Step  `json:"-"`
}

// Infos describes every step, for the plan view and --json.
func (p *Plan) Infos() []StepInfo {
	out := make([]StepInfo, 0, len(p.Steps))
	for _, s := range p.Steps {
		out = append(out, s.Info())
	}
	return out
}

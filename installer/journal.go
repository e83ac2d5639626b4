package installer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/virt-setup/virt-setup/internal/fsutil"
)

// JournalSchemaVersion is the version of the journal format. LoadJournal refuses any other, since
// misreading a journal would make uninstall undo the wrong things.
const JournalSchemaVersion = 1

// JournalFile is the journal's name inside Paths.VirtSetupState().
const JournalFile = "journal.json"

// Step statuses as the journal records them.
const (
	// StatusStarted means Apply was called and had not returned when the journal was last saved:
	// a journal left with it says which step was in flight when the process died.
	StatusStarted = "started"
	StatusDone    = "done"
	StatusSkipped = "skipped"
	StatusFailed  = "failed"
	// StatusUndone means uninstall reverted the step.
	StatusUndone = "undone"
)

// Run kinds.
const (
	RunInstall   = "install"
	RunUninstall = "uninstall"
)

// Run results.
const (
	ResultOK        = "ok"
	ResultFailed    = "failed"
	ResultCancelled = "cancelled"
	// ResultInterrupted closes a run whose process died; the next run notices and sets it.
	ResultInterrupted = "interrupted"
)

// Journal is virt-setup's record of what it did to the host, kept across runs in
// $XDG_STATE_HOME/virt-setup/journal.json. It is what lets a re-run resume and lets uninstall undo
// exactly what virt-setup changed. A Journal is not safe for concurrent use: the engine owns it
// while it runs.
type Journal struct {
	SchemaVersion int `json:"schema_version"`
	// Runs are the install and uninstall runs, oldest first.
	Runs []RunEntry `json:"runs"`
	// Steps holds one entry per step ID, in the order steps were first run (plan order for a single
	// plan), so that undoing them in reverse reverts later changes first.
	Steps []Entry `json:"steps"`

	path string
}

// RunEntry is one run of the engine or of uninstall.
type RunEntry struct {
	Kind string `json:"kind"`
	// Answers are the choices the run's plan was made from (install runs).
	Answers *Answers  `json:"answers,omitempty"`
	Started time.Time `json:"started"`
	// Ended is zero while the run is in progress, and stays zero when the process died.
	Ended time.Time `json:"ended,omitzero"`
	// Result is ResultOK, ResultFailed or ResultCancelled once the run has ended.
	Result  string `json:"result,omitempty"`
	Error   string `json:"error,omitempty"`
	Resumed bool   `json:"resumed,omitempty"`
	DryRun  bool   `json:"dry_run,omitempty"`
}

// Entry is the journal's state of one step.
type Entry struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
	Kind  string `json:"kind,omitempty"`
	// Status is the outcome of the last run that reached the step.
	Status string `json:"status"`
	// Applied is true when Apply ran in some run since the step was last undone: the effect (or
	// part of it, if Apply failed half-way) is virt-setup's to undo.
	Applied bool   `json:"applied,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Record is the merge of the records of every Apply since the step was last undone. A file's
	// first record wins, so its backup is of the content before virt-setup ever touched it.
	Record Record `json:"record,omitzero"`
	Error  string `json:"error,omitempty"`
	Fix    string `json:"fix,omitempty"`
	// Run is the index in Runs of the run that last changed the entry.
	Run     int       `json:"run"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
}

// JournalError is a journal that cannot be read or written. Fix says how to recover.
type JournalError struct {
	Path string
	Err  error
	Fix  string
}

// Error implements error.
func (e *JournalError) Error() string { return fmt.Sprintf("journal %s: %v", e.Path, e.Err) }

// Unwrap returns the underlying error.
func (e *JournalError) Unwrap() error { return e.Err }

// UserFix returns what the user can do about the error.
func (e *JournalError) UserFix() string { return e.Fix }

// NewJournal returns an empty journal that Save writes to path.
func NewJournal(path string) *Journal {
	return &Journal{SchemaVersion: JournalSchemaVersion, path: path}
}

// JournalPath is where the journal of the user with these paths lives.
func JournalPath(p Paths) string { return filepath.Join(p.VirtSetupState(), JournalFile) }

// LoadJournal reads the journal at path. A missing file is an empty journal (nothing was done yet);
// a garbled one is a *JournalError, because guessing would make uninstall undo the wrong things.
func LoadJournal(path string) (*Journal, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return NewJournal(path), nil
	}
	if err != nil {
		return nil, &JournalError{Path: path, Err: fmt.Errorf("read: %w", err),
			Fix: "check the file's owner and permissions: virt-setup must run as the user it set up"}
	}
	aside := fmt.Sprintf("mv %s %s.broken", path, path)
	j := &Journal{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(j); err != nil {
		return nil, &JournalError{Path: path, Err: fmt.Errorf("not a valid journal: %w", err),
			Fix: "repair the JSON by hand, or move it aside (" + aside + ") to start a new journal; " +
				"uninstall then no longer knows what earlier runs changed"}
	}
	if j.SchemaVersion != JournalSchemaVersion {
		return nil, &JournalError{Path: path,
			Err: fmt.Errorf("format version %d, this virt-setup reads version %d", j.SchemaVersion, JournalSchemaVersion),
			Fix: "use the virt-setup version that wrote it (a newer one, if the version is higher), or move it aside (" + aside + ")"}
	}
	seen := map[string]bool{}
	for _, e := range j.Steps {
		if e.ID == "" || seen[e.ID] {
			return nil, &JournalError{Path: path, Err: fmt.Errorf("step entry with empty or repeated id %q", e.ID),
				Fix: "repair the JSON by hand, or move it aside (" + aside + ") to start a new journal"}
		}
		seen[e.ID] = true
	}
	j.path = path
	return j, nil
}

// Path is where Save writes the journal.
func (j *Journal) Path() string { return j.path }

// Save writes the journal atomically, so that a crash leaves either the previous or the new
// journal, never a torn one.
func (j *Journal) Save() error {
	if j.path == "" {
		return errors.New("save journal: no path")
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("encode journal: %w", err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(filepath.Dir(j.path), 0o700); err != nil {
		return &JournalError{Path: j.path, Err: fmt.Errorf("create directory: %w", err),
			Fix: "make " + filepath.Dir(j.path) + " writable by you"}
	}
	if err := fsutil.WriteFileAtomic(j.path, b, 0o600); err != nil {
		return &JournalError{Path: j.path, Err: err, Fix: "make " + filepath.Dir(j.path) + " writable by you and free some disk space"}
	}
	return nil
}

// Lookup returns the entry of step id.
func (j *Journal) Lookup(id string) (Entry, bool) {
	if i := j.index(id); i >= 0 {
		return j.Steps[i], true
	}
	return Entry{}, false
}

// Done reports whether the last run that reached step id found its effect in place: it applied the
// step, or skipped it because it was already done.
func (j *Journal) Done(id string) bool {
	e, ok := j.Lookup(id)
	return ok && (e.Status == StatusDone || e.Status == StatusSkipped)
}

// Applied returns the entries whose effect virt-setup made and has not undone, in the order they
// were first run. Uninstall undoes them in reverse.
func (j *Journal) Applied() []Entry {
	var out []Entry
	for _, e := range j.Steps {
		if e.Applied {
			out = append(out, e)
		}
	}
	return out
}

// Interrupted returns the last run when it never ended: the process running it died.
func (j *Journal) Interrupted() (RunEntry, bool) {
	if n := len(j.Runs); n > 0 && j.Runs[n-1].Ended.IsZero() {
		return j.Runs[n-1], true
	}
	return RunEntry{}, false
}

// closeInterrupted ends a run whose process died: it can never end by itself, and only the run
// starting now may be in flight.
func (j *Journal) closeInterrupted(now time.Time) {
	if _, ok := j.Interrupted(); ok {
		dead := &j.Runs[len(j.Runs)-1]
		dead.Ended, dead.Result, dead.Error = now, ResultInterrupted, "the process running it died or was killed"
	}
}

// Archive renames the journal file aside with a timestamp, so that a new journal starts empty while
// the old one stays for reference. It returns the new name ("" when there was no file).
func (j *Journal) Archive(now time.Time) (string, error) {
	if j.path == "" {
		return "", nil
	}
	ext := filepath.Ext(j.path)
	to := fmt.Sprintf("%s-%s%s", j.path[:len(j.path)-len(ext)], now.UTC().Format("20060102T150405.000Z"), ext)
	if err := os.Rename(j.path, to); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("archive journal %s: %w", j.path, err)
	}
	if err := syncJournalDir(filepath.Dir(j.path)); err != nil {
		return to, fmt.Errorf("archive journal %s: %w", j.path, err)
	}
	return to, nil
}

func (j *Journal) index(id string) int {
	return slices.IndexFunc(j.Steps, func(e Entry) bool { return e.ID == id })
}

// beginRun appends a run and returns its index.
func (j *Journal) beginRun(r RunEntry) int {
	j.Runs = append(j.Runs, r)
	return len(j.Runs) - 1
}

// endRun marks run i as ended.
func (j *Journal) endRun(i int, now time.Time, err error) {
	r := &j.Runs[i]
	r.Ended = now
	switch {
	case err == nil:
		r.Result = ResultOK
	case isCancel(err):
		r.Result, r.Error = ResultCancelled, err.Error()
	default:
		r.Result, r.Error = ResultFailed, err.Error()
	}
}

// entry returns the entry of the step described by info, adding it at the end when new.
func (j *Journal) entry(info StepInfo) *Entry {
	i := j.index(info.ID)
	if i < 0 {
		j.Steps = append(j.Steps, Entry{ID: info.ID})
		i = len(j.Steps) - 1
	}
	e := &j.Steps[i]
	e.Title, e.Kind = info.Title, info.Kind
	return e
}

// addRecord merges the record of one Apply into the entry.
func (e *Entry) addRecord(r Record) {
	if !e.Applied {
		// The step was never applied, or undone since: older records describe nothing that
		// exists any more.
		e.Record = Record{}
	}
	e.Record = mergeRecord(e.Record, r)
	e.Applied = true
}

// cloneRecord copies r deeply, so that a step writing into its copy cannot change the journal's.
func cloneRecord(r Record) Record {
	out := Record{
		Processes: slices.Clone(r.Processes),
		Units:     slices.Clone(r.Units),
		Data:      maps.Clone(r.Data),
	}
	for _, f := range r.Files {
		f.CreatedDirs = slices.Clone(f.CreatedDirs)
		out.Files = append(out.Files, f)
	}
	return out
}

// mergeRecord adds a later record to an earlier one. For a file both touched, the earlier record
// wins: it says whether the file existed before virt-setup and holds the backup of that original
// content, while the later backup is only of virt-setup's own earlier write. Directories created
// by either run are kept, since both runs created them. For Data the later value wins: it
// describes the host as the latest Apply left it (a hash of what it wrote, say); originals belong
// in Files.
func mergeRecord(into, add Record) Record {
	out := cloneRecord(into)
	for _, f := range add.Files {
		i := slices.IndexFunc(out.Files, func(g FileRecord) bool { return g.Path == f.Path })
		if i < 0 {
			out.Files = append(out.Files, f)
			continue
		}
		for _, d := range f.CreatedDirs {
			if !slices.Contains(out.Files[i].CreatedDirs, d) {
				out.Files[i].CreatedDirs = append(out.Files[i].CreatedDirs, d)
			}
		}
	}
	for _, p := range add.Processes {
		i := slices.IndexFunc(out.Processes, func(q ProcessRecord) bool { return q.PIDFile == p.PIDFile })
		if i < 0 {
			out.Processes = append(out.Processes, p)
		} else {
			// The pid file names whatever runs now; the latest name is the one to match.
			out.Processes[i] = p
		}
	}
	for _, u := range add.Units {
		if !slices.Contains(out.Units, u) {
			out.Units = append(out.Units, u)
		}
	}
	if len(into.Data)+len(add.Data) > 0 {
		out.Data = maps.Clone(into.Data)
		if out.Data == nil {
			out.Data = map[string]string{}
		}
		maps.Copy(out.Data, add.Data)
	}
	return out
}

// syncDir makes a rename in dir durable.
func syncJournalDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

package installer

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadJournalMissingIsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state/virt-setup/journal.json")
	j, err := LoadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if j.Path() != path || len(j.Steps) != 0 || len(j.Runs) != 0 || j.SchemaVersion != JournalSchemaVersion {
		t.Errorf("journal = %+v", j)
	}
	if _, ok := j.Interrupted(); ok {
		t.Error("an empty journal has no interrupted run")
	}
}

func TestLoadJournalRefusesDamage(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"truncated", `{"schema_version": 1, "steps": [{"id": "a"`, "not a valid journal"},
		{"not json", "hello\n", "not a valid journal"},
		{"unknown key", `{"schema_version": 1, "stepz": []}`, `unknown field "stepz"`},
		{"newer format", `{"schema_version": 2}`, "format version 2"},
		{"repeated id", `{"schema_version": 1, "steps": [{"id": "a", "status": "done"}, {"id": "a", "status": "done"}]}`, `repeated id "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadJournal(path)
			var je *JournalError
			if !errors.As(err, &je) {
				t.Fatalf("err = %v, want a *JournalError", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q should name the file and say %q", err, tt.want)
			}
			if !strings.Contains(FixFor(err), "mv "+path+" "+path+".broken") {
				t.Errorf("fix %q does not say how to move the file aside", FixFor(err))
			}
		})
	}
}

func TestJournalSaveRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "virt-setup/journal.json")
	j := NewJournal(path)
	start := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	a := Answers{SchemaVersion: 1, Snapshotter: "overlayfs", ServiceMode: "direct"}
	j.beginRun(RunEntry{Kind: RunInstall, Answers: &a, Started: start})
	e := j.entry(StepInfo{ID: "file:x", Title: "Write x", Kind: KindFile})
	e.Status, e.Started = StatusStarted, start
	e.addRecord(Record{Files: []FileRecord{{Path: "/h/x", Existed: true, Backup: "/b/x.bak", Mode: 0o640, CreatedDirs: []string{"/h"}}},
		Processes: []ProcessRecord{{Name: "containerd-rootless.sh", PIDFile: "/s/containerd.pid"}},
		Units:     []string{"containerd.service"}, Data: map[string]string{"k": "v"}})
	if err := j.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode = %v, %v; want 0600 (it names the user's files)", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "virt-setup/.*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	got, err := LoadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, j) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", got, j)
	}
	if run, ok := got.Interrupted(); !ok || !run.Started.Equal(start) {
		t.Errorf("Interrupted() = %+v, %v: a run without an end is in flight", run, ok)
	}
	if got.Done("file:x") {
		t.Error("a step in flight is not done")
	}
}

func TestJournalArchive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.json")
	j := NewJournal(path)
	if to, err := j.Archive(time.Now()); err != nil || to != "" {
		t.Errorf("archiving a journal never saved = %q, %v", to, err)
	}
	if err := j.Save(); err != nil {
		t.Fatal(err)
	}
	to, err := j.Archive(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(path), "journal-20260506T070809.000Z.json"); to != want {
		t.Errorf("archived as %s, want %s", to, want)
	}
	if onDisk(path) || !onDisk(to) {
		t.Error("the journal was not moved")
	}
}

func TestMergeRecord(t *testing.T) {
	first := Record{
		Files:     []FileRecord{{Path: "/c", Existed: true, Backup: "/b/original", Mode: 0o600, CreatedDirs: []string{"/x"}}},
		Processes: []ProcessRecord{{Name: "old", PIDFile: "/p"}},
		Units:     []string{"a.service"},
		Data:      map[string]string{"sha256:/c": "first", "keep": "1"},
	}
	later := Record{
		Files: []FileRecord{
			{Path: "/c", Existed: true, Backup: "/b/virt-setups-own", Mode: 0o644, CreatedDirs: []string{"/x", "/y"}},
			{Path: "/new", CreatedDirs: []string{"/n"}},
		},
		Processes: []ProcessRecord{{Name: "new", PIDFile: "/p"}, {Name: "other", PIDFile: "/q"}},
		Units:     []string{"a.service", "b.service"},
		Data:      map[string]string{"sha256:/c": "later"},
	}
	got := mergeRecord(first, later)
	want := Record{
		Files: []FileRecord{
			{Path: "/c", Existed: true, Backup: "/b/original", Mode: 0o600, CreatedDirs: []string{"/x", "/y"}},
			{Path: "/new", CreatedDirs: []string{"/n"}},
		},
		Processes: []ProcessRecord{{Name: "new", PIDFile: "/p"}, {Name: "other", PIDFile: "/q"}},
		Units:     []string{"a.service", "b.service"},
		Data:      map[string]string{"sha256:/c": "later", "keep": "1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merge:\ngot  %+v\nwant %+v", got, want)
	}
	if first.Files[0].CreatedDirs[0] != "/x" || len(first.Files[0].CreatedDirs) != 1 || first.Data["sha256:/c"] != "first" {
		t.Errorf("merge changed its input: %+v", first)
	}
}

func TestAddRecordAfterUndoStartsAfresh(t *testing.T) {
	e := &Entry{ID: "f", Status: StatusUndone, Record: Record{Files: []FileRecord{{Path: "/c", Existed: true, Backup: "/b/gone"}}}}
	e.addRecord(Record{Files: []FileRecord{{Path: "/c"}}})
	if !e.Applied || len(e.Record.Files) != 1 || e.Record.Files[0].Backup != "" {
		t.Errorf("entry = %+v: a record from before an undo must not be reused", e)
	}
}

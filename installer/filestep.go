package installer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/virt-setup/virt-setup/internal/fsutil"
	"github.com/virt-setup/virt-setup/internal/sys"
)

// renderFunc computes a file's new content from its current one (nil and exists false when there
// is no file yet).
type renderFunc func(current []byte, exists bool) ([]byte, error)

// fileWriteStep writes one file: the installer's one way to change a file.
type fileWriteStep struct {
	id, title, path string
	mode            os.FileMode
	render          renderFunc
}

// NewFileStep returns a step that writes path with what render makes of its current content. Its
// plan shows a unified diff; Apply creates the missing parent directories, backs the file up into
// virt-setup's state directory and only then replaces it atomically; Undo puts the backup back byte
// for byte (or removes the file and the directories it created). mode is the mode of a file the
// step creates (0: fsutil.DefaultMode); an existing file keeps its own, so a user's private file is
// never made readable to others.
func NewFileStep(id, title, path string, mode os.FileMode, render func(current []byte, exists bool) ([]byte, error)) Step {
	return &fileWriteStep{id: id, title: title, path: path, mode: mode, render: render}
}

// readFileNow reads the file as it is now. Through sys.Root it refuses a FIFO or a device instead
// of blocking on it, and a file too large to be a config file.
func readFileNow(path string) (content []byte, exists bool, err error) {
	b, err := sys.Root{}.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if b == nil {
		b = []byte{}
	}
	return b, true, nil
}

// plan reads the file and renders its new content. A renderer that panics on a hostile file must
// not take the installer down with it: the panic becomes the step's error.
func (s *fileWriteStep) plan() (cur []byte, exists bool, next []byte, err error) {
	if !filepath.IsAbs(s.path) {
		return nil, false, nil, fmt.Errorf("write %s: not an absolute path", s.path)
	}
	cur, exists, err = readFileNow(s.path)
	if err != nil {
		return nil, false, nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			next, err = nil, fmt.Errorf("render %s: internal error: %v", s.path, r)
		}
	}()
	var in []byte
	if exists {
		in = bytes.Clone(cur)
	}
	next, err = s.render(in, exists)
	if err != nil {
		return cur, exists, nil, fmt.Errorf("render %s: %w", s.path, err)
	}
	return cur, exists, next, nil
}

// Info implements Step. It reads the file but writes nothing. When the new content cannot be
// computed the title says why, and Check and Apply fail with the same error.
func (s *fileWriteStep) Info() StepInfo {
	info := StepInfo{ID: s.id, Title: s.title, Kind: KindFile}
	cur, exists, next, err := s.plan()
	if err != nil {
		info.Error = err.Error()
		info.Files = []FileChange{{Path: s.path, Create: !exists}}
		return info
	}
	var old []byte
	if exists {
		old = cur
	}
	info.Files = []FileChange{{Path: s.path, Create: !exists, Diff: UnifiedDiff(s.path, old, next)}}
	return info
}

// Check implements Step: done when the file already has the content Apply would write.
func (s *fileWriteStep) Check(ctx context.Context, rt *Runtime) (bool, error) {
	cur, exists, next, err := s.plan()
	if err != nil {
		return false, err
	}
	return exists && bytes.Equal(cur, next), nil
}

// fileWrittenKey is the Record.Data key under which Apply keeps a hash of what it wrote, so that undo
// can tell whether the user has changed the file since.
func fileWrittenKey(path string) string { return "sha256:" + path }

func contentHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// backupDir is where file steps keep what they replace.
func fileBackupDir(rt *Runtime) (string, error) {
	if rt.Paths.StateHome == "" {
		return "", errors.New("the state directory ($XDG_STATE_HOME) is unknown, so there is nowhere to keep backups")
	}
	return filepath.Join(rt.Paths.VirtSetupState(), "backups"), nil
}

func fileOutput(rt *Runtime, format string, args ...any) {
	if rt.Output != nil {
		rt.Output(fmt.Sprintf(format, args...))
	}
}

// Apply implements Step. Each change is recorded before it is made: the directories as they are
// created, the backup before the write.
func (s *fileWriteStep) Apply(ctx context.Context, rt *Runtime, rec *Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	bdir, err := fileBackupDir(rt)
	if err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	cur, exists, next, err := s.plan()
	if err != nil {
		return err
	}
	if exists && bytes.Equal(cur, next) {
		fileOutput(rt, "%s is already up to date", s.path)
		return nil
	}

	// A step applied again after a failure keeps its first record: that backup holds the user's
	// original file, the later one would hold a half-done state.
	idx, first := -1, true
	for i, fr := range rec.Files {
		if fr.Path == s.path {
			idx, first = i, false
		}
	}
	if first {
		rec.Files = append(rec.Files, FileRecord{Path: s.path})
		idx = len(rec.Files) - 1
	}
	created, err := fsutil.MkdirAllRecord(filepath.Dir(s.path), 0o755)
	rec.Files[idx].CreatedDirs = append(rec.Files[idx].CreatedDirs, created...)
	if err != nil {
		return err
	}
	for _, d := range created {
		fileOutput(rt, "created directory %s", d)
	}
	if first {
		bp, existed, mode, err := fsutil.Backup(s.path, bdir)
		if err != nil {
			return err
		}
		rec.Files[idx].Existed, rec.Files[idx].Backup, rec.Files[idx].Mode = existed, bp, uint32(mode)
		if existed {
			fileOutput(rt, "backed up %s to %s", s.path, bp)
			// The diff was computed from cur; if the file changed since, writing next would drop
			// the user's newer edit.
			if b, err := os.ReadFile(bp); err != nil || !exists || !bytes.Equal(b, cur) {
				return fmt.Errorf("write %s: the file changed while virt-setup was working on it; nothing was written, run virt-setup again", s.path)
			}
		} else if exists {
			return fmt.Errorf("write %s: the file disappeared while virt-setup was working on it; nothing was written, run virt-setup again", s.path)
		}
	}
	if rec.Data == nil {
		rec.Data = map[string]string{}
	}
	rec.Data[fileWrittenKey(s.path)] = contentHash(next)
	mode := os.FileMode(0) // keep an existing file's mode
	if !exists {
		mode = s.mode
	}
	// The journal must know of the backup before the file changes: a process killed right after
	// the write would otherwise leave a changed file that uninstall knows nothing of.
	if err := rt.checkpoint(rec); err != nil {
		return fmt.Errorf("record the backup of %s: %w", s.path, err)
	}
	if err := fsutil.WriteFileAtomic(s.path, next, mode); err != nil {
		return err
	}
	fileOutput(rt, "wrote %s (%d bytes)", s.path, len(next))
	return nil
}

// Undo implements Step: it restores each replaced file from its backup and removes each created
// one, with the directories created for it when they are empty. A file the user changed after
// Apply is copied into the backups first, so undo never loses their edit.
func (s *fileWriteStep) Undo(ctx context.Context, rt *Runtime, rec Record) error {
	var errs []error
	for i := len(rec.Files) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := undoFileChange(rt, rec, rec.Files[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func undoFileChange(rt *Runtime, rec Record, fr FileRecord) error {
	cur, exists, err := readFileNow(fr.Path)
	if err != nil {
		return fmt.Errorf("undo %s: %w", fr.Path, err)
	}
	if fr.Existed && fr.Backup == "" {
		// Recorded before the backup was made: the step failed before writing anything.
		return nil
	}
	if fr.Existed {
		orig, err := os.ReadFile(fr.Backup)
		if err != nil {
			return fmt.Errorf("undo %s: read backup: %w", fr.Path, err)
		}
		if exists && bytes.Equal(cur, orig) && fileModeIs(fr.Path, os.FileMode(fr.Mode)) {
			fileOutput(rt, "%s is already as it was", fr.Path)
			return nil
		}
	}
	if exists {
		if want, ok := rec.Data[fileWrittenKey(fr.Path)]; ok && contentHash(cur) != want {
			if !(fr.Existed && sameAsBackup(cur, fr.Backup)) {
				bdir, err := fileBackupDir(rt)
				if err != nil {
					return fmt.Errorf("undo %s: %w", fr.Path, err)
				}
				bp, _, _, err := fsutil.Backup(fr.Path, bdir)
				if err != nil {
					return fmt.Errorf("undo %s: keep your later changes: %w", fr.Path, err)
				}
				fileOutput(rt, "kept a copy of your later changes to %s in %s", fr.Path, bp)
			}
		}
	}
	if fr.Existed {
		if err := fsutil.Restore(fr.Backup, fr.Path, os.FileMode(fr.Mode)); err != nil {
			return fmt.Errorf("undo: %w", err)
		}
		fileOutput(rt, "restored %s from %s", fr.Path, fr.Backup)
		return nil
	}
	if exists {
		if err := os.Remove(fr.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("undo %s: %w", fr.Path, err)
		}
		fileOutput(rt, "removed %s", fr.Path)
	}
	if err := fsutil.RemoveEmptyDirs(fr.CreatedDirs); err != nil {
		return fmt.Errorf("undo %s: %w", fr.Path, err)
	}
	return nil
}

func sameAsBackup(cur []byte, backup string) bool {
	b, err := os.ReadFile(backup)
	return err == nil && bytes.Equal(b, cur)
}

func fileModeIs(path string, mode os.FileMode) bool {
	fi, err := os.Stat(path)
	return err == nil && (mode == 0 || fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) == mode)
}

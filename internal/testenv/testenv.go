// Package testenv holds what tests need from the machine they run on: the unprivileged test user,
// and the rule that under CI=true a missing prerequisite fails the test instead of skipping it.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (CI=true), where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require stops the test when ok is false: a loud failure in CI, a skip on a developer's machine.
// why says what is missing and how to get it.
func Require(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("prerequisite missing (CI=true, so this fails instead of skipping): %s", why)
	}
	t.Skipf("prerequisite missing: %s", why)
}

// TestUserName is the unprivileged account scripts/setup-test-host.sh creates.
func TestUserName() string {
	if u := os.Getenv("VIRT_SETUP_TEST_USER"); u != "" {
		return u
	}
	return "vstest"
}

// TestUser is the unprivileged account rootless behaviour is tested as.
type TestUser struct {
	Name string
	UID  int
	GID  int
	Home string
}

// RequireTestUser returns the test user, requiring that the tests run as root (to switch to it) and
// that scripts/setup-test-host.sh has created it.
func RequireTestUser(t testing.TB) TestUser {
	t.Helper()
	Require(t, os.Geteuid() == 0, "running as another user needs root; run `make test` as root (it creates the test user)")
	u, err := user.Lookup(TestUserName())
	Require(t, err == nil, fmt.Sprintf("test user %q does not exist: run scripts/setup-test-host.sh (make test-setup)", TestUserName()))
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return TestUser{Name: u.Username, UID: uid, GID: gid, Home: u.HomeDir}
}

// Command builds a command that runs as the test user with a clean login-like environment: HOME,
// USER, LOGNAME, PATH and SHELL, plus extra. There is no XDG_RUNTIME_DIR, as after `su` without a
// login session; pass one in extra when a test needs it.
func (u TestUser) Command(ctx context.Context, name string, args []string, extra ...string) *exec.Cmd {
	full := append([]string{"--reuid=" + strconv.Itoa(u.UID), "--regid=" + strconv.Itoa(u.GID), "--init-groups", "--", name}, args...)
	cmd := exec.CommandContext(ctx, "setpriv", full...)
	cmd.Env = append([]string{
		"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name, "SHELL=/bin/bash",
		"PATH=/usr/local/bin:/usr/bin:/bin",
	}, extra...)
	cmd.Dir = "/"
	return cmd
}

// Run runs a command as the test user and returns stdout, failing the test with stderr on error.
func (u TestUser) Run(t testing.TB, name string, args []string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := u.Command(ctx, name, args, extra...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("as %s: %s %s: %v\nstderr:\n%s", u.Name, name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// SharedDir returns a fresh directory the test user can read and enter (t.TempDir is 0700 root).
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "virt-setup-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// BuildBinary builds ./cmd/virt-setup into a directory the test user can run it from.
func BuildBinary(t testing.TB) string {
	t.Helper()
	root := ModuleRoot(t)
	out := filepath.Join(SharedDir(t), "virt-setup")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/virt-setup")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// ModuleRoot finds the directory holding go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// CopyTestBinary copies the running test binary into dir (made with SharedDir), so that a test can
// re-run one of its own tests as the test user: t.TempDir and the build cache are not theirs to read.
func CopyTestBinary(t testing.TB, dir, name string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

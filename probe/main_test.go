package probe

import (
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for virt-setup in the live tests: they re-execute
// themselves (/proc/self/exe) with LiveHelperEnv set, and the child must run the helper, not the
// tests.
func TestMain(m *testing.M) {
	if code, ran := RunLiveHelper(); ran {
		os.Exit(code)
	}
	if raceEnabled {
		// A race-enabled binary takes a second or more to start on a small VM; the production
		// bound would make the live tests flaky without testing anything more.
		liveChildTimeout = 15 * time.Second
	}
	os.Exit(m.Run())
}

package tui

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
)

// common is what every screen shares, by pointer: the size, styles and keys, the backend, and the
// wizard's state as it builds up (facts, findings, answers, plan).
type common struct {
	width, height int
	styles        Styles
	keys          KeyMap
	backend       Backend
	info          BackendInfo
	now           func() time.Time
	log           *slog.Logger
	// ctx bounds all background work; cancelling it stops the probe, the install and the bench.
	ctx context.Context

	facts   *probe.Facts
	report  probe.Report
	answers installer.Answers
	plan    *installer.Plan
	// infos describe the plan's steps, read once when it was built.
	infos []installer.StepInfo
	// answersPath is where the answers were saved ("" until they are).
	answersPath string
	// firstFrame is logged once, to measure the time from start to the first frame.
	start      time.Time
	firstFrame bool
}

// contentWidth is the width screens lay text out in: the terminal's, capped so that lines stay
// readable on a very wide terminal.
func (c *common) contentWidth() int {
	w := c.width
	if w <= 0 {
		w = 80
	}
	return min(w, maxContentWidth)
}

// maxContentWidth keeps prose readable on wide terminals.
const maxContentWidth = 140

// elapsed formats a duration as the install screen shows it: mm:ss.
func elapsed(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%02d:%02d", int(d/time.Minute), int((d%time.Minute)/time.Second))
}

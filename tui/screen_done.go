package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// doneScreen says what was installed, where the log and the answers are, and what to try next.
type doneScreen struct {
	c *common
	// summary is fixed on entry, from the install and bench screens.
	steps     string
	benchLine string
}

func newDoneScreen(c *common) doneScreen { return doneScreen{c: c} }

func (s doneScreen) enter(in installScreen, b benchScreen) doneScreen {
	n := map[stepState]int{}
	for _, r := range in.rows {
		n[r.state]++
	}
	s.steps = fmt.Sprintf("%d steps: %d done, %d already in place", len(in.rows), n[stepDone], n[stepSkipped])
	if n[stepLeftOut] > 0 {
		s.steps += fmt.Sprintf(", %d left out", n[stepLeftOut])
	}
	s.benchLine = ""
	if r, ok := b.results["container-to-host"]; ok && r.Err == "" {
		s.benchLine = "container → host " + strings.TrimSpace(gbit(r.BitsPerSecond))
		if f, ok := b.results["container-to-host-bypass4netns"]; ok && f.Err == "" && r.BitsPerSecond > 0 {
			s.benchLine += fmt.Sprintf(", %s with bypass4netns (%.1f×)", strings.TrimSpace(gbit(f.BitsPerSecond)), f.BitsPerSecond/r.BitsPerSecond)
		}
	}
	return s
}

func (s doneScreen) update(msg tea.Msg) (doneScreen, tea.Cmd) {
	if km, ok := msg.(tea.KeyMsg); ok && key.Matches(km, s.c.keys.Enter) {
		return s, tea.Quit
	}
	return s, nil
}

func (s doneScreen) keys() keyList {
	return keysOf([]key.Binding{with(s.c.keys.Enter, "enter/q", "quit")})
}

// nextCommands are what to try once the setup runs.
func (s doneScreen) nextCommands() [][2]string {
	a := s.c.answers
	cmds := [][2]string{
		{"nerdctl run --rm hello-world", "a first container"},
		{"nerdctl info", "Storage Driver: " + a.Snapshotter},
	}
	if a.AddOns.Bypass4netns {
		cmds = append(cmds, [2]string{"nerdctl run -d -p 8080:80 --annotation nerdctl/bypass4netns=true nginx", "host-speed networking"})
	}
	if a.AddOns.BuildKit {
		cmds = append(cmds, [2]string{"nerdctl build -t myimage .", "build with BuildKit"})
	}
	if a.ServiceMode == "direct" {
		cmds = append(cmds, [2]string{"virt-setup start", "after a reboot (no systemd user manager here)"})
	} else {
		cmds = append(cmds, [2]string{"systemctl --user status containerd", "the service"})
	}
	cmds = append(cmds, [2]string{"virt-setup verify", "check the setup again"}, [2]string{"virt-setup uninstall", "undo exactly this install"})
	return cmds
}

func (s doneScreen) view(w, h int) string {
	st := s.c.styles
	var lines []string
	if s.c.info.Demo {
		lines = append(lines, st.OK.Render(glyphOK+" ")+st.Heading.Render("Demo finished")+st.Dim.Render(": nothing on this host was changed"))
	} else {
		lines = append(lines, st.OK.Render(glyphOK+" ")+st.Heading.Render("Rootless containerd is set up"))
	}
	lines = append(lines, "")
	lines = append(lines, choicesLines(st, s.c.answers, w)...)
	lines = append(lines, truncate(st.Label.Render("install")+" "+s.steps, w))
	if s.benchLine != "" {
		lines = append(lines, truncate(st.Label.Render("network")+" "+s.benchLine, w))
	}
	lines = append(lines, "", st.Heading.Render("Files"))
	logPath := s.c.info.LogPath
	switch {
	case logPath == "" && s.c.info.Demo:
		logPath = "none (the demo writes nothing)"
	case logPath == "":
		logPath = "none"
	}
	answers := s.c.answersPath
	switch {
	case s.c.info.Demo && answers == "":
		answers = "not saved (DEMO)"
	case answers == "":
		answers = "not saved"
	}
	lines = append(lines, truncate(fmt.Sprintf("  %s %s", st.Label.Render("log      "), logPath), w))
	lines = append(lines, truncate(fmt.Sprintf("  %s %s", st.Label.Render("answers  "), answers), w))
	if s.c.answersPath != "" {
		lines = append(lines, truncate(st.Dim.Render("            replay elsewhere: virt-setup install --answers "+s.c.answersPath), w))
	}
	lines = append(lines, "", st.Heading.Render("Try next"))
	// Comments line up after the commands; a command too long for that has its comment below it.
	cmds := s.nextCommands()
	width := 0
	for _, c := range cmds {
		if len(c[0]) <= 40 {
			width = max(width, len(c[0]))
		}
	}
	for _, c := range cmds {
		if len(c[0]) > width {
			lines = append(lines, "  "+st.Code.Render(c[0]), truncate(fmt.Sprintf("  %*s  %s", width, "", st.Dim.Render("# "+c[1])), w))
			continue
		}
		lines = append(lines, truncate(fmt.Sprintf("  %s  %s", st.Code.Render(fmt.Sprintf("%-*s", width, c[0])), st.Dim.Render("# "+c[1])), w))
	}
	return strings.Join(window(lines, 0, h), "\n")
}

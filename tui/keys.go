package tui

import "github.com/charmbracelet/bubbles/key"

// KeyMap is every key the wizard knows. A screen lists only the bindings that work on it (and
// only while they work), so the help footer never offers a key that does nothing.
type KeyMap struct {
	Up, Down, PageUp, PageDown key.Binding
	Left, Right                key.Binding
	// Enter continues, opens or confirms, depending on the screen (its help says which).
	Enter key.Binding
	// Back returns to the previous screen or closes a panel.
	Back key.Binding
	// Toggle switches an add-on on or off.
	Toggle key.Binding
	// Next continues from the findings, where Enter opens a check.
	Next key.Binding
	// Advanced opens the RootlessKit panel.
	Advanced key.Binding
	// Tab switches between the plan and the root script.
	Tab key.Binding
	// Save writes the answers to a file.
	Save key.Binding
	// ShowAll lists the checks that passed or were skipped too.
	ShowAll key.Binding
	// Reprobe runs the probe again (after fixing something in another terminal).
	Reprobe key.Binding
	// Retry, Skip and Stop answer a failed step.
	Retry, Skip key.Binding
	// Yes and No answer a question.
	Yes, No key.Binding
	Help    key.Binding
	Quit    key.Binding
	// Interrupt is Ctrl-C: it quits at once, except while a step runs, where it asks first.
	Interrupt key.Binding
}

// DefaultKeyMap returns the wizard's keys.
func DefaultKeyMap() KeyMap {
	return KeyMap{
		Up:        key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:      key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:    key.NewBinding(key.WithKeys("pgup", "b"), key.WithHelp("pgup", "page up")),
		PageDown:  key.NewBinding(key.WithKeys("pgdown", "f"), key.WithHelp("pgdn", "page down")),
		Left:      key.NewBinding(key.WithKeys("left", "h"), key.WithHelp("←/→", "change")),
		Right:     key.NewBinding(key.WithKeys("right", "l"), key.WithHelp("←/→", "change")),
		Enter:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "continue")),
		Back:      key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Toggle:    key.NewBinding(key.WithKeys(" ", "x"), key.WithHelp("space", "toggle")),
		Next:      key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "continue")),
		Advanced:  key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "RootlessKit")),
		Tab:       key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "root script")),
		Save:      key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "save")),
		ShowAll:   key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "all")),
		Reprobe:   key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "probe again")),
		Retry:     key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "retry")),
		Skip:      key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "skip step")),
		Yes:       key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "yes")),
		No:        key.NewBinding(key.WithKeys("n", "esc"), key.WithHelp("n", "no")),
		Help:      key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "more keys")),
		Quit:      key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),
		Interrupt: key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "stop")),
	}
}

// with returns a copy of b with other help text, for a key whose action depends on the screen.
func with(b key.Binding, keyText, desc string) key.Binding {
	b.SetHelp(keyText, desc)
	return b
}

// keyList is the help.KeyMap of one screen in one state: the short line shows the first bindings,
// the full help (?) all of them in columns.
type keyList struct {
	short []key.Binding
	full  [][]key.Binding
}

// ShortHelp implements help.KeyMap.
func (k keyList) ShortHelp() []key.Binding { return k.short }

// FullHelp implements help.KeyMap.
func (k keyList) FullHelp() [][]key.Binding {
	if k.full == nil {
		return [][]key.Binding{k.short}
	}
	return k.full
}

// keysOf builds a keyList: short are always shown; more appear with full help.
func keysOf(short []key.Binding, more ...key.Binding) keyList {
	kl := keyList{short: short}
	if len(more) > 0 {
		kl.full = [][]key.Binding{short, more}
	}
	return kl
}

//go:build tools

// Package tools pins, in go.mod, the design card's dependencies whose users have not landed yet: the
// bubbletea wizard (tui/) and the containerd client (installer verify). Built only with -tags tools,
// so it costs nothing in normal builds; remove an import once real code imports that module.
package tools

import (
	_ "github.com/charmbracelet/bubbles/help"
	_ "github.com/charmbracelet/bubbletea"
	_ "github.com/containerd/containerd/v2/client"
)

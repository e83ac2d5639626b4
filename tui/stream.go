package tui

import (
	"sync"

	tea "github.com/charmbracelet/bubbletea"
)

// A stream carries the messages of one piece of background work (the probe, an install run, the
// benchmark) into the wizard. The work sends on the channel from its own goroutine; listen turns
// the channel into a command that re-arms itself after every delivery (bubbletea's
// examples/realtime), so Update never waits for anything.
type stream struct {
	ch     chan tea.Msg
	mu     sync.Mutex
	closed bool
}

// streamBuffer lets a burst of output (a service's start-up log) queue without stalling the work.
const streamBuffer = 512

// maxBatch bounds how many queued messages one delivery carries: enough that a burst of output
// costs one redraw, few enough that the screen keeps moving.
const maxBatch = 256

func newStream() *stream { return &stream{ch: make(chan tea.Msg, streamBuffer)} }

// send delivers msg unless the stream is closed; a straggling goroutine of finished work (a probe
// that outlived its timeout) is dropped rather than panicking on a closed channel.
func (s *stream) send(msg tea.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.ch <- msg
}

// close ends the stream after the work's last message.
func (s *stream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// batchMsg is what listen delivers: the messages queued since the last delivery, in order.
type batchMsg struct {
	s    *stream
	msgs []tea.Msg
	// more is false once the stream is closed and drained: then nothing re-arms it.
	more bool
}

// listen waits for the next message of s and takes whatever else is already queued with it.
func listen(s *stream) tea.Cmd {
	return func() tea.Msg {
		msg, ok := <-s.ch
		if !ok {
			return batchMsg{s: s, more: false}
		}
		b := batchMsg{s: s, msgs: []tea.Msg{msg}, more: true}
		for len(b.msgs) < maxBatch {
			select {
			case m, ok := <-s.ch:
				if !ok {
					b.more = false
					return b
				}
				b.msgs = append(b.msgs, m)
			default:
				return b
			}
		}
		return b
	}
}

// Package tui is the virt-setup wizard: one front end over probe and installer that only renders
// what they return or emit.
//
// The root Model is a state machine of screens (probe, findings, snapshotter, add-ons, review,
// install, benchmark, done), one file each, sharing a common struct by pointer. Long work (the
// probe, building a plan, the install, the benchmark) runs in commands over a Backend; the
// events come back through self-re-arming stream commands, so Update never waits. NewHostBackend
// works on this host; NewDemoBackend replays a shipped host profile with a simulated executor and
// touches nothing. RunPlain is the same flow as plain lines and prompts, for a terminal without a
// TUI or no terminal at all.
//
// Every status is drawn as a glyph and a word, so the screens read the same with NO_COLOR; the
// help footer lists only the keys that work on the screen as it is.
package tui

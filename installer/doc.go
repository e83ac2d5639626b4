// Package installer changes a host to run rootless containerd: it turns the user's answers and the
// probe's facts into a plan of typed steps, shows the plan (every command, a diff of every file),
// runs it with an engine that emits events and keeps a journal, verifies the result with the
// containerd client, and undoes exactly what the journal says was done.
//
// The data flows one way: probe → answers → plan → engine → events. The package knows nothing of
// the front ends; the CLI's plain renderer and the wizard consume the same event stream.
package installer

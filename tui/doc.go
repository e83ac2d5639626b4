// Package tui will be the bubbletea wizard: one front end over probe and installer that only renders
// what they return or emit.
//
// Not built yet: this package is the subject of the wizard issue.
package tui

//go:build race

package probe

// raceEnabled is true when the tests are built with -race.
const raceEnabled = true

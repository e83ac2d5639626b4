// Package installer will turn the user's answers and the probe's facts into a plan of typed steps
// (check, apply, undo), run it with a journal, verify the result with the containerd client, and
// measure it with iperf3. It reads probe's facts and knows nothing of the front ends.
//
// Not built yet: this package is the subject of the installer-engine and benchmark issues.
package installer

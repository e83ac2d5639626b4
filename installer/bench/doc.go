// Package bench measures what bypass4netns buys on this machine: iperf3 between a container and the
// host, in both directions, with and without bypass4netns, and on the host's loopback as the
// ceiling, the comparison nerdctl's documentation shows as one table. It orchestrates nerdctl and
// iperf3 through a sys.Runner, streams every interval as an event for a live view, takes each
// result from iperf3's own summary, and keeps a baseline to compare later runs with.
package bench

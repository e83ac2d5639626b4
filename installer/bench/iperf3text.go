package bench

// iperf3's human-readable output, as the benchmark reads it live. iperf3 3.12 (Debian 12) has no
// --json-stream (3.17 added it), and --json prints nothing until the test ends, so the interval
// lines that --forceflush writes as they happen are the only live source on most hosts.
//
// The report lines come from one set of printf formats (src/iperf_locale.c) that has not changed
// in substance from 3.1 to 3.21; testdata/ holds real output of 3.1.7, 3.9, 3.12, 3.16 and 3.21:
//
//	[ ID] Interval           Transfer     Bitrate         Retr  Cwnd          (3.1: "Bandwidth")
//	[  5]   0.00-1.00   sec  1.95 GBytes  16.7 Gbits/sec    0   3.09 MBytes   (TCP sender interval)
//	[  5]   0.00-1.00   sec  1.95 GBytes  16.7 Gbits/sec                      (receiver interval)
//	[SUM]   0.00-1.00   sec  2.77 GBytes  23.8 Gbits/sec   16                 (-P > 1)
//	[  5]   0.00-1.00   sec  1.59 GBytes  13.7 Gbits/sec   63   1023 KBytes   (omitted)   (-O)
//	[  5][TX-C]   0.00-1.00   sec ...                                         (--bidir, 3.7+)
//	[  5]   0.00-3.00   sec  3.34 GBytes  9.56 Gbits/sec  151             sender
//	[  5]   0.00-3.04   sec  3.34 GBytes  9.45 Gbits/sec                  receiver
//	Sun Nov 29 18:54:39 2026 [  5]   0.00-1.00 ...                            (--timestamps)
//	iperf3: error - unable to connect to server: Connection refused
//
// The differences that matter: the ID is the socket number (4 before 3.2, 5 after); the numbers
// are printed to three or four significant digits with an adaptive unit (bits and Kbits to Tbits
// per second, or bytes per second with an upper-case -f, where a kilo is 1024); the summary's
// receiver interval is the receiver's own clock (3.9 prints 0.00-2.05 where the sender says
// 0.00-2.00); the retransmits column is %3u before 3.21 and %3ld after; UDP lines put datagram
// counts where TCP puts retransmits, told apart only by the header above them. The client prints
// both summary lines, the receiver's taken from the server at the end, so the client's output alone
// gives the result.

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// ReportLine is one interval or summary line of iperf3's report.
type ReportLine struct {
	// Stream is iperf3's stream ID (its socket number); 0 on a [SUM] line.
	Stream int  `json:"stream,omitempty"`
	Sum    bool `json:"sum,omitempty"`
	// Role is the --bidir role ("TX-C", "RX-C", "TX-S", "RX-S"), empty otherwise.
	Role string `json:"role,omitempty"`
	// Start and End are seconds since the test started.
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	// Bytes is the transfer as printed (three significant digits).
	Bytes         float64 `json:"bytes"`
	BitsPerSecond float64 `json:"bits_per_second"`
	// Retransmits is the TCP sender's count, -1 when the line has none.
	Retransmits int `json:"retransmits"`
	// Omitted marks a warm-up interval (-O) that the summary leaves out.
	Omitted bool `json:"omitted,omitempty"`
	// Side is "sender" or "receiver" on a summary line and empty on an interval line.
	Side string `json:"side,omitempty"`
}

// Summary is the end of a test: what the sender sent and what the receiver got, from iperf3's own
// summary lines (the [SUM] lines with parallel streams).
type Summary struct {
	Sender   ReportLine `json:"sender"`
	Receiver ReportLine `json:"receiver"`
}

// Iperf3Error is an error iperf3 reported ("iperf3: error - ...").
type Iperf3Error struct {
	// Msg is iperf3's message after "error - ".
	Msg string
}

// Error implements error.
func (e *Iperf3Error) Error() string { return "iperf3: " + e.Msg }

// ErrNoSummary says that the output ended before iperf3's summary: iperf3 was killed, or what ran
// was not an iperf3 client.
var ErrNoSummary = errors.New("iperf3 printed no summary (the test did not finish)")

// TextParser reads iperf3's text output line by line, reports each interval as it arrives and
// keeps the summary. The zero value reads a single-stream test; it is not safe for concurrent use.
type TextParser struct {
	// Streams is the number of parallel streams (-P). With more than one, the [SUM] lines are the
	// intervals reported; with one, the stream's own lines are.
	Streams int
	// OnInterval, when set, receives each interval of the test as its line is fed, warm-up
	// intervals (Omitted) included. --bidir receive-side lines are not reported.
	OnInterval func(ReportLine)

	// retr is true while the last header had a "Retr" column: only then is the integer after the
	// bitrate a retransmit count (UDP puts datagram counts there).
	retr      bool
	summaries []ReportLine
	errs      []string
}

// Feed parses one line of output (without its newline). Lines that are not part of the report
// (connection messages, nerdctl's own output) are ignored.
func (p *TextParser) Feed(line string) {
	if msg, ok := iperf3Error(line); ok {
		p.errs = append(p.errs, msg)
		return
	}
	rest, ok := afterTimestamp(line)
	if !ok {
		return
	}
	if strings.HasPrefix(rest, "[ ID]") {
		p.retr = strings.Contains(rest, " Retr")
		return
	}
	l, ok := parseReportLine(rest, p.retr)
	if !ok {
		return
	}
	if l.Side != "" {
		p.summaries = append(p.summaries, l)
		return
	}
	if !sendingRole(l.Role) || l.Sum != (p.Streams > 1) {
		return
	}
	if p.OnInterval != nil {
		p.OnInterval(l)
	}
}

// Summary returns the test's summary: the [SUM] lines when there are any, else the one stream's
// lines. An error iperf3 reported comes first, then ErrNoSummary when the summary is incomplete.
func (p *TextParser) Summary() (Summary, error) {
	if len(p.errs) > 0 {
		return Summary{}, &Iperf3Error{Msg: p.errs[0]}
	}
	var sums, streams []ReportLine
	for _, l := range p.summaries {
		if !sendingRole(l.Role) {
			continue
		}
		if l.Sum {
			sums = append(sums, l)
		} else {
			streams = append(streams, l)
		}
	}
	lines := sums
	if len(lines) == 0 {
		lines = streams
	}
	var s Summary
	var haveSender, haveReceiver bool
	for _, l := range lines {
		switch l.Side {
		case "sender":
			s.Sender, haveSender = merge(s.Sender, l, haveSender), true
		case "receiver":
			s.Receiver, haveReceiver = merge(s.Receiver, l, haveReceiver), true
		}
	}
	if !haveReceiver || !haveSender {
		return Summary{}, ErrNoSummary
	}
	return s, nil
}

// merge adds a stream's summary line to the total of the streams before it, for output with
// several streams but no [SUM] line (a truncated report).
func merge(total, l ReportLine, have bool) ReportLine {
	if !have {
		return l
	}
	total.Stream, total.Sum = 0, true
	total.Start = math.Min(total.Start, l.Start)
	total.End = math.Max(total.End, l.End)
	// Sums of absurd figures must stay measurements: an overflowing sum becomes the largest
	// value rather than infinity or a negative count.
	total.Bytes = math.Min(total.Bytes+l.Bytes, math.MaxFloat64)
	total.BitsPerSecond = math.Min(total.BitsPerSecond+l.BitsPerSecond, math.MaxFloat64)
	switch {
	case total.Retransmits < 0 || l.Retransmits < 0:
		total.Retransmits = -1
	case total.Retransmits > math.MaxInt-l.Retransmits:
		total.Retransmits = math.MaxInt
	default:
		total.Retransmits += l.Retransmits
	}
	return total
}

// sendingRole is true for the lines of the traffic the client sends: every line without --bidir,
// and the TX lines with it.
func sendingRole(role string) bool { return role == "" || strings.HasPrefix(role, "TX") }

// ServerListening reports whether line is iperf3's "Server listening on PORT" banner, printed once
// the server's socket is bound.
func ServerListening(line string) bool { return strings.Contains(line, "Server listening on ") }

// iperf3Error returns the message of an "iperf3: error - ..." line.
func iperf3Error(line string) (string, bool) {
	const marker = "iperf3: error - "
	i := strings.Index(line, marker)
	if i < 0 {
		return "", false
	}
	return strings.TrimSpace(line[i+len(marker):]), true
}

// afterTimestamp returns the line from its first "[" on: --timestamps puts a date before it.
func afterTimestamp(line string) (string, bool) {
	i := strings.IndexByte(line, '[')
	if i < 0 {
		return "", false
	}
	return line[i:], true
}

// parseReportLine parses "[ID][ROLE] START-END sec N UNIT N UNIT ..." (rest starts at "[").
func parseReportLine(rest string, retrColumn bool) (ReportLine, bool) {
	l := ReportLine{Retransmits: -1}
	id, rest, ok := bracket(rest)
	if !ok {
		return l, false
	}
	if id == "SUM" {
		l.Sum = true
	} else {
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 {
			return l, false
		}
		l.Stream = n
	}
	if strings.HasPrefix(rest, "[") {
		role, after, ok := bracket(rest)
		if !ok || role == "" {
			return l, false
		}
		l.Role, rest = role, after
	}
	f := strings.Fields(rest)
	if len(f) < 6 || f[1] != "sec" {
		return l, false
	}
	startS, endS, ok := strings.Cut(f[0], "-")
	if !ok {
		return l, false
	}
	var err1, err2 error
	l.Start, err1 = strconv.ParseFloat(startS, 64)
	l.End, err2 = strconv.ParseFloat(endS, 64)
	if err1 != nil || err2 != nil || !finiteNonNegative(l.Start) || !finiteNonNegative(l.End) || l.End < l.Start {
		return l, false
	}
	var ok1, ok2 bool
	l.Bytes, ok1 = quantity(f[2], f[3], byteUnits)
	l.BitsPerSecond, ok2 = quantity(f[4], f[5], rateUnits)
	if !ok1 || !ok2 {
		return l, false
	}
	extra := f[6:]
	if n := len(extra); n > 0 && (extra[n-1] == "sender" || extra[n-1] == "receiver") {
		l.Side = extra[n-1]
		extra = extra[:n-1]
	}
	for i, x := range extra {
		if x == "(omitted)" {
			l.Omitted = true
			extra = append(extra[:i:i], extra[i+1:]...)
			break
		}
	}
	if retrColumn && len(extra) > 0 {
		if n, err := strconv.Atoi(extra[0]); err == nil && n >= 0 {
			l.Retransmits = n
		}
	}
	return l, true
}

// bracket splits "[ x ]rest" into "x" and rest with leading blanks removed.
func bracket(s string) (string, string, bool) {
	if !strings.HasPrefix(s, "[") {
		return "", "", false
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return "", "", false
	}
	return strings.TrimSpace(s[1:end]), strings.TrimLeft(s[end+1:], " \t"), true
}

// Units as iperf3's unit_snprintf prints them: byte multiples are powers of 1024, bit multiples
// powers of 1000, and a rate in bytes (-f K, M, G, T) is a byte unit per second.
var (
	byteUnits = map[string]float64{
		"Bytes": 1, "KBytes": 1 << 10, "MBytes": 1 << 20, "GBytes": 1 << 30, "TBytes": 1 << 40,
	}
	rateUnits = map[string]float64{
		"bits/sec": 1, "Kbits/sec": 1e3, "Mbits/sec": 1e6, "Gbits/sec": 1e9, "Tbits/sec": 1e12,
		"Bytes/sec": 8, "KBytes/sec": 8 << 10, "MBytes/sec": 8 << 20, "GBytes/sec": 8 << 30, "TBytes/sec": 8 << 40,
	}
)

// quantity parses a number and its unit.
func quantity(num, unit string, units map[string]float64) (float64, bool) {
	mult, ok := units[unit]
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !finiteNonNegative(v) {
		return 0, false
	}
	v *= mult
	return v, !math.IsInf(v, 0)
}

func finiteNonNegative(v float64) bool { return v >= 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }

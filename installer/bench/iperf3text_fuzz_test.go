package bench

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzTextParser feeds arbitrary output to the parser, seeded with the real output of every
// iperf3 version in testdata/: it must never panic, and whatever it reports must be a sane
// measurement (finite, not negative, an interval that ends after it starts).
func FuzzTextParser(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "iperf3-*.txt"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), uint8(1))
		f.Add(string(b), uint8(2))
	}
	f.Add("[SUM][TX-C]   0.00-1.00   sec  1 TBytes  1 TBytes/sec  4294967295   1 TBytes  (omitted) sender", uint8(3))
	f.Fuzz(func(t *testing.T, out string, streams uint8) {
		sane := func(what string, l ReportLine) {
			for _, v := range []float64{l.Start, l.End, l.Bytes, l.BitsPerSecond} {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					t.Fatalf("%s: not a measurement: %+v", what, l)
				}
			}
			if l.End < l.Start || l.Retransmits < -1 {
				t.Fatalf("%s: not a measurement: %+v", what, l)
			}
		}
		p := &TextParser{Streams: int(streams), OnInterval: func(l ReportLine) {
			sane("interval", l)
			if l.Side != "" || l.Sum != (streams > 1) || !sendingRole(l.Role) {
				t.Fatalf("interval reported that is not one: %+v (streams %d)", l, streams)
			}
		}}
		for _, line := range strings.Split(out, "\n") {
			p.Feed(line)
		}
		s, err := p.Summary()
		if err != nil {
			return
		}
		sane("sender", s.Sender)
		sane("receiver", s.Receiver)
		if s.Sender.Side != "sender" || s.Receiver.Side != "receiver" {
			t.Fatalf("summary sides mixed up: %+v", s)
		}
	})
}

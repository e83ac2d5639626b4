package main

import (
	"strings"
	"testing"
)

func TestOneLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a\nb\n", "a ⏎ b"},
		{"  a  \n\n  b", "a ⏎ b"},
		{"", ""},
		{strings.Repeat("x", 500), strings.Repeat("x", maxEvidenceLine-1) + "…"},
		{strings.Repeat("é", 500), strings.Repeat("é", maxEvidenceLine-1) + "…"},
	}
	for _, tt := range tests {
		if got := oneLine(tt.in); got != tt.want {
			t.Errorf("oneLine(%.20q) = %.40q, want %.40q", tt.in, got, tt.want)
		}
	}
}

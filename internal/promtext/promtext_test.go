package promtext_test

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/internal/promtext"
)

// TestAppend checks every function's spelling: escaping, label lists and
// numbers.
func TestAppend(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"header escapes backslash and newline, not quotes",
			promtext.AppendHeader([]byte("x\n"), "a_total", promtext.Counter, "Path C:\\tmp\nnext \"line\"."),
			"x\n# HELP a_total Path C:\\\\tmp\\nnext \"line\".\n# TYPE a_total counter\n"},
		{"header, empty help", promtext.AppendHeader(nil, "a", promtext.Untyped, ""), "# HELP a \n# TYPE a untyped\n"},
		{"no labels", promtext.AppendSample(nil, "a", 3), "a 3\n"},
		{"one label", promtext.AppendSample(nil, "a", 3, "k", "v"), `a{k="v"} 3` + "\n"},
		{"labels escaped", promtext.AppendSample(nil, "a", 1, "k", "q\"b\\n\nx", "l", ""),
			`a{k="q\"b\\n\nx",l=""} 1` + "\n"},
		{"odd label list", promtext.AppendSample(nil, "a", 1, "k", "v", "dangling"), `a{k="v"} 1` + "\n"},
		{"a lone label name", promtext.AppendSample(nil, "a", 1, "k"), "a 1\n"},
		{"non-ASCII label value kept", promtext.AppendSample(nil, "a", 1, "k", "é☃"), `a{k="é☃"} 1` + "\n"},
		{"fraction", promtext.AppendSample(nil, "a", 0.25), "a 0.25\n"},
		{"negative", promtext.AppendSample(nil, "a", -2), "a -2\n"},
		{"negative zero", promtext.AppendSample(nil, "a", math.Copysign(0, -1)), "a 0\n"},
		{"2^53", promtext.AppendSample(nil, "a", 1<<53), "a 9007199254740992\n"},
		{"-2^53", promtext.AppendSample(nil, "a", -(1 << 53)), "a -9007199254740992\n"},
		{"beyond 2^53", promtext.AppendSample(nil, "a", 1<<60), "a 1.152921504606847e+18\n"},
		{"tiny", promtext.AppendSample(nil, "a", 1e-9), "a 1e-09\n"},
		{"NaN", promtext.AppendSample(nil, "a", math.NaN()), "a NaN\n"},
		{"+Inf", promtext.AppendSample(nil, "a", math.Inf(1)), "a +Inf\n"},
		{"-Inf", promtext.AppendSample(nil, "a", math.Inf(-1)), "a -Inf\n"},
		{"uint, exact beyond 2^53", promtext.AppendUintSample(nil, "a_total", 1<<53+1, "k", "v"),
			`a_total{k="v"} 9007199254740993` + "\n"},
		{"uint max", promtext.AppendUintSample(nil, "a_total", math.MaxUint64), "a_total 18446744073709551615\n"},
		{"int min", promtext.AppendIntSample(nil, "a", math.MinInt64), "a -9223372036854775808\n"},
		{"int with labels", promtext.AppendIntSample(nil, "a", 1767225600, "k", "v"), `a{k="v"} 1767225600` + "\n"},
		{"counter", promtext.AppendCounter([]byte("x\n"), "c_total", "Things.", 41),
			"x\n# HELP c_total Things.\n# TYPE c_total counter\nc_total 41\n"},
		{"gauge", promtext.AppendGauge(nil, "g_bytes", "Bytes\nheld.", -3),
			"# HELP g_bytes Bytes\\nheld.\n# TYPE g_bytes gauge\ng_bytes -3\n"},
		{"float", promtext.AppendFloat([]byte("v="), 1.5), "v=1.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

// FuzzAppendSample: whatever the help text, label value and value, a
// family is exactly three lines, and the help, label value and value read
// back as given.
func FuzzAppendSample(f *testing.F) {
	f.Add("Help.", "value", 1.0)
	f.Add("a\\b\nc\"d", "q\"b\\n\nx", math.Inf(-1))
	f.Add("", "", math.NaN())
	f.Add("\\", "\\\"", 1e300)
	f.Fuzz(func(t *testing.T, help, value string, v float64) {
		b := promtext.AppendHeader(nil, "a", promtext.Gauge, help)
		b = promtext.AppendSample(b, "a", v, "k", value)
		lines := strings.Split(string(b), "\n")
		if len(lines) != 4 || lines[3] != "" {
			t.Fatalf("want three lines ending in a newline: %q", b)
		}
		gotHelp, ok := strings.CutPrefix(lines[0], "# HELP a ")
		if !ok || unescape(t, gotHelp, false) != help {
			t.Errorf("HELP line %q does not read back as %q", lines[0], help)
		}
		if lines[1] != "# TYPE a gauge" {
			t.Errorf("TYPE line %q", lines[1])
		}
		rest, ok := strings.CutPrefix(lines[2], `a{k="`)
		i := strings.LastIndex(rest, `"} `)
		if !ok || i < 0 {
			t.Fatalf("sample line %q", lines[2])
		}
		if got := unescape(t, rest[:i], true); got != value {
			t.Errorf("label value %q reads back as %q, want %q", rest[:i], got, value)
		}
		got, err := strconv.ParseFloat(rest[i+3:], 64)
		if err != nil || (got != v && !(math.IsNaN(got) && math.IsNaN(v))) {
			t.Errorf("value %q reads back as %v (%v), want %v", rest[i+3:], got, err, v)
		}
	})
}

// unescape reverses the format's escaping, failing on anything the
// format does not allow: an unknown escape, a raw newline, and in a label
// value a raw double quote.
func unescape(tb testing.TB, s string, quoted bool) string {
	tb.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n' || (c == '"' && quoted):
			tb.Fatalf("raw %q in %q", c, s)
		case c == '\\':
			i++
			if i == len(s) {
				tb.Fatalf("dangling backslash in %q", s)
			}
			switch s[i] {
			case '\\':
			case 'n':
				c = '\n'
			case '"':
				if !quoted {
					tb.Fatalf("\\\" in HELP %q", s)
				}
				c = '"'
			default:
				tb.Fatalf("unknown escape \\%c in %q", s[i], s)
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

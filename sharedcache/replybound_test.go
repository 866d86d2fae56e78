package sharedcache

import (
	"strconv"
	"strings"
	"testing"
)

// TestReplyBounds feeds replyBounds whole streams and the same streams a
// byte at a time (a header split across reads): Redis's own replies pass,
// and a header past a bound fails before the reader could act on it.
func TestReplyBounds(t *testing.T) {
	bulk := func(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }
	largest := strings.Repeat("v", maxValueSize+1) // GETRANGE's most
	for _, tc := range []struct {
		name, stream string
		ok           bool
	}{
		{"status", "+OK\r\n", true},
		{"error", "-ERR unknown command 'HELLO'\r\n", true},
		{"integer", ":-5\r\n:1\r\n", true},
		{"nil bulk and array", "$-1\r\n*-1\r\n", true},
		{"empty bulk", "$0\r\n\r\n", true},
		{"largest value", bulk(largest), true},
		{"a header inside a value is data", bulk("\r\n$99999999999\r\n*99999\r\n"), true},
		{"pubsub message", "*3\r\n" + bulk("message") + bulk("tokengate:v1:revocations") + bulk(strings.Repeat("r", revocationLen)), true},
		{"pong", "*2\r\n" + bulk("pong") + bulk(""), true},
		{"nested", "*2\r\n*0\r\n*1\r\n*1\r\n:1\r\n+after\r\n", true},
		{"deepest", strings.Repeat("*1\r\n", maxReplyDepth) + ":1\r\n" + strings.Repeat("*1\r\n", maxReplyDepth) + ":1\r\n", true},
		{"bulk too large", "$" + strconv.Itoa(maxReplyBulk+1) + "\r\n", false},
		{"bulk far too large", "$9000000000000000000000\r\n", false},
		{"after a good reply", bulk("x") + "$" + strconv.Itoa(maxReplyBulk+1) + "\r\n", false},
		{"array too long", "*" + strconv.Itoa(maxReplyCount+1) + "\r\n", false},
		{"inside an array", "*2\r\n:1\r\n*9000000000000000000\r\n", false},
		{"too deep", strings.Repeat("*1\r\n", maxReplyDepth+1), false},
		{"line too long", "+" + strings.Repeat("a", maxReplyLine+1), false},
		{"not RESP2", "%1\r\n", false},
		{"very negative", "$-99999999999999999999\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var whole replyBounds
			if err := whole.scan([]byte(tc.stream)); (err == nil) != tc.ok {
				t.Errorf("whole: err = %v, want ok %v", err, tc.ok)
			}
			var bytewise replyBounds
			var err error
			for i := 0; i < len(tc.stream) && err == nil; i++ {
				err = bytewise.scan([]byte{tc.stream[i]})
			}
			if (err == nil) != tc.ok {
				t.Errorf("a byte at a time: err = %v, want ok %v", err, tc.ok)
			}
			if tc.ok && (whole.bulk != 0 || whole.inLine || len(whole.open) != 0) {
				t.Errorf("after a complete stream: %+v, want between replies", whole)
			}
		})
	}
}

// FuzzReplyBounds: replyBounds never panics, never holds more open arrays
// than maxReplyDepth, and gives the same verdict on a stream however the
// reads split it.
func FuzzReplyBounds(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "$3\r\nabc\r\n*2\r\n:1\r\n$-1\r\n", "*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "$99999999\r\n", "%1\r\n", "*3\r\n$7\r\nmessage\r\n"} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16) {
		var whole replyBounds
		wantErr := whole.scan(stream) != nil
		if len(whole.open) > maxReplyDepth {
			t.Fatalf("%d open arrays", len(whole.open))
		}
		at := int(cut) % (len(stream) + 1)
		var split replyBounds
		err := split.scan(stream[:at])
		if err == nil {
			err = split.scan(stream[at:])
		}
		if (err != nil) != wantErr {
			t.Fatalf("%q: whole err %v, split at %d err %v", stream, wantErr, at, err)
		}
	})
}

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

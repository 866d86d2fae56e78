package sharedcache

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// Bounds on a reply from Redis. go-redis allocates what a reply's header
// announces before it reads the bytes ("$9000000000" is a 9 GB make, a
// larger one a panic), nests arrays as deep as it is told, and reads a line
// until its end however long: a server that is not Redis, or anything
// between tokengate and Redis, could crash the process with one reply.
// boundConn refuses a reply past these bounds before go-redis sees it, and
// the call fails (a miss) on a connection that is then dropped.
const (
	// maxReplyBulk bounds one bulk string. The largest this package reads
	// is GETRANGE's maxValueSize+1 bytes; a revocation message is 65.
	maxReplyBulk = 4 * maxValueSize
	// maxReplyLine bounds one line: a status, an error, an integer, or a
	// header.
	maxReplyLine = 4 * maxValueSize
	// maxReplyCount bounds the elements of one array (HELLO's is 14).
	maxReplyCount = 64
	// maxReplyDepth bounds the nesting of arrays (HELLO's is 2).
	maxReplyDepth = 4
)

var errReplyBounds = errors.New("sharedcache: reply from redis exceeds this client's bounds (not a Redis reply this package asked for); connection dropped")

// boundDialer wraps dial so that every connection it makes is a boundConn.
func boundDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return boundConn(conn), nil
	}
}

// boundConn returns conn with its reads checked against the reply bounds.
// It keeps conn's syscall.Conn, through which go-redis peeks (never reads)
// at an idle connection to tell whether it is still alive.
func boundConn(conn net.Conn) net.Conn {
	bc := &boundedConn{Conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		return &boundedSyscallConn{boundedConn: bc, sc: sc}
	}
	return bc
}

// boundedConn is a connection to Redis whose reads pass through replyBounds.
type boundedConn struct {
	net.Conn
	b replyBounds
}

// Read reads from the connection and checks what it read; a reply past the
// bounds closes the connection and fails the read, so go-redis never sees
// the header that announces it.
func (c *boundedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if berr := c.b.scan(p[:n]); berr != nil {
		_ = c.Conn.Close()
		return 0, berr
	}
	return n, err
}

type boundedSyscallConn struct {
	*boundedConn
	sc syscall.Conn
}

func (c *boundedSyscallConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }

// replyBounds follows the RESP2 framing of the bytes read from one
// connection (tokengate speaks RESP2 only: Config.redisOptions) and reports
// the first reply that breaks a bound. It is not a parser: go-redis parses;
// this only tracks where each element starts and how long it is.
type replyBounds struct {
	bulk    int   // bytes of the current bulk string, CRLF included, still to come
	inLine  bool  // inside the line that follows a type byte
	typ     byte  // that type byte
	lineLen int   // bytes of the line so far
	n       int   // the number of a '$' or '*' header so far
	neg     bool  // the header's number is negative (a nil)
	open    []int // elements still due in each array being read, innermost last
}

func (b *replyBounds) scan(p []byte) error {
	for i := 0; i < len(p); {
		switch {
		case b.bulk > 0:
			k := min(b.bulk, len(p)-i)
			b.bulk -= k
			i += k
			if b.bulk == 0 {
				b.element()
			}
		case !b.inLine:
			switch p[i] {
			case '+', '-', ':', '$', '*':
			default:
				return errReplyBounds // not RESP2
			}
			b.typ, b.inLine, b.lineLen, b.n, b.neg = p[i], true, 0, 0, false
			i++
		default:
			c := p[i]
			i++
			if b.lineLen++; b.lineLen > maxReplyLine {
				return errReplyBounds
			}
			if c == '\n' {
				if err := b.endLine(); err != nil {
					return err
				}
				continue
			}
			if b.typ != '$' && b.typ != '*' {
				continue
			}
			switch {
			case c == '-' && b.lineLen == 1:
				b.neg = true
			case '0' <= c && c <= '9':
				b.n = b.n*10 + int(c-'0')
				limit := maxReplyBulk
				if b.typ == '*' {
					limit = maxReplyCount
				}
				if b.n > limit { // negative: only -1 (nil) is RESP
					return errReplyBounds
				}
			}
		}
	}
	return nil
}

// endLine ends the line of a type byte: a bulk string's bytes or an array's
// elements follow, or the element is complete.
func (b *replyBounds) endLine() error {
	b.inLine = false
	switch {
	case b.neg:
	case b.typ == '$':
		b.bulk = b.n + 2
		return nil
	case b.typ == '*' && b.n > 0:
		if len(b.open) == maxReplyDepth {
			return errReplyBounds
		}
		b.open = append(b.open, b.n)
		return nil
	}
	b.element()
	return nil
}

// element counts one complete element against the arrays it closes.
func (b *replyBounds) element() {
	for len(b.open) > 0 {
		last := len(b.open) - 1
		if b.open[last]--; b.open[last] > 0 {
			return
		}
		b.open = b.open[:last]
	}
}

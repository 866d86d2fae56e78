package app

import (
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tokengate/tokengate/config"
)

// NewLogger builds tokengate's logger: JSON lines, or console lines under
// --dev (LOG_FORMAT), at LOG_LEVEL, to w. The caller calls Sync before
// exiting.
func NewLogger(cfg config.Config, w io.Writer) *zap.Logger {
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil { // config validated it
		level = zapcore.InfoLevel
	}
	var enc zapcore.Encoder
	if cfg.LogFormat == config.LogConsole {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	sink := zapcore.Lock(zapcore.AddSync(w))
	return zap.New(zapcore.NewCore(enc, sink, level), zap.ErrorOutput(sink))
}

// fasthttpLogger sends fasthttp's own messages (connection errors) to zap.
// Its errors about unparsable requests quote the offending bytes — a
// malformed header line, which may be the Authorization header itself —
// so an error argument is logged only up to its first quote.
type fasthttpLogger struct{ log *zap.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	if ce := l.log.Check(zap.DebugLevel, "tokengate: fasthttp"); ce != nil {
		safe := make([]any, len(args))
		for i, a := range args {
			safe[i] = a
			if err, ok := a.(error); ok {
				msg := err.Error()
				if q := strings.IndexByte(msg, '"'); q >= 0 {
					msg = msg[:q] + "(request bytes withheld)"
				}
				safe[i] = msg
			}
		}
		ce.Write(zap.String("detail", fmt.Sprintf(format, safe...)))
	}
}

package promtext

import (
	"math"
	"strconv"
)

// ContentType is the Content-Type of a response in this format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Type is a metric family's type, as its TYPE line spells it.
type Type string

// The family types tokengate uses.
const (
	Counter Type = "counter" // only grows; by convention the name ends in _total
	Gauge   Type = "gauge"   // goes up and down
	Untyped Type = "untyped" // anything else
)

// AppendHeader appends the "# HELP" and "# TYPE" lines of the family
// name, escaping help as the format requires (backslash and newline). name
// must be a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*); it is not
// checked.
func AppendHeader(dst []byte, name string, typ Type, help string) []byte {
	dst = append(dst, "# HELP "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = appendEscaped(dst, help, false)
	dst = append(dst, "\n# TYPE "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, typ...)
	return append(dst, '\n')
}

// AppendSample appends one sample line: name, then labels, given as
// name, value pairs (a trailing odd name is ignored), in braces, then v as
// AppendFloat spells it. Label values are escaped (backslash, double
// quote, newline); label names must be valid ([a-zA-Z_][a-zA-Z0-9_]*) and
// are not checked.
func AppendSample(dst []byte, name string, v float64, labels ...string) []byte {
	dst = appendSeries(dst, name, labels)
	return append(AppendFloat(dst, v), '\n')
}

// AppendUintSample is AppendSample for an integer value, written exactly
// however large (a counter).
func AppendUintSample(dst []byte, name string, v uint64, labels ...string) []byte {
	dst = appendSeries(dst, name, labels)
	return append(strconv.AppendUint(dst, v, 10), '\n')
}

// AppendIntSample is AppendSample for a signed integer value, written
// exactly however large (a count or a Unix time in a gauge).
func AppendIntSample(dst []byte, name string, v int64, labels ...string) []byte {
	dst = appendSeries(dst, name, labels)
	return append(strconv.AppendInt(dst, v, 10), '\n')
}

// AppendCounter appends a whole counter family of one unlabelled sample:
// its HELP and TYPE lines, then v.
func AppendCounter(dst []byte, name, help string, v uint64) []byte {
	dst = AppendHeader(dst, name, Counter, help)
	return AppendUintSample(dst, name, v)
}

// AppendGauge appends a whole gauge family of one unlabelled integer
// sample: its HELP and TYPE lines, then v. A gauge with a fractional
// value is AppendHeader, then AppendSample.
func AppendGauge(dst []byte, name, help string, v int64) []byte {
	dst = AppendHeader(dst, name, Gauge, help)
	return AppendIntSample(dst, name, v)
}

// AppendFloat appends v as the format spells a value: integral values
// without fraction or exponent up to 2^53 in magnitude (where float64
// stops holding every integer), NaN, +Inf and -Inf as Go's ParseFloat
// reads them, anything else in the shortest form that reads back as v.
func AppendFloat(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	case v == math.Trunc(v) && math.Abs(v) <= 1<<53:
		return strconv.AppendInt(dst, int64(v), 10)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// appendSeries appends name, the label pairs in braces if there are any,
// and the space before the value.
func appendSeries(dst []byte, name string, labels []string) []byte {
	dst = append(dst, name...)
	if len(labels) >= 2 {
		dst = append(dst, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, labels[i]...)
			dst = append(dst, '=', '"')
			dst = appendEscaped(dst, labels[i+1], true)
			dst = append(dst, '"')
		}
		dst = append(dst, '}')
	}
	return append(dst, ' ')
}

// appendEscaped appends s with backslash and newline escaped, and double
// quote too when quoted (a label value).
func appendEscaped(dst []byte, s string, quoted bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			dst = append(dst, '\\', '\\')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '"' && quoted:
			dst = append(dst, '\\', '"')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// Package promtext renders metrics in the Prometheus text exposition
// format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// It is the one encoder of that format in tokengate: each component
// renders its own metric families through it (an AppendMetrics method
// beside the counters it owns), and cmd/server only puts the pieces in
// order. It owns the spelling: HELP and TYPE lines, HELP and label-value
// escaping, and numbers (integers exactly, floats, +Inf, -Inf, NaN).
// What it leaves to callers: valid metric and label names, one HELP and
// TYPE per family before its samples, and a stable order.
//
// Every function appends to dst and returns the extended slice, in the
// manner of strconv.AppendInt; none allocates beyond growing dst. It
// imports only the standard library.
package promtext

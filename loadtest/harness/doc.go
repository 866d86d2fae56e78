// Package harness drives load against a target and measures it: the load
// models (closed loop and open loop), HDR-histogram recording, and the
// reports (terminal table, JSON, latency chart).
//
// It knows nothing about tokengate: a scenario hands it a NewRequest that
// performs one request and returns the HTTP status. In the open loop a
// request that could not be sent on time because every worker was busy has
// its latency recorded from its intended send time, so a stalled target
// shows up in the percentiles instead of silently lowering the request rate
// (no coordinated omission); the load generator's own timer lateness is not
// counted. Every run is bounded: warm-up, duration and a grace
// period after which in-flight requests are cancelled.
package harness

// Command loadtest measures tokengate over real loopback TCP and compares
// local, remote and hybrid validation.
//
// By default it starts the development issuer in-process and, per
// scenario, a fresh tokengate (cmd/server/app, wired like the binary) in a
// child process of its own: the loadtest binary re-executes itself, so that
// the server's CPU time (getrusage in the child) is measured apart from the
// load generator's and reported per request. It runs the scenarios
// baseline, local-cached (16 cached tokens in turn, so that a connection
// seldom repeats one), local-cached-1 (one token, as a keep-alive client
// sends it), forward-auth (a cached decision on /auth/forward under a
// policy), local-unique, remote, remote-cached, hybrid and
// remote-shared (-replicas tokengates sharing a Redis second level; these
// run in-process), the last four at each simulated distance to the
// authorization server (-distances: loopback, and 20ms injected into every
// introspection). With -nginx it starts real nginx on a loopback port in
// front of an upstream written in Go instead, and compares the path
// without auth (nginx) with the path through auth_request to tokengate
// (nginx-auth). With -url it targets a tokengate that is already running
// on this machine instead (loopback addresses only) and runs baseline and
// items. -baseline-fasthttp adds a bare fasthttp server answering the same
// requests with the same body, the cost of HTTP with no tokengate at all;
// -rounds repeats the scenarios interleaved, and a second table gives each
// scenario's throughput and CPU per request relative to GET / and to bare
// fasthttp, the median over rounds.
//
// Load comes in two models (-model): closed loop, N connections as fast as
// they can go; and open loop, a fixed request rate where a request that
// could not go out on time because every connection was busy has its
// latency measured from its intended send time (no coordinated omission).
// Latencies go into HDR histograms. Every run is bounded (-warmup,
// -duration, -timeout, -max-total) and prints a progress line to stderr
// every second, a table to stdout at the end, and writes a JSON report and a
// latency chart.
//
// Run `go run ./loadtest -h` for the options.
package main

#!/usr/bin/env bash
# Runs every k6 script of loadtest/k6 through the Node.js shim against a real
# `tokengate --dev`, once per validation mode, and fails if any script fails.
# Needs go, node (>= 20) and curl. Bounded: the server gets 60 s to become
# ready, each script 120 s; the server is stopped on exit, whatever happens.
#
#   loadtest/k6shim/ci.sh
#
# Environment:
#   K6SHIM_MODES       validation modes to test   (local remote hybrid)
#   K6SHIM_ITERATIONS  iterations per script      (3)
#   K6SHIM_P95_MS, K6SHIM_P99_MS  latency thresholds passed to the scripts
#                      (2000, 5000: CI machines are shared; the shim proves
#                      the scripts right, not the server fast)
set -euo pipefail

cd "$(dirname "$0")/../.."
modes=${K6SHIM_MODES:-local remote hybrid}
iterations=${K6SHIM_ITERATIONS:-3}
p95=${K6SHIM_P95_MS:-2000}
p99=${K6SHIM_P99_MS:-5000}

tmp=$(mktemp -d)
server_pid=""
stop_server() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=""
	fi
}
cleanup() {
	stop_server
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "k6 shim CI: building tokengate"
go build -o "$tmp/tokengate" ./cmd/server

free_port() {
	node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

status=0
for mode in $modes; do
	port=$(free_port)
	base="http://127.0.0.1:$port"
	args=(--dev --listen "127.0.0.1:$port" --validation-mode "$mode")
	if [ "$mode" = remote ]; then
		args+=(--introspection-cache-ttl 0) # every request introspected
	fi
	echo "k6 shim CI: tokengate ${args[*]}"
	"$tmp/tokengate" "${args[@]}" >"$tmp/server-$mode.log" 2>&1 &
	server_pid=$!

	ready=0
	for _ in $(seq 1 600); do
		if curl -fsS -o /dev/null --max-time 1 "$base/readyz" 2>/dev/null; then
			ready=1
			break
		fi
		if ! kill -0 "$server_pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	if [ "$ready" != 1 ]; then
		echo "k6 shim CI: tokengate ($mode) did not become ready; its log:"
		cat "$tmp/server-$mode.log"
		exit 1
	fi

	for script in loadtest/k6/*.js; do
		if ! timeout 120 node loadtest/k6shim/run.mjs --iterations "$iterations" \
			-e "BASE_URL=$base" -e "P95_MS=$p95" -e "P99_MS=$p99" "$script"; then
			echo "k6 shim CI: FAILED: $script ($mode mode)"
			status=1
		fi
	done
	stop_server
done

if [ "$status" = 0 ]; then
	echo "k6 shim CI: all scripts passed"
else
	echo "k6 shim CI: some scripts failed"
fi
exit "$status"

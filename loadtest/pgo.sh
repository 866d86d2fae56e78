#!/usr/bin/env bash
# pgo.sh writes cmd/server/default.pgo, the CPU profile from which go build
# optimises tokengate (profile-guided optimisation: go build and go test
# use a main package's default.pgo by themselves, -pgo=auto). The profile
# is of the paths a deployment spends its CPU on, under wrk over loopback
# TCP against tokengate --dev, in this order within one profile:
#
#   half the time   GET /items with one cached token (a keep-alive client)
#   a third         GET /auth/forward, a proxy's cached decision
#   the rest        GET / (public)
#
# The server is built from the tree as it stands (with the current
# default.pgo, if any: a profile from an optimised build is as good, Go's
# PGO is iterative) and profiled through ADMIN_ADDR's /debug/pprof/.
# Everything listens on 127.0.0.1 and is stopped on exit. Needs wrk and
# curl; run it from the repository root after changing the hot paths, and
# commit the new profile with the change (make pgo):
#
#   loadtest/pgo.sh [seconds]     (default: 30)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-30}
need_wrk
# Three wrk runs of a whole number of seconds each, the last at least 1.
[ "$secs" -ge 10 ] 2>/dev/null || { echo "pgo: seconds must be a whole number, at least 10" >&2; exit 2; }

scratch

go build -o "$dir/tokengate" ./cmd/server

port=$(free_port)
admin=$(free_port)
LISTEN_ADDR=127.0.0.1:$port ADMIN_ADDR=127.0.0.1:$admin "$dir/tokengate" --dev >"$dir/tokengate.log" 2>&1 &
pids+=("$!")
wait_healthy "$port" "$dir/tokengate.log"

token=$(dev_token "$port")
auth="Authorization: Bearer $token"
expect_status 200 "http://127.0.0.1:$port/items" -H "$auth"
fwd=(-H "$auth" -H "X-Forwarded-Method: GET" -H "X-Forwarded-Proto: https"
	-H "X-Forwarded-Host: api.example" -H "X-Forwarded-Uri: /items")
expect_status 200 "http://127.0.0.1:$port/auth/forward" "${fwd[@]}"

curl -sf -o "$dir/cpu.pprof" "http://127.0.0.1:$admin/debug/pprof/profile?seconds=$secs" &
prof=$!
sleep 0.5 # the profile has begun
wrk -t2 -c64 -d"$((secs / 2))s" -H "$auth" "http://127.0.0.1:$port/items" >/dev/null
wrk -t2 -c64 -d"$((secs / 3))s" "${fwd[@]}" "http://127.0.0.1:$port/auth/forward" >/dev/null
wrk -t2 -c64 -d"$((secs - secs / 2 - secs / 3 - 1))s" "http://127.0.0.1:$port/" >/dev/null
wait "$prof" || { echo "pgo: the profile could not be read" >&2; exit 1; }

go tool pprof -top -nodecount=1 "$dir/cpu.pprof" >/dev/null 2>&1 || { echo "pgo: the profile does not parse" >&2; exit 1; }
cp "$dir/cpu.pprof" cmd/server/default.pgo
echo "pgo: wrote cmd/server/default.pgo ($(wc -c <cmd/server/default.pgo) bytes, ${secs}s of profile)"

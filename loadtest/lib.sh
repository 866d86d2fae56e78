# lib.sh is what the wrk scripts beside it (wrk-rounds.sh, wrk-ab.sh,
# pgo.sh) share for running tokengate --dev on loopback; they source it.
# Every function prints its error to stderr as "$prog: …" (prog is the
# sourcing script's name) and fails rather than exiting, so that the
# caller's trap still stops what it started.

prog=$(basename "$0" .sh)

# free_port prints a free loopback TCP port: bind port 0, read what was
# given.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_healthy PORT LOG waits up to 10 s for tokengate on PORT to answer
# /healthz; on failure it prints LOG, the server's output.
wait_healthy() {
	local port=$1 log=$2
	for _ in $(seq 1 50); do
		curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "$prog: tokengate on port $port did not come up" >&2
	cat "$log" >&2
	return 1
}

# dev_token PORT prints an access token from tokengate --dev's /token (the
# development client's credentials).
dev_token() {
	local body
	body=$(curl -sf -X POST "http://127.0.0.1:$1/token" -u dev-client:dev-secret) ||
		{ echo "$prog: POST /token on port $1 failed" >&2; return 1; }
	sed -E 's/.*"access_token":"([^"]+)".*/\1/' <<<"$body"
}

# expect_status CODE URL [CURL ARGS...] fails unless a GET of URL answers
# CODE.
expect_status() {
	local want=$1 url=$2 got
	shift 2
	got=$(curl -s -o /dev/null -w '%{http_code}' "$url" "$@")
	[ "$got" = "$want" ] || { echo "$prog: GET $url answered $got, want $want" >&2; return 1; }
}

# cpu_ticks PID prints the CPU time process PID has used, user + system,
# in clock ticks (getconf CLK_TCK a second).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# need_wrk exits with 2 unless wrk is installed.
need_wrk() {
	command -v wrk >/dev/null || { echo "$prog: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
}

# scratch sets dir, a directory removed on exit, and pids, the processes
# killed on exit (add each with pids+=("$!")).
scratch() {
	dir=$(mktemp -d)
	pids=()
	trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
}

# wrk_cpu PID SECONDS URL [WRK ARGS...] runs wrk -t2 -c64 against URL
# for SECONDS and prints "REQ/S CPU-µs-PER-REQUEST", the second from
# process PID's CPU time around the run; it fails if any answer was not
# 2xx.
wrk_cpu() {
	local pid=$1 secs=$2 url=$3 c0 c1 out
	shift 3
	c0=$(cpu_ticks "$pid")
	out=$(wrk -t2 -c64 -d"${secs}s" "$@" "$url")
	c1=$(cpu_ticks "$pid")
	if grep -q "Non-2xx" <<<"$out"; then
		echo "$prog: $url answered with non-2xx statuses" >&2
		return 1
	fi
	awk -v a="$c0" -v b="$c1" -v t="$(getconf CLK_TCK)" '
		/requests in/ { n = $1 }
		/Requests\/sec/ { rps = $2 }
		END { printf "%s %.3f\n", rps, (b - a) * 1e6 / t / n }' <<<"$out"
}

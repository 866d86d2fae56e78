#!/usr/bin/env bash
# wrk-ab.sh compares tokengate builds the way wrk-rounds.sh measures one:
# wrk over loopback TCP, each server's CPU time read from /proc/PID/stat
# around each run, rounds interleaved with the order rotating. Each build
# runs as two processes (tokengate --dev, each with its own token), since
# two processes of one build differ by a few per cent on a shared VM: the
# gap between a build's two copies is printed as its noise.
#
#   loadtest/wrk-ab.sh [-r rounds] [-s seconds] [-p path] BINARY...
#
# BINARY is a built server (go build -o /tmp/new ./cmd/server; the first
# is the reference); path is what wrk requests, with the token (default
# /items). It prints every run, then per build the median over rounds of
# its CPU per request and req/s against the reference's (the mean of both
# copies within a round), and the median gap between its copies. Every
# server listens on 127.0.0.1 and is stopped on exit. Needs wrk and curl.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rounds=8 secs=5 path=/items
while getopts "r:s:p:" o; do
	case $o in
	r) rounds=$OPTARG ;;
	s) secs=$OPTARG ;;
	p) path=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: wrk-ab.sh [-r rounds] [-s seconds] [-p path] BINARY..." >&2; exit 2; }
need_wrk
for b in "$@"; do [ -x "$b" ] || { echo "wrk-ab: $b is not an executable" >&2; exit 2; }; done
scratch

declare -A port pid token
names=()
for i in $(seq 1 $#); do
	bin=${!i}
	for copy in a b; do
		n="$i$copy"
		names+=("$n")
		port[$n]=$(free_port)
		LISTEN_ADDR=127.0.0.1:${port[$n]} "$bin" --dev >"$dir/$n.log" 2>&1 &
		pid[$n]=$!
		pids+=("${pid[$n]}")
		wait_healthy "${port[$n]}" "$dir/$n.log"
		token[$n]=$(dev_token "${port[$n]}")
		expect_status 200 "http://127.0.0.1:${port[$n]}$path" -H "Authorization: Bearer ${token[$n]}"
	done
	echo "build $i: $bin"
done

echo "round process req/s cpu_us_per_req"
count=${#names[@]}
for r in $(seq 1 "$rounds"); do
	for k in $(seq 0 $((count - 1))); do
		n=${names[$(((k + r) % count))]}
		m=$(wrk_cpu "${pid[$n]}" "$secs" "http://127.0.0.1:${port[$n]}$path" -H "Authorization: Bearer ${token[$n]}")
		echo "$r $n $m" | tee -a "$dir/results"
	done
done

awk -v builds=$# '
	{ rps[$1, $2] = $3; cpu[$1, $2] = $4; if ($1 > rounds) rounds = $1 }
	function median(a, n,   i, j, t) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		print ""
		print "median over " rounds " rounds, against build 1 (both copies averaged within each round):"
		for (b = 1; b <= builds; b++) {
			for (i = 1; i <= rounds; i++) {
				c[i] = (cpu[i, b "a"] + cpu[i, b "b"]) / (cpu[i, "1a"] + cpu[i, "1b"])
				q[i] = (rps[i, b "a"] + rps[i, b "b"]) / (rps[i, "1a"] + rps[i, "1b"])
				g[i] = cpu[i, b "a"] / cpu[i, b "b"]; if (g[i] < 1) g[i] = 1 / g[i]
			}
			printf "build %d   cpu/req %.3fx   req/s %.3fx   gap between its copies %.1f %%\n", b, median(c, rounds), median(q, rounds), (median(g, rounds) - 1) * 100
		}
	}' "$dir/results"

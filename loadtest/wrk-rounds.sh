#!/usr/bin/env bash
# wrk-rounds.sh measures what issue 13 measures, the way a user would: wrk
# over loopback TCP against three servers in interleaved rounds (the order
# rotating from round to round), each server's CPU time read from
# /proc/PID/stat around each wrk run:
#
#   fasthttp  a bare fasthttp server (fasthttp.Server defaults) answering
#             GET /items with tokengate's body: no tokengate at all
#   root      tokengate --dev, GET / (public)
#   items     tokengate --dev, GET /items with one cached token
#
# It prints every run, then the medians over rounds of the per-round ratios
# items/fasthttp, root/fasthttp and items/root, for CPU per request and
# requests per second. Everything listens on 127.0.0.1 and is stopped on
# exit. Needs wrk, curl and awk; run it from the repository root:
#
#   loadtest/wrk-rounds.sh [rounds] [seconds]     (defaults: 6 rounds, 6 s)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rounds=${1:-6}
secs=${2:-6}
need_wrk
scratch

go build -o "$dir/tokengate" ./cmd/server
go build -o "$dir/loadtest" ./loadtest

port=$(free_port)
LISTEN_ADDR=127.0.0.1:$port "$dir/tokengate" --dev >"$dir/tokengate.log" 2>&1 &
tg=$!
pids+=("$tg")

# The bare fasthttp server is the load test's server child; it serves until
# its stdin closes, so the fifo is held open by this script.
mkfifo "$dir/in"
TOKENGATE_LOADTEST_SERVE=fasthttp "$dir/loadtest" <"$dir/in" >"$dir/fasthttp.out" 2>&1 &
fh=$!
pids+=("$fh")
exec 3>"$dir/in"

wait_healthy "$port" "$dir/tokengate.log"
for _ in $(seq 1 50); do
	grep -q '^ready ' "$dir/fasthttp.out" && break
	sleep 0.2
done
fhaddr=$(sed -n 's/^ready //p' "$dir/fasthttp.out")
[ -n "$fhaddr" ] || { echo "wrk-rounds: the fasthttp server did not come up" >&2; exit 1; }

token=$(dev_token "$port")
expect_status 200 "http://127.0.0.1:$port/items" -H "Authorization: Bearer $token"

results="$dir/results"
echo "round server req/s cpu_us_per_req"
for r in $(seq 1 "$rounds"); do
	case $((r % 3)) in
	1) order="fasthttp root items" ;;
	2) order="items fasthttp root" ;;
	0) order="root items fasthttp" ;;
	esac
	for s in $order; do
		case $s in
		fasthttp) url="http://$fhaddr/items" pid=$fh ;;
		root) url="http://127.0.0.1:$port/" pid=$tg ;;
		items) url="http://127.0.0.1:$port/items" pid=$tg ;;
		esac
		m=$(wrk_cpu "$pid" "$secs" "$url" -H "Authorization: Bearer $token")
		echo "$r $s $m" | tee -a "$results"
	done
done

# Medians of the per-round ratios.
awk '
	{ rps[$1, $2] = $3; cpu[$1, $2] = $4; if ($1 > rounds) rounds = $1 }
	function median(a, n,   i, j, t) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function ratio(x, y, what,   r, c, i) {
		for (i = 1; i <= rounds; i++) { r[i] = rps[i, x] / rps[i, y]; c[i] = cpu[i, x] / cpu[i, y] }
		printf "%-16s cpu/req %.3fx   req/s %.3fx\n", x "/" y, median(c, rounds), median(r, rounds)
	}
	END {
		print ""
		print "median over " rounds " rounds of the per-round ratios:"
		ratio("items", "fasthttp"); ratio("root", "fasthttp"); ratio("items", "root")
	}' "$results"

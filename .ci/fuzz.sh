#!/usr/bin/env bash
# Fuzzes every fuzz target of every package that has one, for FUZZTIME
# each, and says how long it took: `make fuzz` (10s) and `make fuzz-ci`
# (3s, run by .ci/run) call it.
#
#   .ci/fuzz.sh FUZZTIME
#
# Each package's instrumented test binary is built once (go test -c) and
# run once per target from the package's directory, as go test -fuzz
# would, with the same fuzz cache ($GOCACHE/fuzz/<import path>): building
# per target cost more than the fuzzing itself. The seed corpora (f.Add
# and each package's testdata/fuzz) also run in every `make test`; a
# failing input found here is written to testdata/fuzz of its package, to
# be committed with the fix.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime=${1:?usage: .ci/fuzz.sh FUZZTIME}
go=${GO:-go}
cache="$($go env GOCACHE)/fuzz"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fuzz_one DIR BIN TARGET CACHEDIR fuzzes one target. Go 1.26's fuzzing
# coordinator can fail a target with a bare "context deadline exceeded"
# when -fuzztime ends while a worker is busy, with no failing input
# (golang/go#75804, fixed in Go 1.27): such a run is tried once more, and
# only a second failure, or any failure that wrote an input or said
# anything else, fails CI.
fuzz_one() {
	local dir=$1 bin=$2 target=$3 cachedir=$4 out="$tmp/out"
	for attempt in 1 2; do
		if (cd "$dir" && "$bin" -test.run='^$' -test.fuzz="^${target}\$" -test.fuzztime="$fuzztime" \
			-test.fuzzcachedir="$cachedir") >"$out" 2>&1; then
			cat "$out"
			return 0
		fi
		cat "$out"
		if [ "$attempt" = 1 ] && grep -q '^    context deadline exceeded$' "$out" &&
			! grep -q 'Failing input written' "$out" &&
			[ "$(grep -c -e '^--- FAIL' -e '^    ' "$out")" = 2 ]; then
			echo "fuzz: $target: the fuzzing engine's deadline race (golang/go#75804), no failing input: trying once more"
			continue
		fi
		return 1
	done
}

start=$(date +%s)
n=0
for dir in $(grep -rl --include='*_test.go' --exclude-dir=node_modules '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	pkg=$($go list "$dir")
	bin="$tmp/${pkg//\//_}.test"
	$go test -c -fuzz=. -o "$bin" "$dir"
	for target in $(cd "$dir" && "$bin" -test.list '^Fuzz'); do
		echo "== $pkg $target"
		fuzz_one "$dir" "$bin" "$target" "$cache/$pkg"
		n=$((n + 1))
	done
done
echo "fuzz: $n targets, $fuzztime each, in $(($(date +%s) - start))s"

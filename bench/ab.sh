#!/usr/bin/env bash
# Compares two herald binaries the way docs/BENCHMARKS.md's A/B numbers were
# taken: each pair runs A, then B, each on a fresh data directory, under the
# same load generator (B's `herald bench`), and prints each run's Herald rows
# and the CPU ticks (1/100 s) the server process used for the same work.
# Alternating runs and fixed work are what make a change of a few percent
# visible on a noisy machine; compare ticks, and rates across pairs.
#
#   bench/ab.sh [-n PAIRS] A B [herald bench flags]
#   bench/ab.sh -n 3 ./herald.old ./herald.new --scenarios fanout --requests 100000
#   bench/ab.sh ./herald.old ./herald.new --scenarios logs --log-records 400000
#
# Environment: AB_HTTP (default 127.0.0.1:28090) and AB_KAFKA (default
# 127.0.0.1:29092), both on loopback; AB_ENV, extra environment for both
# servers (for example "HERALD_DELIVER_CONCURRENCY=16"); AB_ENV_A and AB_ENV_B
# for one of them only (an A/B of a setting on one binary).
# Linux only (it reads /proc/<pid>/stat).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

pairs=3
if [[ ${1:-} == -n ]]; then
	pairs=$2
	shift 2
fi
if [[ $# -lt 2 ]]; then
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
a=$1 b=$2
shift 2
http=${AB_HTTP:-127.0.0.1:28090}
kafka=${AB_KAFKA:-127.0.0.1:29092}
work=$(mktemp -d)
pid=
trap cleanup EXIT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # label binary extra-env [bench flags]
	local label=$1 bin=$2 extra=$3
	shift 3
	local data=$work/$label
	rm -rf "$data" && mkdir -p "$data"
	# shellcheck disable=SC2086 # AB_ENV holds VAR=value words
	start_herald "$bin" "$data" "$data/serve.log" "$http" "$kafka" ${AB_ENV:-} $extra
	local t0 t1
	t0=$(ticks "$pid")
	"$b" bench --server "http://$http" --token "$(cat "$data/admin.token")" "$@" 2>"$data/bench.err" |
		grep -E '^(accept|end to end|deliveries|logs): herald' | sed "s/^/$label  /" || true
	t1=$(ticks "$pid")
	echo "$label  cpu ticks: $((t1 - t0))"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
}

for i in $(seq "$pairs"); do
	echo "pair $i of $pairs"
	run A "$a" "${AB_ENV_A:-}" "$@"
	run B "$b" "${AB_ENV_B:-}" "$@"
done

#!/usr/bin/env bash
# Writes cmd/herald/default.pgo, the CPU profile `go build` uses for
# profile-guided optimization of herald (docs/BENCHMARKS.md, fix 38).
#
# Builds herald without a profile, starts `herald serve` on loopback with
# pprof on, and takes one CPU profile under each kind of load `herald bench`
# makes — one recipient per alert, fan-out 10 at a fixed rate, one alert to a
# big group, log ingest — then merges them. Takes about three minutes; run it
# on a quiet machine after changes to the hot paths, and commit the result.
#
#   bench/pgo.sh
#
# Environment: PGO_HTTP (default 127.0.0.1:28190), PGO_KAFKA (default
# 127.0.0.1:29192), PGO_PPROF (default 127.0.0.1:16190), all on loopback.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

root=$(cd "$(dirname "$0")/.." && pwd)
http=${PGO_HTTP:-127.0.0.1:28190}
kafka=${PGO_KAFKA:-127.0.0.1:29192}
pprof=${PGO_PPROF:-127.0.0.1:16190}
work=$(mktemp -d)
pid=
trap cleanup EXIT

echo "building herald without a profile" >&2
(cd "$root" && go build -pgo=off -o "$work/herald" ./cmd/herald)
start_herald "$work/herald" "$work/data" "$work/serve.log" "$http" "$kafka" HERALD_DEBUG_PPROF_ADDR="$pprof"
token=$(cat "$work/data/admin.token")

# profile NAME SECONDS DELAY BENCH-FLAGS...: starts the scenario, waits DELAY
# seconds for it to be under way, profiles for SECONDS, and waits for it.
profile() {
	local name=$1 seconds=$2 delay=$3
	shift 3
	echo "profiling: $name" >&2
	"$work/herald" bench --server "http://$http" --token "$token" "$@" >"$work/$name.out" 2>&1 &
	local bench=$!
	sleep "$delay"
	curl -sf -o "$work/$name.prof" "http://$pprof/debug/pprof/profile?seconds=$seconds"
	wait "$bench"
}
profile one-recipient 15 4 --scenarios accept --requests 200000 --duration 22s
profile fanout-10 15 4 --scenarios rates --rates 800 --fanout 10 --duration 22s
profile logs 6 2 --scenarios logs --log-records 400000
# The group scenario first creates its users; profile once the sending has
# begun (its progress line says so).
"$work/herald" bench --server "http://$http" --token "$token" --scenarios group --group-size 30000 \
	>"$work/group.out" 2>&1 &
bench=$!
echo "profiling: group" >&2
for _ in $(seq 600); do
	grep -q "notifications received" "$work/group.out" && break
	sleep 0.2
done
curl -sf -o "$work/group.prof" "http://$pprof/debug/pprof/profile?seconds=3"
wait "$bench"

go tool pprof -proto "$work"/one-recipient.prof "$work"/fanout-10.prof "$work"/logs.prof "$work"/group.prof \
	>"$root/cmd/herald/default.pgo"
echo "wrote cmd/herald/default.pgo ($(wc -c <"$root/cmd/herald/default.pgo") bytes)" >&2

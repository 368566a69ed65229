# Shell shared by bench/ab.sh and bench/pgo.sh; source it, do not run it.

# cleanup stops the server start_herald started (pid), if any, and removes
# the script's temporary directory (work). Scripts run it on exit.
cleanup() {
	if [[ -n ${pid:-} ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "${work:?}"
}

# start_herald BINARY DATA-DIR LOG HTTP KAFKA [VAR=value...] starts `herald
# serve` on loopback with the per-token rate limit off (and the given
# environment), sets pid to its process, and waits up to 30 s for /readyz.
# It exits the script, with the end of the server's log, when the server
# exits or does not become ready.
start_herald() {
	local bin=$1 data=$2 log=$3 http=$4 kafka=$5
	shift 5
	env HERALD_AUTH_RATE=0 "$@" "$bin" serve --data-dir "$data" --http-addr "$http" --kafka-addr "$kafka" \
		>"$log" 2>&1 &
	pid=$!
	for _ in $(seq 150); do
		curl -sf "http://$http/readyz" >/dev/null 2>&1 && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "herald serve exited; see its log:" >&2
			tail -5 "$log" >&2
			exit 1
		fi
		sleep 0.2
	done
	echo "herald serve was not ready within 30 s; see its log:" >&2
	tail -5 "$log" >&2
	exit 1
}

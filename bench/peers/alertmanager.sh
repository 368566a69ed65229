#!/usr/bin/env bash
# Measures Prometheus Alertmanager beside Herald with `herald bench`.
#
# Starts Alertmanager on loopback (temporary config and storage, clustering
# off) with one webhook receiver pointing at the benchmark's receiver, routed
# so that every unique alert is notified once and at once (group_by on the
# bench_id label every benchmark alert carries, group_wait 0s, no resolved
# notifications), runs `herald bench --peer alertmanager=... --rounds 3` with
# the arguments given to this script (Alertmanager restarted with empty
# storage before each round after the first), and stops Alertmanager.
#
# Installs Debian's prometheus-alertmanager when no Alertmanager is found and
# this runs as root.
#
#   bench/peers/alertmanager.sh --token "$(cat /tmp/hb/admin.token)" [herald bench flags]
#   bench/peers/alertmanager.sh --scenarios relay,peer     # Alertmanager alone, no Herald needed
#
# Environment: AM_PORT (default 19093) and RECEIVER_PORT (default 19095), both
# on 127.0.0.1; HERALD, the herald binary (default: built from this
# repository into the temporary directory); ALERTMANAGER, the binary.
set -euo pipefail

am_port=${AM_PORT:-19093}
receiver_port=${RECEIVER_PORT:-19095}
root=$(cd "$(dirname "$0")/../.." && pwd)

am=${ALERTMANAGER:-$(command -v alertmanager || command -v prometheus-alertmanager || true)}
if [[ -z $am ]]; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "installing prometheus-alertmanager" >&2
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null
		am=$(command -v prometheus-alertmanager)
	else
		echo "no alertmanager found: install prometheus-alertmanager or set ALERTMANAGER" >&2
		exit 1
	fi
fi

dir=$(mktemp -d -t herald-bench-am.XXXXXX)
cleanup() {
	if [[ -x $dir/start.sh ]]; then
		"$dir/start.sh" stop || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

herald=${HERALD:-}
if [[ -z $herald ]]; then
	herald=$dir/herald
	(cd "$root" && go build -o "$herald" ./cmd/herald)
fi

cat >"$dir/alertmanager.yml" <<EOF
route:
  receiver: bench
  group_by: ['bench_id']
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 24h
receivers:
  - name: bench
    webhook_configs:
      - url: http://127.0.0.1:$receiver_port/hook
        send_resolved: false
EOF

# start.sh stops the Alertmanager it started before, if any, and starts a
# fresh one (empty storage), waiting until it is ready; `start.sh stop` only
# stops it. The benchmark runs it before each round after the first
# (--between-rounds), so every round measures an Alertmanager that holds no
# earlier round's alerts.
cat >"$dir/start.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
if [[ -s "$dir/am.pid" ]]; then
	pid=\$(cat "$dir/am.pid")
	kill "\$pid" 2>/dev/null || true
	for _ in \$(seq 100); do
		kill -0 "\$pid" 2>/dev/null || break
		sleep 0.1
	done
	rm -f "$dir/am.pid"
fi
if [[ \${1:-} == stop ]]; then
	exit 0
fi
rm -rf "$dir/data"
"$am" --config.file="$dir/alertmanager.yml" --storage.path="$dir/data" \\
	--web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= \\
	--log.level=warn >>"$dir/alertmanager.log" 2>&1 </dev/null &
echo \$! >"$dir/am.pid"
for _ in \$(seq 100); do
	if curl -fsS "http://127.0.0.1:$am_port/-/ready" >/dev/null 2>&1; then
		exit 0
	fi
	if ! kill -0 "\$(cat "$dir/am.pid")" 2>/dev/null; then
		cat "$dir/alertmanager.log" >&2
		exit 1
	fi
	sleep 0.1
done
echo "alertmanager on 127.0.0.1:$am_port was not ready within 10 s" >&2
exit 1
EOF
chmod +x "$dir/start.sh"
"$dir/start.sh"
echo "$("$am" --version 2>&1 | head -1) on 127.0.0.1:$am_port (pid $(cat "$dir/am.pid"))" >&2

status=0
# Three rounds of Alertmanager and Herald's accept, alternating, each with a
# fresh Alertmanager, unless the arguments say otherwise (the last --rounds
# given counts).
"$herald" bench --peer "alertmanager=http://127.0.0.1:$am_port" --receiver-addr "127.0.0.1:$receiver_port" \
	--rounds 3 --between-rounds "$dir/start.sh" "$@" || status=$?
if [[ $status -ne 0 ]]; then
	echo "--- alertmanager log" >&2
	tail -20 "$dir/alertmanager.log" >&2
fi
exit $status

#!/usr/bin/env bash
# keyline's main job: an MBMS rekey burst against a local keylined, with a report.
#   bash tools/run-burst.sh [--ues N] [--window S] [--no-compare] [--out DIR]
# On a fresh Debian 12 machine (as root) it installs what it needs and builds (tools/setup.sh),
# writes a TEST population (N UEs, default 1,000,000, one key group whose new MSK becomes valid
# now), starts keylined on net_memif (--no-huge, one worker), runs keyline-burst as a second DPDK
# process (every UE asks for the new MSK at a random time inside the window, every answer
# verified), then the side-by-side benchmark ({DPDK, kernel socket} x {IPsec-MB, OpenSSL} at the
# same offered load, plus the crypto-only ceiling from bench/), and writes DIR (default report/):
# report.html, summary.md, burst.jsonl, compare.json. keylined is stopped with SIGTERM each time
# and must exit 0. Exit status: 0 when every UE got a verified key and every step worked.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ues=1000000
window=1
compare=1
out="$top/report"
while [ $# -gt 0 ]; do
	case "$1" in
	--ues) ues=$2; shift 2 ;;
	--window) window=$2; shift 2 ;;
	--no-compare) compare=0; shift ;;
	--out) out=$2; shift 2 ;;
	-h|--help) sed -n 2,13p "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run-burst: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case "$ues" in ''|*[!0-9]*) echo "run-burst: --ues wants a number" >&2; exit 2 ;; esac
[ "$ues" -ge 1 ] && [ "$ues" -le 10000000 ] || { echo "run-burst: --ues 1..10000000" >&2; exit 2; }

cd "$top"
tools/setup.sh build || { echo "run-burst: setup/build failed" >&2; exit 1; }
B="$top/build"
mkdir -p "$out"
work=$(mktemp -d /tmp/keyline-run.XXXXXX)
srv_pid=
cleanup() {
	if [ -n "$srv_pid" ] && kill -0 "$srv_pid" 2>/dev/null; then
		kill -TERM "$srv_pid" 2>/dev/null
		wait "$srv_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Table memory is about 230 bytes per UE; EAL memory covers it, the mbuf pools and headroom.
mem=$(( ues * 300 / 1048576 + 512 ))
period=3600
now=$(date +%s)
ntp_now=$(( now + 2208988800 + period / 2 )) # current MSK valid from now: the group rotates now
"$B/tools/keyline-population" --seed "$now" --ues "$ues" --groups 1 --emses 64 --imsis 64 \
	--appids 64 --period "$period" --now "$ntp_now" -o "$work/pop.txt" >/dev/null ||
	{ echo "run-burst: population failed" >&2; exit 1; }

run=0
# start_server IO CRYPTO: keylined in the background, waits for "ready"
start_server() {
	run=$((run + 1))
	local io=$1 crypto=$2 cfg="$work/k$run.yaml"
	{
		if [ "$io" = dpdk ]; then
			echo "ports:"
			echo "  - name: memif0"
			echo "    devargs: \"net_memif0,role=server,socket=$work/memif$run.sock\""
			echo "    queues: 1"
			echo "ipv4: [192.0.2.1]"
		else
			echo "ipv4: [127.0.0.1]"
			echo "udp_port: 22690"
		fi
		echo "server_identity: \"keyline.local\""
		echo "admin_socket: $work/admin$run.sock"
		echo "io: $io"
		echo "crypto: $crypto"
		echo "replay_cache: 4194304"
		echo "table: {ues: $ues, groups: 16, emses: 64, imsis: 64, appids: 64}"
	} >"$cfg"
	"$B/control/keylined" --no-huge --no-shconf -m "$mem" --no-pci --no-telemetry -l 0-1 \
		--log-level=error --file-prefix "klrun$$-$run" -- -c "$cfg" -p "$work/pop.txt" \
		>"$work/srv$run.out" 2>"$work/srv$run.err" &
	srv_pid=$!
	for _ in $(seq 1 600); do
		grep -q '^keylined: ready' "$work/srv$run.out" 2>/dev/null && return 0
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "run-burst: keylined ($io, $crypto) did not start:" >&2
	cat "$work/srv$run.err" >&2
	return 1
}

stop_server() {
	[ -n "$srv_pid" ] || return 0 # already stopped
	kill -TERM "$srv_pid" 2>/dev/null
	wait "$srv_pid"
	local rc=$?
	srv_pid=
	if [ $rc -ne 0 ]; then
		echo "run-burst: keylined exited with status $rc" >&2
		cat "$work/srv$run.err" >&2
		return 1
	fi
	return 0
}

# burst IO OUT ARGS...: keyline-burst against the running server
burst() {
	local io=$1 o=$2
	shift 2
	if [ "$io" = dpdk ]; then
		# The client keeps its memif port open after the run (--hold-s) until keylined has
		# stopped: DPDK 22.11's memif PMD can fault in a side still polling when its peer
		# disconnects, so the server always stops first.
		"$B/tools/keyline-burst" --no-huge --no-shconf -m "$mem" --no-pci --no-telemetry -l 0 \
			--log-level=error --file-prefix "klcli$$-$run" \
			--vdev "net_memif0,role=client,socket=$work/memif$run.sock" -- \
			--population "$work/pop.txt" --server-ip 192.0.2.1 --client-ip 192.0.2.100 \
			--sources 256 --hold-s 60 "$@" >"$o" 2>"$work/cli$run.err" &
		local cpid=$! rc
		for _ in $(seq 1 6000); do
			grep -q 'holding the port' "$work/cli$run.err" 2>/dev/null && break
			kill -0 "$cpid" 2>/dev/null || break
			sleep 0.05
		done
		stop_server || status=1
		wait "$cpid"
		rc=$?
		return $rc
	else
		"$B/tools/keyline-burst" --io socket --population "$work/pop.txt" \
			--server-ip 127.0.0.1 --server-port 22690 "$@" >"$o" 2>"$work/cli$run.err"
	fi
}

status=0
echo "keyline rekey burst: $ues UEs, window ${window}s, keylined on memif (1 worker core), ipsec-mb"
start_server dpdk ipsec-mb || exit 1
burst dpdk "$out/burst.jsonl" --mode burst --window "$window" --presign --timeout-ms 200 \
	--retries 4 --interval-ms 100
brc=$?
[ $brc -eq 0 ] || { echo "run-burst: keyline-burst reported failures (exit $brc)" >&2; status=1; }
grep -v '^keylined: ready' "$work/srv$run.out" >"$out/keylined-counters.txt"

compare_args=()
if [ $compare -eq 1 ]; then
	echo "side-by-side: {dpdk, socket} x {ipsec-mb, openssl}, max rate, same population"
	rows="$work/rows.jsonl"
	: >"$rows"
	n=$(( ues / 2 < 200000 ? ues / 2 : 200000 ))  # max-rate UEs; the 80% run takes the next ones
	for io in dpdk socket; do
		for crypto in ipsec-mb openssl; do
			start_server "$io" "$crypto" || { status=1; continue; }
			extra=(--presign --verify-after --interval-ms 0)
			[ "$io" = socket ] && extra+=(--inflight 256)
			# the most it answers, then the latency at 80% of that (p99 target: 50 us)
			burst "$io" "$work/max$run.jsonl" --mode max --ues "$n" "${extra[@]}" || status=1
			maxrun=$run
			stop_server || status=1
			rate=$(python3 -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1]) if x.startswith("{")]; print(int(0.8*(l[-1].get("answered_per_s") or 0)))' "$work/max$maxrun.jsonl" 2>/dev/null || echo 0)
			if [ "${rate:-0}" -gt 0 ]; then
				m=$(( rate * 2 < n ? rate * 2 : n ))  # about two seconds at 80%
				start_server "$io" "$crypto" || status=1
				burst "$io" "$work/r80$maxrun.jsonl" --mode rate --rate "$rate" --ues "$m" \
					--first "$n" "${extra[@]}" || status=1
			fi
			stop_server || status=1
			python3 - "$work/max$maxrun.jsonl" "$work/r80$maxrun.jsonl" "$io" "$crypto" "$rate" >>"$rows" <<'PY'
import json, sys
def last(path):
    try:
        lines = [json.loads(l) for l in open(path) if l.startswith('{')]
        return lines[-1] if lines else {}
    except OSError:
        return {}
mx, r8 = last(sys.argv[1]), last(sys.argv[2])
lat = r8.get('latency_us', {})
print(json.dumps({'config': f'{sys.argv[3]}+{sys.argv[4]}', 'io': sys.argv[3], 'crypto': sys.argv[4],
                  'server_cores': 1, 'requests_per_s': mx.get('answered_per_s'),
                  'ok': mx.get('ok'), 'failed': mx.get('failed'),
                  'load_80_per_s': int(sys.argv[5] or 0), 'p50_us': lat.get('p50'),
                  'p99_us': lat.get('p99'), 'failed_80': r8.get('failed')}))
PY
		done
	done
	"$B/bench/crypto_bench" --benchmark_filter='mbms_request_crypto/ipsec-mb/burst:32$' \
		--benchmark_min_time=0.5 --benchmark_format=json >"$work/ceiling.json" 2>/dev/null
	python3 - "$work/ceiling.json" "$rows" "$out/compare.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
try:
    b = [x for x in json.load(open(sys.argv[1]))['benchmarks'] if x.get('run_type') == 'iteration']
    rows.append({'config': 'crypto-only ceiling', 'io': 'none', 'crypto': 'ipsec-mb',
                 'server_cores': 1, 'requests_per_s': b[0]['items_per_second']})
except Exception as e:  # the table is still written; the ceiling row says why it is missing
    rows.append({'config': 'crypto-only ceiling', 'error': str(e)})
json.dump(rows, open(sys.argv[3], 'w'), indent=1)
PY
	compare_args=(--compare "$out/compare.json")
fi

"$top/tools/keyline-report" "$out/burst.jsonl" "${compare_args[@]}" -o "$out" ||
	{ echo "run-burst: report failed" >&2; status=1; }
echo "report: $out/report.html, $out/summary.md"
exit $status

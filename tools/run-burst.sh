#!/usr/bin/env bash
# keyline's main job: an MBMS rekey burst against a local keylined, with a report.
#   bash tools/run-burst.sh [--ues N] [--window S] [--no-compare] [--out DIR] [--build DIR]
# On a fresh Debian 12 machine (as root) it installs what it needs and builds (tools/setup.sh),
# writes a TEST population (N UEs, default 1,000,000, one key group whose new MSK becomes valid
# now), starts keylined on net_memif (--no-huge, one worker), runs keyline-burst as a second DPDK
# process (every UE asks for the new MSK at a random time inside the window, every answer
# verified), then the side-by-side benchmark ({DPDK, kernel socket} x {IPsec-MB, OpenSSL}, each
# three max-rate runs and one at 80 % of their median, plus the crypto-only ceiling from bench/
# in five repetitions), and writes DIR (default report/): report.html, summary.md, burst.jsonl,
# compare.json (median, min, max, n of every configuration). One line per phase, run and
# configuration as it finishes; keyline-burst's progress line when stderr is a terminal.
# --build DIR (or KL_BUILD): the build directory (default build). keylined is stopped with
# SIGTERM each time and must exit 0. Exit status: 0 when every UE got a verified key and every
# step worked.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ues=1000000
window=1
compare=1
out="$top/report"
build=${KL_BUILD:-build} # --build DIR or KL_BUILD: the build directory (made by setup.sh if new)
kl_flag() {
	[ "$1" = --no-compare ] && compare=0
}
. "$top/tools/lib-args.sh"
kl_args run-burst 15 "$@"

cd "$top"
tools/setup.sh "$build" || { echo "run-burst: setup/build failed" >&2; exit 1; }
B=$(cd "$build" && pwd)
mkdir -p "$out"
work=$(mktemp -d /tmp/keyline-run.XXXXXX)
rundir=/var/run/dpdk # EAL's runtime directories (as root; else under XDG_RUNTIME_DIR or /tmp)
[ "$(id -u)" -eq 0 ] || rundir=${XDG_RUNTIME_DIR:-/tmp}/dpdk
srv_pid=
cli_pid=
cleanup() {
	if [ -n "$cli_pid" ] && kill -0 "$cli_pid" 2>/dev/null; then
		kill -KILL "$cli_pid" 2>/dev/null
		wait "$cli_pid" 2>/dev/null
	fi
	if [ -n "$srv_pid" ] && kill -0 "$srv_pid" 2>/dev/null; then
		kill -TERM "$srv_pid" 2>/dev/null
		wait "$srv_pid" 2>/dev/null
	fi
	rm -rf "$work"
	# EAL runtime directories: keylined and keyline-burst remove their own at a clean exit;
	# these (this script's prefixes only) are what a killed one left, files (config,
	# fbarray_*) and all
	local d
	for d in "$rundir"/klrun$$-* "$rundir"/klcli$$-*; do
		[ -d "$d" ] || continue
		rm -f "$d"/* 2>/dev/null
		rmdir "$d" 2>/dev/null
	done
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

# burst IO OUT ARGS...: keyline-burst against the running server; with live=1 its stderr (and
# progress line) also goes to ours
live=0
burst() {
	local io=$1 o=$2
	shift 2
	if [ "$io" = dpdk ]; then
		# The client keeps its memif port open after the run (--hold-s) until keylined has
		# stopped: DPDK 22.11's memif PMD can fault in a side still polling when its peer
		# disconnects, so the server always stops first.
		local cmd=("$B/tools/keyline-burst" --no-huge --no-shconf -m "$mem" --no-pci
			--no-telemetry -l 0 --log-level=error --file-prefix "klcli$$-$run"
			--vdev "net_memif0,role=client,socket=$work/memif$run.sock" --
			--population "$work/pop.txt" --server-ip 192.0.2.1 --client-ip 192.0.2.100
			--sources 256 --hold-s 60 "$@")
		if [ $live -eq 1 ]; then
			"${cmd[@]}" --progress >"$o" 2> >(tee "$work/cli$run.err" >&2) &
		else
			"${cmd[@]}" >"$o" 2>"$work/cli$run.err" &
		fi
		local cpid=$! rc
		cli_pid=$cpid # killed by cleanup if the script is interrupted
		for _ in $(seq 1 6000); do
			grep -q 'holding the port' "$work/cli$run.err" 2>/dev/null && break
			kill -0 "$cpid" 2>/dev/null || break
			sleep 0.05
		done
		stop_server || status=1
		wait "$cpid"
		rc=$?
		cli_pid=
		return $rc
	else
		"$B/tools/keyline-burst" --io socket --population "$work/pop.txt" \
			--server-ip 127.0.0.1 --server-port 22690 "$@" >"$o" 2>"$work/cli$run.err"
	fi
}

status=0
t_job=$SECONDS
# say TEXT: one progress line, with the seconds since the job started
say() { printf '[%4ds] %s\n' $((SECONDS - t_job)) "$*"; }

# Figures from keyline-burst summaries (the last JSON line of a file) and the comparison rows.
cat >"$work/fig.py" <<'PY'
import json, statistics, sys

def last(path):
    try:
        lines = [json.loads(l) for l in open(path) if l.startswith('{')]
        return lines[-1] if lines else {}
    except (OSError, ValueError):
        return {}

def k(v):
    return f'{v / 1000:.0f} k/s' if v else '- (no figure)'

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == 'run':  # FILE: "answered/s run-seconds ok failed ues" of one run
    s = last(args[0])
    print(int(s.get('answered_per_s') or 0), f"{s.get('finished_s') or 0:.2f}", s.get('ok', 0),
          s.get('failed', 0), s.get('ues', 0))
elif cmd == 'burst':  # FILE: one line about the main burst
    s = last(args[0])
    lat = s.get('latency_us', {})
    done = s.get('complete_s')
    print(f"{s.get('ok', 0)} of {s.get('ues', 0)} UEs verified, {s.get('failed', 0)} failed, "
          f"{f'complete in {done:.2f} s' if done else 'not complete'}, "
          f"p99 {lat.get('p99', 0):.0f} us")
elif cmd == 'row':  # CONFIG IO CRYPTO RUNS_FILE R80_FILE LOAD80: a comparison row and a line
    cfg, io, crypto, runs_file, r80, load = args
    runs = [l.split() for l in open(runs_file) if l.strip()]
    rates = [int(r[0]) for r in runs if int(r[0]) > 0]
    secs = [float(r[1]) for r in runs]
    r8 = last(r80)
    lat = r8.get('latency_us', {})
    row = {'config': cfg, 'io': io, 'crypto': crypto, 'server_cores': 1,
           'runs': rates, 'run_s': secs, 'ues_per_run': [int(r[4]) for r in runs],
           'ok': sum(int(r[2]) for r in runs), 'failed': sum(int(r[3]) for r in runs),
           'load_80_per_s': int(load or 0), 'p50_us': lat.get('p50'), 'p99_us': lat.get('p99'),
           'p99.9_us': lat.get('p99.9'), 'failed_80': r8.get('failed')}
    if rates:
        row.update(requests_per_s=statistics.median(rates), n=len(rates),
                   requests_per_s_median=statistics.median(rates),
                   requests_per_s_min=min(rates), requests_per_s_max=max(rates))
        row['notes'] = (f'{len(rates)} max-rate runs of {min(secs):.1f}-{max(secs):.1f} s; '
                        f'latency at 80 % of the median')
    print(json.dumps(row))
    spread = f' (min {k(min(rates))}, max {k(max(rates))}, n={len(rates)})' if rates else ''
    p99 = f"{lat['p99']:.0f} us" if lat.get('p99') is not None else '-'
    print(f"{cfg}: median {k(row.get('requests_per_s'))}{spread}, p99 at 80 %: {p99}",
          file=sys.stderr)
elif cmd == 'ceiling':  # BENCH_JSON ROWS_FILE OUT: the ceiling row from the repetitions, compare.json
    rows = [json.loads(l) for l in open(args[1]) if l.strip()]
    name = 'mbms_request_crypto/ipsec-mb/burst:32'
    try:
        b = [x for x in json.load(open(args[0]))['benchmarks'] if x.get('run_type') == 'iteration']
        v = [x['items_per_second'] for x in b]
        if not v:
            raise ValueError('no repetitions in the benchmark output')
        rows.append({'config': 'crypto-only ceiling', 'role': 'ceiling', 'io': 'none',
                     'crypto': 'ipsec-mb', 'server_cores': 1, 'runs': v,
                     'requests_per_s': statistics.median(v), 'n': len(v),
                     'requests_per_s_median': statistics.median(v),
                     'requests_per_s_min': min(v), 'requests_per_s_max': max(v),
                     'source': f'crypto_bench {name}, {len(v)} repetitions'})
        print(f'crypto-only ceiling: median {k(statistics.median(v))} (min {k(min(v))}, '
              f'max {k(max(v))}, n={len(v)})', file=sys.stderr)
    except Exception as e:  # the table is still written; the ceiling row says why it is missing
        rows.append({'config': 'crypto-only ceiling', 'role': 'ceiling', 'error': str(e)})
        print(f'crypto-only ceiling: no figure ({e})', file=sys.stderr)
    json.dump(rows, open(args[2], 'w'), indent=1)
PY

say "keyline rekey burst: $ues UEs, window ${window}s, keylined on memif (1 worker core), ipsec-mb"
start_server dpdk ipsec-mb || exit 1
say "keylined ready ($ues UEs loaded); keyline-burst running"
[ -t 2 ] && live=1 # keyline-burst's progress line on our terminal
burst dpdk "$out/burst.jsonl" --mode burst --window "$window" --presign --timeout-ms 200 \
	--retries 4 --interval-ms 100
brc=$?
live=0
[ $brc -eq 0 ] || { echo "run-burst: keyline-burst reported failures (exit $brc)" >&2; status=1; }
say "burst: $(python3 "$work/fig.py" burst "$out/burst.jsonl")"
grep -v '^keylined: ready' "$work/srv$run.out" >"$out/keylined-counters.txt"

# compare_config IO CRYPTO: RUNS max-rate runs (a fresh keylined per run on memif, see burst();
# one keylined for all on kernel sockets), then one run at 80 % of their median for the latency;
# one row in rows.jsonl and a line per run and per configuration. The first run has a fixed size
# (about a second on a quiet 2-core VM: memif 0.4-0.9 M/s, sockets 100-150 k/s); the others are
# sized from its rate to last about RUN_S seconds (at most the population), so that a loaded
# machine does not stretch the job.
RUNS=3
RUN_S=2.5
UES_DPDK=600000
UES_SOCKET=150000
compare_config() {
	local io=$1 crypto=$2 cfg="$1+$2" n k fig rate=0 load m
	local extra=(--presign --verify-after --interval-ms 0) runs="$work/runs-$1-$2"
	[ "$io" = socket ] && extra+=(--inflight 256)
	: >"$runs"
	n=$([ "$io" = dpdk ] && echo $UES_DPDK || echo $UES_SOCKET)
	for k in $(seq 1 $RUNS); do
		n=$(( n < ues ? n : ues ))
		if [ -z "$srv_pid" ]; then
			start_server "$io" "$crypto" || { status=1; continue; }
		fi
		burst "$io" "$work/max-$cfg-$k.jsonl" --mode max --ues "$n" --seed "$k" "${extra[@]}" ||
			status=1
		[ "$io" = dpdk ] && { stop_server || status=1; }
		fig=$(python3 "$work/fig.py" run "$work/max-$cfg-$k.jsonl")
		echo "$fig" >>"$runs"
		set -- $fig
		say "  $cfg run $k/$RUNS: $(( ($1 + 500) / 1000 )) k/s ($5 UEs in $2 s, $4 failed)"
		[ "$k" -eq 1 ] && [ "$1" -gt 0 ] && n=$(python3 -c "print(max(50000, int($1 * $RUN_S)))")
	done
	rate=$(sort -n "$runs" | awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }')
	load=$(( ${rate:-0} * 8 / 10 ))
	if [ "$load" -gt 0 ]; then
		m=$(( load * 3 / 2 < ues ? load * 3 / 2 : ues ))  # about 1.5 s at 80 %
		if [ -z "$srv_pid" ]; then
			start_server "$io" "$crypto" || status=1
		fi
		burst "$io" "$work/r80-$cfg.jsonl" --mode rate --rate "$load" --ues "$m" --seed 99 \
			"${extra[@]}" || status=1
	fi
	stop_server || status=1
	python3 "$work/fig.py" row "$cfg" "$io" "$crypto" "$runs" "$work/r80-$cfg.jsonl" "$load" \
		2>"$work/row.txt" >>"$work/rows.jsonl"
	say "$(cat "$work/row.txt")"
}

compare_args=()
if [ $compare -eq 1 ]; then
	say "side-by-side: {dpdk, socket} x {ipsec-mb, openssl}, $RUNS max-rate runs each, same population"
	: >"$work/rows.jsonl"
	for io in dpdk socket; do
		for crypto in ipsec-mb openssl; do
			compare_config "$io" "$crypto"
		done
	done
	"$B/bench/crypto_bench" --benchmark_filter='mbms_request_crypto/ipsec-mb/burst:32$' \
		--benchmark_min_time=0.5 --benchmark_repetitions=$((RUNS + 2)) \
		--benchmark_format=json >"$work/ceiling.json" 2>/dev/null
	python3 "$work/fig.py" ceiling "$work/ceiling.json" "$work/rows.jsonl" "$out/compare.json" \
		2>"$work/row.txt"
	say "$(cat "$work/row.txt")"
	compare_args=(--compare "$out/compare.json")
fi

"$top/tools/keyline-report" "$out/burst.jsonl" "${compare_args[@]}" -o "$out" ||
	{ echo "run-burst: report failed" >&2; status=1; }
say "report: $out/report.html, $out/summary.md"
exit $status

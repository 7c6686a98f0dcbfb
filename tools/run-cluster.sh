#!/usr/bin/env bash
# keyline as a cluster on one host: three etcd members and two keylined nodes, a rekey burst
# against both, a report.
#   bash tools/run-cluster.sh [--ues N] [--window S] [--kill-a] [--out DIR] [--build DIR]
# On a fresh Debian 12 machine (as root) it installs what it needs and builds (tools/setup.sh),
# writes a TEST population (N UEs, default 200,000, one key group whose new MSK becomes valid
# now) into node A's store (bench/store_fill), starts three etcd members on loopback (data on
# disk, fsync on), node A (kernel sockets, --io socket: it seeds the empty catalogue from its
# store) and node B (an empty store: it catches up by a full resync from etcd), then runs
# keyline-burst against both (--server A,B: every UE asks for the new MSK at a random time
# inside the window, every answer verified; a UE whose node does not answer moves to the other
# after a random back-off). --kill-a SIGKILLs node A once a quarter of the UEs are done. Then a
# write on each node, served by the other (replication lag), the nodes' cluster status, etcd's
# space, and DIR (default report-cluster/): report.html, summary.md, burst.jsonl (keyline-report),
# cluster.txt (the figures printed). One line per phase. Every process started here is stopped
# (keylined with SIGTERM, it must exit 0; etcd members), the work directory removed.
# --build DIR (or KL_BUILD): the build directory (default build). Exit status: 0 when every UE
# got a verified key and every step worked.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ues=200000
window=2
kill_a=0
out="$top/report-cluster"
build=${KL_BUILD:-build}
kl_flag() {
	[ "$1" = --kill-a ] && kill_a=1
}
. "$top/tools/lib-args.sh"
kl_args run-cluster 18 "$@"
case "$window" in ''|*[!0-9]*) echo "run-cluster: --window wants whole seconds" >&2; exit 2 ;; esac

cd "$top" || exit 1
tools/setup.sh "$build" || { echo "run-cluster: setup/build failed" >&2; exit 1; }
B=$(cd "$build" && pwd)
etcd=$(command -v etcd || echo /usr/bin/etcd)
[ -x "$etcd" ] || { echo "run-cluster: no etcd (Debian's etcd-server)" >&2; exit 1; }
mkdir -p "$out"
work=$(mktemp -d /tmp/keyline-cluster.XXXXXX)
rundir=/var/run/dpdk # EAL's runtime directories (as root; else under XDG_RUNTIME_DIR or /tmp)
[ "$(id -u)" -eq 0 ] || rundir=${XDG_RUNTIME_DIR:-/tmp}/dpdk
etcd_pids=()
declare -A node_pid=()
cleanup() {
	local p
	for p in "${node_pid[@]}"; do
		if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
			kill -KILL "$p" 2>/dev/null
			wait "$p" 2>/dev/null
		fi
	done
	for p in "${etcd_pids[@]}"; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null
			wait "$p" 2>/dev/null
		fi
	done
	rm -rf "$work"
	local d # EAL runtime directories a killed keylined left (this script's prefixes only)
	for d in "$rundir"/klcl$$-*; do
		[ -d "$d" ] || continue
		rm -f "$d"/* 2>/dev/null
		rmdir "$d" 2>/dev/null
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_job=$SECONDS
say() { printf '[%4ds] %s\n' $((SECONDS - t_job)) "$*" | tee -a "$work/cluster.txt"; }
# free loopback TCP/UDP ports below the ephemeral range (as tests/test_etcd.py picks them)
read -ra ports < <(python3 - <<'PY'
import random, socket
lo = int(open('/proc/sys/net/ipv4/ip_local_port_range').read().split()[0])
got = set()
while len(got) < 10:
    p = random.randrange(10000, max(lo, 10001))
    if p in got:
        continue
    try:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(('127.0.0.1', p))
            finally:
                s.close()
        got.add(p)
    except OSError:
        pass
print(' '.join(map(str, got)))
PY
)
client=() peer=() initial=
for i in 0 1 2; do
	client+=("http://127.0.0.1:${ports[$i]}")
	peer+=("http://127.0.0.1:${ports[$((i + 3))]}")
	initial+="${initial:+,}m$i=${peer[$i]}"
done

# --- population, node A's store, the etcd members -------------------------------------------
period=3600
now=$(date +%s)
ntp_now=$(( now + 2208988800 + period / 2 )) # current MSK valid from now: the group rotates now
"$B/tools/keyline-population" --seed "$now" --ues "$ues" --groups 1 --emses 64 --imsis 64 \
	--appids 64 --period "$period" --now "$ntp_now" -o "$work/pop.txt" >/dev/null ||
	{ echo "run-cluster: population failed" >&2; exit 1; }
head -c 32 /dev/urandom >"$work/kek" && chmod 600 "$work/kek"
mkdir -p "$work/a" "$work/b"
"$B/bench/store_fill" --store "$work/a/store" --kek "$work/kek" --population "$work/pop.txt" \
	--map-mb $(( ues / 2000 + 256 )) >/dev/null ||
	{ echo "run-cluster: store_fill failed (node A's store)" >&2; exit 1; }
say "keyline cluster: 3 etcd members, 2 keylined nodes (--io socket), $ues UEs, window ${window}s"

for i in 0 1 2; do
	"$etcd" --name "m$i" --data-dir "$work/etcd/m$i" --listen-client-urls "${client[$i]}" \
		--advertise-client-urls "${client[$i]}" --listen-peer-urls "${peer[$i]}" \
		--initial-advertise-peer-urls "${peer[$i]}" --initial-cluster "$initial" \
		--initial-cluster-state new --initial-cluster-token "klcl$$" --heartbeat-interval 50 \
		--election-timeout 500 --experimental-watch-progress-notify-interval 200ms \
		--logger zap --log-level warn >"$work/etcd-m$i.log" 2>&1 &
	etcd_pids+=($!)
done
for i in 0 1 2; do
	for _ in $(seq 1 200); do
		curl -sf -m 1 -X POST -d '{"key":"AA=="}' "${client[$i]}/v3/kv/range" >/dev/null && break
		sleep 0.1
	done
	curl -sf -m 1 -X POST -d '{"key":"AA=="}' "${client[$i]}/v3/kv/range" >/dev/null || {
		echo "run-cluster: etcd member m$i did not start:" >&2
		tail -5 "$work/etcd-m$i.log" >&2
		exit 1
	}
done
say "etcd: 3 members ready (${client[*]}), data on disk"

# --- the nodes ------------------------------------------------------------------------------
mem=$(( ues * 300 / 1048576 + 512 ))
declare -A udp=([a]=${ports[6]} [b]=${ports[7]})
declare -A metrics=([a]=${ports[8]} [b]=${ports[9]})
# start_node NAME ENDPOINTS: keylined in the background, waits for "ready"
start_node() {
	local n=$1 eps=$2 cfg="$work/$1/keylined.yaml"
	{
		echo "ipv4: [127.0.0.1]"
		echo "udp_port: ${udp[$n]}"
		echo "server_identity: \"keyline.local\""
		echo "admin_socket: $work/$n/admin.sock"
		echo "io: socket"
		echo "log_level: warning"
		echo "metrics: \"127.0.0.1:${metrics[$n]}\""
		echo "replay_cache: 4194304"
		echo "table: {ues: $(( ues + 1024 )), groups: 16, emses: 64, imsis: 64, appids: 64}"
		echo "store: {path: \"$work/$n/store\", kek_file: \"$work/kek\", map_size_mb: $(( ues / 2000 + 256 ))}"
		echo "cluster: {endpoints: [$eps], node: node-$n, prefix: /keyline, lease_ttl_s: 3,"
		echo "  stale_after_ms: 2000, connect_timeout_ms: 300, request_timeout_ms: 60000}"
	} >"$cfg"
	"$B/control/keylined" --no-huge --no-shconf -m "$mem" --no-pci --no-telemetry -l 0-1 \
		--log-level=error --file-prefix "klcl$$-$n" -- -c "$cfg" \
		>"$work/$n/out" 2>"$work/$n/err" &
	node_pid[$n]=$!
	for _ in $(seq 1 3000); do
		grep -q '^keylined: ready' "$work/$n/out" 2>/dev/null && return 0
		kill -0 "${node_pid[$n]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "run-cluster: node $n did not start:" >&2
	tail -20 "$work/$n/err" >&2
	return 1
}
ctl() { "$B/tools/keylinectl" -s "$work/$1/admin.sock" "${@:2}"; }
# st.py MODE: reads `keylinectl --json status` on stdin; following: "yes UES" once the node
# follows etcd (not stale) with UES UEs in its table; status: one line of its cluster figures
cat >"$work/st.py" <<'PY'
import json, sys
st = json.load(sys.stdin)
c = st.get('cluster') or {}
if sys.argv[1] == 'following':  # "yes UES" once the node follows the catalogue with every UE
    ues = ((st.get('table') or {}).get('counts') or {}).get('ues', 0)
    print('yes' if c.get('state') == 'following' and not c.get('stale') else 'no', ues)
else:
    keep = ('node', 'role', 'state', 'stale', 'applied_revision', 'etcd_revision',
            'lag_revisions', 'lag_ms')
    cnt = c.get('counters') or {}
    print(', '.join(f'{k} {c.get(k)}' for k in keep if k in c) + '; ' +
          ', '.join(f'{k} {cnt[k]}' for k in ('seeded', 'resyncs', 'resync_entries',
                                              'events_applied', 'events_skipped') if k in cnt))
PY
wait_following() { # NAME: until the node follows etcd and holds every UE
	local r
	for _ in $(seq 1 36000); do
		r=$(ctl "$1" --json status 2>/dev/null | python3 "$work/st.py" following 2>/dev/null)
		set -- "$1" $r
		[ "${2:-no}" = yes ] && [ "${3:-0}" -ge "$ues" ] && return 0
		kill -0 "${node_pid[$1]}" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

status=0
eps_a="\"${client[0]}\", \"${client[1]}\", \"${client[2]}\""
eps_b="\"${client[2]}\", \"${client[1]}\", \"${client[0]}\""
t0=$SECONDS
start_node a "$eps_a" || exit 1
wait_following a >/dev/null || { echo "run-cluster: node A did not join" >&2; exit 1; }
say "node A: seeded the catalogue with its store ($ues UEs) and follows etcd after $((SECONDS - t0)) s"
t0=$SECONDS
start_node b "$eps_b" || exit 1
wait_following b >/dev/null || { echo "run-cluster: node B did not catch up" >&2; exit 1; }
say "node B: empty store, caught up $ues UEs from etcd (full resync) after $((SECONDS - t0)) s"

# --- the burst against both -----------------------------------------------------------------
say "burst: keyline-burst --server A,B ($ues UEs inside ${window}s$([ $kill_a -eq 1 ] && echo ', node A SIGKILLed at 25 %'))"
burst_cmd=("$B/tools/keyline-burst" --io socket --population "$work/pop.txt"
	--server "127.0.0.1:${udp[a]},127.0.0.1:${udp[b]}" --mode burst --window "$window"
	--presign --timeout-ms 200 --retries 6 --interval-ms 100 --inflight 4096)
if [ $kill_a -eq 1 ]; then
	"${burst_cmd[@]}" >"$out/burst.jsonl" 2>"$work/burst.err" &
	bpid=$!
	node_pid[burst]=$bpid
	killed=0
	while kill -0 $bpid 2>/dev/null; do
		d=$(grep '"type": *"interval"' "$out/burst.jsonl" 2>/dev/null | tail -1 |
			python3 -c 'import json,sys; l=sys.stdin.read().strip(); print(json.loads(l).get("done",0) if l else 0)' 2>/dev/null)
		if [ "${d:-0}" -ge $(( ues / 4 )) ]; then
			kill -KILL "${node_pid[a]}" 2>/dev/null
			wait "${node_pid[a]}" 2>/dev/null
			node_pid[a]=
			killed=1
			say "node A SIGKILLed after $d UEs done"
			break
		fi
		sleep 0.05
	done
	wait $bpid
	brc=$?
	node_pid[burst]=
	[ $killed -eq 1 ] || { echo "run-cluster: the burst ended before node A was killed" >&2; status=1; }
else
	"${burst_cmd[@]}" >"$out/burst.jsonl" 2>"$work/burst.err"
	brc=$?
fi
[ $brc -eq 0 ] || { echo "run-cluster: keyline-burst reported failures (exit $brc):" >&2
	tail -5 "$work/burst.err" >&2; status=1; }
python3 - "$out/burst.jsonl" >"$work/line.txt" <<'PY'
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
s = s[-1] if s and s[-1].get('type') == 'summary' else {}
c, lat = s.get('counters') or {}, s.get('latency_us') or {}
print(f"{s.get('ok', 0)} of {s.get('ues', 0)} UEs verified, {s.get('failed', 0)} failed, "
      f"complete in {s.get('complete_s') or 0:.2f} s, p99 {lat.get('p99', 0):.0f} us; "
      f"timeouts {c.get('timeouts', 0)}, retransmissions {c.get('retransmissions', 0)}, "
      f"moved {c.get('moved', 0)}")
for x in s.get('servers') or []:
    print(f"  server {x.get('address')}: keys {x.get('keys', 0)}, sent {x.get('sent', 0)}, "
          f"timeouts {x.get('timeouts', 0)}, moved in {x.get('moved_in', 0)}")
PY
while IFS= read -r l; do say "$l"; done <"$work/line.txt"

# --- a write on each live node, served by the other: the replication lag --------------------
live=()
for n in a b; do [ -n "${node_pid[$n]}" ] && live+=("$n"); done
if [ ${#live[@]} -eq 2 ]; then
	for pair in "a b" "b a"; do
		set -- $pair
		muk=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
		t0=$(date +%s%N)
		ctl "$1" put-ue "lag-$1@run-cluster.test" --muk "$muk" >/dev/null 2>"$work/ctl.err" ||
			{ echo "run-cluster: put on node $1 failed: $(cat "$work/ctl.err")" >&2; status=1; continue; }
		ok=0
		for _ in $(seq 1 500); do
			ctl "$2" show ue "lag-$1@run-cluster.test" >/dev/null 2>&1 && { ok=1; break; }
			sleep 0.002
		done
		if [ $ok -eq 1 ]; then
			say "a put on node $1 (acknowledged: committed to etcd) served by node $2 after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
		else
			say "a put on node $1 NOT served by node $2 within 1 s"
			status=1
		fi
	done
fi
for n in "${live[@]}"; do
	say "node $n: $(ctl "$n" --json status | python3 "$work/st.py" status 2>&1)"
done
db=$(curl -sf -m 5 -X POST -d '{}' "${client[0]}/v3/maintenance/status" |
	python3 -c 'import json,sys; s=json.load(sys.stdin); print(int(s["dbSize"]))' 2>/dev/null)
[ -n "$db" ] && say "etcd: db size $db bytes ($(( db / ues )) bytes per UE, history included)"

# --- stop -----------------------------------------------------------------------------------
for n in "${live[@]}"; do
	kill -TERM "${node_pid[$n]}"
	wait "${node_pid[$n]}"
	rc=$?
	node_pid[$n]=
	[ $rc -eq 0 ] || { echo "run-cluster: node $n exited with status $rc" >&2
		tail -5 "$work/$n/err" >&2; status=1; }
done
"$top/tools/keyline-report" "$out/burst.jsonl" -o "$out" >/dev/null ||
	{ echo "run-cluster: report failed" >&2; status=1; }
say "report: $out/report.html, $out/summary.md, $out/cluster.txt"
cp "$work/cluster.txt" "$out/cluster.txt"
exit $status

#!/usr/bin/env bash
# Start-up benchmark of keylined with a durable key store (issue 6): fill a store with N UEs of a
# TEST population (batched durable writes), then start keylined on it (kernel-socket io, one
# worker) and report the time to "ready", the store load time keylined logs, its resident memory,
# and the bytes per UE on disk.
#   bench/run-store-bench.sh [N (10000000)] [BUILD_DIR (build)]
# Needs about 4 GB of disk and N x 400 bytes of memory. Prints one JSON line at the end.
set -euo pipefail
n=${1:-10000000}
build=${2:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
for b in "$build/bench/store_fill" "$build/control/keylined" "$build/tools/keyline-population"; do
	[ -x "$b" ] || { echo "run-store-bench: $b missing (build with -Dbench=enabled)" >&2; exit 2; }
done
work=$(mktemp -d /var/tmp/kl-store-bench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM
head -c 32 /dev/urandom >"$work/kek"
chmod 600 "$work/kek"
"$build/tools/keyline-population" --seed 42 --ues "$n" --groups 16 --emses 1 --imsis 1 \
	--appids 1 -o "$work/pop.txt"
echo "run-store-bench: filling a store with $n UEs (TEST KEYS)" >&2
fill=$("$build/bench/store_fill" --store "$work/store" --kek "$work/kek" --population "$work/pop.txt")
echo "$fill" >&2
mem=$(( n / 1000000 * 500 + 1024 ))
cat >"$work/keylined.yaml" <<YAML
ipv4: [127.0.0.1]
udp_port: 32269
io: socket
server_identity: keyline.bench
admin_socket: $work/admin.sock
table: {ues: $n, groups: 64, emses: 1024, imsis: 1024, appids: 1024}
store: {path: "$work/store", kek_file: "$work/kek", map_size_mb: 65536}
YAML
start=$(date +%s.%N)
"$build/control/keylined" --no-huge --no-shconf --no-pci --no-telemetry -m "$mem" -l 0-1 \
	--file-prefix klsb$$ -- -c "$work/keylined.yaml" >"$work/out" 2>"$work/err" &
pid=$!
while ! grep -q '^keylined: ready' "$work/out" 2>/dev/null; do
	kill -0 "$pid" 2>/dev/null || { cat "$work/err" >&2; echo "run-store-bench: keylined died" >&2; exit 1; }
	sleep 0.05
done
ready=$(date +%s.%N)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"
wait "$pid" || { echo "run-store-bench: keylined exit status $?" >&2; exit 1; }
pid=
load=$(sed -n 's/.*store .* loaded: .* in \([0-9.]*\) s$/\1/p' "$work/err" | tail -1)
python3 - "$fill" "$start" "$ready" "$rss" "$hwm" "$load" "$n" <<'PY'
import json, sys
fill = json.loads(sys.argv[1])
start, ready, rss, hwm, load, n = sys.argv[2:8]
out = {'ues': int(n), 'fill_puts_per_s': fill['puts_per_s'], 'fill_s': fill['seconds'],
       'bytes_per_ue_on_disk': fill['bytes_per_ue'], 'store_file_bytes': fill['file_bytes'],
       'start_to_ready_s': round(float(ready) - float(start), 2),
       'store_load_s': float(load) if load else None,
       'rss_mb': round(int(rss) / 1024), 'rss_peak_mb': round(int(hwm) / 1024),
       'rss_bytes_per_ue': round(int(rss) * 1024 / int(n))}
print(json.dumps(out))
PY

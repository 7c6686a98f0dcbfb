#!/bin/sh
# Run the crypto micro-benchmarks and print a compact table: name, items/s in M/s, sorted by name.
# Usage: bench/run-crypto-bench.sh [path/to/crypto_bench] [extra benchmark args...]
set -eu
bin=${1:-build/bench/crypto_bench}
[ $# -gt 0 ] && shift
if [ ! -x "$bin" ]; then
	echo "run-crypto-bench.sh: $bin not found or not executable" >&2
	exit 1
fi
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT INT TERM
rc=0
"$bin" --benchmark_min_time=0.3 --benchmark_format=json "$@" >"$tmp" || rc=$?
python3 - "$tmp" <<'PY'
import json, re, sys

with open(sys.argv[1]) as f:
    data = json.load(f)

def natural(name):
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', name)]

rows = []
for b in data.get('benchmarks', []):
    if b.get('run_type', 'iteration') != 'iteration':
        continue
    if b.get('error_occurred'):
        rows.append((b['name'], 'ERROR: ' + b.get('error_message', '')))
    else:
        rows.append((b['name'], '%10.3f' % (b.get('items_per_second', 0.0) / 1e6)))
rows.sort(key=lambda r: natural(r[0]))
w = max([len(r[0]) for r in rows] + [len('benchmark')])
print('%-*s  %10s' % (w, 'benchmark', 'M items/s'))
for name, v in rows:
    print('%-*s  %s' % (w, name, v))
PY
exit $rc

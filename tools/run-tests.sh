#!/usr/bin/env bash
# The whole keyline test suite, from a fresh Debian 12 machine (as root):
#   installs what it needs, builds with -Wall -Wextra -Werror, runs the fast, integration, perf and
#   stress suites, then the unit (fast) and integration suites again in an AddressSanitizer + UBSan
#   build (keylined, keyline-burst and the CLIs included, with leak detection).
# Exits non-zero on any failure; the last line counts what ran.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

tools/setup.sh build || { echo "run-tests: setup/build failed"; echo "0 passed, 1 failed"; exit 1; }

rc=0
meson test -C build --print-errorlogs --num-processes 2 \
  --suite fast --suite integration --suite perf --suite stress || rc=1

# Sanitizer build: its own directory, debug, no benchmarks.
if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbench=disabled >/dev/null || rc=1
fi
if ninja -C build-asan >/dev/null; then
  # the Diameter feed's load tests push 20,000 keys instead of 100,000 under the sanitizers, and
  # keylined-hm runs 5,000 HM sessions instead of 100,000 (a keylined there loads 100,000 UEs
  # too slowly); keylined-pairs and keylined-s2s run 2,000 pairs of each kind instead of 10,000;
  # cli-no-echo plants a hex and a base64 key (the release run plants all six kinds);
  # cluster-nodes 500 UEs and 50 lag samples, cluster-bulk 4,000 keys, cluster-rotation 2 periods,
  # cluster-node-kill 5,000 UEs, cluster-etcd-kill 2,000 keys (when run: the suites 'failover',
  # processes killed or cut off on purpose, and 'load', load tests, run in the release build only);
  # naf-clients 12 devices with a 30 s request timeout (keylined's TLS handshakes are far slower);
  # diameter-bulk and diameter-confine push 1,000 keys instead of 3,000
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    KL_FEED_N=20000 KL_HM_SESSIONS=5000 KL_PAIR_COUNT=2000 KL_NOECHO_PLANTS=0,5 KL_CLUSTER_N=500 \
    KL_CLUSTER_LAG_N=50 KL_CLUSTER_DIA_N=4000 KL_ROT_PERIODS=2 KL_FAIL_UES=5000 KL_FAIL_DIA_N=2000 \
    KL_NAF_DEVICES=12 KL_NAF_TIMEOUT_MS=30000 KL_DIAMETER_BULK_N=1000 \
    meson test -C build-asan --print-errorlogs --num-processes 2 --suite fast \
      --suite integration --no-suite failover --no-suite load || rc=1
else
  echo "run-tests: sanitizer build failed"
  rc=1
fi

python3 - build/meson-logs/testlog.json build-asan/meson-logs/testlog.json <<'PY'
import json, sys
ok = bad = 0
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if r.get('result') in ('OK', 'EXPECTEDFAIL', 'SKIP'):
                    ok += 1
                else:
                    bad += 1
                    print(f"FAILED: {r.get('name')} ({path.split('/')[0]}): {r.get('result')}")
    except FileNotFoundError:
        bad += 1
        print(f'FAILED: no test log {path}')
print(f'keyline tests: {ok} passed, {bad} failed')
PY
exit $rc

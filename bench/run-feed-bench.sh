#!/usr/bin/env bash
# Durable Diameter push rate (issue 6): keylined with a durable store and the Diameter/TLS feed on
# loopback (kernel-socket io, one worker); keyline-hss-sim pushes N e2m_int_keys per window size
# as fast as the acknowledgements allow (each acknowledged only after its store commit).
#   bench/run-feed-bench.sh [N (100000)] [BUILD_DIR (build)] [WINDOW ...  (16 64 256)]
# Prints one JSON line per window.
set -euo pipefail
n=${1:-100000}
build=${2:-build}
shift 2 2>/dev/null || shift $#
windows=${*:-16 64 256}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
for b in "$build/control/keylined" "$build/tools/keyline-hss-sim"; do
	[ -x "$b" ] || { echo "run-feed-bench: $b missing" >&2; exit 2; }
done
work=$(mktemp -d /var/tmp/kl-feed-bench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM
ssl() { openssl "$@" >/dev/null 2>&1; }
ssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ca.key" \
	-out "$work/ca.pem" -days 2 -subj "/CN=keyline bench ca"
for who in keylined.bench hss.bench; do
	printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$who" >"$work/$who.ext"
	ssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/$who.key" \
		-out "$work/$who.csr" -subj "/CN=$who"
	ssl x509 -req -in "$work/$who.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
		-CAcreateserial -out "$work/$who.pem" -days 2 -extfile "$work/$who.ext"
done
head -c 32 /dev/urandom >"$work/kek"
chmod 600 "$work/kek"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for w in $windows; do
	rm -rf "$work/store"
	cat >"$work/keylined.yaml" <<YAML
ipv4: [127.0.0.1]
udp_port: 32271
io: socket
log_level: warning
server_identity: keyline.bench
admin_socket: $work/admin.sock
table: {ues: 1024, groups: 64, emses: 1024, imsis: $((n + 1024)), appids: 1024}
store: {path: "$work/store", kek_file: "$work/kek"}
diameter: {identity: keylined.bench, listen: 127.0.0.1, port: $port, tls_cert: "$work/keylined.bench.pem", tls_key: "$work/keylined.bench.key", tls_ca: "$work/ca.pem"}
YAML
	"$build/control/keylined" --no-huge --no-shconf --no-pci --no-telemetry -m 1024 -l 0-1 \
		--file-prefix klfb$$ -- -c "$work/keylined.yaml" >"$work/out" 2>"$work/err" &
	pid=$!
	while ! grep -q '^keylined: ready' "$work/out" 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || { cat "$work/err" >&2; exit 1; }
		sleep 0.05
	done
	"$build/tools/keyline-hss-sim" --identity hss.bench --cert "$work/hss.bench.pem" \
		--key "$work/hss.bench.key" --ca "$work/ca.pem" --listen 127.0.0.1 \
		--peer "keylined.bench@127.0.0.1:$port" --log-level error \
		bulk --n "$n" --seed 3 --window "$w"
	kill -TERM "$pid"
	wait "$pid"
	pid=
done

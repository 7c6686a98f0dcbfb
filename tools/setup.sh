#!/usr/bin/env bash
# Installs every Debian package keyline needs (idempotent), then configures and builds.
#   tools/setup.sh [BUILDDIR] [extra meson options...]
# Run as root on Debian 12. Set KL_SETUP_NO_BUILD=1 to only install packages.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-build}
[ $# -gt 0 ] && shift

pkgs=(
  build-essential pkg-config meson ninja-build python3 python3-cryptography git
  clang-14 libclang-rt-14-dev llvm-14
  libcurl4-openssl-dev etcd-server
  libdpdk-dev dpdk libipsec-mb-dev libssl-dev openssl
  libcmocka-dev libbenchmark-dev
  libfreediameter-dev freediameter
  liblmdb-dev lmdb-utils libcyaml-dev libyaml-dev libjansson-dev libmicrohttpd-dev
  libpcap-dev tshark iproute2 iputils-ping curl
)

missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = "installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages (${missing[*]}); run as root" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${KL_SETUP_NO_BUILD:-0}" = "1" ] && exit 0

cd "$top"
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" --buildtype=release "$@"
fi
ninja -C "$builddir"

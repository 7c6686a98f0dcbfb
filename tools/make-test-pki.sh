#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Makes a test PKI for the NAF Key Center (PROTOCOL.md section 11) with the openssl CLI alone:
# ECDSA P-256 keys everywhere, every certificate signed with ecdsa-with-SHA256.
#
#   tools/make-test-pki.sh OUTDIR [--devices N] [--days D] [--force]
#
# OUTDIR gets (keys 0600, certificates, the CRL and the index 0644):
#   device-ca.pem/.key    root of the device certificates (the Key Center's "device CA")
#   operator-ca.pem/.key  root of the operator certificates (the Key Center's "operator CA")
#   server-ca.pem/.key    root of the Key Center's server certificate (what devices and curl trust)
#   other-ca.pem/.key     an unrelated root nobody trusts (negative tests)
#   server.pem/.key       the Key Center: CN localhost, DNS:localhost, IP:127.0.0.1, IP:::1,
#                         EKU serverAuth
#   device-0001.pem/.key .. device-NNNN: CN device-0001.test .. (the Device_ID), EKU clientAuth,
#                         from the device CA
#   operator.pem/.key     CN operator.test, EKU clientAuth, from the operator CA
#   other-device.pem/.key CN device-0001.test (a real device's ID) from the other CA
#   expired-device.pem/.key  CN device-expired.test from the device CA, valid from 2 to 1 days ago
#   revoked-device.pem/.key  CN device-revoked.test from the device CA, revoked (keyCompromise)
#   device-ca.crl.pem     the device CA's CRL, listing the revoked device
#   pki.json              index: each entry's role, files, CN, serial (hex), validity, issuer
# Certificates are valid from an hour ago for D days (default 365; the CAs from 3 days ago to
# D + 1 days from now; the CRL's next update in D days). Serials are random
# (openssl ca -rand_serial).
#
# An OUTDIR that exists and is not empty is refused unless --force; --force replaces the PKI a
# previous run left there (the files its pki.json lists) and leaves other files alone.
# Exit status: 0 done, 1 openssl failed, 2 bad arguments or OUTDIR refused.
set -euo pipefail

prog=${0##*/}
usage() { echo "usage: $prog OUTDIR [--devices N] [--days D] [--force]"; }
bad() { echo "$prog: $*" >&2; usage >&2; exit 2; }

outdir='' devices=3 days=365 force=0
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --devices|--days)
      [ $# -ge 2 ] || bad "$1: missing value"
      [[ $2 =~ ^[0-9]{1,6}$ ]] || bad "$1: want a whole number, got '$2'"
      v=$((10#$2)) max=9999
      [ "$1" = --devices ] || max=36500
      if [ "$v" -lt 1 ] || [ "$v" -gt "$max" ]; then bad "$1: want 1 to $max, got '$2'"; fi
      if [ "$1" = --devices ]; then devices=$v; else days=$v; fi
      shift 2 ;;
    --devices=*|--days=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    --force) force=1; shift ;;
    --) shift
        [ $# -eq 1 ] || bad "want one OUTDIR after --"
        [ -z "$outdir" ] || bad "more than one OUTDIR"
        outdir=$1; shift ;;
    -*) bad "unknown option '$1'" ;;
    *) [ -z "$outdir" ] || bad "more than one OUTDIR ('$outdir', '$1')"; outdir=$1; shift ;;
  esac
done
[ -n "$outdir" ] || bad "missing OUTDIR"
[ ! -e "$outdir" ] || [ -d "$outdir" ] || bad "OUTDIR '$outdir' exists and is not a directory"
command -v openssl >/dev/null || { echo "$prog: openssl not found" >&2; exit 1; }

# Names this script writes are [A-Za-z0-9._-] and never start with a dot: the only ones --force
# removes (as listed by the old pki.json).
old_files=()
if [ -d "$outdir" ] && [ -n "$(ls -A "$outdir")" ]; then
  [ "$force" = 1 ] || bad "OUTDIR '$outdir' is not empty (--force replaces the PKI made there)"
  if [ -f "$outdir/pki.json" ]; then
    while IFS= read -r f; do
      if [[ $f =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]*$ ]]; then old_files+=("$f"); fi
    done < <(grep -o '"\(cert\|key\|crl\)": "[^"]*"' "$outdir/pki.json" | sed 's/.*: "\(.*\)"/\1/')
  fi
fi
mkdir -p "$outdir"

# Everything is made in a staging directory inside OUTDIR (the CA databases beside it) and moved
# into place at the end: a failed run leaves OUTDIR as it was.
umask 077
stage=$(mktemp -d "$outdir/.make-test-pki.XXXXXX")
trap 'rm -rf "$stage"' EXIT
out=$stage/out db=$stage/db
mkdir "$out" "$db"

ssl() {  # openssl, quiet unless it fails
  local err
  if ! err=$(openssl "$@" 2>&1 >/dev/null); then
    echo "$prog: openssl $1 failed:" >&2
    echo "$err" >&2
    exit 1
  fi
}
when() { date -u -d "$1" +%Y%m%d%H%M%SZ; }
ca_start=$(when '-3 days') ca_end=$(when "+$((days + 1)) days")
leaf_start=$(when '-1 hour') end=$(when "+$days days")

ca_config() {  # NAME: the openssl ca configuration and database of CA NAME
  local d=$db/$1
  mkdir -p "$d/new"
  : > "$d/index.txt"
  echo 1000 > "$d/crlnumber"
  echo 01 > "$d/serial"  # unused: every certificate gets a random serial (-rand_serial)
  cat > "$d/ca.cnf" <<EOF
[ ca ]
default_ca = this_ca
[ this_ca ]
database = $d/index.txt
new_certs_dir = $d/new
crlnumber = $d/crlnumber
serial = $d/serial
certificate = $out/$1.pem
private_key = $out/$1.key
default_md = sha256
policy = policy_cn
unique_subject = no
copy_extensions = none
crl_extensions = crl_ext
[ policy_cn ]
organizationName = supplied
commonName = supplied
[ req ]
distinguished_name = dn
[ dn ]
[ crl_ext ]
authorityKeyIdentifier = keyid:always
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
}

newkey() {  # NAME CN: NAME.key and a request NAME.csr for O=keyline test, CN
  ssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve \
    -out "$out/$1.key"
  ssl req -new -key "$out/$1.key" -subj "/O=keyline test/CN=$2" -out "$db/$1.csr"
}

sign() {  # CA NAME EXTENSIONS START END [openssl ca options]: NAME.pem from NAME.csr
  local ca=$1 name=$2 ext=$3 start=$4 stop=$5
  shift 5
  ssl ca -batch -config "$db/$ca/ca.cnf" -in "$db/$name.csr" -out "$out/$name.pem" -notext \
    -rand_serial -extensions "$ext" -startdate "$start" -enddate "$stop" "$@"
}

make_ca() {  # NAME CN: a self-signed root
  ca_config "$1"
  newkey "$1" "$2"
  sign "$1" "$1" v3_ca "$ca_start" "$ca_end" -selfsign
}

leaf() {  # CA NAME CN EXTENSIONS [START END]
  newkey "$2" "$3"
  sign "$1" "$2" "$4" "${5:-$leaf_start}" "${6:-$end}"
}

make_ca device-ca 'keyline test device CA'
make_ca operator-ca 'keyline test operator CA'
make_ca server-ca 'keyline test server CA'
make_ca other-ca 'keyline test other CA'
leaf server-ca server localhost v3_server
for i in $(seq 1 "$devices"); do
  leaf device-ca "$(printf 'device-%04d' "$i")" "$(printf 'device-%04d.test' "$i")" v3_client
done
leaf operator-ca operator operator.test v3_client
leaf other-ca other-device device-0001.test v3_client
leaf device-ca expired-device device-expired.test v3_client "$(when '-2 days')" "$(when '-1 day')"
leaf device-ca revoked-device device-revoked.test v3_client
ssl ca -batch -config "$db/device-ca/ca.cnf" -revoke "$out/revoked-device.pem" \
  -crl_reason keyCompromise
ssl ca -batch -config "$db/device-ca/ca.cnf" -gencrl -crldays "$days" -out "$out/device-ca.crl.pem"

# ---- the index --------------------------------------------------------------------------------
iso() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
cert_entry() {  # ROLE NAME ISSUER: one openssl x509 for subject, serial and validity
  local line cn='' serial='' nb='' na=''
  while IFS= read -r line; do
    case $line in
      subject=*) cn=$(sed -n 's/^subject=.*CN=\([^,]*\).*/\1/p' <<< "$line") ;;
      serial=*) serial=${line#serial=} ;;
      notBefore=*) nb=$(iso "${line#notBefore=}") ;;
      notAfter=*) na=$(iso "${line#notAfter=}") ;;
    esac
  done < <(openssl x509 -in "$out/$2.pem" -noout -subject -nameopt RFC2253 -serial -startdate \
             -enddate)
  local fmt='{"role": "%s", "cn": "%s", "serial": "%s", "not_before": "%s", "not_after": "%s",'
  fmt+=' "issuer": "%s", "cert": "%s.pem", "key": "%s.key"}'
  # shellcheck disable=SC2059
  entries+=("$(printf "$fmt" "$1" "$cn" "$serial" "$nb" "$na" "$3" "$2" "$2")")
}
entries=()
cert_entry device-ca device-ca device-ca
cert_entry operator-ca operator-ca operator-ca
cert_entry server-ca server-ca server-ca
cert_entry other-ca other-ca other-ca
cert_entry server server server-ca
for i in $(seq 1 "$devices"); do
  cert_entry device "$(printf 'device-%04d' "$i")" device-ca
done
cert_entry operator operator operator-ca
cert_entry other-ca-device other-device other-ca
cert_entry expired-device expired-device device-ca
cert_entry revoked-device revoked-device device-ca
crl_text=$(openssl crl -in "$out/device-ca.crl.pem" -noout -text)
revoked=$(sed -n 's/^ *Serial Number: *\([0-9A-Fa-f]*\)$/"\1"/p' <<< "$crl_text" \
  | paste -sd, - | sed 's/,/, /g')
fmt='{"role": "crl", "issuer": "device-ca", "crl": "device-ca.crl.pem", "revoked": [%s],'
fmt+=' "last_update": "%s", "next_update": "%s"}'
# shellcheck disable=SC2059
entries+=("$(printf "$fmt" "$revoked" \
  "$(iso "$(sed -n 's/^ *Last Update: *//p' <<< "$crl_text")")" \
  "$(iso "$(sed -n 's/^ *Next Update: *//p' <<< "$crl_text")")")")
{
  printf '{\n  "tool": "make-test-pki.sh",\n  "key_type": "EC P-256",\n'
  printf '  "devices": %d,\n  "days": %d,\n  "entries": [\n' "$devices" "$days"
  sep=
  for e in "${entries[@]}"; do
    printf '%s    %s' "$sep" "$e"
    sep=$',\n'
  done
  printf '\n  ]\n}\n'
} > "$out/pki.json"

chmod 0600 "$out"/*.key
chmod 0644 "$out"/*.pem "$out/pki.json"

# ---- into place -------------------------------------------------------------------------------
for f in "${old_files[@]+"${old_files[@]}"}" pki.json; do
  rm -f -- "${outdir:?}/$f"
done
for f in "$out"/*; do
  mv -f -- "$f" "$outdir/"
done
echo "$prog: test PKI in $outdir ($devices devices, $days days; index $outdir/pki.json)"

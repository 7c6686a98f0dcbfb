#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The UE side of the DH VLR scheme and of ProSe (PROTOCOL.md sections 7 and 9) checked outside C:
test_client_peer --example writes what keyline's client functions computed for one DH pair and
one ProSe pair (test keys only); this script derives the same values independently with Python's
cryptography X25519 and hmac (TS 33.220 Annex B KDF):
  s_x = KDF(Kx, FF07, "dh-x25519"), P_x = X25519(s_x, 9),
  Ks = KDF(X25519(s_a, P_b), FF08, ID_lo, ID_hi) (= X25519(s_b, P_a)),
  p2 = KDF(KASME1, FF04, p1), p4 = KDF(KASME2, FF04, p3), KD = KDF(p2, FF05, p4).
It also checks that its own derivation notices a wrong FC, swapped identities and swapped p2/p4,
so that an agreement is not an accident of the check.
    client_peer_reference.py TEST_CLIENT_PEER"""
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f'FAIL: {what}', flush=True)


def kdf(key, fc, *params):
    """HMAC-SHA-256(Key, FC || P0 || L0 || ...); a 2-byte FC starts 0xFF."""
    s = fc.to_bytes(2 if fc > 0xFF else 1, 'big')
    for p in params:
        s += p + len(p).to_bytes(2, 'big')
    return hmac.new(key, s, hashlib.sha256).digest()


def scalar(k):
    return kdf(k, 0xFF07, b'dh-x25519')


def public(k):
    return X25519PrivateKey.from_private_bytes(scalar(k)).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


def ks(k_own, p_peer, id_x, id_y):
    z = X25519PrivateKey.from_private_bytes(scalar(k_own)).exchange(
        X25519PublicKey.from_public_bytes(p_peer))
    lo, hi = sorted([id_x, id_y])  # bytewise; a prefix sorts first
    return kdf(z, 0xFF08, lo, hi)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix='kl-client-peer-') as d:
        path = os.path.join(d, 'example.json')
        r = subprocess.run([sys.argv[1], '--example', path], capture_output=True, text=True,
                           timeout=120)
        if r.returncode != 0:
            print(r.stdout, r.stderr, sep='\n')
            print('FAIL: test_client_peer --example')
            return 1
        with open(path) as f:
            ex = json.load(f)
    b = {k: bytes.fromhex(v) for k, v in ex.items() if k not in ('note', 'ue_a', 'ue_b')}
    ue_a, ue_b = ex['ue_a'].encode(), ex['ue_b'].encode()

    check(public(b['k_a']) == b['p_a'], 'P_a = X25519(KDF(Ka, FF07, "dh-x25519"), 9)')
    check(public(b['k_b']) == b['p_b'], 'P_b = X25519(KDF(Kb, FF07, "dh-x25519"), 9)')
    ks_a = ks(b['k_a'], b['p_b'], ue_a, ue_b)
    ks_b = ks(b['k_b'], b['p_a'], ue_b, ue_a)
    check(ks_a == ks_b, 'the reference itself: UEa and UEb agree')
    check(ks_a == b['ks'], 'Ks of keyline\'s client = the reference\'s')
    # the reference must be able to disagree
    z = X25519PrivateKey.from_private_bytes(scalar(b['k_a'])).exchange(
        X25519PublicKey.from_public_bytes(b['p_b']))
    check(kdf(z, 0xFF08, ue_b, ue_a) != b['ks'], 'identities in the wrong order differ')
    check(kdf(z, 0xFF07, ue_a, ue_b) != b['ks'], 'another FC differs')

    p2 = kdf(b['kasme1'], 0xFF04, b['p1'])
    p4 = kdf(b['kasme2'], 0xFF04, b['p3'])
    check(p2 == b['p2'], 'p2 = KDF(KASME1, FF04, p1)')
    check(p4 == b['p4'], 'p4 = KDF(KASME2, FF04, p3)')
    check(kdf(p2, 0xFF05, p4) == b['kd'], 'KD = KDF(p2, FF05, p4)')
    check(kdf(p4, 0xFF05, p2) != b['kd'], 'KD with p2 and p4 swapped differs')

    print(f'client-peer reference: {len(failures)} failure(s)')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())

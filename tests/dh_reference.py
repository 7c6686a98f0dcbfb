#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Test-only reference for the Diffie-Hellman VLR scheme and the ProSe network-assisted keys
(PROTOCOL.md sections 7 and 9), computed outside keyline: X25519 by Python's cryptography, the
3GPP KDF (TS 33.220 Annex B: HMAC-SHA-256(Key, FC || P0 || L0 || ...), no HKDF) by hmac and
hashlib. Imported by the tests; as a script it checks its KDF against the published vectors:
    dh_reference.py VECTORS_DIR
"""
import hashlib
import hmac
import os
import sys

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

FC_PROSE_P = 0xFF04   # p2 = KDF(KASME1, FF04, p1); p4 = KDF(KASME2, FF04, p3)
FC_PROSE_KD = 0xFF05  # KD = KDF(p2, FF05, p4)
FC_DH_SCALAR = 0xFF07  # s_x = KDF(Kx, FF07, "dh-x25519")
FC_DH_KS = 0xFF08     # Ks = KDF(X25519(s_own, P_peer), FF08, ID_lo, ID_hi)
FC_S2S = 0xFF09       # s2s PSK = KDF(K(VLRa,VLRb), FF09, "s2s")


def kdf(key, fc, *params):
    """TS 33.220 Annex B: S = FC || P0 || L0 || P1 || L1 ..., Li = len(Pi) in 2 bytes; a 2-byte FC
    starts 0xFF."""
    s = fc.to_bytes(2 if fc > 0xFF else 1, 'big')
    for p in params:
        s += p + len(p).to_bytes(2, 'big')
    return hmac.new(key, s, hashlib.sha256).digest()


def dh_scalar(kx):
    return kdf(kx, FC_DH_SCALAR, b'dh-x25519')


def dh_pub(kx):
    """P_x = X25519(s_x, 9), s_x from UEx's PSK Kx."""
    return X25519PrivateKey.from_private_bytes(dh_scalar(kx)).public_key().public_bytes_raw()


def dh_pub_fp(p):
    """What keylinectl shows of P: the first 8 bytes of SHA-256(P), hex."""
    return hashlib.sha256(p).digest()[:8].hex()


def dh_ks(kx, peer_pub, id_own, id_peer):
    """Ks of UEx from its own key and the peer's public value; the identities bytewise
    ascending (Python orders bytes so: a prefix first). An all-zero shared secret (a low-order
    peer value) raises ValueError, as cryptography does."""
    if id_own == id_peer:
        raise ValueError('equal identities')
    shared = X25519PrivateKey.from_private_bytes(dh_scalar(kx)).exchange(
        X25519PublicKey.from_public_bytes(peer_pub))
    lo, hi = sorted((id_own, id_peer))
    return kdf(shared, FC_DH_KS, lo, hi)


def prose_p(kasme, p):
    """p2 from KASME1 and p1 (or p4 from KASME2 and p3)."""
    return kdf(kasme, FC_PROSE_P, p)


def prose_kd(p2, p4):
    return kdf(p2, FC_PROSE_KD, p4)


def s2s_psk(pair_key):
    return kdf(pair_key, FC_S2S, b's2s')


def selftest(vectors_dir):
    """The KDF above against every published TS 33.220 KDF vector with a key and an output
    (shared/vectors/kdf_3gpp.txt); X25519 against RFC 7748 section 6.1 (tests/vectors_x25519.txt).
    @return the failures."""
    bad, n = [], 0
    blocks, cur = [], {}
    with open(os.path.join(vectors_dir, 'kdf_3gpp.txt')) as f:
        for line in list(f) + ['']:
            line = line.strip()
            if not line:
                if cur:
                    blocks.append(cur)
                cur = {}
            elif not line.startswith('#') and ':' in line:
                k, v = line.split(':', 1)
                cur[k.strip()] = v.strip()
    for b in blocks:
        if 'fc' not in b or 'out' not in b:
            continue
        key = bytes.fromhex(b['key']) if 'key' in b and all(
            c in '0123456789abcdef' for c in b['key']) else None
        if key is None and 'ck' in b and 'ik' in b:
            key = bytes.fromhex(b['ck'] + b['ik'])
        if key is None:
            continue
        params = [bytes.fromhex(b[f'p{i}']) for i in range(16) if f'p{i}' in b]
        n += 1
        if kdf(key, int(b['fc'], 16), *params).hex() != b['out']:
            bad.append(f'kdf vector {b.get("name")}')
    if n < 3:
        bad.append(f'only {n} KDF vectors checked')
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, 'vectors_x25519.txt')) as f:
        v = dict(line.strip().split(': ', 1) for line in f if line.startswith(
            ('alice_', 'bob_', 'shared:')))
    a = X25519PrivateKey.from_private_bytes(bytes.fromhex(v['alice_private']))
    if (a.public_key().public_bytes_raw().hex() != v['alice_public'] or
            a.exchange(X25519PublicKey.from_public_bytes(bytes.fromhex(v['bob_public']))).hex()
            != v['shared']):
        bad.append('X25519 RFC 7748 section 6.1')
    return bad


if __name__ == '__main__':
    failures = selftest(sys.argv[1])
    for f in failures:
        print('FAIL:', f)
    print(f'dh-reference: {len(failures)} failures')
    sys.exit(1 if failures else 0)

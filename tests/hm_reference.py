#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The VLR token scheme's worked example (PROTOCOL.md section 9, kinds 2 and 3) checked outside C:
test_hm --example writes what keylined's engine and client produced for one session (test keys
only); this script derives K*a and K*b from the pair key with hmac (TS 33.220 Annex B KDF, FC
FF06) and opens both tokens with Python's cryptography AESGCM, then checks that the UE-side
checks refuse an altered tag or ciphertext, other servers (aad), other UEs, and a token whose
valid-to has passed.
    hm_reference.py TEST_HM"""
import hashlib
import hmac
import json
import os
import struct
import subprocess
import sys
import tempfile

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f'FAIL: {what}', flush=True)


def kdf(key, fc, *params):
    """TS 33.220 Annex B: HMAC-SHA-256(Key, FC || P0 || L0 || ...); a 2-byte FC starts 0xFF."""
    s = fc.to_bytes(2 if fc > 0xFF else 1, 'big')
    for p in params:
        s += p + len(p).to_bytes(2, 'big')
    return hmac.new(key, s, hashlib.sha256).digest()


def aad(vlr_a, vlr_b):
    return b'\x01' + bytes([len(vlr_a)]) + vlr_a + bytes([len(vlr_b)]) + vlr_b


class Refused(Exception):
    pass


def ue_open(token, kstar, vlr_a, vlr_b, ue_a, ue_b, now):
    """What a UE does with a token (section 9): version, GCM under K*x with the servers as aad,
    Ks || valid-to || len || IDUEa || len || IDUEb, both identities, valid-to in the future."""
    if len(token) < 1 + 12 + 16 or token[0] != 0x01:
        raise Refused('format')
    try:
        pt = AESGCM(kstar).decrypt(token[1:13], token[13:], aad(vlr_a, vlr_b))
    except InvalidTag:
        raise Refused('tag')
    ks, valid_to = pt[:16], struct.unpack('>Q', pt[16:24])[0]
    la = pt[24]
    ida = pt[25:25 + la]
    lb = pt[25 + la]
    idb = pt[26 + la:26 + la + lb]
    if 26 + la + lb != len(pt):
        raise Refused('format')
    if ida != ue_a or idb != ue_b:
        raise Refused('identities')
    if valid_to <= now:
        raise Refused('expired')
    return ks, valid_to


def refused(why, *args):
    try:
        ue_open(*args)
    except Refused as e:
        return str(e) == why
    return False


with tempfile.TemporaryDirectory(prefix='klhm') as td:
    path = os.path.join(td, 'example.json')
    p = subprocess.run([sys.argv[1], '--example', path], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f'test_hm --example ran: {p.stdout[-500:]}{p.stderr[-500:]}')
    with open(path) as f:
        ex = json.load(f)

b = lambda k: bytes.fromhex(ex[k])  # noqa: E731
vlr_a, vlr_b = ex['vlr_a'].encode(), ex['vlr_b'].encode()
ue_a, ue_b = ex['ue_a'].encode(), ex['ue_b'].encode()
pair, ks, valid_to = b('pair_key'), b('ks'), ex['valid_to']
ka, kb = kdf(pair, 0xFF06, ue_a), kdf(pair, 0xFF06, ue_b)
check(ka == b('kstar_a'), 'K*a in the kind 2 answer = KDF(pair key, FF06, IDUEa)')
check(kb == b('kstar_b'), 'K*b in the kind 3 answer = KDF(pair key, FF06, IDUEb)')
before = valid_to - 1
for name, tok, k in (('token_a', b('token_a'), ka), ('token_b', b('token_b'), kb)):
    try:
        got_ks, got_vt = ue_open(tok, k, vlr_a, vlr_b, ue_a, ue_b, before)
        check(got_ks == ks, f'{name} carries the Ks the C side opened')
        check(got_vt == valid_to, f'{name} carries the session valid-to')
    except Refused as e:
        check(False, f'{name} opens with K*x derived here: refused ({e})')
    check(tok[1:13] != (b('token_b') if name == 'token_a' else b('token_a'))[1:13],
          f'{name}: its own nonce')
    bad = bytearray(tok)
    bad[-1] ^= 1
    check(refused('tag', bytes(bad), k, vlr_a, vlr_b, ue_a, ue_b, before), f'{name}: altered tag')
    bad = bytearray(tok)
    bad[20] ^= 0x80
    check(refused('tag', bytes(bad), k, vlr_a, vlr_b, ue_a, ue_b, before),
          f'{name}: altered ciphertext')
    check(refused('tag', tok, k, vlr_b, vlr_a, ue_a, ue_b, before), f'{name}: servers swapped')
    check(refused('tag', tok, k, vlr_a, b'vlr-x.example', ue_a, ue_b, before),
          f'{name}: another peer server')
    check(refused('tag', tok, kdf(pair, 0xFF06, b'ue-x'), vlr_a, vlr_b, ue_a, ue_b, before),
          f'{name}: the K* of another UE')
    check(refused('identities', tok, k, vlr_a, vlr_b, ue_a, b'ue-x@ims', before),
          f'{name}: another peer UE')
    check(refused('expired', tok, k, vlr_a, vlr_b, ue_a, ue_b, valid_to),
          f'{name}: valid-to has passed')
# a token made here the same way opens the same way (the format is the profile's, not C's)
nonce = bytes(range(12))
pt = ks + struct.pack('>Q', valid_to) + bytes([len(ue_a)]) + ue_a + bytes([len(ue_b)]) + ue_b
mine = b'\x01' + nonce + AESGCM(ka).encrypt(nonce, pt, aad(vlr_a, vlr_b))
check(len(mine) == len(b('token_a')), 'a token made here has the length of the C one')
check(ue_open(mine, ka, vlr_a, vlr_b, ue_a, ue_b, before)[0] == ks, 'a token made here opens')

print(f'hm reference: {len(failures)} failed')
sys.exit(1 if failures else 0)

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Interop with tools keyline did not write. mikey_pcap_gen writes real requests, responses and
errors to a pcap on UDP 2269; tshark must decode every frame as MIKEY with no malformed field and
show the expected values; the KEMAC of each response is decrypted with `openssl enc -aes-128-ctr`
and every MAC checked with `openssl dgst -sha1 -hmac`, with transport keys from keyline-kdf.
Kinds 2 and 3 (the VLR token scheme) too: K*a and K*b decrypted by openssl equal keyline-kdf
vlr-token's, and keyline-kdf hm-open opens token_a with K*a and token_b with K*b to the same Ks.
Kinds 4-7 (PROTOCOL.md sections 9, 10): requests, answers ending in V with TLV 9, kind 5's KEMAC
answers, kind 7's push (a request carrying a KEMAC, no V) and ERR 12/5 with retry-after, every
TLV read from tshark's EXT data; P_a, p2 and p4 and the s2s PSK recomputed here (hmac, and
X25519 from Python's cryptography), the pushed and answered values decrypted by openssl; the
same schemes between two keylines' engines, their kind 6 and 7 messages to each other included.

usage: test_tshark_interop.py MIKEY_PCAP_GEN KEYLINE_KDF
"""
import hashlib
import hmac
import json
import os
import struct
import subprocess
import sys
import tempfile

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

GEN, KDF = sys.argv[1], sys.argv[2]
PAIR = b'pair-key-vlr-a-vlr-b-32-bytes!!!'.hex()  # mikey_pcap_gen's TEST pair key
kstar = {}
failures, passed = [], 0
# mikey_pcap_gen's kinds 4-7 (test keys): UEa's and UEb's keys, the ProSe UEs' KASMEs, p1 and p3
KA, KB = b'dh-ue-a-psk-0123456789abcdef-012', b'dh-ue-b-psk-0123456789abcdef-012'
KASME1, KASME2 = b'prose-kasme-ue1-0123456789abcdef', b'prose-kasme-ue2-0123456789abcdef'


def kdf(key, fc, *params):
    """TS 33.220 Annex B: HMAC-SHA-256(key, FC || P0 || L0 || ...)"""
    s = fc + b''.join(p + struct.pack('>H', len(p)) for p in params)
    return hmac.new(key, s, hashlib.sha256).digest()


def x25519_public(s):
    return X25519PrivateKey.from_private_bytes(s).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def ext_tlvs(ext_hex):
    """kind and {type: value} of a keyline EXT as tshark shows its data (each type once)"""
    d = bytes.fromhex(ext_hex.replace(':', ''))
    out, o = {}, 1
    while o + 3 <= len(d):
        t, n = d[o], struct.unpack_from('>H', d, o + 1)[0]
        out.setdefault(t, []).append(d[o + 3: o + 3 + n])
        o += 3 + n
    return (d[0] if d else None), out, o == len(d)


S_A = kdf(KA, b'\xff\x07', b'dh-x25519')
S_B = kdf(KB, b'\xff\x07', b'dh-x25519')
S2S = kdf(bytes.fromhex(PAIR), b'\xff\x09', b's2s')
P1, P3 = bytes(range(0xA0, 0xB0)), bytes(range(0xC0, 0xD0))
P2, P4 = kdf(KASME1, b'\xff\x04', P1), kdf(KASME2, b'\xff\x04', P3)


def check(what, cond, detail=''):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print(f'FAIL {what}: {detail}')


def run(cmd, data=None):
    r = subprocess.run(cmd, input=data, capture_output=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit(f'{cmd[0]} failed: {r.stderr.decode(errors="replace")}')
    return r.stdout


def udp_payloads(path):
    with open(path, 'rb') as f:
        data = f.read()
    off, out = 24, []
    while off < len(data):
        incl = struct.unpack_from('<I', data, off + 8)[0]
        frame = data[off + 16: off + 16 + incl]
        out.append(frame[42:])
        off += 16 + incl
    return out


def check_peer_kind(name, m, row, pl, end):
    """Kinds 4-7: the EXT's TLVs as tshark shows them, against values recomputed here."""
    kind, tlv, exact = ext_tlvs(row['mikey.ext.data'].split(',')[-1])
    check(f'{name}: EXT 250 of kind {m["kind"]}, TLVs fill it', kind == m['kind'] and exact, row['mikey.ext.data'])
    once = all(len(v) == 1 for v in tlv.values())
    check(f'{name}: each TLV once', once, tlv)
    tlv = {t: v[0] for t, v in tlv.items()}
    want = {('req', 4): {5, 6}, ('req', 5): {5, 6, 11, 12}, ('req', 6): {5}, ('req', 7): {13, 5, 12},
            ('resp', 4): {9}, ('resp', 6): {9}, ('resp', 5): {3}, ('resp', 7): set(),
            ('err', 4): {4, 10}, ('err', 5): {4, 10}}[(m['dir'], m['kind'])]
    check(f'{name}: TLVs {sorted(want)}', set(tlv) == want, sorted(tlv))
    if m['kind'] in (6, 7):
        check(f'{name}: PSK = KDF(pair key, FF09, "s2s")', m['psk'] == S2S.hex(), m['psk'])
    if m['dir'] == 'err':
        check(f'{name}: detail 5, retry-after {m["retry_ms"]} ms',
              tlv.get(4) == b'\x00\x05' and tlv.get(10) == struct.pack('>H', m['retry_ms']), tlv)
        check(f'{name}: no larger than its request', len(pl) <= len(prev_req[0]), len(pl))
    if m['dir'] == 'resp' and m['kind'] in (4, 6):
        # P_a = X25519(KDF(Ka, FF07, "dh-x25519"), 9); UEb and UEa agree on the shared secret
        check(f'{name}: TLV 9 = P_a', tlv.get(9) == x25519_public(S_A), tlv.get(9, b'').hex())
        if tlv.get(9):
            z_b = X25519PrivateKey.from_private_bytes(S_B).exchange(X25519PublicKey.from_public_bytes(tlv[9]))
            z_a = X25519PrivateKey.from_private_bytes(S_A).exchange(
                X25519PublicKey.from_public_bytes(x25519_public(S_B)))
            check(f'{name}: both UEs get the same X25519 secret', z_a == z_b and any(z_a))
    if m['dir'] == 'req' and m['kind'] == 5:
        check(f'{name}: p (TLV 11) and role (TLV 12)', (tlv.get(11), tlv.get(12)) in ((P1, b'\x01'), (P3, b'\x02')),
              tlv)
        prev_req[1] = tlv.get(11)
    if m['dir'] == 'resp' and m['kind'] == 5:
        # to UE1 (p1): p4 = KDF(KASME2, FF04, p3); to UE2 (p3): p2 = KDF(KASME1, FF04, p1)
        want_key = P4 if prev_req[1] == P1 else P2
        check(f'{name}: KEMAC carries the other side\'s value', m['keys'][0]['key'] == want_key.hex())
    if m['dir'] == 'req' and m['kind'] == 7:
        # UE1's p2 for UE2 (role 1), or UE2's p4 for UE1 (role 2)
        who = (tlv.get(13), tlv.get(5), tlv.get(12))
        ue1 = who == (b'ue1@prose.example', b'ue2@prose.example', b'\x01')
        check(f'{name}: pushes one UE\'s value for the other, with its role',
              ue1 or who == (b'ue2@prose.example', b'ue1@prose.example', b'\x02'), tlv)
        check(f'{name}: the pushed value is KDF(KASME, FF04, p) of that UE',
              m['keys'][0]['key'] == (P2 if ue1 else P4).hex())
    if m['dir'] == 'req':
        prev_req[0] = pl


prev_req = [b'', None]  # the request before an answer, and the p it carried

with tempfile.TemporaryDirectory() as td:
    pcap = os.path.join(td, 'mikey.pcap')
    meta = [json.loads(l) for l in run([GEN, pcap]).decode().splitlines() if l.strip()]
    payloads = udp_payloads(pcap)
    check('frames written', len(meta) == len(payloads) == 46, f'{len(meta)} {len(payloads)}')

    malformed = run(['tshark', '-n', '-r', pcap, '-Y', '_ws.malformed || _ws.expert.severity >= warning'])
    check('tshark finds no malformed or warning fields', malformed.strip() == b'', malformed.decode())
    fields = ['frame.number', 'udp.dstport', 'mikey.version', 'mikey.type', 'mikey.prf_func',
              'mikey.csb_id', 'mikey.rand.data', 'mikey.ext.type', 'mikey.v.ver_data',
              'mikey.kemac.key_data', 'mikey.kemac.mac', 'mikey.err.no', 'mikey.id.data',
              'mikey.ext.data']
    cmd = ['tshark', '-n', '-r', pcap, '-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=a',
           '-E', 'aggregator=,']
    for f in fields:
        cmd += ['-e', f]
    rows = [dict(zip(fields, l.split('|'))) for l in run(cmd).decode().splitlines()]
    check('tshark row per frame', len(rows) == len(meta), str(len(rows)))

    for m, row, pl in zip(meta, rows, payloads):
        name = f'frame {m["frame"]} ({m["dir"]}, kind {m["kind"]}, prf {m["prf"]})'
        want_type = {'req': '0', 'resp': '1', 'err': '6'}[m['dir']]
        check(f'{name}: decoded as MIKEY v1', row['mikey.version'] == '1', row)
        check(f'{name}: data type', row['mikey.type'] == want_type, row['mikey.type'])
        check(f'{name}: csb_id', int(row['mikey.csb_id'], 0) == int(m['csb_id'], 16), row['mikey.csb_id'])
        check(f'{name}: rand', row['mikey.rand.data'].replace(':', '') == m['rand'], row['mikey.rand.data'])
        check(f'{name}: port 2269', row['udp.dstport'] == ('2269' if m['dir'] == 'req' or m.get('s2s') else '40000'))
        if m['dir'] != 'err':
            exts = row['mikey.ext.type'].split(',')
            want_ext = '250' if m['dir'] == 'resp' or m['kind'] >= 1 else '2'
            check(f'{name}: ext type', want_ext in exts, row['mikey.ext.type'])
        if m['dir'] == 'err':
            check(f'{name}: err no', row['mikey.err.no'] == str(m['err_no']), row['mikey.err.no'])
        # transport keys from keyline-kdf, MAC by openssl
        prf = 'hmac-sha256' if m['prf'] == 1 else 'mikey-1'
        tk = dict(l.split('=', 1) for l in run([KDF, 'mikey-keys', '--psk', m['psk'], '--csb-id',
                                                 m['csb_id'], '--rand', m['rand'], '--prf', prf]).decode().split())
        mac = run(['openssl', 'dgst', '-sha1', '-mac', 'HMAC', '-macopt', f'hexkey:{tk["auth_key"]}',
                   '-binary'], pl[:-20])
        check(f'{name}: MAC verifies with openssl', mac == pl[-20:], mac.hex())
        end = m.get('end', 'kemac' if m['dir'] == 'resp' else 'v')
        tshark_mac = (row['mikey.kemac.mac'] if end == 'kemac' else row['mikey.v.ver_data']).replace(':', '')
        check(f'{name}: tshark shows the MAC', tshark_mac == pl[-20:].hex(), tshark_mac)
        check(f'{name}: ends in {end}', not row[{'v': 'mikey.kemac.mac', 'kemac': 'mikey.v.ver_data'}[end]],
              row)
        if m['kind'] >= 4:
            check_peer_kind(name, m, row, pl, end)
        if end != 'kemac':
            continue
        # AES-CM: IV = (salt XOR (0x0000 || CSB ID || T)) || 0x0000, T of this message
        enc = bytes.fromhex(row['mikey.kemac.key_data'].replace(':', ''))
        salt = bytes.fromhex(tk['salt_key'])
        x = b'\0\0' + bytes.fromhex(m['csb_id']) + pl[12:20]
        iv = bytes(a ^ b for a, b in zip(salt, x)) + b'\0\0'
        plain = run(['openssl', 'enc', '-d', '-aes-128-ctr', '-nopad', '-K', tk['encr_key'], '-iv', iv.hex()], enc)
        keys, o = [], 0
        while o < len(plain):
            nxt, typ, kl = plain[o], plain[o + 1], struct.unpack_from('>H', plain, o + 2)[0]
            key = plain[o + 4: o + 4 + kl]
            spi_len = plain[o + 4 + kl]
            spi = plain[o + 5 + kl: o + 5 + kl + spi_len]
            keys.append({'key': key.hex(), 'id': spi.hex(), 'type': typ})
            o += 5 + kl + spi_len
            if nxt == 0:
                break
        check(f'{name}: key data fills KEMAC exactly', o == len(plain), f'{o} {len(plain)}')
        check(f'{name}: keys decrypted by openssl', [(k['key'], k['id']) for k in keys] ==
              [(k['key'], k['id']) for k in m['keys']], f'{keys} vs {m["keys"]}')
        check(f'{name}: Key data type TEK / KV SPI', all(k['type'] == 0x21 for k in keys))
        if m['kind'] == 1:
            want = run([KDF, 'e2m-key', '--key', '77' * 32, '--emse-id', 'emse-1.example']).decode().strip()
            check(f'{name}: e2m_key equals keyline-kdf', keys and keys[0]['key'] == want, want)
            check(f'{name}: no IMSI in the response', b'001010123456789' not in pl)

        if m['kind'] in (2, 3):
            want = run([KDF, 'vlr-token', '--key', PAIR, '--id-ue',
                        'ue@ims.example' if m['kind'] == 2 else 'ue-b@ims.example']).decode().strip()
            check(f'{name}: K* equals keyline-kdf vlr-token', keys and keys[0]['key'] == want, want)
            kstar[m['kind']] = keys[0]['key'] if keys else ''
        if m['kind'] == 2:
            tokens = (m.get('token_a', ''), m.get('token_b', ''))
            check(f'{name}: both tokens in the datagram',
                  all(t and bytes.fromhex(t) in pl for t in tokens))
    # the tokens of kind 2 open with the K*a and K*b that openssl decrypted (keyline-kdf hm-open):
    # the same Ks for both UEs
    hm = [m for m in meta if m['kind'] == 2 and m['dir'] == 'resp']
    kcv = []
    for kind, tok in ((2, 'token_a'), (3, 'token_b')):
        kf = os.path.join(td, f'kstar{kind}.hex')
        with open(kf, 'w') as f:
            f.write(kstar.get(kind, '') + '\n')
        r = subprocess.run([KDF, 'hm-open', '--kstar-file', kf, '--token', hm[0].get(tok, '') if hm else '',
                            '--vlr-a', 'keyline.example.net', '--vlr-b', 'vlr-b.example', '--ue-a',
                            'ue@ims.example', '--ue-b', 'ue-b@ims.example'], capture_output=True, text=True)
        kcv.append(r.stdout.split('\n')[0] if r.returncode == 0 else f'error {r.stderr}')
    check('token_a and token_b give the same Ks', kcv[0].startswith('ks_kcv=') and kcv[0] == kcv[1], kcv)

print(f'tshark interop: {passed} passed, {len(failures)} failed')
sys.exit(1 if failures else 0)

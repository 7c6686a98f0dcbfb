#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Seeds for fuzz_engine, written from PROTOCOL.md sections 2, 4, 9 and 10 (not with the codec, so a layout
mistake in the codec cannot hide in its own seeds). First byte: odd = the harness re-signs
(bits 1..7 pick T's offset from the engine's clock: 0x81 -> 0 s, 0x01 -> -128 s, 0xfd -> +124 s).
The MAC is left zero: re-signing fills it.
    gen_engine_corpus.py OUTDIR"""
import os
import struct
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def req(ident, ext_type, ext, prf=0, id_type=0, csb=0x1234, rand=bytes(range(16))):
    m = bytes([1, 0, 5, prf]) + struct.pack('>I', csb) + b'\x00\x01'
    m += bytes([11, 0]) + struct.pack('>Q', 0)
    m += bytes([6, 16]) + rand
    m += bytes([21, id_type]) + struct.pack('>H', len(ident)) + ident
    m += bytes([9, ext_type]) + struct.pack('>H', len(ext)) + ext
    m += bytes([0, 1]) + bytes(20)
    return m


def mbms(group, number):
    return bytes([1]) + struct.pack('>H', 7) + bytes([0x00, 0xF1, 0x10]) + struct.pack('>HH', group, number)


def e2m(ue, key_id=None):
    d = bytes([1, 1]) + struct.pack('>H', len(ue)) + ue
    if key_id is not None:
        d += bytes([2]) + struct.pack('>HI', 4, key_id)
    return d


n = 0
for first in (0x81, 0x01, 0xFD, 0x80):
    for prf in (0, 1):
        for g, num in ((1, 0), (1, 5), (1, 6), (1, 99), (2, 0), (3, 0), (4, 0)):
            m = req(b'ue@fuzz.example', 2, mbms(g, num), prf=prf, csb=n)
            open(os.path.join(out, f'mbms-{first:02x}-p{prf}-g{g}-n{num}'), 'wb').write(bytes([first]) + m)
            n += 1
        for ue, kid in ((b'001010000000001', None), (b'001010000000001', 0x100), (b'001010000000001', 0x101),
                        (b'001010000000001', 0x999), (b'001010000000002', None), (b'app@fuzz', None),
                        (b'nobody@fuzz', None), (b'001010000000009', None)):
            m = req(b'emse@fuzz.example', 250, e2m(ue, kid), prf=prf, id_type=1, csb=n)
            name = f'e2m-{first:02x}-p{prf}-{ue.decode()}-{kid if kid is not None else "newest"}'
            open(os.path.join(out, name), 'wb').write(bytes([first]) + m)
            n += 1
# kinds 2 and 3 (section 9): EXT 250, kind, TLV 5 peer UE, TLV 6 peer server, TLV 255 padding
def tlv(t, v):
    return bytes([t]) + struct.pack('>H', len(v)) + v


for first in (0x81, 0x01):
    for prf in (0, 1):
        for server in (b'vlr-b@fuzz', b'vlr-old@fuzz', b'vlr-x@fuzz'):
            for pad in (None, 0, 60):
                ext = bytes([2]) + tlv(5, b'peer@fuzz.example') + tlv(6, server)
                ext += tlv(255, bytes(pad)) if pad is not None else b''
                m = req(b'ue@fuzz.example', 250, ext, prf=prf, csb=n)
                name = f'hm-{first:02x}-p{prf}-{server.decode()}-pad{pad}'
                open(os.path.join(out, name), 'wb').write(bytes([first]) + m)
                n += 1
            m = req(b'ue@fuzz.example', 250, bytes([3]) + tlv(6, server), prf=prf, csb=n)
            open(os.path.join(out, f'kstar-{first:02x}-p{prf}-{server.decode()}'), 'wb').write(bytes([first]) + m)
            n += 1
open(os.path.join(out, 'hm-same-ue'), 'wb').write(
    b'\x81' + req(b'ue@fuzz.example', 250, bytes([2]) + tlv(5, b'ue@fuzz.example') + tlv(6, b'vlr-b@fuzz')))
open(os.path.join(out, 'unknown-identity'), 'wb').write(b'\x81' + req(b'who@fuzz.example', 2, mbms(1, 0)))
open(os.path.join(out, 'garbage'), 'wb').write(b'\x81' + bytes(range(90)))
n += 3


# kinds 4-7 (sections 9 and 10): kind 4 TLV 5, 6; kind 5 TLV 5, 6, 11 (p, 16), 12 (role); kind 6
# TLV 5 from a peer server; kind 7 TLV 13, 5, 12 and a KEMAC (one key data sub-payload: p2, SPI 0)
# instead of V. Kinds 6 and 7 come from a server identity the harness holds no key for.
def push(ident, ext, prf=0, csb=0x77, key=bytes(range(32))):
    m = req(ident, 250, ext, prf=prf, csb=csb)[:-22]
    m = m[:38 + 4 + len(ident)] + bytes([1]) + m[38 + 4 + len(ident) + 1:]  # EXT next: KEMAC
    kd = bytes([0, 0x21]) + struct.pack('>H', len(key)) + key + bytes([4]) + bytes(4)
    return m + bytes([0, 1]) + struct.pack('>H', len(kd)) + kd + bytes([1]) + bytes(20)


seeds = {}
for first in (0x81, 0x01):
    for prf in (0, 1):
        seeds[f'dh-{first:02x}-p{prf}'] = (first, req(b'ue@fuzz.example', 250, bytes([4]) + tlv(5, b'peer@fuzz.example') + tlv(6, b'vlr-b@fuzz'), prf=prf, csb=n))
        n += 1
        for role in (1, 2):
            ext = bytes([5]) + tlv(5, b'peer@fuzz.example') + tlv(6, b'vlr-b@fuzz') + tlv(11, bytes(range(16))) + tlv(12, bytes([role]))
            seeds[f'prose-{first:02x}-p{prf}-role{role}'] = (first, req(b'ue@fuzz.example', 250, ext, prf=prf, csb=n))
            n += 1
seeds['dh-same-ue'] = (0x81, req(b'ue@fuzz.example', 250, bytes([4]) + tlv(5, b'ue@fuzz.example') + tlv(6, b'vlr-b@fuzz')))
seeds['prose-role3'] = (0x81, req(b'ue@fuzz.example', 250, bytes([5]) + tlv(5, b'peer@fuzz.example') + tlv(6, b'vlr-b@fuzz') + tlv(11, bytes(16)) + tlv(12, b'\x03')))
seeds['peerpv'] = (0x81, req(b'vlr-b@fuzz', 250, bytes([6]) + tlv(5, b'ue@fuzz.example')))
seeds['peerpv-unknown-ue'] = (0x81, req(b'vlr-b@fuzz', 250, bytes([6]) + tlv(5, b'nobody@fuzz')))
seeds['push'] = (0x81, push(b'vlr-b@fuzz', bytes([7]) + tlv(13, b'peer@fuzz.example') + tlv(5, b'ue@fuzz.example') + tlv(12, b'\x02')))
seeds['push-padded'] = (0x81, push(b'vlr-b@fuzz', bytes([7]) + tlv(13, b'peer@fuzz.example') + tlv(5, b'ue@fuzz.example') + tlv(12, b'\x01') + tlv(255, bytes(8)), prf=1))
seeds['push-v'] = (0x81, req(b'vlr-b@fuzz', 250, bytes([7]) + tlv(13, b'peer@fuzz.example') + tlv(5, b'ue@fuzz.example') + tlv(12, b'\x02')))
# both UEs on this server (TLV 6 = keyline.fuzz): kind 4 answered from the table; kind 5 with
# bit 1 of the first byte set is preceded by the other UE's request in the same burst
for prf in (0, 1):
    for me, other in ((b'ue@fuzz.example', b'peer@fuzz.example'), (b'peer@fuzz.example', b'ue@fuzz.example')):
        seeds[f'dh-local-p{prf}-{me.decode()}'] = (0x81, req(me, 250, bytes([4]) + tlv(5, other) + tlv(6, b'keyline.fuzz'), prf=prf, csb=n))
        n += 1
    for first in (0x81, 0x83):
        for role in (1, 2):
            ext = bytes([5]) + tlv(5, b'peer@fuzz.example') + tlv(6, b'keyline.fuzz') + tlv(11, bytes(range(16, 32))) + tlv(12, bytes([role]))
            seeds[f'prose-local-{first:02x}-p{prf}-role{role}'] = (first, req(b'ue@fuzz.example', 250, ext, prf=prf, csb=n))
            n += 1
for name, (first, m) in seeds.items():
    open(os.path.join(out, name), 'wb').write(bytes([first]) + m)
print(f'{len(os.listdir(out))} seeds in {out}')

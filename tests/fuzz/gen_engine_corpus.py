#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Seeds for fuzz_engine, written from PROTOCOL.md section 2 (not with the codec, so a layout
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
print(f'{n + 3} seeds in {out}')

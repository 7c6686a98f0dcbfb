#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Seeds for fuzz_zn_bia: Bootstrapping-Info-Answers written from RFC 6733 (message and AVP
framing) and TS 29.109 (the Zn AVPs), not with keyline's codec or freeDiameter:
    gen_zn_corpus.py OUTDIR"""
import os
import struct
import sys

NOW = 1800000000          # the harness's clock
NTP = 2208988800
V3GPP = 10415


def avp(code, data, vendor=0, m=True):
    flags = (0x80 if vendor else 0) | (0x40 if m else 0)
    hl = 12 if vendor else 8
    h = struct.pack('>I', code) + struct.pack('>I', (flags << 24) | (hl + len(data)))
    if vendor:
        h += struct.pack('>I', vendor)
    return h + data + bytes(-len(data) % 4)


def u32(code, x, vendor=0):
    return avp(code, struct.pack('>I', x), vendor)


def t(code, unix):
    return avp(code, struct.pack('>I', (unix + NTP) & 0xFFFFFFFF), V3GPP)


def msg(avps, cmd=310, app=16777220, flags=0x40):
    body = b''.join(avps)
    return (bytes([1]) + struct.pack('>I', 20 + len(body))[1:] + bytes([flags]) +
            struct.pack('>I', cmd)[1:] + struct.pack('>III', app, 0x1234, 0x5678) + body)


HEAD = [avp(263, b'keyline-zn;1;2;3'), u32(277, 1), avp(264, b'bsf.keyline.test'),
        avp(296, b'keyline.test')]
KEY = bytes(range(32))
IMPI = avp(1, b'ue-000001@ims.keyline.test')


def ok(key=KEY, expiry=NOW + 3600, extra=(), rc=2001, impi=IMPI, gba=0):
    a = HEAD + [u32(268, rc), impi]
    if key is not None:
        a.append(avp(405, key, V3GPP))
    if expiry is not None:
        a.append(t(404, expiry))
    a += [t(408, NOW - 10), u32(410, gba, V3GPP)] + list(extra)
    return msg(a)


def exp(code, vendor=V3GPP):
    return msg(HEAD + [avp(297, u32(266, vendor) + u32(298, code))])


seeds = {
    'ok': ok(),
    'ok-2g': ok(gba=1),
    'ok-unknown-avp': ok(extra=[avp(999, b'x' * 5, 12345, m=False)]),
    'ok-utf8-impi': ok(impi=avp(1, 'ue-é@ims.keyline.test'.encode())),
    'expired': ok(expiry=NOW - 60),
    'no-key': ok(key=None),
    'short-key': ok(key=KEY[:16]),
    'no-expiry': ok(expiry=None),
    'no-impi': msg(HEAD + [u32(268, 2001), avp(405, KEY, V3GPP), t(404, NOW + 60)]),
    'dup-key': ok(extra=[avp(405, KEY, V3GPP)]),
    'bad-gba': ok(gba=7),
    'rc-5012': ok(rc=5012),
    'rc-3002': msg(HEAD + [u32(268, 3002)], flags=0x60),
    '5401': exp(5401),
    '5402': exp(5402),
    '5403': exp(5403),
    '5999': exp(5999),
    'exp-wrong-vendor': exp(5401, vendor=1),
    'rc-and-exp': msg(HEAD + [u32(268, 2001), avp(297, u32(266, V3GPP) + u32(298, 5401))]),
    'request-bit': msg(HEAD + [u32(268, 2001)], flags=0xC0),
    'other-app': msg(HEAD + [u32(268, 2001)], app=16777216),
    'truncated': ok()[:-3],
    'bad-avp-len': ok()[:20] + struct.pack('>II', 268, 0x40000003) + ok()[28:],
}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keyline-kdf against the published vectors (read from the files), on both backends, checked
with the openssl command line where a vector does not exist; bad input must give one line on
stderr, nothing on stdout, and exit 2.

usage: test_kdf_cli.py KEYLINE_KDF VECTORS_DIR
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

CLI, VEC = sys.argv[1], sys.argv[2]
failures = []
passed = 0


def load(name):
    return kl_itest.load_vectors(os.path.join(VEC, name))


def run(args):
    return subprocess.run([CLI] + args, capture_output=True, text=True, timeout=30)


def check(what, cond, detail=''):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(f'{what}: {detail}')
        print(f'FAIL {what}: {detail}')


def out_of(args):
    r = run(args)
    if r.returncode != 0:
        return None, r
    return r.stdout, r


for be in ('ipsec-mb', 'openssl'):
    B = ['--backend', be]
    for v in load('milenage.txt'):
        for keyopt in (['--op', v['op']], ['--opc', v['opc']]):
            o, r = out_of(B + ['milenage', '--k', v['k'], '--rand', v['rand'], '--sqn', v['sqn'],
                               '--amf', v['amf']] + keyopt)
            got = dict(l.split('=', 1) for l in (o or '').split())
            for f in ('opc', 'f1_mac_a', 'f1star_mac_s', 'f2_res', 'f3_ck', 'f4_ik', 'f5_ak',
                      'f5star_ak'):
                check(f'{be} milenage {v["name"]} {f}', got.get(f) == v[f], f'{got.get(f)} != {v[f]} ({r.stderr.strip()})')
    for v in load('kdf_3gpp.txt'):
        key = v['ck'] + v['ik'] if 'ck' in v and 'ik' in v else v['key']
        ps = []
        i = 0
        while f'p{i}' in v:
            ps += ['--p', 'hex:' + v[f'p{i}']]
            i += 1
        o, r = out_of(B + ['kdf', '--key', key, '--fc', v['fc']] + ps)
        check(f'{be} kdf {v["name"]}', o and o.strip() == v['out'], f'{o} ({r.stderr.strip()})')
        if v['kdf'] == 'kasme':
            o, r = out_of(B + ['kasme', '--ck', v['ck'], '--ik', v['ik'], '--sn-id', v['p0'],
                               '--sqn-xor-ak', v['p1']])
            check(f'{be} kasme row {v["name"]}', o and o.strip() == v['out'], f'{o} ({r.stderr.strip()})')
    tk_seen = 0
    for v in load('mikey_prf.txt'):
        prf = 'mikey-1' if v['prf'] == 'mikey-1' else 'hmac-sha256'
        consts = {}
        for k, val in v.items():
            m = re.fullmatch(r'(\w+)_const_([0-9a-f]{8})_(\d+)', k)
            if not m:
                continue
            consts[m.group(2)] = val
            o, r = out_of(B + ['mikey-prf', '--prf', prf, '--inkey', v['inkey'], '--rand', v['rand'],
                               '--csb-id', v['csb_id'], '--cs-id', v['cs_id'], '--const', m.group(2),
                               '--len', m.group(3)])
            check(f'{be} mikey-prf {v["name"]} {k}', o and o.strip() == val, f'{o} ({r.stderr.strip()})')
        if all(c in consts for c in ('2d22ac75', '150533e1', '29b88916')):
            o, r = out_of(B + ['mikey-keys', '--prf', prf, '--psk', v['inkey'], '--rand', v['rand'],
                               '--csb-id', v['csb_id'], '--cs-id', v['cs_id']])
            got = dict(l.split('=', 1) for l in (o or '').split())
            check(f'{be} mikey-keys {v["name"]}',
                  got.get('auth_key') == consts['2d22ac75'] and got.get('encr_key') == consts['150533e1']
                  and got.get('salt_key') == consts['29b88916'], f'{got}')
            tk_seen += 1
    check(f'{be} mikey-keys vectors present', tk_seen >= 1)

    # The e2m rows are profile choices: the row must be exactly the raw KDF PROTOCOL.md defines.
    ck, ik = '00112233445566778899aabbccddeeff', 'ffeeddccbbaa99887766554433221100'
    o1, _ = out_of(B + ['e2m-int-key', '--ck', ck, '--ik', ik])
    o2, _ = out_of(B + ['kdf', '--key', ck + ik, '--fc', 'ff01', '--p', 'text:e2m_CIoT'])
    check(f'{be} e2m-int-key row', o1 and o1 == o2, f'{o1} vs {o2}')
    o3, _ = out_of(B + ['e2m-key', '--key', o1.strip(), '--emse-id', 'emse-42.example'])
    o4, _ = out_of(B + ['kdf', '--key', o1.strip(), '--fc', 'ff02', '--p', 'text:emse-42.example',
                        '--p', 'text:e2m_CIoT'])
    check(f'{be} e2m-key row', o3 and o3 == o4, f'{o3} vs {o4}')
    fq = 'bmsc.example'.encode().hex() + '0100000001'
    o5, _ = out_of(B + ['ks-naf', '--ck', ck, '--ik', ik, '--rand', '00' * 16, '--impi', 'u@ims.example',
                        '--bmsc-fqdn', 'bmsc.example'])
    o6, _ = out_of(B + ['kdf', '--key', ck + ik, '--fc', '01', '--p', 'text:gba-me', '--p', '00' * 16,
                        '--p', 'text:u@ims.example', '--p', 'hex:' + fq])
    check(f'{be} ks-naf MBMS NAF_Id', o5 and o5 == o6, f'{o5} vs {o6}')

# Key check values against the openssl command line.
for key in ('000102030405060708090a0b0c0d0e0f', 'ae6852f8121067cc4bf7a5765577f39e'):
    o, _ = out_of(['kcv', '--key', key])
    ref = subprocess.run(['openssl', 'enc', '-aes-128-ecb', '-nopad', '-K', key], input=b'\0' * 16,
                         capture_output=True, timeout=30).stdout.hex()[:6]
    check(f'kcv {key[:6]}', o and o.strip() == ref and len(ref) == 6, f'{o} vs {ref}')
o, _ = out_of(['e2m-key-id', '--rand', '23553cbe9637a89d218ae64dae47bf35'])
check('e2m-key-id', o and o.strip() == 'ae47bf35', o)

# Bad input: one line on stderr, nothing on stdout, exit 2.
ck32 = '00' * 32
bad = [
    [],
    ['nope'],
    ['kdf', '--key', ck32],
    ['kdf', '--key', ck32, '--fc', '0100'],
    ['kdf', '--key', ck32, '--fc', 'ff'],
    ['kdf', '--key', ck32, '--fc', '10', '--p', 'hex:abc'],
    ['kdf', '--key', ck32, '--fc', '10', '--p', 'hex:zz'],
    ['kdf', '--key', ck32, '--fc', '10'] + ['--p', 'text:a'] * 17,
    ['kdf', '--key', '', '--fc', '10'],
    ['kdf', '--key', ck32, '--fc', '10', '--bogus', '1'],
    ['kdf', '--key', ck32, '--fc'],
    ['kdf', '--key', ck32, 'stray'],
    ['kasme', '--key', ck32, '--key', ck32, '--sn-id', '00', '--sqn-xor-ak', '00'],
    ['kasme', '--ck', '00' * 16, '--sn-id', '00', '--sqn-xor-ak', '00'],
    ['kasme', '--key', ck32, '--sn-id', '00'],
    ['mikey-keys', '--psk', ck32, '--csb-id', '0102', '--rand', '00' * 16],
    ['mikey-keys', '--psk', ck32, '--csb-id', '01020304', '--rand', '00' * 15],
    ['mikey-keys', '--psk', '00' * 129, '--csb-id', '01020304', '--rand', '00' * 16],
    ['mikey-keys', '--psk', ck32, '--csb-id', '01020304', '--rand', '00' * 16, '--prf', 'md5'],
    ['mikey-prf', '--inkey', ck32, '--csb-id', '01020304', '--rand', '00' * 16, '--const', '01020304', '--len', '0'],
    ['mikey-prf', '--inkey', ck32, '--csb-id', '01020304', '--rand', '00' * 16, '--const', '01020304', '--len', '65'],
    ['mikey-prf', '--inkey', ck32, '--csb-id', '01020304', '--rand', '00' * 16, '--const', '01020304', '--len', '-1'],
    ['milenage', '--k', '00' * 16, '--op', '00' * 16, '--opc', '00' * 16, '--rand', '00' * 16, '--sqn', '00' * 6, '--amf', '0000'],
    ['milenage', '--k', '00' * 15, '--op', '00' * 16, '--rand', '00' * 16, '--sqn', '00' * 6, '--amf', '0000'],
    ['milenage', '--k', '00' * 16, '--op', '00' * 16, '--rand', '00' * 16, '--sqn', '00' * 6],
    ['e2m-key-id', '--rand', '00'],
    ['kcv', '--key', ''],
    ['ks-naf', '--key', ck32, '--rand', '00', '--impi', 'x', '--naf-id', '00', '--bmsc-fqdn', 'b'],
    ['--backend', 'aesni', 'kcv', '--key', '00' * 16],
    ['list', '--x', 'y'],
]
for args in bad:
    r = run(args)
    lines = [l for l in r.stderr.splitlines() if not l.startswith('keyline crypto:')]
    ok = r.returncode == 2 and r.stdout == '' and (len(lines) == 1 or not args)
    check(f'bad input {args[:3]}', ok, f'rc={r.returncode} stdout={r.stdout!r} stderr={r.stderr!r}')
    check(f'no traceback/crash {args[:3]}', r.returncode >= 0, f'signal {r.returncode}')

r = run(['list'])
check('list has every row', r.returncode == 0 and len(r.stdout.splitlines()) == 14, r.stdout)
r = run(['--help'])
check('help', r.returncode == 0 and 'mikey-keys' in r.stdout, r.stdout)

print(f'keyline-kdf CLI: {passed} passed, {len(failures)} failed')
sys.exit(1 if failures else 0)

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keyline-kdf's VLR token commands (PROTOCOL.md section 9) on test_hm's worked example (test keys):
hm-open opens token_a with K*a and token_b with K*b and prints the key check value of Ks (the
example's Ks, computed here with cryptography/hmac) and its valid-to, never Ks or K*x; every altered
byte of a token, a swapped server, another UE and a passed valid-to are refused with exit 1 and
one line; --out writes Ks (hex) to a new 0600 file only; kstar prints the KCV of K*x.

usage: test_kdf_hm.py KEYLINE_KDF TEST_HM
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kl_itest import Checks, kcv as kcv_ref  # noqa: E402

CLI, TEST_HM = sys.argv[1], sys.argv[2]
C = Checks('kdf-hm')


def check(what, cond, detail=''):
    C.check(cond, f'{what}: {detail}' if detail else what)


def run(args):
    return subprocess.run([CLI] + args, capture_output=True, text=True, timeout=30)


with tempfile.TemporaryDirectory() as d:
    ex_path = os.path.join(d, 'example.json')
    subprocess.run([TEST_HM, '--example', ex_path], check=True, capture_output=True, timeout=120)
    with open(ex_path) as f:
        ex = json.load(f)
    files = {}
    for name in ('kstar_a', 'kstar_b', 'pair_key'):
        files[name] = os.path.join(d, name + '.hex')
        with open(files[name], 'w') as f:
            f.write(' ' + ex[name] + '\n')
    secrets = [ex['ks'], ex['kstar_a'], ex['kstar_b'], ex['pair_key']]
    # the KCVs expected are computed here (kl_itest.kcv: cryptography / hmac), not by keyline-kdf
    kcv = lambda key: kcv_ref(bytes.fromhex(key)).lower()
    ks_kcv = kcv(ex['ks'])
    for name in ('ks', 'kstar_a', 'kstar_b'):
        r = run(['kcv', '--key', ex[name]])
        check(f'keyline-kdf kcv of {name}', r.returncode == 0 and
              r.stdout.strip().lower() == kcv(ex[name]), r.stdout + r.stderr)
    ids = ['--vlr-a', ex['vlr_a'], '--vlr-b', ex['vlr_b'], '--ue-a', ex['ue_a'], '--ue-b', ex['ue_b']]

    def hm_open(kstar, token, extra=(), idargs=None):
        return run(['hm-open', '--kstar-file', files[kstar], '--token', token] +
                   (idargs or ids) + list(extra))

    def no_secret(what, r):
        out = (r.stdout + r.stderr).lower()
        check(what + ': no key printed', not any(s in out for s in secrets))

    for be in ([], ['--backend', 'openssl']):
        for kstar, tok in (('kstar_a', 'token_a'), ('kstar_b', 'token_b')):
            r = run(be + ['hm-open', '--kstar-file', files[kstar], '--token', ex[tok]] + ids)
            check(f'{tok} {be}: opens', r.returncode == 0, r.stderr)
            lines = dict(l.split('=', 1) for l in r.stdout.split())
            check(f'{tok} {be}: Ks KCV', lines.get('ks_kcv') == ks_kcv, r.stdout)
            check(f'{tok} {be}: valid-to', int(lines.get('valid_to_ntp', '0'), 16) == ex['valid_to'],
                  r.stdout)
            no_secret(tok, r)
    # every byte altered: refused with one line, exit 1
    tok = bytes.fromhex(ex['token_a'])
    bad = 0
    for i in range(len(tok)):
        t = bytearray(tok)
        t[i] ^= 0x40
        r = hm_open('kstar_a', t.hex())
        if r.returncode != 1 or r.stdout or len(r.stderr.strip().splitlines()) < 1:
            bad += 1
    check(f'all {len(tok)} altered tokens refused', bad == 0, f'{bad} opened or misreported')
    r = hm_open('kstar_b', ex['token_a'])
    check('the other UE\'s K* refused', r.returncode == 1 and 'tag' in r.stderr, r.stderr)
    swapped = ['--vlr-a', ex['vlr_b'], '--vlr-b', ex['vlr_a']] + ids[4:]
    r = hm_open('kstar_a', ex['token_a'], idargs=swapped)
    check('swapped servers refused', r.returncode == 1 and 'tag' in r.stderr, r.stderr)
    other = ids[:6] + ['--ue-b', 'ue-x@ims.example']
    r = hm_open('kstar_a', ex['token_a'], idargs=other)
    check('other UEs refused', r.returncode == 1 and 'other UEs' in r.stderr, r.stderr)
    late = str((ex['valid_to'] >> 32) - 2208988800 + 1)
    r = hm_open('kstar_a', ex['token_a'], ['--now', late])
    check('passed valid-to refused', r.returncode == 1 and 'expired' in r.stderr, r.stderr)
    early = str((ex['valid_to'] >> 32) - 2208988800 - 10)
    r = hm_open('kstar_a', ex['token_a'], ['--now', early])
    check('valid-to ahead: opens', r.returncode == 0, r.stderr)
    # --out: Ks in a new 0600 file, never over an existing one
    out = os.path.join(d, 'ks.hex')
    r = hm_open('kstar_b', ex['token_b'], ['--out', out])
    check('--out: exit 0', r.returncode == 0, r.stderr)
    check('--out: mode 0600', os.path.exists(out) and (os.stat(out).st_mode & 0o777) == 0o600)
    with open(out) as f:
        check('--out: Ks', f.read().strip() == ex['ks'])
    no_secret('--out', r)
    r = hm_open('kstar_b', ex['token_b'], ['--out', out])
    check('--out: an existing file is refused', r.returncode == 2 and not r.stdout, r.stderr)
    # usage errors: exit 2, nothing echoed
    r = run(['hm-open', '--kstar-file', files['kstar_a'], '--token', ex['token_a']] + ids[:6])
    check('missing --ue-b: exit 2', r.returncode == 2 and 'ue-b' in r.stderr, r.stderr)
    r = run(['hm-open', '--kstar-file', files['kstar_a'], '--token', 'zz' + ex['token_a']] + ids)
    check('bad hex: exit 2', r.returncode == 2 and ex['token_a'] not in r.stderr, r.stderr)
    # kstar: the KCV of K*x, from the pair key file
    for ue, name in ((ex['ue_a'], 'kstar_a'), (ex['ue_b'], 'kstar_b')):
        r = run(['kstar', '--pair-key-file', files['pair_key'], '--ue', ue])
        check(f'kstar {name}', r.returncode == 0 and r.stdout.strip() == 'kstar_kcv=' + kcv(ex[name]),
              r.stdout + r.stderr)
        no_secret('kstar', r)
    r = run(['kstar', '--pair-key-file', files['kstar_a'] + '.none', '--ue', ex['ue_a']])
    check('kstar: missing file exit 2', r.returncode == 2, r.stderr)
    r = run(['--help'])
    check('--help documents the token layout', 'token layout' in r.stdout and 'hm-open' in r.stdout
          and 'vlr-token' in r.stdout)

sys.exit(C.done())

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keyline-kdf's key-recovery commands for the DH VLR scheme and the ProSe network-assisted keys
(PROTOCOL.md section 9) against the test-only reference (dh_reference.py: Python's cryptography
X25519, the 3GPP KDF by hmac), on both crypto backends, for random inputs (test keys):
  dh-pub prints P and its fingerprint; dh-ks's Ks (its --out file, its KCV computed here) from
  UEa's key and P_b equals the reference and the Ks from UEb's key and P_a; prose-p gives p2 and
  p4, prose-kd KD from them. No key is printed; a low-order peer value is refused (exit 1);
  usage errors exit 2. The reference's own KDF is first checked against the published vectors.

usage: test_kdf_dh.py KEYLINE_KDF VECTORS_DIR
"""
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dh_reference as ref  # noqa: E402
from kl_itest import Checks, kcv as kcv_ref  # noqa: E402

CLI, VEC = sys.argv[1], sys.argv[2]
C = Checks('kdf-dh')
RNG = random.Random(int(os.environ.get('KL_DH_SEED', '0')) or None)


def check(what, cond, detail=''):
    C.check(cond, f'{what}: {detail}' if detail else what)


def run(args):
    return subprocess.run([CLI] + args, capture_output=True, text=True, timeout=30)


def rnd(n):
    return bytes(RNG.getrandbits(8) for _ in range(n))


def kv(stdout):
    return dict(line.split('=', 1) for line in stdout.split())


for f in ref.selftest(VEC):
    check('reference self-test', False, f)

with tempfile.TemporaryDirectory() as d:
    seq = [0]

    def keyfile(b):
        seq[0] += 1
        path = os.path.join(d, f'k{seq[0]}.hex')
        with open(path, 'w') as f:
            f.write(b.hex() + '\n')
        return path

    def outfile():
        seq[0] += 1
        return os.path.join(d, f'out{seq[0]}.hex')

    def read_out(path):
        with open(path) as f:
            return bytes.fromhex(f.read().strip())

    def no_secret(what, r, secrets):
        text = (r.stdout + r.stderr).lower()
        # (a key of a few bytes shows up in any hex by chance: only longer ones are looked for)
        check(what + ': no key printed', not any(s.hex() in text for s in secrets
                                                 if len(s) >= 8))

    # UE keys of 32 bytes (the usual MUK), 1 and 64; identities of which one is a prefix of
    # the other, one sorting below the other either way
    cases = [(32, 32, 'ue-a@ims.example', 'ue-b@ims.example'),
             (64, 32, 'ue-b@ims.example', 'ue-a@ims.example'),
             (1, 40, 'ue@ims', 'ue@ims.example'),
             (32, 17, 'zz', 'z')]
    cases += [(32, 32, f'a{RNG.randrange(10**6)}@x', f'b{RNG.randrange(10**6)}@x')
              for _ in range(3)]
    for be in ([], ['--backend', 'openssl']):
        tag = be[1] if be else 'ipsec-mb'
        for n, (la, lb, ida, idb) in enumerate(cases):
            ka, kb = rnd(la), rnd(lb)
            pa, pb = ref.dh_pub(ka), ref.dh_pub(kb)
            fa, fb = keyfile(ka), keyfile(kb)
            # dh-pub: P (public) and its fingerprint
            for k, f, p in ((ka, fa, pa), (kb, fb, pb)):
                r = run(be + ['dh-pub', '--key-file', f])
                o = kv(r.stdout) if r.returncode == 0 else {}
                check(f'{tag} case {n}: dh-pub', o.get('dh_pub') == p.hex() and
                      o.get('dh_pub_fp') == ref.dh_pub_fp(p), r.stdout + r.stderr)
                no_secret(f'{tag} dh-pub', r, [k])
            # dh-ks from each side: the reference's Ks, the same on both sides
            ks = ref.dh_ks(ka, pb, ida.encode(), idb.encode())
            check(f'case {n}: reference symmetric', ks == ref.dh_ks(kb, pa, idb.encode(),
                                                                    ida.encode()))
            for k, f, peer, me, other in ((ka, fa, pb, ida, idb), (kb, fb, pa, idb, ida)):
                out = outfile()
                r = run(be + ['dh-ks', '--key-file', f, '--peer-pub', peer.hex(), '--ue', me,
                              '--peer-ue', other, '--out', out])
                check(f'{tag} case {n} {me}: dh-ks exit 0', r.returncode == 0, r.stderr)
                check(f'{tag} case {n} {me}: Ks KCV', r.stdout.strip() ==
                      'ks_kcv=' + kcv_ref(ks).lower(), r.stdout)
                check(f'{tag} case {n} {me}: Ks', os.path.exists(out) and read_out(out) == ks)
                check(f'{tag} case {n} {me}: --out 0600', os.path.exists(out) and
                      (os.stat(out).st_mode & 0o777) == 0o600)
                no_secret(f'{tag} dh-ks', r, [k, ks])
            # prose: p2 from KASME1 and p1, p4 from KASME2 and p3, KD from p2 and p4
            k1, k2, p1, p3 = rnd(32), rnd(32), rnd(16), rnd(16)
            p2, p4 = ref.prose_p(k1, p1), ref.prose_p(k2, p3)
            kd = ref.prose_kd(p2, p4)
            for kasme, p, want, name in ((k1, p1, p2, 'p2'), (k2, p3, p4, 'p4')):
                out = outfile()
                r = run(be + ['prose-p', '--kasme-file', keyfile(kasme), '--p', p.hex(),
                              '--out', out])
                check(f'{tag} case {n}: prose-p {name}', r.returncode == 0 and
                      r.stdout.strip() == 'p_kcv=' + kcv_ref(want).lower() and
                      read_out(out) == want, r.stdout + r.stderr)
                no_secret(f'{tag} prose-p', r, [kasme, want])
            out = outfile()
            r = run(be + ['prose-kd', '--p2-file', keyfile(p2), '--p4-file', keyfile(p4),
                          '--out', out])
            check(f'{tag} case {n}: prose-kd', r.returncode == 0 and
                  r.stdout.strip() == 'kd_kcv=' + kcv_ref(kd).lower() and read_out(out) == kd,
                  r.stdout + r.stderr)
            no_secret(f'{tag} prose-kd', r, [p2, p4, kd])
            # without --out: the KCV only
            r = run(be + ['prose-kd', '--p2-file', keyfile(p2), '--p4-file', keyfile(p4)])
            check(f'{tag} case {n}: prose-kd without --out', r.returncode == 0 and
                  r.stdout.strip() == 'kd_kcv=' + kcv_ref(kd).lower(), r.stdout + r.stderr)

    # refusals: a low-order peer value (exit 1, one line, no --out file left); usage errors
    # (exit 2, nothing on stdout)
    fa = keyfile(rnd(32))
    for u in ('00' * 32, '01' + '00' * 31):
        out = outfile()
        r = run(['dh-ks', '--key-file', fa, '--peer-pub', u, '--ue', 'a', '--peer-ue', 'b',
                 '--out', out])
        check('low-order peer value refused', r.returncode == 1 and not r.stdout and
              'all zero' in r.stderr and not os.path.exists(out), r.stdout + r.stderr)
    good = ref.dh_pub(rnd(32)).hex()
    existing = outfile()
    open(existing, 'w').close()
    for what, args in (
            ('equal identities', ['dh-ks', '--key-file', fa, '--peer-pub', good, '--ue', 'a',
                                  '--peer-ue', 'a']),
            ('short peer value', ['dh-ks', '--key-file', fa, '--peer-pub', good[:-2], '--ue', 'a',
                                  '--peer-ue', 'b']),
            ('missing --peer-ue', ['dh-ks', '--key-file', fa, '--peer-pub', good, '--ue', 'a']),
            ('existing --out', ['dh-ks', '--key-file', fa, '--peer-pub', good, '--ue', 'a',
                                '--peer-ue', 'b', '--out', existing]),
            ('missing key file', ['dh-pub', '--key-file', fa + '.none']),
            ('key over 64 bytes', ['dh-pub', '--key-file', keyfile(rnd(65))]),
            ('p of 15 bytes', ['prose-p', '--kasme-file', fa, '--p', rnd(15).hex()]),
            ('KASME of 31 bytes', ['prose-p', '--kasme-file', keyfile(rnd(31)), '--p',
                                   rnd(16).hex()]),
            ('unknown option', ['prose-kd', '--p2-file', fa, '--p4-file', fa, '--key', '00']),
            ('key on the command line', ['dh-pub', '--key', '00' * 32])):
        r = run(args)
        check(f'{what}: exit 2', r.returncode == 2 and not r.stdout and
              len(r.stderr.strip().splitlines()) >= 1, f'{r.returncode} {r.stdout!r} {r.stderr!r}')
    r = run(['--help'])
    check('--help documents key recovery', all(c in r.stdout for c in (
        'dh-pub', 'dh-ks', 'prose-p', 'prose-kd', 'key recovery')), r.stdout)

sys.exit(C.done())

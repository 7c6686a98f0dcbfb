#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The UE side of the DH VLR scheme and of ProSe (PROTOCOL.md sections 7 and 9) checked outside C:
test_client_peer --example writes what keyline's client functions computed for one DH pair and
one ProSe pair (test keys only); this script derives the same values with the project's test-only
reference, dh_reference.py (Python's cryptography X25519, the TS 33.220 Annex B KDF by hmac):
  s_x = KDF(Kx, FF07, "dh-x25519"), P_x = X25519(s_x, 9),
  Ks = KDF(X25519(s_a, P_b), FF08, ID_lo, ID_hi) (= X25519(s_b, P_a)),
  p2 = KDF(KASME1, FF04, p1), p4 = KDF(KASME2, FF04, p3), KD = KDF(p2, FF05, p4).
It also checks that the reference notices another own key, another input and swapped p2/p4,
so that an agreement is not an accident of the check.
    client_peer_reference.py TEST_CLIENT_PEER"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dh_reference as ref  # noqa: E402

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f'FAIL: {what}', flush=True)


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

    check(ref.dh_pub(b['k_a']) == b['p_a'], 'P_a = X25519(KDF(Ka, FF07, "dh-x25519"), 9)')
    check(ref.dh_pub(b['k_b']) == b['p_b'], 'P_b = X25519(KDF(Kb, FF07, "dh-x25519"), 9)')
    ks_a = ref.dh_ks(b['k_a'], b['p_b'], ue_a, ue_b)
    ks_b = ref.dh_ks(b['k_b'], b['p_a'], ue_b, ue_a)
    check(ks_a == ks_b, 'the reference itself: UEa and UEb agree')
    check(ks_a == b['ks'], 'Ks of keyline\'s client = the reference\'s')
    # the reference must be able to disagree
    check(ref.dh_ks(b['k_b'], b['p_b'], ue_a, ue_b) != b['ks'], 'another own key differs')
    check(ref.kdf(b['ks'], ref.FC_DH_KS, ue_b, ue_a) != b['ks'], 'another input differs')

    p2 = ref.prose_p(b['kasme1'], b['p1'])
    p4 = ref.prose_p(b['kasme2'], b['p3'])
    check(p2 == b['p2'], 'p2 = KDF(KASME1, FF04, p1)')
    check(p4 == b['p4'], 'p4 = KDF(KASME2, FF04, p3)')
    check(ref.prose_kd(p2, p4) == b['kd'], 'KD = KDF(p2, FF05, p4)')
    check(ref.prose_kd(p4, p2) != b['kd'], 'KD with p2 and p4 swapped differs')

    print(f'client-peer reference: {len(failures)} failure(s)')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())

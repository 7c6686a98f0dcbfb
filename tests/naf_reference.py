# SPDX-License-Identifier: BSD-3-Clause
"""The MT side of the NAF Key Center outside C, for tests (PROTOCOL.md sections 7 and 11):
Milenage f3/f4 (TS 35.206, with Python's cryptography AES), the TS 33.220 Annex B KDF with hmac,
Ks_(ext)_NAF (FC 01) and Ks_local_MT (FC FF03), key check values, the published Milenage test
sets of shared/vectors/milenage.txt, and UE files in the format of keyline-hss-sim bsf
(contract BSF_SIM.md)."""
import base64
import hashlib
import hmac
import json
import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import kl_itest


def _aes(k, block):
    e = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def _xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def _rot(b, nbytes):
    return b[nbytes:] + b[:nbytes]


def milenage_ck_ik(k, opc, rand):
    """CK = f3, IK = f4 (TS 35.206 4.1: r3 = 32, c3 = 2; r4 = 64, c4 = 4)."""
    temp = _aes(k, _xor(rand, opc))
    ck = _xor(_aes(k, _xor(_rot(_xor(temp, opc), 4), (2).to_bytes(16, 'big'))), opc)
    ik = _xor(_aes(k, _xor(_rot(_xor(temp, opc), 8), (4).to_bytes(16, 'big'))), opc)
    return ck, ik


def opc_of(k, op):
    return _xor(op, _aes(k, op))


def kdf(key, fc, *params):
    s = fc
    for p in params:
        s += p + len(p).to_bytes(2, 'big')
    return hmac.new(key, s, hashlib.sha256).digest()


def ks_naf(ck, ik, rand, impi, naf_id):
    return kdf(ck + ik, b'\x01', b'gba-me', rand, impi.encode(), naf_id)


def ks_local_mt(ksnaf, btid, naf_id, device_id):
    return kdf(ksnaf, b'\xff\x03', btid.encode(), naf_id, device_id.encode())


def mt_key(ue, naf_id, device_id):
    """Ks_local_MT from a UE file entry (dict with hex k, opc, rand; impi, b_tid)."""
    ck, ik = milenage_ck_ik(bytes.fromhex(ue['k']), bytes.fromhex(ue['opc']),
                            bytes.fromhex(ue['rand']))
    return ks_local_mt(ks_naf(ck, ik, bytes.fromhex(ue['rand']), ue['impi'], naf_id),
                       ue['b_tid'], naf_id, device_id)


def kcv(key):
    """kl_kcv: AES-128-ECB(key, 0^128) for 16 bytes, else HMAC-SHA-256(key, 0^128); 3 bytes."""
    if len(key) == 16:
        return _aes(key, bytes(16))[:3].hex()
    return hmac.new(key, bytes(16), hashlib.sha256).digest()[:3].hex()


def milenage_sets(vectors_dir):
    return [b for b in kl_itest.load_vectors(os.path.join(vectors_dir, 'milenage.txt'))
            if 'f3_ck' in b and 'opc' in b]


def ue_entry(index, run, s, domain='bsf.keyline.test', expires=4102444800):
    """A UE file line (dict) for a published Milenage set s: B-TID = base64(RAND)@domain."""
    rand = bytes.fromhex(s['rand'])
    return {'index': index, 'run': run, 'impi': f'ue-{index:06d}@ims.keyline.test',
            'b_tid': base64.b64encode(rand).decode() + '@' + domain, 'k': s['k'],
            'opc': s['opc'], 'rand': s['rand'], 'sqn': s['sqn'], 'amf': s['amf'],
            'expires': expires}


def write_ue_file(path, entries):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as f:
        for e in entries:
            f.write(json.dumps(e) + '\n')

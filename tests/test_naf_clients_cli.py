#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The NAF Key Center's clients without keylined (issue 13 item 6):
- the Python reference (naf_reference.py: KDF with hmac, Milenage f3/f4 with AES) against the
  published KDF vectors (kdf_3gpp.txt) and TS 35.208 sets (milenage.txt);
- keyline-kdf gba-ks-local-mt against the published Milenage test sets of TS 35.208
  (shared/vectors/milenage.txt): the key it writes equals Ks_local_MT derived in Python (hmac) from
  the PUBLISHED CK and IK, and the chain of the existing commands (ks-naf --ck --ik, ks-local-mt);
  --op, --opc and --ue-file forms agree; its KCVs are kcv's.
- the UE file reader (kl_naf_ue_read, through --ue-file) on malformed lines: each refused with
  exit 2 naming its line, never echoing K.
- keyline-device: argument errors (exit 2, nothing created, nothing echoed), then against a
  scripted mutual-TLS peer (naf_peer.py: Python ssl, keys derived in Python): the key file (new,
  0600, equal to the MT side), Device_ID from the certificate's CN, every error status -> its exit
  code and the JSON error on stderr, malformed 200 answers -> 9, an existing --out refused and
  --force replacing it, a server capped at TLS 1.1 refused, a certificate of another CA refused,
  --delete's URL-encoded path with the operator certificate.
- keyline-burst --kind naf against the same peer: keep-alive (one handshake per device) and
  full-handshake (one per request), every key verified; a wrong key fails its device
  (wrong_key); keyline-report renders the summary.
- the UE file of the real keyline-hss-sim bsf: every line read by gba-ks-local-mt --ue-file gives
  the key the Python reference derives from that line.
    test_naf_clients_cli.py KEYLINE_KDF KEYLINE_DEVICE KEYLINE_BURST MAKE_TEST_PKI KEYLINE_REPORT
                            VECTORS_DIR KEYLINE_HSS_SIM"""
import json
import os
import ssl
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402
import naf_peer  # noqa: E402
import naf_reference as ref  # noqa: E402

KDF, DEV, BURST, PKI_SH, REPORT, VEC, SIM = map(os.path.abspath, sys.argv[1:8])
NAF = b'naf.keyline.test' + bytes([1, 0, 0, 0, 2])
fails = []
passed = [0]


def check(cond, what):
    if cond:
        passed[0] += 1
    else:
        fails.append(what)
        print(f'FAIL: {what}', flush=True)


def run(args, **kw):
    if args[0] in (DEV, BURST) and 'env' not in kw:
        from kl_dtest import client_env  # (imported below for the Diameter parts)
        kw['env'] = client_env()
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)


def kv(stdout):
    return dict(line.split('=', 1) for line in stdout.splitlines() if '=' in line)


def no_secret(r, secrets, what):
    for s in secrets:
        check(s.lower() not in (r.stdout + r.stderr).lower(), f'{what}: a secret shows')


tmp = tempfile.mkdtemp(prefix='kl-naf-cli-')
sets = ref.milenage_sets(VEC)
check(len(sets) >= 2, 'two published Milenage sets')

# ---- the Python reference's KDF and Milenage against the published vectors ----------------------
nkdf = 0
for v in kl_itest.load_vectors(os.path.join(VEC, 'kdf_3gpp.txt')):
    key = bytes.fromhex(v['key']) if 'key' in v and ':' not in v['key'] and ' ' not in v['key'] \
        else bytes.fromhex(v.get('ck', '') + v.get('ik', ''))
    params = [bytes.fromhex(v[f'p{i}']) for i in range(8) if f'p{i}' in v]
    got = ref.kdf(key, bytes.fromhex(v['fc']), *params)
    check(got.hex() == v['out'], f'reference KDF = published {v["name"]}')
    nkdf += 1
check(nkdf >= 4, 'published KDF vectors read')
for s in sets:
    ck, ik = ref.milenage_ck_ik(bytes.fromhex(s['k']), bytes.fromhex(s['opc']),
                                bytes.fromhex(s['rand']))
    check(ck.hex() == s['f3_ck'] and ik.hex() == s['f4_ik'] and
          ref.opc_of(bytes.fromhex(s['k']), bytes.fromhex(s['op'])).hex() == s['opc'],
          f'reference Milenage = published {s["name"]}')

# ---- keyline-kdf gba-ks-local-mt against the published vectors ---------------------------------
ues = [ref.ue_entry(i, 0, s) for i, s in enumerate(sets)]
uefile = os.path.join(tmp, 'ues.jsonl')
ref.write_ue_file(uefile, ues)
for i, s in enumerate(sets):
    ue = ues[i]
    dev = f'device-{i + 1:04d}.test'
    ck, ik = bytes.fromhex(s['f3_ck']), bytes.fromhex(s['f4_ik'])  # the published CK, IK
    want_naf = ref.ks_naf(ck, ik, bytes.fromhex(s['rand']), ue['impi'], NAF)
    want = ref.ks_local_mt(want_naf, ue['b_tid'], NAF, dev)
    common = ['--btid', ue['b_tid'], '--naf-id', NAF.hex(), '--device-id', dev]
    forms = {
        'opc': ['--k', s['k'], '--opc', s['opc'], '--rand', s['rand'], '--sqn', s['sqn'],
                '--amf', s['amf'], '--impi', ue['impi']],
        'op': ['--k', s['k'], '--op', s['op'], '--rand', s['rand'], '--sqn', s['sqn'],
               '--amf', s['amf'], '--impi', ue['impi']],
        'ue-file': ['--ue-file', uefile],
    }
    for name, args in forms.items():
        out = os.path.join(tmp, f'ks-{i}-{name}')
        r = run([KDF, 'gba-ks-local-mt'] + args + common + ['--out', out])
        check(r.returncode == 0, f'{s["name"]} {name}: exit {r.returncode} {r.stderr}')
        if r.returncode:
            continue
        got = open(out).read().strip()
        check(got == want.hex(), f'{s["name"]} {name}: Ks_local_MT differs from the published '
                                 f'CK/IK chain')
        check(stat.S_IMODE(os.stat(out).st_mode) == 0o600, f'{s["name"]} {name}: mode')
        o = kv(r.stdout)
        check(o.get('ks_local_mt_kcv') == ref.kcv(want), f'{s["name"]} {name}: KCV')
        check(o.get('ks_naf_kcv') == ref.kcv(want_naf), f'{s["name"]} {name}: Ks_NAF KCV')
        no_secret(r, [want.hex(), want_naf.hex(), s['k'], ck.hex(), ik.hex()], f'{name} output')
    # the existing commands chained give the same key
    r1 = run([KDF, 'ks-naf', '--ck', s['f3_ck'], '--ik', s['f4_ik'], '--rand', s['rand'],
              '--impi', ue['impi'], '--naf-id', NAF.hex()])
    r2 = run([KDF, 'ks-local-mt', '--key', r1.stdout.strip(), '--btid', ue['b_tid'],
              '--naf-id', NAF.hex(), '--device-id', dev])
    check(r1.stdout.strip() == want_naf.hex() and r2.stdout.strip() == want.hex(),
          f'{s["name"]}: ks-naf + ks-local-mt chain')
    r = run([KDF, 'kcv', '--key', want.hex()])
    check(r.stdout.strip() == ref.kcv(want), 'kcv command = reference KCV')

# gba-ks-local-mt errors: exit 2, one line, nothing on stdout, no key echoed
s = sets[0]
base = ['--k', s['k'], '--opc', s['opc'], '--rand', s['rand'], '--sqn', s['sqn'], '--amf',
        s['amf'], '--impi', 'ue@x', '--btid', 'b@x', '--naf-id', NAF.hex(), '--device-id', 'd']
existing = os.path.join(tmp, 'exists')
open(existing, 'w').close()
bad = {
    'missing --device-id': base[:-2],
    'short K': ['--k', s['k'][:30]] + base[2:],
    'bad hex OPc': base[:2] + ['--opc', 'zz' * 16] + base[4:],
    'op and opc': base + ['--op', s['op']],
    'ue-file and k': ['--ue-file', uefile] + base,
    'empty naf-id': base[:-4] + ['--naf-id', '', '--device-id', 'd'],
    'out exists': base + ['--out', existing],
    'unknown option': base + ['--bogus', '1'],
    'missing ue file': ['--ue-file', os.path.join(tmp, 'nope'), '--btid', 'b', '--naf-id', '01',
                        '--device-id', 'd'],
}
for what, args in bad.items():
    r = run([KDF, 'gba-ks-local-mt'] + args)
    check(r.returncode == 2 and not r.stdout and r.stderr.count('\n') == 1,
          f'gba-ks-local-mt {what}: exit {r.returncode} out {r.stdout!r} err {r.stderr!r}')
    no_secret(r, [s['k'], s['opc']], f'gba-ks-local-mt {what}')
r = run([KDF, 'gba-ks-local-mt', '--ue-file', uefile, '--btid', 'nobody@x', '--naf-id', '01',
         '--device-id', 'd', '--out', os.path.join(tmp, 'nokey')])
check(r.returncode == 1 and not os.path.exists(os.path.join(tmp, 'nokey')),
      f'unknown B-TID in the UE file: exit 1, no file ({r.returncode})')

# ---- the UE file reader on malformed lines ------------------------------------------------------
good = json.dumps(ues[0])
K = ues[0]['k']
malformed = {
    'not JSON': '{"index": 1,',
    'an array': '[1, 2]',
    'missing k': json.dumps({k: v for k, v in ues[0].items() if k != 'k'}),
    'short k': json.dumps(dict(ues[0], k=K[:-2])),
    'odd hex': json.dumps(dict(ues[0], opc=ues[0]['opc'][:-1] + 'g')),
    'k a number': json.dumps(dict(ues[0], k=5)),
    'negative index': json.dumps(dict(ues[0], index=-1)),
    'impi with a space': json.dumps(dict(ues[0], impi='ue 1@x')),
    'empty b_tid': json.dumps(dict(ues[0], b_tid='')),
    'long b_tid': json.dumps(dict(ues[0], b_tid='b' * 256)),
    'expires a string': json.dumps(dict(ues[0], expires='soon')),
    'duplicate member': good[:-1] + ', "k": "' + K + '"}',
}
for n, (what, line) in enumerate(malformed.items()):
    f = os.path.join(tmp, f'bad-{n}.jsonl')
    with open(f, 'w') as fh:
        fh.write(good + '\n\n' + line + '\n')
    r = run([KDF, 'gba-ks-local-mt', '--ue-file', f, '--btid', ues[0]['b_tid'], '--naf-id',
             '01', '--device-id', 'd'])
    check(r.returncode == 2 and 'line 3' in r.stderr and not r.stdout,
          f'UE file {what}: exit {r.returncode} err {r.stderr!r}')
    no_secret(r, [K, ues[0]['opc']], f'UE file {what}')
f = os.path.join(tmp, 'empty.jsonl')
open(f, 'w').close()
r = run([KDF, 'gba-ks-local-mt', '--ue-file', f, '--btid', 'b', '--naf-id', '01', '--device-id', 'd'])
check(r.returncode == 2 and 'no UE' in r.stderr, f'empty UE file: {r.returncode} {r.stderr!r}')

# ---- the UE file keyline-hss-sim bsf writes --------------------------------------------------------
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'diameter'))
from kl_dtest import Pki, free_port  # noqa: E402
os.makedirs(os.path.join(tmp, 'dia'))
dpki = Pki(os.path.join(tmp, 'dia'), leaves=('bsf.keyline.test',))
simfile = os.path.join(tmp, 'sim-ues.jsonl')
cert, key = dpki.cred('bsf.keyline.test')
sim = subprocess.Popen([SIM, '--identity', 'bsf.keyline.test', '--cert', cert, '--key', key,
                        '--ca', dpki.p('ca.pem'), '--listen', '127.0.0.1', 'bsf', '--port',
                        str(free_port()), '--ues', '4', '--runs', '2', '--seed', '11',
                        '--ue-file', simfile], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
end = time.time() + 20
while not os.path.exists(simfile) and time.time() < end and sim.poll() is None:
    time.sleep(0.05)
sim.terminate()
sim.wait(timeout=30)
simues = [json.loads(x) for x in open(simfile)] if os.path.exists(simfile) else []
check(len(simues) == 8, f'keyline-hss-sim bsf wrote 4 UEs x 2 runs ({len(simues)})')
for u in simues:
    f = os.path.join(tmp, f'sim-ks-{u["index"]}-{u["run"]}')
    r = run([KDF, 'gba-ks-local-mt', '--ue-file', simfile, '--btid', u['b_tid'], '--naf-id',
             NAF.hex(), '--device-id', 'device-0002.test', '--out', f])
    check(r.returncode == 0 and open(f).read().strip() ==
          ref.mt_key(u, NAF, 'device-0002.test').hex(),
          f'bsf UE file line {u["index"]}/{u["run"]}: gba-ks-local-mt = reference ({r.stderr})')

# ---- keyline-device -----------------------------------------------------------------------------
pki = os.path.join(tmp, 'pki')
r = run([PKI_SH, pki, '--devices', '12'])
check(r.returncode == 0, f'make-test-pki: {r.stderr}')
D1 = ['--cert', f'{pki}/device-0001.pem', '--key', f'{pki}/device-0001.key', '--ca',
      f'{pki}/server-ca.pem']
out = os.path.join(tmp, 'dev-key')
plant = 'c0ffee' * 8
usage = {
    'no --out': D1 + ['--b-tid', 'b@x'],
    'no --b-tid': D1 + ['--out', out],
    'no --ca': D1[:4] + ['--b-tid', 'b@x', '--out', out],
    'http URL': D1 + ['--b-tid', 'b@x', '--out', out, '--url', 'http://localhost:1'],
    'URL with a path': D1 + ['--b-tid', 'b@x', '--out', out, '--url', 'https://h:1/v1/x'],
    'bad naf-id': D1 + ['--b-tid', 'b@x', '--out', out, '--naf-id', 'xyz'],
    'twice': D1 + ['--b-tid', 'b@x', '--b-tid', 'c@x', '--out', out],
    'stray key': D1 + ['--b-tid', 'b@x', '--out', out, plant],
    'unknown option': D1 + ['--b-tid', 'b@x', '--out', out, '--key-hex', plant],
    'b-tid with a space': D1 + ['--b-tid', 'b x', '--out', out],
    'timeout 0': D1 + ['--b-tid', 'b@x', '--out', out, '--timeout-s', '0'],
    'delete without device-id': D1 + ['--b-tid', 'b@x', '--delete'],
    'delete with out': D1 + ['--b-tid', 'b@x', '--delete', '--device-id', 'd', '--out', out],
    'cert without CN': ['--cert', f'{pki}/device-0001.key', '--key', 'k', '--ca', 'c',
                        '--b-tid', 'b@x', '--out', out],
}
for what, args in usage.items():
    r = run([DEV] + args)
    check(r.returncode == 2 and not r.stdout and 'keyline-device:' in r.stderr and
          not os.path.exists(out), f'keyline-device {what}: exit {r.returncode} {r.stderr!r}')
    no_secret(r, [plant], f'keyline-device {what}')
r = run([DEV, '--help'])
check(r.returncode == 0 and 'Exit:' in r.stdout, 'keyline-device --help')

peer = naf_peer.Peer(pki, ues, NAF)
U = ['--url', peer.url]
ue = ues[0]
want = ref.mt_key(ue, NAF, 'device-0001.test')
r = run([DEV] + D1 + U + ['--b-tid', ue['b_tid'], '--out', out])
o = kv(r.stdout)
check(r.returncode == 0, f'device fetch: exit {r.returncode} {r.stderr}')
check(os.path.exists(out) and open(out).read().strip() == want.hex(),
      'device fetch: the key file holds the MT-side key')
check(os.path.exists(out) and stat.S_IMODE(os.stat(out).st_mode) == 0o600, 'key file 0600')
check(o.get('ks_local_mt_kcv') == ref.kcv(want) and o.get('device_id') == 'device-0001.test' and
      o.get('naf_id') == NAF.hex() and o.get('lifetime_s') == '3600' and
      o.get('expires', '').endswith('Z'), f'device fetch: printed values {o}')
no_secret(r, [want.hex()], 'device fetch')
req = peer.requests[-1]
check(req['body'] == {'b_tid': ue['b_tid'], 'device_id': 'device-0001.test'} and
      req['ctype'] == 'application/json' and req['tls'] in ('TLSv1.3', 'TLSv1.2'),
      f'device request: Device_ID from the CN, no naf_id unless given: {req}')
# an existing --out is refused before any request; --force replaces it (0600)
n = len(peer.requests)
r = run([DEV] + D1 + U + ['--b-tid', ue['b_tid'], '--out', out])
check(r.returncode == 2 and len(peer.requests) == n, f'existing --out refused: {r.returncode}')
os.chmod(out, 0o644)
with open(out, 'w') as fh:
    fh.write('old\n')
r = run([DEV] + D1 + U + ['--b-tid', ue['b_tid'], '--out', out, '--force', '--naf-id', NAF.hex()])
check(r.returncode == 0 and open(out).read().strip() == want.hex() and
      stat.S_IMODE(os.stat(out).st_mode) == 0o600, f'--force replaces (0600): {r.stderr}')
check(peer.requests[-1]['body'].get('naf_id') == NAF.hex(), '--naf-id sent')
check(not [x for x in os.listdir(tmp) if x.startswith('dev-key.')], '--force leaves no temp file')
# --device-id other than the CN: the peer refuses (403) as the Key Center would
r = run([DEV] + D1 + U + ['--b-tid', ue['b_tid'], '--out', out + '-x', '--device-id', 'other.test'])
check(r.returncode == 4 and not os.path.exists(out + '-x'), f'Device_ID mismatch: {r.returncode}')
# every status -> its exit code; the JSON error on stderr; no file left
codes = {'st-400@bsf.test': (3, 'bad_request'), 'st-403@bsf.test': (4, 'forbidden'),
         'st-404@bsf.test': (5, 'not_found'), 'st-429@bsf.test': (6, 'rate_limited'),
         'st-503@bsf.test': (7, 'bsf_unreachable'), 'st-418@bsf.test': (8, 'teapot'),
         'st-500-nojson@bsf.test': (8, 'no JSON error'), 'bad-json@bsf.test': (9, 'not JSON'),
         'short-key@bsf.test': (9, 'ks_local_mt'), 'huge@bsf.test': (9, 'longer than'), 'other-btid@bsf.test': (9, 'another B-TID')}
for btid, (code, text) in codes.items():
    f = os.path.join(tmp, 'k-' + btid)
    r = run([DEV] + D1 + U + ['--b-tid', btid, '--out', f])
    check(r.returncode == code and text in r.stderr and not os.path.exists(f) and not r.stdout,
          f'{btid}: exit {r.returncode} (want {code}) {r.stderr!r}')
# a certificate of another CA: the handshake fails, exit 1
r = run([DEV, '--cert', f'{pki}/other-device.pem', '--key', f'{pki}/other-device.key', '--ca',
         f'{pki}/server-ca.pem'] + U + ['--b-tid', ue['b_tid'], '--out', out + '-o'])
check(r.returncode == 1 and not os.path.exists(out + '-o'), f'other CA: exit {r.returncode}')
# the wrong server CA: exit 1
r = run([DEV] + D1[:4] + ['--ca', f'{pki}/other-ca.pem'] + U + ['--b-tid', ue['b_tid'], '--out',
                                                                  out + '-c'])
check(r.returncode == 1 and 'no answer' in r.stderr, f'unknown server CA: exit {r.returncode}')
# delete: operator certificate, the B-TID and Device_ID URL-encoded in the path
OP = ['--cert', f'{pki}/operator.pem', '--key', f'{pki}/operator.key', '--ca', f'{pki}/server-ca.pem']
r = run([DEV, '--delete'] + OP + U + ['--b-tid', ue['b_tid'], '--device-id', 'device-0001.test'])
enc = ue['b_tid'].replace('+', '%2B').replace('/', '%2F').replace('=', '%3D').replace('@', '%40')
check(r.returncode == 0 and peer.requests[-1]['method'] == 'DELETE' and
      peer.requests[-1]['path'] == f'/v1/ks-local-mt/{enc}/device-0001.test',
      f'delete: {r.returncode} {peer.requests[-1]}')
r = run([DEV, '--delete'] + D1 + U + ['--b-tid', ue['b_tid'], '--device-id', 'device-0001.test'])
check(r.returncode == 4, f'delete with a device certificate: 403 -> 4 ({r.returncode})')
peer.close()

# a server that offers TLS 1.1 at most is refused
old = naf_peer.Peer(pki, ues, NAF, tls_max=ssl.TLSVersion.TLSv1_1)
r = run([DEV] + D1 + ['--url', old.url, '--b-tid', ue['b_tid'], '--out', out + '-t'])
check(r.returncode == 1 and not old.requests and not os.path.exists(out + '-t'),
      f'TLS 1.1 server refused: exit {r.returncode}')
old.close()
# nothing listening: exit 1
r = run([DEV] + D1 + ['--url', 'https://127.0.0.1:1', '--b-tid', 'b@x', '--out', out + '-n'])
check(r.returncode == 1, f'connection refused: exit {r.returncode}')

# ---- keyline-burst --kind naf -------------------------------------------------------------------
bues = [ref.ue_entry(i, 0, sets[i % len(sets)], domain=f'bsf{i}.test') for i in range(10)]
bfile = os.path.join(tmp, 'burst-ues.jsonl')
ref.write_ue_file(bfile, bues)
peer = naf_peer.Peer(pki, bues, NAF, wrong_key_for=())
B = [BURST, '--kind', 'naf', '--pki', pki, '--ue-file', bfile, '--naf-id', NAF.hex(), '--url',
     peer.url, '--interval-ms', '0']
for mode, extra, hs in (('keep-alive', [], 12), ('full-handshake', ['--full-handshake'], 36)):
    c0 = peer.connections
    r = run(B + ['--devices', '12', '--requests', '3'] + extra)
    check(r.returncode == 0, f'burst {mode}: exit {r.returncode} {r.stderr[-500:]}')
    try:
        s = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        s = {}
    naf = s.get('naf') or {}
    check(s.get('ok') == 12 and s.get('failed') == 0 and naf.get('keys_verified') == 36 and
          naf.get('by_status') == {'200': 36} and naf.get('connection') == mode,
          f'burst {mode}: summary {s.get("ok")} {naf}')
    check(naf.get('handshakes') == hs and peer.connections - c0 == hs,
          f'burst {mode}: {naf.get("handshakes")} handshakes, the peer saw '
          f'{peer.connections - c0}, want {hs}')
    # devices 1..12 ask for UE lines 0..9, 0, 1: B-TIDs as the file says, Device_IDs their CNs
    reqs = peer.requests[-36:]
    check(sorted({(q['body']['b_tid'], q['cn']) for q in reqs}) ==
          sorted({(bues[i % 10]['b_tid'], f'device-{i + 1:04d}.test') for i in range(12)}),
          f'burst {mode}: each device asks for its line with its certificate')
    no_secret(r, [ref.mt_key(bues[0], NAF, 'device-0001.test').hex()], f'burst {mode}')
    if mode == 'keep-alive':
        summ = os.path.join(tmp, 'naf-summary.json')
        with open(summ, 'w') as fh:
            fh.write(r.stdout)
        rr = run([REPORT, summ, '--output', os.path.join(tmp, 'report')])
        check(rr.returncode == 0 and 'keys/s' in rr.stdout and 'handshakes' in rr.stdout,
              f'keyline-report on a naf summary: {rr.returncode} {rr.stderr} {rr.stdout[-800:]}')
# --ue-per-request: request k of device i asks for line (i + 6k) % 10, each key verified
n0 = len(peer.requests)
r = run(B + ['--devices', '6', '--requests', '3', '--ue-per-request'])
check(r.returncode == 0, f'burst --ue-per-request: exit {r.returncode} {r.stderr[-300:]}')
got = sorted((q['cn'], q['body']['b_tid']) for q in peer.requests[n0:])
want = sorted((f'device-{i + 1:04d}.test', bues[(i + 6 * k) % 10]['b_tid'])
              for i in range(6) for k in range(3))
check(got == want, 'burst --ue-per-request: the B-TIDs asked for')
peer.close()
# a wrong key and an error status fail their devices, by reason
peer = naf_peer.Peer(pki, bues, NAF, wrong_key_for=('device-0003.test',))
bues2 = bues[:4] + [dict(bues[4], b_tid='st-429@bsf.test')] + bues[5:]
bfile2 = os.path.join(tmp, 'burst-ues2.jsonl')
ref.write_ue_file(bfile2, bues2)
r = run([BURST, '--kind', 'naf', '--pki', pki, '--ue-file', bfile2, '--naf-id', NAF.hex(), '--url',
         peer.url, '--devices', '6', '--interval-ms', '50'])
lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith('{')]
s = lines[-1] if lines else {}
fl = (s.get('failures') or {})
check(r.returncode == 1 and s.get('ok') == 4 and fl.get('by_reason') == {'wrong_key': 1,
                                                                          'http_429': 1},
      f'burst failures: exit {r.returncode} {s.get("ok")} {fl}')
check(any(x.get('type') == 'interval' for x in lines), 'burst interval lines')
peer.close()
# usage errors
for what, args in {'no pki': ['--ue-file', bfile, '--naf-id', '01'],
                   'no naf-id': ['--pki', pki, '--ue-file', bfile],
                   'population with naf': ['--pki', pki, '--ue-file', bfile, '--naf-id', '01',
                                           '--population', 'x'],
                   'http url': ['--pki', pki, '--ue-file', bfile, '--naf-id', '01', '--url',
                                'http://x:1'],
                   'more devices than the PKI': ['--pki', pki, '--ue-file', bfile, '--naf-id',
                                                 '01', '--devices', '13'],
                   'bad UE file': ['--pki', pki, '--ue-file', os.path.join(tmp, 'bad-0.jsonl'),
                                   '--naf-id', '01']}.items():
    r = run([BURST, '--kind', 'naf'] + args)
    check(r.returncode == 2 and not r.stdout, f'burst {what}: exit {r.returncode} {r.stderr!r}')
r = run([BURST, '--io', 'socket', '--population', 'x', '--pki', pki])
check(r.returncode == 2 and 'belong to --kind naf' in r.stderr, f'--pki without naf: {r.stderr!r}')

print(f'{passed[0]} checks passed, {len(fails)} failed')
if fails:
    print('\n'.join(fails))
    sys.exit(1)

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The VLR token scheme (PROTOCOL.md section 9, kinds 2 and 3) end to end through keylined:
two keylined processes, identities vlr-a and vlr-b, each with kernel-socket io on loopback and
the same TEST population (UEs with the hm service), share a pair key provisioned on each through
another path (vlr-a: keylinectl put-pair from a key file; vlr-b: keyline-hss-sim put-pair over
the Diameter feed (TLS on loopback), or the admin socket's put-pair with a keyline-hss-sim that
cannot push pair keys). keyline-burst --kind
hm runs KL_HM_SESSIONS (default 100,000: about 25 s here in all) sessions with UEa at
vlr-a and UEb at vlr-b (1,000 UEbs, each fetching K*b once): every pair must agree on Ks. Then
the errors through keylined and keyline-burst's verdicts and counters: an unknown peer server
(12/6), an expired pair key (12/3), UEa and UEb without the hm service (7/4), IDUEa == IDUEb
(dropped as malformed: the pair times out, keylined counts it), and an answer over 3x its
request (a keylined with a 64-byte identity: unpadded requests dropped and counted as
amplification, padded ones answered: UE and server identities short enough for that, in requests
this test builds itself). Last, the same sessions over memif with one keylined
playing both roles (a pair key with its own identity).
    test_keylined_hm.py KEYLINED KEYLINE_BURST KEYLINE_POPULATION KEYLINECTL KEYLINE_HSS_SIM
                        KEYLINE_KDF"""
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'diameter'))
import kl_itest  # noqa: E402
from kl_dtest import Pki, free_port  # noqa: E402

keylined, burst, popgen, keylinectl, hss_sim, KDF = sys.argv[1:7]
ck = kl_itest.Checks('keylined-hm')
tmp = tempfile.mkdtemp(prefix='kl-hm-')
SESSIONS = int(os.environ.get('KL_HM_SESSIONS', '100000'))
PEERS = min(1000, SESSIONS - 1)  # UEbs 1..PEERS: all with the hm service
EXTRA = 20  # UEs SESSIONS.. : their hm service is taken away
UES = SESSIONS + EXTRA
LONG_ID = 'keyline-with-a-64-byte-identity-0123456789.vlr.mnc001.mcc001.3gp'
assert len(LONG_ID) == 64

pair_file = os.path.join(tmp, 'pair.hex')
with open(os.open(pair_file, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
    f.write(os.urandom(32).hex() + '\n')
with open(pair_file) as f:
    PAIR = f.read().strip()


def ctl(name, *args):
    p = subprocess.run([keylinectl, '-s', os.path.join(tmp, f'{name}.sock')] + list(args),
                       capture_output=True, text=True, timeout=60)
    ck.eq(p.returncode, 0, f'keylinectl {name} {args[0]} ({p.stderr.strip()})')
    return p.stdout


def admin(name, reqs):
    return kl_itest.admin_many(os.path.join(tmp, f'{name}.sock'), reqs)


def server(name, identity, ports=(), extra=None, lcores='0-1'):
    cfg_extra = {'udp_port': 2269}
    if not ports:
        cfg_extra = {'io': 'socket', 'udp_port': kl_itest.free_udp_port()}
    cfg_extra.update(extra or {})
    cfg = kl_itest.write_config(os.path.join(tmp, f'{name}.yaml'), ports=ports,
                                ipv4=('127.0.0.1',) if not ports else ('192.0.2.1',), ipv6=(),
                                admin=os.path.join(tmp, f'{name}.sock'), identity=identity,
                                table={'ues': UES + 16, 'pairs': 8}, extra=cfg_extra)
    kd = kl_itest.Keylined(keylined, kl_itest.eal_args(kl_itest.unique(name), lcores=lcores), cfg,
                           ['-p', pop], workdir=tmp)
    kd.wait_ready()
    return kd, cfg_extra['udp_port']


def hm_services(name):
    """UEs 0..SESSIONS-1 with mbms and hm (unless the population gave them hm), the rest mbms."""
    if not pop_has_pairs:
        ans = admin(name, [{'cmd': 'ue-services', 'id': ue_id(i), 'services': ['mbms', 'hm']}
                           for i in range(SESSIONS)])
        ck.eq(sum(1 for a in ans if a.get('ok')), SESSIONS, f'{name}: hm service for every UE')
    ans = admin(name, [{'cmd': 'ue-services', 'id': ue_id(i), 'services': ['mbms']}
                       for i in range(SESSIONS, UES)])
    ck.eq(sum(1 for a in ans if a.get('ok')), EXTRA, f'{name}: UEs without the hm service')


def ue_id(i):
    return f'ue{i:08d}@ims.mnc001.mcc001.3gppnetwork.org'


def run_burst(extra, timeout=600):
    cmd = [burst, '--io', 'socket', '--population', pop, '--kind', 'hm', '--server-ip',
           '127.0.0.1', '--interval-ms', '0'] + list(extra)
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith('{')]
    return p, (lines[-1] if lines else {}), time.time() - t


def hm_request(port, muk, ue, peer_ue, peer_server, pad):
    """A kind-2 request (PROTOCOL.md sections 2 and 4) from UE ue; True when an answer (data
    type 1) came back within 0.5 s."""
    rand, csb = os.urandom(16), os.urandom(4)
    keys = subprocess.run([KDF, 'mikey-keys', '--psk', muk, '--csb-id', csb.hex(), '--rand',
                           rand.hex()], capture_output=True, text=True, check=True).stdout
    auth = bytes.fromhex(dict(l.split('=', 1) for l in keys.split())['auth_key'])
    ntp = int((time.time() + 2208988800) * (1 << 32))
    tlv = lambda t, v: bytes([t]) + len(v).to_bytes(2, 'big') + v
    ext = bytes([2]) + tlv(5, peer_ue.encode()) + tlv(6, peer_server.encode())
    if pad is not None:
        ext += tlv(255, bytes(pad))
    msg = (bytes([1, 0, 5, 0]) + csb + bytes([0, 1]) + bytes([11, 0]) + ntp.to_bytes(8, 'big') +
           bytes([6, 16]) + rand + bytes([21, 0]) + len(ue).to_bytes(2, 'big') + ue.encode() +
           bytes([9, 250]) + len(ext).to_bytes(2, 'big') + ext + bytes([0, 1]))
    msg += hmac.new(auth, msg, hashlib.sha1).digest()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    s.sendto(msg, ('127.0.0.1', port))
    try:
        ans = s.recv(2048)
        return len(ans) > 1 and ans[1] == 1 and len(ans) <= 3 * len(msg)
    except socket.timeout:
        return False
    finally:
        s.close()


def failures(s):
    return (s.get('failures') or {}).get('list') or []


def errs(s):
    return {(f.get('reason'), f.get('err'), f.get('detail'), f.get('step')) for f in failures(s)}


pop = os.path.join(tmp, 'pop.txt')
helptext = subprocess.run([popgen, '--help'], capture_output=True, text=True).stdout
pop_has_pairs = '--pairs' in helptext
popargs = [popgen, '--seed', '11', '--ues', str(UES), '--groups', '1', '--emses', '1', '--imsis', '1',
           '--appids', '0', '-o', pop]
if pop_has_pairs:  # the population's own pair keys are not used here: the test provisions its own
    popargs[-2:-2] = ['--pairs', '1']
subprocess.run(popargs, check=True, capture_output=True)
sim_has_pair = 'pair' in subprocess.run([hss_sim, '--help'], capture_output=True,
                                        text=True).stdout.lower()
# both are in this tree: a --help that no longer names them must fail the test, not quietly take
# the admin-socket path instead
ck.check(pop_has_pairs, 'keyline-population --help names --pairs (services from the population)')
ck.check(sim_has_pair, 'keyline-hss-sim --help names put-pair (the pair key over Diameter)')
print(f'keylined-hm: {SESSIONS} sessions; services from '
      f'{"the population" if pop_has_pairs else "the admin socket"}; vlr-b pair key by '
      f'{"the Diameter feed" if sim_has_pair else "the admin socket (no Diameter pair push yet)"}',
      flush=True)


def diameter_pair(port, peer):
    """The pair key pushed by keyline-hss-sim over Diameter/TLS to vlr-b."""
    cert, key = pki.cred('hss.test')
    r = subprocess.run([hss_sim, '--identity', 'hss.test', '--cert', cert, '--key', key, '--ca',
                        pki.p('ca.pem'), '--listen', '127.0.0.1', '--peer',
                        f'vlr-b.test@127.0.0.1:{port}', '--timeout-ms', '5000', 'put-pair',
                        '--peer-id', peer, '--key-file', pair_file],
                       capture_output=True, text=True, timeout=60)
    ck.eq(r.returncode, 0, f'keyline-hss-sim put-pair to vlr-b ({r.stderr.strip()[-300:]})')


live = []
clients = []  # keyline-burst processes: killed in the end if still running
try:
    ka, pa = server('vlr-a', 'vlr-a')
    live.append(ka)
    b_extra = None
    if sim_has_pair:
        os.mkdir(os.path.join(tmp, 'pki'))
        pki = Pki(os.path.join(tmp, 'pki'), leaves=('vlr-b.test', 'hss.test'))
        dport = free_port()
        cert, key = pki.cred('vlr-b.test')
        b_extra = {'diameter': '{identity: vlr-b.test, listen: 127.0.0.1, port: %d, '
                               'tls_cert: "%s", tls_key: "%s", tls_ca: "%s", max_queue: 64}'
                               % (dport, cert, key, pki.p('ca.pem'))}
    kb, pb = server('vlr-b', 'vlr-b', extra=b_extra)
    live.append(kb)
    hm_services('vlr-a')
    hm_services('vlr-b')
    # the pair key: keylinectl on vlr-a, another path on vlr-b
    ctl('vlr-a', 'put-pair', 'vlr-b', '--key-file', pair_file)
    if sim_has_pair:
        diameter_pair(dport, 'vlr-a')
    else:
        ans = admin('vlr-b', [{'cmd': 'put-pair', 'peer': 'vlr-a', 'key': PAIR}])
        ck.check(ans[0].get('ok'), f'vlr-b: put-pair through the admin socket ({ans})')
    kcv_a = [l for l in ctl('vlr-a', 'show', 'pair', 'vlr-b').splitlines() if 'kcv' in l]
    kcv_b = [l for l in ctl('vlr-b', 'show', 'pair', 'vlr-a').splitlines() if 'kcv' in l]
    ck.check(kcv_a and kcv_a == kcv_b, f'the same pair key on both ({kcv_a} {kcv_b})')
    # an expired pair key with vlr-old, and one for the 3x check below
    ctl('vlr-a', 'put-pair', 'vlr-old', '--key-file', pair_file, '--expires', 'now-10')

    # the sessions: UEa k at vlr-a, UEb 1 + k % 1000 at vlr-b
    p, s, secs = run_burst(['--server-port', str(pa), '--server-id', 'vlr-a', '--peer-server-id',
                            'vlr-b', '--peer-server-ip', '127.0.0.1', '--peer-server-port', str(pb),
                            '--ues', str(SESSIONS), '--peer-ues', str(PEERS), '--mode', 'max',
                            '--inflight', '256', '--timeout-ms', '500', '--retries', '4'])
    ck.eq(p.returncode, 0, f'{SESSIONS} sessions: keyline-burst exits 0 ({p.stderr[-400:]})')
    ck.eq(s.get('ok'), SESSIONS, 'every pair agrees on Ks')
    cnt = s.get('counters') or {}
    ck.eq(cnt.get('kstar_fetched'), PEERS, 'each UEb fetched K*b once')
    ck.eq(cnt.get('kstar_cached'), SESSIONS - PEERS, 'the other tokens opened with a kept K*b')
    ck.eq(s.get('kind'), 'hm', 'summary kind')
    print(f'keylined-hm: {SESSIONS} sessions in {secs:.1f} s '
          f'({s.get("verified_per_s", 0):.0f} sessions/s, requests p50 '
          f'{(s.get("latency_us") or {}).get("p50")} us p99 {(s.get("latency_us") or {}).get("p99")} us)',
          flush=True)

    base = ['--server-port', str(pa), '--server-id', 'vlr-a', '--peer-server-ip', '127.0.0.1',
            '--peer-server-port', str(pb), '--peer-server-id', 'vlr-b', '--mode', 'max',
            '--timeout-ms', '200', '--retries', '0', '--fail-list', '100']

    def expect(what, extra, n, want):
        p, s, _ = run_burst(base + extra + ['--ues', str(n)])
        ck.eq(p.returncode, 1, f'{what}: keyline-burst exits 1')
        ck.eq(s.get('failed'), n, f'{what}: every pair failed')
        ck.eq(errs(s), {want}, f'{what}: the failures')
        return s

    # errors: the server's answers, as keyline-burst reports them
    s = expect('unknown peer server', ['--peer-server-id', 'vlr-x'], 10,
               ('error_answer', 12, 6, 'session'))
    ck.eq((s.get('errors') or {}).get('12'), 10, 'unknown peer server: ERR 12 counted')
    expect('expired pair key', ['--peer-server-id', 'vlr-old'], 10,
           ('error_answer', 12, 3, 'session'))
    expect('UEa without the hm service', ['--first', str(SESSIONS), '--peer-first', '0'], EXTRA,
           ('error_answer', 7, 4, 'session'))
    s = expect('UEb without the hm service', ['--first', '0', '--peer-first', str(SESSIONS),
                                              '--peer-ues', '2'], 10,
               ('error_answer', 7, 4, 'kstar'))
    ck.eq((s.get('counters') or {}).get('kstar_fetched'), 0, 'no K*b for UEbs without hm')
    expect('IDUEa == IDUEb', ['--first', '7', '--peer-first', '7', '--peer-ues', '1'], 1,
           ('timeout', None, None, 'session'))
    ra, ca = ka.stop()
    rb, cb = kb.stop()
    live = []
    ck.eq((ra, rb), (0, 0), 'both keylined exit 0')
    ca, cb = ca or {}, cb or {}
    # sessions (retransmissions may add some) and the UEb error run's sessions
    ck.check(ca.get('answered_hm', 0) >= SESSIONS + 10, f'vlr-a answered_hm {ca.get("answered_hm")}')
    ck.eq((ca.get('error_no_such_key'), ca.get('error_key_not_valid'),
           ca.get('error_not_authorised')), (10, 10, EXTRA), 'vlr-a: errors 12/6, 12/3, 7/4')
    ck.eq(ca.get('drop_malformed'), 1, 'vlr-a counted IDUEa == IDUEb as malformed')
    ck.eq(ca.get('answered_kstar', 0), 0, 'vlr-a answered no K* fetch')
    ck.check(cb.get('answered_kstar', 0) >= PEERS, f'vlr-b answered_kstar {cb.get("answered_kstar")}')
    ck.check(2 <= cb.get('error_not_authorised', 0) <= 10,
             f'vlr-b: 7/4 for the UEbs without hm ({cb.get("error_not_authorised")})')
    ck.eq(cb.get('answered_hm', 0), 0, 'vlr-b answered no session')

    # an answer over 3x its request: the population's identities are too long for that (44-byte
    # UEs: 3x the request covers even a 64-byte server identity), so UE "a" asks a server with a
    # 64-byte identity for a session with UE "b" of server "v", in requests built here from
    # PROTOCOL.md section 2 (MAC with the auth_key keyline-kdf mikey-keys derives)
    kl, pl = server('long', LONG_ID)
    live.append(kl)
    muk_file = os.path.join(tmp, 'muk-a.hex')
    with open(os.open(muk_file, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
        f.write(os.urandom(32).hex() + '\n')
    with open(muk_file) as f:
        muk = f.read().strip()
    ctl('long', 'put-ue', 'a', '--muk-file', muk_file, '--services', 'mbms,hm')
    ctl('long', 'put-pair', 'v', '--key-file', pair_file)
    answered = {}
    for pad in (None, 40):
        for k in range(10):
            answered[(pad, k)] = hm_request(pl, muk, 'a', 'b', 'v', pad)
    ck.eq(sum(answered[(None, k)] for k in range(10)), 0, 'unpadded kind 2: no answer (3x rule)')
    ck.eq(sum(answered[(40, k)] for k in range(10)), 10, 'padded kind 2: answered')
    rl, cl = kl.stop()
    live = []
    ck.eq((cl or {}).get('drop_amplification'), 10, 'the 3x rule dropped and counted 10 requests')
    ck.eq((cl or {}).get('answered_hm'), 10, 'the padded requests were answered')

    # memif: one keylined plays both roles (a pair key with its own identity)
    sock = os.path.join(tmp, 'memif.sock')
    km, _ = server('memif', 'vlr-a', ports=[('memif0', f'net_memif0,role=server,socket={sock}', 1)])
    live.append(km)
    hm_services('memif')
    ctl('memif', 'put-pair', 'vlr-a', '--key-file', pair_file)
    n = SESSIONS
    cmd = [burst] + kl_itest.eal_args(kl_itest.unique('hmcli'), mem=256, lcores='0') + [
        '--vdev', f'net_memif0,role=client,socket={sock}', '--', '--population', pop,
        '--kind', 'hm', '--server-id', 'vlr-a', '--server-ip', '192.0.2.1', '--client-ip',
        '192.0.2.100', '--sources', '16', '--interval-ms', '0', '--timeout-ms', '500',
        '--retries', '4', '--mode', 'max', '--inflight', '256', '--ues', str(n), '--peer-ues',
        str(PEERS), '--hold-s', '20']
    pm = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    clients.append(pm)
    held = False
    end = time.time() + 300
    while time.time() < end:
        line = pm.stderr.readline()
        if not line or 'holding the port' in line:
            held = bool(line)
            break
    ck.check(held, 'memif: keyline-burst finished its run')
    rm, cm = km.stop()
    live = []
    out, err = pm.communicate(timeout=60)
    lines = [json.loads(l) for l in out.splitlines() if l.startswith('{')]
    s = lines[-1] if lines else {}
    ck.eq(pm.returncode, 0, f'memif: keyline-burst exits 0 ({err[-300:]})')
    ck.eq(s.get('ok'), n, f'memif: {n} pairs agree on Ks')
    print(f'keylined-hm: memif {n} sessions, {s.get("verified_per_s", 0):.0f} sessions/s',
          flush=True)
    ck.eq((s.get('counters') or {}).get('kstar_fetched'), PEERS, 'memif: one K*b fetch per UEb')
    ck.eq(rm, 0, 'memif keylined exits 0')
finally:
    for k in live:
        k.kill()
    for c in clients:
        if c.poll() is None:
            c.kill()
            c.communicate()
            kl_itest.remove_rundir(kl_itest.file_prefix(c.args[1:]))
rc = ck.done()
if not rc:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(rc)

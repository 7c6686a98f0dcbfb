#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The DH VLR scheme (kind 4) and ProSe network-assisted keys (kind 5) end to end through
keylined (PROTOCOL.md sections 9 and 10; issue 12 tests "one keylined" and "two keylined"): a
TEST population whose UEs have the dh and prose services and whose two servers
(vlr-0.pop.keyline.test, vlr-1.pop.keyline.test) share a pair key; first one keylined (vlr-0)
serving both sides of every pair (the server and the peer server at once).
keyline-burst --kind prose and --kind dh each run
KL_PAIR_COUNT (default 10,000) UE pairs over kernel sockets: every pair's two UEs must derive
the same KD / Ks, equal to the one keyline-burst derives from the population's keys before the
run; ProSe initiators get ERR 12/5 with a retry-after until the responder's p3 arrived and retry
with the same p1 (keyline-burst checks all of it; this test checks its summary and keylined's
counters). Then the errors: UEs without the service (7/4; the other side of the pair fails
with it) and a peer server without a pair key (12/6). Last, the same pairs over memif (DPDK I/O
of keyline-burst). Then two keylined on loopback, each the other's peer: side A of every pair at
vlr-0, side B at vlr-1, the values crossing between the servers (kinds 6 and 7): every pair
agrees, each side waited for its server's peer at least once.
    test_keylined_pairs.py KEYLINED KEYLINE_BURST KEYLINE_POPULATION"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, burst, popgen = sys.argv[1:4]
ck = kl_itest.Checks('keylined-pairs')
tmp = tempfile.mkdtemp(prefix='kl-pairs-')
PAIRS = int(os.environ.get('KL_PAIR_COUNT', '10000'))
EXTRA = 4  # UEs 2 * PAIRS ..: only mbms
UES = 2 * PAIRS + EXTRA
pop = os.path.join(tmp, 'pop.txt')


def ue_id(i):
    return f'ue{i:08d}@ims.mnc001.mcc001.3gppnetwork.org'


SRV = ('vlr-0.pop.keyline.test', 'vlr-1.pop.keyline.test')


def server(name, ports=(), identity=SRV[0], port=None, peer=None):
    """keylined with the population; peer: (identity, UDP port) of its peer on loopback."""
    extra = {'udp_port': 2269}
    if not ports:
        extra = {'io': 'socket', 'udp_port': port or kl_itest.free_udp_port()}
    if peer:
        extra['peers'] = '[{identity: %s, address: 127.0.0.1, port: %d}]' % peer
    # the other side of a pair (or its peer server's value) comes within milliseconds
    extra['retry_after_ms'] = 50
    cfg = kl_itest.write_config(os.path.join(tmp, f'{name}.yaml'), ports=ports,
                                ipv4=('127.0.0.1',) if not ports else ('192.0.2.1',), ipv6=(),
                                admin=os.path.join(tmp, f'{name}.sock'), identity=identity,
                                table={'ues': UES + 16, 'dh_ues': UES + 16, 'pairs': 8}, extra=extra)
    kd = kl_itest.Keylined(keylined, kl_itest.eal_args(kl_itest.unique(name)), cfg, ['-p', pop],
                           workdir=tmp)
    kd.wait_ready()
    ans = kl_itest.admin_many(os.path.join(tmp, f'{name}.sock'),
                              [{'cmd': 'ue-services', 'id': ue_id(i), 'services': ['mbms']}
                               for i in range(2 * PAIRS, UES)])
    ck.eq(sum(1 for a in ans if a.get('ok')), EXTRA, f'{name}: UEs without dh and prose')
    return kd, extra['udp_port']


def summary(out):
    lines = [json.loads(l) for l in out.splitlines() if l.startswith('{')]
    return lines[-1] if lines else {}


def run_socket(kind, port, extra, timeout=600):
    cmd = [burst, '--io', 'socket', '--population', pop, '--kind', kind, '--server-ip',
           '127.0.0.1', '--server-port', str(port), '--server-id', SRV[0], '--interval-ms',
           '0'] + list(extra)
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p, summary(p.stdout), time.time() - t


def check_pairs(what, kind, rc, err, s, n):
    """A run in which every pair must agree."""
    pr = kl_itest.check_pairs(ck, what, kind, rc, err, s, n)
    rt = pr.get('retries') or {}
    print(f'keylined-pairs: {what}: {n} pairs, {pr.get("pairs_per_s", 0):.0f} pairs/s, '
          f'retries per pair mean {rt.get("mean")} max {rt.get("max")}, time to both keys '
          f'p50 {(pr.get("time_to_key_us") or {}).get("p50")} us '
          f'p99 {(pr.get("time_to_key_us") or {}).get("p99")} us', flush=True)
    return pr


def probe(what, kind, port, extra):
    """10 pairs with a short pair timeout before a large run: a server that never answers makes
    this fail in seconds instead of holding 10,000 pairs at 12/5 for the rendezvous lifetime."""
    p, s, _ = run_socket(kind, port, extra + ['--ues', '10', '--mode', 'max', '--timeout-ms', '500',
                                              '--retries', '2', '--pair-timeout-ms', '3000'])
    return ck.check(p.returncode == 0 and (s.get('pairs') or {}).get('ok') == 10,
                    f'{what}: 10 pairs first ({(s.get("failures") or {}).get("by_reason")} '
                    f'{p.stderr[-300:]})')


def failures(s):
    return {(f.get('reason'), f.get('err'), f.get('detail'), f.get('side'))
            for f in (s.get('failures') or {}).get('list') or []}


helptext = subprocess.run([popgen, '--help'], capture_output=True, text=True).stdout
ck.check('--services' in helptext, 'keyline-population --help names --services')
subprocess.run([popgen, '--seed', '12', '--ues', str(UES), '--groups', '1', '--emses', '1',
                '--imsis', '1', '--appids', '0', '--pairs', '2', '--services', 'mbms,dh,prose',
                '-o', pop],
               check=True, capture_output=True)

class Stop(Exception):
    """The rest cannot pass: stop the servers and report."""


# a test runner's timeout (SIGTERM) still stops the servers and clients below
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
live = []
clients = []
try:
    ka, pa = server('sock')
    live.append(ka)
    common = ['--ues', str(PAIRS), '--mode', 'max', '--inflight', '1024', '--timeout-ms', '500',
              '--retries', '4']

    # ProSe: UE1 (initiator, p1) and UE2 (responder, p3) of each pair at the same keylined
    if not (probe('prose', 'prose', pa, []) and probe('dh', 'dh', pa, [])):
        raise Stop()
    p, s, secs = run_socket('prose', pa, common)
    pr = check_pairs('prose over sockets', 'prose', p.returncode, p.stderr, s, PAIRS)
    # side A's request usually arrives first and waits for side B's p3
    ck.check((pr.get('retries') or {}).get('max', 0) >= 1, 'prose: some pair retried after 12/5')
    ck.eq((s.get('counters') or {}).get('waits'), (pr.get('retries') or {}).get('total'),
          'prose: the waits counter is the pairs\' retries')

    # DH: UEb asks for P_a, UEa for P_b, both local: answered at once
    p, s, secs = run_socket('dh', pa, common)
    pr = check_pairs('dh over sockets', 'dh', p.returncode, p.stderr, s, PAIRS)
    ck.eq((pr.get('retries') or {}).get('max'), 0, 'dh, both UEs local: no 12/5')

    # errors: UEs without the services: the pair fails, one side with the server's 7/4
    base = ['--mode', 'max', '--timeout-ms', '200', '--retries', '0', '--fail-list', '100',
            '--pair-timeout-ms', '2000']
    for kind in ('prose', 'dh'):
        p, s, _ = run_socket(kind, pa, base + ['--first', str(2 * PAIRS), '--ues', '2'])
        ck.eq(p.returncode, 1, f'{kind} without the service: keyline-burst exits 1')
        ck.eq((s.get('pairs') or {}).get('failed'), 2, f'{kind} without the service: both pairs failed')
        f = failures(s)
        ck.check(any(r == 'error_answer' and (e, d) == (7, 4) for r, e, d, _ in f),
                 f'{kind} without the service: ERR 7/4 ({f})')
        ck.check({r for r, _, _, _ in f} <= {'error_answer', 'peer_failed'},
                 f'{kind} without the service: nothing else ({f})')
        # a peer server keylined has no pair key with: side A (which names it) gets 12/6
        p, s, _ = run_socket(kind, pa, base + ['--ues', '3', '--peer-server-id', 'vlr-x'])
        ck.eq(p.returncode, 1, f'{kind} with an unknown peer server: keyline-burst exits 1')
        f = failures(s)
        ck.check(('error_answer', 12, 6, 'a') in f, f'{kind} with an unknown peer server: 12/6 ({f})')
    ra, ca = ka.stop()
    live = []
    ck.eq(ra, 0, 'keylined exits 0')
    ca = ca or {}
    ck.check(ca.get('answered_prose', 0) >= 2 * PAIRS,
             f'keylined answered_prose {ca.get("answered_prose")}')
    ck.check(ca.get('answered_dh', 0) >= 2 * PAIRS, f'keylined answered_dh {ca.get("answered_dh")}')
    ck.check(ca.get('error_not_ready', 0) >= 1, f'keylined error_not_ready {ca.get("error_not_ready")}')

    # memif: the same pairs with keyline-burst's DPDK I/O, a keylined per run (stopped while
    # keyline-burst holds its port: see README, memif)
    for kind in ('prose', 'dh'):
        sock = os.path.join(tmp, f'memif-{kind}.sock')
        km, _ = server(f'memif{kind}', ports=[('memif0', f'net_memif0,role=server,socket={sock}', 1)])
        live.append(km)
        cmd = [burst] + kl_itest.eal_args(kl_itest.unique('pc' + kind), mem=256, lcores='0') + [
            '--vdev', f'net_memif0,role=client,socket={sock}', '--', '--population', pop,
            '--kind', kind, '--server-id', SRV[0], '--server-ip', '192.0.2.1', '--client-ip',
            '192.0.2.100', '--sources', '16', '--interval-ms', '0', '--hold-s', '20'] + common
        pm = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        clients.append(pm)
        held, errlines = False, []
        end = time.time() + 300
        while time.time() < end:
            line = pm.stderr.readline()
            errlines.append(line)
            if not line or 'holding the port' in line:
                held = bool(line)
                break
        ck.check(held, f'{kind} over memif: keyline-burst finished its run')
        rm, _ = km.stop()
        live = []
        ck.eq(rm, 0, f'{kind} over memif: keylined exits 0')
        out, err = pm.communicate(timeout=60)
        check_pairs(f'{kind} over memif', kind, pm.returncode, ''.join(errlines) + err,
                    summary(out), PAIRS)

    # two keylined, each the other's peer: side A at vlr-0, side B at vlr-1
    ports = (kl_itest.free_udp_port(), kl_itest.free_udp_port())
    k0, _ = server('two0', identity=SRV[0], port=ports[0], peer=(SRV[1], ports[1]))
    live.append(k0)
    k1, _ = server('two1', identity=SRV[1], port=ports[1], peer=(SRV[0], ports[0]))
    live.append(k1)
    two = ['--peer-server-id', SRV[1], '--peer-server-ip', '127.0.0.1', '--peer-server-port',
           str(ports[1])] + common
    for kind in ('prose', 'dh'):
        if not probe(f'{kind} over two keylined', kind, ports[0], two[:6]):
            continue
        p, s, _ = run_socket(kind, ports[0], two)
        pr = check_pairs(f'{kind} over two keylined', kind, p.returncode, p.stderr, s, PAIRS)
        # every UE asks about a UE of the other server: the first answer is 12/5 while the
        # value crosses (DH: kind 6 to the peer; ProSe: the responder's p4 comes by kind 7)
        ck.check((pr.get('retries') or {}).get('mean', 0) >= 1,
                 f'{kind} over two keylined: the sides waited for the peer server')
    (r0, c0), (r1, c1) = k0.stop(), k1.stop()
    live = []
    ck.eq((r0, r1), (0, 0), 'two keylined exit 0')
    for name, c in (('vlr-0', c0 or {}), ('vlr-1', c1 or {})):
        ck.check(c.get('s2s_answers', 0) >= PAIRS, f'{name}: s2s_answers {c.get("s2s_answers")}')
        ck.check(c.get('answered_dh', 0) >= PAIRS and c.get('answered_prose', 0) >= PAIRS,
                 f'{name}: answered_dh {c.get("answered_dh")} answered_prose '
                 f'{c.get("answered_prose")}')
except Stop:
    pass
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

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""MSK rotation by one node of a cluster (issue 14 item 4): three keylined nodes (kernel-socket
io, each its own store, the same KEK) on one catalogue in three real etcd members, one rotated
key group (period 10 s, pre-delivery 8 s), lease TTL 2 s. A sampler asks every running node for
its status every 200 ms (role, election term, the group's current and next MSK: ID, validity,
KCV) while the test, for KL_ROT_PERIODS periods (default 3):
  - SIGKILLs the leader between pre-delivery and promotion, measures the handover (first sample
    of another node as leader), restarts the killed node;
  - after the promotion restarts one or two nodes in random order (SIGTERM: a leader resigns);
and plants MSK-ID guard records as another node would: a live claim of the ID two periods on
(the leader must use that MSK), an ended claim of a later ID (it must be replaced); then checks:
  - one MSK ID, one key: every sample of every node, and the MSK-ID guard records in etcd
    (unwrapped here with the KEK), give one KCV per MSK ID; the planted claims as above;
  - no period skipped or doubled: the current MSKs seen have consecutive key numbers, each valid
    from the end of the one before, for one period each, and each was seen as current no later
    than 1.5 s after its validity began (the leader's tick is once a second);
  - leadership: at most one node per election term, terms only grow, a new leader ready to
    rotate within the lease TTL + 1 s of a SIGKILL (etcd looks for expired leases every 500 ms);
  - nodes agree: every disagreement between nodes that follow the catalogue lasts < 500 ms;
  - keylinectl rotate on a follower is refused naming the leader; on the leader it rotates and
    every node serves the new MSK within 500 ms; keylinectl status shows the rotation leader.
    test_cluster_rotation.py KEYLINED KEYLINECTL ETCD"""
import base64
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402
import test_etcd  # noqa: E402

keylined, keylinectl, etcd_bin = sys.argv[1:4]
PERIODS = int(os.environ.get('KL_ROT_PERIODS', '3'))
P, D, TTL = 10, 8, 2
GROUP = '00f110:7'
NAMES = ('node-a', 'node-b', 'node-c')
NTP_UNIX = 2208988800
ck = kl_itest.Checks('cluster-rotation')
tmp = tempfile.mkdtemp(prefix='kl-clrot-', dir='/dev/shm' if os.path.isdir('/dev/shm') else None)
KEK = os.urandom(32)
PREFIX = '/klrot' + str(os.getpid())
seed = int(os.environ.get('KL_ROT_SEED', str(int(time.time()))))
rnd = random.Random(seed)
runs = [0]


class Node:
    def __init__(self, name, endpoints):
        self.name = name
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, 'admin.sock')
        self.metrics = test_etcd.free_tcp_port()
        eps = ', '.join(f'"{e}"' for e in endpoints)
        self.cfg = kl_itest.write_config(
            os.path.join(self.dir, 'keylined.yaml'), ipv4=('127.0.0.1',), ipv6=(), admin=self.sock,
            table={'ues': 64},
            extra={'io': 'socket', 'udp_port': kl_itest.free_udp_port(), 'log_level': 'info',
                   'metrics': f'"127.0.0.1:{self.metrics}"',
                   'store': f'{{path: "{self.dir}/store", kek_file: "{tmp}/kek"}}',
                   'msk_rotation': f'[{{group: "{GROUP}", period_s: {P}, predelivery_s: {D}}}]',
                   'cluster': f'{{endpoints: [{eps}], node: {name}, prefix: "{PREFIX}", '
                              f'lease_ttl_s: {TTL}, stale_after_ms: 1000, '
                              f'connect_timeout_ms: 200, request_timeout_ms: 1000}}'})
        self.k = None
        self.up = False  # sampled (set once ready, cleared before it is stopped)

    def start(self):
        runs[0] += 1
        self.k = kl_itest.Keylined(keylined, kl_itest.eal_args(
            kl_itest.unique(f'cr{runs[0]}'), mem=256), self.cfg, workdir=self.dir)
        self.k.wait_ready(timeout=120)
        self.up = True

    def stop(self, kill=False):
        self.up = False
        if kill:
            self.k.kill()
            return -9
        return self.k.stop(timeout=60)[0]

    def admin(self, req):
        return kl_itest.admin_many(self.sock, [req])[0]

    def info_metric(self):
        with urllib.request.urlopen(f'http://127.0.0.1:{self.metrics}/metrics', timeout=5) as r:
            return [x for x in r.read().decode().splitlines()
                    if x.startswith('keyline_cluster_info{')]


def msk(m):
    return None if not m else (m['msk_id'], m['valid_from'], m['valid_to'], m['kcv'])


samples = []  # (t, node, role, term, state, current, next, round, lag revisions)
stop_sampling = threading.Event()


def sample(n, rid):
    a = n.admin({'cmd': 'status'})
    c = a.get('cluster') or {}
    el = c.get('election') or {}
    g = [x for x in (a.get('rotation') or {}).get('groups', []) if x.get('group') == GROUP]
    g = g[0] if g else {}
    return (time.time(), n.name, c.get('role'), el.get('term') if c.get('role') == 'leader'
            else None, c.get('state'), msk(g.get('current')), msk(g.get('next')), rid,
            c.get('lag_revisions'))


def sampler(nodes):
    rid = 0
    while not stop_sampling.is_set():
        t0 = time.time()
        rid += 1
        for n in nodes:
            if n.up:
                try:
                    samples.append(sample(n, rid))
                except (OSError, ValueError):
                    pass  # stopping or starting
        stop_sampling.wait(max(0.0, 0.2 - (time.time() - t0)))


def leader_of(nodes, ready=False):
    """The node that reports itself rotation leader (ready: and has caught up to rotate)."""
    for n in nodes:
        if n.up:
            try:
                c = n.admin({'cmd': 'status'}).get('cluster', {})
                if c.get('role') == 'leader' and (not ready or c['election'].get('ready')):
                    return n
            except (OSError, ValueError):
                pass
    return None


def wait(cond, timeout, step=0.02):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def group_of(n):
    g = [x for x in n.admin({'cmd': 'status'})['rotation']['groups'] if x['group'] == GROUP]
    return g[0] if g else {}


def etcd_guard(url):
    pfx = f'{PREFIX}/msk/'.encode()
    end = pfx[:-1] + bytes([pfx[-1] + 1])
    body = json.dumps({'key': base64.b64encode(pfx).decode(),
                       'range_end': base64.b64encode(end).decode()}).encode()
    with urllib.request.urlopen(urllib.request.Request(url + '/v3/kv/range', data=body),
                                timeout=10) as r:
        kvs = json.load(r).get('kvs', [])
    from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding
    out = {}
    for kv in kvs:
        p = aes_key_unwrap_with_padding(KEK, base64.b64decode(kv['value']))
        # label | domain | group | MSK ID | valid_from | valid_to | key
        ck.eq(p[:6], b'klmsk1', 'guard record: label')
        out[int.from_bytes(p[11:15], 'big')] = kl_itest.kcv(p[31:47])
    return out


def plant_guard(url, kn, valid_from, valid_to, key):
    """A guard record as a node writes it (another node's claim): MSK key number kn of GROUP."""
    msk_id = 7 << 16 | kn
    plain = (b'klmsk1' + bytes.fromhex('00f110') + (7).to_bytes(2, 'big') +
             msk_id.to_bytes(4, 'big') + ((valid_from + NTP_UNIX) << 32).to_bytes(8, 'big') +
             ((valid_to + NTP_UNIX) << 32).to_bytes(8, 'big') + key)
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
    k = f'{PREFIX}/msk/{GROUP}/{msk_id:08x}'.encode()
    body = json.dumps({'key': base64.b64encode(k).decode(), 'value': base64.b64encode(
        aes_key_wrap_with_padding(KEK, plain)).decode()}).encode()
    with urllib.request.urlopen(urllib.request.Request(url + '/v3/kv/put', data=body),
                                timeout=10) as r:
        json.load(r)
    return msk_id


def handover(nodes, old, t0):
    """Seconds from t0 until another running node is the leader, ready to rotate."""
    n = wait(lambda: leader_of([x for x in nodes if x is not old], True), TTL + 5, 0.01)
    return (time.time() - t0, n) if n else (None, None)


def main():
    fd = os.open(os.path.join(tmp, 'kek'), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, KEK)
    os.close(fd)
    print(f'seed {seed} (KL_ROT_SEED), {PERIODS} periods', flush=True)
    cl = test_etcd.start_cluster(etcd_bin, 3)
    nodes = [Node(nm, cl.client[i:] + cl.client[:i]) for i, nm in enumerate(NAMES)]
    th = threading.Thread(target=sampler, args=(nodes,), daemon=True)
    handovers, resigns = [], []
    try:
        for n in nodes:
            n.start()
        th.start()
        lead = wait(lambda: leader_of(nodes), 10)
        ck.check(lead is not None, 'a rotation leader is elected')
        ck.check(wait(lambda: all(group_of(n).get('current') for n in nodes), 5),
                 'every node serves the group\'s current MSK')
        # another node's claim of the MSK ID two periods on (it died before its group write):
        # the leader must use that MSK when it gets there
        c0 = group_of(lead)['current']
        claimed_key = os.urandom(16)
        claimed = plant_guard(cl.client[0], (c0['msk_id'] & 0xFFFF) + 2, c0['valid_from'] + 2 * P,
                              c0['valid_from'] + 3 * P, claimed_key)
        stale = None

        # a forced rotation on a follower is refused, naming the leader
        f = [n for n in nodes if n is not lead][0]
        p = subprocess.run([keylinectl, '-s', f.sock, 'rotate', GROUP], capture_output=True,
                           text=True)
        ck.check(p.returncode != 0 and f'not the rotation leader (leader: {lead.name})' in
                 p.stdout + p.stderr, f'keylinectl rotate on a follower refused: {p.stderr!r}')
        p = subprocess.run([keylinectl, '-s', f.sock, 'status'], capture_output=True, text=True)
        ck.check(p.returncode == 0 and f'MSK rotation leader {lead.name}' in p.stdout and
                 '(follower)' in p.stdout, f'keylinectl status on a follower: {p.stdout[-700:]!r}')
        ck.eq((lead.info_metric(), f.info_metric()),
              ([f'keyline_cluster_info{{node="{lead.name}",role="leader"}} 1'],
               [f'keyline_cluster_info{{node="{f.name}",role="follower"}} 1']),
              '/metrics: the role of the leader and of a follower')

        for period in range(PERIODS):
            # between pre-delivery and promotion: SIGKILL the leader
            lead = wait(lambda: leader_of(nodes), TTL + 5)
            g = wait(lambda: (group_of(lead) if lead.up else {}).get('next') and group_of(lead),
                     P + 2, 0.05)
            ck.check(bool(g), f'period {period}: a next MSK pre-delivered')
            promote_at = g['next']['valid_from']
            time.sleep(max(0.0, min(1.0, promote_at - time.time() - (D - 1))))
            t0 = time.time()
            lead.stop(kill=True)
            dt, new = handover(nodes, lead, t0)
            handovers.append(dt)
            ck.check(dt is not None and dt < TTL + 1.0,
                     f'period {period}: {lead.name} SIGKILLed {promote_at - t0:.1f} s before '
                     f'the promotion; {new.name if new else None} leads after {dt} s')
            lead.start()
            # after the promotion: restart one or two nodes in random order (the leader among
            # them in the second period: it resigns)
            wait(lambda: time.time() > promote_at + 0.5, P)
            if period == 1:
                # a claim from an earlier pass of the key numbers (validity ended) for the next
                # ID: dropped and claimed afresh
                stale_key = os.urandom(16)
                stale = plant_guard(cl.client[0], (g['next']['msk_id'] & 0xFFFF) + 1, 1000000,
                                    1000000 + P, stale_key)
            again = rnd.sample(nodes, rnd.choice((1, 2)))
            lead = leader_of(nodes)
            if period == 1 and lead not in again:
                again[rnd.randrange(len(again))] = lead
            for n in again:
                was = leader_of([n]) is not None
                t0 = time.time()
                ck.eq(n.stop(), 0, f'period {period}: {n.name} stops cleanly')
                if was:
                    dt, new = handover(nodes, n, t0)
                    resigns.append(dt)
                n.start()
        # the last promotion, seen by everyone
        wait(lambda: time.time() > promote_at + 1.5, P)

        # a forced rotation on the leader reaches every node within 500 ms
        lead = wait(lambda: leader_of(nodes), TTL + 5)
        p = subprocess.run([keylinectl, '-s', lead.sock, 'rotate', GROUP], capture_output=True,
                           text=True)
        t0 = time.time()
        ck.eq(p.returncode, 0, f'keylinectl rotate on the leader: {p.stdout!r} {p.stderr!r}')
        want = msk(group_of(lead)['current'])
        ok = wait(lambda: all(msk(group_of(n).get('current')) == want for n in nodes), 2, 0.01)
        ck.check(ok and time.time() - t0 < 0.5,
                 f'every node serves the forced MSK within 500 ms ({time.time() - t0:.3f} s)')
        forced_id = want[0]
        # the checks below read the samples: let the sampler record the forced MSK (the wait
        # above can end before its next 200 ms round)
        n0 = len(samples)
        ck.check(wait(lambda: any(s[5] and s[5][0] == forced_id for s in samples[n0:]), 2, 0.05),
                 'the sampler saw the forced MSK')
        stop_sampling.set()
        th.join()
        guard = etcd_guard(cl.client[0])
        for n in nodes:
            ck.eq(n.stop(), 0, f'{n.name} stops cleanly')
    finally:
        stop_sampling.set()
        for n in nodes:
            if n.k:
                n.k.kill()
        cl.stop()
    check_samples(guard, forced_id)
    kcv_of = {m[0]: m[3] for s in samples for m in (s[5], s[6]) if m}
    ck.eq(kcv_of.get(claimed), kl_itest.kcv(claimed_key),
          f'MSK 0x{claimed:08X}: the MSK another node had claimed is used')
    if stale:
        ck.check(kcv_of.get(stale) not in (None, kl_itest.kcv(stale_key)) and
                 guard.get(stale) == kcv_of.get(stale),
                 f'MSK 0x{stale:08X}: an ended claim is replaced by a fresh MSK '
                 f'({kcv_of.get(stale)}, guard {guard.get(stale)})')
    print(f'handover after SIGKILL of the leader (TTL {TTL} s): ' +
          ', '.join(f'{h:.2f}' for h in handovers if h is not None) + ' s; after a SIGTERM '
          f'(resign): ' + (', '.join(f'{h:.3f}' for h in resigns if h is not None) or 'none') +
          f' s; {len(samples)} samples', flush=True)
    ck.done()
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if ck.bad else 0)


def check_samples(guard, forced_id):
    kcv_of, bad = {}, []
    for s in samples:
        for m in (s[5], s[6]):
            if m:
                if kcv_of.setdefault(m[0], m[3]) != m[3]:
                    bad.append((s[1], m[0]))
    ck.eq(bad[:3], [], 'one KCV per MSK ID over every sample of every node')
    ck.eq([i for i, k in guard.items() if i in kcv_of and kcv_of[i] != k], [],
          f'the guard records in etcd ({len(guard)}) hold the MSKs served')
    # current MSKs in order: consecutive key numbers, back to back, one period each
    cur = {}
    for s in samples:
        if s[5] and s[5][0] != forced_id:
            cur.setdefault(s[5], s[0])
    seq = sorted(cur, key=lambda m: m[1])
    gaps = [(a[0], b[0]) for a, b in zip(seq, seq[1:])
            if (b[0] & 0xFFFF) != (a[0] & 0xFFFF) + 1 or b[1] != a[2]]
    ck.eq(gaps, [], f'{len(seq)} current MSKs back to back with consecutive key numbers')
    ck.check(len(seq) >= PERIODS + 1, f'{len(seq)} periods seen for {PERIODS} kills')
    print('current MSKs: ' + ', '.join(f'0x{m[0]:08X} {m[3]} from {m[1]} seen +{cur[m] - m[1]:.2f} s'
                                       for m in seq), flush=True)
    ck.eq([m[0] for m in seq[1:] if m[2] - m[1] != P], [], f'each MSK valid for {P} s')
    late = [(m[0], round(cur[m] - m[1], 2)) for m in seq[1:] if cur[m] - m[1] > 1.5]
    ck.eq(late, [], 'each MSK current within 1.5 s of its validity start (no missed promotion)')
    # leadership: one node per term, terms only grow
    terms, order, back = {}, [], []
    for s in samples:
        if s[2] == 'leader':
            if terms.setdefault(s[3], s[1]) != s[1]:
                back.append(s[3])
            if order and s[3] < order[-1]:
                back.append(s[3])
            order.append(s[3])
    ck.eq(back, [], f'one leader per term, terms only grow ({len(terms)} terms)')
    # nodes that follow the catalogue disagree for < 500 ms
    rounds, longest, start, worst = {}, 0.0, None, None
    for s in samples:
        if s[4] == 'following':
            rounds.setdefault(s[7], {})[s[1]] = (s[5], s[6], s[0], s[8])
    for r in sorted(rounds):
        states = {v[:2] for v in rounds[r].values()}
        t = min(v[2] for v in rounds[r].values())
        if len(states) > 1 and start is None:
            start, first = t, r
        elif len(states) == 1 and start is not None:
            if t - start > longest:
                longest, worst = t - start, [(n, v[0] and hex(v[0][0]), v[1] and hex(v[1][0]), v[3])
                                             for q in range(first, r)
                                             for n, v in sorted(rounds.get(q, {}).items())]
            start = None
    ck.check(longest < 0.5 + 0.2, f'nodes disagree for < 500 ms (+ one sampling period): '
                                  f'longest {longest:.2f} s ({worst})')
    print(f'longest disagreement between nodes: {longest:.2f} s (sampled every 0.2 s; node, '
          f'current, next, lag revisions: {worst})', flush=True)


main()

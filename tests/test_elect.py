#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""kl_elect and kl_msk_guard against three real etcd members (started here, as test_etcd.py
does).

    test_elect.py ELECT_DRIVER ETCD_BINARY

Election (TTL 3 s): three campaigners; one leads. The leader is SIGKILLed: another takes over
within the TTL + margin. Of the two left, the leader is SIGSTOPped past its TTL: the third takes
over, and the stopped one, resumed, reports that it lost leadership (its first sample after the
pause is not a leader's). One etcd member (the etcd leader) is killed: leadership goes on
unbroken. The leader resigns (SIGTERM): the other takes over at once. Across all of it, every
campaigner samples kl_elect_is_leader every 20 ms: no two campaigners' leadership intervals
overlap.
MSK-ID guard: two processes claim the same 40 MSK IDs at the same moments, each with its own
random MSK: for every ID exactly one created the record and both got the creator's MSK (KCVs);
a third process claiming them again later gets the same MSKs and creates none.
"""
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kl_itest import Checks, sigstop  # noqa: E402
from test_etcd import start_cluster  # noqa: E402

TTL = 3
MARGIN = TTL / 4
PREFIX = f'/kltest-elect-{os.getpid()}'


class Campaigner:
    def __init__(self, driver, eps, node, secs=60):
        self.node = node
        self.p = subprocess.Popen([driver, 'elect', ','.join(eps), PREFIX, node, str(TTL),
                                   str(secs)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
        self.samples = []  # (realtime ms, leader 0/1)
        self.changes = []  # dicts of the "c" lines
        self.other = []
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self.read, daemon=True)
        self.t.start()

    def read(self):
        for line in self.p.stdout:
            f = line.split()
            with self.lock:
                if f and f[0] == 's' and len(f) == 4:
                    self.samples.append((int(f[1]), int(f[2])))
                elif f and f[0] == 'c':
                    d = dict(x.split('=', 1) for x in f[2:] if '=' in x)
                    d['t'] = int(f[1])
                    self.changes.append(d)
                else:
                    self.other.append(line.rstrip())

    def leader_now(self):
        with self.lock:
            return bool(self.samples) and self.samples[-1][1] == 1

    def last_change(self):
        with self.lock:
            return dict(self.changes[-1]) if self.changes else {}

    def samples_since(self, t_ms):
        with self.lock:
            return [s for s in self.samples if s[0] >= t_ms]

    def intervals(self):
        """Maximal runs of leader samples: [first, last] realtime ms."""
        out, start, prev = [], None, None
        with self.lock:
            ss = list(self.samples)
        for t, v in ss:
            if v and start is None:
                start = t
            if not v and start is not None:
                out.append((start, prev))
                start = None
            prev = t
        if start is not None:
            out.append((start, prev))
        return out


def now_ms():
    return int(time.time() * 1000)


def wait_for(cond, limit):
    end = time.time() + limit
    while time.time() < end:
        r = cond()
        if r:
            return r
        time.sleep(0.02)
    return None


def leaders(cs):
    return [c for c in cs if c.p.poll() is None and c.leader_now()]


def election(ck, driver, cl):
    eps = cl.client
    cs = [Campaigner(driver, eps, f'node-{i}') for i in range(3)]
    try:
        first = wait_for(lambda: len(leaders(cs)) == 1 and leaders(cs), 8)
        ck.check(first is not None, 'three campaigners: one leader')
        if not first:
            return
        l1 = first[0]
        time.sleep(1.0)
        ck.eq([c.node for c in leaders(cs)], [l1.node], 'one leader, the same, a second later')
        term1 = int(l1.last_change().get('term', 0))
        ck.check(term1 > 0, f'a term (create_revision): {l1.last_change()}')
        others = [c for c in cs if c is not l1]
        ck.check(all(c.last_change().get('leader') == l1.node for c in others),
                 'the followers name the leader')

        # the leader dies: another takes over within the TTL (+ margin)
        tk = time.time()
        l1.p.send_signal(signal.SIGKILL)
        l2 = wait_for(lambda: leaders(others) and leaders(others)[0], TTL + 3)
        took = time.time() - tk
        print(f'  SIGKILL: {l2.node if l2 else None} took over after {took:.2f} s', flush=True)
        ck.check(l2 is not None and took < TTL + MARGIN + 1.0,
                 f'SIGKILLed leader: another took over within TTL + margin (+1 s): {took:.2f} s')
        if not l2:
            return
        ck.check(int(l2.last_change().get('term', 0)) > term1, 'the new term is higher')
        ck.check(int(l2.last_change().get('since', 0)) > int(l2.last_change().get('term', 0)),
                 f'elected at a revision after the old key was deleted: {l2.last_change()}')

        # two campaigners left: the leader paused past its TTL
        l3 = [c for c in others if c is not l2][0]
        ts = time.time()
        sigstop(l2.p.pid)
        got = wait_for(lambda: l3.leader_now(), TTL + 3)
        took = time.time() - ts
        print(f'  SIGSTOP: {l3.node} took over after {took:.2f} s', flush=True)
        ck.check(got and took < TTL + MARGIN + 1.0,
                 f'SIGSTOPped leader: the other took over within TTL + margin (+1 s): {took:.2f} s')
        time.sleep(max(0.0, TTL + 1.5 - took))
        resume = now_ms()
        l2.p.send_signal(signal.SIGCONT)
        time.sleep(1.0)
        after = l2.samples_since(resume)
        ck.check(after and after[0][1] == 0,
                 f'the resumed node is no leader from its first sample: {after[:3]}')
        lc = l2.last_change()
        ck.check(int(lc.get('lost', 0)) >= 1 and lc.get('role') == 'follower',
                 f'the resumed node reports the loss: {lc}')
        ck.eq([c.node for c in leaders([l2, l3])], [l3.node], 'the other one leads')
        ck.eq(lc.get('leader'), l3.node, 'the resumed node names the new leader')

        # an etcd member dies (the leading member): leadership goes on unbroken
        lead = cl.leader()
        ck.check(lead is not None, 'an etcd leader')
        t_kill = now_ms()
        cl.kill(lead if lead is not None else 0)
        time.sleep(TTL + 1.0)
        ss = l3.samples_since(t_kill)
        ck.check(len(ss) > 50 and all(v == 1 for _, v in ss),
                 f'etcd member killed: the leader led through it ({len(ss)} samples, '
                 f'{sum(1 for _, v in ss if not v)} not leading)')
        ck.check(not any(v for _, v in l2.samples_since(t_kill)), 'and the other did not lead')

        # resign: the other takes over at once (no TTL to wait)
        tr = time.time()
        l3.p.send_signal(signal.SIGTERM)
        got = wait_for(lambda: l2.leader_now(), TTL + 2)
        took = time.time() - tr
        print(f'  resign: {l2.node} took over after {took:.2f} s', flush=True)
        ck.check(got and took < 1.5, f'resigned: the other took over promptly ({took:.2f} s)')
        l3.p.wait(timeout=10)
        l3.t.join(timeout=5)
        ck.check(any(x.startswith('resigned') and 'ok leader=0' in x for x in l3.other),
                 f'the resigned node revoked its lease: {l3.other[-3:]}')
    finally:
        for c in cs:
            if c.p.poll() is None:
                c.p.send_signal(signal.SIGCONT)
                c.p.kill()
            c.p.wait()
    # never two leaders: leadership intervals of different campaigners do not overlap
    iv = [(a, b, c.node) for c in cs for a, b in c.intervals()]
    iv.sort()
    bad = [(x, y) for i, x in enumerate(iv) for y in iv[i + 1:] if y[2] != x[2] and y[0] <= x[1]]
    ck.eq(bad, [], f'no two leaders at any sample ({len(iv)} leadership intervals, '
                   f'{sum(len(c.samples) for c in cs)} samples)')
    ck.check(len({x[2] for x in iv}) == 3, 'all three led at some point')


def claims(ck, driver, cl):
    kek = os.urandom(32).hex()
    start = now_ms() + 300
    n = 40

    def claim(at):
        return subprocess.Popen([driver, 'claim', ','.join(cl.client), PREFIX, '00f110:0003',
                                 str(n), str(at), kek], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def parse(out):
        rows = {}
        for line in out.splitlines():
            if line.startswith('id='):
                d = dict(x.split('=', 1) for x in line.split())
                rows[int(d['id'])] = d
        return rows

    ps = [claim(start), claim(start)]
    outs = [p.communicate(timeout=60)[0] for p in ps]
    for i, (p, o) in enumerate(zip(ps, outs)):
        ck.check(p.returncode == 0 and o.rstrip().endswith('PASS'), f'claimer {i}: {o[-500:]}')
    a, b = parse(outs[0]), parse(outs[1])
    ck.eq((len(a), len(b)), (n, n), 'every MSK ID claimed by both')
    same = sum(1 for i in range(1, n + 1) if i in a and i in b and a[i]['got'] == b[i]['got'])
    ck.eq(same, n, 'both racers ended with the same MSK for every MSK ID')
    one = sum(1 for i in range(1, n + 1) if i in a and i in b and
              int(a[i]['created']) + int(b[i]['created']) == 1)
    ck.eq(one, n, 'exactly one racer created each record')
    right = sum(1 for i in range(1, n + 1) if i in a and i in b and
                (a[i] if a[i]['created'] == '1' else b[i])['mine'] == a[i]['got'])
    ck.eq(right, n, "the MSK kept is its creator's")
    wins = sum(1 for i in a if a[i]['created'] == '1')
    print(f'  claims: racer 0 created {wins}, racer 1 created {n - wins} of {n}', flush=True)
    # a later claimer (a node restarting mid-rotation) gets the same MSKs and creates nothing
    p = claim(now_ms())
    c = parse(p.communicate(timeout=60)[0])
    ck.eq(sum(1 for i in c if c[i]['created'] == '0' and c[i]['got'] == a[i]['got']), n,
          'a later claim gets the same MSKs and creates none')


def main():
    driver, etcd = sys.argv[1], sys.argv[2]
    ck = Checks('etcd-elect')
    if not (os.path.isfile(etcd) and os.access(etcd, os.X_OK)):
        print(f'FAIL: no etcd at {etcd} (tools/setup.sh installs etcd-server)')
        return 1
    t0 = time.time()
    cl = start_cluster(etcd, 3)
    try:
        claims(ck, driver, cl)
        election(ck, driver, cl)
    finally:
        cl.stop()
    print(f'etcd-elect: {time.time() - t0:.1f} s', flush=True)
    return ck.done()


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A keyline cluster node against a silent etcd, and a seed without a read-back (issue 14
leftovers). One real etcd member started here; one keylined node (kernel-socket io).
GROUP silent: the node's endpoints are the member and a TCP listener that accepts and never
  answers; an MSK rotation runs (the election on etcd). The member SIGSTOPped (every thread
  stopped): for SILENT_S seconds `status` on the admin socket answers within LIMIT_MS (500,
  half the request timeout) every time (the keep-alive, the registration, etcd's status and the
  election's calls run off the control thread), the node reports itself stale, and MBMS key
  requests over UDP are answered; SIGCONT: the node is no longer stale and follows etcd again;
  it stops cleanly. Started again with the member stopped: `status` within LIMIT_MS while it
  cannot join; SIGCONT: joined, following, registered.
GROUP seed: a node whose store holds UES UEs starts the cluster (a new prefix): it seeds the
  catalogue and continues from the seed's revision: no full resynchronisation (status counters
  resyncs and resync_entries 0), the UEs are in etcd; `keylinectl cluster-seed` does not start
  one either; a second node with an empty store joins (one resync) and serves the same KCVs.
    test_cluster_silent.py KEYLINED KEYLINECTL ETCD E2M_FETCH GROUP"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402
import test_etcd  # noqa: E402

keylined, keylinectl, etcd_bin, e2m_fetch, group = sys.argv[1:6]
SILENT_S = float(os.environ.get('KL_SILENT_S', '5'))
# well below one request timeout (1000 ms: a blocked call fails it), above what a loaded machine
# (2 shared cores, load 17) adds to an admin round trip (up to ~300 ms seen)
LIMIT_MS = int(os.environ.get('KL_SILENT_LIMIT_MS', '500'))
UES = 300
ck = kl_itest.Checks('cluster-' + group)
tmp = tempfile.mkdtemp(prefix='kl-clsil-', dir='/dev/shm' if os.path.isdir('/dev/shm') else None)
kek = os.path.join(tmp, 'kek')
PREFIX = '/kls' + str(os.getpid())
GROUP = '00f110:3'
runs = [0]


class Node:
    def __init__(self, name, endpoints, rotation=False):
        self.name, self.endpoints, self.rotation = name, endpoints, rotation
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, 'admin.sock')
        self.udp = kl_itest.free_udp_port()
        self.k = None

    def start(self, cluster=True):
        eps = ', '.join(f'"{e}"' for e in self.endpoints)
        extra = {'io': 'socket', 'udp_port': self.udp, 'log_level': 'info',
                 'store': f'{{path: "{self.dir}/store", kek_file: "{kek}", map_size_mb: 64}}'}
        if cluster:
            extra['cluster'] = (f'{{endpoints: [{eps}], node: {self.name}, prefix: "{PREFIX}", '
                                f'lease_ttl_s: 3, stale_after_ms: 1000, connect_timeout_ms: 200, '
                                f'request_timeout_ms: 1000}}')
        if self.rotation:
            extra['msk_rotation'] = f'[{{group: "{GROUP}", period_s: 3600, predelivery_s: 60}}]'
        cfg = kl_itest.write_config(os.path.join(self.dir, 'keylined.yaml'), ipv4=('127.0.0.1',),
                                    ipv6=(), admin=self.sock, extra=extra,
                                    table={'ues': UES + 64})
        runs[0] += 1
        self.k = kl_itest.Keylined(keylined, kl_itest.eal_args(
            kl_itest.unique(f'cs{runs[0]}'), mem=256), cfg, workdir=self.dir)
        self.k.wait_ready(timeout=60)
        return self

    def admin(self, reqs):
        return kl_itest.admin_many(self.sock, reqs)

    def cluster(self):
        return self.admin([{'cmd': 'status'}])[0].get('cluster') or {}

    def stop(self):
        rc, _ = self.k.stop(timeout=30)
        self.k = None
        return rc


def following(n):
    c = n.cluster()
    return c.get('state') == 'following' and not c.get('stale') and c.get('registered')


def silent(cl):
    hole = test_etcd.Garbage(silent=True)
    n = Node('node-s', [cl.client[0], hole.url], rotation=True)
    n.start()
    try:
        ck.check(kl_itest.wait_until(lambda: following(n), 15),
                 'the node follows etcd and is registered')
        muk = os.urandom(16)
        ans = n.admin([{'cmd': 'put-ue', 'id': 'mbms@ims.example.org', 'muk': muk.hex(),
                        'groups': [GROUP]}])
        ck.check(ans[0].get('ok'), f'a UE in the rotated group put: {ans}')
        mukf = os.path.join(tmp, 'muk.hex')
        with open(mukf, 'w') as f:
            f.write(muk.hex() + '\n')

        def mbms():
            r = subprocess.run([e2m_fetch, '--mbms', '127.0.0.1', str(n.udp),
                                'mbms@ims.example.org', mukf, GROUP],
                               capture_output=True, text=True, timeout=10)
            try:
                return len(json.loads((r.stdout.strip().splitlines() or ['{}'])[-1])
                           .get('key_ids') or []) > 0
            except ValueError:
                return False
        ck.check(kl_itest.wait_until(mbms, 10, 0.1),
                 'an MBMS key request is answered (etcd up)')

        kl_itest.sigstop(cl.procs[0].pid)
        t0 = time.time()
        lat, slow, stale_at, udp_ok, udp_n = [], [], None, 0, 0
        next_udp = t0
        while time.time() - t0 < SILENT_S:
            s0 = time.time()
            c = n.cluster()
            lat.append((time.time() - s0) * 1000)
            if lat[-1] >= LIMIT_MS:
                slow.append(f'{s0 - t0:.2f} s: {lat[-1]:.0f} ms')
            if c.get('stale') and stale_at is None:
                stale_at = time.time() - t0
            if time.time() >= next_udp:
                next_udp = time.time() + 1
                udp_n += 1
                udp_ok += mbms()
            time.sleep(0.05)
        lat.sort()
        print(f'etcd stopped {SILENT_S:.0f} s: {len(lat)} status calls, max '
              f'{lat[-1]:.1f} ms, p50 {lat[len(lat) // 2]:.1f} ms; stale after '
              f'{stale_at if stale_at is None else round(stale_at, 2)} s; UDP {udp_ok}/{udp_n}',
              flush=True)
        ck.check(lat[-1] < LIMIT_MS, f'status answered within {LIMIT_MS} ms every time while '
                 f'etcd is silent (max {lat[-1]:.0f} ms over {len(lat)} calls; slow: {slow})')
        ck.check(stale_at is not None, 'the node reports itself stale')
        ck.eq(udp_ok, udp_n, 'every MBMS key request answered while etcd is silent')
        if slow:
            print('node log:\n' + n.k.stderr()[-3000:], flush=True)
        os.kill(cl.procs[0].pid, signal.SIGCONT)
        t0 = time.time()
        ck.check(kl_itest.wait_until(lambda: following(n), 15, 0.1),
                 'etcd resumed: following, not stale')
        print(f'recovered {time.time() - t0:.1f} s after SIGCONT', flush=True)
        ck.check(mbms(), 'an MBMS key request is answered after the recovery')
        ck.eq(n.stop(), 0, 'the node stops cleanly')

        # started while etcd is silent: joins once it answers (the join retried off the loop)
        kl_itest.sigstop(cl.procs[0].pid)
        n.start()
        lat = []
        t0 = time.time()
        while time.time() - t0 < 2.5:
            s0 = time.time()
            c = n.cluster()
            lat.append((time.time() - s0) * 1000)
            time.sleep(0.05)
        print(f'started with etcd stopped: {len(lat)} status calls, max {max(lat):.1f} ms',
              flush=True)
        ck.eq((c.get('state'), (c.get('counters') or {}).get('joined')), ('joining', 0),
              'started with etcd silent: joining')
        ck.check(max(lat) < LIMIT_MS, f'status within {LIMIT_MS} ms while the node cannot join '
                 f'(max {max(lat):.0f} ms)')
        os.kill(cl.procs[0].pid, signal.SIGCONT)
        ck.check(kl_itest.wait_until(lambda: following(n), 15, 0.1),
                 'etcd resumed: joined, following, registered')
        ck.eq(n.stop(), 0, 'the node stops cleanly (after joining late)')
    finally:
        try:
            os.kill(cl.procs[0].pid, signal.SIGCONT)
        except OSError:
            pass
        if n.k:
            n.k.kill()
        hole.sock.close()


def etcd_count(url, prefix):
    key = prefix.encode()
    end = key[:-1] + bytes([key[-1] + 1])
    req = {'key': base64.b64encode(key).decode(), 'range_end': base64.b64encode(end).decode(),
           'count_only': True}
    r = urllib.request.Request(url + '/v3/kv/range', json.dumps(req).encode(),
                               {'Content-Type': 'application/json'})
    with urllib.request.urlopen(r, timeout=10) as f:
        return int(json.load(f).get('count', 0))


def seed(cl):
    a = Node('node-a', cl.client)
    muks = {f'u{i}@seed.test': os.urandom(16) for i in range(UES)}
    try:
        a.start(cluster=False)
        ans = a.admin([{'cmd': 'put-ue', 'id': u, 'muk': m.hex()} for u, m in muks.items()])
        ck.eq([x for x in ans if not x.get('ok')][:2], [], f'{UES} UEs in the store (no cluster)')
        ck.eq(a.stop(), 0, 'standalone node stopped')
        a.start()
        ck.check(kl_itest.wait_until(lambda: following(a), 15),
                 'the node created the cluster and follows it')
        c = a.cluster()
        cnt = c.get('counters') or {}
        shown = {k: cnt.get(k) for k in ('seeded', 'resyncs', 'resync_entries', 'events_applied',
                                         'events_skipped')}
        print(f'after the seed: {json.dumps(shown)}, applied revision '
              f'{c.get("applied_revision")}', flush=True)
        ck.check(cnt.get('seeded', 0) >= UES, f'the store was seeded ({cnt.get("seeded")})')
        ck.eq((cnt.get('resyncs'), cnt.get('resync_entries')), (0, 0),
              'no full resynchronisation after the seed')
        ck.check(c.get('applied_revision', 0) > 0, 'the replica has a revision (the seed\'s)')
        ck.eq(etcd_count(cl.client[0], PREFIX + '/kv/ue/'), UES, 'the UEs are in etcd')
        ans = a.admin([{'cmd': 'cluster-seed'}])[0]
        ck.eq(ans.get('entries', -1) >= UES, True, f'cluster-seed: {ans}')
        time.sleep(0.5)
        cnt = a.cluster().get('counters') or {}
        ck.eq((cnt.get('resyncs'), cnt.get('resync_entries')), (0, 0),
              'no full resynchronisation after cluster-seed')
        extra = os.urandom(16)
        ans = a.admin([{'cmd': 'put-ue', 'id': 'late@seed.test', 'muk': extra.hex()}])[0]
        ck.check(ans.get('ok'), f'a write after the seed is acknowledged: {ans}')
        muks['late@seed.test'] = extra
        b = Node('node-b', cl.client)
        b.start()
        try:
            ck.check(kl_itest.wait_until(lambda: following(b) and
                          b.admin([{'cmd': 'status'}])[0]['table']['counts']['ues'] ==
                          UES + 1, 20), 'a second node (empty store) caught up')
            ids = list(muks)
            kb = b.admin([{'cmd': 'show', 'kind': 'ue', 'id': u} for u in ids])
            ck.eq([u for u, r in zip(ids, kb) if r.get('kcv') != kl_itest.kcv(muks[u])][:3], [],
                  'the second node serves every seeded UE with its KCV')
            ck.eq(b.stop(), 0, 'node-b stops cleanly')
        finally:
            if b.k:
                b.k.kill()
        ck.eq(a.stop(), 0, 'node-a stops cleanly')
    finally:
        if a.k:
            a.k.kill()


def main():
    kl_itest.write_kek(kek)
    cl = test_etcd.start_cluster(etcd_bin, 1)
    try:
        {'silent': silent, 'seed': seed}[group](cl)
    finally:
        cl.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(ck.done())


main()

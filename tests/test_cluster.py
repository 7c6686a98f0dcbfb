#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Two keylined nodes (kernel-socket io, each its own store, the same KEK) on one catalogue in
real etcd members started here (issue 14):
  - a key put on node A (admin socket) is served by node B within 1 s (show: same KCV), and a
    deletion too; a UE and its key group put on A: a real MBMS key request to B is answered
    with the group's MSK; the replication lag A -> B is measured over KL_CLUSTER_LAG_N puts (default
    100; p50/p99);
  - KL_CLUSTER_N UEs (default 1,000: one admin put is one etcd txn and one LMDB fsync; half on
    each node) end identical on
    both nodes (every UE's KCV) and in etcd (the catalogue's count);
  - node B stopped, keys put and deleted meanwhile on A, etcd compacted past B's revision, B
    restarted: a full resynchronisation (counted), identical again (catch-up time printed);
  - node B cut off from etcd (every member stopped): it keeps serving its last state and reports
    itself stale (status, /metrics); members restarted, keys put and deleted meanwhile: B catches
    up, deletions included;
  - a node whose KEK differs refuses to start (exit 2, a clear message).
GROUP bulk: both nodes with a Diameter feed; keyline-hss-sim bulk pushes KL_CLUSTER_DIA_N
e2m_int_keys (default 20,000), half to each node at once: every acknowledged key (ack logs) is
served by both nodes with its KCV, both hold every IMSI and etcd holds the catalogue's entries;
the push rate and the time until both nodes converged are printed.
    test_cluster.py KEYLINED KEYLINECTL ETCD nodes E2M_FETCH
    test_cluster.py KEYLINED KEYLINECTL ETCD bulk KEYLINE_HSS_SIM"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'diameter'))
import kl_itest  # noqa: E402
import test_etcd  # noqa: E402
from kl_dtest import Pki, free_port, read_lines  # noqa: E402

keylined, keylinectl, etcd_bin, group = sys.argv[1:5]
DIA_N = int(os.environ.get('KL_CLUSTER_DIA_N', '20000'))
N = int(os.environ.get('KL_CLUSTER_N', '1000'))
LAG_N = int(os.environ.get('KL_CLUSTER_LAG_N', '100'))
ck = kl_itest.Checks('cluster-' + group)
# stores in tmpfs when there is one: fsync is not the subject (etcd's members are there too)
tmp = tempfile.mkdtemp(prefix='kl-cluster-',
                       dir='/dev/shm' if os.path.isdir('/dev/shm') else None)
kek = os.path.join(tmp, 'kek')
PREFIX = '/kl' + str(os.getpid())
runs = [0]


def write_kek(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data)
    os.close(fd)


class Node:
    def __init__(self, name, endpoints, kek_file=kek, dia=None):
        self.name = name
        self.dia = dia
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, 'admin.sock')
        self.metrics = test_etcd.free_tcp_port()
        self.endpoints = endpoints
        self.kek = kek_file
        self.k = None

    def config(self):
        eps = ', '.join(f'"{e}"' for e in self.endpoints)
        extra = {'log_level': 'warning'} if self.dia else {}
        self.udp_port = kl_itest.free_udp_port()
        if self.dia:
            extra['diameter'] = self.dia
        return kl_itest.write_config(
            os.path.join(self.dir, 'keylined.yaml'), ipv4=('127.0.0.1',), ipv6=(),
            admin=self.sock,
            # room for what the nodes hold at most, but not for B's resync before its
            # deletions: the entries the table refuses then are written after them
            table={'ues': N + LAG_N + 600, 'imsis': DIA_N + 1024},
            extra={**extra, 'io': 'socket', 'udp_port': self.udp_port,
                   'metrics': f'"127.0.0.1:{self.metrics}"',
                   'store': f'{{path: "{self.dir}/store", kek_file: "{self.kek}", '
                            f'map_size_mb: 1024}}',
                   'cluster': f'{{endpoints: [{eps}], node: {self.name}, prefix: "{PREFIX}", '
                              f'lease_ttl_s: 3, stale_after_ms: 1000, '
                              f'connect_timeout_ms: 200, request_timeout_ms: 2000}}'})

    def start(self):
        runs[0] += 1
        self.k = kl_itest.Keylined(keylined, kl_itest.eal_args(
            kl_itest.unique(f'cl{runs[0]}'), mem=256 + (N + LAG_N + DIA_N) // 1000),
            self.config(), workdir=self.dir)
        self.k.wait_ready(timeout=120)
        return self

    def stop(self):
        rc, _ = self.k.stop(timeout=60)
        return rc

    def admin(self, reqs, chunk=512):
        return kl_itest.admin_many(self.sock, reqs, chunk)

    def status(self):
        return self.admin([{'cmd': 'status'}])[0].get('cluster') or {}

    def kcv(self, ue):
        a = self.admin([{'cmd': 'show', 'kind': 'ue', 'id': ue}])[0]
        return a.get('kcv') if a.get('ok') else None

    def kcvs(self, ues):
        out = {}
        ans = self.admin([{'cmd': 'show', 'kind': 'ue', 'id': u} for u in ues], chunk=1024)
        for u, a in zip(ues, ans):
            out[u] = a.get('kcv') if a.get('ok') else None
        return out

    def metric(self, name):
        with urllib.request.urlopen(f'http://127.0.0.1:{self.metrics}/metrics', timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + ' '):
                    return float(line.split()[1])
        return None


def put(ue, muk=None):
    return {'cmd': 'put-ue', 'id': ue, 'muk': (muk or os.urandom(16)).hex()}


def delete(ue):
    return {'cmd': 'del', 'kind': 'ue', 'id': ue}


def wait(cond, timeout, step=0.02):
    return kl_itest.wait_until(cond, timeout, step)


def etcd_count(url, prefix):
    body = json.dumps({'key': test_etcd_b64(prefix), 'range_end': test_etcd_b64(prefix_end(prefix)),
                       'count_only': True}).encode()
    with urllib.request.urlopen(urllib.request.Request(url + '/v3/kv/range', data=body),
                                timeout=10) as r:
        return int(json.load(r).get('count', 0))


def etcd_post(url, path, obj):
    with urllib.request.urlopen(urllib.request.Request(url + path, data=json.dumps(obj).encode()),
                                timeout=30) as r:
        return json.load(r)


def test_etcd_b64(s):
    import base64
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def prefix_end(p):
    b = bytearray(p.encode())
    b[-1] += 1
    return bytes(b)


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def bulk(sim):
    """GROUP bulk: DIA_N e2m_int_keys over Diameter, half to each node at once."""
    write_kek(kek, os.urandom(32))
    pki = Pki(tmp, leaves=('node-a.test', 'node-b.test', 'hss.test'))
    cl = test_etcd.start_cluster(etcd_bin, 3)
    nodes = []
    try:
        for name in ('node-a', 'node-b'):
            port = free_port()
            cert, key = pki.cred(name + '.test')
            n = Node(name, cl.client, dia=f'{{identity: {name}.test, listen: 127.0.0.1, '
                                           f'port: {port}, tls_cert: "{cert}", '
                                           f'tls_key: "{key}", tls_ca: "{pki.p("ca.pem")}"}}')
            n.dia_port = port
            nodes.append(n.start())
        hc, hk = pki.cred('hss.test')

        def sim_cmd(n):
            return [sim, '--identity', 'hss.test', '--cert', hc, '--key', hk, '--ca',
                    pki.p('ca.pem'), '--listen', '127.0.0.1', '--peer',
                    f'{n.name}.test@127.0.0.1:{n.dia_port}', '--timeout-ms', '20000',
                    '--log-level', 'error']

        # one key over Diameter to A, served by B within 1 s
        imsi = '001099999999999'
        p = subprocess.run(sim_cmd(nodes[0]) + [
            'push-e2m', '--k', os.urandom(16).hex(), '--opc', os.urandom(16).hex(), '--rand',
            os.urandom(16).hex(), '--sqn', '000000000001', '--amf', '8000', '--imsi', imsi],
            capture_output=True, text=True, timeout=60)
        ck.eq(p.returncode, 0, f'push-e2m to A ({p.stderr[-300:]})')
        t0 = time.time()

        def keys(n):
            r = n.admin([{'cmd': 'show', 'kind': 'imsi', 'id': imsi}])[0]
            return [(k.get('key_id'), k.get('kcv')) for k in r.get('keys') or []]
        ok = wait(lambda: keys(nodes[1]) and keys(nodes[1]) == keys(nodes[0]), 1.0, 0.005)
        ck.check(ok, f'the key pushed over Diameter to A is served by B within 1 s '
                     f'({time.time() - t0:.3f} s)')
        sims = []
        t0 = time.time()
        for i, n in enumerate(nodes):
            ack = os.path.join(tmp, f'ack-{n.name}.log')
            cmd = sim_cmd(n) + ['bulk', '--n', str(DIA_N // 2), '--seed', str(7 + i),
                                '--window', '256', '--imsi-base', f'0010{i + 1}', '--ack-log', ack]
            sims.append((subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True), ack))
        acks = []
        for p, ack in sims:
            out, err = p.communicate(timeout=600)
            ck.eq(p.returncode, 0, f'keyline-hss-sim bulk exits 0 ({err[-300:]} {out[-300:]})')
            acks += [a.split() for a in read_lines(ack)]
        push_s = time.time() - t0
        ck.eq(len(acks), DIA_N // 2 * 2, 'every push acknowledged')
        ok = wait(lambda: all(n.admin([{'cmd': 'count'}])[0]['counts']['imsis'] == len(acks) + 1
                              for n in nodes), 60, 0.1)
        conv_s = time.time() - t0
        ck.check(ok, f'both nodes hold the {len(acks)} IMSIs')
        print(f'{len(acks)} e2m_int_keys pushed over Diameter, half to each node at once: '
              f'{push_s:.1f} s ({len(acks) / push_s:.0f} durable pushes/s through etcd); both '
              f'nodes converged after {conv_s:.1f} s', flush=True)
        for n in nodes:
            ans = n.admin([{'cmd': 'show', 'kind': 'imsi', 'id': a[0]} for a in acks], chunk=2048)
            bad = [a for a, r in zip(acks, ans)
                   if (int(a[1], 16), a[2].lower()) not in
                   {(k.get('key_id'), str(k.get('kcv', '')).lower()) for k in r.get('keys') or []}]
            ck.eq(bad[:3], [], f'{n.name} serves every acknowledged key ({len(bad)} missing)')
        ck.eq(etcd_count(cl.client[0], PREFIX + '/kv/e2m/'), len(acks) + 1,
              'etcd holds every IMSI')
        st = etcd_post(cl.client[0], '/v3/maintenance/status', {})
        print(f'etcd: db size {int(st["dbSize"])} bytes for {len(acks)} IMSIs (one key each): '
              f'{int(st["dbSize"]) / len(acks):.0f} bytes per entry with history', flush=True)
        rs = nodes[0].status()
        print(f'node-a replicator: {json.dumps(rs.get("replicator"))}', flush=True)
        for n in nodes:
            ck.eq(n.stop(), 0, f'{n.name} stops cleanly')
        nodes = []
    finally:
        for n in nodes:
            if n.k:
                n.k.kill()
        cl.stop()
    ck.done()
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if ck.bad else 0)


def main():
    write_kek(kek, os.urandom(32))
    cl = test_etcd.start_cluster(etcd_bin, 3)
    a = b = None
    try:
        a = Node('node-a', cl.client).start()
        b = Node('node-b', cl.client[::-1]).start()
        sa, sb = a.status(), b.status()
        ck.eq((sa.get('enabled'), sa.get('role'), sa.get('state')), (True, 'follower', 'following'),
              'A: cluster status')
        ck.eq((sb.get('node'), sb.get('stale')), ('node-b', False), 'B: node name, not stale')
        nodes = a.admin([{'cmd': 'cluster'}])[0]
        ck.eq(sorted(n.get('node') for n in nodes.get('nodes', [])), ['node-a', 'node-b'],
              'keylinectl cluster (admin "cluster"): both nodes registered')
        p = subprocess.run([keylinectl, '-s', b.sock, 'cluster'], capture_output=True, text=True)
        ck.check(p.returncode == 0 and 'node-a' in p.stdout and 'node-b' in p.stdout,
                 f'keylinectl cluster lists both nodes: {p.stdout!r} {p.stderr!r}')
        p = subprocess.run([keylinectl, '-s', a.sock, 'status'], capture_output=True, text=True)
        ck.check(p.returncode == 0 and 'cluster:' in p.stdout and 'follower' in p.stdout,
                 f'keylinectl status shows the cluster: {p.stdout[-600:]!r}')

        # one key A -> B within 1 s; a deletion too
        muk = os.urandom(16)
        ans = a.admin([put('one@ims.example.org', muk)])[0]
        ck.check(ans.get('ok'), f'put on A: {ans}')
        t0 = time.time()
        ok = wait(lambda: b.kcv('one@ims.example.org') == kl_itest.kcv(muk), 1.0, 0.005)
        ck.check(ok, f'the key put on A is served by B within 1 s ({time.time() - t0:.3f} s)')
        ck.check(a.admin([delete('one@ims.example.org')])[0].get('ok'), 'delete on A')
        ck.check(wait(lambda: b.kcv('one@ims.example.org') is None, 1.0, 0.005),
                 'the deletion reaches B within 1 s')

        # a UE and its key group put on A; an MBMS key request to B
        now = int(time.time())
        ans = a.admin([{'cmd': 'put-group', 'group': '00f110:3',
                        'current': {'key': os.urandom(16).hex(), 'msk_id': 7,
                                    'valid_from': now - 60, 'valid_to': now + 3600}},
                       put('mbms@ims.example.org', muk) | {'groups': ['00f110:3']}])
        ck.check(all(x.get('ok') for x in ans), f'put-group and put-ue on A: {ans}')
        mukf = os.path.join(tmp, 'muk.hex')
        with open(mukf, 'w') as f:
            f.write(muk.hex() + '\n')
        got = {}

        def mbms():
            r = subprocess.run([e2m_fetch, '--mbms', '127.0.0.1', str(b.udp_port),
                                'mbms@ims.example.org', mukf, '00f110:3'],
                               capture_output=True, text=True, timeout=30)
            got['a'] = (r.stdout.strip().splitlines() or ['{}'])[-1]
            return json.loads(got['a']).get('key_ids') == ['00030007']
        ck.check(wait(mbms, 5, 0.05), f'an MBMS key request to B gets the MSK put on A: {got}')

        # lag A -> B, one put at a time
        lags = []
        for i in range(LAG_N):
            ue = f'lag{i}@ims.example.org'
            m = os.urandom(16)
            t0 = time.time()
            a.admin([put(ue, m)])
            want = kl_itest.kcv(m)
            while b.kcv(ue) != want:
                if time.time() - t0 > 5:
                    break
            lags.append(time.time() - t0)
        ck.check(max(lags) < 1.0, f'every put served by B within 1 s (max {max(lags):.3f} s)')
        print(f'replication A -> B over {LAG_N} puts (put acknowledged + seen on B): p50 '
              f'{pct(lags, .5) * 1000:.1f} ms, p99 {pct(lags, .99) * 1000:.1f} ms, max '
              f'{max(lags) * 1000:.1f} ms', flush=True)

        # N UEs spread over both nodes, pipelined
        ues = [f'ue{i}@ims.example.org' for i in range(N)]
        t0 = time.time()
        ra = a.admin([put(u) for u in ues[0::2]], chunk=1024)
        rb = b.admin([put(u) for u in ues[1::2]], chunk=1024)
        bad = [r for r in ra + rb if not r.get('ok')]
        ck.eq(bad[:3], [], f'{N} puts acknowledged')
        push_s = time.time() - t0
        want = N + LAG_N + 1  # and mbms@
        ok = wait(lambda: a.status().get('lag_revisions') == 0 and
                  b.status().get('lag_revisions') == 0 and
                  a.admin([{'cmd': 'count'}])[0]['counts']['ues'] == want and
                  b.admin([{'cmd': 'count'}])[0]['counts']['ues'] == want, 60, 0.2)
        conv_s = time.time() - t0
        ck.check(ok, f'both nodes hold {want} UEs')
        print(f'{N} UEs pushed over two nodes (admin, sequential per node) in {push_s:.1f} s; '
              f'both nodes converged after {conv_s:.1f} s', flush=True)
        ka, kb = a.kcvs(ues), b.kcvs(ues)
        ck.eq(sum(1 for u in ues if ka[u] is None), 0, 'every UE on A')
        ck.eq(sum(1 for u in ues if ka[u] != kb[u]), 0, 'every UE has the same KCV on A and B')
        ck.eq(etcd_count(cl.client[0], PREFIX + '/kv/ue/'), want, 'etcd holds every UE')
        st = etcd_post(cl.client[0], '/v3/maintenance/status', {})
        print(f'etcd: db size {int(st["dbSize"])} bytes for {want} UEs: '
              f'{int(st["dbSize"]) / want:.0f} bytes per UE (with history; '
              f'in use {int(st.get("dbSizeInUse", 0))})', flush=True)

        # B stopped; writes and deletions meanwhile; compaction past B's revision; restart
        ck.eq(b.stop(), 0, 'B stops cleanly')
        gone = ues[:1000]
        a.admin([delete(u) for u in gone])
        fresh = {f'new{i}@ims.example.org': os.urandom(16) for i in range(1000)}
        a.admin([put(u, m) for u, m in fresh.items()])
        rev = int(etcd_post(cl.client[0], '/v3/kv/range',
                            {'key': test_etcd_b64('x')})['header']['revision'])
        etcd_post(cl.client[0], '/v3/kv/compaction', {'revision': str(rev), 'physical': True})
        t0 = time.time()
        b.start()
        ok = wait(lambda: b.status().get('state') == 'following' and
                  b.kcv('new999@ims.example.org') is not None, 60, 0.05)
        print(f'catch-up of {want} entries by full resync after compaction: '
              f'{time.time() - t0:.2f} s from start (start-up included)', flush=True)
        st = b.status()
        ck.check(ok and st['counters']['resyncs'] >= 1, f'B resynchronised: {st.get("counters")}')
        ck.eq(st['counters']['resync_deleted'], len(gone), 'B deleted the 1000 UEs gone meanwhile')
        ck.eq((st['counters']['events_refused'], st['counters']['apply_failures']), (0, 0),
              'B refused nothing (the entries a full table refused during the resync were '
              'written after its deletions)')
        kb = b.kcvs(list(fresh) + gone[:50])
        ck.eq([u for u, m in fresh.items() if kb[u] != kl_itest.kcv(m)], [],
              'B serves the UEs put meanwhile')
        ck.eq([u for u in gone[:50] if kb[u] is not None], [], 'B no longer serves deleted UEs')
        ck.eq(b.admin([{'cmd': 'count'}])[0]['counts']['ues'],
              a.admin([{'cmd': 'count'}])[0]['counts']['ues'], 'A and B hold as many UEs')

        # B cut off: every member stopped
        for p in cl.procs:
            p.terminate()
        for p in cl.procs:
            p.wait()
        ck.check(wait(lambda: b.status().get('stale') is True, 10, 0.1),
                 'B reports itself stale once etcd is gone')
        ck.eq(b.metric('keyline_cluster_stale'), 1.0, 'B: keyline_cluster_stale 1 in /metrics')
        ck.eq(b.kcv('new5@ims.example.org'), kl_itest.kcv(fresh['new5@ims.example.org']),
              'B keeps serving while stale')
        ans = b.admin([put('refused@ims.example.org')])[0]
        ck.check(not ans.get('ok') and 'cluster' in ans.get('error', ''),
                 f'a write on a cut-off node is refused with a clear error: {ans}')
        ck.check('stale' in b.k.stderr(), 'B logged that it is stale')
        for i in range(len(cl.procs)):
            cl.restart(i)
        cl.wait_ready()
        last = []

        def put_back():
            last[:] = [a.admin([put('back@ims.example.org')])[0]]
            return last[0].get('ok')
        if not ck.check(wait(put_back, 30, 0.2), f'A writes again once etcd is back: {last}'):
            print('A:', a.k.stderr()[-1500:], '\nB:', b.k.stderr()[-1500:], flush=True)
        a.admin([delete(u) for u in list(fresh)[:10]])
        ck.check(wait(lambda: b.kcv('back@ims.example.org') is not None and
                      b.kcv('new0@ims.example.org') is None and
                      b.status().get('stale') is False, 20, 0.1),
                 'B caught up after the link came back, deletions included, and is not stale')
        ck.eq(b.admin([{'cmd': 'count'}])[0]['counts']['ues'],
              a.admin([{'cmd': 'count'}])[0]['counts']['ues'], 'A and B hold as many UEs again')
        ck.eq(a.stop(), 0, 'A stops cleanly')
        a = None
        ck.eq(b.stop(), 0, 'B stops cleanly')
        b = None

        # etcd unreachable at start: the node starts on its replica, stale, writes refused
        d = Node('node-d', [f'http://127.0.0.1:{test_etcd.free_tcp_port()}']).start()
        ck.check(wait(lambda: d.status().get('stale') is True, 10, 0.1),
                 'a node that cannot reach etcd at start serves, stale')
        sd = d.status()
        ck.eq((sd.get('state'), sd.get('counters', {}).get('joined')), ('joining', 0),
              'it has not joined')
        ans = d.admin([put('d@ims.example.org')])[0]
        ck.check(not ans.get('ok') and 'not joined' in ans.get('error', ''),
                 f'its writes are refused until it has joined: {ans}')
        ck.eq(d.stop(), 0, 'it stops cleanly')

        # a node with another KEK refuses to start
        other = os.path.join(tmp, 'kek-other')
        write_kek(other, os.urandom(32))
        c = Node('node-c', cl.client, kek_file=other)
        p = subprocess.run([keylined] + kl_itest.eal_args(kl_itest.unique('clc'), mem=256) +
                           ['--', '-c', c.config()], capture_output=True, text=True, timeout=60)
        ck.eq(p.returncode, 2, 'a node with another KEK exits 2')
        ck.check('is not the cluster' in p.stderr, f'... saying why: {p.stderr[-400:]!r}')
    finally:
        for n in (a, b):
            if n and n.k:
                n.k.kill()
        cl.stop()
    ck.done()
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if ck.bad else 0)


if group == 'bulk':
    bulk(sys.argv[5])
e2m_fetch = sys.argv[5]
main()

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Failures of a keyline cluster (issue 14's failure tests): two keylined nodes (kernel-socket io,
each its own store, the same KEK) on one catalogue in three real etcd members started here; the
UEs come from a TEST population written into node A's store (bench/store_fill): A seeds the
catalogue, B (an empty store) catches up by a full resync, so both serve them from the catalogue.
GROUP node-kill: keyline-burst --server A,B with KL_FAIL_UES UEs (default 50,000; issue 14 says
  200,000: set the variable); node A SIGKILLed once a quarter are done: every UE verified, the
  tries lost with A counted (timeouts, retransmissions, moves to B); B still follows etcd, and a
  write on B is acknowledged.
GROUP etcd-kill: both nodes with a Diameter feed; keyline-hss-sim bulk pushes KL_FAIL_DIA_N
  e2m_int_keys (default 10,000; issue 14 says 100,000), half to each node at once; the etcd member
  that is A's first endpoint SIGKILLed once a quarter are acknowledged: every acknowledged key is
  served by both nodes (its KCV) and present in etcd. Then a second member SIGKILLed (two of
  three gone): an admin write and a Diameter push are refused with a clear error (the admin's
  "cluster: ..." text, Diameter 5012) while keyline-burst against both nodes gets every UE's key
  (0 failures). Both members restarted: writes accepted again; keys pushed and deleted on both
  nodes; everything converges: the IMSI listing in etcd equals both nodes', every IMSI with the
  same key ids and KCVs on A and B.
    test_cluster_fail.py KEYLINED KEYLINECTL ETCD KEYLINE_BURST KEYLINE_POPULATION STORE_FILL
                         KEYLINE_HSS_SIM GROUP"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'diameter'))
import kl_itest  # noqa: E402
import test_etcd  # noqa: E402
from kl_dtest import Pki, free_port, read_lines  # noqa: E402

keylined, keylinectl, etcd_bin, burst, popgen, store_fill, sim, group = sys.argv[1:9]
UES = int(os.environ.get('KL_FAIL_UES', '50000'))
DIA_N = int(os.environ.get('KL_FAIL_DIA_N', '10000'))
POP_UES = UES if group == 'node-kill' else 2000
ck = kl_itest.Checks('cluster-' + group)
# tmpfs when there is one (fsync is not the subject), but on disk for the benchmark
ON_DISK = group == 'bench'
tmp = tempfile.mkdtemp(prefix='kl-clfail-', dir=None if ON_DISK or not os.path.isdir('/dev/shm')
                       else '/dev/shm')
kek = os.path.join(tmp, 'kek')
PREFIX = '/klf' + str(os.getpid())
pop = os.path.join(tmp, 'pop.txt')
runs = [0]
T0 = time.time()
# the benchmark's cluster.write_connections (KL_BENCH_CONNS; unset: keylined's default)
CONNS = (f', write_connections: {int(os.environ["KL_BENCH_CONNS"])}'
         if group == 'bench' and os.environ.get('KL_BENCH_CONNS') else '')


class Node:
    def __init__(self, name, endpoints, dia=None):
        self.name, self.endpoints, self.dia = name, endpoints, dia
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, 'admin.sock')
        self.udp = kl_itest.free_udp_port()
        self.k = None

    def start(self):
        eps = ', '.join(f'"{e}"' for e in self.endpoints)
        extra = {'io': 'socket', 'udp_port': self.udp, 'log_level': 'warning',
                 'store': f'{{path: "{self.dir}/store", kek_file: "{kek}", map_size_mb: 1024}}',
                 'cluster': f'{{endpoints: [{eps}], node: {self.name}, prefix: "{PREFIX}", '
                            f'lease_ttl_s: 3, stale_after_ms: 3000, connect_timeout_ms: 200, '
                            f'request_timeout_ms: 2000{CONNS}}}'}
        if self.dia:
            extra['diameter'] = self.dia
        cfg = kl_itest.write_config(os.path.join(self.dir, 'keylined.yaml'), ipv4=('127.0.0.1',),
                                    ipv6=(), admin=self.sock, extra=extra,
                                    table={'ues': POP_UES + 1024, 'imsis': 2 * DIA_N + 1024})
        runs[0] += 1
        self.k = kl_itest.Keylined(keylined, kl_itest.eal_args(
            kl_itest.unique(f'cf{runs[0]}'), mem=1024), cfg, workdir=self.dir)
        self.k.wait_ready(timeout=120)
        return self

    def admin(self, reqs, chunk=1024):
        return kl_itest.admin_many(self.sock, reqs, chunk)

    def status(self):
        return self.admin([{'cmd': 'status'}])[0]

    def following(self):
        s = self.status()
        c = s.get('cluster') or {}
        return (c.get('state') == 'following' and not c.get('stale') and
                s['table']['counts']['ues'] >= POP_UES)

    def stop(self):
        rc, _ = self.k.stop(timeout=60)
        self.k = None
        return rc


def wait(cond, timeout, step=0.05):
    return kl_itest.wait_until(cond, timeout, step)


def etcd_post(url, path, obj, timeout=30):
    req = urllib.request.Request(url + path, data=json.dumps(obj).encode())
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def b64(b):
    return base64.b64encode(b).decode()


def etcd_imsis(url):
    """The IMSIs of the catalogue's e2m records (P/kv/e2m/<hex of the LMDB key>), read in pages."""
    pre = (PREFIX + '/kv/e2m/').encode()
    end = pre[:-1] + bytes([pre[-1] + 1])
    out, key = set(), pre
    while True:
        r = etcd_post(url, '/v3/kv/range', {'key': b64(key), 'range_end': b64(end),
                                            'keys_only': True, 'limit': 10000})
        kvs = r.get('kvs') or []
        for kv in kvs:
            k = base64.b64decode(kv['key'])[len(pre):]
            out.add(bytes.fromhex(k.decode()).decode(errors='replace').rstrip('\0'))
        if not r.get('more'):
            return out
        key = base64.b64decode(kvs[-1]['key']) + b'\0'


def summary_of(text):
    lines = [json.loads(x) for x in text.splitlines() if x.startswith('{')]
    return lines[-1] if lines and lines[-1].get('type') == 'summary' else {}


def burst_cmd(nodes, *extra):
    return [burst, '--io', 'socket', '--population', pop, '--server',
            ','.join(f'127.0.0.1:{n.udp}' for n in nodes), '--timeout-ms', '100',
            '--retries', '6', '--interval-ms', '100', '--fail-list', '20'] + list(extra)


def two_nodes(cl, dia=(None, None), nodes=None):
    """The population in A's store; A seeds the catalogue, B resyncs it; both following.
    nodes: the two Nodes (not started) instead of A and B on cl's endpoints."""
    t0 = time.time()
    os.makedirs(os.path.join(tmp, 'node-a'), exist_ok=True)
    subprocess.run([popgen, '--seed', '5', '--ues', str(POP_UES), '--groups', '8', '--emses', '8',
                    '--imsis', '8', '--appids', '8', '-o', pop], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([store_fill, '--store', os.path.join(tmp, 'node-a', 'store'), '--kek', kek,
                    '--population', pop, '--map-mb', '1024'], check=True,
                   stdout=subprocess.DEVNULL)
    a, b = nodes or (Node('node-a', cl.client, dia[0]), Node('node-b', cl.client[::-1], dia[1]))
    a.start()
    ck.check(wait(a.following, 120), 'A seeded the catalogue and follows etcd')
    b.start()
    ck.check(wait(b.following, 120), f'B caught up {POP_UES} UEs')
    print(f'{POP_UES} UEs seeded by A and caught up by B in {time.time() - t0:.1f} s', flush=True)
    return a, b


def node_kill(cl):
    a, b = two_nodes(cl)
    try:
        t0 = time.time()
        p = subprocess.Popen(burst_cmd((a, b), '--mode', 'burst', '--window', '2', '--inflight',
                                       '4096'),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, killed_at = [], None
        for line in p.stdout:
            out.append(line)
            if killed_at is None and line.startswith('{'):
                iv = json.loads(line)
                if iv.get('type') == 'interval' and iv.get('done', 0) >= UES // 4:
                    a.k.p.send_signal(signal.SIGKILL)
                    killed_at = iv.get('done')
        err = p.stderr.read()
        rc = p.wait(timeout=120)
        s = summary_of(''.join(out))
        cnt, srv = s.get('counters') or {}, s.get('servers') or []
        ck.check(killed_at is not None and killed_at < UES, f'node A killed mid-burst ({killed_at})')
        ck.eq(rc, 0, f'keyline-burst exits 0 ({err[-300:]}; {(s.get("failures") or {})})')
        ck.eq((s.get('ues'), s.get('ok'), s.get('failed')), (UES, UES, 0),
              'every UE verified, none failed')
        ck.check(cnt.get('timeouts', 0) > 0 and cnt.get('moved', 0) > 0,
                 f'tries lost with A timed out, UEs moved to B: {cnt}')
        ck.check(cnt.get('retransmissions', 0) >= cnt.get('moved', 0),
                 'every move is a retransmission')
        if len(srv) == 2:
            ck.eq(srv[0].get('keys', 0) + srv[1].get('keys', 0), UES,
                  f'keys per node add up to the UEs: {srv}')
            ck.check(srv[0].get('keys', 0) > 0 and srv[1].get('keys', 0) > 0,
                     'both nodes served keys')
        print(f'{UES} UEs against A and B, A SIGKILLed at {killed_at} done: {s.get("ok")} '
              f'verified, {s.get("failed")} failed, complete in {s.get("complete_s")} s '
              f'({time.time() - t0:.1f} s); timeouts {cnt.get("timeouts")} retransmissions '
              f'{cnt.get("retransmissions")} moved {cnt.get("moved")}; servers '
              f'{[(x.get("keys"), x.get("timeouts"), x.get("moved_in")) for x in srv]}',
              flush=True)
        a.k.p.wait()
        a.k.kill()
        a.k = None
        c = b.status().get('cluster') or {}
        ck.eq((c.get('state'), c.get('stale')), ('following', False), 'B still follows etcd')
        ans = b.admin([{'cmd': 'put-ue', 'id': 'after@kill.test', 'muk': os.urandom(16).hex()}])
        ck.check(ans[0].get('ok'), f'a write on B is acknowledged after A died: {ans[0]}')
        ck.eq(b.stop(), 0, 'B stops cleanly')
        b = None
    finally:
        for n in (a, b):
            if n and n.k:
                n.k.kill()


def dia_nodes(cl):
    """two_nodes with a Diameter feed each; sim_cmd(i): keyline-hss-sim towards node i."""
    pki = Pki(tmp, leaves=('node-a.test', 'node-b.test', 'hss.test'))
    dias, ports = [], []
    for name in ('node-a', 'node-b'):
        port = free_port()
        cert, key = pki.cred(name + '.test')
        dias.append(f'{{identity: {name}.test, listen: 127.0.0.1, port: {port}, '
                    f'tls_cert: "{cert}", tls_key: "{key}", tls_ca: "{pki.p("ca.pem")}"}}')
        ports.append(port)
    nodes = two_nodes(cl, dias)
    hc, hk = pki.cred('hss.test')

    def sim_cmd(i):
        return [sim, '--identity', 'hss.test', '--cert', hc, '--key', hk, '--ca',
                pki.p('ca.pem'), '--listen', '127.0.0.1', '--peer',
                f'{nodes[i].name}.test@127.0.0.1:{ports[i]}', '--timeout-ms', '20000',
                '--log-level', 'error']
    return nodes, sim_cmd


def bulk_push(sim_cmd, which, n, tag, window=256):
    """keyline-hss-sim bulk of n e2m_int_keys, split over the nodes in which, at once:
    [(Popen, ack log)]."""
    sims = []
    for i in which:
        ack = os.path.join(tmp, f'ack-{tag}-{i}.log')
        cmd = sim_cmd(i) + ['bulk', '--n', str(n // len(which)), '--seed', str(7 + i + 10 * tag),
                            '--window', str(window), '--imsi-base', f'00{tag}{i + 1}',
                            '--ack-log', ack]
        sims.append((subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True), ack))
    return sims


def etcd_kill(cl):
    nodes, sim_cmd = dia_nodes(cl)
    a, b = nodes

    def push_one(i, imsi):
        p = subprocess.run(sim_cmd(i) + ['push-e2m', '--k', os.urandom(16).hex(), '--opc',
                                         os.urandom(16).hex(), '--rand', os.urandom(16).hex(),
                                         '--sqn', '000000000001', '--amf', '8000', '--imsi', imsi],
                           capture_output=True, text=True, timeout=60)
        r = [json.loads(x) for x in p.stdout.splitlines() if x.startswith('{')]
        return p.returncode, (r[-1] if r else {}), p.stderr

    def listing(n, imsis):
        ans = n.admin([{'cmd': 'show', 'kind': 'imsi', 'id': i} for i in imsis], chunk=2048)
        return {i: sorted((k.get('key_id'), str(k.get('kcv')).upper()) for k in r.get('keys') or [])
                for i, r in zip(imsis, ans) if r.get('ok')}
    try:
        # the push, half to each node; the etcd member that is A's first endpoint dies meanwhile
        t0 = time.time()
        sims = bulk_push(sim_cmd, (0, 1), DIA_N, 1)
        killed = None
        while any(p.poll() is None for p, _ in sims):
            if killed is None and sum(len(read_lines(f)) for _, f in sims) >= DIA_N // 4:
                cl.kill(0)
                killed = sum(len(read_lines(f)) for _, f in sims)
            time.sleep(0.02)
        push_s = time.time() - t0
        acks, results = [], []
        for p, ack in sims:
            out, err = p.communicate(timeout=60)
            r = [json.loads(x) for x in out.splitlines() if x.startswith('{')]
            results.append(r[-1] if r else {'stderr': err[-300:]})
            ck.check(p.returncode in (0, 1), f'keyline-hss-sim bulk ran ({p.returncode}: '
                                             f'{err[-300:]})')
            acks += [x.split() for x in read_lines(ack)]
        ck.check(killed is not None, f'an etcd member SIGKILLed after {killed} acknowledgements')
        ck.check(len(acks) >= DIA_N // 2, f'{len(acks)} of {DIA_N} pushes acknowledged')
        print(f'[{time.time() - T0:.1f} s] {DIA_N} pushes, etcd member 0 SIGKILLed after {killed} acks: {len(acks)} '
              f'acknowledged in {push_s:.1f} s; sims: {results}', flush=True)
        want = {}
        for imsi, kid, kcv in acks:
            want.setdefault(imsi, set()).add((int(kid, 16), kcv.upper()))
        imsis = sorted(want)

        def all_served(n):
            got = listing(n, imsis)
            return [i for i in imsis if not want[i] <= set(got.get(i, []))]
        for n in nodes:
            ck.check(wait(lambda: not all_served(n), 30, 0.5),
                     f'{n.name} serves every acknowledged key')
            ck.eq(all_served(n)[:3], [], f'{n.name}: acknowledged keys missing')
        in_etcd = etcd_imsis(cl.client[1])
        ck.eq([i for i in imsis if i not in in_etcd][:3], [], 'every acknowledged IMSI in etcd')

        print(f'[{time.time() - T0:.1f} s] every acknowledged key checked', flush=True)
        # two of three members gone: writes refused, serving goes on
        cl.kill(1)
        t0 = time.time()
        ans = a.admin([{'cmd': 'put-ue', 'id': 'noquorum@x.test', 'muk': os.urandom(16).hex()}])[0]
        ck.check(not ans.get('ok') and 'cluster' in ans.get('error', ''),
                 f'an admin write without quorum is refused with a clear error: {ans} '
                 f'({time.time() - t0:.1f} s)')
        rc, res, err = push_one(1, '001099999999990')
        ck.check(rc == 1 and res.get('result') == 5012,
                 f'a Diameter push without quorum is answered 5012: {res} {err[-200:]}')
        p = subprocess.run(burst_cmd((a, b), '--mode', 'burst', '--window', '1'),
                           capture_output=True, text=True, timeout=120)
        s = summary_of(p.stdout)
        ck.eq((p.returncode, s.get('ok'), s.get('failed')), (0, POP_UES, 0),
              f'MBMS answers from both nodes during the outage: every UE, 0 failures '
              f'({p.stderr[-200:]})')

        print(f'[{time.time() - T0:.1f} s] without quorum: refusals and burst checked', flush=True)
        # the members back: writes again, pushes and deletions on both; convergence
        cl.restart(0)
        cl.restart(1)
        cl.wait_ready(timeout=30)
        ck.check(wait(lambda: a.admin([{'cmd': 'put-ue', 'id': 'back@x.test',
                                        'muk': os.urandom(16).hex()}])[0].get('ok'), 30, 0.5),
                 'A writes again once the members are back')
        for i, imsi in enumerate(('001099999999991', '001099999999992')):
            rc, res, err = push_one(i, imsi)
            ck.eq(rc, 0, f'a push to {nodes[i].name} after recovery ({res} {err[-200:]})')
        gone = imsis[:20]
        for i, n in enumerate(nodes):
            ans = n.admin([{'cmd': 'del', 'kind': 'imsi', 'id': x} for x in gone[i::2]])
            ck.eq([x for x in ans if not x.get('ok')][:2], [], f'deletions on {n.name}')

        def converged():
            if not all((n.status().get('cluster') or {}).get('lag_revisions') == 0
                       for n in nodes):
                return False
            ce = etcd_imsis(cl.client[0])
            counts = [n.admin([{'cmd': 'count'}])[0]['counts']['imsis'] for n in nodes]
            return counts == [len(ce), len(ce)]
        print(f'[{time.time() - T0:.1f} s] members back, writes on both', flush=True)
        if not ck.check(wait(converged, 30, 0.5), 'both nodes hold as many IMSIs as etcd'):
            print(f'etcd {len(etcd_imsis(cl.client[0]))} IMSIs; nodes: ' + '; '.join(
                f'{n.admin([{"cmd": "count"}])[0]["counts"]["imsis"]} IMSIs, '
                f'{n.status().get("cluster")}' for n in nodes), flush=True)
        print(f'[{time.time() - T0:.1f} s] counts compared', flush=True)
        ces = etcd_imsis(cl.client[0])
        ce = sorted(ces)
        la, lb = listing(a, ce), listing(b, ce)
        ck.eq((len(la), len(lb)), (len(ce), len(ce)), 'every IMSI of etcd on both nodes')
        ck.eq([i for i in ce if la.get(i) != lb.get(i)][:3], [],
              'the same key ids and KCVs on both nodes')
        ck.eq([i for i in gone if i in ces], [], 'deleted IMSIs gone from etcd')
        ck.eq([i for i in imsis[len(gone):] if i not in ces][:3], [],
              'every acknowledged IMSI still in etcd')
        print(f'[{time.time() - T0:.1f} s] converged: {len(ce)} IMSIs in etcd and on both nodes', flush=True)
        for n in nodes:
            ck.eq(n.stop(), 0, f'{n.name} stops cleanly')
    finally:
        for n in nodes:
            if n.k:
                n.k.kill()


def lag_samples(a, b, n, stop=None):
    """Replication lag A -> B: from an admin put's acknowledgement on A (committed to etcd) until
    B serves it (its KCV); n samples (or until stop is set). Returns (put latencies, lags)."""
    puts, lags = [], []
    for i in range(n):
        if stop is not None and stop.is_set():
            break
        ue, m = f'lag{i}.{time.time_ns()}@bench.test', os.urandom(16)
        t0 = time.time()
        if not a.admin([{'cmd': 'put-ue', 'id': ue, 'muk': m.hex()}])[0].get('ok'):
            continue
        t1 = time.time()
        want = kl_itest.kcv(m)
        while time.time() - t1 < 5:
            r = b.admin([{'cmd': 'show', 'kind': 'ue', 'id': ue}])[0]
            if r.get('kcv') == want:
                break
        puts.append(t1 - t0)
        lags.append(time.time() - t1)
    return puts, lags


def pcts(v):
    v = sorted(v)
    if not v:
        return 'no samples'
    return (f'n {len(v)}, p50 {v[len(v) // 2] * 1000:.1f} ms, p99 '
            f'{v[min(len(v) - 1, int(len(v) * .99))] * 1000:.1f} ms, max {v[-1] * 1000:.1f} ms')


BENCH_WINDOW = int(os.environ.get('KL_BENCH_WINDOW', '2048'))


def cpu_s(pid):
    """CPU seconds (user + system) of a live process, 0 when gone."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            v = f.read().rsplit(')', 1)[1].split()
        return (int(v[11]) + int(v[12])) / os.sysconf('SC_CLK_TCK')
    except (OSError, IndexError, ValueError):
        return 0.0


def feed_counts(n):
    """A node's Diameter answers and commits, its replicator's commits, transactions and
    commit latency (sum, us) so far."""
    s = n.status()
    d = (s.get('diameter') or {}).get('counters') or {}
    r = (s.get('cluster') or {}).get('replicator') or {}
    return (d.get('answered_ok', 0), d.get('commits', 0), r.get('commits', 0), r.get('txns', 0),
            r.get('latency_us_sum', 0))


def feed_report(nodes, before):
    """Per node, since before (feed_counts of each): pushes per feed commit, etcd transactions
    per commit, the replicator's mean commit latency."""
    out = []
    for n, b in zip(nodes, before):
        a = [x - y for x, y in zip(feed_counts(n), b)]
        if a[1]:
            out.append(f'{n.name}: {a[0]} answered in {a[1]} feed commits ({a[0] / a[1]:.0f} '
                       f'per commit), {a[3] / max(a[2], 1):.1f} etcd txns and '
                       f'{a[4] / max(a[2], 1) / 1000:.1f} ms per replicated commit')
    return '; '.join(out)


def bench(cl):
    """GROUP bench (perf): etcd data and the stores on disk (fsync on), 3 members: durable
    Diameter pushes/s with one writing node, then with two (each sim KL_BENCH_WINDOW requests
    outstanding, default 2048; KL_BENCH_CONNS: cluster.write_connections); per node the pushes
    per feed commit, etcd transactions and latency per replicated commit, and the CPU seconds
    etcd, the nodes and the sims used; replication lag A -> B idle and during the two-node
    push."""
    nodes, sim_cmd = dia_nodes(cl)
    a, b = nodes
    try:
        print(f'load before: {os.getloadavg()}', flush=True)
        puts, lags = lag_samples(a, b, 200)
        print(f'idle: lag A -> B (acknowledged on A until served by B): {pcts(lags)}; the put '
              f'on A: {pcts(puts)}', flush=True)
        for tag, which in ((2, (0,)), (3, (0, 1))):
            stop, got = threading.Event(), []
            th = None
            if len(which) == 2:
                th = threading.Thread(target=lambda: got.append(lag_samples(a, b, 800, stop)))
                th.start()
            before = [feed_counts(n) for n in nodes]
            procs = {'etcd': [p.pid for p in cl.procs], 'node-a': [a.k.p.pid],
                     'node-b': [b.k.p.pid]}
            cpu0 = {k: sum(cpu_s(x) for x in v) for k, v in procs.items()}
            t0 = time.time()
            sims = bulk_push(sim_cmd, which, DIA_N, tag, BENCH_WINDOW)
            sim_cpu = [0.0] * len(sims)
            while any(p.poll() is None for p, _ in sims):
                sim_cpu = [max(c, cpu_s(p.pid)) for c, (p, _) in zip(sim_cpu, sims)]
                time.sleep(0.2)
            cpu = {k: sum(cpu_s(x) for x in v) for k, v in procs.items()}
            res = []
            for p, _ in sims:
                out, err = p.communicate(timeout=1200)
                r = [json.loads(x) for x in out.splitlines() if x.startswith('{')]
                res.append(r[-1] if r else {'stderr': err[-200:]})
            took = time.time() - t0
            stop.set()
            if th:
                th.join()
            ok = sum(r.get('ok', 0) for r in res)
            ck.eq(ok, DIA_N // len(which) * len(which), f'every push acknowledged ({res})')
            print(f'{len(which)} writing node(s): {ok} durable pushes in {took:.1f} s: '
                  f'{ok / took:.0f}/s (per sim: {[r.get("pushes_per_s") for r in res]}, window '
                  f'{BENCH_WINDOW}); load {os.getloadavg()}', flush=True)
            print(f'  {feed_report(nodes, before)}', flush=True)
            print(f'  CPU during the push (of {took:.1f} s x {os.cpu_count()} cores): ' +
                  ', '.join(f'{k} {cpu[k] - cpu0[k]:.1f} s' for k in procs) +
                  f', sims {sum(sim_cpu):.1f} s', flush=True)
            if got:
                print(f'during the push: lag A -> B {pcts(got[0][1])}; the put on A: '
                      f'{pcts(got[0][0])}', flush=True)
        st = etcd_post(cl.client[0], '/v3/maintenance/status', {})
        print(f'etcd db size {int(st["dbSize"])} bytes', flush=True)
        for n in nodes:
            ck.eq(n.stop(), 0, f'{n.name} stops cleanly')
    finally:
        for n in nodes:
            if n.k:
                n.k.kill()


class Proxy:
    """A TCP forwarder to one etcd member that the test can block: blocked, it drops the
    connections it carries and refuses new ones (its port closed, as a firewall's REJECT).
    (A black hole that accepts and never answers costs a node's control thread the request
    timeout per endpoint and call: README "Clusters on etcd", limits.)"""

    def __init__(self, upstream):
        self.up = ('127.0.0.1', int(upstream.rsplit(':', 1)[1]))
        self.port = 0
        self.conns = []
        self.lock = threading.Lock()
        self.ls = None
        self.set_blocked(False)
        self.url = f'http://127.0.0.1:{self.port}'

    def accept(self, ls):
        while True:
            try:
                c, _ = ls.accept()
                u = socket.create_connection(self.up, timeout=2)
            except OSError:
                if ls.fileno() < 0:
                    return
                continue
            with self.lock:
                self.conns += [c, u]
            for x, y in ((c, u), (u, c)):
                threading.Thread(target=self.pump, args=(x, y), daemon=True).start()

    @staticmethod
    def pump(x, y):
        try:
            while True:
                d = x.recv(65536)
                if not d:
                    break
                y.sendall(d)
        except OSError:
            pass
        for z in (x, y):
            try:
                z.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def set_blocked(self, on):
        with self.lock:
            conns, self.conns = self.conns, []
        if on:
            try:  # wakes the accept() (a plain close() would leave it listening)
                self.ls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.ls.close()
            for z in conns:
                try:
                    z.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(('127.0.0.1', self.port))
        self.port = self.ls.getsockname()[1]
        self.ls.listen(64)
        threading.Thread(target=self.accept, args=(self.ls,), daemon=True).start()


def cut_off(cl):
    """GROUP cut-off: B reaches etcd through proxies; blocked, B keeps serving its last state and
    says it is stale while A writes and deletes; unblocked, B catches up, deletions included."""
    proxies = [Proxy(u) for u in cl.client]
    a = Node('node-a', cl.client)
    b = Node('node-b', [p.url for p in proxies])
    a, b = two_nodes(cl, nodes=(a, b))
    try:
        first = {f'u{i}@cut.test': os.urandom(16) for i in range(200)}
        ans = a.admin([{'cmd': 'put-ue', 'id': u, 'muk': m.hex()} for u, m in first.items()])
        ck.eq([x for x in ans if not x.get('ok')][:2], [], '200 UEs put on A')
        ck.check(wait(lambda: b.status()['table']['counts']['ues'] == POP_UES + 200, 10),
                 'B has them')
        for p in proxies:
            p.set_blocked(True)
        t0 = time.time()
        ck.check(wait(lambda: (b.status().get('cluster') or {}).get('stale') is True, 15, 0.1),
                 'B, cut off, reports itself stale')
        print(f'B stale {time.time() - t0:.1f} s after its link was cut', flush=True)
        gone = list(first)[:50]
        ans = a.admin([{'cmd': 'del', 'kind': 'ue', 'id': u} for u in gone])
        ck.eq([x for x in ans if not x.get('ok')][:2], [], 'A deletes 50 of them meanwhile')
        fresh = {f'n{i}@cut.test': os.urandom(16) for i in range(200)}
        ans = a.admin([{'cmd': 'put-ue', 'id': u, 'muk': m.hex()} for u, m in fresh.items()])
        ck.eq([x for x in ans if not x.get('ok')][:2], [], 'A puts 200 new UEs meanwhile')
        ck.eq(b.admin([{'cmd': 'show', 'kind': 'ue', 'id': gone[0]}])[0].get('kcv'),
              kl_itest.kcv(first[gone[0]]), 'B serves its last state (a UE deleted meanwhile)')
        p = subprocess.run(burst_cmd((b,), '--mode', 'burst', '--window', '1'),
                           capture_output=True, text=True, timeout=120)
        s = summary_of(p.stdout)
        ck.eq((p.returncode, s.get('ok'), s.get('failed')), (0, POP_UES, 0),
              f'B answers every UE of the population while cut off ({p.stderr[-200:]})')
        ans = b.admin([{'cmd': 'put-ue', 'id': 'cut@cut.test', 'muk': os.urandom(16).hex()}])[0]
        ck.check(not ans.get('ok') and 'cluster' in ans.get('error', ''),
                 f'a write on the cut-off node is refused: {ans}')
        for p in proxies:
            p.set_blocked(False)
        t0 = time.time()
        ck.check(wait(lambda: not (b.status().get('cluster') or {}).get('stale') and
                      b.status()['table']['counts']['ues'] ==
                      a.status()['table']['counts']['ues'], 30, 0.1),
                 'B caught up once the link is back, not stale')
        print(f'B caught up {time.time() - t0:.1f} s after the link came back', flush=True)
        ids = list(first) + list(fresh)
        ka = {u: r.get('kcv') for u, r in zip(ids, a.admin([{'cmd': 'show', 'kind': 'ue', 'id': u}
                                                             for u in ids]))}
        kb = {u: r.get('kcv') for u, r in zip(ids, b.admin([{'cmd': 'show', 'kind': 'ue', 'id': u}
                                                             for u in ids]))}
        ck.eq([u for u in ids if ka[u] != kb[u]][:3], [], 'the same KCVs on A and B')
        ck.eq([u for u in gone if kb[u] is not None][:3], [], 'the UEs deleted meanwhile are gone')
        ck.eq([u for u, m in fresh.items() if kb[u] != kl_itest.kcv(m)][:3], [],
              'B serves the UEs put meanwhile')
        for n in (a, b):
            ck.eq(n.stop(), 0, f'{n.name} stops cleanly')
    finally:
        for n in (a, b):
            if n.k:
                n.k.kill()
        for p in proxies:
            p.ls.close()


def main():
    fd = os.open(kek, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    cl = test_etcd.start_cluster(etcd_bin, 3, base=tmp if ON_DISK else None)
    try:
        {'node-kill': node_kill, 'etcd-kill': etcd_kill, 'cut-off': cut_off,
         'bench': bench}[group](cl)
    finally:
        cl.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(ck.done())


main()

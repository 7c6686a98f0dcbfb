#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Cluster figures at scale (issue 14 benchmark; README "Clusters on etcd"), on one host:
  1. a store of N UEs (a TEST population, bench/store_fill) joins a new cluster as its first node:
     the seed (N entries uploaded) and the resynchronisation that stamps the replica;
  2. that node restarted: start-up time from its local replica (ready, and following);
  3. a second node with an empty store joins: catch-up of N entries (full resync);
  4. etcd's space per UE.
    cluster_bench.py BUILD_DIR [N (1000000)] [MEMBERS (1)]
Members' data in /dev/shm (tmpfs), stores too; one line per figure on stdout."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', 'tests'))
import kl_itest  # noqa: E402
import test_etcd  # noqa: E402

build = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
MEMBERS = int(sys.argv[3]) if len(sys.argv) > 3 else 1
keylined = os.path.join(build, 'control', 'keylined')
tmp = tempfile.mkdtemp(prefix='kl-clbench-', dir='/dev/shm')
kek = os.path.join(tmp, 'kek')
fd = os.open(kek, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, os.urandom(32))
os.close(fd)
runs = [0]


def node(name, endpoints):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    eps = ', '.join(f'"{e}"' for e in endpoints)
    cfg = kl_itest.write_config(
        os.path.join(d, 'keylined.yaml'), ipv4=('127.0.0.1',), ipv6=(),
        admin=os.path.join(d, 'admin.sock'), table={'ues': N + 1024, 'groups': 1024},
        extra={'io': 'socket', 'udp_port': kl_itest.free_udp_port(), 'log_level': 'warning',
               'store': f'{{path: "{d}/store", kek_file: "{kek}", map_size_mb: 8192}}',
               'cluster': f'{{endpoints: [{eps}], node: {name}, prefix: /bench, '
                          f'request_timeout_ms: 60000}}'})
    return d, cfg


def start(d, cfg):
    runs[0] += 1
    t0 = time.time()
    k = kl_itest.Keylined(keylined, kl_itest.eal_args(kl_itest.unique(f'cb{runs[0]}'),
                                                      mem=4096), cfg, workdir=d)
    k.wait_ready(timeout=3600)
    return k, time.time() - t0


def status(d):
    return kl_itest.admin_many(os.path.join(d, 'admin.sock'), [{'cmd': 'status'}])[0]


def wait_following(d, t0, ues):
    while True:
        s = status(d)
        c = s['cluster']
        if c['state'] == 'following' and s['table']['counts']['ues'] >= ues:
            return time.time() - t0, c
        time.sleep(0.05)


pop = os.path.join(tmp, 'pop.txt')
subprocess.run([os.path.join(build, 'tools', 'keyline-population'), '--seed', '3', '--ues',
                str(N), '--groups', '16', '-o', pop], check=True)
t0 = time.time()
os.makedirs(os.path.join(tmp, 'a'))
fill = subprocess.run([os.path.join(build, 'bench', 'store_fill'), '--store',
                       os.path.join(tmp, 'a', 'store'), '--kek', kek, '--population', pop,
                       '--map-mb', '8192'], capture_output=True, text=True, check=True)
print(f'store_fill: {fill.stdout.strip()} ({time.time() - t0:.1f} s)', flush=True)
cl = test_etcd.start_cluster(os.environ.get('ETCD', '/usr/bin/etcd'), MEMBERS)
try:
    da, ca = node('a', cl.client)
    t0 = time.time()
    ka, ready = start(da, ca)
    took, c = wait_following(da, t0, N)
    print(f'first node, {N} UEs: seed and ready in {ready:.1f} s (seeded '
          f'{c["counters"]["seeded"]}), following (resync of {c["counters"]["resync_entries"]} '
          f'entries) after {took:.1f} s; revision {c["applied_revision"]}', flush=True)
    ka.stop(timeout=600)
    t0 = time.time()
    ka, ready = start(da, ca)
    took, c = wait_following(da, t0, N)
    print(f'restart from the local replica ({N} UEs): ready in {ready:.2f} s, following after '
          f'{took:.2f} s (resyncs {c["counters"]["resyncs"]})', flush=True)
    db, cb = node('b', cl.client[::-1])
    t0 = time.time()
    kb, ready = start(db, cb)
    took, c = wait_following(db, t0, N)
    print(f'second node, empty store: ready in {ready:.2f} s, caught up {N} entries (full '
          f'resync) after {took:.1f} s ({N / took:.0f} entries/s)', flush=True)
    st = json.load(__import__('urllib.request').request.urlopen(
        __import__('urllib.request').request.Request(cl.client[0] + '/v3/maintenance/status',
                                                     data=b'{}'), timeout=30))
    print(f'etcd ({MEMBERS} member(s)): db size {int(st["dbSize"])} bytes, in use '
          f'{int(st.get("dbSizeInUse", 0))}: {int(st["dbSize"]) / N:.0f} bytes per UE '
          f'(seeded once, no compaction)', flush=True)
    kb.stop(timeout=600)
    ka.stop(timeout=600)
finally:
    cl.stop()
    shutil.rmtree(tmp, ignore_errors=True)

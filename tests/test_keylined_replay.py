#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A replay never gets keys, whichever worker it reaches (PROTOCOL.md section 6): keylined with two
workers, every captured MBMS request sent again from other source ports and addresses.
  - kernel sockets (SO_REUSEPORT spreads the sources over the two workers' sockets): each request
    and four copies from other ports of 127.0.0.1 and from 127.0.0.2-3, racing;
  - DPDK (net_pcap with two queues, one per worker): each request from 198.51.100.x on one queue,
    its copy from 203.0.113.x and another port on the other, both queues read at once.
Every answer is verified (replay_client); no request may get keys twice, and both workers must
have seen copies (else the test would prove nothing).
    test_keylined_replay.py KEYLINED REPLAY_CLIENT KEYLINE_POPULATION"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, client, popgen = sys.argv[1:4]
ck = kl_itest.Checks('keylined-replay')
tmp = tempfile.mkdtemp(prefix='kl-replay-')
N = 3000
# a main lcore and two workers on two CPUs
EAL = kl_itest.EAL_BASE + ['-m', '512', '--no-telemetry', '--lcores', '0@0,1@0,2@1']

pop = os.path.join(tmp, 'pop.txt')
subprocess.run([popgen, '--seed', '5', '--ues', str(N), '--groups', '4', '--emses', '4',
                '--imsis', '4', '--appids', '4', '-o', pop], check=True, capture_output=True)


def per_worker(sock):
    out = []
    for w in range(2):
        a = kl_itest.admin_many(sock, [{'cmd': 'stats', 'worker': w}])[0]
        out.append((a.get('engine', {}), a.get('engine_drops', {})))
    return out


def judge(tag, r, kd_counters, workers):
    ck.eq(r.get('keys_twice'), 0, f'{tag}: requests that got keys more than once')
    ck.eq(r.get('unverified'), 0, f'{tag}: answers that do not verify')
    ck.eq(r.get('unknown'), 0, f'{tag}: answers to no request')
    # a request whose copies meet exactly may be refused on both workers (never let in on both)
    ck.check(r.get('key_answers', 0) >= N * 0.98, f'{tag}: keys for (nearly) every request: {r}')
    ck.eq(r.get('key_answers', 0) + r.get('no_keys', 0), N, f'{tag}: keys once or not at all')
    if kd_counters is not None:
        ck.eq(kd_counters.get('answered_mbms'), r.get('key_answers'),
              f'{tag}: keylined answered_mbms = keys the client verified')
    for w, (eng, drops) in enumerate(workers):
        ck.check(eng.get('requests_mbms', 0) > 0, f'{tag}: worker {w} served requests: {eng}')
        ck.check(drops.get('replay', 0) > 0, f'{tag}: worker {w} refused copies as replays: {drops}')


# ---- kernel sockets ---------------------------------------------------------------------------
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 0))
port = s.getsockname()[1]
s.close()
sock = os.path.join(tmp, 'sock.sock')
cfg = kl_itest.write_config(os.path.join(tmp, 'sock.yaml'), ipv4=('127.0.0.1',), ipv6=(),
                            admin=sock, extra={'io': 'socket', 'udp_port': port, 'workers': 2})
kd = kl_itest.Keylined(keylined, EAL + ['--file-prefix', kl_itest.unique('rps')], cfg,
                       ['-p', pop], workdir=tmp)
kd.wait_ready()
try:
    p = subprocess.run([client, 'socket', pop, '127.0.0.1', str(port), str(N), '4'],
                       capture_output=True, text=True, timeout=120)
    ck.eq(p.returncode, 0, f'socket: replay_client ran ({p.stderr[-300:]})')
    r = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
    print('socket io, 2 workers:', r, flush=True)
    ck.eq(r.get('copies_sent'), 4 * N, 'socket: every copy sent')
    workers = per_worker(sock)
finally:
    rc, counters = kd.stop()
ck.eq(rc, 0, 'socket: keylined stops cleanly')
judge('socket', r, counters, workers)

# ---- DPDK: net_pcap, a queue per worker ---------------------------------------------------------
state, a, b, oa, ob = (os.path.join(tmp, n) for n in ('state', 'a.pcap', 'b.pcap', 'oa.pcap', 'ob.pcap'))
p = subprocess.run([client, 'pcap', pop, state, a, b, str(N)], capture_output=True, text=True,
                   timeout=60)
ck.eq(p.returncode, 0, f'pcap: captures written ({p.stderr[-300:]})')
sock = os.path.join(tmp, 'pcap.sock')
with open(os.path.join(tmp, 'pcap.yaml'), 'w') as f:
    f.write(f'''ports:
  - name: pcap0
    devargs: "net_pcap0,rx_pcap={a},rx_pcap={b},tx_pcap={oa},tx_pcap={ob}"
    queues: 2
workers: 2
ipv4: [192.0.2.1]
server_identity: "keyline.test"
admin_socket: {sock}
table: {{ues: 20000, groups: 16, emses: 64, imsis: 64, appids: 64}}
''')
kd = kl_itest.Keylined(keylined, EAL + ['--file-prefix', kl_itest.unique('rpp')],
                       os.path.join(tmp, 'pcap.yaml'), ['-p', pop], workdir=tmp)
kd.wait_ready()
try:
    # the PMD reads both files at once; wait until both workers have taken all 2N frames
    end = time.time() + 60
    while time.time() < end:
        workers = per_worker(sock)
        if sum(e.get('requests_received', 0) for e, _ in workers) >= 2 * N:
            break
        time.sleep(0.2)
    time.sleep(0.5)
    workers = per_worker(sock)
finally:
    rc, counters = kd.stop()
ck.eq(rc, 0, 'pcap: keylined stops cleanly')
ck.eq(sum(e.get('requests_received', 0) for e, _ in workers), 2 * N, 'pcap: every frame reached a worker')
p = subprocess.run([client, 'count', pop, state, oa, ob, str(N)], capture_output=True, text=True,
                   timeout=120)
ck.eq(p.returncode, 0, f'pcap: answers counted ({p.stderr[-300:]})')
r = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
print('DPDK io (net_pcap), 2 workers:', r, flush=True)
judge('pcap', r, counters, workers)

sys.exit(ck.done())

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A replay never gets keys, whichever worker it reaches (PROTOCOL.md section 6): keylined with two
workers, every captured MBMS request sent again from other source ports and addresses.
  - kernel sockets (SO_REUSEPORT spreads the sources over the two workers' sockets): each request
    and fifteen copies from other ports of 127.0.0.1 and from 127.0.0.2-8, racing;
  - DPDK (net_pcap with two queues, one per worker): each request from 198.51.100.x on one queue,
    its copy from 203.0.113.x and another port on the other, both queues read at once;
  - DPDK over net_memif with two queue pairs (the client a second DPDK process): the same frames.
Every answer is verified (replay_client); no request may get keys twice, and both workers must
have seen copies (else the test would prove nothing).
    test_keylined_replay.py KEYLINED REPLAY_CLIENT KEYLINE_POPULATION"""
import json
import os
import shutil
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
COPIES = 15  # 16 sources: SO_REUSEPORT puts them all on one worker once in 2^15 runs
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


def all_taken(sock, timeout):
    """Per-worker stats once both workers have taken all 2N frames (or the timeout passed)."""
    end = time.time() + timeout
    while True:
        workers = per_worker(sock)
        if sum(e.get('requests_received', 0) for e, _ in workers) >= 2 * N or time.time() > end:
            return workers
        time.sleep(0.2)


def judge(tag, r, kd_counters, workers):
    ck.eq(r.get('keys_twice'), 0, f'{tag}: requests that got keys more than once')
    ck.eq(r.get('unverified'), 0, f'{tag}: answers that do not verify')
    ck.eq(r.get('unknown'), 0, f'{tag}: answers to no request')
    # a request whose copies meet exactly may be refused on both workers (never let in on both)
    ck.check(r.get('key_answers', 0) >= N * 0.98, f'{tag}: keys for (nearly) every request: {r}')
    ck.eq(r.get('key_answers', 0) + r.get('no_keys', 0), N, f'{tag}: keys once or not at all')
    if kd_counters is not None:
        # every key answer keylined sent reached the client, but for answers the device or
        # socket did not take (counted: a full ring on a loaded machine), which cannot be keys
        # the client saw
        lost = kd_counters.get('tx_dropped', 0)
        ck.check(r.get('key_answers', 0) <= kd_counters.get('answered_mbms', 0)
                 <= r.get('key_answers', 0) + lost,
                 f'{tag}: keylined answered_mbms {kd_counters.get("answered_mbms")} = keys the '
                 f'client verified {r.get("key_answers")} (+ tx_dropped {lost})')
    for w, (eng, drops) in enumerate(workers):
        ck.check(eng.get('requests_mbms', 0) > 0, f'{tag}: worker {w} served requests: {eng}')
    replays = sum(d.get('replay', 0) for _, d in workers)
    if tag == 'socket':
        # SO_REUSEPORT spreads the five sources over both workers: each refuses copies
        for w, (_, drops) in enumerate(workers):
            ck.check(drops.get('replay', 0) > 0, f'{tag}: worker {w} refused copies: {drops}')
    else:
        # every request's copy is on the other queue (the other worker) by construction; which
        # worker sees a request first depends on timing, so only the sum is fixed
        # refused silently, or (a copy that met the other mid-insert, its slots busy) with
        # "invalid timestamp"; a request whose two copies met exactly may have both refused
        nk, refused = r.get('no_keys', 0), replays + r.get('error_answers', 0)
        ck.check(N - nk <= refused <= N + nk, f'{tag}: copies refused: {refused} of {N} ({r})')
        for w, (eng, _) in enumerate(workers):
            ck.eq(eng.get('requests_received'), N, f'{tag}: worker {w} took its queue\'s frames')


def dpdk_server(tag, devargs):
    """keylined with two workers on one DPDK port of two queue pairs; (keylined, admin socket)."""
    sock = os.path.join(tmp, f'{tag}-admin.sock')
    cfg = kl_itest.write_config(os.path.join(tmp, f'{tag}.yaml'), ports=[(f'{tag}0', devargs, 2)],
                                ipv6=(), admin=sock, identity='keyline.test', extra={'workers': 2})
    kd = kl_itest.Keylined(keylined, EAL + ['--file-prefix', kl_itest.unique('rp' + tag)], cfg,
                           ['-p', pop], workdir=tmp)
    kd.wait_ready()
    return kd, sock


# ---- kernel sockets ---------------------------------------------------------------------------
port = kl_itest.free_udp_port()
sock = os.path.join(tmp, 'sock.sock')
cfg = kl_itest.write_config(os.path.join(tmp, 'sock.yaml'), ipv4=('127.0.0.1',), ipv6=(),
                            admin=sock, extra={'io': 'socket', 'udp_port': port, 'workers': 2})
kd = kl_itest.Keylined(keylined, EAL + ['--file-prefix', kl_itest.unique('rps')], cfg,
                       ['-p', pop], workdir=tmp)
r, workers = {}, []
try:
    kd.wait_ready()
    p = subprocess.run([client, 'socket', pop, '127.0.0.1', str(port), str(N), str(COPIES)],
                       capture_output=True, text=True, timeout=120)
    ck.eq(p.returncode, 0, f'socket: replay_client ran ({p.stderr[-300:]})')
    r = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
    print('socket io, 2 workers:', r, flush=True)
    ck.eq(r.get('copies_sent'), COPIES * N, 'socket: every copy sent')
    workers = per_worker(sock)
finally:
    try:
        rc, counters = kd.stop()
    finally:
        kd.kill()
ck.eq(rc, 0, 'socket: keylined stops cleanly')
judge('socket', r, counters, workers)

# ---- DPDK: net_pcap, a queue per worker ---------------------------------------------------------
state, a, b, oa, ob = (os.path.join(tmp, n) for n in ('state', 'a.pcap', 'b.pcap', 'oa.pcap', 'ob.pcap'))
p = subprocess.run([client, 'pcap', pop, state, a, b, str(N)], capture_output=True, text=True,
                   timeout=60)
ck.eq(p.returncode, 0, f'pcap: captures written ({p.stderr[-300:]})')
kd, sock = dpdk_server('pcap', f'net_pcap0,rx_pcap={a},rx_pcap={b},tx_pcap={oa},tx_pcap={ob}')
try:
    # the PMD reads both files at once; wait until both workers have taken all 2N frames
    workers = all_taken(sock, 60)
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

# ---- DPDK: net_memif, two queue pairs, a DPDK client in a second process -----------------------
msock = os.path.join(tmp, 'memif.sock')
kd, sock = dpdk_server('memif', f'net_memif0,role=server,socket={msock},mac=02:70:63:61:70:00')
cl = subprocess.Popen([client, 'memif', pop, msock, str(N)], stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True)
r, workers = {}, []
try:
    line = cl.stdout.readline()  # printed once every answer is in; the client holds its port
    r = json.loads(line) if line.startswith('{') else {}
    # refused copies get no answer: wait until both workers have taken all 2N frames
    workers = all_taken(sock, 30)
finally:
    try:
        rc, counters = kd.stop()
    finally:  # the client is reaped even when keylined's stop failed
        try:
            _, err = cl.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            cl.kill()
            _, err = cl.communicate()
        if cl.returncode < 0:  # killed: EAL left its runtime directory (replay_client's prefix)
            kl_itest.remove_rundir(f'kl_replay_client_{cl.pid}')
ck.eq(rc, 0, 'memif: keylined stops cleanly')
ck.eq(cl.returncode, 0, f'memif: replay_client ran ({err[-300:]})')
print('DPDK io (net_memif, two queue pairs), 2 workers:', r, flush=True)
ck.eq(r.get('copies_sent'), N, 'memif: every copy sent')
judge('memif', r, counters, workers)

shutil.rmtree(tmp, ignore_errors=True)
sys.exit(ck.done())

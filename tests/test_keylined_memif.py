#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keylined on net_memif with keyline-burst, a DPDK client in a second process (its own
--file-prefix), then DPDK telemetry and Prometheus /metrics scraped after that known traffic: the
counts must match what the client sent and verified.
Then the verdict must be able to fail: keylined given a wrong MSK for one key group (keylinectl)
makes keyline-burst report exactly that group's UEs as failed and exit non-zero. Last, a
rate-limited keylined drops first tries and retransmissions recover every UE.
    test_keylined_memif.py KEYLINED KEYLINE_BURST KEYLINE_POPULATION KEYLINECTL"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, burst, popgen, keylinectl = sys.argv[1:5]
ck = kl_itest.Checks('keylined-memif')
tmp = tempfile.mkdtemp(prefix='kl-memif-')
UES, EMSES = 10000, 64


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def telemetry(prefix, cmd):
    path = f'/var/run/dpdk/{prefix}/dpdk_telemetry.v2'
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    json.loads(s.recv(65536))  # greeting
    s.send(cmd.encode())
    reply = json.loads(s.recv(1 << 20))
    s.close()
    return reply.get(cmd.split(',')[0])


def metrics(port):
    body = urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=5).read().decode()
    vals = {}
    for line in body.splitlines():
        if line.startswith('#') or not line.strip():
            continue
        name, value = line.rsplit(' ', 1)
        vals[name] = float(value)
    return body, vals


def start_burst(kind, extra, sock_path, vdev='net_memif0'):
    """keyline-burst over memif, holding its port after the run (the server is stopped first:
    DPDK 22.11's memif PMD can fault in a side still polling when its peer disconnects)."""
    prefix = kl_itest.unique('cli' + kind + vdev[-1])
    cmd = [burst] + kl_itest.eal_args(prefix, mem=256, lcores='0') + [
        '--vdev', f'{vdev},role=client,socket={sock_path}', '--',
        '--population', pop, '--kind', kind, '--server-ip', '192.0.2.1', '--client-ip',
        '192.0.2.100', '--sources', '16', '--interval-ms', '100', '--timeout-ms', '200',
        '--retries', '4', '--hold-s', '20'] + list(extra)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_holding(p, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        line = p.stderr.readline()
        if not line:
            return False
        if 'holding the port' in line:
            return True
    return False


def finish_burst(p):
    out, err = p.communicate(timeout=60)
    lines = [json.loads(l) for l in out.splitlines() if l.startswith('{')]
    return p.returncode, (lines[-1] if lines else {}), lines


def run_burst(kind, extra=(), sock_path=None):
    sock_path = sock_path or sock
    prefix = kl_itest.unique('cli' + kind)
    cmd = [burst] + kl_itest.eal_args(prefix, mem=256, lcores='0') + [
        '--vdev', f'net_memif0,role=client,socket={sock_path}', '--',
        '--population', pop, '--kind', kind, '--server-ip', '192.0.2.1', '--client-ip',
        '192.0.2.100', '--sources', '16', '--interval-ms', '100', '--timeout-ms', '200', '--retries', '4'] + list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith('{')]
    return p, (lines[-1] if lines else {}), lines


pop = os.path.join(tmp, 'pop.txt')
subprocess.run([popgen, '--seed', '99', '--ues', str(UES), '--groups', '8', '--emses', str(EMSES),
                '--imsis', str(EMSES), '--appids', str(EMSES), '-o', pop], check=True)
sock, sock_b = os.path.join(tmp, 'memif.sock'), os.path.join(tmp, 'memif-b.sock')
mport = free_port()
# two memif ports served by one worker: the MBMS client on one, the E2M client on the other
cfg = kl_itest.write_config(os.path.join(tmp, 'k.yaml'),
                            ports=[('memif0', f'net_memif0,role=server,socket={sock}', 1),
                                   ('memif1', f'net_memif1,role=server,socket={sock_b}', 1)],
                            extra={'metrics': f'"127.0.0.1:{mport}"'})
sprefix = kl_itest.unique('srv')
kd = kl_itest.Keylined(keylined, kl_itest.eal_args(sprefix, telemetry=True), cfg, ['-p', pop],
                       workdir=tmp)
clients = []
try:
    kd.wait_ready()
    # rekey burst: every UE asks for its group's MSK inside one second
    pm = start_burst('mbms', ['--mode', 'burst', '--window', '1'], sock)
    clients.append(pm)
    ck.check(wait_holding(pm), 'MBMS client finished its run')
    pe = start_burst('e2m', ['--mode', 'rate', '--rate', '2000'], sock_b)
    clients.append(pe)
    ck.check(wait_holding(pe), 'E2M client finished its run')

    # telemetry and /metrics after the known traffic (both clients done, still attached)
    t = telemetry(sprefix, '/keyline/stats') or {}
    t0 = telemetry(sprefix, '/keyline/stats,0') or {}
    tt = telemetry(sprefix, '/keyline/table') or {}
    bad = telemetry(sprefix, '/keyline/stats,7')
    body, v = metrics(mport)
    rc, c = kd.stop()
    ck.eq(rc, 0, 'keylined exits 0 on SIGTERM')
    c = c or {}
    rcm, mb, mlines = finish_burst(pm)
    rce, eb, _ = finish_burst(pe)
    ck.eq(rcm, 0, 'MBMS burst exit status')
    ck.eq(mb.get('ok'), UES, 'MBMS: every UE verified')
    ck.eq(mb.get('failed'), 0, 'MBMS: no failures')
    ck.check(len(mlines) >= 3, 'MBMS: interval lines printed')
    ck.eq(rce, 0, 'E2M exit status')
    ck.eq(eb.get('ok'), EMSES, 'E2M: every EMSE verified')

    mc, ec = mb.get('counters', {}), eb.get('counters', {})
    m_sent, e_sent = mc.get('sent', -1), ec.get('sent', -1)
    # the server answers every request it takes, retransmissions included: the clients saw
    # those answers as answered, duplicate (the UE already had its key) or late; an answer a
    # client's ring dropped is seen by none of them
    def seen(cc):
        return sum(cc.get(k, 0) for k in ('answered', 'duplicate', 'late'))

    tc = t.get('counters', {})
    m_ans, e_ans = tc.get('answered_mbms', -2), tc.get('answered_e2m', -2)
    ck.check(seen(mc) <= m_ans <= m_sent, 'telemetry: answered_mbms %s, the client saw %d of '
             'its %d requests answered' % (m_ans, seen(mc), m_sent))
    ck.check(seen(ec) <= e_ans <= e_sent, 'telemetry: answered_e2m %s, the client saw %d of '
             'its %d requests answered' % (e_ans, seen(ec), e_sent))
    ck.check(mc.get('answered', 0) >= UES and ec.get('answered', 0) >= EMSES,
             'clients: an answer for every UE and EMSE')
    ck.eq(tc.get('requests_mbms'), m_sent, 'telemetry: requests_mbms')
    ck.eq(tc.get('requests_e2m'), e_sent, 'telemetry: requests_e2m')
    t0.pop('worker', None)
    ck.eq(json.dumps(t0, sort_keys=True), json.dumps({k: v for k, v in t.items() if k != 'workers'},
                                                     sort_keys=True),
          'one worker: /keyline/stats,0 equals the totals')
    ck.eq(bad, None, 'telemetry refuses a worker that does not exist')
    ck.check(str(UES) in json.dumps(tt), f'telemetry table shows {UES} UEs: {tt}')
    ck.eq(v.get('keyline_requests_total{kind="mbms"}'), float(m_sent), 'metrics: MBMS requests')
    ck.eq(v.get('keyline_requests_total{kind="e2m"}'), float(e_sent), 'metrics: E2M requests')
    ck.eq(v.get('keyline_answers_total{kind="mbms",result="key"}'), float(m_ans),
          'metrics: MBMS key answers')
    ck.eq(v.get('keyline_answers_total{kind="e2m",result="key"}'), float(e_ans),
          'metrics: E2M key answers')
    ck.eq(v.get('keyline_table_entries{kind="ues"}'), float(UES), 'metrics: UEs in the table')
    ck.eq(v.get('keyline_service_seconds_count'), float(m_ans + e_ans),
          'metrics: service-time histogram counts every answer')
    ck.check(v.get('keyline_io_arp_replies_total', 0) >= 2, 'metrics: ARP answered for each client')
    ck.check('ue0000' not in body and '@' not in body, 'metrics: no identity in the body')
    ck.eq(c.get('answered_mbms'), m_ans, 'final counters: answered_mbms')
    ck.eq(c.get('answered_e2m'), e_ans, 'final counters: answered_e2m')
    ck.eq(c.get('drop_bad_mac'), 0, 'final counters: no bad MAC')
finally:
    kd.kill()
    for p in clients:
        if p.poll() is None:
            p.kill()
            p.wait()
sys.exit(ck.done())

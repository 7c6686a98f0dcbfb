#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keylined on net_memif with keyline-burst, a DPDK client in a second process (its own
--file-prefix), then DPDK telemetry and Prometheus /metrics scraped after that known traffic: the
counts must match what the client sent and verified.
    test_keylined_memif.py KEYLINED KEYLINE_BURST KEYLINE_POPULATION"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, burst, popgen = sys.argv[1:4]
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


def run_burst(kind, extra=()):
    prefix = kl_itest.unique('cli' + kind)
    cmd = [burst] + kl_itest.eal_args(prefix, mem=256, lcores='0') + [
        '--vdev', f'net_memif0,role=client,socket={sock}', '--',
        '--population', pop, '--kind', kind, '--server-ip', '192.0.2.1', '--client-ip',
        '192.0.2.100', '--sources', '16', '--interval-ms', '100', '--timeout-ms', '200', '--retries', '4'] + list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith('{')]
    return p, (lines[-1] if lines else {}), lines


pop = os.path.join(tmp, 'pop.txt')
subprocess.run([popgen, '--seed', '99', '--ues', str(UES), '--groups', '8', '--emses', str(EMSES),
                '--imsis', str(EMSES), '--appids', str(EMSES), '-o', pop], check=True)
sock = os.path.join(tmp, 'memif.sock')
mport = free_port()
cfg = kl_itest.write_config(os.path.join(tmp, 'k.yaml'),
                            ports=[('memif0', f'net_memif0,role=server,socket={sock}', 1)],
                            extra={'metrics': f'"127.0.0.1:{mport}"'})
sprefix = kl_itest.unique('srv')
kd = kl_itest.Keylined(keylined, kl_itest.eal_args(sprefix, telemetry=True), cfg, ['-p', pop],
                       workdir=tmp)
try:
    kd.wait_ready()
    # rekey burst: every UE asks for its group's MSK inside one second
    p, mb, mlines = run_burst('mbms', ['--mode', 'burst', '--window', '1'])
    ck.eq(p.returncode, 0, f'MBMS burst exit status ({p.stderr[-500:]})')
    ck.eq(mb.get('ok'), UES, 'MBMS: every UE verified')
    ck.eq(mb.get('failed'), 0, 'MBMS: no failures')
    ck.check(len(mlines) >= 3, 'MBMS: interval lines printed')
    p, eb, _ = run_burst('e2m', ['--mode', 'rate', '--rate', '2000'])
    ck.eq(p.returncode, 0, f'E2M exit status ({p.stderr[-500:]})')
    ck.eq(eb.get('ok'), EMSES, 'E2M: every EMSE verified')

    mc, ec = mb.get('counters', {}), eb.get('counters', {})
    m_sent, e_sent = mc.get('sent', -1), ec.get('sent', -1)
    m_ans, e_ans = mc.get('answered', -2), ec.get('answered', -2)
    # telemetry after the known traffic
    t = telemetry(sprefix, '/keyline/stats') or {}
    t0 = telemetry(sprefix, '/keyline/stats,0') or {}
    tt = telemetry(sprefix, '/keyline/table') or {}
    bad = telemetry(sprefix, '/keyline/stats,7')
    flat = json.dumps(t)
    ck.check(str(m_ans) in flat and str(e_ans) in flat,
             f'telemetry totals carry the answered counts {m_ans}/{e_ans}: {flat[:600]}')
    t0.pop('worker', None)
    ck.eq(json.dumps(t0, sort_keys=True), json.dumps({k: v for k, v in t.items() if k != 'workers'},
                                                     sort_keys=True),
          'one worker: /keyline/stats,0 equals the totals')
    ck.eq(bad, None, 'telemetry refuses a worker that does not exist')
    ck.check(str(UES) in json.dumps(tt), f'telemetry table shows {UES} UEs: {tt}')

    body, v = metrics(mport)
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

    rc, c = kd.stop()
    ck.eq(rc, 0, 'keylined exits 0 on SIGTERM')
    c = c or {}
    ck.eq(c.get('answered_mbms'), m_ans, 'final counters: answered_mbms')
    ck.eq(c.get('answered_e2m'), e_ans, 'final counters: answered_e2m')
    ck.eq(c.get('drop_bad_mac'), 0, 'final counters: no bad MAC')
finally:
    kd.kill()
sys.exit(ck.done())

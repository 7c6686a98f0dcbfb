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

    # a wrong MSK for key group 3 (same MSK ID and validity): exactly its UEs must fail
    show = subprocess.run([popgen, '--show', pop, '--index', '2'], capture_output=True, text=True,
                          check=True).stdout
    g = re.search(r'group 3 current msk-id (0x[0-9A-Fa-f]+) kcv \S+ valid (\d+)\.\.(\d+)', show)
    ck.check(g is not None, f'population shows group 3: {show}')
    NTP_UNIX = 2208988800
    mskfile = os.path.join(tmp, 'wrong.msk')
    with open(mskfile, 'w') as f:
        f.write(os.urandom(16).hex() + '\n')
    p = subprocess.run([keylinectl, '-s', os.path.join(tmp, 'admin.sock'), 'put-group', '00f110:3',
                        '--msk-file', mskfile, '--msk-id', str(int(g.group(1), 16)),
                        '--valid-from', str(int(g.group(2)) - NTP_UNIX),
                        '--valid-to', str(int(g.group(3)) - NTP_UNIX)],
                       capture_output=True, text=True)
    ck.eq(p.returncode, 0, f'keylinectl put-group with a wrong MSK ({p.stderr})')
    p, wb, _ = run_burst('mbms', ['--mode', 'burst', '--window', '0.5', '--fail-list', '2000',
                                  '--retries', '0'])
    in_group3 = {i for i in range(UES) if i % 8 == 2}
    ck.eq(p.returncode, 1, 'wrong MSK: keyline-burst exits 1')
    ck.eq(wb.get('failed'), len(in_group3), 'wrong MSK: failed UEs')
    ck.eq(wb.get('ok'), UES - len(in_group3), 'wrong MSK: every other UE verified')
    flist = wb.get('failures', {})
    listed = flist.get('list', []) if isinstance(flist, dict) else flist
    idx = {f.get('ue') if 'ue' in f else f.get('index') for f in listed}
    ck.eq(idx, in_group3, 'wrong MSK: the failed UEs are exactly group 3')
    ck.check(all('wrong_key' in json.dumps(f) for f in listed), 'wrong MSK: reason wrong_key')

    rc, c = kd.stop()
    ck.eq(rc, 0, 'keylined exits 0 on SIGTERM')
    c = c or {}
    ck.eq(c.get('answered_mbms'), m_ans + UES, 'final counters: answered_mbms')
    ck.eq(c.get('answered_e2m'), e_ans, 'final counters: answered_e2m')
    ck.eq(c.get('drop_bad_mac'), 0, 'final counters: no bad MAC')
finally:
    kd.kill()

# rate-limited: first tries are dropped, retransmissions recover every UE
sock2 = os.path.join(tmp, 'memif2.sock')
cfg2 = kl_itest.write_config(os.path.join(tmp, 'k2.yaml'),
                             ports=[('memif0', f'net_memif0,role=server,socket={sock2}', 1)],
                             admin=os.path.join(tmp, 'admin2.sock'),
                             extra={'rate_limit': '{per_source_pps: 1000, burst: 20}'})
kd = kl_itest.Keylined(keylined, kl_itest.eal_args(kl_itest.unique('srv2')), cfg2, ['-p', pop],
                       workdir=tmp)
try:
    kd.wait_ready()
    p, rb, _ = run_burst('mbms', ['--ues', '2000', '--mode', 'burst', '--window', '1',
                                  '--timeout-ms', '100', '--retries', '8', '--sources', '1'],
                               sock_path=sock2)
    # one source at 2,000 requests/s against 1000/s with a bucket of 20: about half the first
    # tries are dropped; each retry wave is spread over the same second and gets half again
    rcn = rb.get('counters', {})
    ck.eq(p.returncode, 0, f'rate-limited: keyline-burst exit ({p.stderr[-300:]})')
    ck.eq(rb.get('ok'), 2000, 'rate-limited: every UE verified')
    ck.check(rcn.get('retransmissions', 0) > 0, f'rate-limited: retransmissions {rcn}')
    rc, c = kd.stop(sig=signal.SIGINT)
    ck.eq(rc, 0, 'rate-limited keylined exits 0 on SIGINT')
    ck.check((c or {}).get('rate_limited', 0) > 0, f'server counted rate-limited drops: {c}')
    ck.eq((c or {}).get('rate_table_full'), 0, 'no source refused for a full table')
finally:
    kd.kill()
sys.exit(ck.done())

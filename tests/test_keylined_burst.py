#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keyline-burst's verdict against a real keylined (kernel-socket io on loopback): SLOs on the
command line fail a run whose keys all verified; a wrong MSK for one key group (put with
keylinectl) fails exactly that group's UEs and the run exits non-zero; a rate-limited keylined
drops first tries and retransmissions recover every UE.
    test_keylined_burst.py KEYLINED KEYLINE_BURST KEYLINE_POPULATION KEYLINECTL"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, burst, popgen, keylinectl = sys.argv[1:5]
ck = kl_itest.Checks('keylined-burst')
tmp = tempfile.mkdtemp(prefix='kl-burst-')
UES = 10000


def run_burst(port, extra):
    cmd = [burst, '--io', 'socket', '--population', pop, '--server-ip', '127.0.0.1',
           '--server-port', str(port), '--interval-ms', '100'] + list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith('{')]
    return p, (lines[-1] if lines else {})


def server(name, extra=None):
    port = kl_itest.free_udp_port()
    cfg = kl_itest.write_config(os.path.join(tmp, f'{name}.yaml'), ipv4=('127.0.0.1',), ipv6=(),
                                admin=os.path.join(tmp, f'{name}.sock'),
                                extra=dict({'io': 'socket', 'udp_port': port}, **(extra or {})))
    kd = kl_itest.Keylined(keylined, kl_itest.eal_args(kl_itest.unique(name)), cfg, ['-p', pop],
                           workdir=tmp)
    kd.wait_ready()
    return kd, port


pop = os.path.join(tmp, 'pop.txt')
subprocess.run([popgen, '--seed', '99', '--ues', str(UES), '--groups', '8', '--emses', '64',
                '--imsis', '64', '--appids', '64', '-o', pop], check=True)
kd, port = server('a')
try:
    # SLOs: a missed one fails the run although every key verified
    p, sb = run_burst(port, ['--ues', '500', '--mode', 'rate', '--rate', '5000',
                             '--slo-p99-us', '1', '--slo-complete-s', '60'])
    ck.eq(p.returncode, 1, 'an impossible p99 SLO (1 us) fails the run')
    ck.eq(sb.get('ok'), 500, 'the SLO run still verified every UE')
    p, sb = run_burst(port, ['--ues', '500', '--first', '500', '--mode', 'rate', '--rate', '5000',
                             '--slo-p99-us', '1000000', '--slo-complete-s', '60'])
    ck.eq(p.returncode, 0, f'generous SLOs hold ({p.stderr[-300:]})')

    # a wrong MSK for key group 3 (same MSK ID and validity): exactly its UEs must fail
    show = subprocess.run([popgen, '--show', pop, '--index', '2'], capture_output=True, text=True,
                          check=True).stdout
    g = re.search(r'group 3 current msk-id (0x[0-9A-Fa-f]+) kcv \S+ valid (\d+)\.\.(\d+)', show)
    ck.check(g is not None, f'population shows group 3: {show}')
    NTP_UNIX = 2208988800
    mskfile = os.path.join(tmp, 'wrong.msk')
    with open(mskfile, 'w') as f:
        f.write(os.urandom(16).hex() + '\n')
    p = subprocess.run([keylinectl, '-s', os.path.join(tmp, 'a.sock'), 'put-group', '00f110:3',
                        '--msk-file', mskfile, '--msk-id', str(int(g.group(1), 16)),
                        '--valid-from', str(int(g.group(2)) - NTP_UNIX),
                        '--valid-to', str(int(g.group(3)) - NTP_UNIX)],
                       capture_output=True, text=True)
    ck.eq(p.returncode, 0, f'keylinectl put-group with a wrong MSK ({p.stderr})')
    p, wb = run_burst(port, ['--mode', 'burst', '--window', '0.5', '--fail-list', '2000',
                             '--retries', '0', '--inflight', '256'])
    in_group3 = {i for i in range(UES) if i % 8 == 2}
    ck.eq(p.returncode, 1, 'wrong MSK: keyline-burst exits 1')
    ck.eq(wb.get('failed'), len(in_group3), 'wrong MSK: failed UEs')
    ck.eq(wb.get('ok'), UES - len(in_group3), 'wrong MSK: every other UE verified')
    listed = (wb.get('failures') or {}).get('list') or []
    ck.eq({f.get('ue') for f in listed}, in_group3, 'wrong MSK: the failed UEs are exactly group 3')
    ck.check(listed and all(f.get('reason') == 'wrong_key' for f in listed),
             'wrong MSK: reason wrong_key')
    rc, c = kd.stop()
    ck.eq(rc, 0, 'keylined exits 0 on SIGTERM')
finally:
    kd.kill()

# rate-limited: about half the first tries are dropped; retransmissions recover every UE
kd, port = server('b', {'rate_limit': '{per_source_pps: 1000, burst: 20}'})
try:
    p, rb = run_burst(port, ['--ues', '2000', '--mode', 'burst', '--window', '1',
                             '--timeout-ms', '100', '--retries', '8'])
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

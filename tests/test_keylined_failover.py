#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keyline-burst against two keylined nodes (kernel sockets, the same population and MSKs, so
either answers any UE) given as --server A,B: node A is SIGKILLed in the middle of a burst of
20,000 UEs. Every UE must end verified (none failed): the UEs whose tries were lost with A time
out, wait their random back-off and move to B. The summary counts the moves, the back-offs, the
retransmissions and what each server did. Then the address forms of --server are checked
(repeated option, [IPv6]:port, a bad list is a usage error).
    test_keylined_failover.py KEYLINED KEYLINE_BURST KEYLINE_POPULATION"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, burst, popgen = sys.argv[1:4]
ck = kl_itest.Checks('keylined-failover')
tmp = tempfile.mkdtemp(prefix='kl-failover-')
UES = 20000


def node(name):
    port = kl_itest.free_udp_port()
    cfg = kl_itest.write_config(os.path.join(tmp, f'{name}.yaml'), ipv4=('127.0.0.1',), ipv6=(),
                                admin=os.path.join(tmp, f'{name}.sock'),
                                table={'ues': UES + 1000, 'groups': 8},
                                extra={'io': 'socket', 'udp_port': port})
    d = os.path.join(tmp, name)  # its own log
    os.mkdir(d)
    kd = kl_itest.Keylined(keylined, kl_itest.eal_args(kl_itest.unique(name)), cfg, ['-p', pop],
                           workdir=d)
    return kd, port


def summary_of(out):
    lines = [json.loads(x) for x in out.splitlines() if x.startswith('{')]
    return lines[-1] if lines and lines[-1].get('type') == 'summary' else {}


pop = os.path.join(tmp, 'pop.txt')
subprocess.run([popgen, '--seed', '7', '--ues', str(UES), '--groups', '8', '--emses', '8',
                '--imsis', '8', '--appids', '8', '-o', pop],
               check=True)
a, pa = node('a')
b, pb = node('b')
try:
    a.wait_ready()
    b.wait_ready()
    t0 = time.time()
    cmd = [burst, '--io', 'socket', '--population', pop, '--server',
           f'127.0.0.1:{pa},127.0.0.1:{pb}', '--mode', 'burst', '--window', '2',
           '--timeout-ms', '100', '--retries', '6', '--interval-ms', '100', '--fail-list', '20']
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = []
    killed_at = None
    # SIGKILL node A once a quarter of the UEs are done: the burst goes on for more than a second
    for line in p.stdout:
        out.append(line)
        if killed_at is None and line.startswith('{'):
            iv = json.loads(line)
            if iv.get('type') == 'interval' and iv.get('done', 0) >= UES // 4:
                a.p.send_signal(signal.SIGKILL)
                killed_at = iv.get('done')
    err = p.stderr.read()
    rc = p.wait(timeout=60)
    s = summary_of(''.join(out))
    cnt = s.get('counters') or {}
    fails = s.get('failures') or {}
    ck.check(killed_at is not None and killed_at < UES, f'node A killed mid-burst ({killed_at})')
    ck.eq(rc, 0, f'keyline-burst exits 0 ({err[-400:]}; failures {fails.get("by_reason")})')
    ck.eq((s.get('ues'), s.get('ok'), s.get('failed')), (UES, UES, 0),
          'every UE verified, none failed')
    ck.check(cnt.get('timeouts', 0) > 0, f'tries lost with node A timed out: {cnt}')
    ck.check(cnt.get('moved', 0) > 0, 'UEs moved to node B')
    ck.check(cnt.get('retransmissions', 0) >= cnt.get('moved', 0) > 0,
             'every move is a retransmission')
    # a UE whose late answer came during its back-off is not moved
    ck.check(cnt.get('backoffs', 0) >= cnt.get('moved', 0),
             'each move after a random back-off (the default with several servers)')
    srv = s.get('servers') or []
    ck.eq([x.get('address') for x in srv], [f'127.0.0.1:{pa}', f'127.0.0.1:{pb}'],
          'servers in the order given, with their addresses')
    if len(srv) == 2:
        ck.check(srv[0].get('keys', 0) > 0 and srv[1].get('keys', 0) > srv[0].get('keys', 0),
                 f'both nodes served keys, B most: {srv}')
        ck.eq(srv[0]['keys'] + srv[1]['keys'], UES, 'keys per server add up to the UEs')
        ck.check(srv[0].get('timeouts', 0) > 0, 'node A timed out')
        ck.eq(srv[1].get('moved_in'), cnt.get('moved') - srv[0].get('moved_in', 0),
              'moves into B')
        ck.eq(srv[0]['sent'] + srv[1]['sent'], cnt.get('sent'), 'sent per server adds up')
    ck.eq((s.get('config') or {}).get('servers'), 2, 'config.servers')
    ck.eq((s.get('config') or {}).get('backoff_ms'), 100, 'back-off defaults to --timeout-ms')
    print(f'failover: A killed at {killed_at} done; {time.time() - t0:.1f} s; counters: '
          f'sent {cnt.get("sent")} timeouts {cnt.get("timeouts")} retransmissions '
          f'{cnt.get("retransmissions")} moved {cnt.get("moved")}; servers {srv}', flush=True)

    # the other forms: one address per option (repeated), the port from --server-port, and a
    # list that is not one: a usage error (2), nothing sent
    r = subprocess.run([burst, '--io', 'socket', '--population', pop, '--ues', '200',
                        '--server', '127.0.0.1', '--server-port', str(pb), '--server',
                        f'127.0.0.1:{pb}', '--mode', 'max', '--interval-ms', '0'],
                       capture_output=True, text=True, timeout=60)
    s2 = summary_of(r.stdout)
    ck.eq((r.returncode, s2.get('ok')), (0, 200), f'repeated --server ({r.stderr[-300:]})')
    ck.eq(sum(x.get('keys', 0) for x in s2.get('servers') or []), 200, 'repeated: keys counted')
    for bad in ('127.0.0.1:,x', '127.0.0.1,,127.0.0.1', '[::1', '127.0.0.1:70000',
                'host.example:1'):
        r = subprocess.run([burst, '--io', 'socket', '--population', pop, '--server', bad],
                           capture_output=True, text=True, timeout=30)
        ck.eq(r.returncode, 2, f'--server {bad!r}: usage error ({r.stderr.strip()[:120]})')
    r = subprocess.run([burst, '--io', 'socket', '--population', pop, '--server', '127.0.0.1',
                        '--server', '::1'], capture_output=True, text=True, timeout=30)
    ck.eq(r.returncode, 2, 'servers of two families: usage error')
    r = subprocess.run([burst, '--io', 'socket', '--population', pop, '--server', '127.0.0.1',
                        '--server-ip', '127.0.0.1'], capture_output=True, text=True, timeout=30)
    ck.eq(r.returncode, 2, '--server with --server-ip: usage error')
    rc, _ = b.stop()
    ck.eq(rc, 0, 'node B exits 0')
finally:
    a.kill()
    b.kill()
sys.exit(ck.done())

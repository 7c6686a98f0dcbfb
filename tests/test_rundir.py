#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""No EAL runtime directory (/var/run/dpdk/<file-prefix>) outlives a DPDK process of keyline:
keylined after SIGTERM (telemetry socket and all), after a config error, keyline-burst after a
memif run, a link timeout and a usage error found after EAL start-up; the test helpers remove
what a SIGKILLed keylined left. This test's entries there (their first number is its pid) are
counted before and after: none is left (other people's processes may come and go meanwhile).
    test_rundir.py KEYLINED KEYLINE_BURST KEYLINE_POPULATION"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, burst, popgen = sys.argv[1:4]
ck = kl_itest.Checks('rundir')
tmp = tempfile.mkdtemp(prefix='kl-rundir-')
parent = kl_itest.rundir_parent()


def mine():
    """This test's entries in the runtime directory's parent."""
    pid = str(os.getpid())
    return sorted(d for d in kl_itest.rundirs() if (re.search(r'\d+', d) or [None])[0] == pid)


before = mine()
procs = []  # every process started here: killed and waited on at the end, whatever happened


def gone(prefix, what):
    ck.check(not os.path.exists(os.path.join(parent, prefix)),
             f'{what}: {parent}/{prefix} removed ({os.listdir(parent) if os.path.isdir(parent) else ""!r:.200})')


def start(prefix, cfg, telemetry=False, args=()):
    """keylined as a plain process (no helper clean-up), waits for ready."""
    p = subprocess.Popen([keylined] + kl_itest.eal_args(prefix, telemetry=telemetry)
                         + ['--', '-c', cfg] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    procs.append(p)
    for line in p.stdout:
        if line.strip() == 'keylined: ready':
            return p
    p.kill()
    p.wait()
    raise RuntimeError(f'keylined did not start: {p.stderr.read()[-500:]}')


try:
    pop = os.path.join(tmp, 'pop.txt')
    subprocess.run([popgen, '--seed', '3', '--ues', '2000', '--groups', '2', '--emses', '16',
                    '--imsis', '16', '--appids', '16', '-o', pop], check=True, capture_output=True)
    sock_cfg = kl_itest.write_config(os.path.join(tmp, 's.yaml'), ipv4=('127.0.0.1',), ipv6=(),
                                     admin=os.path.join(tmp, 's.sock'),
                                     extra={'io': 'socket', 'udp_port': kl_itest.free_udp_port()})

    # keylined with telemetry: its socket lives in the directory while it runs
    prefix = kl_itest.unique('rdtel')
    p = start(prefix, sock_cfg, telemetry=True)
    d = os.path.join(parent, prefix)
    ck.check(os.path.exists(os.path.join(d, 'dpdk_telemetry.v2')),
             f'telemetry socket in {d} while keylined runs')
    p.send_signal(signal.SIGTERM)
    ck.eq(p.wait(timeout=60), 0, 'keylined exits 0 on SIGTERM')
    gone(prefix, 'keylined with telemetry, SIGTERM')

    # keylined refusing its configuration after EAL start-up (exit 2)
    prefix = kl_itest.unique('rdbad')
    bad = os.path.join(tmp, 'bad.yaml')
    with open(bad, 'w') as f:
        f.write('workers: many\n')
    r = subprocess.run([keylined] + kl_itest.eal_args(prefix, mem=128) + ['--', '-c', bad],
                       capture_output=True, text=True, timeout=60)
    ck.eq(r.returncode, 2, f'bad config: exit 2 ({r.stderr.strip()[-200:]})')
    gone(prefix, 'keylined with a bad config')

    # keylined on memif with keyline-burst as the second DPDK process: both clean up
    sock = os.path.join(tmp, 'memif.sock')
    mcfg = kl_itest.write_config(os.path.join(tmp, 'm.yaml'),
                                 ports=(('memif0', f'net_memif0,role=server,socket={sock}', 1),),
                                 ipv6=(), admin=os.path.join(tmp, 'm.sock'))
    sprefix, cprefix = kl_itest.unique('rdsrv'), kl_itest.unique('rdcli')
    p = start(sprefix, mcfg, args=['-p', pop])
    c = subprocess.Popen([burst] + kl_itest.eal_args(cprefix, mem=256, lcores='0') +
                         ['--vdev', f'net_memif0,role=client,socket={sock}', '--',
                          '--population', pop, '--server-ip', '192.0.2.1', '--client-ip',
                          '192.0.2.100', '--ues', '500', '--mode', 'rate', '--rate', '2000',
                          '--interval-ms', '0', '--hold-s', '60'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(c)
    err = ''
    for line in c.stderr:  # the server stops first (README, memif caveat)
        err += line
        if 'holding the port' in line:
            break
    p.send_signal(signal.SIGTERM)
    ck.eq(p.wait(timeout=60), 0, 'memif keylined exits 0')
    out, rest = c.communicate(timeout=90)
    ck.eq(c.returncode, 0, f'keyline-burst over memif exits 0 ({(err + rest)[-300:]})')
    gone(sprefix, 'keylined on memif')
    gone(cprefix, 'keyline-burst after a memif run')

    # keyline-burst: no peer (link timeout, exit 1); a request the population cannot serve (exit 2)
    for tag, extra, want in (('rdnolink', ['--link-timeout-s', '1'], 1),
                             ('rdusage', ['--first', '1999', '--ues', '10'], 2)):
        prefix = kl_itest.unique(tag)
        r = subprocess.run([burst] + kl_itest.eal_args(prefix, mem=128, lcores='0') +
                           ['--vdev', f'net_memif0,role=client,socket={tmp}/nobody-{tag}.sock', '--',
                            '--population', pop, '--server-ip', '192.0.2.1', '--client-ip',
                            '192.0.2.100'] + extra, capture_output=True, text=True, timeout=60)
        ck.eq(r.returncode, want, f'keyline-burst {tag}: exit {want} ({r.stderr.strip()[-200:]})')
        gone(prefix, f'keyline-burst {tag}')

    # SIGKILL leaves the directory (and the telemetry socket): the helper removes it
    prefix = kl_itest.unique('rdkill')
    kd = kl_itest.Keylined(keylined, kl_itest.eal_args(prefix, telemetry=True), sock_cfg,
                           workdir=tmp)
    try:
        kd.wait_ready()
        ck.check(os.path.isdir(os.path.join(parent, prefix)),
                 'the directory exists while keylined runs')
    finally:
        kd.kill()
    gone(prefix, 'SIGKILLed keylined, after the helper')

finally:
    # a process still running here means a step above failed: kill it and remove what it left
    # (the checks below still see the directories of processes that ended on their own)
    for q in procs:
        if q.poll() is None:
            q.kill()
            q.communicate()
            kl_itest.remove_rundir(kl_itest.file_prefix(q.args[1:]))
    shutil.rmtree(tmp, ignore_errors=True)

ck.eq(before, [], f'no entry of this test in {parent} before it')
ck.eq(mine(), [], f'no entry of this test in {parent} after it')
print(f'{parent}: {len(kl_itest.rundirs())} entries of all processes now', flush=True)
sys.exit(ck.done())

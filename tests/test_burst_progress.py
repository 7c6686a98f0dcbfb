#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keyline-burst's live progress line against a real keylined (kernel-socket io on loopback):
under a pseudo-terminal it rewrites one line with "\\r" about every 250 ms (UEs done, rate,
failures, ETA) and ends it with a newline; stdout stays JSON only; with stderr on a pipe there is
no progress line unless --progress forces it.
    test_burst_progress.py KEYLINED KEYLINE_BURST KEYLINE_POPULATION"""
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, burst, popgen = sys.argv[1:4]
ck = kl_itest.Checks('burst-progress')
tmp = tempfile.mkdtemp(prefix='kl-progress-')
UES, RATE = 3000, 2000  # 1.5 s: about six progress lines
LINE = re.compile(r'keyline-burst: (\d+)/(\d+) UEs done \((\d+\.\d)%\), (\d+\.\d) k/s, (\d+) failed, '
                  r'(\d+) in progress, (ETA \d+\.\d s|ETA -|done in \d+\.\d s) *$')


def burst_cmd(port, extra=()):
    return [burst, '--io', 'socket', '--population', pop, '--server-ip', '127.0.0.1',
            '--server-port', str(port), '--ues', str(UES), '--mode', 'rate', '--rate', str(RATE),
            '--interval-ms', '0'] + list(extra)


def under_pty(cmd):
    """cmd with stderr on a pseudo-terminal, stdout on a pipe: (exit status, stdout, terminal
    output, seconds)."""
    master, slave = pty.openpty()
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    term = b''
    while True:
        r, _, _ = select.select([master], [], [], 1.0)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            term += chunk
        elif p.poll() is not None:
            break
        if time.time() - t0 > 120:
            p.kill()
            break
    try:
        out, _ = p.communicate(timeout=60)
    finally:  # never left running, whatever happened above
        if p.poll() is None:
            p.kill()
            p.communicate()
        os.close(master)
    return p.returncode, out.decode(), term.decode(errors='replace'), time.time() - t0


def progress_lines(text):
    """The progress lines in terminal output: each rewrite starts with \\r."""
    return [x.rstrip('\r\n') for x in re.split(r'\r(?!\n)', text)[1:]]


def check_lines(lines, what):
    m = [LINE.match(x.split('\n')[0]) for x in lines]
    ck.check(lines and all(m), f'{what}: every progress line has the format: '
             f'{[x for x, y in zip(lines, m) if not y][:3]}')
    m = [x for x in m if x]
    if not m:
        return
    done = [int(x.group(1)) for x in m]
    ck.check(done == sorted(done), f'{what}: UEs done never goes down ({done})')
    ck.check(all(int(x.group(2)) == UES for x in m), f'{what}: of {UES} UEs')
    last = m[-1]
    ck.eq(int(last.group(1)), UES, f'{what}: the last line has every UE done')
    ck.check(last.group(7).startswith('done in'), f'{what}: the last line says done ({last.group(7)})')
    ck.eq(int(last.group(5)), 0, f'{what}: no failures')
    ck.check(any(x.group(7).startswith('ETA ') and x.group(7) != 'ETA -' for x in m),
             f'{what}: an ETA while running')


pop = os.path.join(tmp, 'pop.txt')
subprocess.run([popgen, '--seed', '7', '--ues', str(UES), '--groups', '2', '--emses', '16',
                '--imsis', '16', '--appids', '16', '-o', pop], check=True, capture_output=True)
port = kl_itest.free_udp_port()
cfg = kl_itest.write_config(os.path.join(tmp, 'k.yaml'), ipv4=('127.0.0.1',), ipv6=(),
                            admin=os.path.join(tmp, 'admin.sock'),
                            extra={'io': 'socket', 'udp_port': port})
kd = kl_itest.Keylined(keylined, kl_itest.eal_args(kl_itest.unique('prg')), cfg, ['-p', pop],
                       workdir=tmp)
try:
    kd.wait_ready()
    # stderr a terminal: the line is on by default
    rc, out, term, secs = under_pty(burst_cmd(port))
    ck.eq(rc, 0, f'under a terminal: keyline-burst exit ({term[-300:]!r})')
    ck.check(all(l.startswith('{') for l in out.splitlines()) and
             json.loads(out.splitlines()[-1]).get('ok') == UES, 'stdout is JSON only, all verified')
    lines = progress_lines(term)
    check_lines(lines, 'terminal')
    # about one line per 250 ms of run (1.5 s), never one per packet
    ck.check(3 <= len(lines) <= secs / 0.25 + 3, f'terminal: {len(lines)} lines in {secs:.1f} s')
    ck.check(re.search(r'done in \d+\.\d s *\r?\n', term) is not None,
             'terminal: the line ends with a newline')
    # a pipe: no progress line (bytes: text mode would turn "\r" into "\n")
    p = subprocess.run(burst_cmd(port), capture_output=True, timeout=120)
    err = p.stderr.decode(errors='replace')
    ck.eq(p.returncode, 0, f'pipe: keyline-burst exit ({err[-300:]})')
    ck.check('UEs done' not in err and '\r' not in err, f'pipe: no progress line ({err[-200:]!r})')
    # --progress forces it on a pipe
    p = subprocess.run(burst_cmd(port, ['--progress']), capture_output=True, timeout=120)
    err = p.stderr.decode(errors='replace')
    ck.eq(p.returncode, 0, f'--progress: keyline-burst exit ({err[-300:]})')
    check_lines(progress_lines(err), '--progress')
    ck.check(err.endswith('\n'), '--progress: stderr ends with a newline')
    rc, _ = kd.stop()
    ck.eq(rc, 0, 'keylined exits 0')
finally:
    kd.kill()
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(ck.done())

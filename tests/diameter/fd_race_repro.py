# SPDX-License-Identifier: BSD-3-Clause
"""Reproduces freeDiameter 1.2.1's TLS race (see /README "freeDiameter 1.2.1's TLS race"), with
and without kl_diameter's workaround.

usage: fd_race_repro.py DIAMETER_TESTD KEYLINE_HSS_SIM [CYCLES (40)] [off|on|both (both)]

Use the sanitizer build's binaries (build-asan/tests/diameter_testd, build-asan/tools/
keyline-hss-sim): the race corrupts GnuTLS's heap, and ASan turns that into a report at the
faulty access instead of an occasional crash much later. Each cycle is one orderly Diameter/TLS
connection: keyline-hss-sim connects to diameter_testd, pushes one key, sends DPR and closes its
TLS session (close_notify) while the server's peer state machine sends the DPA and closes the
session itself; every 4th cycle the server is stopped (SIGTERM) with the peer still connected
instead, so it is the server that sends DPR and closes. A cycle fails when either process prints
a sanitizer report, dies of a signal, or does not finish within 30 s (a hang; gdb, when
installed, shows its threads). Failures that are not this race are counted apart as "other":
freeDiameter's fd_fifo_del assertion (`++loops < 20`: a thread waiting on a FIFO being deleted
did not leave within 20 ms, as on a loaded machine), and a simulator that hangs with none of its
threads in GnuTLS (its bulk waiting for answers freeDiameter dropped with the connection).
'off' runs with KL_DIAMETER_NO_TLS_WORKAROUND=1 (freeDiameter's GnuTLS calls pass through
unserialised, bye with GNUTLS_SHUT_RDWR as freeDiameter asks), 'on' with the workaround.
Prints one line per failed cycle and one per mode: cycles, failed cycles, other failures and
the first report's top frames; exits 1 when 'on' failed (the workaround does not work), 0
otherwise. Only in the meson suite 'fd-race', never a default one: the race is timing-dependent,
and with the workaround off a run is expected to, but may not, fail.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kl_dtest import Pki, free_port  # noqa: E402  (also sets the LSan suppressions)

TESTD, SIM = sys.argv[1:3]
CYCLES = int(sys.argv[3]) if len(sys.argv) > 3 else 40
MODES = {'both': ('off', 'on')}.get(sys.argv[4] if len(sys.argv) > 4 else 'both',
                                    (sys.argv[4],) if len(sys.argv) > 4 else ())
SERVER = 'keylined.test'
FIFO = re.compile(r'fd_fifo_del: Assertion')
BAD = re.compile(r'Sanitizer|runtime error|double free|corrupted|Segmentation|Aborted')


def frames(text):
    """the first report's first frames, for the summary line"""
    fr = re.findall(r'#\d+ 0x[0-9a-f]+ in (\S+)', text)
    kind = re.search(r'ERROR: \w+Sanitizer: ([\w-]+)', text)
    return '%s in %s' % (kind.group(1) if kind else 'failure', ' < '.join(fr[:5]))


def stacks(pid):
    """a hung process's threads (gdb, when installed), for the report"""
    try:
        r = subprocess.run(['gdb', '-p', str(pid), '-batch', '-ex', 'thread apply all bt'],
                           capture_output=True, text=True, timeout=60)
        return '\n--- threads of hung pid %d:\n%s\n' % (pid, r.stdout)
    except (OSError, subprocess.TimeoutExpired):
        return ''


def cycle(pki, work, env, i):
    port = free_port()
    cert, key = pki.cred(SERVER)
    errp = os.path.join(work, 'testd-%d.err' % i)
    with open(errp, 'w') as err:
        d = subprocess.Popen([TESTD, '--identity', SERVER, '--listen', '127.0.0.1', '--port',
                              str(port), '--cert', cert, '--key', key, '--ca', pki.p('ca.pem'),
                              '--log-level', 'error'], stdout=subprocess.PIPE, stderr=err,
                             text=True, env=env)
        ready = d.stdout.readline().strip() == 'diameter_testd: ready'
        hc, hk = pki.cred('hss.test')
        sim = [SIM, '--identity', 'hss.test', '--cert', hc, '--key', hk, '--ca', pki.p('ca.pem'),
               '--listen', '127.0.0.1', '--peer', '%s@127.0.0.1:%d' % (SERVER, port),
               '--log-level', 'error', 'bulk', '--n', '1', '--seed', str(i)]
        out, why = '', []
        if i % 4 == 3:
            # the server stops while the peer is connected: the simulator waits on a push
            # that the server's SIGTERM interrupts (its bulk never finishes: killed after)
            s = subprocess.Popen(sim[:-5] + ['bulk', '--n', '100000000', '--seed', str(i)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env)
            time.sleep(1.0)
            d.send_signal(signal.SIGTERM)
        else:
            s = subprocess.Popen(sim, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env)
        try:
            so, se = s.communicate(timeout=30)
            out += se
            if s.returncode < 0:
                why.append('hss-sim died of signal %d' % -s.returncode)
        except subprocess.TimeoutExpired:
            st = stacks(s.pid)
            out += st
            s.kill()
            so, se = s.communicate()
            out += se
            if 'gnutls' in st or not st:
                why.append('hss-sim hung')
            else:
                # no thread in GnuTLS: its bulk waits for answers freeDiameter dropped with
                # the closed connection (keyline-hss-sim.c's run_bulk), not this race
                return ['other: hss-sim waits for answers lost with the connection'], out
        if d.poll() is None:
            d.send_signal(signal.SIGTERM)
        try:
            d.wait(30)
            if d.returncode < 0:
                why.append('diameter_testd died of signal %d' % -d.returncode)
        except subprocess.TimeoutExpired:
            out += stacks(d.pid)
            d.kill()
            d.wait()
            why.append('diameter_testd hung on SIGTERM')
    with open(errp, errors='replace') as f:
        out += f.read()
    if not ready:
        why.append('diameter_testd did not start')
    if FIFO.search(out):
        return ['other: freeDiameter fd_fifo_del assertion'], out
    if BAD.search(out):
        why.append(frames(out))
    return why, out


def main():
    failed = {}
    with tempfile.TemporaryDirectory(prefix='kl-fdrace-') as work:
        pki = Pki(work, leaves=(SERVER, 'hss.test'))
        for mode in MODES:
            env = dict(os.environ)
            env.pop('KL_DIAMETER_NO_TLS_WORKAROUND', None)
            if mode == 'off':
                env['KL_DIAMETER_NO_TLS_WORKAROUND'] = '1'
            # leaks are not the race (freeDiameter leaks a DPR's request store when stopped
            # mid-exchange): off, so a report means memory corruption
            env['ASAN_OPTIONS'] = ':'.join(x for x in (env.get('ASAN_OPTIONS'),
                                                       'detect_leaks=0') if x)
            fails, other, first = 0, 0, None
            for i in range(CYCLES):
                why, out = cycle(pki, work, env, i)
                if why:
                    print('workaround %s, cycle %d (%s): %s' % (
                        mode, i, 'server stopped' if i % 4 == 3 else 'client exit',
                        '; '.join(why)), flush=True)
                if why and why[0].startswith('other'):
                    other += 1
                elif why:
                    fails += 1
                    if first is None:
                        first = '; '.join(why)
                        print('--- workaround %s, cycle %d: first failure\n%s' %
                              (mode, i, out), flush=True)
            failed[mode] = fails
            print('workaround %s: %d of %d cycles failed%s; %d other failures (not TLS)' %
                  (mode, fails, CYCLES, ' (first: %s)' % first if first else '', other),
                  flush=True)
    return 1 if failed.get('on') else 0


if __name__ == '__main__':
    sys.exit(main())

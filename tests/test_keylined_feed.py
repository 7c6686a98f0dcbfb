#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keylined's HSS-side Diameter feed under load (kernel-socket io on loopback, durable store,
Diameter/TLS from keyline-hss-sim):

durability  keylined is killed with SIGKILL in the middle of a bulk push of N e2m_int_keys
            (default 100,000); restarted on the same store, it serves every key the simulator saw
            acknowledged (same key id and key check value), and the store loads (every record
            unwraps and passes its binding check: none is corrupt).
replace     keyline-burst fetches E2M keys while N key replacements (every e2m_int_key of a test
            population, same key ids, keys of another seed) stream in over Diameter: every answer
            carries the old or the new key (keyline-burst --alt-seed counts the new ones), no UE
            fails; afterwards every fetch gets the new key, and a run that expects only the old
            keys fails every fetch with wrong_key.

    test_keylined_feed.py KEYLINED KEYLINE_HSS_SIM KEYLINE_BURST KEYLINE_POPULATION GROUP
N comes from KL_FEED_N (default 100000)."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'diameter'))
import kl_itest  # noqa: E402
from kl_dtest import Pki, free_port, read_lines  # noqa: E402

keylined, sim, burst, popgen, group = sys.argv[1:6]
N = int(os.environ.get('KL_FEED_N', '100000'))
SERVER = 'keylined.test'
ck = kl_itest.Checks('keylined-feed-' + group)
tmp = tempfile.mkdtemp(prefix='kl-feed-')
kek = os.path.join(tmp, 'kek')
store = os.path.join(tmp, 'store')
sock = os.path.join(tmp, 'admin.sock')

runs = [0]
children = []


pki = Pki(tmp, leaves=(SERVER, 'hss.test'))
fd = os.open(kek, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, os.urandom(32))
os.close(fd)
udp_port, dia_port = free_port(socket.SOCK_DGRAM), free_port()
cert, key = pki.cred(SERVER)
cfg = kl_itest.write_config(
    os.path.join(tmp, 'keylined.yaml'), ipv4=('127.0.0.1',), ipv6=(), admin=sock,
    table={'imsis': N + 1024, 'e2m_ring': 4},
    extra={'io': 'socket', 'udp_port': udp_port, 'log_level': 'warning',
           'store': f'{{path: "{store}", kek_file: "{kek}"}}',
           'diameter': f'{{identity: {SERVER}, listen: 127.0.0.1, port: {dia_port}, '
                       f'tls_cert: "{cert}", tls_key: "{key}", tls_ca: "{pki.p("ca.pem")}"}}'})
hss_cert, hss_key = pki.cred('hss.test')
SIM = [sim, '--identity', 'hss.test', '--cert', hss_cert, '--key', hss_key, '--ca',
       pki.p('ca.pem'), '--listen', '127.0.0.1', '--peer', f'{SERVER}@127.0.0.1:{dia_port}',
       '--timeout-ms', '10000', '--log-level', 'error']


def start(args=()):
    runs[0] += 1
    kd = kl_itest.Keylined(keylined, kl_itest.eal_args(kl_itest.unique(f'fd{runs[0]}'), mem=1024),
                           cfg, list(args), workdir=tmp)
    children.append(kd)
    kd.wait_ready(timeout=300)
    return kd


def admin_many(reqs):
    return kl_itest.admin_many(sock, reqs)


def run_burst(extra):
    p = subprocess.run([burst, '--io', 'socket', '--population', pop, '--server-ip', '127.0.0.1',
                        '--server-port', str(udp_port), '--kind', 'e2m', '--interval-ms', '0',
                        '--fail-list', '5'] + list(extra),
                       capture_output=True, text=True, timeout=600)
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith('{')]
    return p, (lines[-1] if lines else {})


def durability():
    ack = os.path.join(tmp, 'ack.log')
    kd = start()
    p = subprocess.Popen(SIM + ['bulk', '--n', str(N), '--seed', '11', '--window', '64',
                                '--ack-log', ack],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children.append(p)
    t0 = time.time()
    while time.time() - t0 < 300 and len(read_lines(ack)) < N * 3 // 10 and p.poll() is None:
        time.sleep(0.005)
    kd.p.send_signal(signal.SIGKILL)
    kd.p.wait()
    killed_at = len(read_lines(ack))
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        ck.check(False, 'the simulator did not stop after keylined died')
    acks = [a.split() for a in read_lines(ack)]
    ck.check(N // 10 <= killed_at < N,
             f'killed in the middle: {killed_at} of {N} acknowledged at the kill ({err[-300:]})')
    ck.eq(p.returncode, 1, 'the simulator reports the lost server (exit 1)')
    ck.eq(len({a[0] for a in acks}), len(acks), 'one acknowledgement per IMSI')

    t = time.time()
    kd = start()
    load_s = time.time() - t
    log = kd.stderr()
    ck.check('AddressSanitizer' not in log, 'restart: no sanitizer report')
    answers = admin_many([{'cmd': 'show', 'kind': 'imsi', 'id': a[0]} for a in acks])
    missing = []
    for a, ans in zip(acks, answers):
        keys = {(k.get('key_id'), str(k.get('kcv', '')).lower()) for k in ans.get('keys') or []}
        if not ans.get('ok') or (int(a[1], 16), a[2].lower()) not in keys:
            missing.append((a, ans))
    ck.eq(missing[:3], [], f'every acknowledged key is served after the restart '
                           f'({len(missing)} of {len(acks)} missing)')
    count = admin_many([{'cmd': 'count'}])[0]
    imsis = (count.get('counts') or {}).get('imsis', -1)
    ck.check(len(acks) <= imsis <= N, f'the store holds between the acknowledged and the pushed '
                                      f'IMSIs: {len(acks)} <= {imsis} <= {N}')
    rc, _ = kd.stop()
    ck.eq(rc, 0, 'restarted keylined exits 0 on SIGTERM')
    print(f'durability: {len(acks)} acknowledged before SIGKILL, {imsis} IMSIs in the store, '
          f'restart to ready {load_s:.2f} s', flush=True)


def replace():
    global pop
    imsis = max(N // 4, 1)
    pop = os.path.join(tmp, 'pop.txt')
    subprocess.run([popgen, '--seed', '5', '--ues', '10', '--groups', '1', '--emses', '16',
                    '--imsis', str(imsis), '--appids', '16', '--e2m-keys', '4', '-o', pop],
                   check=True)
    kd = start(['-p', pop])
    ack = os.path.join(tmp, 'ack-replace.log')
    fetches = 150000 if N >= 100000 else 3 * N // 2
    rate = 20000
    # the fetches start first; the replacements once keyline-burst reports its first interval
    # (it is sending), so the two overlap whatever the set-up costs (sanitizer builds)
    bp = subprocess.Popen([burst, '--io', 'socket', '--population', pop, '--server-ip',
                           '127.0.0.1', '--server-port', str(udp_port), '--kind', 'e2m',
                           '--interval-ms', '200', '--fail-list', '5', '--mode', 'rate',
                           '--rate', str(rate), '--ues', str(fetches), '--e2m-key', 'mix',
                           '--alt-seed', '6', '--timeout-ms', '500'],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children.append(bp)
    lines = []
    while True:
        line = bp.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith('{') and json.loads(line).get('type') == 'interval':
            break
    s = subprocess.Popen(SIM + ['bulk', '--kind', 'replace', '--population', pop, '--seed', '6',
                                '--n', str(imsis * 4), '--window', '64', '--ack-log', ack],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children.append(s)
    rest, berr = bp.communicate(timeout=900)
    lines += rest.splitlines(keepends=True)
    js = [json.loads(x) for x in lines if x.startswith('{')]
    b = js[-1] if js else {}
    p = subprocess.CompletedProcess(bp.args, bp.returncode, '', berr)
    out, err = s.communicate(timeout=600)
    so = [json.loads(x) for x in out.splitlines() if x.startswith('{')]
    so = so[-1] if so else {}
    ck.eq((s.returncode, so.get('ok')), (0, imsis * 4),
          f'every replacement acknowledged ({err[-300:]})')
    c = b.get('counters') or {}
    ck.eq(p.returncode, 0, f'keyline-burst during the replacements exits 0 ({p.stderr[-300:]}; '
                           f'failures {b.get("failures")})')
    ck.eq((b.get('ok'), b.get('failed')), (fetches, 0), 'every fetch got the old or the new key')
    ck.check(c.get('alt_key', 0) > 0 and c.get('answered', 0) - c.get('alt_key', 0) > 0,
             f'answers under both the old and the new keys: {c}')
    ck.eq(c.get('bad_mac', -1), 0, 'no answer failed its MAC')
    print(f'replace: {imsis * 4} replacements at {so.get("pushes_per_s")} pushes/s while '
          f'{fetches} fetches ran: {c.get("answered", 0) - c.get("alt_key", 0)} old-key and '
          f'{c.get("alt_key")} new-key answers, {b.get("failed")} failed', flush=True)
    # afterwards: the new keys only
    p, b = run_burst(['--mode', 'max', '--ues', '4000', '--e2m-key', 'mix', '--alt-seed', '6'])
    ck.eq((p.returncode, b.get('ok'), (b.get('counters') or {}).get('alt_key')), (0, 4000, 4000),
          'after the replacements every fetch carries the new key')
    p, b = run_burst(['--mode', 'max', '--ues', '4000', '--e2m-key', 'mix', '--retries', '0'])
    ck.eq((p.returncode, b.get('failed'),
           ((b.get('failures') or {}).get('by_reason') or {}).get('wrong_key')), (1, 4000, 4000),
          'a run expecting the old keys fails every fetch (wrong_key)')
    rc, _ = kd.stop()
    ck.eq(rc, 0, 'keylined exits 0 on SIGTERM')


try:
    {'durability': durability, 'replace': replace}[group]()
finally:
    for c in children:
        if isinstance(c, kl_itest.Keylined):
            c.kill()
        elif c.poll() is None:
            c.kill()
            c.wait()
sys.exit(ck.done())

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keylined's control side under slow clients, and its control-plane counters (kernel-socket io
on loopback, a durable store, one MSK rotation group, /metrics and DPDK telemetry):
  a. 20 /metrics clients sending one header line per second and 16 admin clients each holding
     half a request line: a scrape and a keylinectl command still complete within 3 s, both
     right away and after the slow clients' deadline has passed;
  b. admin commands, store commits (put-emse) and a forced rotation move the control-plane
     counters, which /metrics (keyline_<name>_total / keyline_<name>) and telemetry
     (/keyline/control) show with the same values;
  c. the configured limits apply: admin_line_timeout_s 2 closes a half line with a message after
     2 s, metrics_request_timeout_s 3 closes an HTTP request still sending headers after 3 s.
    test_keylined_control.py KEYLINED KEYLINECTL"""
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, keylinectl = sys.argv[1:3]
ck = kl_itest.Checks('keylined-control')
tmp = tempfile.mkdtemp(prefix='kl-control-')
kek = os.path.join(tmp, 'kek')
sock = os.path.join(tmp, 'admin.sock')
GROUP = '00f110:3'
N_HTTP, N_ADMIN = 20, 16
LIMIT_S = 3.0


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ctl(*args):
    t0 = time.time()
    p = subprocess.run([keylinectl, '-s', sock, '--json', '--timeout', '10'] + list(args),
                       capture_output=True, text=True, timeout=30)
    try:
        ans = json.loads(p.stdout)
    except ValueError:
        ans = {'stdout': p.stdout, 'stderr': p.stderr}
    return p.returncode, ans, time.time() - t0


def scrape(port):
    t0 = time.time()
    try:
        body = urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=10).read()
    except OSError as e:
        return None, time.time() - t0, str(e)
    vals = {}
    for line in body.decode().splitlines():
        if line and not line.startswith('#'):
            name, value = line.rsplit(' ', 1)
            vals[name] = float(value)
    return vals, time.time() - t0, ''


def telemetry(prefix, cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(f'/var/run/dpdk/{prefix}/dpdk_telemetry.v2')
    json.loads(s.recv(65536))  # greeting
    s.send(cmd.encode())
    reply = json.loads(s.recv(1 << 20))
    s.close()
    return reply.get(cmd)


class Slow:
    """Slow clients kept connected until stop(): HTTP ones send a header line per second (and
    reconnect when closed), admin ones send half a request line and then one byte per second."""

    def __init__(self, port):
        self.port = port
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.http, daemon=True) for _ in range(N_HTTP)]
        self.threads += [threading.Thread(target=self.admin, daemon=True)
                         for _ in range(N_ADMIN)]
        self.connected = 0
        self.lock = threading.Lock()
        for t in self.threads:
            t.start()

    def loop(self, connect, first, more):
        while not self.stopping.is_set():
            s = None
            try:
                s = connect()
                s.sendall(first)
                with self.lock:
                    self.connected += 1
                while not self.stopping.wait(1.0):
                    s.sendall(more)
            except OSError:
                self.stopping.wait(0.2)  # closed by the server: come back
            finally:
                if s:
                    s.close()

    def http(self):
        def connect():
            return socket.create_connection(('127.0.0.1', self.port), timeout=5)
        self.loop(connect, b'GET /metrics HTTP/1.1\r\nHost: x\r\n', b'X-Slow: 1\r\n')

    def admin(self):
        def connect():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(sock)
            return s
        self.loop(connect, b'{"cmd":"pi', b' ')

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(10)


def slow_clients(kd, mport):
    slow = Slow(mport)
    try:
        deadline = time.time() + 10
        while time.time() < deadline and slow.connected < N_HTTP + N_ADMIN:
            time.sleep(0.1)
        ck.check(slow.connected >= N_HTTP + N_ADMIN,
                 'a: %d slow clients connected' % slow.connected)
        time.sleep(1.5)  # every slow client has sent more since
        for when in ('with slow clients connected', 'after their deadline'):
            vals, took, err = scrape(mport)
            ck.check(vals is not None and took < LIMIT_S,
                     'a: a scrape %s completes within %.0f s (took %.2f s%s)'
                     % (when, LIMIT_S, took, ', ' + err if err else ''))
            rc, ans, took = ctl('ping')
            ck.check(rc == 0 and ans.get('pong') is True and took < LIMIT_S,
                     'a: keylinectl ping %s completes within %.0f s (rc %d, %.2f s: %s)'
                     % (when, LIMIT_S, rc, took, ans))
            time.sleep(4)  # past the request and line deadlines: the slow ones reconnect
    finally:
        slow.stop()
    return slow


def counters(kd, mport, prefix):
    for i in range(3):
        rc, ans, _ = ctl('put-emse', 'emse-%d' % i, '--psk', '%02x' * 16 % tuple(range(16)))
        ck.eq(rc, 0, 'b: put-emse %d (%s)' % (i, ans))
    rc, ans, _ = ctl('rotate', GROUP)
    ck.eq((rc, ans.get('result')), (0, 'rotated'), 'b: forced rotation')
    rc, ans, _ = ctl('show', 'emse', 'no-such-emse')
    ck.eq(rc, 1, 'b: a refused command (%s)' % ans)
    # telemetry, then /metrics, then telemetry again: nothing moves in between but the scrape
    # counter (metrics_scrapes counts the scrape itself once answered)
    tel = telemetry(prefix, '/keyline/control')
    vals, _, err = scrape(mport)
    tel2 = telemetry(prefix, '/keyline/control')
    if not ck.check(isinstance(tel, dict) and vals is not None,
                    'b: telemetry /keyline/control and /metrics answer (%r, %s)' % (tel, err)):
        return
    for name, v in tel.items():
        gauge = name in ('admin_clients', 'diameter_queued')
        key = 'keyline_%s%s' % (name, '' if gauge else '_total')
        if name in ('metrics_scrapes', 'admin_clients'):
            ck.check(key in vals, 'b: %s in /metrics' % key)
            continue
        ck.eq(vals.get(key), float(v), 'b: %s in /metrics equals telemetry' % key)
        ck.eq(tel2.get(name), v, 'b: %s unchanged by the scrape' % name)
    ck.eq(tel2.get('metrics_scrapes'), tel.get('metrics_scrapes', 0) + 1,
          'b: the scrape counted')
    ck.check(tel.get('store_commits', 0) >= 4, 'b: store commits counted (%s)'
             % tel.get('store_commits'))
    ck.check(tel.get('rotations', 0) >= 2, 'b: rotations counted: the start and the forced one '
             '(%s)' % tel.get('rotations'))
    ck.check(tel.get('admin_requests', 0) >= 5 and tel.get('admin_errors', 0) >= 1,
             'b: admin requests and errors counted (%s, %s)'
             % (tel.get('admin_requests'), tel.get('admin_errors')))
    ck.check(tel.get('admin_evicted', 0) + tel.get('admin_timeouts', 0) >= N_ADMIN,
             'b: the slow admin clients were closed (%s evicted, %s timeouts)'
             % (tel.get('admin_evicted'), tel.get('admin_timeouts')))
    ck.check(tel.get('metrics_connections_closed', 0) >= N_HTTP,
             'b: the slow HTTP clients were closed (%s)' % tel.get('metrics_connections_closed'))
    for name in ('diameter_answered_ok', 'rotation_failures', 'store_commit_failures'):
        ck.eq(tel.get(name), 0, 'b: %s' % name)


def limits(mport):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(8)
    s.connect(sock)
    s.sendall(b'{"cmd":"pi')
    t0 = time.time()
    data = b''
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
    took = time.time() - t0
    s.close()
    ck.check(b'request line not completed within 2000 ms: closing' in data and 1.5 < took < 4,
             'c: a half line closed after admin_line_timeout_s 2 (%.2f s: %r)' % (took, data))
    h = socket.create_connection(('127.0.0.1', mport), timeout=8)
    h.sendall(b'GET /metrics HTTP/1.1\r\nHost: x\r\n')
    t0 = time.time()
    closed = False
    while not closed and time.time() - t0 < 8:
        r, _, _ = select.select([h], [], [], 0.5)
        try:
            closed = bool(r) and not h.recv(4096)
            if not closed:
                h.sendall(b'X-Slow: 1\r\n')
        except OSError:
            closed = True
    took = time.time() - t0
    h.close()
    ck.check(closed and 2.5 < took < 4.5,
             'c: a request still sending headers closed after metrics_request_timeout_s 3 '
             '(%s after %.2f s)' % (closed, took))


def main():
    fd = os.open(kek, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, bytes(range(32)))
    os.close(fd)
    mport = free_port(socket.SOCK_STREAM)
    prefix = kl_itest.unique('ctl')
    cfg = kl_itest.write_config(
        os.path.join(tmp, 'keylined.yaml'), ipv4=('127.0.0.1',), ipv6=(), admin=sock,
        extra={'io': 'socket', 'udp_port': free_port(socket.SOCK_DGRAM),
               'metrics': f'"127.0.0.1:{mport}"',
               'store': f'{{path: "{tmp}/store", kek_file: "{kek}", map_size_mb: 64}}',
               'msk_rotation': f'[{{group: "{GROUP}", period_s: 3600, predelivery_s: 60}}]',
               'admin_max_clients': N_ADMIN, 'admin_line_timeout_s': 2,
               'metrics_request_timeout_s': 3})
    kd = kl_itest.Keylined(keylined, kl_itest.eal_args(prefix, mem=256, telemetry=True), cfg,
                           workdir=tmp)
    kd.wait_ready()
    try:
        slow_clients(kd, mport)
        counters(kd, mport, prefix)
        limits(mport)
    finally:
        rc, _ = kd.stop()
    ck.eq(rc, 0, 'keylined exits 0')
    rc = ck.done()
    if rc == 0:  # kept after a failure: keylined.log is in it
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""kl_etcd against real etcd members (Debian's etcd-server), started here on loopback ports.

    test_etcd.py ETCD_DRIVER ETCD_BINARY GROUP

GROUP single: one member; etcd_driver's basic, binary, race, cas, lease, watch, compact and
bench scenarios (their figures are printed), and cas through a list whose first endpoints are a
closed port and a garbage server (failover past them).
GROUP cluster: three members; the client's endpoint (a follower) SIGKILLed: the next call and the
watch go on at another member, no event lost; a second member killed: writes and reads refused in
bounded time with a clear error; both restarted: writes succeed again; the leader killed: writes
succeed again once another member leads; the watch delivered every acknowledged write once, in
order, across all of it.
GROUP tls: one member with a server certificate requiring client certificates (the test PKI of
tools/make-test-pki.sh, passed as a fourth argument): cas, compaction and a watch over TLS; no
client certificate, one of another CA, or a server certificate of an unknown CA: refused.
GROUP bogus: endpoints that are not etcd (a closed port, a TCP server answering garbage, an HTTP
server without the gateway, HTTP 200 with JSON that is not an answer, a truncated answer, a server
that never answers): every call is a clear error within its timeout, never a crash.
"""
import http.server
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kl_itest import Checks  # noqa: E402


def free_tcp_port():
    """A loopback TCP port free a moment ago, below the ephemeral range: a port the kernel hands
    out for bind(0) may be taken by an outgoing connection (etcd peers, clients) before the
    member binds it."""
    lo, _ = (int(x) for x in open('/proc/sys/net/ipv4/ip_local_port_range').read().split())
    rnd = random.Random()
    while True:
        port = rnd.randrange(10000, max(lo, 10001))
        s = socket.socket()
        try:
            s.bind(('127.0.0.1', port))
            return port
        except OSError:
            continue
        finally:
            s.close()


class MemberDied(RuntimeError):
    pass


def start_cluster(binary, n, tls=None, attempts=3, base=None):
    """n members, ready; started again on other ports when one died at start-up (a port taken
    between the choice and its bind). base: the data directory's parent (default: tmpfs)."""
    for i in range(attempts):
        cl = Cluster(binary, n, tls, base)
        try:
            cl.wait_ready()
            return cl
        except MemberDied as e:
            print(f'  {e}; again on other ports', flush=True)
            cl.stop()
            if i == attempts - 1:
                raise
        except BaseException:
            cl.stop()
            raise


class Cluster:
    """n etcd members on loopback, data in tmpfs when there is one (fsync is not the subject)."""

    def __init__(self, binary, n, tls=None, base=None):
        self.binary = binary
        self.tls = tls
        scheme = 'https' if tls else 'http'
        if base is None:
            base = '/dev/shm' if os.path.isdir('/dev/shm') else None
        self.dir = tempfile.mkdtemp(prefix='kl-etcd-', dir=base)
        self.names = [f'm{i}' for i in range(n)]
        self.client = [f'{scheme}://127.0.0.1:{free_tcp_port()}' for _ in range(n)]
        self.peer = [f'http://127.0.0.1:{free_tcp_port()}' for _ in range(n)]
        initial = ','.join(f'{m}={p}' for m, p in zip(self.names, self.peer))
        self.procs = []
        self.cmds = []
        for i, m in enumerate(self.names):
            log = open(os.path.join(self.dir, f'{m}.log'), 'w')
            cmd = [binary, '--name', m, '--data-dir', os.path.join(self.dir, m),
                   '--listen-client-urls', self.client[i],
                   '--advertise-client-urls', self.client[i],
                   '--listen-peer-urls', self.peer[i],
                   '--initial-advertise-peer-urls', self.peer[i],
                   '--initial-cluster', initial, '--initial-cluster-state', 'new',
                   '--initial-cluster-token', os.path.basename(self.dir),
                   '--heartbeat-interval', '50', '--election-timeout', '500',
                   '--experimental-watch-progress-notify-interval', '200ms',
                   '--logger', 'zap', '--log-level', 'warn']
            if tls:  # members: the server certificate; clients: certificates of the device CA
                cmd += ['--cert-file', tls['server_cert'], '--key-file', tls['server_key'],
                        '--client-cert-auth', '--trusted-ca-file', tls['client_ca']]
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=log))
            self.cmds.append(cmd)

    def wait_ready(self, timeout=20):
        end = time.time() + timeout
        last = None
        for url in self.client:
            while True:
                if any(p.poll() is not None for p in self.procs):
                    raise MemberDied(f'an etcd member exited at start-up; logs in {self.dir}')
                try:
                    req = urllib.request.Request(url + '/v3/kv/range', data=b'{"key":"AA=="}')
                    ctx = None
                    if self.tls:
                        ctx = ssl.create_default_context(cafile=self.tls['ca'])
                        ctx.load_cert_chain(self.tls['cert'], self.tls['key'])
                    with urllib.request.urlopen(req, timeout=1, context=ctx) as r:
                        if r.status == 200:
                            break
                except OSError as e:
                    last = e
                if time.time() > end:
                    logs = ''.join(open(os.path.join(self.dir, f'{m}.log')).read()[-1500:]
                                   for m in self.names)
                    raise RuntimeError(f'etcd at {url} not ready ({last}); logs:\n{logs}')
                time.sleep(0.1)

    def restart(self, i):
        """Member i again, on its data (the initial-cluster flags are ignored then)."""
        log = open(os.path.join(self.dir, f'{self.names[i]}.log'), 'a')
        self.procs[i] = subprocess.Popen(self.cmds[i], stdout=log, stderr=log)

    def leader(self):
        """Index of the member that leads (as the first member answering says), or None."""
        for url in self.client:
            try:
                req = urllib.request.Request(url + '/v3/maintenance/status', data=b'{}')
                with urllib.request.urlopen(req, timeout=1) as r:
                    st = json.load(r)
            except OSError:
                continue
            ids = {}
            for j, u in enumerate(self.client):
                try:
                    req = urllib.request.Request(u + '/v3/maintenance/status', data=b'{}')
                    with urllib.request.urlopen(req, timeout=1) as r:
                        ids[json.load(r)['header']['member_id']] = j
                except OSError:
                    pass
            return ids.get(st.get('leader'))
        return None

    def kill(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_driver(ck, driver, scenario, endpoints, *args, timeout=60, env=None):
    t0 = time.time()
    p = subprocess.run([driver, scenario, ','.join(endpoints)] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, env=env)
    out = p.stdout
    for line in out.splitlines():
        if line.startswith('FAIL') or '=' in line:
            print(f'  {scenario}: {line}', flush=True)
    ck.check(p.returncode == 0 and out.rstrip().endswith('PASS'),
             f'{scenario}: exit {p.returncode}: {out[-2000:]}')
    print(f'  {scenario}: {time.time() - t0:.2f} s', flush=True)
    return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)


# ---- servers that are not etcd --------------------------------------------------------------

class Garbage(threading.Thread):
    """Accepts, reads a little, answers bytes that are not HTTP, closes."""

    def __init__(self, reply=b'\x00\xffgarbage, not HTTP\r\n\r\n', silent=False):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.url = f'http://127.0.0.1:{self.sock.getsockname()[1]}'
        self.reply = reply
        self.silent = silent
        self.held = []
        self.start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.silent:  # accepts and never answers
                self.held.append(c)
                continue
            try:
                c.settimeout(1)
                c.recv(4096)
                c.sendall(self.reply)
            except OSError:
                pass
            c.close()


def http_server(status, ctype, body):
    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get('Content-Length', '0'))
            self.rfile.read(n)
            self.send_response(status)
            self.send_header('Content-Type', ctype)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f'http://127.0.0.1:{srv.server_address[1]}'


def closed_port_url():
    return f'http://127.0.0.1:{free_tcp_port()}'


# ---- groups ---------------------------------------------------------------------------------

def group_single(ck, driver, etcd):
    cl = start_cluster(etcd, 1)
    try:
        ep = cl.client
        for sc in ('basic', 'binary', 'race', 'cas', 'compact'):
            run_driver(ck, driver, sc, ep)
        # The lease scenario sleeps: run it beside the watch scenario (other prefixes).
        lease = subprocess.Popen([driver, 'lease', ep[0]], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        figs = run_driver(ck, driver, 'watch', ep, 5000)
        out, _ = lease.communicate(timeout=30)
        print('  lease: ' + ' '.join(out.split()), flush=True)
        ck.check(lease.returncode == 0 and out.rstrip().endswith('PASS'), f'lease: {out}')
        ck.check('watch_events_per_s' in figs, 'watch throughput printed')
        figs = run_driver(ck, driver, 'bench', ep, 2000)
        ck.check('sync_puts_per_s' in figs and 'txn128_keys_per_s' in figs, 'bench figures')
        # Failover past a closed port and a garbage server to the member.
        g = Garbage()
        run_driver(ck, driver, 'cas', [closed_port_url(), g.url] + ep)
    finally:
        cl.stop()


def group_cluster(ck, driver, etcd):
    cl = start_cluster(etcd, 3)
    try:
        # The client starts at a follower: killing it tests the endpoint failover alone (a
        # leader's death is the last phase).
        lead = cl.leader()
        ck.check(lead is not None, 'a leader')
        order = [i for i in range(3) if i != lead] + [lead]
        eps = [cl.client[i] for i in order]
        p = subprocess.Popen([driver, 'failover', ','.join(eps)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []

        def read_until(prefix, limit=20):
            end = time.time() + limit
            while time.time() < end:
                line = p.stdout.readline()
                if not line:
                    return None
                lines.append(line.rstrip())
                print('  failover: ' + line.rstrip(), flush=True)
                if line.startswith(prefix) or line.startswith('FAIL'):
                    return line.rstrip()
            return None

        first = read_until('endpoint=')
        ck.check(first is not None and first.startswith('endpoint='), 'first endpoint')
        used = cl.client.index(first.split('=', 1)[1])
        cl.kill(used)
        p.stdin.write('killed\n')
        p.stdin.flush()
        second = read_until('endpoint=')
        ck.check(second is not None and second.startswith('endpoint=') and
                 second.split('=', 1)[1] != cl.client[used], f'endpoint after the kill: {second}')
        read_until('watch_resumed_events=')
        used2 = cl.client.index(second.split('=', 1)[1])
        cl.kill(used2)
        t0 = time.time()
        p.stdin.write('killed2\n')
        p.stdin.flush()
        read_until('noquorum_get_error=')
        ck.check(time.time() - t0 < 15, 'no-quorum phase bounded')
        cl.restart(used)
        cl.restart(used2)
        p.stdin.write('restarted\n')
        p.stdin.flush()
        read_until('ready_leader_kill=', 40)
        lead = None
        end = time.time() + 10
        while lead is None and time.time() < end:
            lead = cl.leader()
            time.sleep(0.1)
        ck.check(lead is not None, 'a leader after the restart')
        cl.kill(lead)
        p.stdin.write('killed3\n')
        p.stdin.flush()
        out, _ = p.communicate(timeout=60)
        for line in out.splitlines():
            print('  failover: ' + line, flush=True)
        lines += out.splitlines()
        ck.check(p.returncode == 0 and lines and lines[-1] == 'PASS', 'failover scenario passed')
        figs = dict(line.split('=', 1) for line in lines if '=' in line)
        # 3 endpoints x 2 s request timeout is the bound; refused endpoints cost nothing.
        ck.check(float(figs.get('noquorum_put_s', 99)) < 6.5, 'write refused in bounded time')
        ck.check(float(figs.get('noquorum_get_s', 99)) < 6.5, 'read refused in bounded time')
        ck.check(float(figs.get('leader_failover_put_s', 99)) < 20, 'writes after a leader kill')
    finally:
        cl.stop()


def group_bogus(ck, driver):
    servers = {
        'closed': (closed_port_url(), 'no etcd endpoint reachable'),
        'garbage': (Garbage().url, 'no etcd endpoint reachable'),
        'http404': (http_server(404, 'text/plain', b'Not Found')[1], 'malformed answer'),
        'json-not-answer': (http_server(200, 'application/json', b'{}')[1], 'malformed answer'),
        'truncated': (http_server(200, 'application/json',
                                  b'{"header":{"revision":"1"},"kvs":[{"key":"@@')[1],
                      'malformed answer'),
        'wrong-types': (http_server(200, 'application/json',
                                    b'{"header":{"revision":"x"},"kvs":7,"dbSize":[]}')[1],
                        'malformed answer'),
        'bad-base64': (http_server(200, 'application/json',
                                   b'{"header":{"revision":"1"},"kvs":[{"key":"!!!!"}]}')[1],
                       None),  # put has no kvs: ok for put; get must fail
        'error-body-junk': (http_server(503, 'application/json', b'{"error":5}')[1],
                            'malformed answer'),
        # A watch stream that starts well and goes bad.
        'watch-garbage': (http_server(200, 'application/json',
                                      b'{"result":{"header":{"revision":"1"},"created":true}}\n'
                                      b'{"result":{"header":{},"events":[{"kv":7}]}}\n')[1],
                          'malformed answer'),
    }
    silent = Garbage(silent=True)
    for name, (url, want) in servers.items():
        figs = run_driver(ck, driver, 'bogus', [url], timeout=30) if want else None
        if want is None:
            p = subprocess.run([driver, 'bogus', url], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=30)
            print(f'  {name}: ' + ' | '.join(p.stdout.splitlines()), flush=True)
            ck.check('get=malformed answer|' in p.stdout and 'not base64' in p.stdout,
                     f'{name}: get refused, naming the field')
            continue
        if name == 'watch-garbage':
            ck.eq(figs.get('watch_created'), '1', f'{name}: the watch was created')
            ck.check('malformed watch message' in figs.get('watch', ''),
                     f'{name}: the bad message ends the stream: {figs.get("watch")}')
        else:
            ck.eq(figs.get('watch_created'), '0', f'{name}: no watch created')
        for call in ('put', 'get', 'status'):
            kind, msg, secs = figs.get(call, '||99').split('|')
            ck.eq(kind, want, f'{name}: {call} error kind')
            ck.check(url in msg, f'{name}: {call} message names the endpoint: {msg}')
            ck.check(float(secs) < 2.0, f'{name}: {call} within its timeout ({secs} s)')
    # The silent server: a write's outcome is unknown after the request timeout (1.5 s); a read
    # gives up as unreachable after the same time.
    figs = run_driver(ck, driver, 'bogus', [silent.url], timeout=30)
    ck.eq(figs['put'].split('|')[0], 'no answer: outcome unknown', 'silent: put')
    ck.eq(figs['get'].split('|')[0], 'no etcd endpoint reachable', 'silent: get')
    for call in ('put', 'get'):
        secs = float(figs[call].split('|')[2])
        ck.check(1.4 < secs < 2.5, f'silent: {call} took the request timeout ({secs} s)')


def group_tls(ck, driver, etcd, pki_tool):
    pki = tempfile.mkdtemp(prefix='kl-etcd-pki-')
    try:
        subprocess.run([pki_tool, pki, '--devices', '1'], check=True, stdout=subprocess.DEVNULL)
        f = lambda name: os.path.join(pki, name)  # noqa: E731
        # etcd 3.4's gateway dials its own gRPC port with the member's certificate as a client
        # certificate: the member needs serverAuth and clientAuth, from a CA it trusts.
        with open(f('etcd.ext'), 'w') as ext:
            ext.write('subjectAltName=IP:127.0.0.1,DNS:localhost\n'
                      'extendedKeyUsage=serverAuth,clientAuth\n')
        subprocess.run(['openssl', 'req', '-new', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('etcd.key'),
                        '-subj', '/CN=localhost', '-out', f('etcd.csr')],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(['openssl', 'x509', '-req', '-in', f('etcd.csr'), '-CA', f('server-ca.pem'),
                        '-CAkey', f('server-ca.key'), '-CAcreateserial', '-days', '2',
                        '-extfile', f('etcd.ext'), '-out', f('etcd.pem')],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(f('client-cas.pem'), 'w') as bundle:
            bundle.write(open(f('device-ca.pem')).read() + open(f('server-ca.pem')).read())
        tls = {'server_cert': f('etcd.pem'), 'server_key': f('etcd.key'),
               'client_ca': f('client-cas.pem'), 'ca': f('server-ca.pem'),
               'cert': f('device-0001.pem'), 'key': f('device-0001.key')}
        cl = start_cluster(etcd, 1, tls)
        try:
            good = dict(os.environ, KL_ETCD_CA=tls['ca'], KL_ETCD_CERT=tls['cert'],
                        KL_ETCD_KEY=tls['key'])
            run_driver(ck, driver, 'cas', cl.client, env=good)
            run_driver(ck, driver, 'compact', cl.client, env=good)
            figs = run_driver(ck, driver, 'watch', cl.client, 500, env=good)
            ck.check('watch_events_per_s' in figs, 'watch over TLS')
            # Refused: no client certificate, one of another CA, a server of an unknown CA.
            bad = {
                'no client certificate': dict(good, KL_ETCD_CERT='', KL_ETCD_KEY=''),
                'client certificate of another CA': dict(good, KL_ETCD_CERT=f('other-device.pem'),
                                                         KL_ETCD_KEY=f('other-device.key')),
                'server of an unknown CA': dict(good, KL_ETCD_CA=f('other-ca.pem')),
            }
            for what, env in bad.items():
                if not env['KL_ETCD_CERT']:
                    del env['KL_ETCD_CERT'], env['KL_ETCD_KEY']
                figs = run_driver(ck, driver, 'bogus', cl.client, env=env)
                for call in ('put', 'get', 'status'):
                    kind, msg, secs = figs.get(call, '||99').split('|')
                    ck.eq(kind, 'no etcd endpoint reachable', f'TLS, {what}: {call}')
                    ck.check(float(secs) < 2.0, f'TLS, {what}: {call} in bounded time')
        finally:
            cl.stop()
    finally:
        shutil.rmtree(pki, ignore_errors=True)


def main():
    driver, etcd, group = sys.argv[1], sys.argv[2], sys.argv[3]
    ck = Checks(f'etcd-{group}')
    if group != 'bogus' and not (os.path.isfile(etcd) and os.access(etcd, os.X_OK)):
        print(f'FAIL: no etcd at {etcd} (tools/setup.sh installs etcd-server)')
        return 1
    t0 = time.time()
    if group == 'single':
        group_single(ck, driver, etcd)
    elif group == 'cluster':
        group_cluster(ck, driver, etcd)
    elif group == 'bogus':
        group_bogus(ck, driver)
    elif group == 'tls':
        group_tls(ck, driver, etcd, sys.argv[4])
    else:
        print(f'unknown group {group}')
        return 2
    print(f'etcd-{group}: {time.time() - t0:.1f} s', flush=True)
    return ck.done()


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The NAF Key Center end to end, real processes only: keyline-hss-sim bsf <-Zn/TLS-> keylined
(--io socket, store, Diameter stack) <-HTTPS mutual TLS-> the curl CLI.

 a. a device's Ks_local_MT equals the MT side's derivation from the BSF's UE file (Milenage by
    keyline-kdf, Ks_(ext)_NAF and Ks_local_MT by this file's HMAC-SHA-256 KDF, cross-checked with
    keyline-kdf ks-local-mt); fields, Cache-Control: no-store; expiry = min(Ks expiry, max)
 b. refusals, each its status and JSON {error, detail}, never a key: no client certificate,
    another CA's certificate, revoked (CRL), expired, blocklisted Device_ID (admin), Device_ID
    differing from the certificate's CN, unknown B-TID (404), naf_id not configured
 c. TLS 1.2 with ECDHE served; TLS 1.1, TLS 1.2 without ECDHE and plain HTTP refused (no HTTP
    answer at all)
 d. malformed: bad JSON, unknown field, huge body (413), unknown route (404), wrong method
    (405), a slow client closed after connection_timeout_s; rate limit per certificate (429)
 e. invalidation: admin naf-invalidate and the operator's DELETE (a device certificate is
    refused there): listed invalidated, the same B-TID refused, the UE's next B-TID (run 1)
    gives a new key
 f. /metrics: requests by route and code, handshakes, Zn and key counters
 g. BSF killed: 503 within a bounded time while keyline-burst MBMS against the same keylined
    sees 0 failures
 h. restart: issued keys and invalidations survive (store)
 i. start-up refusals: a missing CA file, a CRL file without a CRL, HTTPS CPUs that are a worker's

    test_naf_key_center.py KEYLINED KEYLINE_HSS_SIM KEYLINE_KDF KEYLINE_BURST KEYLINE_POPULATION
                           MAKE_TEST_PKI KEYLINECTL"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'diameter'))
sys.path.insert(0, HERE)
import kl_itest  # noqa: E402
from kl_dtest import Pki, Kdf, free_port  # noqa: E402

KEYLINED, SIM, KDF, BURST, POPGEN, MKPKI, CTL = sys.argv[1:8]
CK = kl_itest.Checks('naf-key-center')
kdf = Kdf(KDF)
BSF, ME = 'bsf.keyline.test', 'keylined.test'
NAF1 = b'naf.keyline.test' + bytes.fromhex('0100000002')  # default, max lifetime 300 s
NAF2 = b'naf2.keyline.test' + bytes.fromhex('0100000002')  # max lifetime 86400 s
KS_LIFETIME = 600
LIVE = []


def kdf_s(key, fc, params):
    s = fc
    for p in params:
        s += p + len(p).to_bytes(2, 'big')
    return hmac.new(key, s, hashlib.sha256).digest()


def mt_key(ue, naf, device):
    """The MT side: Milenage -> CK, IK -> Ks_(ext)_NAF -> Ks_local_MT (TS 33.220 annex B)."""
    av = dict(x.split('=', 1) for x in kdf(
        'milenage', '--k', ue['k'], '--opc', ue['opc'], '--rand', ue['rand'], '--sqn', ue['sqn'],
        '--amf', ue['amf']).splitlines())
    ks_naf = kdf_s(bytes.fromhex(av['f3_ck'] + av['f4_ik']), b'\x01',
                   (b'gba-me', bytes.fromhex(ue['rand']), ue['impi'].encode(), naf))
    return ks_naf, kdf_s(ks_naf, b'\xff\x03', (ue['b_tid'].encode(), naf, device.encode()))


class Env:
    def __init__(self, work):
        self.work = work
        self.dpki = Pki(work, leaves=(ME, BSF))
        self.naf = os.path.join(work, 'naf')
        subprocess.run([MKPKI, self.naf], check=True, capture_output=True, timeout=60)
        self.kek = kl_itest.write_kek(os.path.join(work, 'kek'))
        self.sock = os.path.join(work, 'admin.sock')
        self.dport, self.bport, self.hport, self.mport = (free_port() for _ in range(4))
        self.uport = kl_itest.free_udp_port()
        self.ue_file = os.path.join(work, 'ues.json')
        self.pop = os.path.join(work, 'pop.txt')
        subprocess.run([POPGEN, '--seed', '5', '--ues', '2000', '--groups', '4', '--emses', '8',
                        '--imsis', '8', '--appids', '8', '-o', self.pop], check=True,
                       capture_output=True, timeout=60)
        self.runs = 0
        self.bsf = None

    def p(self, name):
        return os.path.join(self.naf, name)

    def start_bsf(self):
        cert, key = self.dpki.cred(BSF)
        if os.path.exists(self.ue_file):
            os.unlink(self.ue_file)
        self.bsf = subprocess.Popen(
            [SIM, '--identity', BSF, '--cert', cert, '--key', key, '--ca', self.dpki.p('ca.pem'),
             '--listen', '127.0.0.1', 'bsf', '--port', str(self.bport), '--ues', '4', '--runs',
             '2', '--seed', '0x5eed', '--ue-file', self.ue_file, '--ks-lifetime',
             str(KS_LIFETIME)], stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.work, 'bsf.err'), 'a'))
        LIVE.append(self.bsf)
        t0 = time.time()
        while not os.path.exists(self.ue_file) and time.time() - t0 < 20:
            time.sleep(0.02)
        time.sleep(0.05)
        with open(self.ue_file) as f:
            self.ues = {(u['index'], u['run']): u for u in map(json.loads, f)}

    def config(self):
        cert, key = self.dpki.cred(ME)
        naf = '\n'.join([
            '  listen: 127.0.0.1', '  port: %d' % self.hport,
            '  tls_cert: "%s"' % self.p('server.pem'), '  tls_key: "%s"' % self.p('server.key'),
            '  device_ca: "%s"' % self.p('device-ca.pem'),
            '  operator_ca: "%s"' % self.p('operator-ca.pem'),
            '  crl: "%s"' % self.p('device-ca.crl.pem'),
            '  naf_ids:',
            '    - {fqdn: naf.keyline.test, ua_protocol: "0100000002", max_lifetime_s: 300, '
            'default: true}',
            '    - {hex: "%s", max_lifetime_s: 86400}' % NAF2.hex(),
            '  bsf: {identity: %s, address: 127.0.0.1, port: %d, timeout_ms: 800}'
            % (BSF, self.bport),
            '  rate_limit: {per_cert_rps: 5, burst: 20}',
            '  threads: 2', '  max_body: 1024', '  connection_timeout_s: 2'])
        extra = {
            'io': 'socket', 'udp_port': self.uport, 'metrics': '"127.0.0.1:%d"' % self.mport,
            'store': '{path: "%s", kek_file: "%s", map_size_mb: 64}'
                     % (os.path.join(self.work, 'store'), self.kek),
            'diameter': '{identity: %s, listen: 127.0.0.1, port: %d, tls_cert: "%s", '
                        'tls_key: "%s", tls_ca: "%s"}' % (ME, self.dport, cert, key,
                                                          self.dpki.p('ca.pem')),
            'naf_key_center': '\n' + naf}
        return kl_itest.write_config(os.path.join(self.work, 'keylined.yaml'),
                                     ipv4=('127.0.0.1',), ipv6=(), admin=self.sock, extra=extra,
                                     table={'ues': 4096, 'groups': 16, 'emses': 16,
                                            'imsis': 16, 'appids': 16})

    def start(self):
        self.runs += 1
        eal = kl_itest.eal_args(kl_itest.unique('naf%d' % self.runs), mem=256)
        kd = kl_itest.Keylined(KEYLINED, eal, self.config(), ['-p', self.pop],
                               workdir=tempfile.mkdtemp(prefix='run-', dir=self.work))
        LIVE.append(kd)
        kd.wait_ready()
        t0 = time.time()  # the Zn connection opens after 'ready': wait for it
        while '\nkeyline_naf_zn_bsf_open 1\n' not in self.metrics() and time.time() - t0 < 20:
            time.sleep(0.05)
        CK.check(time.time() - t0 < 20, 'the Zn connection to the BSF opens (%.2f s after ready)'
                 % (time.time() - t0))
        return kd

    def admin(self, req):
        return kl_itest.admin(self.sock, req)

    def curl(self, body=None, who='device-0001', method=None, path='/v1/ks-local-mt',
             extra=(), scheme='https', timeout=20):
        """(curl exit, HTTP status, body text, headers text)"""
        hdr = os.path.join(self.work, 'hdr.txt')
        cmd = ['curl', '-sS', '-o', '-', '-D', hdr, '-w', '\n%{http_code}', '--max-time',
               str(timeout), '--cacert', self.p('server-ca.pem')]
        if who:
            cmd += ['--cert', self.p(who + '.pem'), '--key', self.p(who + '.key')]
        if body is not None:
            cmd += ['-H', 'content-type: application/json', '--data-binary',
                    body if isinstance(body, str) else json.dumps(body)]
        if method:
            cmd += ['-X', method]
        cmd += list(extra) + ['%s://localhost:%d%s' % (scheme, self.hport, path)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10)
        text, _, code = r.stdout.rpartition('\n')
        try:
            headers = open(hdr).read()
            os.unlink(hdr)
        except OSError:
            headers = ''
        return r.returncode, int(code or 0), text, headers

    def metrics(self):
        r = subprocess.run(['curl', '-sS', 'http://127.0.0.1:%d/metrics' % self.mport],
                           capture_output=True, text=True, timeout=20)
        return r.stdout

    def val(self, series):
        for line in self.metrics().splitlines():
            if line.startswith(series + ' '):
                return float(line.split()[-1])
        return -1

    def rises(self, series, what, fn):
        """fn() makes series rise by exactly one (the server counts it as it closes: polled)."""
        before = self.val(series)
        out = fn()
        end = time.time() + 3
        while self.val(series) == before and time.time() < end:
            time.sleep(0.05)
        CK.eq(self.val(series) - before, 1, '%s: %s + 1' % (what, series))
        return out


def req(ue, device='device-0001.test', naf=None):
    b = {'b_tid': ue['b_tid'], 'device_id': device}
    if naf is not None:
        b['naf_id'] = naf.hex()
    return b


def refused(env, what, rc_code, status, error, body=None, who='device-0001', **kw):
    rc, code, text, _ = env.curl(body, who=who, **kw)
    try:
        j = json.loads(text)
    except ValueError:
        j = {}
    CK.eq((rc, code), (0, status), '%s: HTTP %d' % (what, status))
    CK.eq(sorted(j), ['detail', 'error'], '%s: JSON {error, detail} (%s)' % (what, text[:160]))
    CK.eq(j.get('error'), error, '%s: error %s' % (what, error))
    CK.check('ks_local_mt' not in text, '%s: no key' % what)
    return j


def run(env):
    env.start_bsf()
    kd = env.start()
    u0, u1, u0b = env.ues[(0, 0)], env.ues[(1, 0)], env.ues[(0, 1)]

    # a. the key of the MT side
    t0 = int(time.time())
    rc, code, text, hdr = env.curl(req(u0))
    CK.eq((rc, code), (0, 200), 'a: POST gives 200 (%s)' % text[:200])
    a = json.loads(text) if code == 200 else {}
    ks_naf, want = mt_key(u0, NAF1, 'device-0001.test')
    CK.eq(a.get('ks_local_mt'), base64.b64encode(want).decode(), 'a: key = MT-side derivation')
    CK.eq(kdf('ks-local-mt', '--key', ks_naf.hex(), '--btid', u0['b_tid'], '--naf-id',
              NAF1.hex(), '--device-id', 'device-0001.test'), want.hex(),
          'a: keyline-kdf ks-local-mt agrees with the Python KDF')
    CK.eq((a.get('b_tid'), a.get('naf_id'), a.get('device_id')),
          (u0['b_tid'], NAF1.hex(), 'device-0001.test'), 'a: answer names B-TID, NAF_ID, Device_ID')
    CK.check('cache-control: no-store' in hdr.lower(), 'a: Cache-Control: no-store')
    CK.check(a.get('lifetime_s', 0) in range(295, 301), 'a: lifetime = the NAF max 300 s '
             '(Ks expires in %d s): %s' % (KS_LIFETIME, a.get('lifetime_s')))
    exp = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t0 + a.get('lifetime_s', 0)))
    CK.check(abs(time.mktime(time.strptime(a.get('expires', '1970-01-01T00:00:00Z'),
                                           '%Y-%m-%dT%H:%M:%SZ')) -
                 time.mktime(time.strptime(exp, '%Y-%m-%dT%H:%M:%SZ'))) <= 2,
             'a: expires (RFC 3339 UTC) = now + lifetime_s: %s' % a.get('expires'))
    rc, code, text, _ = env.curl(req(u1, 'device-0002.test', NAF2), who='device-0002')
    b = json.loads(text) if code == 200 else {}
    CK.eq(b.get('ks_local_mt'), base64.b64encode(mt_key(u1, NAF2, 'device-0002.test')[1]).decode(),
          'a: second NAF_Id, other device: key = MT side')
    CK.eq(b.get('expires'), time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(u1['expires'])),
          'a: NAF max 86400 s > Ks lifetime: expires = the Ks expiry %d' % u1['expires'])
    rc, code, text, _ = env.curl(req(u0))
    CK.eq((code, json.loads(text).get('ks_local_mt') if code == 200 else None),
          (200, a.get('ks_local_mt')), 'a: asked again: the same key')

    # b. refusals
    missing = 'keyline_naf_client_cert_refused_total{reason="missing"}'
    unverified = 'keyline_naf_client_cert_refused_total{reason="not_verified"}'
    env.rises(missing, 'b: no client certificate', lambda: refused(
        env, 'b: no client certificate', None, 403, 'forbidden', req(u0), who=None))
    env.rises(unverified, 'b: certificate of another CA', lambda: refused(
        env, 'b: certificate of another CA', None, 403, 'forbidden', req(u0), who='other-device'))
    j = refused(env, 'b: revoked certificate (CRL)', None, 403, 'forbidden',
                req(u0, 'device-revoked.test'), who='revoked-device')
    CK.check('revoked' in j.get('detail', ''), 'b: detail says revoked: %s' % j.get('detail'))
    refused(env, 'b: expired certificate', None, 403, 'forbidden',
            req(u0, 'device-expired.test'), who='expired-device')
    refused(env, 'b: Device_ID other than the certificate CN', None, 403, 'forbidden',
            req(u0, 'device-0002.test'))
    refused(env, 'b: an operator certificate on POST', None, 403, 'forbidden',
            req(u0, 'operator.test'), who='operator')
    refused(env, 'b: unknown B-TID', None, 404, 'not_found',
            {'b_tid': 'AAAAAAAAAAAAAAAAAAAAAA==@' + BSF, 'device_id': 'device-0001.test'})
    refused(env, 'b: naf_id not configured', None, 400, 'bad_request',
            req(u0, naf=b'other.example' + bytes(5)))
    r = env.admin({'cmd': 'naf-block', 'device_id': 'device-0003.test'})
    CK.eq(r.get('ok'), True, 'b: admin naf-block device-0003.test (%s)' % r)
    refused(env, 'b: blocklisted Device_ID', None, 403, 'forbidden',
            req(u1, 'device-0003.test'), who='device-0003')
    env.admin({'cmd': 'naf-unblock', 'device_id': 'device-0003.test'})
    rc, code, _, _ = env.curl(req(u1, 'device-0003.test'), who='device-0003')
    CK.eq(code, 200, 'b: unblocked: device-0003 gets its key')

    # c. TLS 1.2 with ECDHE is served; old TLS, static-key ciphers and plain HTTP are not
    rc, code, text, _ = env.curl(req(u0), extra=['--tlsv1.2', '--tls-max', '1.2'])
    CK.eq((code, json.loads(text).get('ks_local_mt') if code == 200 else None),
          (200, a.get('ks_local_mt')), 'c: TLS 1.2 (ECDHE): the same key')
    failed = 'keyline_naf_tls_handshakes_failed_total'
    rc, code, text, _ = env.rises(failed, 'c: TLS 1.2 without ECDHE', lambda: env.curl(
        req(u0), extra=['--tlsv1.2', '--tls-max', '1.2', '--ciphers',
                        'AES128-GCM-SHA256:AES256-GCM-SHA384']))
    CK.check(rc != 0 and code == 0, 'c: TLS 1.2 without ECDHE refused (curl exit %d)' % rc)
    rc, code, text, _ = env.rises(failed, 'c: TLS 1.1', lambda: env.curl(
        req(u0), extra=['--tls-max', '1.1']))
    CK.check(rc != 0 and code == 0 and 'ks_local_mt' not in text,
             'c: TLS 1.1 refused (curl exit %d, HTTP %d)' % (rc, code))
    rc, code, text, _ = env.rises(failed, 'c: plain HTTP', lambda: env.curl(req(u0),
                                                                             scheme='http'))
    CK.check(rc != 0 and code == 0, 'c: plain HTTP refused (curl exit %d, HTTP %d)' % (rc, code))
    CK.eq(env.val(failed), 3, 'c: no other handshake failed (the keep-alive and full '
          'handshakes before, the refused certificates, TLS 1.2 with ECDHE)')

    # d. malformed
    refused(env, 'd: bad JSON', None, 400, 'bad_request', '{"b_tid": ')
    refused(env, 'd: unknown field', None, 400, 'bad_request',
            dict(req(u0), key='00'))
    refused(env, 'd: body over max_body', None, 413, 'payload_too_large',
            json.dumps(dict(req(u0), pad='x' * 5000)))
    refused(env, 'd: unknown route', None, 404, 'not_found', None, path='/v1/other')
    refused(env, 'd: GET on the POST route', None, 405, 'method_not_allowed', None)
    refused(env, 'd: POST on the DELETE route', None, 405, 'method_not_allowed', req(u0),
            path='/v1/ks-local-mt/a/b')
    # a slow client: TLS up, headers never finished -> closed after connection_timeout_s (2)
    t0 = time.time()
    p = subprocess.Popen(['openssl', 's_client', '-quiet', '-connect',
                          'localhost:%d' % env.hport, '-CAfile', env.p('server-ca.pem'),
                          '-cert', env.p('device-0001.pem'), '-key', env.p('device-0001.key')],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdin.write(b'POST /v1/ks-local-mt HTTP/1.1\r\nHost: x\r\n')
    p.stdin.flush()
    try:
        p.stdout.read()
        p.wait(timeout=10)
        dt = time.time() - t0
    except subprocess.TimeoutExpired:
        p.kill()
        dt = 99
    CK.check(dt < 5, 'd: slow client closed by the server in %.1f s (timeout 2 s)' % dt)
    print('d: slow client closed after %.1f s (connection_timeout_s 2)' % dt, flush=True)
    # rate limit: 5/s, burst 20, per certificate: 80 requests on one keep-alive connection
    ctx = ssl.create_default_context(cafile=env.p('server-ca.pem'))
    ctx.load_cert_chain(env.p('device-0002.pem'), env.p('device-0002.key'))
    conn = http.client.HTTPSConnection('localhost', env.hport, context=ctx, timeout=20)
    codes = []
    for _ in range(80):
        conn.request('POST', '/v1/ks-local-mt', json.dumps(req(u1, 'device-0002.test')),
                     {'content-type': 'application/json'})
        resp = conn.getresponse()
        resp.read()
        codes.append(resp.status)
    conn.close()
    print('d: rate limit 5/s burst 20: 80 requests: %d x 200, %d x 429'
          % (codes.count(200), codes.count(429)), flush=True)
    CK.check(codes.count(429) >= 15 and 20 <= codes.count(200) <= 65 and
             codes.count(200) + codes.count(429) == 80,
             'd: rate limit: 80 quick requests of one certificate on one keep-alive connection: '
             '%d x 200, %d x 429' % (codes.count(200), codes.count(429)))
    rc, code, _, _ = env.curl(req(u0))
    CK.eq(code, 200, 'd: another certificate is not limited')

    # e. invalidation by the admin and by the operator's DELETE
    r = env.admin({'cmd': 'naf-invalidate', 'b_tid': u0['b_tid'], 'device_id': 'device-0001.test'})
    CK.eq(r.get('ok'), True, 'e: admin naf-invalidate (%s)' % r)
    refused(env, 'e: invalidated key: the same B-TID refused', None, 403, 'forbidden', req(u0))
    rc, code, text, _ = env.curl(req(u0b))
    n = json.loads(text) if code == 200 else {}
    CK.eq(n.get('ks_local_mt'), base64.b64encode(mt_key(u0b, NAF1, 'device-0001.test')[1]).decode(),
          'e: the next bootstrapping (new B-TID) gives the new key')
    CK.check(n.get('ks_local_mt') != a.get('ks_local_mt'), 'e: the new key differs')
    dpath = '/v1/ks-local-mt/%s/%s' % (u1['b_tid'].replace('/', '%2F').replace('+', '%2B')
                                       .replace('=', '%3D').replace('@', '%40'), 'device-0002.test')
    refused(env, 'e: DELETE with a device certificate', None, 403, 'forbidden', None,
            method='DELETE', path=dpath, who='device-0002')
    rc, code, text, _ = env.curl(None, method='DELETE', path=dpath, who='operator')
    CK.eq(code, 200, 'e: operator DELETE (percent-encoded B-TID): 200 (%s)' % text[:200])
    CK.eq(json.loads(text).get('invalidated') if code == 200 else None, True, 'e: invalidated')
    refused(env, 'e: DELETE of a key never issued', None, 404, 'not_found', None,
            method='DELETE', path='/v1/ks-local-mt/abc%40d/device-0002.test', who='operator')
    refused(env, 'e: after the DELETE the device is refused', None, 403, 'forbidden',
            req(u1, 'device-0002.test', NAF2), who='device-0002')
    keys = env.admin({'cmd': 'naf-keys'}).get('keys', [])
    inval = sorted((k['b_tid'], k['device_id'], k['naf_id']) for k in keys if k.get('invalidated'))
    CK.eq(inval, sorted([(u0['b_tid'], 'device-0001.test', NAF1.hex()),
                         (u1['b_tid'], 'device-0002.test', NAF1.hex()),
                         (u1['b_tid'], 'device-0002.test', NAF2.hex())]),
          'e: naf-keys lists the invalidated keys (the DELETE: both NAF_Ids of the B-TID)')
    r = subprocess.run([CTL, '-s', env.sock, 'naf-keys'], capture_output=True, text=True,
                       timeout=30)
    CK.eq((r.returncode, r.stdout.count(' invalidated\n'), '%d key(s)' % len(keys) in r.stdout),
          (0, 3, True), 'e: keylinectl naf-keys lists them (%s)' % r.stderr.strip())
    r = subprocess.run([CTL, '-s', env.sock, 'naf-block', '--serial', 'abc'], capture_output=True,
                       text=True, timeout=30)
    r2 = subprocess.run([CTL, '-s', env.sock, 'naf-blocklist'], capture_output=True, text=True,
                        timeout=30)
    CK.eq((r.returncode, r2.returncode, 'serial abc' in r2.stdout), (0, 0, True),
          'e: keylinectl naf-block --serial, naf-blocklist (%s)' % r2.stdout.strip())
    subprocess.run([CTL, '-s', env.sock, 'naf-unblock', '--serial', 'abc'], timeout=30,
                   capture_output=True)
    CK.check(all('ks_local_mt' not in k and 'key' not in k for k in keys) and
             all(len(k.get('kcv', '')) == 6 for k in keys), 'e: listing shows KCVs, never keys')

    st = env.admin({'cmd': 'status'}).get('naf_key_center', {})
    CK.eq((st.get('enabled'), st.get('port'), st.get('bsf', {}).get('open'),
           st.get('keys', {}).get('invalidated')), (True, env.hport, True, 3),
          'e: admin status: the Key Center (port, BSF open, 3 invalidated keys): %s' % st)

    r = subprocess.run([CTL, '-s', env.sock, 'status'], capture_output=True, text=True,
                       timeout=30)
    CK.check(r.returncode == 0 and 'naf:      port %d, BSF %s open; ' % (env.hport, BSF) in r.stdout
             and '3 invalidated' in r.stdout, 'e: keylinectl status shows the Key Center')

    # f. /metrics
    met = env.metrics()
    CK.check('keyline_naf_requests_total{route="issue",code="200"}' in met, 'f: issue 200 series')
    def val(series):
        for line in met.splitlines():
            if line.startswith(series + ' '):
                return float(line.split()[-1])
        return -1
    CK.check(val('keyline_naf_requests_total{route="issue",code="200"}') >= 25,
             'f: issued 200s counted')
    CK.eq(val('keyline_naf_requests_total{route="issue",code="413"}'), 1, 'f: one 413')
    CK.eq(val('keyline_naf_requests_total{route="invalidate",code="200"}'), 1, 'f: one DELETE 200')
    CK.check(val('keyline_naf_requests_total{route="issue",code="429"}') >= 15, 'f: 429s')
    CK.check(val('keyline_naf_tls_handshakes_total') >= 15, 'f: handshakes counted')
    CK.check(val('keyline_naf_connections_without_request_total') >= 2,
             'f: TLS 1.1 and plain HTTP: connections without a request')
    CK.check(val('keyline_naf_zn_sent_total') >= 3 and val('keyline_naf_zn_cache_hits_total') >= 1,
             'f: Zn round trips and cache hits')
    CK.check(val('keyline_naf_zn_round_trip_seconds_count') == val('keyline_naf_zn_answered_total'),
             'f: Zn latency histogram: one count per answer')
    CK.eq(val('keyline_naf_keys_invalidated'), 3, 'f: 3 invalidated keys')
    CK.eq(val('keyline_naf_zn_bsf_open'), 1, 'f: BSF connection open')

    # g. the BSF killed: 503 within a bounded time, MBMS keeps being served
    burst_out = {}

    def burst():
        p = subprocess.run([BURST, '--io', 'socket', '--population', env.pop, '--server-ip',
                            '127.0.0.1', '--server-port', str(env.uport), '--ues', '2000',
                            '--mode', 'rate', '--rate', '1000', '--interval-ms', '100'],
                           capture_output=True, text=True, timeout=60)
        lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith('{')]
        burst_out['rc'], burst_out['last'], burst_out['err'] = p.returncode, lines[-1] if lines \
            else {}, p.stderr[-400:]
    th = threading.Thread(target=burst)
    th.start()
    # silent (stopped) first: the Zn timeout bounds the answer
    kl_itest.sigstop(env.bsf.pid)
    t0 = time.time()
    refused(env, 'g: BSF silent: fresh B-TID', None, 503, 'unavailable',
            req(env.ues[(2, 0)], 'device-0003.test'), who='device-0003')
    silent = time.time() - t0
    CK.check(0.7 <= silent < 2.5, 'g: BSF silent: 503 after %.2f s (Zn timeout 0.8 s)' % silent)
    print('g: BSF silent: 503 after %.2f s (Zn timeout 0.8 s)' % silent, flush=True)
    env.bsf.send_signal(signal.SIGCONT)
    env.bsf.kill()
    env.bsf.wait()
    worst = 0
    for i in range(4):
        t0 = time.time()
        j = refused(env, 'g: BSF down, fresh B-TID %d' % i, None, 503, 'unavailable',
                    req(env.ues[(i, 1)] if i > 0 else env.ues[(3, 0)], 'device-0003.test'),
                    who='device-0003')
        worst = max(worst, time.time() - t0)
    CK.check(worst < 3, 'g: 503 within %.2f s (Zn timeout 0.8 s)' % worst)
    print('g: BSF down: 503 after at most %.2f s (Zn timeout 0.8 s)' % worst, flush=True)
    th.join()
    last = burst_out.get('last', {})
    fails = last.get('failed')
    print('g: keyline-burst MBMS during the outage: ok %s failed %s over %.1f s' %
          (last.get('ok'), last.get('failed'), last.get('elapsed_s', 0)), flush=True)
    CK.eq(burst_out.get('rc'), 0, 'g: keyline-burst MBMS exit 0 during the BSF outage (%s)'
          % burst_out.get('err'))
    CK.check(fails == 0 and last.get('ok') == 2000,
             'g: MBMS: 2000 of 2000 verified, 0 failures, over %.1f s while the BSF was down'
             % last.get('elapsed_s', 0))

    # h. restart: issued keys and invalidations survive
    before = sorted(json.dumps(k, sort_keys=True) for k in env.admin({'cmd': 'naf-keys'})['keys'])
    rc, _ = kd.stop()
    CK.eq(rc, 0, 'h: keylined stops cleanly')
    env.start_bsf()
    kd = env.start()
    after = sorted(json.dumps(k, sort_keys=True) for k in env.admin({'cmd': 'naf-keys'})['keys'])
    CK.eq(after, before, 'h: the same %d keys listed after the restart' % len(before))
    refused(env, 'h: the invalidated key is still refused', None, 403, 'forbidden', req(u0))
    rc, code, text, _ = env.curl(req(u0b))
    CK.eq(json.loads(text).get('ks_local_mt') if code == 200 else None, n.get('ks_local_mt'),
          'h: the issued key is issued again, the same')
    rc, _ = kd.stop()
    CK.eq(rc, 0, 'h: keylined stops cleanly again')

    # i. start-up refusals the config check cannot see: exit 2, one line naming the cause
    for ov, want in (('naf_key_center.device_ca=%s' % env.p('missing-ca.pem'), 'missing-ca.pem'),
                     ('naf_key_center.crl=%s' % env.p('other-ca.pem'), 'no CRL'),
                     ('naf_key_center.cpus=1', 'runs a worker lcore')):
        eal = kl_itest.eal_args(kl_itest.unique('nafbad'), mem=256)
        r = subprocess.run([KEYLINED] + eal + ['--', '-c', env.config(), '-p', env.pop, ov],
                           capture_output=True, text=True, timeout=60)
        msgs = [x for x in r.stderr.splitlines() if x.startswith('keylined: error')]
        CK.check(r.returncode == 2 and any(want in m for m in msgs),
                 'i: %s: exit 2 naming it (%d, %s)' % (ov, r.returncode, msgs))


def main():
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix='kl-naf-') as work:
        env = Env(work)
        try:
            run(env)
        finally:
            for p in LIVE:
                if isinstance(p, kl_itest.Keylined):
                    p.kill()
                elif p.poll() is None:
                    p.kill()
                    p.wait()
    print('naf-key-center: %.1f s' % (time.time() - t0))
    return CK.done()


if __name__ == '__main__':
    sys.exit(main())

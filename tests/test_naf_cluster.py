#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The NAF Key Center on a cluster (issues 13 and 14), real processes only: one etcd member, two
keylined nodes (socket io, each its own store, the same KEK, each its Key Center and Diameter
stack) and one keyline-hss-sim BSF both nodes' Zn clients use. What one node writes, the other's
Key Center sees without a restart (the follower's applied catalogue entries reach its index):
  a. a key issued by A is listed by B (same KCV) within 1 s;
  b. a Device_ID blocklisted on A is refused (403) by B within 1 s; unblocked on A, B serves it
     again; a certificate serial blocklisted on A is refused by B;
  c. a key invalidated on A is listed invalidated by B and refused there (403); B issues the
     fresh key of the device's next B-TID, and A lists it;
  d. B stopped, A blocks, unblocks and issues meanwhile, etcd compacted past B's revision: B
     resynchronises fully on restart and its Key Center follows the snapshot's entries and its
     deletions (listings and answers).
    test_naf_cluster.py KEYLINED KEYLINE_HSS_SIM ETCD MAKE_TEST_PKI"""
import base64
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, 'diameter'))
import kl_itest  # noqa: E402
import test_etcd  # noqa: E402
from kl_dtest import Pki, free_port  # noqa: E402

KEYLINED, SIM, ETCD, MKPKI = sys.argv[1:5]
CK = kl_itest.Checks('naf-cluster')
BSF = 'bsf.keyline.test'
NAF = b'naf.keyline.test' + bytes.fromhex('0100000002')
PREFIX = '/kln' + str(os.getpid())
SOON = 1.0  # seconds: what "within about 1 s" allows
LIVE = []


def wait(cond, timeout, step=0.02):
    end = time.time() + timeout
    while True:
        v = cond()
        if v or time.time() > end:
            return v
        time.sleep(step)


class Node:
    def __init__(self, name, work, kek, pki, dpki, bport, endpoint):
        self.name, self.work, self.pki = name, work, pki
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, 'admin.sock')
        self.hport, dport = free_port(), free_port()
        cert, key = dpki.cred(name + '.test')
        naf = ('{listen: 127.0.0.1, port: %d, tls_cert: "%s/server.pem", '
               'tls_key: "%s/server.key", device_ca: "%s/device-ca.pem", '
               'operator_ca: "%s/operator-ca.pem", naf_ids: [{fqdn: naf.keyline.test, '
               'ua_protocol: "0100000002", max_lifetime_s: 7200}], bsf: {identity: %s, '
               'address: 127.0.0.1, port: %d}, rate_limit: {per_cert_rps: 0}, threads: 2}'
               % (self.hport, pki, pki, pki, pki, BSF, bport))
        self.cfg = kl_itest.write_config(
            os.path.join(self.dir, 'keylined.yaml'), ipv4=('127.0.0.1',), ipv6=(),
            admin=self.sock, table={'ues': 64, 'groups': 16, 'emses': 16, 'imsis': 16,
                                    'appids': 16},
            extra={'io': 'socket', 'udp_port': kl_itest.free_udp_port(), 'log_level': 'warning',
                   'store': '{path: "%s/store", kek_file: "%s", map_size_mb: 64}'
                            % (self.dir, kek),
                   'diameter': '{identity: %s.test, listen: 127.0.0.1, port: %d, '
                               'tls_cert: "%s", tls_key: "%s", tls_ca: "%s"}'
                               % (name, dport, cert, key, dpki.p('ca.pem')),
                   'naf_key_center': naf,
                   'cluster': '{endpoints: ["%s"], node: %s, prefix: "%s", lease_ttl_s: 3, '
                              'stale_after_ms: 1000, connect_timeout_ms: 200, '
                              'request_timeout_ms: 2000}' % (endpoint, name, PREFIX)})
        self.runs = 0
        self.k = None

    def start(self):
        self.runs += 1
        eal = kl_itest.eal_args(kl_itest.unique('nc%s%d' % (self.name[-1], self.runs)), mem=256)
        self.k = kl_itest.Keylined(KEYLINED, eal, self.cfg,
                                   workdir=tempfile.mkdtemp(prefix='run-', dir=self.dir))
        LIVE.append(self.k)
        self.k.wait_ready()
        # the Zn connection opens after 'ready'
        CK.check(wait(lambda: self.status().get('naf_key_center', {}).get('bsf', {})
                      .get('open'), 20, 0.05), '%s: the Zn connection to the BSF opens' % self.name)
        return self

    def stop(self):
        rc, _ = self.k.stop()
        return rc

    def admin(self, req):
        return kl_itest.admin(self.sock, req)

    def status(self):
        return self.admin({'cmd': 'status'})

    def keys(self):
        """(b_tid, device_id) -> (kcv, invalidated) as the node's Key Center lists them."""
        return {(k['b_tid'], k['device_id']): (k['kcv'], k['invalidated'])
                for k in self.admin({'cmd': 'naf-keys'}).get('keys', [])}

    def blocklist(self):
        b = self.admin({'cmd': 'naf-blocklist'})
        return sorted(b.get('device_ids', [])), sorted(b.get('serials', []))

    def post(self, ue, dev):
        """(HTTP status, JSON answer) of a device's POST for its Ks_local_MT."""
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, 'server-ca.pem'))
        ctx.load_cert_chain(os.path.join(self.pki, dev + '.pem'),
                            os.path.join(self.pki, dev + '.key'))
        c = http.client.HTTPSConnection('localhost', self.hport, context=ctx, timeout=10)
        try:
            c.request('POST', '/v1/ks-local-mt',
                      json.dumps({'b_tid': ue['b_tid'], 'device_id': dev + '.test'}),
                      {'content-type': 'application/json'})
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
        try:
            return r.status, json.loads(body)
        except ValueError:
            return r.status, {}


def until_status(node, ue, dev, status):
    """Seconds until node answers dev's POST with status (None: not within 3 s)."""
    t0 = time.time()
    while time.time() - t0 < 3:
        code, _ = node.post(ue, dev)
        if code == status:
            return time.time() - t0
        time.sleep(0.02)
    return None


def soon(what, dt):
    CK.check(dt is not None and dt <= SOON, '%s within %.1f s (%s)'
             % (what, SOON, 'never' if dt is None else '%.3f s' % dt))
    print('%s after %s' % (what, 'never' if dt is None else '%.3f s' % dt), flush=True)


def etcd_post(url, path, obj):
    req = urllib.request.Request(url + path, data=json.dumps(obj).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def run(work):
    pki = os.path.join(work, 'pki')
    subprocess.run([MKPKI, pki, '--devices', '3'], check=True, capture_output=True, timeout=60)
    serials = {e.get('cn'): e.get('serial') for e in
               json.load(open(os.path.join(pki, 'pki.json'))).get('entries', [])}
    os.makedirs(os.path.join(work, 'dia'))
    dpki = Pki(os.path.join(work, 'dia'), leaves=('node-a.test', 'node-b.test', BSF))
    kek = kl_itest.write_kek(os.path.join(work, 'kek'))
    cl = test_etcd.start_cluster(ETCD, 1)
    LIVE.append(cl)

    bport, uefile = free_port(), os.path.join(work, 'ues.jsonl')
    cert, key = dpki.cred(BSF)
    bsf = subprocess.Popen([SIM, '--identity', BSF, '--cert', cert, '--key', key, '--ca',
                            dpki.p('ca.pem'), '--listen', '127.0.0.1', 'bsf', '--port',
                            str(bport), '--ues', '3', '--runs', '2', '--seed', '11',
                            '--ue-file', uefile], stdout=subprocess.DEVNULL,
                           stderr=open(os.path.join(work, 'bsf.err'), 'w'))
    LIVE.append(bsf)
    CK.check(wait(lambda: os.path.exists(uefile), 20, 0.02), 'the BSF wrote its UE file')
    time.sleep(0.05)
    ues = {(u['index'], u['run']): u for u in map(json.loads, open(uefile))}

    a = Node('node-a', work, kek, pki, dpki, bport, cl.client[0]).start()
    b = Node('node-b', work, kek, pki, dpki, bport, cl.client[0]).start()
    u0, u1, u2, u0b = ues[(0, 0)], ues[(1, 0)], ues[(2, 0)], ues[(0, 1)]

    # a. a key issued by A, listed by B
    code, ka = a.post(u0, 'device-0001')
    CK.eq(code, 200, 'a: A issues device-0001 its key')
    want = a.keys().get((u0['b_tid'], 'device-0001.test'))
    t0 = time.time()
    got = wait(lambda: b.keys().get((u0['b_tid'], 'device-0001.test')), 3)
    soon('a: B lists the key A issued', time.time() - t0 if got else None)
    CK.eq(got, want, 'a: B lists it with A\'s KCV, valid')
    code, kb = b.post(u0, 'device-0001')
    CK.eq((code, kb.get('ks_local_mt')), (200, ka.get('ks_local_mt')), 'a: B answers the same key')

    # b. blocklists written on A, enforced by B
    CK.eq(a.admin({'cmd': 'naf-block', 'device_id': 'device-0002.test'}).get('ok'), True,
          'b: A blocklists device-0002.test')
    soon('b: B refuses the Device_ID blocklisted on A (403)', until_status(b, u1, 'device-0002',
                                                                           403))
    CK.eq(b.post(u1, 'device-0002')[1].get('error'), 'forbidden', 'b: B\'s answer: forbidden')
    CK.eq(a.admin({'cmd': 'naf-unblock', 'device_id': 'device-0002.test'}).get('ok'), True,
          'b: A unblocks device-0002.test')
    soon('b: B serves the Device_ID unblocked on A (200)', until_status(b, u1, 'device-0002', 200))
    s3 = serials.get('device-0003.test')
    CK.check(s3, 'b: pki.json gives device-0003\'s certificate serial')
    CK.eq(a.admin({'cmd': 'naf-block', 'serial': s3}).get('ok'), True,
          'b: A blocklists device-0003\'s certificate serial')
    soon('b: B refuses the certificate serial blocklisted on A (403)',
         until_status(b, u2, 'device-0003', 403))

    # c. invalidated on A: B lists it invalidated, refuses it, issues the next B-TID's key
    r = a.admin({'cmd': 'naf-invalidate', 'b_tid': u0['b_tid'], 'device_id': 'device-0001.test'})
    CK.eq(r.get('ok'), True, 'c: A invalidates device-0001\'s key (%s)' % r)
    t0 = time.time()
    got = wait(lambda: (b.keys().get((u0['b_tid'], 'device-0001.test')) or (0, 0))[1], 3)
    soon('c: B lists the key invalidated on A', time.time() - t0 if got else None)
    code, j = b.post(u0, 'device-0001')
    CK.eq((code, j.get('error')), (403, 'forbidden'), 'c: B refuses the invalidated key')
    code, kn = b.post(u0b, 'device-0001')
    CK.check(code == 200 and kn.get('ks_local_mt') not in (None, ka.get('ks_local_mt')),
             'c: B issues the fresh key of the next B-TID (%d)' % code)
    want = b.keys().get((u0b['b_tid'], 'device-0001.test'))
    t0 = time.time()
    got = wait(lambda: a.keys().get((u0b['b_tid'], 'device-0001.test')), 3)
    soon('c: A lists the key B issued', time.time() - t0 if got else None)
    CK.eq(got, want, 'c: with B\'s KCV')

    # d. B stopped; A writes and deletes meanwhile; compaction; B resynchronises on restart
    CK.eq(b.stop(), 0, 'd: B stops cleanly')
    CK.eq(a.admin({'cmd': 'naf-block', 'device_id': 'device-0002.test'}).get('ok'), True,
          'd: A blocklists device-0002.test')
    CK.eq(a.admin({'cmd': 'naf-unblock', 'serial': s3}).get('ok'), True,
          'd: A unblocks device-0003\'s serial')
    CK.eq(a.post(u2, 'device-0001')[0], 200, 'd: A issues device-0001 a key for another B-TID')
    rev = int(etcd_post(cl.client[0], '/v3/kv/range', {'key': 'eA=='})['header']['revision'])
    etcd_post(cl.client[0], '/v3/kv/compaction', {'revision': str(rev), 'physical': True})
    b.start()
    CK.check(wait(lambda: b.status().get('cluster', {}).get('state') == 'following', 20),
             'd: B follows again')
    st = b.status().get('cluster', {}).get('counters', {})
    CK.check(st.get('resyncs', 0) >= 1 and st.get('resync_deleted', 0) >= 1,
             'd: B resynchronised fully, deletions included: %s' % st)
    CK.eq(b.blocklist(), a.blocklist(), 'd: B\'s blocklists are A\'s')
    CK.eq(b.blocklist(), (['device-0002.test'], []), 'd: B\'s blocklists')
    CK.eq(b.keys(), a.keys(), 'd: B lists A\'s keys')
    CK.eq(b.post(u1, 'device-0002')[0], 403, 'd: B refuses device-0002 (blocklisted meanwhile)')
    CK.eq(b.post(u2, 'device-0003')[0], 200, 'd: B serves device-0003 (serial unblocked meanwhile)')
    ks = b.admin({'cmd': 'naf-keys'}).get('stats', {})
    CK.check(ks.get('applied', 0) >= 3 and ks.get('apply_failed') == 0,
             'd: B\'s Key Center counts the entries it took from the catalogue: %s' % ks)

    CK.eq(b.stop(), 0, 'B stops cleanly')
    CK.eq(a.stop(), 0, 'A stops cleanly')
    bsf.send_signal(signal.SIGTERM)
    try:
        bsf.wait(timeout=20)
    except subprocess.TimeoutExpired:
        bsf.kill()


def main():
    t0 = time.time()
    work = tempfile.mkdtemp(prefix='kl-naf-cluster-',
                            dir='/dev/shm' if os.path.isdir('/dev/shm') else None)
    try:
        run(work)
    finally:
        for p in LIVE:
            if isinstance(p, test_etcd.Cluster):
                p.stop()
            elif isinstance(p, kl_itest.Keylined):
                p.kill()
            elif p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)
    print('naf-cluster: %.1f s' % (time.time() - t0))
    return CK.done()


if __name__ == '__main__':
    sys.exit(main())

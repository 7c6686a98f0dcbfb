#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The NAF Key Center end to end with real processes (issue 13 item 6): keyline-hss-sim's BSF
role <-Zn, Diameter/TLS-> keylined's naf_key_center <-HTTPS, mutual TLS-> keyline-device and
keyline-burst --kind naf.
  a. keyline-device fetches Ks_local_MT for a B-TID of the BSF's UE file: the key file equals
     keyline-kdf gba-ks-local-mt's MT-side key from the same GBA run (and the Python reference's),
     its KCV is printed, never the key; expires/lifetime_s are printed;
  b. a B-TID the BSF does not know: exit 5 (404) and the JSON error, no file;
  c. keyline-burst --kind naf, keep-alive: N devices x R requests, every key equal to the MT-side
     derivation, one TLS handshake per device; then --full-handshake: one per request.
    test_naf_clients.py KEYLINED KEYLINE_HSS_SIM KEYLINE_KDF KEYLINE_DEVICE KEYLINE_BURST
                        MAKE_TEST_PKI
KL_NAF_DEVICES (default 32) sets N: make-test-pki.sh makes about 10 certificates a second, so
the test stays well under 30 s; the benchmark in README ran 200. KL_NAF_TIMEOUT_MS (default
10000) is the burst's request timeout. Under the sanitizers (tools/run-tests.sh: 12 devices,
30 s) keylined unwinds every allocation's stack fully (freeDiameter's leak suppressions need
it) and its HTTPS threads share one CPU: 32 handshakes at once on a loaded machine (2.5
handshakes/s measured with the other tests' load) outlasted 10 s."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, 'diameter'))
import kl_itest  # noqa: E402
import naf_reference as ref  # noqa: E402
from kl_dtest import Pki, client_env, free_port, run  # noqa: E402

KEYLINED, SIM, KDF, DEV, BURST, PKI_SH = map(os.path.abspath, sys.argv[1:7])
CK = kl_itest.Checks('naf-clients')
N = int(os.environ.get('KL_NAF_DEVICES', '32'))
TIMEOUT_MS = os.environ.get('KL_NAF_TIMEOUT_MS', '10000')
NAF_FQDN = 'naf.keyline.test'
NAF = NAF_FQDN.encode() + bytes.fromhex('0100000002')
LIVE = []


def kv(stdout):
    return dict(line.split('=', 1) for line in stdout.splitlines() if '=' in line)


def main():
    work = tempfile.mkdtemp(prefix='kl-naf-e2e-')
    pki = os.path.join(work, 'pki')
    r = run([PKI_SH, pki, '--devices', str(N)], timeout=120)
    CK.check(r.returncode == 0, 'make-test-pki: %s' % r.stderr[-300:])
    os.makedirs(os.path.join(work, 'dia'))
    dpki = Pki(os.path.join(work, 'dia'), leaves=('keylined.test', 'bsf.keyline.test'))

    # the BSF: N UEs bootstrapped once; the UE file appears when it answers BIRs
    bport = free_port()
    uefile = os.path.join(work, 'ues.jsonl')
    cert, key = dpki.cred('bsf.keyline.test')
    bsf = subprocess.Popen([SIM, '--identity', 'bsf.keyline.test', '--cert', cert, '--key', key,
                            '--ca', dpki.p('ca.pem'), '--listen', '127.0.0.1', 'bsf', '--port',
                            str(bport), '--ues', str(N), '--seed', '7', '--ue-file', uefile],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    LIVE.append(bsf)
    end = time.time() + 30
    while not os.path.exists(uefile) and time.time() < end and bsf.poll() is None:
        time.sleep(0.05)
    CK.check(os.path.exists(uefile), 'the BSF wrote its UE file')
    ues = [json.loads(x) for x in open(uefile)]
    CK.eq(len(ues), N, 'UE file lines')

    # keylined with the Key Center (rate limit off: the burst sends R requests per certificate)
    hport, dport = free_port(), free_port()
    kcert, kkey = dpki.cred('keylined.test')
    dia = ('{identity: keylined.test, listen: 127.0.0.1, port: %d, tls_cert: "%s", '
           'tls_key: "%s", tls_ca: "%s"}' % (dport, kcert, kkey, dpki.p('ca.pem')))
    naf = ('{listen: 127.0.0.1, port: %d, tls_cert: "%s/server.pem", tls_key: "%s/server.key", '
           'device_ca: "%s/device-ca.pem", operator_ca: "%s/operator-ca.pem", '
           'naf_ids: [{fqdn: %s, ua_protocol: "0100000002", max_lifetime_s: 7200}], '
           'bsf: {identity: bsf.keyline.test, address: 127.0.0.1, port: %d}, '
           'rate_limit: {per_cert_rps: 0}, max_connections: %d}'
           % (hport, pki, pki, pki, pki, NAF_FQDN, bport, N + 64))
    cfg = kl_itest.write_config(os.path.join(work, 'keylined.yaml'), ipv4=('127.0.0.1',), ipv6=(),
                                admin=os.path.join(work, 'admin.sock'),
                                extra={'io': 'socket', 'udp_port': free_port(socket.SOCK_DGRAM),
                                       'diameter': dia, 'naf_key_center': naf},
                                table={'ues': 64, 'groups': 16, 'emses': 16, 'imsis': 64,
                                       'appids': 16})
    # EAL's main lcore may run on CPUs 0 and 1, the worker's lcore 1 on CPU 1: keylined takes the
    # worker's CPU out of its control threads' set before the services start (kl_daemon)
    eal = kl_itest.eal_args(kl_itest.unique('naf'), mem=256)
    eal[eal.index('-l'):eal.index('-l') + 2] = ['--lcores', '0@(0,1),1@1']
    kd = kl_itest.Keylined(KEYLINED, eal, cfg, workdir=tempfile.mkdtemp(prefix='kd-', dir=work))
    LIVE.append(kd)
    kd.wait_ready()
    cpus = {}
    for t in os.listdir('/proc/%d/task' % kd.p.pid):
        name = open('/proc/%d/task/%s/comm' % (kd.p.pid, t)).read().strip()
        st = dict(x.split(':', 1) for x in open('/proc/%d/task/%s/status' % (kd.p.pid, t))
                  if ':' in x)
        cpus.setdefault(name, set()).add(st['Cpus_allowed_list'].strip())
    CK.eq(cpus.pop('rte-worker-1', None), {'1'}, 'pinning: the worker on CPU 1')
    CK.check(cpus and all(c == {'0'} for c in cpus.values()),
             'pinning: every other thread (control, freeDiameter, HTTPS pool, EAL\'s interrupt '
             'thread) on CPU 0 only: %s'
             % cpus)
    url = 'https://localhost:%d' % hport
    D1 = ['--cert', f'{pki}/device-0001.pem', '--key', f'{pki}/device-0001.key', '--ca',
          f'{pki}/server-ca.pem', '--url', url]

    # a. one device, one key; the Zn connection may still be opening (503: exit 7)
    ue = ues[0]
    out = os.path.join(work, 'ks.hex')
    end = time.time() + 20
    while True:
        r = run([DEV] + D1 + ['--b-tid', ue['b_tid'], '--out', out], env=client_env())
        if r.returncode != 7 or time.time() > end:
            break
        time.sleep(0.2)
    CK.eq(r.returncode, 0, 'a: keyline-device exit (%s)' % r.stderr[-300:])
    mt = os.path.join(work, 'ks-mt.hex')
    r2 = run([KDF, 'gba-ks-local-mt', '--ue-file', uefile, '--btid', ue['b_tid'], '--naf-id',
              NAF.hex(), '--device-id', 'device-0001.test', '--out', mt])
    CK.eq(r2.returncode, 0, 'a: keyline-kdf gba-ks-local-mt')
    dev_key = open(out).read().strip() if os.path.exists(out) else 'missing'
    mt_key = open(mt).read().strip() if os.path.exists(mt) else 'absent'
    CK.eq(dev_key, mt_key, 'a: the device key equals the MT-side derivation (keyline-kdf)')
    CK.eq(dev_key, ref.mt_key(ue, NAF, 'device-0001.test').hex(),
          'a: and the Python reference (Milenage, KDF)')
    o = kv(r.stdout)
    CK.eq(o.get('ks_local_mt_kcv'), kv(r2.stdout).get('ks_local_mt_kcv'), 'a: KCVs')
    CK.eq(o.get('naf_id'), NAF.hex(), 'a: the default NAF_ID')
    CK.check(o.get('expires', '').endswith('Z') and 0 < int(o.get('lifetime_s', '0')) <= 7200,
             'a: expires and lifetime (<= max_lifetime_s): %s' % o)
    CK.check(dev_key not in r.stdout + r.stderr, 'a: the key is not printed')

    # b. a B-TID unknown to the BSF
    r = run([DEV] + D1 + ['--b-tid', 'AAAAAAAAAAAAAAAAAAAAAA==@bsf.keyline.test', '--out',
                          out + '-b'], env=client_env())
    CK.check(r.returncode == 5 and '404' in r.stderr and not os.path.exists(out + '-b'),
             'b: unknown B-TID: exit %d %s' % (r.returncode, r.stderr[-200:]))

    # c. the burst, both connection modes, every key verified
    B = [BURST, '--kind', 'naf', '--pki', pki, '--ue-file', uefile, '--naf-id', NAF.hex(),
         '--url', url, '--devices', str(N), '--interval-ms', '0', '--server-pid', str(kd.p.pid),
         '--timeout-ms', TIMEOUT_MS]
    for mode, extra, reqs in (('keep-alive', [], 3), ('full-handshake', ['--full-handshake'], 2)):
        r = run(B + ['--requests', str(reqs)] + extra, timeout=120, env=client_env())
        try:
            s = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            s = {}
        nf = s.get('naf') or {}
        CK.eq(r.returncode, 0, 'c %s: keyline-burst exit (%s)' % (mode, r.stderr[-300:]))
        CK.check(s.get('ok') == N and nf.get('keys_verified') == N * reqs and
                 nf.get('by_status') == {'200': N * reqs},
                 'c %s: every key verified: %s %s' % (mode, s.get('failures'), nf))
        CK.eq(nf.get('handshakes'), N if mode == 'keep-alive' else N * reqs,
              'c %s: TLS handshakes' % mode)
        print('c %s: %s keys/s, %s handshakes/s, p50 %s us, p99 %s us, server CPU %s s'
              % (mode, nf.get('keys_per_s'), nf.get('handshakes_per_s'),
                 (s.get('latency_us') or {}).get('p50'), (s.get('latency_us') or {}).get('p99'),
                 (s.get('io') or {}).get('server_cpu_s')), flush=True)

    rc, _ = kd.stop()
    CK.eq(rc, 0, 'keylined exit')
    bsf.send_signal(signal.SIGTERM)
    try:
        _, err = bsf.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        bsf.kill()
        err = ''
    CK.eq(bsf.returncode, 0, 'BSF exit (%s)' % (err or '')[-200:])


try:
    main()
finally:
    for p in LIVE:
        if isinstance(p, subprocess.Popen):
            if p.poll() is None:
                p.kill()
                p.wait()
        else:
            p.kill()
sys.exit(CK.done())

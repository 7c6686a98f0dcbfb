#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Zn client (control/diameter/kl_zn.c) against keyline-hss-sim's BSF role, over Diameter/TLS on loopback.

tests/zn_client runs keylined's Diameter stack as keylined starts it (kl_diameter_start, generated
configuration) with kl_zn on it. The MT side is computed here from the simulator's UE file:
CK, IK by `keyline-kdf milenage`, Ks_(ext)_NAF by this file's own HMAC-SHA-256 KDF (TS 33.220
annex B), cross-checked with `keyline-kdf ks-naf`. When tshark and dumpcap are installed, the
first part's Diameter/TLS traffic is captured (TLS keys from GnuTLS's SSLKEYLOGFILE) and tshark's
own Zn dissector must decode every BIR and BIA with no malformed field and the expected values.

usage: test_zn.py ZN_CLIENT KEYLINE_HSS_SIM KEYLINE_KDF
"""
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'diameter'))
sys.path.insert(0, HERE)
from kl_itest import Checks, kcv, sigstop  # noqa: E402
from kl_dtest import Pki, Kdf, free_port  # noqa: E402

CLIENT, SIM, KDF = sys.argv[1:4]
CORPUS = os.path.join(HERE, 'fuzz', 'corpus', 'znbia')  # gen_zn_corpus.py's seeds
CACHE = 2100
BSF = 'bsf.keyline.test'
ME = 'keylined.test'
TIMEOUT_MS = 1000
NAF = b'naf.keyline.test' + bytes([1, 0, 0, 0, 1])  # NAF FQDN || Ua security protocol id
CK = Checks('zn')
kdf = Kdf(KDF)


def ks_naf(ue, naf):
    """Ks_(ext)_NAF = KDF(CK||IK, 0x01, "gba-me", RAND, IMPI, NAF_Id): the MT side."""
    av = dict(x.split('=', 1) for x in kdf(
        'milenage', '--k', ue['k'], '--opc', ue['opc'], '--rand', ue['rand'], '--sqn',
        ue['sqn'], '--amf', ue['amf']).splitlines())
    ck, ik = av['f3_ck'], av['f4_ik']
    s = b'\x01'
    for p in (b'gba-me', bytes.fromhex(ue['rand']), ue['impi'].encode(), naf):
        s += p + len(p).to_bytes(2, 'big')
    key = hmac.new(bytes.fromhex(ck + ik), s, hashlib.sha256).digest()
    cli = kdf('ks-naf', '--ck', ck, '--ik', ik, '--rand', ue['rand'], '--impi', ue['impi'],
              '--naf-id', naf.hex())
    CK.eq(cli, key.hex(), 'keyline-kdf ks-naf equals the Python KDF for %s' % ue['impi'])
    return key


class Sim:
    def __init__(self, pki, work, port, tag, identity=BSF):
        self.ue_file = os.path.join(work, tag + '.ues')
        self.err_path = os.path.join(work, tag + '.err')
        self.bir_log = os.path.join(work, tag + '.birs')
        cert, key = pki.cred(identity)
        self.p = subprocess.Popen(
            [SIM, '--identity', identity, '--cert', cert, '--key', key, '--ca', pki.p('ca.pem'),
             '--listen', '127.0.0.1', 'bsf', '--port', str(port), '--ues', '8', '--runs', '2',
             '--seed', '0x5eed', '--ue-file', self.ue_file, '--ks-lifetime', '600',
             '--expired', '2', '--not-authorised', '3', '--bad-answer', 'no-key:4',
             '--bad-answer', 'short-key:5', '--bad-answer', 'no-expiry:6',
             '--bad-answer', 'dup-origin:7',
             '--bir-log', self.bir_log],
            stdout=subprocess.DEVNULL, stderr=open(self.err_path, 'w'))
        t0 = time.time()
        while not os.path.exists(self.ue_file) and time.time() - t0 < 30 and self.p.poll() is None:
            time.sleep(0.02)
        CK.check(os.path.exists(self.ue_file), 'the simulator wrote its UE file')
        CK.eq(os.stat(self.ue_file).st_mode & 0o777, 0o600, 'UE file mode 0600')
        with open(self.ue_file) as f:
            self.ues = [json.loads(x) for x in f]

    def ue(self, index, run=0):
        return next(u for u in self.ues if u['index'] == index and u['run'] == run)

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()


class Client:
    def __init__(self, pki, work, port, bsf_port, tag='client', env=None):
        cert, key = pki.cred(ME)
        self.err_path = os.path.join(work, tag + '.err')
        self.p = subprocess.Popen(
            [CLIENT, '--identity', ME, '--cert', cert, '--key', key, '--ca', pki.p('ca.pem'),
             '--port', str(port), '--bsf', BSF, '--bsf-address', '127.0.0.1',
             '--bsf-port', str(bsf_port), '--timeout-ms', str(TIMEOUT_MS),
             '--cache', str(CACHE)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.err_path, 'w'),
            text=True, env=env)
        self.out = []

    def cmd(self, line):
        self.p.stdin.write(line + '\n')
        self.p.stdin.flush()
        r = self.p.stdout.readline()
        self.out.append(r)
        if not r:
            raise RuntimeError('zn_client died on %r' % line)
        return json.loads(r)

    def get(self, btid, naf=NAF):
        return self.cmd('get %s %s' % (btid, naf.hex()))


def main():
    with tempfile.TemporaryDirectory(prefix='kl-zn-') as work:
        pki = Pki(work, leaves=(ME, BSF, 'other.test'))
        bsf_port = free_port()
        sim = Sim(pki, work, bsf_port, 'bsf1')
        cap = Capture(work, bsf_port) if shutil.which('tshark') and shutil.which('dumpcap') \
            else None
        env = dict(os.environ, SSLKEYLOGFILE=cap.keylog) if cap else None
        cl = Client(pki, work, free_port(), bsf_port, env=env)
        sims = [sim]
        try:
            run(pki, work, bsf_port, sim, cl, sims, cap)
            if cap:
                cap.check(sim)
            else:
                print('zn: no tshark/dumpcap: the capture check is skipped', flush=True)
        finally:
            if cap:
                cap.stop()
            for s in sims:
                if s.p.poll() is None:
                    s.p.kill()
                    s.p.wait()
            if cl.p.poll() is None:
                cl.p.kill()
    return CK.done()


class Capture:
    """dumpcap on the BSF's port; tshark decodes the TLS (SSLKEYLOGFILE) and then Zn."""

    def __init__(self, work, port):
        self.port = port
        self.pcap = os.path.join(work, 'zn.pcapng')
        self.keylog = os.path.join(work, 'keylog')
        self.p = subprocess.Popen(['dumpcap', '-q', '-i', 'lo', '-f', 'tcp port %d' % port,
                                   '-w', self.pcap], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        t0 = time.time()
        while not os.path.exists(self.pcap) and time.time() - t0 < 10:
            time.sleep(0.05)
        time.sleep(0.3)  # the filter is in place once the file is there; a margin anyway
        self.expect = []  # (B-TID, NAF_Id hex, result, expected tshark fields)

    def stop(self):
        if self.p.poll() is None:
            time.sleep(0.5)  # what the kernel captured reaches dumpcap's file
            self.p.send_signal(signal.SIGTERM)
            self.p.wait(timeout=10)

    def tshark(self, *args):
        r = subprocess.run(['tshark', '-n', '-r', self.pcap, '-o', 'tls.keylog_file:' + self.keylog,
                            '-d', 'tcp.port==%d,tls' % self.port,
                            '-d', 'tls.port==%d,diameter' % self.port,
                            '--disable-protocol', 'rdpmt'] + list(args),
                           capture_output=True, text=True, timeout=60)
        return r.stdout

    def check(self, sim):
        self.stop()
        bad = self.tshark('-Y', '_ws.malformed || _ws.expert.severity >= warning')
        CK.eq(bad.strip(), '', 'tshark: no malformed field or warning in the Zn capture')
        rows = [x.split('|') for x in self.tshark(
            '-Y', 'diameter.cmd.code == 310', '-T', 'fields', '-E', 'separator=|',
            '-e', 'diameter.flags.request', '-e', 'diameter.applicationId',
            '-e', 'diameter.Transaction-Identifier', '-e', 'diameter.NAF-Hostname',
            '-e', 'diameter.Result-Code', '-e', 'diameter.Experimental-Result-Code',
            '-e', 'diameter.User-Name', '-e', 'diameter.GBA-Type',
            '-e', 'diameter.ME-Key-Material', '-e', 'diameter.Key-ExpiryTime').splitlines()]
        if not rows:
            print('zn: capture %d bytes, keylog %d bytes; tshark says: %s' % (
                os.path.getsize(self.pcap), os.path.getsize(self.keylog) if
                os.path.exists(self.keylog) else -1, self.tshark()[-600:]), flush=True)
        req = [r for r in rows if r[0] in ('1', 'True')]
        ans = [r for r in rows if r[0] not in ('1', 'True')]
        CK.check(len(req) >= len(self.expect) and len(ans) == len(req),
                 'tshark: %d BIRs and %d BIAs decoded as Zn (want >= %d each)'
                 % (len(req), len(ans), len(self.expect)))
        CK.check(all(r[1] == '16777220' for r in rows), 'tshark: every 310 in application 16777220')
        for btid, naf, want in self.expect:
            tid = btid.encode().hex()
            hit = [i for i, r in enumerate(req) if r[2].replace(':', '') == tid and
                   r[3].replace(':', '') == naf]
            CK.check(hit, 'tshark: a BIR with Transaction-Identifier %s and the NAF-Id' % btid)
            if not hit or hit[0] >= len(ans):
                continue
            a = ans[hit[0]]
            CK.eq(tuple(a[4:6]) + (a[6], a[7], len(a[8].replace(':', '')) // 2 if a[8] else 0),
                  want, 'tshark: the BIA to %s' % btid)


def parse_seeds(cl):
    """kl_zn_parse_bia over the fuzz seeds (written from RFC 6733 / TS 29.109 by
    gen_zn_corpus.py, not by keyline's code): each one's status by its name."""
    want = {'ok': 'ok', 'ok-2g': 'ok', 'ok-unknown-avp': 'ok', 'ok-utf8-impi': 'ok',
            '5401': 'unknown', '5403': 'unknown', '5402': 'not_authorised',
            'expired': 'expired', 'rc-3002': 'unreachable'}
    names = sorted(x for x in os.listdir(CORPUS) if not x.startswith('found-'))
    CK.check(len(names) >= 20, 'the named Zn seeds are there (%d)' % len(names))
    for name in names:
        a = cl.cmd('parse %s 1800000000' % os.path.join(CORPUS, name))
        CK.eq(a['status'], want.get(name, 'bad_answer'), 'parse seed %s' % name)
        if a['status'] == 'ok':
            CK.eq(a['kcv'], kcv(bytes(range(32)))[:6].lower(), 'seed %s: the key' % name)


def bad_args(pki, work):
    """keyline-hss-sim bsf: argument errors exit 2 with one line, before anything listens."""
    cert, key = pki.cred(BSF)
    base = [SIM, '--identity', BSF, '--cert', cert, '--key', key, '--ca', pki.p('ca.pem'), 'bsf']
    ue = os.path.join(work, 'never.ues')
    for args, what in ((['--ues', '2', '--seed', '1', '--ue-file', ue], 'missing --port'),
                       (['--port', '1', '--ues', '2', '--seed', '1', '--ue-file', ue,
                         '--bad-answer', 'bogus:1'], 'an unknown bad-answer mode'),
                       (['--port', '1', '--ues', '2', '--seed', '1', '--ue-file', ue,
                         '--expired', '2'], 'a UE index out of range'),
                       (['--port', '1', '--ues', '2', '--seed', '1', '--ue-file', ue,
                         '--expired', '1', '--not-authorised', '1'], 'a UE in two lists'),
                       (['--port', '1', '--ues', '0', '--seed', '1', '--ue-file', ue], 'no UEs'),
                       (['--port', '1', '--ues', '2', '--seed', '1', '--ue-file', ue,
                         '--runs', '2', '--bogus', '1'], 'an unknown option')):
        r = subprocess.run(base + args, capture_output=True, text=True, timeout=30)
        CK.eq((r.returncode, len(r.stderr.splitlines())), (2, 1), 'bsf, %s: exit 2, one line'
              % what)
    CK.check(not os.path.exists(ue), 'bsf with bad arguments: no UE file')


def run(pki, work, bsf_port, sim, cl, sims, cap):
    parse_seeds(cl)
    bad_args(pki, work)
    o = cl.cmd('wait-open 20000')
    CK.eq(o['open'], 1, 'the Zn connection to the BSF opens (%d ms)' % o['ms'])
    print('zn: connection to the BSF open after %d ms' % o['ms'], flush=True)
    keys = []

    # keys equal the MT side's, for both runs of a UE and another UE; the answer's fields
    for idx, run_ in ((0, 0), (0, 1), (1, 0)):
        ue = sim.ue(idx, run_)
        key = ks_naf(ue, NAF)
        keys.append(key.hex())
        a = cl.get(ue['b_tid'])
        CK.eq(a['status'], 'ok', 'UE %d run %d: ok' % (idx, run_))
        CK.eq(a['result_code'], 2001, 'UE %d run %d: 2001' % (idx, run_))
        CK.eq(a['kcv'], kcv(key)[:6].lower(),
              'UE %d run %d: Ks_(ext)_NAF KCV = MT side' % (idx, run_))
        CK.eq(a['impi'], ue['impi'], 'UE %d: User-Name is the IMPI' % idx)
        CK.eq(a['expiry'], ue['expires'], 'UE %d: Key-ExpiryTime as in the UE file' % idx)
        CK.check(0 < a['created'] <= a['expiry'] - 600 + 1, 'BootstrapInfoCreationTime')
        CK.eq(a['gba_type'], 0, 'GBA-Type 3G GBA')
        CK.eq(a['cached'], 0, 'first request: not cached')
    # another NAF_Id: another key
    other = b'other-naf.keyline.test' + bytes([1, 0, 0, 0, 2])
    a = cl.get(sim.ue(0)['b_tid'], other)
    CK.eq(a['kcv'], kcv(ks_naf(sim.ue(0), other))[:6].lower(), 'another NAF_Id: its own key')

    # cache: the second request sends no BIR
    s0 = cl.cmd('stats')
    a = cl.get(sim.ue(0)['b_tid'])
    s1 = cl.cmd('stats')
    CK.eq((a['status'], a['cached'], a['kcv']), ('ok', 1, kcv(bytes.fromhex(keys[0]))[:6].lower()),
          'second request: from the cache, same key')
    CK.eq(s1['sent'], s0['sent'], 'cache hit: no BIR sent')
    CK.eq(s1['cache_hits'], s0['cache_hits'] + 1, 'cache hit counted')
    cl.cmd('forget ' + sim.ue(0)['b_tid'])
    a = cl.get(sim.ue(0)['b_tid'])
    CK.eq((a['status'], a['cached']), ('ok', 0), 'after forget: asked again')
    CK.eq(cl.cmd('stats')['sent'], s1['sent'] + 1, 'after forget: one BIR')
    a = cl.get(sim.ue(0)['b_tid'], other)
    CK.eq((a['status'], a['cached']), ('ok', 0), 'after forget: every NAF_Id of the B-TID gone')
    a = cl.get(sim.ue(1)['b_tid'])
    CK.eq((a['status'], a['cached']), ('ok', 1), 'after forget: another B-TID still cached')

    # refusals and bad answers
    unknown = 'AAAAAAAAAAAAAAAAAAAAAA==@' + BSF
    a = cl.get(unknown)
    CK.eq((a['status'], a['result_code']), ('unknown', 5401), 'unknown B-TID: 5401 -> unknown')
    a = cl.get(sim.ue(3)['b_tid'])
    CK.eq((a['status'], a['result_code']), ('not_authorised', 5402), 'UE 3: 5402')
    a = cl.get(sim.ue(2)['b_tid'])
    CK.eq(a['status'], 'expired', 'UE 2: Key-ExpiryTime in the past -> expired')
    CK.eq(a['kcv'], '000000', 'expired: no key')
    s0 = cl.cmd('stats')
    for idx, mode in ((4, 'no-key'), (5, 'short-key'), (6, 'no-expiry')):
        a = cl.get(sim.ue(idx)['b_tid'])
        CK.eq((a['status'], a['result_code'], a['kcv']), ('bad_answer', 2001, '000000'),
              'bad answer %s -> bad_answer, no key' % mode)
    s1 = cl.cmd('stats')
    CK.eq(s1['by_status']['bad_answer'] - s0['by_status']['bad_answer'], 3,
          'three bad answers counted')
    a = cl.get(sim.ue(4)['b_tid'])
    CK.eq(cl.cmd('stats')['sent'], s1['sent'] + 1, 'a bad answer is not cached')
    # a BIA freeDiameter's own parser refuses (Origin-Host twice: the command's rule) is
    # dropped before any callback: the drop hook makes it a bad answer, not a timeout
    a = cl.get(sim.ue(7)['b_tid'])
    CK.eq((a['status'], a['kcv']), ('bad_answer', '000000'),
          'a BIA freeDiameter cannot parse (dup-origin) -> bad_answer, no key')
    CK.check(a['us'] < TIMEOUT_MS * 1000 / 2, 'at once (%d us), not at the %d ms timeout'
             % (a['us'], TIMEOUT_MS))
    a = cl.get('x' * 300)
    CK.eq(a['status'], 'unknown', 'a B-TID longer than 255 bytes: unknown, nothing sent')

    if cap:
        ue0, ue1 = sim.ue(0), sim.ue(1)
        cap.expect = [(ue0['b_tid'], NAF.hex(), ('2001', '', ue0['impi'], '0', 32)),
                      (unknown, NAF.hex(), ('', '5401', '', '', 0)),
                      (sim.ue(3)['b_tid'], NAF.hex(), ('', '5402', '', '', 0)),
                      (sim.ue(5)['b_tid'], NAF.hex(), ('2001', '', sim.ue(5)['impi'], '0', 16))]
        cap.stop()  # the first part's traffic is enough: keep the capture small

    # cold and cache-hit latency
    b = cl.cmd('bench %s 2000' % sim.ue(1)['b_tid'])
    CK.eq((b['ok'], b['cache_hits']), (4000, 2000), 'bench: 2000 cold + 2000 cached, all ok')
    print('zn bench: BIR round trip p50 %d us p99 %d us max %d us (2000 cold); cache hit p50 %d us '
          'p99 %d us' % (b['cold_p50_us'], b['cold_p99_us'], b['cold_max_us'], b['hit_p50_us'],
                         b['hit_p99_us']), flush=True)
    # concurrent callers (the Key Center's HTTPS threads): 8 threads, each 300 cold + 300 cached
    # (2400 new pairs overflow the cache of CACHE entries: it stays bounded)
    p = cl.cmd('par %s 8 300' % sim.ue(1)['b_tid'])
    CK.eq((p['threads'], p['ok']), (8, 4800), '8 concurrent callers: all ok')
    print('zn: 8 threads: %d answers (%d from the cache) in %.2f s: %.0f/s'
          % (p['ok'], p['cached'], p['seconds'], p['per_s']), flush=True)
    # concurrent misses of one pair (N devices of one B-TID): one BIR, the others wait for it
    naf_c = b'coalesce.keyline.test' + bytes.fromhex('0100000002')
    btid = sim.ue(1)['b_tid']
    s0 = cl.cmd('stats')
    r = cl.cmd('same %s %s 16' % (btid, naf_c.hex()))
    s1 = cl.cmd('stats')
    CK.eq((r.get('ok'), r.get('same_kcv')), (16, 1), '16 concurrent misses: all ok, one key')
    CK.eq(s1['sent'] - s0['sent'], 1, '16 concurrent misses of one pair: one BIR sent')
    CK.eq(s1['coalesced'] - s0['coalesced'] + s1['cache_hits'] - s0['cache_hits'], 15,
          'the 15 others waited for it (%d coalesced) or came after it (cache)'
          % (s1['coalesced'] - s0['coalesced']))
    CK.check(s1['coalesced'] > s0['coalesced'], 'some waited for the BIR in flight')
    with open(sim.bir_log) as f:
        seen = [x for x in f if x.split()[:2] == [btid, naf_c.hex()]]
    CK.eq(len(seen), 1, 'the BSF saw one BIR for the pair (--bir-log)')
    st = cl.cmd('stats')
    CK.eq(st['cache_size'], CACHE, 'the cache stays at its bound')
    # the earliest expiry, then the oldest entry went first: UE 0's first answer is gone
    a = cl.get(sim.ue(0)['b_tid'])
    CK.eq((a['status'], a['cached']), ('ok', 0), 'the oldest entry was evicted, asked again')
    CK.eq(sum(st['latency']), st['answered'], 'latency histogram: one count per answer')

    # the BSF stopped (SIGSTOP: connected, silent): unreachable after timeout_ms, not later;
    # the late answers after SIGCONT are counted and dropped
    sigstop(sim.p.pid)
    s0 = cl.cmd('stats')
    t0 = time.time()
    a = cl.get(sim.ue(1)['b_tid'], b'silent')
    dt = time.time() - t0
    print('zn: silent BSF: unreachable after %.0f ms (timeout %d ms)' % (dt * 1000, TIMEOUT_MS),
          flush=True)
    CK.eq(a['status'], 'unreachable', 'silent BSF: unreachable')
    CK.check(TIMEOUT_MS / 1000 - 0.05 <= dt < TIMEOUT_MS / 1000 + 0.5,
             'silent BSF: answered after the timeout, bounded (%.0f ms)' % (dt * 1000))
    sim.p.send_signal(signal.SIGCONT)
    a = cl.get(sim.ue(1)['b_tid'], b'silent')
    CK.eq(a['status'], 'ok', 'BSF continued: ok again')
    s1 = cl.cmd('stats')
    CK.eq(s1['by_status']['unreachable'] - s0['by_status']['unreachable'], 1,
          'silent BSF: one unreachable counted')

    # the BSF killed: unreachable within the timeout, bounded
    sim.p.send_signal(signal.SIGKILL)
    sim.p.wait()
    worst = 0
    t_end = time.time() + 1.5
    n = 0
    while time.time() < t_end:
        t0 = time.time()
        a = cl.get(sim.ue(1)['b_tid'], b'down-%d' % n)
        dt = time.time() - t0
        worst = max(worst, dt)
        n += 1
        CK.check(a['status'] in ('unreachable',), 'BSF down: %s' % a['status'])
        time.sleep(0.05)
    print('zn: BSF down: %d requests, slowest answer %.0f ms (timeout %d ms)'
          % (n, worst * 1000, TIMEOUT_MS), flush=True)
    CK.check(worst < TIMEOUT_MS / 1000 + 0.5, 'BSF down: every request answered within the '
             'timeout (+0.5 s): slowest %.0f ms' % (worst * 1000))
    CK.eq(cl.cmd('stats')['bsf_open'], 0, 'BSF down: not open')
    a = cl.get(sim.ue(0)['b_tid'])
    CK.eq((a['status'], a['cached']), ('ok', 1), 'BSF down: cached answers still served')

    # the BSF restarted: ok again
    sim2 = Sim(pki, work, bsf_port, 'bsf2')
    sims.append(sim2)
    t0 = time.time()
    o = cl.cmd('wait-open 20000')
    CK.eq(o['open'], 1, 'BSF restarted: the connection reopens (%.1f s)' % (time.time() - t0))
    print('zn: BSF restarted: open again after %.1f s' % (time.time() - t0), flush=True)
    ue = sim2.ue(1, 1)
    a = cl.get(ue['b_tid'], b'after-restart')
    CK.eq((a['status'], a['kcv']), ('ok', kcv(ks_naf(ue, b'after-restart'))[:6].lower()),
          'BSF restarted: ok, key = MT side')

    # kl_zn_stop while a call waits on a silent BSF: the call returns unreachable at once, and
    # the stop waits for the request's expiry (its callback uses the client), then ends
    sigstop(sim2.p.pid)
    o = cl.cmd('stop-pending ' + ue['b_tid'])
    print('zn: stop with a call pending: the call returned after %d ms, the stop took %d ms'
          % (o['get_ms'], o['stop_ms']), flush=True)
    CK.eq(o['status'], 'unreachable', 'stop with a call pending: the call gets unreachable')
    CK.check(o['get_ms'] < 200 + 300, 'stop with a call pending: the call returns at once')
    CK.check(o['stop_ms'] < TIMEOUT_MS + 2500, 'stop with a call pending: the stop is bounded')
    sim2.p.send_signal(signal.SIGCONT)

    # orderly ends; no key bytes anywhere in the outputs
    cl.p.stdin.close()
    CK.eq(cl.p.wait(timeout=30), 0, 'zn_client exits 0')
    sim2.p.send_signal(signal.SIGTERM)
    CK.eq(sim2.p.wait(timeout=30), 0, 'the BSF exits 0 on SIGTERM')
    CK.check(re.search(r'bsf: ok [12] unknown 0 not_authorised 0 expired 0 bad_answer 0 '
                       r'missing_avp 0', sim2.stderr()), 'the BSF prints its counters at exit')
    with open(cl.err_path) as f:
        text = ''.join(cl.out) + f.read() + sim.stderr() + sim2.stderr()
    CK.check(not any(k in text.lower() for k in keys), 'no key bytes in any output')
    CK.check('Sanitizer' not in text, 'no sanitizer report%s' % ('' if 'Sanitizer' not in text else ':\n' + text[text.find('==ERROR') - 200:][:6000]))

    # a BSF peer that is another identity (certificate and Origin-Host other.test, same CA)
    # never opens: nothing is sent to it
    port = free_port()
    rogue = Sim(pki, work, port, 'rogue', identity='other.test')
    sims.append(rogue)
    cl2 = Client(pki, work, free_port(), port, tag='client2')
    o = cl2.cmd('wait-open 3000')
    CK.eq(o['open'], 0, 'BSF with another identity: never open')
    a = cl2.get(rogue.ue(0)['b_tid'])
    CK.eq(a['status'], 'unreachable', 'BSF with another identity: unreachable')
    CK.eq(cl2.cmd('stats')['sent'], 0, 'BSF with another identity: no BIR sent')
    cl2.p.stdin.close()
    CK.eq(cl2.p.wait(timeout=30), 0, 'second zn_client exits 0')


if __name__ == '__main__':
    sys.exit(main())

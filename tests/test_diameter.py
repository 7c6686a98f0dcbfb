# SPDX-License-Identifier: BSD-3-Clause
"""keyline's HSS-side Diameter feed end to end, over Diameter/TLS on loopback.

diameter_testd runs kl_diameter's server with recording handlers (standing in for keylined);
keyline-hss-sim is the HSS/BSF peer; a raw Diameter client with its own codec
(diameter/kl_diameter_raw.py) sends what a correct stack never would. Certificates come from the
openssl CLI at test time: a CA, a second CA nobody trusts, and leaf certificates.

usage: test_diameter.py DIAMETER_TESTD KEYLINE_HSS_SIM KEYLINE_KDF GROUP
GROUP: sim (derivations, every entry type, removes, commit ordering, failures), malformed (error
answers, the server stays up), tls (refused peers, allow list, configured ids), bulk (pushes/s,
busy server, acknowledged pushes survive a killed server; freeDiameter's TLS sends took the
workaround's serialised path), confine (HTTPS clients of a libmicrohttpd+GnuTLS daemon in the
same process as freeDiameter and the GnuTLS interposers, during a bulk push: their sessions pass
straight through, freeDiameter's are serialised).
"""
import hashlib
import hmac
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'diameter'))
from kl_itest import Checks, kcv  # noqa: E402
import kl_diameter_raw as dr  # noqa: E402
from kl_dtest import (Pki, Kdf, SET1, SET2, av_args, free_port, read_lines,  # noqa: E402
                      run)

TESTD, SIM, KDF, GROUP = sys.argv[1:5]

CK = Checks('diameter-' + GROUP)
SERVER = 'keylined.test'

kdf = Kdf(KDF)
kcv_of = lambda hexkey: kcv(bytes.fromhex(hexkey)).lower()  # computed here, not by keyline-kdf
ckik = kdf.ckik


# ---- certificates ------------------------------------------------------------------------------

def make_pki(d):
    return Pki(d, leaves=(SERVER, 'hss.test', 'raw.test'), rogue=(('rogue-hss', 'hss.test'),))


# ---- processes ---------------------------------------------------------------------------------

LIVE = []  # children to kill if a check raises


class Testd:
    """diameter_testd as a child; stdout read by a thread (JSON commit lines), stderr to a file."""

    def __init__(self, pki, work, port, extra=(), tag='testd'):
        self.port = port
        self.err_path = os.path.join(work, tag + '.err')
        self.err = open(self.err_path, 'w')
        cert, key = pki.cred(SERVER)
        self.cmd = [TESTD, '--identity', SERVER, '--listen', '127.0.0.1', '--port', str(port),
                    '--cert', cert, '--key', key, '--ca', pki.p('ca.pem')] + list(extra)
        self.p = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.err, text=True)
        LIVE.append(self.p)
        self.lines = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        if not self.ready.wait(20):
            self.kill()
            raise RuntimeError('diameter_testd did not become ready:\n' + self.stderr())

    def _read(self):
        for line in self.p.stdout:
            with self.lock:
                self.lines.append(line.rstrip('\n'))
            if line.strip() == 'diameter_testd: ready':
                self.ready.set()

    def events(self, kind='commit'):
        out = []
        with self.lock:
            lines = list(self.lines)
        for line in lines:
            if line.startswith('{'):
                o = json.loads(line)
                if o.get('event') == kind:
                    out.append(o)
        return out

    def wait_events(self, n, timeout=5):
        end = time.time() + timeout
        while time.time() < end:
            if len(self.events()) >= n:
                break
            time.sleep(0.02)
        return self.events()

    def stderr(self):
        self.err.flush()
        with open(self.err_path, errors='replace') as f:
            return f.read()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError('diameter_testd did not stop within 30 s')
        self.t.join(5)
        self.err.close()
        st = self.events('stats')
        return self.p.returncode, (st[0] if st else None)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def sim_base(pki, port, who='hss.test', extra=()):
    cert, key = pki.cred(who)
    return [SIM, '--identity', 'hss.test', '--cert', cert, '--key', key, '--ca',
            pki.p('ca.pem'), '--listen', '127.0.0.1', '--peer', '%s@127.0.0.1:%d' % (SERVER, port),
            '--timeout-ms', '5000'] + list(extra)


SIM_OUT = []  # everything the simulator printed, to look for key bytes


def sim(base, *args, timeout=60):
    r = run(base + list(args), timeout=timeout)
    SIM_OUT.append(r.stdout + r.stderr)
    out = [json.loads(x) for x in r.stdout.splitlines() if x.startswith('{')]
    return r.returncode, (out[-1] if out else None), r.stderr


def no_key_bytes(text, keys, what):
    """None of the keys, as hex in either case, shows in text."""
    for k in keys:
        CK.check(k.lower() not in text.lower(), '%s holds key bytes %s...' % (what, k[:8]))


# ---- groups ------------------------------------------------------------------------------------

def group_sim(pki, work):
    port = free_port()
    d = Testd(pki, work, port)
    base = sim_base(pki, port)
    secrets = [SET1['k'], SET1['opc'], SET2['k'], SET2['op']]

    # e2m_int_key from TS 35.208 set 1: KCV and key id as keyline-kdf derives them
    ck, ik = ckik(SET1)
    e2m_hex = kdf('e2m-int-key', '--ck', ck, '--ik', ik)
    secrets += [ck, ik, e2m_hex]
    want_kcv, want_kid = kcv_of(e2m_hex), kdf('e2m-key-id', '--rand', SET1['rand'])
    rc, o, err = sim(base, 'push-e2m', *av_args(SET1), '--imsi', '001010000000001',
                     '--expires', '2000000000')
    CK.eq(rc, 0, 'push-e2m exit status (%s)' % err.strip()[-300:])
    CK.eq((o or {}).get('result'), 2001, 'push-e2m Result-Code')
    CK.eq((o or {}).get('kcv'), want_kcv, 'push-e2m: the KCV the simulator derived')
    CK.eq((o or {}).get('key_id'), want_kid, 'push-e2m: key id = 32 LSBs of RAND')
    ev = d.wait_events(1)
    e = ev[0] if ev else {}
    CK.eq((e.get('type'), e.get('imsi'), e.get('key_id'), e.get('kcv'), e.get('expires')),
          ('e2m', '001010000000001', want_kid, want_kcv, 2000000000),
          'server recorded the e2m_int_key keyline-kdf derives (KCV, key id, expiry)')

    # MUK = Ks_(ext)_NAF (set 2, OP given): MBMS NAF_Id from the BM-SC FQDN; pushed for the B-TID
    ck2, ik2 = ckik(SET2)
    secrets += [ck2, ik2]
    muk_hex = kdf('ks-naf', '--ck', ck2, '--ik', ik2, '--rand', SET2['rand'],
                  '--impi', 'user2@ims.mnc001.mcc001.3gppnetwork.org',
                  '--bmsc-fqdn', 'bmsc.example.org')
    secrets.append(muk_hex)
    muk_kcv = kcv_of(muk_hex)
    rc, o, err = sim(base, 'push-muk', *av_args(SET2), '--impi',
                     'user2@ims.mnc001.mcc001.3gppnetwork.org', '--bmsc-fqdn', 'bmsc.example.org',
                     '--btid', 'btid2@bsf.example.org', '--expires', '1900000000')
    CK.eq((rc, (o or {}).get('result')), (0, 2001), 'push-muk (%s)' % err.strip()[-200:])
    CK.eq((o or {}).get('kcv'), muk_kcv, 'push-muk: KCV of keyline-kdf ks-naf --bmsc-fqdn')
    # and with a raw NAF_Id, for the IMPI itself
    naf = 'naf.example.org'.encode().hex() + '0100000002'
    muk2_hex = kdf('ks-naf', '--ck', ck, '--ik', ik, '--rand', SET1['rand'],
                   '--impi', 'user1@example.org', '--naf-id', naf)
    secrets.append(muk2_hex)
    muk2_kcv = kcv_of(muk2_hex)
    rc, o, err = sim(base, 'push-muk', *av_args(SET1), '--impi', 'user1@example.org',
                     '--naf-id', naf)
    CK.eq(((o or {}).get('result'), (o or {}).get('kcv')), (2001, muk2_kcv),
          'push-muk with --naf-id')

    rc, o, _ = sim(base, 'put-appid', '--appid', 'sensor-17@iot.example', '--imsi',
                   '001010000000001')
    CK.eq((o or {}).get('result'), 2001, 'put-appid')
    psk = '00112233445566778899aabbccddeeff' * 2
    secrets.append(psk)
    pskf = os.path.join(work, 'emse.psk')
    with open(pskf, 'w') as f:
        f.write(psk + '\n')
    rc, o, _ = sim(base, 'put-emse', '--emse-id', 'emse-1.example', '--psk-file', pskf)
    CK.eq(((o or {}).get('result'), (o or {}).get('kcv')), (2001, kcv_of(psk)), 'put-emse')
    rc, o, _ = sim(base, 'put-ue-groups', '--id', 'btid2@bsf.example.org', '--group',
                   '00f110:1', '--group', '00f110:65535')
    CK.eq((o or {}).get('result'), 2001, 'put-ue-groups')

    ev = d.wait_events(6)
    by = {e['type']: e for e in ev}
    muks = [(m['id'], m['kcv'], m['expires']) for m in ev if m['type'] == 'muk']
    CK.eq(muks, [('btid2@bsf.example.org', muk_kcv, 1900000000),
                 ('user1@example.org', muk2_kcv, 0)],
          'server recorded the MUKs: for the B-TID, then for the IMPI')
    CK.eq((by.get('appid', {}).get('id'), by.get('appid', {}).get('imsi')),
          ('sensor-17@iot.example', '001010000000001'), 'server recorded the appid mapping')
    CK.eq((by.get('emse', {}).get('kcv'), by.get('emse', {}).get('key_len')), (kcv_of(psk), 32),
          'server recorded the EMSE PSK')
    CK.eq(by.get('ue-groups', {}).get('groups'), ['00f110:1', '00f110:65535'],
          'server recorded the key groups')

    # removes of present entries, and of an absent one (success, nothing committed)
    for args in (['--type', 'e2m', '--imsi', '001010000000001', '--key-id', want_kid],
                 ['--type', 'muk', '--id', 'btid2@bsf.example.org'],
                 ['--type', 'appid', '--id', 'sensor-17@iot.example'],
                 ['--type', 'emse', '--id', 'emse-1.example'],
                 ['--type', 'ue-groups', '--id', 'btid2@bsf.example.org']):
        rc, o, err = sim(base, 'remove', *args)
        CK.eq((rc, (o or {}).get('result')), (0, 2001), 'remove %s (%s)' % (args[1], err[-200:]))
    ev = d.wait_events(11)
    rem = [e for e in ev if e['op'] == 'remove']
    CK.eq(sorted(e['type'] for e in rem), ['appid', 'e2m', 'emse', 'muk', 'ue-groups'],
          'every remove was committed')
    CK.check(all(e['found'] for e in rem), 'every removed entry was present')
    CK.eq(rem[0].get('key_id') if rem else None, want_kid, 'remove e2m carried the key id')
    n = len(d.events())
    rc, o, _ = sim(base, 'remove', '--type', 'muk', '--id', 'nobody@example.org')
    CK.eq((rc, (o or {}).get('result')), (0, 2001), 'remove of an absent entry is a success')
    time.sleep(0.2)
    CK.eq(len(d.events()), n, 'nothing committed for the absent entry')

    # a pair key K(keylined, peer server) and a UE's services (KL-Peer-Identity, KL-Services)
    pk = '5a0f' * 16
    secrets.append(pk)
    pkf = os.path.join(work, 'pair.key')
    with open(pkf, 'w') as f:
        f.write(pk + '\n')
    rc, o, err = sim(base, 'put-pair', '--peer-id', 'vlr-1.example', '--key-file', pkf,
                     '--expires', '2000000000')
    CK.eq((rc, (o or {}).get('result'), (o or {}).get('kcv'), (o or {}).get('id')),
          (0, 2001, kcv_of(pk), 'vlr-1.example'), 'put-pair (%s)' % err.strip()[-200:])
    rc, o, _ = sim(base, 'push-muk', *av_args(SET1), '--impi', 'user1@example.org',
                   '--naf-id', naf, '--services', 'mbms,hm')
    CK.eq((o or {}).get('result'), 2001, 'push-muk --services')
    rc, o, _ = sim(base, 'remove', '--type', 'pair', '--id', 'vlr-1.example')
    CK.eq((o or {}).get('result'), 2001, 'remove --type pair')
    new = d.wait_events(n + 3)[n:]
    CK.eq([(e.get('op'), e.get('type')) for e in new],
          [('push', 'pair'), ('push', 'muk'), ('remove', 'pair')], 'pair and services events')
    if len(new) == 3:
        CK.eq((new[0].get('id'), new[0].get('kcv'), new[0].get('key_len'),
               new[0].get('expires')), ('vlr-1.example', kcv_of(pk), 32, 2000000000),
              'server recorded the pair key (peer, KCV, length, expiry)')
        CK.eq((new[1].get('services'), new[2].get('id'), new[2].get('found')),
              (3, 'vlr-1.example', True), 'KL-Services mbms|hm; the pair key removed')

    # bad arguments: exit 2 with one line, before any connection
    for args in (['push-e2m', '--k', 'zz'], ['push-e2m', *av_args(SET1)],
                 ['put-appid', '--appid', 'x', '--imsi', '12ab'], ['frobnicate'],
                 ['put-ue-groups', '--id', 'u', '--group', '00f1:1'],
                 ['remove', '--type', 'nope', '--id', 'x'],
                 ['push-e2m', *av_args(SET1), '--imsi', '1', '--bogus', '1'],
                 ['put-pair', '--peer-id', 'vlr-2.example'],
                 ['push-muk', *av_args(SET1), '--impi', 'u', '--naf-id', naf,
                  '--services', 'mbms,tea'],
                 ['push-e2m', SET1['k']]):  # a key without its option: not echoed
        rc, o, err = sim(base, *args)
        CK.eq(rc, 2, 'bad arguments %s exit 2' % args[:1])
        CK.check(len(err.strip().splitlines()) == 1 and 'keyline-hss-sim' in err,
                 'bad arguments %s: one clear line, got %r' % (args[:1], err[-300:]))
    out = d.stderr()
    no_key_bytes(out + '\n'.join(d.lines), secrets, 'testd output')
    no_key_bytes('\n'.join(SIM_OUT), secrets, 'simulator output')
    rc, st = d.stop()
    CK.eq(rc, 0, 'testd exit status')
    CK.eq((st or {}).get('ok'), 15, 'testd answered 15 successes')

    # answers wait for the commit: a 400 ms commit, with and without the commit callback
    for mode in ([], ['--no-commit']):
        port = free_port()
        d = Testd(pki, work, port, ['--delay-ms', '400'] + mode, tag='slow')
        rc, o, _ = sim(sim_base(pki, port), 'push-e2m', *av_args(SET1), '--imsi', '7')
        el = (o or {}).get('elapsed_ms', 0)
        CK.check(rc == 0 and el >= 400, 'answer waited for the 400 ms commit %s (%.0f ms)'
                 % (mode, el))
        CK.eq(len(d.events()), 1, 'the change was durable before the answer %s' % mode)
        d.stop()

    # a handler that fails, a commit that fails: DIAMETER_UNABLE_TO_COMPLY, nothing recorded
    port = free_port()
    d = Testd(pki, work, port, ['--fail-imsi', '999', '--fail-commit-imsi', '888'], tag='fail')
    b = sim_base(pki, port)
    for imsi, want in (('999', 5012), ('888', 5012), ('777', 2001)):
        rc, o, _ = sim(b, 'push-e2m', *av_args(SET1), '--imsi', imsi)
        CK.eq(((o or {}).get('result'), rc), (want, 0 if want == 2001 else 1),
              'push for IMSI %s answered %d' % (imsi, want))
    CK.eq([e['imsi'] for e in d.wait_events(1)], ['777'], 'only the successful push committed')
    CK.check('failed: the key store refused' in d.stderr() and
             'the key store commit failed' in d.stderr(), 'both failures logged')
    d.stop()

    # nobody listening: exit 3 after the timeout
    rc, o, err = sim(sim_base(pki, free_port())[:-1] + ['2000'], 'put-appid', '--appid', 'a',
                     '--imsi', '1')
    CK.eq(rc, 3, 'no server: exit 3 (%s)' % err.strip()[-200:])


def reconnect(port, ca, cert, key, origin):
    """A new connection of the same identity: freeDiameter may still be tearing the old one
    down (slow under sanitizers), so a CER without an answer is tried again a few times."""
    for attempt in range(6):
        try:
            return dr.RawClient(port, ca, cert, key, origin, timeout=3)
        except (ConnectionError, OSError) as e:
            last = e
            time.sleep(0.5)
    raise RuntimeError('no CEA after 6 connection attempts: %s' % last)


def group_malformed(pki, work):
    port = free_port()
    d = Testd(pki, work, port)
    cert, key = pki.cred('raw.test')
    ca = pki.p('ca.pem')
    c = dr.RawClient(port, ca, cert, key, 'raw.test')
    CK.eq(c.cea.result, 2001, 'raw client: CEA')
    key32 = bytes(range(32))
    kl = c.kl
    e2m = [kl(dr.KL_ENTRY_TYPE, dr.u32(dr.T_E2M)), kl(dr.KL_IMSI, '001019999'),
           kl(dr.KL_KEY_ID, dr.u32(0x1234abcd)), kl(dr.KL_KEY, key32)]
    a = c.request(e2m)
    CK.eq(a.result, 2001, 'raw: valid e2m push')
    ev = d.wait_events(1)
    want = hmac.new(key32, bytes(16), hashlib.sha256).hexdigest()[:6]
    CK.eq([(e['imsi'], e['key_id'], e['kcv']) for e in ev], [('001019999', '1234abcd', want)],
          'raw push recorded with KCV = HMAC-SHA-256(key, 0^128)[:3]')

    grp = lambda dom, gid: kl(dr.KL_MBMS_KEY_GROUP,  # noqa: E731
                              (kl(dr.KL_KEY_DOMAIN_ID, dom) if dom is not None else b'') +
                              (kl(dr.KL_KEY_GROUP_ID, dr.u32(gid)) if gid is not None else b''))
    ue = [kl(dr.KL_ENTRY_TYPE, dr.u32(dr.T_UE_GROUPS)), kl(dr.KL_USER_IDENTITY, 'u@x')]
    muk = [kl(dr.KL_ENTRY_TYPE, dr.u32(dr.T_MUK)), kl(dr.KL_USER_IDENTITY, 'u@x'),
           kl(dr.KL_KEY, key32)]
    # (what, request kwargs, Result-Code, AVP code in Failed-AVP or None, E bit)
    cases = [
        ('no entry type', dict(avps=e2m[1:]), 5005, 1001, False),
        ('e2m push without key', dict(avps=e2m[:3]), 5005, 1004, False),
        ('e2m key of 16 bytes', dict(avps=e2m[:3] + [kl(dr.KL_KEY, key32[:16])]), 5014, 1004,
         False),
        ('MUK of 8 bytes', dict(avps=muk[:2] + [kl(dr.KL_KEY, key32[:8])]), 5014, 1004, False),
        ('unknown AVP with the M bit', dict(avps=e2m + [kl(1999, b'abcd')]), 5001, 1999, False),
        ('Key-Id of 5 bytes', dict(avps=e2m[:2] + [kl(dr.KL_KEY_ID, b'12345'), e2m[3]]), 5014,
         1005, False),
        ('IMSI with a letter', dict(avps=[e2m[0], kl(dr.KL_IMSI, '0010a'), e2m[2], e2m[3]]),
         5004, 1003, False),
        ('IMSI of 16 digits', dict(avps=[e2m[0], kl(dr.KL_IMSI, '0' * 16), e2m[2], e2m[3]]),
         5004, 1003, False),
        ('entry type 99', dict(avps=[kl(dr.KL_ENTRY_TYPE, dr.u32(99))] + e2m[1:]), 5004, 1001,
         False),
        ('key in a remove', dict(avps=e2m, cmd=dr.CMD_REMOVE), 5008, 1004, False),
        ('EMSE-Id in an e2m push', dict(avps=e2m + [kl(dr.KL_EMSE_ID, 'x')]), 5008, 1008, False),
        ('IMSI twice', dict(avps=e2m + [kl(dr.KL_IMSI, '1')]), 5009, 1003, False),
        ('identity not UTF-8', dict(avps=[muk[0], kl(dr.KL_USER_IDENTITY, b'\xc0\xaf'), muk[2]]),
         5004, 1002, False),
        ('identity of 129 bytes', dict(avps=[muk[0], kl(dr.KL_USER_IDENTITY, 'u' * 129), muk[2]]),
         5004, 1002, False),
        ('Key-Domain-Id of 2 bytes', dict(avps=ue + [grp(b'\x00\xf1', 1)]), 5014, 1009, False),
        ('Key-Group-Id 70000', dict(avps=ue + [grp(b'\x00\xf1\x10', 70000)]), 5004, 1009, False),
        ('key group without its id', dict(avps=ue + [grp(b'\x00\xf1\x10', None)]), 5005, 1011,
         False),
        ('5 key groups', dict(avps=ue + [grp(b'\x00\xf1\x10', i) for i in range(5)]), 5009,
         1009, False),
        ('Expiry of 3 bytes', dict(avps=e2m + [kl(dr.KL_EXPIRY, b'abc')]), 5014, 1006, False),
        ('Services 0', dict(avps=muk + [kl(dr.KL_SERVICES, dr.u32(0))]), 5004, 1013, False),
        ('Services 16', dict(avps=muk + [kl(dr.KL_SERVICES, dr.u32(16))]), 5004, 1013, False),
        ('Services in a UE-GROUPS push', dict(avps=ue + [kl(dr.KL_SERVICES, dr.u32(1))]), 5008,
         1013, False),
        ('pair push without key', dict(avps=[kl(dr.KL_ENTRY_TYPE, dr.u32(dr.T_PAIR)),
                                             kl(dr.KL_PEER_IDENTITY, 'vlr-1')]), 5005, 1004,
         False),
        ('pair key of 8 bytes', dict(avps=[kl(dr.KL_ENTRY_TYPE, dr.u32(dr.T_PAIR)),
                                           kl(dr.KL_PEER_IDENTITY, 'vlr-1'),
                                           kl(dr.KL_KEY, key32[:8])]), 5014, 1004, False),
        ('Peer-Identity in a MUK push', dict(avps=muk + [kl(dr.KL_PEER_IDENTITY, 'v')]), 5008,
         1012, False),
        ('no Session-Id', dict(avps=e2m, session=False), 5005, 263, False),
        ('no Vendor-Specific-Application-Id', dict(avps=e2m, vsai=False), 5005, 260, False),
        ('unknown command', dict(avps=e2m, cmd=8388999), 3001, None, True),
        ('other application', dict(avps=e2m, app=16777998), 3007, None, True),
        ('no Destination-Realm', dict(avps=e2m, dest_realm=False), 3001, None, True),
    ]
    for what, kw, rc, fa, ebit in cases:
        a = c.request(**kw)
        CK.eq(a.result, rc, 'raw: %s: Result-Code' % what)
        CK.eq(bool(a.flags & dr.FLAG_E), ebit, 'raw: %s: E bit' % what)
        f = a.failed()
        if fa is not None:
            CK.eq(f[0][0] if f else None, fa, 'raw: %s: Failed-AVP names AVP %d' % (what, fa))
        for code, _, _, data in f:
            if code == dr.KL_KEY:
                CK.check(data == bytes(len(data)), 'raw: %s: Failed-AVP key data zeroed' % what)
    # an unknown AVP without the M bit is ignored; a remove of an absent entry is a success
    CK.eq(c.request(e2m + [kl(1999, b'abcd', mandatory=False)]).result, 2001,
          'raw: unknown AVP without the M bit ignored')
    CK.eq(c.request([muk[0], muk[1]], cmd=dr.CMD_REMOVE).result, 2001, 'raw: remove absent')

    # garbage on the connection: freeDiameter closes it; the server keeps serving
    for what, blob in (
            ('truncated AVP', dr.message(dr.CMD_PUSH, c.app, dr.FLAG_R | dr.FLAG_P,
                                         c.base_avps() + e2m[:3] + [kl(dr.KL_KEY, key32)[:-8]],
                                         900, 900)),
            ('Diameter version 2', dr.message(dr.CMD_PUSH, c.app, dr.FLAG_R, c.base_avps() + e2m,
                                              901, 901, version=2)),
            ('message length 12', b'\x01\x00\x00\x0c' + b'\x80\x80\x00\x00' + b'\0' * 4),
            ('random bytes', os.urandom(64))):
        closed = False
        try:
            c.send_raw(blob)
            a = c.read()
            CK.check(a.result is None or a.result >= 3000,
                     'raw: %s: an error answer (%s)' % (what, a.result))
        except (ConnectionError, OSError, ValueError):
            closed = True
        c.close()
        CK.check(d.p.poll() is None, 'server alive after %s (closed=%s)' % (what, closed))
        c = reconnect(port, ca, cert, key, 'raw.test')
        CK.eq(c.request(e2m).result, 2001, 'raw: a valid push after %s' % what)
    c.close()
    rc, o, _ = sim(sim_base(pki, port), 'push-e2m', *av_args(SET1), '--imsi', '5')
    CK.eq((o or {}).get('result'), 2001, 'simulator still served after the malformed requests')
    err = d.stderr()
    CK.check('rejected push e2m from raw.test: e2m_int_key is not 32 bytes '
             '(5014 DIAMETER_INVALID_AVP_LENGTH), AVP 1004' in err,
             'a rejection is logged with reason, Result-Code, AVP and origin host')
    CK.check('answered DIAMETER_AVP_UNSUPPORTED to raw.test, AVP 1999' in err,
             'freeDiameter\'s own rejections are logged too')
    no_key_bytes(err + '\n'.join(d.lines), [key32.hex(), key32[:16].hex()], 'testd output')
    rc, st = d.stop()
    CK.eq(rc, 0, 'testd exit status after the malformed requests')
    # the 19 cases above that kl_diameter itself refuses (the others are freeDiameter's)
    CK.eq((st or {}).get('rejected'), 19, 'testd counted its own rejections')


def group_tls(pki, work):
    port = free_port()
    d = Testd(pki, work, port)
    # a peer whose certificate comes from a CA the server does not trust; it trusts ours, so
    # only the server can refuse it (an operator freeDiameter configuration with two TLS_CA)
    cert, key = pki.cred('rogue-hss')
    conf = os.path.join(work, 'rogue.conf')
    with open(conf, 'w') as f:
        f.write('Identity = "hss.test";\nRealm = "test";\nPort = 0;\nSecPort = 0;\nNo_SCTP;\n'
                'NoRelay;\nTcTimer = 3;\nTLS_Cred = "%s", "%s";\nTLS_CA = "%s";\n'
                'TLS_CA = "%s";\nConnectPeer = "%s" { ConnectTo = "127.0.0.1"; Port = %d; '
                'No_SCTP; };\n' % (cert, key, pki.p('rogue-ca.pem'), pki.p('ca.pem'), SERVER,
                                   port))
    t0 = time.time()
    rc, o, err = sim([SIM, '--fd-conf', conf, '--peer', '%s@127.0.0.1:%d' % (SERVER, port),
                      '--timeout-ms', '2500'], 'put-appid', '--appid', 'a', '--imsi', '1')
    CK.eq(rc, 3, 'peer with an untrusted certificate: no connection (%s)' % err.strip()[-200:])
    CK.check(time.time() - t0 < 15, 'refusal within the timeout')
    CK.check('TLS handshake failed' in d.stderr(), 'server logged the failed handshake')

    # a valid certificate for raw.test, but a CER claiming another identity
    cert, key = pki.cred('raw.test')
    try:
        c = dr.RawClient(port, pki.p('ca.pem'), cert, key, 'other.test')
        res = c.cea.result
        c.close()
    except (ConnectionError, OSError) as e:
        res = 'closed: %s' % e
    CK.eq(res, 3010, 'CER from an identity the certificate does not name: DIAMETER_UNKNOWN_PEER')
    CK.check('refused peer other.test: its certificate does not name that identity'
             in d.stderr(), 'identity refusal logged')

    # plain Diameter (no TLS) on the TLS port: no answer
    s = socket.create_connection(('127.0.0.1', port), timeout=5)
    s.sendall(dr.message(dr.CMD_CER, 0, dr.FLAG_R, [dr.avp(dr.ORIGIN_HOST, 'hss.test'),
                                                    dr.avp(dr.ORIGIN_REALM, 'test')], 1, 1))
    try:
        got = s.recv(4096)
    except OSError:
        got = b''
    s.close()
    CK.check(len(got) < 20 or got[0] != 1, 'plain TCP CER got no Diameter answer (%r)' % got[:8])
    CK.eq(d.events(), [], 'nothing recorded from refused peers')
    group_config(pki, work, port)  # port is still in use by d
    rc, st = d.stop()
    CK.eq((st or {}).get('peers_refused'), 1, 'one peer refused by the identity check')

    # allow list: hss.test may connect, raw.test (valid certificate) may not
    port = free_port()
    d = Testd(pki, work, port, ['--allow-peer', 'hss.test'], tag='allow')
    rc, o, err = sim(sim_base(pki, port), 'put-appid', '--appid', 'a', '--imsi', '1')
    CK.eq((o or {}).get('result'), 2001, 'allowed peer served (%s)' % err[-200:])
    try:
        c = dr.RawClient(port, pki.p('ca.pem'), cert, key, 'raw.test')
        res = c.cea.result
        c.close()
    except (ConnectionError, OSError) as e:
        res = 'closed: %s' % e
    CK.eq(res, 3010, 'peer outside the allow list refused')
    CK.check('refused peer raw.test: not in the allowed peers' in d.stderr(), 'logged')
    d.stop()

    # vendor and application ids are configurable; a client with other ids finds no common
    # application
    port = free_port()
    d = Testd(pki, work, port, ['--vendor', '28458', '--app', '16777300'], tag='ids')
    rc, o, err = sim(sim_base(pki, port, extra=['--vendor', '28458', '--app', '16777300']),
                     'push-e2m', *av_args(SET1), '--imsi', '1')
    CK.eq((o or {}).get('result'), 2001, 'configured vendor/application ids (%s)' % err[-200:])
    rc, o, err = sim(sim_base(pki, port)[:-1] + ['2500'], 'push-e2m', *av_args(SET1), '--imsi',
                     '2')
    CK.eq(rc, 3, 'default ids against a server with other ids: no common application')
    CK.eq([e['imsi'] for e in d.events()], ['1'], 'only the matching client recorded')
    d.stop()


def group_config(pki, work, port):
    """The server refuses bad configurations with exit 2 and one clear line."""
    cert, key = pki.cred(SERVER)
    hcert, hkey = pki.cred('hss.test')
    ca = pki.p('ca.pem')

    def testd(identity=SERVER, listen='127.0.0.1', c=cert, k=key, prt=port):
        return run([TESTD, '--identity', identity, '--listen', listen, '--port', str(prt),
                    '--cert', c, '--key', k, '--ca', ca, '--log-level', 'error'])
    for what, r, want in (
            ('missing certificate', testd(c='/nonexistent.pem'),
             'tls_cert /nonexistent.pem: No such file or directory'),
            ('identity not an FQDN', testd(identity='bad id'), 'identity: want an FQDN'),
            ('listen not an address', testd(listen='nope'), "listen: 'nope' is not an IP"),
            ('certificate of another identity', testd(c=hcert, k=hkey),
             'freeDiameter refused its configuration'),
            ('port in use', testd(prt=port), 'freeDiameter did not start')):
        CK.eq(r.returncode, 2, 'server config: %s: exit 2' % what)
        CK.check(want in r.stderr, 'server config: %s: says %r (%s)' % (what, want,
                                                                      r.stderr[-300:]))


def group_bulk(pki, work):
    n = int(os.environ.get('KL_DIAMETER_BULK_N', '3000'))
    port = free_port()
    d = Testd(pki, work, port, ['--log-level', 'warning'])
    ack = os.path.join(work, 'ack.log')
    rc, o, err = sim(sim_base(pki, port), 'bulk', '--n', str(n), '--seed', '7', '--window', '64',
                     '--ack-log', ack, timeout=120)
    CK.eq((rc, (o or {}).get('ok')), (0, n), 'bulk: every push acknowledged (%s)' % err[-300:])
    acks = read_lines(ack)
    CK.eq(len(acks), n, 'bulk: one ack-log line per acknowledged push')
    got = {(e['imsi'], e['key_id'], e['kcv']) for e in d.wait_events(n)}
    CK.check(all(tuple(a.split()) in got for a in acks),
             'bulk: every acknowledged (IMSI, key id, KCV) was committed by the server')
    CK.eq(len({a.split()[0] for a in acks}), n, 'bulk: n distinct IMSIs')
    print('bulk: %d pushes at %s pushes/s over Diameter/TLS (window 64, one commit per poll)'
          % (n, (o or {}).get('pushes_per_s')), flush=True)
    rc, st = d.stop()
    CK.check((st or {}).get('commits', n) < n, 'bulk: commits were batched (%s)' % st)
    # every answer is a gnutls_record_send from libfdcore: the TLS workaround serialised them
    CK.check((st or {}).get('tls_confined_sends', 0) >= n,
             'bulk: freeDiameter\'s %d answers took the serialised TLS path (%s)' % (n, st))

    # a busy server (queue of 1, slow commits) answers DIAMETER_TOO_BUSY; the simulator retries
    port = free_port()
    d = Testd(pki, work, port, ['--max-queue', '1', '--delay-ms', '20', '--log-level', 'error'],
              tag='busy')
    rc, o, err = sim(sim_base(pki, port), 'bulk', '--n', '100', '--window', '16', timeout=120)
    CK.eq((rc, (o or {}).get('ok')), (0, 100), 'busy bulk: all acknowledged (%s)' % err[-300:])
    CK.check((o or {}).get('busy_retries', 0) > 0, 'busy bulk: some DIAMETER_TOO_BUSY retried')
    rc, st = d.stop()
    CK.check((st or {}).get('busy', 0) > 0, 'busy server counted its 3004 answers')

    # durability: kill the server mid-bulk; every acknowledged push is in its durable file
    port = free_port()
    commits = os.path.join(work, 'commits.jsonl')
    d = Testd(pki, work, port, ['--commit-file', commits, '--log-level', 'error'], tag='kill')
    ack = os.path.join(work, 'ack-kill.log')
    p = subprocess.Popen(sim_base(pki, port) + ['bulk', '--n', '1000000', '--seed', '9',
                                                '--ack-log', ack],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    LIVE.append(p)
    end = time.time() + 30
    while time.time() < end and len(read_lines(ack)) < 500 and p.poll() is None:
        time.sleep(0.01)
    d.p.send_signal(signal.SIGKILL)
    d.p.wait()
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        CK.check(False, 'simulator did not stop after the server died')
    CK.eq(p.returncode, 1, 'simulator reports the lost server (exit 1)')
    acks = read_lines(ack)
    durable = set()
    for line in read_lines(commits):
        e = json.loads(line)
        durable.add((e['imsi'], e['key_id'], e['kcv']))
    lost = [a for a in acks if tuple(a.split()) not in durable]
    CK.check(len(acks) >= 500, 'durability: %d pushes acknowledged before the kill' % len(acks))
    CK.eq(lost, [], 'durability: every acknowledged push was committed before its answer')
    print('durability: %d acknowledged, %d durable, killed mid-stream' % (len(acks), len(durable)),
          flush=True)

    # the server stopped in order (DPR/DPA, TLS close) mid-bulk: freeDiameter may drop the
    # answers still to come with no callback; every push has a deadline (timeout 1 s + 2 s), so
    # the run ends (its summary line), exit 1, within a bound
    port = free_port()
    d = Testd(pki, work, port, ['--log-level', 'error'], tag='term')
    ack = os.path.join(work, 'ack-term.log')
    p = subprocess.Popen(sim_base(pki, port)[:-1] + ['1000', 'bulk', '--n', '1000000', '--seed',
                                                     '10', '--ack-log', ack],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    LIVE.append(p)
    summary = []
    reader = threading.Thread(target=lambda: summary.extend(
        (time.time(), line) for line in p.stdout if line.startswith('{')))
    reader.start()
    end = time.time() + 30
    while time.time() < end and len(read_lines(ack)) < 500 and p.poll() is None:
        time.sleep(0.01)
    d.stop()
    t0 = time.time()
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    reader.join()
    dt = summary[-1][0] - t0 if summary else 99
    CK.eq(p.returncode, 1, 'server stopped mid-bulk: simulator exit 1 (%s)' % err[-300:])
    CK.check(dt < 1 + 2 + 2, 'server stopped mid-bulk: the run ended %.1f s after it' % dt)
    print('orderly stop mid-bulk: the run ended %.1f s after the server, the simulator %.1f s: %s'
          % (dt, time.time() - t0, [x for x in err.splitlines() if 'bulk' in x][-1:]),
          flush=True)


def https_load(port, ca, clients, stop, result):
    """`clients` threads, each a client of diameter_testd's HTTPS echo until `stop` is set:
    alternately 20 requests on one keep-alive connection then an orderly TLS close (close_notify
    both ways: unwrap), and a fresh connection for one request; each answer checked. 5 ms
    between requests: under ASan unpaced clients starve the Diameter feed of the 2 cores."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # the server certificate names the Diameter identity

    def one(i):
        ok = bad = conns = 0
        j = 0
        while not stop.is_set() or conns < 2:
            keep = conns % 2 == 0
            try:
                raw = socket.create_connection(('127.0.0.1', port), timeout=10)
                s = ctx.wrap_socket(raw)
                f = s.makefile('rb')
                for _ in range(20 if keep else 1):
                    path = '/echo/c%d-%d' % (i, j)
                    j += 1
                    s.sendall(('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % path).encode())
                    status = f.readline()
                    length = None
                    while True:
                        h = f.readline()
                        if h in (b'\r\n', b''):
                            break
                        if h.lower().startswith(b'content-length:'):
                            length = int(h.split(b':')[1])
                    body = f.read(length or 0)
                    if status.startswith(b'HTTP/1.1 200') and body == path[6:].encode() + b'\n':
                        ok += 1
                    else:
                        bad += 1
                    time.sleep(0.005)  # paced: load beside the Diameter feed, not instead of it
                f.close()
                if keep:
                    s.unwrap()  # our close_notify, then the server's
                s.close()
                conns += 1
            except (OSError, ValueError) as e:
                bad += 1
                result.setdefault('errors', []).append(repr(e))
                conns += 1
        with lock:
            result['ok'] = result.get('ok', 0) + ok
            result['bad'] = result.get('bad', 0) + bad
            result['conns'] = result.get('conns', 0) + conns

    lock = threading.Lock()
    ts = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(clients)]
    for t in ts:
        t.start()
    return ts


def group_confine(pki, work):
    n = int(os.environ.get('KL_DIAMETER_BULK_N', '3000'))
    clients = 16
    port, hport = free_port(), free_port()
    d = Testd(pki, work, port, ['--log-level', 'warning', '--https-port', str(hport)])
    stop, res = threading.Event(), {}
    ts = https_load(hport, pki.p('ca.pem'), clients, stop, res)
    # bulk pushes of n/3 keys, each on a new Diameter/TLS connection (CER ... DPR, TLS close:
    # freeDiameter's confined byes), until 3 s of overlap and at least 3 rounds
    t0, rounds, pushed, rates = time.time(), 0, 0, []
    while rounds < 3 or time.time() - t0 < 3:
        m = max(n // 3, 1)
        rc, o, err = sim(sim_base(pki, port), 'bulk', '--n', str(m), '--seed', str(11 + rounds),
                         '--window', '64', timeout=120)
        CK.eq((rc, (o or {}).get('ok')), (0, m),
              'confine: round %d: every push acknowledged (%s)' % (rounds, err[-300:]))
        rounds, pushed = rounds + 1, pushed + m
        rates.append(str((o or {}).get('pushes_per_s')))
        if rc:
            break
    stop.set()
    for t in ts:
        t.join(60)
    el = time.time() - t0
    CK.check(not any(t.is_alive() for t in ts), 'confine: every HTTPS client finished')
    CK.eq(res.get('bad', 0), 0, 'confine: every HTTPS answer right (%s)'
          % res.get('errors', [])[:3])
    CK.check(res.get('ok', 0) >= clients * 20, 'confine: %d HTTPS answers on %d connections'
             % (res.get('ok', 0), res.get('conns', 0)))
    rc, st = d.stop()
    st = st or {}
    CK.eq(rc, 0, 'confine: diameter_testd stopped cleanly')
    CK.check(st.get('tls_confined_sends', 0) >= pushed,
             'confine: freeDiameter\'s answers were serialised (%s)' % st)
    CK.check(st.get('tls_confined_byes', 0) > 0,
             'confine: freeDiameter\'s byes closing its %d connections were serialised' % rounds)
    # libmicrohttpd's sends and byes reached the interposers and passed through: at least one
    # send per answer; its byes were not counted as freeDiameter's
    CK.check(st.get('tls_passed_sends', 0) >= res.get('ok', 0),
             'confine: libmicrohttpd\'s %d answers passed straight through (%s)'
             % (res.get('ok', 0), st))
    CK.check(st.get('tls_passed_byes', 0) > 0, 'confine: libmicrohttpd\'s byes passed through')
    print('confine: %d Diameter pushes on %d connections (%s pushes/s) while %d HTTPS clients '
          'got %d answers on %d TLS connections in %.1f s; TLS sends/byes serialised '
          '(freeDiameter) %d/%d, passed through (libmicrohttpd) %d/%d'
          % (pushed, rounds, '/'.join(rates), clients, res.get('ok', 0), res.get('conns', 0), el,
             st.get('tls_confined_sends', 0), st.get('tls_confined_byes', 0),
             st.get('tls_passed_sends', 0), st.get('tls_passed_byes', 0)), flush=True)


def main():
    with tempfile.TemporaryDirectory(prefix='kl-diameter-') as work:
        try:
            pki = make_pki(work)
            {'sim': group_sim, 'malformed': group_malformed, 'tls': group_tls,
             'bulk': group_bulk, 'confine': group_confine}[GROUP](pki, work)
        finally:
            for p in LIVE:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    return CK.done()


if __name__ == '__main__':
    sys.exit(main())

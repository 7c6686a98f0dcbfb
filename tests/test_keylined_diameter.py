#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keylined with the HSS-side Diameter feed (Diameter/TLS on 127.0.0.1, kernel-socket io) and a
durable store, end to end:
  a. keyline-hss-sim pushes an e2m_int_key (TS 35.208 set 1, Milenage) and registers an EMSE;
     an E2M fetch (e2m_fetch, over UDP as that EMSE) returns the e2m_key keyline-kdf derives;
  b. only the newest table.e2m_ring (2) keys per IMSI are served: the evicted one and a key
     removed by key id get "no such key" (ERR 12, detail 2);
  c. an application identity maps to the IMSI: the fetch gets the same key, and the IMSI is
     nowhere in the response; MUK and UE-GROUPS pushes keep/replace what they should;
  d. a peer with a certificate from another CA is refused (hss-sim exit 3) and malformed
     requests get error answers while keylined keeps serving;
  e. a restart on the same store serves the same keys;
  f. msk_rotation (period 12 s, pre-delivery 4 s): current, then next, then promotion, and the
     stored current MSK (same KCV) after a restart;
  (keylined killed in the middle of a bulk push: test_keylined_feed.py, durability)
  h. without a store the feed writes the key table directly (same semantics);
  i. a MUK pushed with KL-Expiry: shown by keylinectl, kept over a groups update and a restart,
     and once it has passed MBMS requests get ERR 12 detail 3;
  j. the feed's counters in /metrics (keyline_diameter_*) equal those of keylinectl status, and
     its batches show as store commits;
  k. pair keys (entry type PAIR, KL-Peer-Identity) and a UE's services (KL-Services): shown by
     keylinectl with their KCV, kept by a MUK push without KL-Services, removed, and all of it
     stored (a restart); a UE pushed with the dh service shows the public value's fingerprint
     that dh_reference.py derives from its MUK, also after the restart (the store load).
    test_keylined_diameter.py KEYLINED KEYLINE_HSS_SIM KEYLINE_KDF KEYLINECTL E2M_FETCH"""
import json
import os
import re
import socket
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'diameter'))
import kl_itest  # noqa: E402
import kl_diameter_raw as dr  # noqa: E402
import dh_reference  # noqa: E402
from kl_dtest import Pki, Kdf, SET1, SET2, av_args, free_port, run  # noqa: E402

KEYLINED, SIM, KDF, CTL, FETCH = sys.argv[1:6]

CK = kl_itest.Checks('keylined-diameter')
SERVER = 'keylined.test'
EMSE = 'emse-1.test'
IMSI1 = '001010000000001'
IMSI2 = '001010000000002'
APPID = 'sensor-17@iot.test'

# TS 35.208 test set 1 with two other RANDs
SET3 = dict(SET1, rand='0123456789abcdef0123456789abcd01')
SET4 = dict(SET1, rand='fedcba9876543210fedcba98765432aa')

LIVE = []


kdf = Kdf(KDF)
ckik = kdf.ckik


def e2m_of(s):
    """(e2m_int_key, key id, e2m_key for EMSE) as keyline-kdf derives them from an AV."""
    ck, ik = ckik(s)
    ik_hex = kdf('e2m-int-key', '--ck', ck, '--ik', ik)
    return (ik_hex, kdf('e2m-key-id', '--rand', s['rand']),
            kdf('e2m-key', '--key', ik_hex, '--emse-id', 'text:' + EMSE))


def make_pki(d):
    return Pki(d, leaves=(SERVER, 'hss.test', 'raw.test'), rogue=(('rogue-hss', 'hss.test'),))


class Env:
    def __init__(self, work):
        self.work = work
        self.pki = make_pki(work)
        self.kek = os.path.join(work, 'kek')
        fd = os.open(self.kek, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)
        self.store = os.path.join(work, 'store')
        self.sock = os.path.join(work, 'admin.sock')
        self.dport = free_port()
        self.uport = free_port(socket.SOCK_DGRAM)
        self.mport = free_port()
        self.runs = 0
        self.psk = os.urandom(32).hex()
        self.pskf = os.path.join(work, 'emse.psk')
        with open(self.pskf, 'w') as f:
            f.write(self.psk + '\n')
        self.secrets = [self.psk]

    def config(self, rotation=False, imsis=64, store=True):
        cert, key = self.pki.cred(SERVER)
        dia = ('{identity: %s, listen: 127.0.0.1, port: %d, tls_cert: "%s", tls_key: "%s", '
               'tls_ca: "%s", max_queue: 64}' % (SERVER, self.dport, cert, key,
                                                 self.pki.p('ca.pem')))
        extra = {'io': 'socket', 'udp_port': self.uport, 'predelivery_s': 6, 'diameter': dia,
                 'metrics': '"127.0.0.1:%d"' % self.mport}
        if store:
            extra['store'] = '{path: "%s", kek_file: "%s", map_size_mb: 64}' % (self.store,
                                                                                self.kek)
        if rotation:
            extra['msk_rotation'] = '[{group: "00f110:3", period_s: 12, predelivery_s: 4}]'
        return kl_itest.write_config(os.path.join(self.work, 'keylined.yaml'), ipv4=('127.0.0.1',),
                                     ipv6=(), admin=self.sock, extra=extra,
                                     table={'ues': 64, 'groups': 16, 'emses': 16, 'imsis': imsis,
                                            'appids': 16, 'e2m_ring': 2})

    def start(self, rotation=False, imsis=64, store=True):
        self.runs += 1
        eal = kl_itest.eal_args(kl_itest.unique('dia%d' % self.runs), mem=256)
        kd = kl_itest.Keylined(KEYLINED, eal, self.config(rotation, imsis, store),
                               workdir=tempfile.mkdtemp(prefix='kl-dia-run-', dir=self.work))
        LIVE.append(kd)
        kd.wait_ready()
        return kd

    def sim(self, *args, who='hss.test', timeout=60):
        cert, key = self.pki.cred(who)
        cmd = [SIM, '--identity', 'hss.test', '--cert', cert, '--key', key, '--ca',
               self.pki.p('ca.pem'), '--listen', '127.0.0.1', '--peer',
               '%s@127.0.0.1:%d' % (SERVER, self.dport), '--timeout-ms', '5000'] + list(args)
        r = run(cmd, timeout=timeout)
        out = [json.loads(x) for x in r.stdout.splitlines() if x.startswith('{')]
        return r.returncode, (out[-1] if out else {}), r.stderr

    def fetch(self, ue, key_id=None):
        cmd = [FETCH, '127.0.0.1', str(self.uport), EMSE, self.pskf, ue, IMSI1 if ue == APPID
               else ue] + ([key_id] if key_id else [])
        r = run(cmd, timeout=30)
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {'result': 'unparsable', 'out': r.stdout, 'err': r.stderr}

    def ctl(self, *args):
        p = run([CTL, '-s', self.sock, '--json'] + list(args), timeout=30)
        try:
            ans = json.loads(p.stdout) if p.stdout.strip() else {}
        except ValueError:
            ans = {'raw': p.stdout}
        return p.returncode, ans


def alive(kd, what):
    CK.check(kd.p.poll() is None, 'keylined still running after %s' % what)


# ---- a, b, c: pushes over Diameter, fetches over MIKEY ----------------------------------------

def pushes_and_fetches(env, kd):
    rc, o, err = env.sim('put-emse', '--emse-id', EMSE, '--psk-file', env.pskf)
    CK.eq((rc, o.get('result')), (0, 2001), 'a: put-emse (%s)' % err.strip()[-300:])
    e1 = e2m_of(SET1)
    env.secrets += [e1[0], e1[2]]
    rc, o, err = env.sim('push-e2m', *av_args(SET1), '--imsi', IMSI1)
    CK.eq((rc, o.get('result')), (0, 2001), 'a: push-e2m (%s)' % err.strip()[-300:])
    CK.eq(o.get('key_id'), e1[1], 'a: key id = 32 LSBs of RAND')
    f = env.fetch(IMSI1)
    CK.eq((f.get('result'), f.get('key_id')), ('key', e1[1]), 'a: E2M fetch by IMSI: %s' % f)
    CK.eq(f.get('e2m_key'), e1[2], 'a: fetched e2m_key = keyline-kdf e2m-key of the simulator\'s'
          ' inputs')
    CK.eq(f.get('imsi_in_response'), False, 'a: no IMSI in the response')
    f = env.fetch(IMSI1, e1[1])
    CK.eq(f.get('e2m_key'), e1[2], 'a: fetch by IMSI and key id')
    CK.eq(env.fetch('001010000000009').get('detail'), 2, 'a: unknown IMSI: no such key')

    # b. the newest 2 keys per IMSI (table.e2m_ring: 2)
    keys = [e2m_of(s) for s in (SET1, SET3, SET4)]
    for i, (s, k) in enumerate(zip((SET1, SET3, SET4), keys)):
        env.secrets += [k[0], k[2]]
        rc, o, err = env.sim('push-e2m', *av_args(s), '--imsi', IMSI2)
        CK.eq((rc, o.get('result'), o.get('key_id')), (0, 2001, k[1]),
              'b: push-e2m key %s (%s)' % (k[1], err.strip()[-200:]))
        if i == 1:
            f = env.fetch(IMSI2, keys[0][1])
            CK.eq(f.get('e2m_key'), keys[0][2], 'b: the older key is served until evicted')
    f = env.fetch(IMSI2, keys[0][1])
    CK.eq((f.get('result'), f.get('err_no'), f.get('detail')), ('error', 12, 2),
          'b: the evicted (oldest) key id: no such key: %s' % f)
    for k in keys[1:]:
        f = env.fetch(IMSI2, k[1])
        CK.eq((f.get('key_id'), f.get('e2m_key')), (k[1], k[2]), 'b: key id %s served' % k[1])
    CK.eq(env.fetch(IMSI2).get('key_id'), keys[2][1], 'b: no key id: the newest')
    rc, ans = env.ctl('show', 'imsi', IMSI2)
    CK.eq([x.get('key_id') for x in ans.get('keys', [])], [int(keys[2][1], 16),
                                                           int(keys[1][1], 16)],
          'b: keylinectl show imsi: the two newest, newest first')
    rc, o, err = env.sim('remove', '--type', 'e2m', '--imsi', IMSI2, '--key-id', keys[2][1])
    CK.eq((rc, o.get('result')), (0, 2001), 'b: remove e2m by key id (%s)' % err[-200:])
    f = env.fetch(IMSI2, keys[2][1])
    CK.eq((f.get('err_no'), f.get('detail')), (12, 2), 'b: removed key id: no such key: %s' % f)
    f = env.fetch(IMSI2)
    CK.eq((f.get('key_id'), f.get('e2m_key')), (keys[1][1], keys[1][2]),
          'b: after the removal the newest is the other key')

    # c. application identity -> IMSI
    rc, o, err = env.sim('put-appid', '--appid', APPID, '--imsi', IMSI1)
    CK.eq((rc, o.get('result')), (0, 2001), 'c: put-appid (%s)' % err[-200:])
    f = env.fetch(APPID)
    CK.eq((f.get('result'), f.get('key_id'), f.get('e2m_key')), ('key', e1[1], e1[2]),
          'c: fetch by application identity: the IMSI\'s key: %s' % f)
    CK.eq(f.get('imsi_in_response'), False, 'c: the response carries no IMSI')

    # MUK and UE-GROUPS semantics
    btid = 'btid2@bsf.test'
    rc, o, err = env.sim('put-ue-groups', '--id', btid, '--group', '00f110:3')
    CK.eq((rc, o.get('result')), (1, 5012), 'c: UE-GROUPS for an unknown UE: 5012')
    ck2, ik2 = ckik(SET2)
    muk = kdf('ks-naf', '--ck', ck2, '--ik', ik2, '--rand', SET2['rand'], '--impi',
              'user2@ims.test', '--bmsc-fqdn', 'bmsc.test')
    env.secrets += [muk]
    muk_kcv = kdf('kcv', '--key', muk)
    rc, o, err = env.sim('push-muk', *av_args(SET2), '--impi', 'user2@ims.test', '--bmsc-fqdn',
                         'bmsc.test', '--btid', btid)
    CK.eq((rc, o.get('result')), (0, 2001), 'c: push-muk (%s)' % err[-200:])
    rc, o, err = env.sim('put-ue-groups', '--id', btid, '--group', '00f110:3', '--group',
                         '00f110:4')
    CK.eq((rc, o.get('result')), (0, 2001), 'c: put-ue-groups (%s)' % err[-200:])
    rc, o, err = env.sim('push-muk', *av_args(SET2), '--impi', 'user2@ims.test', '--bmsc-fqdn',
                         'bmsc.test', '--btid', btid)
    CK.eq(o.get('result'), 2001, 'c: push-muk again')
    rc, ans = env.ctl('show', 'ue', btid)
    CK.eq(([g.lower() for g in ans.get('groups', [])], (ans.get('kcv') or '').lower()),
          (['00f110:3', '00f110:4'], muk_kcv.lower()), 'c: a MUK push keeps the UE\'s groups')
    rc, o, err = env.sim('put-ue-groups', '--id', btid, *sum([['--group', '00f110:%d' % i]
                                                                for i in range(5)], []))
    CK.check(rc == 2 and 'more than 4 --group' in err,
             'c: five groups (more than a UE holds): keyline-hss-sim refuses (%d %s)' % (rc, err[-200:]))
    rc, o, err = env.sim('remove', '--type', 'ue-groups', '--id', btid, '--group', '00f110:3')
    CK.eq((rc, o.get('result')), (0, 2001), 'c: remove one group (%s)' % err[-200:])
    rc, ans = env.ctl('show', 'ue', btid)
    CK.eq(([g.lower() for g in ans.get('groups', [])], (ans.get('kcv') or '').lower()),
          (['00f110:4'], muk_kcv.lower()), 'c: the other group and the MUK stay')
    rc, ans = env.ctl('status')
    dia = ans.get('diameter') or {}
    CK.eq((dia.get('enabled'), dia.get('identity'), dia.get('port')), (True, SERVER, env.dport),
          'status: the Diameter feed')
    CK.eq(((dia.get('counters') or {}).get('answered_ok'), (dia.get('counters') or {}).get(
        'failed')), (11, 1), 'status: 11 pushes answered DIAMETER_SUCCESS, 1 refused: %s' % dia)
    CK.eq([p.get('identity') for p in dia.get('peers', [])], ['hss.test'],
          'status: the simulator is a known peer')
    return e1, keys


# ---- j. the feed's counters in /metrics ------------------------------------------------------

def metrics_counters(env):
    rc, ans = env.ctl('status')
    want = (ans.get('diameter') or {}).get('counters') or {}
    body = urllib.request.urlopen('http://127.0.0.1:%d/metrics' % env.mport, timeout=10).read()
    got = {}
    for line in body.decode().splitlines():
        if line and not line.startswith('#'):
            name, value = line.rsplit(' ', 1)
            got[name] = int(float(value))
    CK.check(want.get('answered_ok', 0) > 0, 'j: status shows Diameter counters: %s' % want)
    for name in ('answered_ok', 'rejected', 'failed', 'busy', 'commits', 'peers_refused'):
        CK.eq(got.get('keyline_diameter_%s_total' % name), want.get(name),
              'j: keyline_diameter_%s_total equals status' % name)
    CK.eq(got.get('keyline_diameter_queued'), want.get('queued'), 'j: keyline_diameter_queued')
    CK.check(got.get('keyline_store_commits_total', 0) >= want.get('commits', 1),
             'j: the feed\'s batches are store commits (%s >= %s)'
             % (got.get('keyline_store_commits_total'), want.get('commits')))


# ---- d. refused peers, malformed requests ----------------------------------------------------

def refusals(env, kd, e1):
    cert, key = env.pki.cred('rogue-hss')
    conf = os.path.join(env.work, 'rogue.conf')
    with open(conf, 'w') as f:
        f.write('Identity = "hss.test";\nRealm = "test";\nPort = 0;\nSecPort = 0;\nNo_SCTP;\n'
                'NoRelay;\nTcTimer = 3;\nTLS_Cred = "%s", "%s";\nTLS_CA = "%s";\n'
                'TLS_CA = "%s";\nConnectPeer = "%s" { ConnectTo = "127.0.0.1"; Port = %d; '
                'No_SCTP; };\n' % (cert, key, env.pki.p('rogue-ca.pem'), env.pki.p('ca.pem'),
                                   SERVER, env.dport))
    r = run([SIM, '--fd-conf', conf, '--peer', '%s@127.0.0.1:%d' % (SERVER, env.dport),
             '--timeout-ms', '2500', 'put-appid', '--appid', 'rogue', '--imsi', '1'])
    CK.eq(r.returncode, 3, 'd: a peer with a certificate of another CA: no connection (%s)'
          % r.stderr.strip()[-200:])
    alive(kd, 'the refused peer')
    CK.check('TLS handshake failed' in kd.stderr(), 'd: keylined logged the failed handshake')
    rc, ans = env.ctl('show', 'appid', 'rogue')
    CK.eq(rc, 1, 'd: nothing from the refused peer')

    cert, key = env.pki.cred('raw.test')
    c = dr.RawClient(env.dport, env.pki.p('ca.pem'), cert, key, 'raw.test')
    CK.eq(c.cea.result, 2001, 'd: raw client: CEA')
    key32 = os.urandom(32)
    env.secrets.append(key32.hex())
    kl = c.kl
    e2m = [kl(dr.KL_ENTRY_TYPE, dr.u32(dr.T_E2M)), kl(dr.KL_IMSI, '001010000000077'),
           kl(dr.KL_KEY_ID, dr.u32(0x1234abcd)), kl(dr.KL_KEY, key32)]
    for what, kw, want in (
            ('e2m key of 16 bytes', dict(avps=e2m[:3] + [kl(dr.KL_KEY, key32[:16])]), 5014),
            ('IMSI with a letter', dict(avps=[e2m[0], kl(dr.KL_IMSI, '0010a'), e2m[2], e2m[3]]),
             5004),
            ('key in a remove', dict(avps=e2m, cmd=dr.CMD_REMOVE), 5008),
            ('unknown AVP with the M bit', dict(avps=e2m + [kl(1999, b'abcd')]), 5001),
            ('no entry type', dict(avps=e2m[1:]), 5005),
            ('unknown command', dict(avps=e2m, cmd=8388999), 3001)):
        a = c.request(**kw)
        CK.eq(a.result, want, 'd: raw: %s' % what)
    CK.eq(c.request(e2m).result, 2001, 'd: raw: a valid push')
    try:
        c.send_raw(os.urandom(64))
        c.read()
    except (ConnectionError, OSError, ValueError):
        pass
    c.close()
    alive(kd, 'malformed requests and garbage')
    rc, ans = env.ctl('show', 'imsi', '001010000000077')
    CK.eq([k.get('key_id') for k in ans.get('keys', [])], [0x1234abcd],
          'd: the valid raw push is in the table')
    rc, o, err = env.sim('put-appid', '--appid', 'after-garbage', '--imsi', IMSI1)
    CK.eq((rc, o.get('result')), (0, 2001), 'd: the simulator is still served (%s)' % err[-200:])
    f = env.fetch(IMSI1)
    CK.eq(f.get('e2m_key'), e1[2], 'd: fetches still served')
    CK.check('rejected push e2m from raw.test: e2m_int_key is not 32 bytes' in kd.stderr(),
             'd: a rejection logged with its reason and origin')

    # a full kind (table.appids: 16) refuses a new entry before anything is stored; an existing
    # entry is still replaced
    c = dr.RawClient(env.dport, env.pki.p('ca.pem'), cert, key, 'raw.test')
    appid = lambda name, imsi: [kl(dr.KL_ENTRY_TYPE, dr.u32(dr.T_APPID)),  # noqa: E731
                                kl(dr.KL_APP_IDENTITY, name), kl(dr.KL_IMSI, imsi)]
    res = [c.request(appid('fill-%d' % i, IMSI1)).result for i in range(14)]
    CK.eq(res, [2001] * 14, 'd: 14 more application identities (16, the table\'s capacity)')
    CK.eq(c.request(appid('overflow', IMSI1)).result, 5012,
          'd: a 17th application identity: DIAMETER_UNABLE_TO_COMPLY (table full)')
    CK.eq(c.request(appid('fill-0', IMSI2)).result, 2001,
          'd: replacing an existing one while full: success')
    c.close()
    rc, ans = env.ctl('count')
    CK.eq((ans.get('counts') or {}).get('appids'), 16, 'd: 16 application identities')
    CK.check('the key table is full for appids (16, config table.appids)' in kd.stderr(),
             'd: the full table is logged')


# ---- f. MSK rotation ----------------------------------------------------------------------------

def show_group(env):
    rc, ans = env.ctl('show', 'group', '00f110:3')
    return ans if rc == 0 else None


def rotation(env):
    kd = env.start(rotation=True)
    seen = []  # (time, current msk_id, current kcv, next msk_id or None, next kcv)
    try:
        end = time.time() + 40
        promoted_at = None
        while time.time() < end:
            g = show_group(env)
            if g:
                cur, nxt = g.get('current') or {}, g.get('next')
                seen.append((time.time(), cur.get('msk_id'), cur.get('kcv'),
                             (nxt or {}).get('msk_id'), (nxt or {}).get('kcv'),
                             cur.get('valid_from'), cur.get('valid_to')))
                # promotion: a current that was announced as the next one before
                if promoted_at is None and any(s[3] == cur.get('msk_id') and
                                               s[4] == cur.get('kcv') for s in seen[:-1]):
                    promoted_at = len(seen) - 1
                    break
            time.sleep(0.4)
        CK.check(len(seen) > 0 and seen[0][1], 'f: the rotated group exists at start: %s'
                 % (seen[:1],))
        CK.check(any(s[3] is None for s in seen), 'f: a phase with the current MSK only')
        CK.check(any(s[3] is not None for s in seen), 'f: the next MSK appeared')
        CK.check(promoted_at is not None, 'f: the next MSK was promoted to current')
        if seen:
            s0 = seen[0]
            CK.eq(s0[6] - s0[5] if s0[5] and s0[6] else None, 12, 'f: current valid for a period')
        nexts = [s for s in seen if s[3] is not None]
        if nexts and seen:
            first_next = nexts[0]
            before_end = (seen[0][6] or 0) - first_next[0]
            CK.check(before_end <= 4.5, 'f: next appeared within the 4 s pre-delivery window '
                     '(%.1f s before the end)' % before_end)
        cur = show_group(env)
        rc, _ = kd.stop()
        CK.eq(rc, 0, 'f: keylined with rotation exits 0')
    finally:
        kd.kill()
    kd = env.start(rotation=True)
    try:
        after = show_group(env)
        c0 = (cur or {}).get('current') or {}
        c1 = (after or {}).get('current') or {}
        n0 = (cur or {}).get('next') or {}
        # the stored MSK is served again (or, had a boundary passed meanwhile, the stored next)
        CK.check((c1.get('msk_id'), c1.get('kcv')) in ((c0.get('msk_id'), c0.get('kcv')),
                                                      (n0.get('msk_id'), n0.get('kcv'))),
                 'f: after a restart the stored MSK (same KCV): before %s, after %s' % (cur, after))
        rc, _ = kd.stop()
        CK.eq(rc, 0, 'f: restarted keylined exits 0')
    finally:
        kd.kill()


# ---- h. no store: the feed writes the key table directly -----------------------------------------

def no_store(env):
    kd = env.start(store=False)
    try:
        CK.check('no store: keys in memory only' in kd.stderr(), 'h: the feed runs without a store')
        rc, o, err = env.sim('put-emse', '--emse-id', EMSE, '--psk-file', env.pskf)
        CK.eq((rc, o.get('result')), (0, 2001), 'h: put-emse without a store (%s)' % err[-200:])
        keys = [e2m_of(s) for s in (SET1, SET3, SET4)]
        for s in (SET1, SET3, SET4):
            rc, o, err = env.sim('push-e2m', *av_args(s), '--imsi', IMSI1)
            CK.eq(o.get('result'), 2001, 'h: push-e2m without a store')
        CK.eq(env.fetch(IMSI1, keys[0][1]).get('detail'), 2, 'h: the oldest evicted (ring 2)')
        CK.eq(env.fetch(IMSI1).get('e2m_key'), keys[2][2], 'h: the newest served')
        rc, o, err = env.sim('remove', '--type', 'e2m', '--imsi', IMSI1)
        CK.eq(o.get('result'), 2001, 'h: remove every key of the IMSI')
        CK.eq(env.fetch(IMSI1).get('detail'), 2, 'h: the IMSI is gone')
        rc, o, err = env.sim('put-ue-groups', '--id', 'nobody@ims.test', '--group', '00f110:3')
        CK.eq(o.get('result'), 5012, 'h: UE-GROUPS for an unknown UE: 5012')
        rc, _ = kd.stop()
        CK.eq(rc, 0, 'h: keylined without a store exits 0')
    finally:
        kd.kill()


# ---- i. a MUK's expiry (KL-Expiry of a MUK push) ------------------------------------------------

def muk_expiry(env):
    """A MUK pushed with KL-Expiry: stored and shown; the UE's MBMS requests get ERR 12 detail 3
    once it has passed (before: 12/2, its group has no MSK), also after a restart; a groups push
    keeps the expiry, a MUK push without one clears it."""
    btid, grp = 'btid-exp@bsf.test', '00f110:5'
    ck2, ik2 = ckik(SET2)
    muk = kdf('ks-naf', '--ck', ck2, '--ik', ik2, '--rand', SET2['rand'], '--impi',
              'user3@ims.test', '--bmsc-fqdn', 'bmsc.test')
    env.secrets += [muk]
    mukf = os.path.join(env.work, 'muk3.hex')
    with open(mukf, 'w') as f:
        f.write(muk + '\n')

    def mbms():
        r = run([FETCH, '--mbms', '127.0.0.1', str(env.uport), btid, mukf, grp], timeout=30)
        try:
            a = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            a = {'result': 'unparsable', 'out': r.stdout, 'err': r.stderr}
        return (a.get('result'), a.get('err_no'), a.get('detail')), a

    def push(*extra):
        return env.sim('push-muk', *av_args(SET2), '--impi', 'user3@ims.test', '--bmsc-fqdn',
                       'bmsc.test', '--btid', btid, *extra)

    kd = env.start()
    try:
        exp = int(time.time()) + 6
        rc, o, err = push('--expires', str(exp))
        CK.eq((rc, o.get('result')), (0, 2001), 'i: push-muk with --expires (%s)' % err[-200:])
        rc, o, err = env.sim('put-ue-groups', '--id', btid, '--group', grp)
        CK.eq((rc, o.get('result')), (0, 2001), 'i: put-ue-groups (%s)' % err[-200:])
        rc, ans = env.ctl('show', 'ue', btid)
        CK.eq((ans.get('expires'), ans.get('groups')), (exp, [grp]),
              'i: show ue: the pushed expiry, kept by the groups push: %s' % ans)
        got, a = mbms()
        if time.time() < exp - 0.5:
            CK.eq(got, ('error', 12, 2), 'i: before the expiry: served (no MSK in the group): %s'
                  % a)
        time.sleep(max(0.0, exp + 1 - time.time()))
        got, a = mbms()
        CK.eq(got, ('error', 12, 3), 'i: the MUK has expired: ERR 12 detail 3: %s' % a)
        rc, _ = kd.stop()
        CK.eq(rc, 0, 'i: keylined exits 0')
    finally:
        kd.kill()
    kd = env.start()
    try:
        rc, ans = env.ctl('show', 'ue', btid)
        CK.eq((ans.get('expires'), ans.get('groups')), (exp, [grp]),
              'i: after a restart the stored expiry: %s' % ans)
        got, a = mbms()
        CK.eq(got, ('error', 12, 3), 'i: after a restart still expired: %s' % a)
        r = run([CTL, '-s', env.sock, 'show', 'ue', btid], timeout=30)
        CK.check('expired' in r.stdout, 'i: keylinectl show ue says expired: %r' % r.stdout)
        rc, o, err = push()
        CK.eq((rc, o.get('result')), (0, 2001), 'i: push-muk without an expiry')
        rc, ans = env.ctl('show', 'ue', btid)
        CK.eq((ans.get('expires'), ans.get('groups')), (0, [grp]),
              'i: a new MUK without an expiry: never, groups kept: %s' % ans)
        got, a = mbms()
        CK.eq(got, ('error', 12, 2), 'i: served again (no MSK in the group): %s' % a)
        log = kd.stderr()
        rc, _ = kd.stop()
        CK.eq(rc, 0, 'i: restarted keylined exits 0')
    finally:
        kd.kill()
    CK.check(muk.lower() not in log.lower(), 'i: no MUK bytes in keylined\'s log')
    for bad in ('AddressSanitizer', 'runtime error', 'LeakSanitizer'):
        CK.check(bad not in log, 'i: no %s in keylined\'s output' % bad)


# ---- k. pair keys and services ---------------------------------------------------------------

DH_BTID = 'btid-dh@bsf.test'


def check_dh_ue(env, what):
    """DH_BTID (user5@ims.test, SET2, bmsc.test) as keylined shows it: services dh,prose, the
    MUK's KCV, and the fingerprint of P = X25519(KDF(MUK, FF07, "dh-x25519"), 9) by
    dh_reference.py."""
    ck, ik = ckik(SET2)
    muk = dh_reference.kdf(bytes.fromhex(ck + ik), 0x01, b'gba-me', bytes.fromhex(SET2['rand']),
                           b'user5@ims.test', b'bmsc.test\x01\x00\x00\x00\x01')
    env.secrets.append(muk.hex())
    rc, ans = env.ctl('show', 'ue', DH_BTID)
    CK.eq((rc, ans.get('services'), ans.get('kcv')), (0, ['dh', 'prose'], kl_itest.kcv(muk)),
          '%s: the dh UE and its MUK: %s' % (what, ans))
    CK.eq(ans.get('dh_pub_fp'), dh_reference.dh_pub_fp(dh_reference.dh_pub(muk)),
          '%s: the dh UE\'s public value is the reference\'s' % what)


def pairs_and_services(env):
    btid = 'btid-svc@bsf.test'
    pk = '3c' * 32
    env.secrets.append(pk)
    pkf = os.path.join(env.work, 'pair.hex')
    with open(pkf, 'w') as f:
        f.write(pk + '\n')

    def push_muk(*extra):
        return env.sim('push-muk', *av_args(SET2), '--impi', 'user4@ims.test', '--bmsc-fqdn',
                       'bmsc.test', '--btid', btid, *extra)

    kd = env.start()
    try:
        for peer in ('vlr-1.test', 'vlr-2.test'):
            rc, o, err = env.sim('put-pair', '--peer-id', peer, '--key-file', pkf, '--expires',
                                 '2000000000')
            CK.eq((rc, o.get('result')), (0, 2001), 'k: put-pair %s (%s)' % (peer, err[-200:]))
        rc, o, err = env.sim('remove', '--type', 'pair', '--id', 'vlr-2.test')
        CK.eq((rc, o.get('result')), (0, 2001), 'k: remove pair (%s)' % err[-200:])
        rc, o, err = push_muk('--services', 'mbms,hm')
        CK.eq((rc, o.get('result')), (0, 2001), 'k: push-muk --services (%s)' % err[-200:])
        rc, o, err = push_muk()
        CK.eq((rc, o.get('result')), (0, 2001), 'k: push-muk without --services')
        rc, ans = env.ctl('show', 'ue', btid)
        CK.eq(ans.get('services'), ['mbms', 'hm'], 'k: a MUK push without KL-Services keeps '
              'the services: %s' % ans)
        rc, ans = env.ctl('show', 'pair', 'vlr-1.test')
        CK.eq((ans.get('kcv'), ans.get('expires')), (kl_itest.kcv(bytes.fromhex(pk)), 2000000000),
              'k: show pair: KCV and expiry: %s' % ans)
        # a UE pushed with the dh service carries the public value the reference derives
        # from its MUK (the MUK computed here: TS 33.220 KDF by hmac, checked by its KCV)
        rc, o, err = env.sim('push-muk', *av_args(SET2), '--impi', 'user5@ims.test',
                             '--bmsc-fqdn', 'bmsc.test', '--btid', DH_BTID, '--services',
                             'dh,prose')
        CK.eq((rc, o.get('result')), (0, 2001), 'k: push-muk --services dh,prose (%s)' % err[-200:])
        check_dh_ue(env, 'k')
        rc, _ = kd.stop()
        CK.eq(rc, 0, 'k: keylined exits 0')
    finally:
        kd.kill()
    kd = env.start()
    try:
        rc, ans = env.ctl('show', 'pair', 'vlr-1.test')
        CK.eq((ans.get('kcv'), ans.get('expires')), (kl_itest.kcv(bytes.fromhex(pk)), 2000000000),
              'k: after a restart the stored pair key: %s' % ans)
        rc, ans = env.ctl('show', 'pair', 'vlr-2.test')
        CK.eq(rc, 1, 'k: the removed pair key stays removed: %s' % ans)
        rc, ans = env.ctl('show', 'ue', btid)
        CK.eq(ans.get('services'), ['mbms', 'hm'], 'k: after a restart the services: %s' % ans)
        check_dh_ue(env, 'k: after a restart')
        log = kd.stderr()
        rc, _ = kd.stop()
        CK.eq(rc, 0, 'k: restarted keylined exits 0')
    finally:
        kd.kill()
    CK.check(pk not in log.lower(), 'k: no pair key bytes in keylined\'s log')


def main():
    with tempfile.TemporaryDirectory(prefix='kl-dia-') as work:
        try:
            env = Env(work)
            kd = env.start()
            try:
                e1, keys = pushes_and_fetches(env, kd)
                refusals(env, kd, e1)
                metrics_counters(env)
                log1 = kd.stderr()
                rc, _ = kd.stop()
                CK.eq(rc, 0, 'keylined exits 0 on SIGTERM')
                # kl_diameter's GnuTLS interposers serialised freeDiameter's sends (its stop line)
                with open(kd.log_path) as f:
                    m = re.search(r"TLS workaround: freeDiameter's sessions (\d+) sends", f.read())
                CK.check(m is not None and int(m.group(1)) > 0,
                         'keylined\'s freeDiameter TLS sends took the serialised path (%s)'
                         % (m.group(0) if m else 'no TLS workaround line'))
            finally:
                kd.kill()
            # e. restart on the same store
            kd = env.start()
            try:
                CK.check('store %s loaded: 1 UEs, 0 groups, 1 EMSEs, 3 IMSIs, 16 app ids'
                         % env.store in kd.stderr(), 'e: restart loaded the pushed entries: %s'
                         % kd.stderr()[-600:])
                f = env.fetch(IMSI1)
                CK.eq(f.get('e2m_key'), e1[2], 'e: after a restart the same e2m_key')
                CK.eq(env.fetch(APPID).get('e2m_key'), e1[2], 'e: and by application identity')
                f = env.fetch(IMSI2, keys[0][1])
                CK.eq(f.get('detail'), 2, 'e: the evicted key stays evicted')
                f = env.fetch(IMSI2, keys[1][1])
                CK.eq(f.get('e2m_key'), keys[1][2], 'e: the kept key is served')
                CK.eq(env.fetch(IMSI2, keys[2][1]).get('detail'), 2,
                      'e: the removed key stays removed')
                rc, ans = env.ctl('show', 'appid', 'overflow')
                CK.eq(rc, 1, 'e: the refused application identity was never stored')
                rc, ans = env.ctl('show', 'appid', 'fill-0')
                CK.eq(ans.get('imsi'), IMSI2, 'e: the replacement made while full was stored')
                log2 = kd.stderr()
                rc, _ = kd.stop()
                CK.eq(rc, 0, 'restarted keylined exits 0')
            finally:
                kd.kill()
            for bad in ('AddressSanitizer', 'runtime error', 'LeakSanitizer'):
                CK.check(bad not in log1 + log2, 'no %s in keylined\'s output' % bad)
            low = (log1 + log2).lower()
            for k in env.secrets:
                CK.check(k.lower() not in low, 'no key bytes in keylined\'s log (%s...)' % k[:8])
            rotation(env)
            no_store(env)
            muk_expiry(env)
            pairs_and_services(env)
        finally:
            for kd in LIVE:
                kd.kill()
    return CK.done()


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keylined with a durable key store (kernel-socket io on loopback): keys written with keylinectl
survive a restart (same key check values and counts, a deleted entry stays deleted, an entry a
full table refused is not stored either), a test
population import is refused while a store is configured, and a KEK file with mode 0644, a wrong
KEK or a store overwritten with garbage stop keylined with exit status 2 and a clear message;
two keylined importing one population with pair keys hold the same key with each other.
    test_keylined_store.py KEYLINED KEYLINECTL"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, keylinectl = sys.argv[1:3]
ck = kl_itest.Checks('keylined-store')
tmp = tempfile.mkdtemp(prefix='kl-store-')
kek = os.path.join(tmp, 'kek')
store = os.path.join(tmp, 'store')
sock = os.path.join(tmp, 'admin.sock')
runs = [0]


def write_kek(data):
    kl_itest.write_kek(kek, data)


def config():
    return kl_itest.write_config(
        os.path.join(tmp, 'keylined.yaml'), ipv4=('127.0.0.1',), ipv6=(), admin=sock,
        table={'ues': 3},
        extra={'io': 'socket', 'udp_port': kl_itest.free_udp_port(),
               'store': f'{{path: "{store}", kek_file: "{kek}", map_size_mb: 64}}'})


def eal():
    runs[0] += 1
    return kl_itest.eal_args(kl_itest.unique(f'st{runs[0]}'), mem=256)


def ctl(*args):
    p = subprocess.run([keylinectl, '-s', sock, '--json'] + list(args), capture_output=True,
                       text=True, timeout=30)
    try:
        ans = json.loads(p.stdout) if p.stdout.strip() else {}
    except ValueError:
        ans = {'raw': p.stdout}
    return p.returncode, ans, p.stderr


def failed_start(what, want_text):
    """keylined must refuse to start: exit 2, 'keylined: error: store: ...' naming want_text."""
    p = subprocess.run([keylined] + eal() + ['--', '-c', config()], capture_output=True,
                       text=True, timeout=60)
    ck.eq(p.returncode, 2, f'{what}: exit status (stderr: {p.stderr[-600:]})')
    lines = [l for l in p.stderr.splitlines() if l.startswith('keylined: error: store: ')]
    ck.check(lines and want_text in lines[0],
             f'{what}: "keylined: error: store: ..." naming {want_text!r}: {p.stderr[-600:]}')
    ck.check('ready' not in p.stdout, f'{what}: never ready')
    for bad in ('AddressSanitizer', 'runtime error', 'Segmentation'):
        ck.check(bad not in p.stderr, f'{what}: no {bad} in stderr')


KINDS = [('ue', 'ue1@ims.example.org'), ('ue', 'ue2@ims.example.org'), ('group', '00f110:3'),
         ('emse', 'emse-1'), ('imsi', '001010123456789'), ('appid', 'app-1')]

write_kek(os.urandom(32))
kd = kl_itest.Keylined(keylined, eal(), config(), workdir=tmp)
before = {}
try:
    kd.wait_ready()
    ck.check(os.path.isdir(store), 'the store directory was created')
    ck.eq(os.stat(store).st_mode & 0o777, 0o700, 'store directory mode')
    steps = [
        ('put-ue', KINDS[0][1], '--muk', os.urandom(32).hex(), '--group', '00f110:3'),
        ('put-ue', KINDS[1][1], '--muk', os.urandom(20).hex()),
        ('put-ue', 'gone@ims.example.org', '--muk', os.urandom(32).hex()),
        ('put-group', '00f110:3', '--msk', os.urandom(16).hex(), '--key-number', '1',
         '--valid-from', 'now-60', '--valid-to', 'now+3600', '--next-msk', os.urandom(16).hex()),
        ('put-emse', KINDS[3][1], '--psk', os.urandom(32).hex()),
        ('push-e2m', KINDS[4][1], '--key', os.urandom(32).hex(), '--key-id', '7'),
        ('push-e2m', KINDS[4][1], '--key', os.urandom(32).hex(), '--key-id', '8',
         '--expires', 'now+86400'),
        ('put-appid', KINDS[5][1], KINDS[4][1]),
        ('put-ue', KINDS[0][1], '--muk', os.urandom(32).hex(), '--group', '00f110:3'),
    ]
    for s in steps:
        rc, ans, err = ctl(*s)
        ck.eq(rc, 0, f'keylinectl {s[0]} {s[1]} ({err.strip()})')
    # the table (3 UEs) is full: the store's record of the refused UE is taken out again
    rc, ans, err = ctl('put-ue', 'overflow@ims.example.org', '--muk', os.urandom(16).hex())
    ck.eq(rc, 1, f'put-ue into a full table is refused ({ans} {err.strip()})')
    ck.check('table full' in json.dumps(ans) + err, f'refusal names the full table: {ans} {err}')
    rc, ans, err = ctl('del', 'ue', 'gone@ims.example.org')
    ck.eq(rc, 0, f'del ue gone ({err.strip()})')
    for kind, ident in KINDS:
        rc, ans, err = ctl('show', kind, ident)
        ck.eq(rc, 0, f'show {kind} {ident} ({err.strip()})')
        before[(kind, ident)] = ans
    rc, count_before, _ = ctl('count')
    ck.eq(count_before.get('counts', {}).get('ues'), 2, f'two UEs before restart: {count_before}')
    ans = kl_itest.admin(sock, {'cmd': 'import-population',
                     'params': {'seed': 1, 'ues': 10, 'groups': 1, 'emses': 1, 'imsis': 1,
                                'appids': 1, 'e2m-keys': 1, 'now': 3900000000,
                                'msk-period': 3600}})
    ck.eq(ans.get('ok'), False, f'import-population refused with a store: {ans}')
    ck.check('not stored' in ans.get('error', ''), f'refusal says why: {ans}')
    rc, _ = kd.stop()
    ck.eq(rc, 0, 'keylined exits 0 on SIGTERM')
    log = open(kd.log_path).read()
    ck.check(f'store {store} loaded: 0 UEs' in log,
             'first start logged an empty store load: ' + log[-800:])
finally:
    kd.kill()

# restart on the same store, no population: the same entries, key check values and counts
kd = kl_itest.Keylined(keylined, eal(), config(), workdir=tmp)
try:
    kd.wait_ready()
    for kind, ident in KINDS:
        rc, ans, err = ctl('show', kind, ident)
        ck.eq(rc, 0, f'after restart: show {kind} {ident} ({err.strip()})')
        ck.eq(ans, before[(kind, ident)], f'after restart: {kind} {ident} unchanged')
    rc, count_after, _ = ctl('count')
    ck.eq(count_after.get('counts'), count_before.get('counts'), 'after restart: counts')
    rc, ans, err = ctl('show', 'ue', 'gone@ims.example.org')
    ck.eq(rc, 1, 'after restart: the deleted UE stays deleted')
    rc, ans, err = ctl('show', 'ue', 'overflow@ims.example.org')
    ck.eq(rc, 1, 'after restart: the UE the full table refused was not stored')
    ck.check('loaded: 2 UEs, 1 groups, 1 EMSEs, 1 IMSIs, 1 app ids' in kd.stderr(),
             'restart logged the loaded counts: ' + kd.stderr()[-800:])
    rc, _ = kd.stop()
    ck.eq(rc, 0, 'restarted keylined exits 0 on SIGTERM')
finally:
    kd.kill()

good = open(kek, 'rb').read()
os.chmod(kek, 0o644)
failed_start('KEK file mode 0644', f'KEK file {kek} has mode 0644')
write_kek(os.urandom(32))
failed_start('a different KEK', 'wrong KEK')
write_kek(good)
data = os.path.join(store, 'data.mdb')
size = os.path.getsize(data)
with open(data, 'wb') as f:
    f.write(os.urandom(size))
failed_start('data.mdb overwritten with garbage', store)

# a test population with pair keys (issue 11): two keylined, vlr-0 and vlr-1 of the population,
# each -p the same file, hold the same pair key with the other (the same KCV), none with
# themselves; the population's UEs get mbms and hm
pop = os.path.join(tmp, 'pop-pairs.txt')
with open(pop, 'w') as f:
    f.write('keyline-population 1\nseed 11\nues 2\ngroups 1\nemses 0\nimsis 0\nappids 0\n'
            'e2m-keys 1\nnow 3900000000\nmsk-period 3600\npairs 3\n')
pair_kcv = {}
for me, other in (('vlr-0.pop.keyline.test', 'vlr-1.pop.keyline.test'),
                  ('vlr-1.pop.keyline.test', 'vlr-0.pop.keyline.test')):
    cfg = kl_itest.write_config(
        os.path.join(tmp, 'keylined-pop.yaml'), ipv4=('127.0.0.1',), ipv6=(), admin=sock,
        identity=me, table={'ues': 3},
        extra={'io': 'socket', 'udp_port': kl_itest.free_udp_port()})
    kd = kl_itest.Keylined(keylined, eal(), cfg, args=['-p', pop], workdir=tmp)
    try:
        kd.wait_ready()
        rc, ans, err = ctl('show', 'pair', other)
        ck.eq((rc, ans.get('expires')), (0, 0), f'{me}: its pair key with {other} ({err.strip()})')
        pair_kcv[me] = ans.get('kcv')
        rc, ans, _ = ctl('show', 'pair', me)
        ck.eq(rc, 1, f'{me}: no pair key with itself')
        rc, ans, _ = ctl('count')
        ck.eq((ans.get('counts') or {}).get('pairs'), 2, f'{me}: two pair keys')
        rc, ans, _ = ctl('show', 'ue', 'ue00000001@ims.mnc001.mcc001.3gppnetwork.org')
        ck.eq(ans.get('services'), ['mbms', 'hm'], f'{me}: population UE services')
        ck.check('2 pair keys in' in kd.stderr(), f'{me}: the import logged its pair keys: '
                 + kd.stderr()[-600:])
        rc, _ = kd.stop()
        ck.eq(rc, 0, f'{me}: keylined exits 0')
    finally:
        kd.kill()
ck.check(pair_kcv.get('vlr-0.pop.keyline.test') is not None and
         pair_kcv.get('vlr-0.pop.keyline.test') == pair_kcv.get('vlr-1.pop.keyline.test'),
         f'both servers hold the same pair key: {pair_kcv}')
rc = ck.done()
if rc == 0:  # the KEK and the stores are test keys, but none stays in /tmp; kept after a failure
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(rc)

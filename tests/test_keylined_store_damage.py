#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A damaged store never crashes keylined, and a backup brings it back (issue 15).
keylined with a small store (a few hundred entries of every kind, written through the admin
socket); `keylinectl backup FILE` while it serves (mode 0600, an existing FILE refused, a
missing directory refused); then, with keylined stopped, every 4 KiB page of data.mdb in turn is
zeroed, and single bytes of data pages are flipped: each start must end either in exit 2 with a
message naming the store and the way back (README "Restoring the store"), or in a clean start
serving exactly the entries of before (damage to a free page is harmless) -- never in a signal.
Finally the documented restore (copy the backup to data.mdb, remove lock.mdb) brings back every
entry with the same key check values.
    test_keylined_store_damage.py KEYLINED KEYLINECTL"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, keylinectl = (os.path.abspath(a) for a in sys.argv[1:3])
ck = kl_itest.Checks('keylined-store-damage')
tmp = tempfile.mkdtemp(prefix='kl-damage-')
kek = os.path.join(tmp, 'kek')
store = os.path.join(tmp, 'store')
data = os.path.join(store, 'data.mdb')
sock = os.path.join(tmp, 'admin.sock')
PAGE = 4096
N_UE, N_GROUP, N_EMSE, N_IMSI = 240, 4, 8, 8
runs = [0]
rng = random.Random(15)

fd = os.open(kek, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, os.urandom(32))
os.close(fd)


def config():
    return kl_itest.write_config(
        os.path.join(tmp, 'keylined.yaml'), ipv4=('127.0.0.1',), ipv6=(), admin=sock,
        table={'ues': N_UE + 16},
        extra={'io': 'socket', 'udp_port': kl_itest.free_udp_port(),
               'store': f'{{path: "{store}", kek_file: "{kek}", map_size_mb: 64}}'})


def eal():
    runs[0] += 1
    return kl_itest.eal_args(kl_itest.unique(f'dm{runs[0]}'), mem=128, lcores='0-1')


def ctl(*args, cwd=None):
    p = subprocess.run([keylinectl, '-s', sock] + list(args), capture_output=True, text=True,
                       timeout=60, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


IDS = ([('ue', f'ue{i}@ims.example.org') for i in range(N_UE)] +
       [('group', f'00f110:{g + 1}') for g in range(N_GROUP)] +
       [('emse', f'emse-{i}') for i in range(N_EMSE)] +
       [('imsi', f'0010101234567{i:02d}') for i in range(N_IMSI)] +
       [('appid', f'app-{i}') for i in range(N_IMSI)])


def writes():
    now = int(time.time())
    reqs = []
    for g in range(N_GROUP):
        reqs.append({'cmd': 'put-group', 'group': f'00f110:{g + 1}',
                     'current': {'key': os.urandom(16).hex(), 'msk_id': 1,
                                 'valid_from': now - 60, 'valid_to': now + 3600}})
    for i in range(N_UE):
        reqs.append({'cmd': 'put-ue', 'id': f'ue{i}@ims.example.org',
                     'muk': os.urandom(32).hex(), 'groups': [f'00f110:{i % N_GROUP + 1}']})
    for i in range(N_EMSE):
        reqs.append({'cmd': 'put-emse', 'id': f'emse-{i}', 'psk': os.urandom(32).hex()})
    for i in range(N_IMSI):
        imsi = f'0010101234567{i:02d}'
        for k in (1, 2):
            reqs.append({'cmd': 'push-e2m', 'imsi': imsi, 'key': os.urandom(32).hex(),
                         'key_id': k, 'expires': 0})
        reqs.append({'cmd': 'put-appid', 'appid': f'app-{i}', 'imsi': imsi})
    # some deletions and replacements leave free pages behind in the file
    for i in range(0, N_UE, 8):
        reqs.append({'cmd': 'del', 'kind': 'ue', 'id': f'ue{i}@ims.example.org'})
    return reqs


def snapshot():
    """Every entry as keylined shows it (metadata, key check values), and the counts."""
    ans = kl_itest.admin_many(sock, [{'cmd': 'show', 'kind': k, 'id': i} for k, i in IDS] +
                              [{'cmd': 'count'}])
    return {'entries': [json.dumps(a, sort_keys=True) for a in ans[:-1]],
            'counts': ans[-1].get('counts')}


def start():
    """keylined on the store: (Keylined ready, None) or (None, CompletedProcess-like)."""
    kd = kl_itest.Keylined(keylined, eal(), config(), workdir=tmp)
    try:
        kd.wait_ready(timeout=30)
        return kd, None
    except RuntimeError:
        return None, (kd.p.returncode, kd.stderr())


def drop_lock():
    lock = os.path.join(store, 'lock.mdb')
    if os.path.exists(lock):
        os.unlink(lock)


def try_damaged(what, image, want):
    """Start keylined on a damaged data.mdb: exit 2 with the message, or serving `want`."""
    with open(data, 'wb') as f:
        f.write(image)
    drop_lock()
    kd, failed = start()
    if kd:
        try:
            got = snapshot()
            ck.check(got == want, f'{what}: keylined started: it serves the entries of before')
            rc, _ = kd.stop()
            ck.eq(rc, 0, f'{what}: keylined started and stops with 0')
        finally:
            kd.kill()
        return 'started'
    rc, err = failed
    ck.check(rc is not None and rc >= 0, f'{what}: no signal (exit status {rc}): {err[-400:]}')
    ck.eq(rc, 2, f'{what}: exit status (stderr: {err[-400:]})')
    lines = [l for l in err.splitlines() if l.startswith('keylined: error: store')]
    ck.check(lines and store in lines[0] and 'Restoring the store' in lines[0],
             f'{what}: one error line naming the store and the restore: {err[-400:]}')
    for bad in ('AddressSanitizer', 'runtime error', 'Segmentation'):
        ck.check(bad not in err, f'{what}: no {bad} in stderr')
    if os.environ.get('KL_DAMAGE_VERBOSE'):
        print(f'{what}: {lines[0] if lines else err[-300:]}', flush=True)
    return 'refused'


t0 = time.time()
kd = kl_itest.Keylined(keylined, eal(), config(), workdir=tmp)
backup = os.path.join(tmp, 'backups', 'keyline-1.mdb')
os.mkdir(os.path.dirname(backup), 0o700)
try:
    kd.wait_ready()
    answers = kl_itest.admin_many(sock, writes())
    bad = [a for a in answers if not a.get('ok')]
    ck.check(not bad, f'every write accepted: {bad[:3]}')
    before = snapshot()
    ck.eq(sum(before['counts'].values()), N_UE - N_UE // 8 + N_GROUP + N_EMSE + 2 * N_IMSI,
          f'entries written: {before["counts"]}')
    # online backup, FILE relative to keylinectl's directory
    rc, out, err = ctl('backup', 'keyline-1.mdb', cwd=os.path.dirname(backup))
    ck.eq(rc, 0, f'keylinectl backup ({out.strip()} {err.strip()})')
    ck.check(out.startswith(f'backup {backup}: ') and 'bytes in' in out,
             f'backup says where and how much: {out!r}')
    ck.check(os.path.isfile(backup), 'the backup file exists')
    ck.eq(os.stat(backup).st_mode & 0o777, 0o600, 'backup file mode')
    ck.eq(sorted(os.listdir(os.path.dirname(backup))), ['keyline-1.mdb'],
          'no temporary file left beside the backup')
    size = os.path.getsize(backup)
    rc, out, err = ctl('backup', backup)
    ck.eq(rc, 1, f'a second backup to the same file is refused ({err.strip()})')
    ck.check('exists' in err, f'refusal says the file exists: {err.strip()}')
    ck.eq(os.path.getsize(backup), size, 'the existing backup is left as it was')
    rc, out, err = ctl('backup', os.path.join(tmp, 'no-such-dir', 'b.mdb'))
    ck.eq(rc, 1, f'a backup into a missing directory is refused ({err.strip()})')
    st = kl_itest.admin_many(sock, [{'cmd': 'backup-status'}])[0]
    ck.check(st.get('ok') and st.get('running') is False and st.get('last', {}).get('id') == 1
             and st['last'].get('ok') and st['last'].get('file') == backup,
             f'backup-status: the refused ones never started, #1 done: {st}')
    ck.eq(snapshot(), before, 'keylined serves the same entries after the backups')
    rc, _ = kd.stop()
    ck.eq(rc, 0, 'keylined exits 0 on SIGTERM')
    log = open(kd.log_path).read()
    ck.check('backup #1 to ' in log and ' done: ' in log, 'the backup is logged: ' + log[-600:])
finally:
    kd.kill()

orig = open(data, 'rb').read()
npages = len(orig) // PAGE
ck.check(npages >= 8, f'the store has a few pages ({npages})')
outcome = {'started': 0, 'refused': 0}
for pg in range(npages):
    img = orig[:pg * PAGE] + bytes(PAGE) + orig[(pg + 1) * PAGE:]
    outcome[try_damaged(f'page {pg} of {npages} zeroed', img, before)] += 1
# single bytes: a random byte of data pages (the meta pages 0 and 1 name the newest transaction:
# a flip there can select the previous, intact one, which LMDB cannot tell from a newer one)
flips = {'started': 0, 'refused': 0}
for pg in rng.sample(range(2, npages), min(16, npages - 2)):
    off = pg * PAGE + rng.randrange(PAGE)
    img = bytearray(orig)
    img[off] ^= 1 << rng.randrange(8)
    flips[try_damaged(f'byte {off} (page {pg}) flipped', bytes(img), before)] += 1
print(f'zeroed pages: {outcome}; flipped bytes: {flips}', flush=True)
ck.check(outcome['refused'] > 0, 'zeroed pages in use were refused')

# the documented restore: keylined stopped, the backup copied to data.mdb, lock.mdb removed
shutil.copyfile(backup, data)
os.chmod(data, 0o600)
drop_lock()
kd, failed = start()
ck.check(kd is not None, f'keylined starts on the restored store: {failed}')
if kd:
    try:
        ck.check(snapshot() == before, 'after the restore: every entry and key check value')
        rc, _ = kd.stop()
        ck.eq(rc, 0, 'restored keylined exits 0')
    finally:
        kd.kill()
print(f'{runs[0]} keylined runs in {time.time() - t0:.1f} s', flush=True)
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(ck.done())

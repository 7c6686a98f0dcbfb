#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The DH VLR scheme (kind 4) and ProSe network-assisted keys (kind 5) across two keylined
(PROTOCOL.md sections 9 and 10; issue 12 tests, "two keylined processes"): vlr-a and vlr-b on
loopback (--io socket), each the other's configured peer, load the same TEST population, whose
pair key K(vlr-a, vlr-b) follows from its seed and is the same on both (keyline-population
--pairs). Each then deletes the other side's UEs: vlr-a holds only side A's UEs (even population
indices), vlr-b only side B's (odd), so a value reaches the other side only through a kind 6 or
kind 7 exchange between the two servers.

1. keyline-burst two-server mode (side A's UEs at vlr-a, side B's at vlr-b): KL_S2S_PAIRS
   (default 10,000) DH pairs, then as many ProSe pairs; both UEs of every pair derive the same
   Ks / KD, equal to the one keyline-burst derives from the population's keys. Every DH UE's
   first answer is ERR 12/5 (its server has to ask the other); both servers count a kind 6
   (DH) or kind 7 (ProSe) per pair received and answered, and their peer counters show the
   exchanges (sent, answered, received) with nothing failed or refused.
2. vlr-b is killed (SIGKILL) in the middle of two more bursts (fresh pairs, DH and ProSe at once):
   the pairs done before succeed; vlr-a's UEs of the others get ERR 12/5 until their pair
   timeout (keyline-burst: pair_timeout on side A, the side-B partner peer_failed, exit 1);
   vlr-a keeps running and serving (MBMS and local DH pairs answered while vlr-b is down) and
   its counters for vlr-b show the exchanges that failed (given up after 3 tries).
3. vlr-b restarts (same config, same population): fresh DH and ProSe pairs succeed, and so do
   the pairs that the outage broke, run again once their rendezvous lifetime is over.
The two-server figures (pairs/s end to end, p50 / p99 time from a pair's first request to its
second key, per kind, keyline-burst --mode max --inflight 1024) are printed as
"keylined-s2s: figure:" lines.

The config keeps rendezvous_s and dh_cache_s short (LIFE_S = 5 s): a run's pairs then leave the
rendezvous table and the peers' answer cache soon after the run, so the later runs of this test
never meet tables that the earlier ones filled, and the pairs the outage left half done (a value
held on one side, a question given up) are gone before they are run again; keyline-burst's pair
timeout is that lifetime (its default, 30 s, is the default lifetime), shorter in the outage so
that side A's UEs give up before side B's unanswered requests do. The tables have their default
sizes (65,536 entries): 10,000 pairs must fit without a refusal.
    test_keylined_s2s.py KEYLINED KEYLINE_BURST KEYLINE_POPULATION KEYLINECTL"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, burst, popgen, keylinectl = sys.argv[1:5]
ck = kl_itest.Checks('keylined-s2s')
tmp = tempfile.mkdtemp(prefix='kl-s2s-')
PAIRS = int(os.environ.get('KL_S2S_PAIRS', '10000'))
OUTAGE = int(os.environ.get('KL_S2S_OUTAGE_PAIRS', '1500'))  # per kind
AFTER = int(os.environ.get('KL_S2S_AFTER_PAIRS', '1000'))
LIFE_S = 5
OUTAGE_RATE = 500  # pairs/s per kind: the outage's pairs start over 3 s
# population indices: [0, 2 PAIRS) the main runs (both kinds), then the outage's DH pairs and
# its ProSe pairs, then the pairs after the restart (both kinds); LOCAL UEs last, kept on both
# servers (MBMS and local DH pairs while vlr-b is down)
OUT_DH = 2 * PAIRS
OUT_PROSE = OUT_DH + 2 * OUTAGE
NEW0 = OUT_PROSE + 2 * OUTAGE
LOC0 = NEW0 + 2 * AFTER
LOCAL = 8
UES = LOC0 + LOCAL
NAMES = ('vlra', 'vlrb')
IDS = ('vlr-0.pop.keyline.test', 'vlr-1.pop.keyline.test')  # the population's peers 0 and 1
pop = os.path.join(tmp, 'pop.txt')


def ue_id(i):
    return f'ue{i:08d}@ims.mnc001.mcc001.3gppnetwork.org'


def admin(side, reqs):
    return kl_itest.admin_many(os.path.join(tmp, f'{NAMES[side]}.sock'), reqs)


def config(side):
    other = 1 - side
    return kl_itest.write_config(
        os.path.join(tmp, f'{NAMES[side]}.yaml'), ipv4=('127.0.0.1',), ipv6=(),
        admin=os.path.join(tmp, f'{NAMES[side]}.sock'), identity=IDS[side],
        table={'ues': UES + 16, 'dh_ues': UES + 16, 'pairs': 8},
        extra={'io': 'socket', 'udp_port': port[side],
               'peers': f'[{{identity: "{IDS[other]}", address: 127.0.0.1, '
                        f'port: {port[other]}}}]',
               'rendezvous_s': LIFE_S, 'dh_cache_s': LIFE_S})


def launch(side):
    """keylined for side; its log in a directory of its own (one per start)."""
    wd = tempfile.mkdtemp(prefix=NAMES[side] + '-', dir=tmp)
    kd = kl_itest.Keylined(keylined, kl_itest.eal_args(kl_itest.unique(NAMES[side])), cfg[side],
                           ['-p', pop], workdir=wd)
    live.append(kd)
    return kd


def own_side_only(side, kd):
    """After ready: the other side's UEs deleted (the LOCAL UEs kept); the count checked."""
    kd.wait_ready()
    ans = admin(side, [{'cmd': 'del', 'kind': 'ue', 'id': ue_id(i)}
                       for i in range(1 - side, LOC0, 2)])
    ck.eq(sum(1 for a in ans if a.get('ok')), LOC0 // 2,
          f'{NAMES[side]}: the other side\'s UEs deleted '
          f'({[a for a in ans if not a.get("ok")][:2]})')
    cnt = admin(side, [{'cmd': 'count'}])[0].get('counts') or {}
    ck.eq(cnt.get('ues'), LOC0 // 2 + LOCAL, f'{NAMES[side]}: UEs held: its own side\'s only')
    ck.eq(cnt.get('pairs'), 1, f'{NAMES[side]}: the pair key with the other server')


def summary(out):
    lines = [json.loads(l) for l in out.splitlines() if l.startswith('{')]
    return lines[-1] if lines else {}


def burst_cmd(kind, first, n, extra=(), two=True):
    cmd = [burst, '--io', 'socket', '--population', pop, '--kind', kind, '--server-ip',
           '127.0.0.1', '--server-port', str(port[0]), '--first', str(first), '--ues', str(n)]
    if kind != 'mbms':
        cmd += ['--server-id', IDS[0]]
    if two:
        cmd += ['--peer-server-id', IDS[1], '--peer-server-ip', '127.0.0.1',
                '--peer-server-port', str(port[1])]
    return cmd + list(extra)


# every pair must agree: UE timeouts with room for a loaded machine
GOOD = ['--mode', 'max', '--inflight', '1024', '--timeout-ms', '500', '--retries', '4',
        '--pair-timeout-ms', str(LIFE_S * 1000), '--interval-ms', '0']


def run(kind, first, n, extra=GOOD, two=True, timeout=300):
    t = time.time()
    p = subprocess.run(burst_cmd(kind, first, n, extra, two), capture_output=True, text=True,
                       timeout=timeout)
    return p, summary(p.stdout), time.time() - t


def check_pairs(what, kind, p, s, n):
    return kl_itest.check_pairs(ck, what, kind, p.returncode, p.stderr, s, n)


def figure(what, pr, secs):
    tk, rt = pr.get('time_to_key_us') or {}, pr.get('retries') or {}
    print(f'keylined-s2s: figure: {what}: {pr.get("ok")} pairs, '
          f'{pr.get("pairs_per_s", 0):.0f} pairs/s end to end, time to key p50 '
          f'{tk.get("p50", 0) / 1000:.1f} ms p99 {tk.get("p99", 0) / 1000:.1f} ms, ERR 12/5 '
          f'rounds per pair mean {rt.get("mean", 0):.2f} max {rt.get("max")} '
          f'(keyline-burst ran {secs:.1f} s)', flush=True)


def peer_counters(side):
    return admin(side, [{'cmd': 'peers'}])[0]['peers'][0]['counters']


def engine(side):
    """The engine counters, with the drops that tell a lost or refused exchange apart."""
    st = admin(side, [{'cmd': 'stats'}])[0]
    e = dict(st['engine'])
    e.update({f'drop_{k}': v for k, v in st['engine_drops'].items()})
    e.update({f'io_{k}': v for k, v in st['io'].items()})
    return e


def s2s_status(side):
    return admin(side, [{'cmd': 'status'}])[0].get('s2s') or {}


def delta(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items()}


def snapshot():
    return [(engine(x), peer_counters(x)) for x in (0, 1)]


def check_exchanges(what, before, kind, n):
    """Each server received and answered a kind 6 (dh) / kind 7 (prose) per pair and had its
    own answered; nothing failed or refused."""
    k = 'peerpv' if kind == 'dh' else 'push'
    for x in (0, 1):
        e, pc = engine(x), peer_counters(x)
        de, dp = delta(e, before[x][0]), delta(pc, before[x][1])
        ck.check(de[f'requests_{k}'] >= n and de[f'answered_{k}'] >= n,
                 f'{what}: {NAMES[x]} received and answered kind {6 if k == "peerpv" else 7} '
                 f'for every pair: {de[f"requests_{k}"]} / {de[f"answered_{k}"]}')
        ck.check(dp['sent'] >= n and dp['answered'] >= n and dp['received'] >= n,
                 f'{what}: {NAMES[x]}\'s peer counters sent/answered/received >= {n}: {dp}')
        ck.eq((dp['failed'], dp['refused']), (0, 0),
              f'{what}: {NAMES[x]}: none failed or refused (engine: '
              f'{ {k: v for k, v in de.items() if v and not k.startswith("requests_")} })')
        st = s2s_status(x)
        ck.eq([(st.get(t) or {}).get('full') for t in ('rendezvous', 'cache', 'pending')],
              [0, 0, 0], f'{what}: {NAMES[x]}: no table refused an entry ({st})')


def reader(proc, lines):
    for line in proc.stdout:
        lines.append(line)


subprocess.run([popgen, '--seed', '21', '--ues', str(UES), '--groups', '1', '--emses', '1',
                '--imsis', '1', '--appids', '0', '--pairs', '2', '--services', 'mbms,dh,prose',
                '-o', pop], check=True, capture_output=True)
live = []
clients = []
port = [kl_itest.free_udp_port(), kl_itest.free_udp_port()]
while port[1] == port[0]:
    port[1] = kl_itest.free_udp_port()
cfg = [config(0), config(1)]
T0 = time.time()
try:
    ka, kb = launch(0), launch(1)  # both load the population at once
    own_side_only(0, ka)
    own_side_only(1, kb)
    print(f'keylined-s2s: both servers ready with their own side\'s UEs after '
          f'{time.time() - T0:.1f} s', flush=True)

    # 1. every pair agrees, its values carried between the servers
    for kind in ('dh', 'prose'):
        before = snapshot()
        p, s, secs = run(kind, 0, PAIRS)
        pr = check_pairs(f'{kind}, two servers', kind, p, s, PAIRS)
        figure(f'{kind}, two keylined over sockets', pr, secs)
        if kind == 'dh':  # neither server holds the other side's UE: it asks the other first
            ck.check((pr.get('retries') or {}).get('total', 0) >= 2 * PAIRS,
                     f'dh: every UE\'s first answer ERR 12/5 ({pr.get("retries")})')
        check_exchanges(f'{kind}, two servers', before, kind, PAIRS)

    # 2. vlr-b killed mid-run: DH and ProSe pairs at once, fresh ones
    before_a = peer_counters(0)
    bad = ['--mode', 'rate', '--rate', str(OUTAGE_RATE), '--inflight', '4096', '--timeout-ms',
           '300', '--retries', '3', '--pair-timeout-ms', '3000', '--fail-list',
           str(2 * OUTAGE), '--interval-ms', '100']
    runs = {}

    def done_ues(lines):
        d = [json.loads(l).get('done', 0) for l in list(lines) if l.startswith('{')]
        return max(d) if d else 0

    # DH first: keyline-burst derives every pair's Ks before its run starts; ProSe once DH
    # runs; vlr-b killed once a fifth of each run's UEs are done
    for kind, first in (('dh', OUT_DH), ('prose', OUT_PROSE)):
        pp = subprocess.Popen(burst_cmd(kind, first, OUTAGE, bad), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        clients.append(pp)
        lines = []
        th = threading.Thread(target=reader, args=(pp, lines), daemon=True)
        th.start()
        runs[kind] = (pp, lines, th)
        end = time.time() + 60
        while time.time() < end and not lines and pp.poll() is None:
            time.sleep(0.02)
    end = time.time() + 60
    while time.time() < end and not all(done_ues(r[1]) >= 2 * OUTAGE // 5
                                        for r in runs.values()):
        time.sleep(0.02)
    t_kill = time.time()
    kb.kill()  # SIGKILL, its EAL runtime directory removed
    live.remove(kb)
    ck.eq(kb.p.returncode, -signal.SIGKILL, 'vlr-b killed')
    print('keylined-s2s: vlr-b killed with ' +
          ', '.join(f'{k} {done_ues(r[1])} UEs done' for k, r in runs.items()), flush=True)
    res = {}
    for kind, (pp, lines, th) in runs.items():
        pp.wait(timeout=120)
        th.join(timeout=10)
        err = pp.stderr.read()
        res[kind] = (pp.returncode, summary(''.join(lines)), err)
    print(f'keylined-s2s: the outage\'s runs ended {time.time() - t_kill:.1f} s after the kill',
          flush=True)
    for kind, (rc, s, err) in res.items():
        pr = s.get('pairs') or {}
        what = f'{kind}, vlr-b killed mid-run'
        ck.eq(rc, 1, f'{what}: keyline-burst exits 1 ({err[-300:]})')
        ck.eq(pr.get('pairs'), OUTAGE, f'{what}: pairs')
        ck.check(0 < pr.get('ok', 0) < OUTAGE,
                 f'{what}: the pairs done before the kill agree, the others fail: {pr.get("ok")} '
                 f'ok, {pr.get("failed")} failed')
        ck.check((s.get('counters') or {}).get('waits', 0) > 0, f'{what}: ERR 12/5 counted')
        fs = s.get('failures') or {}
        fl = fs.get('list') or []
        ck.eq((fs.get('list_truncated'), len(fl)), (False, fs.get('count')),
              f'{what}: every failure listed')
        by = {}
        for f in fl:
            by.setdefault((f.get('side'), f.get('reason')), 0)
            by[(f.get('side'), f.get('reason'))] += 1
        # a failed pair: side A got 12/5 from vlr-a until its pair timeout, or side B's
        # requests went unanswered (side A had vlr-b's value before the kill); the partner of
        # either fails with it. (On a starved machine a pair started well before the kill may
        # also see its side B time out at 12/5.) Never a wrong key or a bad answer.
        ck.check(by.get(('a', 'pair_timeout'), 0) >= 1,
                 f'{what}: side A\'s UEs got 12/5 and then timed out: {by}')
        ck.check({r for _, r in by} <= {'pair_timeout', 'timeout', 'peer_failed'},
                 f'{what}: no other failure (no key mismatch, no wrong or bad answer): {by}')
        cause = sum(v for (_, r), v in by.items() if r != 'peer_failed')
        partner = sum(v for (_, r), v in by.items() if r == 'peer_failed')
        ck.check(cause == partner == pr.get('failed'),
                 f'{what}: one cause and its partner per failed pair: {by}')
        print(f'keylined-s2s: {what}: {pr.get("ok")} pairs ok, {pr.get("failed")} failed '
              f'({", ".join(f"side {a} {b}: {v}" for (a, b), v in sorted(by.items()))}), '
              f'{(s.get("counters") or {}).get("waits")} ERR 12/5', flush=True)
    ck.check(ka.p.poll() is None, 'vlr-a still running')
    pa = peer_counters(0)
    ck.check(pa['failed'] > before_a['failed'] and pa['retried'] > before_a['retried'],
             f'vlr-a: exchanges with vlr-b retried and failed: {delta(pa, before_a)}')
    ctl = subprocess.run([keylinectl, '-s', os.path.join(tmp, 'vlra.sock'), '--json', 'peers'],
                         capture_output=True, text=True, timeout=60)
    ck.eq(ctl.returncode, 0, f'keylinectl peers ({ctl.stderr.strip()})')
    try:
        cp = json.loads(ctl.stdout)['peers'][0]
    except (ValueError, KeyError, IndexError):
        cp = {}
    ck.check(cp.get('identity') == IDS[1] and (cp.get('counters') or {}).get('failed', 0) >=
             pa['failed'], f'keylinectl peers --json: vlr-b with its failed exchanges: {cp}')
    print(f'keylined-s2s: vlr-a\'s counters for vlr-b over the outage: {delta(pa, before_a)}',
          flush=True)
    # vlr-a serves on: MBMS, and DH pairs of its own UEs
    p, s, _ = run('mbms', LOC0, LOCAL, ['--timeout-ms', '500', '--interval-ms', '0'], two=False)
    ck.eq((p.returncode, s.get('ok')), (0, LOCAL), f'vlr-a answers MBMS while vlr-b is down '
                                                   f'({p.stderr[-300:]})')
    p, s, _ = run('dh', LOC0, LOCAL // 2, two=False)
    pr = check_pairs('local dh at vlr-a while vlr-b is down', 'dh', p, s, LOCAL // 2)
    ck.eq((pr.get('retries') or {}).get('max'), 0, 'local dh: answered at once')
    ck.check(ka.p.poll() is None, 'vlr-a still running')

    # 3. vlr-b again: fresh pairs agree, and the outage's pairs after their lifetime
    t = time.time()
    kb = launch(1)
    own_side_only(1, kb)
    print(f'keylined-s2s: vlr-b restarted in {time.time() - t:.1f} s', flush=True)
    for kind in ('dh', 'prose'):
        before = snapshot()
        p, s, secs = run(kind, NEW0, AFTER)
        pr = check_pairs(f'{kind}, new pairs after vlr-b restarted', kind, p, s, AFTER)
        check_exchanges(f'{kind}, new pairs after vlr-b restarted', before, kind, AFTER)
    time.sleep(max(0.0, t_kill + 3 + LIFE_S + 1 - time.time()))
    for kind, first in (('dh', OUT_DH), ('prose', OUT_PROSE)):
        p, s, secs = run(kind, first, OUTAGE)
        check_pairs(f'{kind}, the outage\'s pairs again', kind, p, s, OUTAGE)

    final = []
    for x, kd in ((0, ka), (1, kb)):
        rc, cnt = kd.stop()
        live.remove(kd)
        ck.eq(rc, 0, f'{NAMES[x]} exits 0')
        final.append(cnt or {})
    ck.check(final[0].get('peer0_failed', 0) >= pa['failed'] > 0,
             f'vlr-a\'s final counters: the failed exchanges with vlr-b '
             f'({final[0].get("peer0_failed")})')
    ck.eq(final[1].get('peer0_failed'), 0, 'vlr-b (restarted): no exchange failed')
    print(f'keylined-s2s: done in {time.time() - T0:.1f} s', flush=True)
finally:
    for c in clients:
        if c.poll() is None:
            c.kill()
            c.communicate()
    for k in live:
        k.kill()
rc = ck.done()
if not rc:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(rc)

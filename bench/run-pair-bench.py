#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""DH public-value answers/s (kind 4, both UEs local) and ProSe requests/s (kind 5) per worker
core over memif, each beside the crypto-only ceiling of its kind measured in the same run
(crypto_bench dh_public_crypto / prose_assist_crypto, burst 32, CPU time), as ratios.

keylined (one worker, net_memif, identity vlr-a, a TEST population whose UEs have the dh or the
prose service) serves keyline-burst --kind dh|prose --mode max --presign over memif (a second
DPDK process): PAIRS UE pairs, both sides of a pair at this server. dh: every request is answered
with the other UE's public value (checked against the population's); --ks-after keeps the
client's X25519 (Ks) out of the timed run, the pairs are decided after it. prose: the initiator
of a pair usually arrives first and is answered ERR 12/5 (retry-after 200 ms), the responder gets
p2, the initiator's retry p4: about three requests per pair, every one counted. Every pair must
agree on Ks / KD. A pair's rendezvous entry lives rendezvous_s (30 s by default) whether or not
the pair completed: a sustained run would need rate x 30 s entries, so the prose keylined here has
rendezvous_s 5 and 2^21 entries (with 1 s, an initiator whose retry came more than 1 s after its
first request on a loaded machine found a fresh entry without p4 and timed out: pair_timeout).

The reference kind mbms (MBMS key requests of UEs of one key group, --verify-after, ceiling
mbms_request_crypto, as tools/run-burst.sh measures them) runs beside them under the same
conditions: on a shared machine its ratio tells what the memif path and the machine cost any kind.

On a machine shared with other busy-polling processes the wall-clock rate mostly says how much
CPU the two processes got; so the worker's own CPU time over the run (its thread's utime + stime
from /proc, from keyline-burst's start line to its "holding the port") is measured too, and
answers per worker CPU-second is printed beside the rate. It is a lower bound of the worker's
capacity (a worker whose client is descheduled spins on empty polls) and the fairer figure to set
against crypto_bench's CPU-time ceilings.

The runs alternate: per round, a memif run of each kind and backend (a fresh keylined each), then
crypto_bench's ceilings of the kinds and both backends. Medians with min-max and n; the ratio is of
the medians, all from this invocation.

    bench/run-pair-bench.py [--build DIR] [--runs N] [--dh-pairs N] [--prose-pairs N]
                            [--mbms-ues N] [--crypto ipsec-mb,openssl] [--kinds dh,prose,mbms]
Exit status 0 when every run had every pair agree and every figure was measured.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(top, 'tests'))
import kl_itest  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
ap.add_argument('--build', default=os.path.join(top, 'build'))
ap.add_argument('--runs', type=int, default=3)
ap.add_argument('--dh-pairs', type=int, default=100000)
ap.add_argument('--prose-pairs', type=int, default=200000)
ap.add_argument('--mbms-ues', type=int, default=200000)
ap.add_argument('--crypto', default='ipsec-mb')
ap.add_argument('--kinds', default='dh,prose,mbms')
a = ap.parse_args()
B = os.path.abspath(a.build)
kinds = a.kinds.split(',')
backends = a.crypto.split(',')
PAIRS = {'dh': a.dh_pairs, 'prose': a.prose_pairs, 'mbms': a.mbms_ues}  # mbms: UEs
UES = {kd: n if kd == 'mbms' else 2 * n for kd, n in PAIRS.items()}
CEIL = {'dh': 'dh_public_crypto', 'prose': 'prose_assist_crypto', 'mbms': 'mbms_request_crypto'}
tmp = tempfile.mkdtemp(prefix='kl-pair-bench-')
failed = False


def population(kind):
    path = os.path.join(tmp, f'pop-{kind}.txt')
    svc = 'mbms' if kind == 'mbms' else f'mbms,{kind}'
    subprocess.run([B + '/tools/keyline-population', '--seed', '7', '--ues', str(UES[kind]),
                    '--groups', '1', '--emses', '1', '--imsis', '1', '--appids', '0', '--services',
                    svc, '-o', path], check=True, capture_output=True)
    return path


def cpu_s(pid, name=None):
    """utime + stime in seconds of a process, or of its thread called name."""
    tasks = [f'/proc/{pid}/task/{t}' for t in os.listdir(f'/proc/{pid}/task')] if name else \
        [f'/proc/{pid}']
    for t in tasks:
        try:
            if name and open(t + '/comm').read().strip() != name:
                continue
            f = open(t + '/stat').read().rsplit(')', 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK')
        except OSError:
            continue
    return None


def memif_run(kind, crypto, pop, r):
    """One keylined, one keyline-burst over memif: the summary, or None."""
    n = PAIRS[kind]
    sock = os.path.join(tmp, f'memif-{kind}-{crypto}-{r}.sock')
    extra = {'workers': 1, 'crypto': crypto}
    table = {'ues': UES[kind] + 16, 'pairs': 4}
    if kind == 'dh':
        table['dh_ues'] = UES[kind] + 16
    elif kind == 'prose':
        extra.update(rendezvous_s=5, rendezvous_entries=1 << 21)
    cfg = kl_itest.write_config(os.path.join(tmp, f'k-{kind}.yaml'),
                                ports=[('memif0', f'net_memif0,role=server,socket={sock}', 1)],
                                ipv6=(), admin=os.path.join(tmp, f'admin-{kind}-{r}.sock'),
                                identity='vlr-a', table=table, extra=extra)
    kd = kl_itest.Keylined(B + '/control/keylined',
                           kl_itest.eal_args(kl_itest.unique(f'pb{kind}{r}'), mem=1024), cfg,
                           ['-p', pop], workdir=tmp)
    p = None
    try:
        kd.wait_ready(timeout=600)
        cmd = [B + '/tools/keyline-burst'] + kl_itest.eal_args(
            kl_itest.unique(f'pc{kind}{r}'), mem=1024, lcores='0') + [
            '--vdev', f'net_memif0,role=client,socket={sock}', '--', '--population', pop,
            '--kind', kind, '--server-ip', '192.0.2.1', '--client-ip',
            '192.0.2.100', '--sources', '16', '--interval-ms', '0', '--timeout-ms', '500',
            '--retries', '4', '--mode', 'max', '--presign', '--ues', str(n), '--hold-s', '30',
            '--seed', str(r + 1), '--inflight', '65536' if kind == 'prose' else '1024']
        cmd += {'dh': ['--server-id', 'vlr-a', '--ks-after'], 'prose': ['--server-id', 'vlr-a'],
                'mbms': ['--verify-after']}[kind]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        err, w0, c0, cpu = [], None, None, {}
        for line in p.stderr:
            err.append(line)
            if ', mode max, io ' in line:  # the run starts
                w0, c0 = cpu_s(kd.p.pid, 'rte-worker-1'), cpu_s(p.pid)
            if 'holding the port' in line:
                w1, c1 = cpu_s(kd.p.pid, 'rte-worker-1'), cpu_s(p.pid)
                if None not in (w0, w1, c0, c1):
                    cpu = {'worker_cpu_s': w1 - w0, 'client_cpu_s': c1 - c0}
                break
        rc_kd, counters = kd.stop()  # before the client lets go of memif (README, memif caveat)
        out, e = p.communicate(timeout=600)
        s = [json.loads(l) for l in out.splitlines() if l.startswith('{')]
        if p.returncode != 0 or rc_kd != 0 or not s:
            why = json.dumps({x: s[-1].get(x) for x in ('ok', 'failed', 'failures', 'counters',
                                                         'pairs')}) if s else 'no summary'
            print(f'{kind}/{crypto} run {r + 1}: keyline-burst exit {p.returncode}, keylined exit '
                  f'{rc_kd}: {why[:1500]}\n{"".join(err)[-1500:]}{e[-1500:]}', flush=True)
            return None
        return s[-1], counters or {}, cpu
    finally:
        kd.kill()
        if p is not None and p.poll() is None:  # a step above failed
            p.kill()
            p.communicate()
            kl_itest.remove_rundir(kl_itest.file_prefix(p.args[1:]))


def ceilings():
    """items/s of the kinds' composites, both backends, burst 32 (CPU time): one sample each."""
    flt = '|'.join(CEIL[k] for k in kinds)
    c = subprocess.run([B + '/bench/crypto_bench', f'--benchmark_filter=({flt})/.*/burst:32$',
                        '--benchmark_min_time=0.5', '--benchmark_format=json'],
                       capture_output=True, text=True, check=True)
    return {b['name']: b['items_per_second'] for b in json.loads(c.stdout)['benchmarks']}


def fig(v):
    v = sorted(v)
    return statistics.median(v), v[0], v[-1], len(v)


def k(x):
    return f'{x / 1000:.0f} k/s'


pops = {kind: population(kind) for kind in kinds}
rates = {(kind, c): [] for kind in kinds for c in backends}
extra = {(kind, c): [] for kind in kinds for c in backends}
cpu_rates = {(kind, c): [] for kind in kinds for c in backends}
ceil = {}
for r in range(a.runs):
    for kind in kinds:
        for crypto in backends:
            res = memif_run(kind, crypto, pops[kind], r)
            if res is None:
                failed = True
                continue
            s, cnt, cpu = res
            pr, lat = s.get('pairs') or {}, s.get('latency_us') or {}
            ok = s.get('ok') == UES[kind] and s.get('failed') == 0
            if kind != 'mbms':
                ok &= pr.get('ok') == PAIRS[kind] and pr.get('failed') == 0
            failed |= not ok
            rate = s['answered_per_s']
            rates[(kind, crypto)].append(rate)
            wcpu = cpu.get('worker_cpu_s')
            per_cpu = s['counters']['answered'] / wcpu if wcpu else 0
            cpu_rates[(kind, crypto)].append(per_cpu)
            ttk = pr.get('time_to_key_us') or {}
            extra[(kind, crypto)].append((pr.get('pairs_per_s', 0), ttk.get('p50'), ttk.get('p99')))
            print(f'{kind}/{crypto} run {r + 1}: {s.get("ok")}/{UES[kind]} UEs verified, '
                  f'{pr.get("ok")}/{PAIRS[kind]} pairs agreed, '
                  f'{rate:.0f} answers/s ({s["requests_per_s"]:.0f} requests/s sent) in '
                  f'{s["finished_s"]:.2f} s, {per_cpu:.0f} answers per worker CPU-s (worker '
                  f'{wcpu or 0:.2f} CPU-s, client {cpu.get("client_cpu_s", 0):.2f}), '
                  f'{pr.get("pairs_per_s", 0):.0f} pairs/s, retries/pair '
                  f'{(pr.get("retries") or {}).get("mean", 0):.2f}, request p50 '
                  f'{lat.get("p50", 0):.0f} us p99 {lat.get("p99", 0):.0f} us, time to key p50 '
                  f'{ttk.get("p50", 0):.0f} us p99 {ttk.get("p99", 0):.0f} us; keylined '
                  f'answered_{kind} {cnt.get("answered_" + kind)} error_not_ready '
                  f'{cnt.get("error_not_ready")}; client busy share '
                  f'{(s.get("io") or {}).get("busy_share", 0):.2f}', flush=True)
    for name, v in ceilings().items():
        ceil.setdefault(name, []).append(v)

print(f'\nper worker core, {a.runs} alternating rounds (median (min-max, n)):')
for kind in kinds:
    for crypto in backends:
        name = f'{CEIL[kind]}/{crypto}/burst:32'
        if not rates[(kind, crypto)] or name not in ceil:
            print(f'{kind}/{crypto}: no figure')
            failed = True
            continue
        m, lo, hi, n = fig(rates[(kind, crypto)])
        cm, clo, chi, cn = fig(ceil[name])
        what = {'dh': 'DH public-value answers', 'prose': 'ProSe requests answered',
                'mbms': 'MBMS requests answered (reference)'}[kind]
        print(f'{what} over memif ({crypto}): {k(m)} ({k(lo)}-{k(hi)}, n={n}); {name} ceiling '
              f'{k(cm)} ({k(clo)}-{k(chi)}, n={cn}); ratio {m / cm:.2f} '
              f'(runs {lo / cm:.2f}-{hi / cm:.2f})')
        m, lo, hi, n = fig(cpu_rates[(kind, crypto)])
        print(f'    per worker CPU-second: {k(m)} ({k(lo)}-{k(hi)}, n={n}); ratio {m / cm:.2f} '
              f'(runs {lo / cm:.2f}-{hi / cm:.2f})')
for name in sorted(ceil):
    if not any(name == f'{CEIL[kd]}/{c}/burst:32' for kd in kinds for c in backends):
        cm, clo, chi, cn = fig(ceil[name])
        print(f'ceiling {name}: {k(cm)} ({k(clo)}-{k(chi)}, n={cn})')
if not failed:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if failed else 0)

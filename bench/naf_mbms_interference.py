#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The MBMS rate of keylined's UDP worker alone and while the NAF Key Center is loaded (issue 13's
benchmark: the Key Center's threads must not share the worker's core).

One keylined (one worker, net_memif, EAL -l 0-1: main lcore 0 = the control core, worker lcore 1)
runs the Diameter stack, the NAF Key Center (a make-test-pki.sh PKI, store on) and its Zn client
to a keyline-hss-sim bsf. keyline-burst --mode max over memif (a second DPDK process, -l 0) asks
for the UEs' MSKs, every answer verified, ROUNDS times alone and ROUNDS times while keyline-burst
--kind naf (keep-alive, every key verified against the MT side) loads the Key Center; the rounds
alternate (alone, loaded, alone, ...) on the same keylined.

Printed: where every keylined thread may run (Cpus_allowed_list per thread name), the MBMS
answers/s of each run and their medians, the ratio loaded / alone, the Key Center's keys/s during
the loaded runs, and the worker's own view of each run: its CPU seconds per wall second and its
involuntary context switches (another thread taking the worker's CPU shows there).

On 2 cores, what shares what: CPU 1 = the worker (busy polling) alone; CPU 0 = keylined's control
thread, the HTTPS pool, freeDiameter's and the store's threads, the MBMS client (busy polling,
EAL -l 0), the NAF client and the BSF (both taskset -c 0). Other processes of the machine are
not pinned by this script and may run on either CPU. So the loaded MBMS figure also says how much of CPU 0 the MBMS client
kept: the worker's context switches and CPU say whether the worker itself was disturbed.

    bench/naf_mbms_interference.py [--build DIR] [--ues N] [--rounds R] [--devices D]
                                   [--naf-threads T] [--goals] [--cold-ues C]
--goals: instead, the issue's Key Center figures (keylined --io socket, its worker idle in poll, so
that the process's CPU is the Key Center's; client and BSF on CPU 1): keys/s over
keep-alive connections with the Zn cache warm, full mTLS handshakes/s (ECDSA P-256), and the Zn
cache cold (C new B-TIDs, --ue-per-request) then warm (the same again); p50/p99 and the Key
Center's CPU (keyline-burst --server-pid). The HTTPS pool has --naf-threads threads.
Exit status 0 when every MBMS and NAF answer was verified and every figure was measured.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(top, 'tests'))
sys.path.insert(0, os.path.join(top, 'tests', 'diameter'))
import kl_itest  # noqa: E402
from kl_dtest import Pki, free_port  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
ap.add_argument('--build', default=os.path.join(top, 'build'))
ap.add_argument('--ues', type=int, default=400000, help='MBMS UEs per run')
ap.add_argument('--rounds', type=int, default=3)
ap.add_argument('--devices', type=int, default=32, help='NAF devices (certificates)')
ap.add_argument('--naf-threads', type=int, default=1)
ap.add_argument('--goals', action='store_true')
ap.add_argument('--cold-ues', type=int, default=4000)
a = ap.parse_args()
B = os.path.abspath(a.build)
tmp = tempfile.mkdtemp(prefix='kl-naf-mbms-')
# the NAF client and the BSF: beside the Key Center (CPU 0) for the MBMS runs, on the other core
# (the idle socket worker's) for --goals, so that CPU 0 is the Key Center's alone
OTHER = '1' if a.goals else '0'
NAF = b'naf.keyline.test' + bytes.fromhex('0100000002')
live = []


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300, **kw)


def thread_cpus(pid):
    """{thread name: [Cpus_allowed_list of each thread of that name]} of a process."""
    out = {}
    for t in os.listdir(f'/proc/{pid}/task'):
        try:
            name = open(f'/proc/{pid}/task/{t}/comm').read().strip()
            st = dict(l.split(':', 1) for l in open(f'/proc/{pid}/task/{t}/status') if ':' in l)
        except OSError:
            continue
        out.setdefault(name, []).append(st['Cpus_allowed_list'].strip())
    return out


def worker_view(pid):
    """(CPU seconds, involuntary context switches) of keylined's worker thread."""
    for t in os.listdir(f'/proc/{pid}/task'):
        if open(f'/proc/{pid}/task/{t}/comm').read().strip() != 'rte-worker-1':
            continue
        f = open(f'/proc/{pid}/task/{t}/stat').read().rsplit(')', 1)[1].split()
        st = dict(l.split(':', 1) for l in open(f'/proc/{pid}/task/{t}/status') if ':' in l)
        return ((int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK'),
                int(st['nonvoluntary_ctxt_switches']))
    return None


def setup():
    pki = os.path.join(tmp, 'pki')
    run([top + '/tools/make-test-pki.sh', pki, '--devices', str(a.devices)])
    os.makedirs(os.path.join(tmp, 'dia'))
    dpki = Pki(os.path.join(tmp, 'dia'), leaves=('keylined.test', 'bsf.keyline.test'))
    uefile, bport = os.path.join(tmp, 'ues.jsonl'), free_port()
    cert, key = dpki.cred('bsf.keyline.test')
    bsf = subprocess.Popen(['taskset', '-c', OTHER, B + '/tools/keyline-hss-sim', '--identity', 'bsf.keyline.test',
                            '--cert', cert, '--key', key, '--ca', dpki.p('ca.pem'), '--listen',
                            '127.0.0.1', 'bsf', '--port', str(bport), '--ues',
                            str(a.devices + (a.cold_ues if a.goals else 0)),
                            '--seed', '7', '--ue-file', uefile, '--ks-lifetime', '86400'],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    live.append(bsf)
    end = time.time() + 30
    while not os.path.exists(uefile) and time.time() < end:
        time.sleep(0.05)
    time.sleep(0.1)
    pop = os.path.join(tmp, 'pop.txt')
    now = int(time.time())
    run([B + '/tools/keyline-population', '--seed', str(now), '--ues', str(a.ues), '--groups',
         '1', '--emses', '1', '--imsis', '1', '--appids', '0', '--period', '3600', '--now',
         str(now + 2208988800 + 1800), '-o', pop])
    kek = kl_itest.write_kek(os.path.join(tmp, 'kek'))
    hport, dport, mport = free_port(), free_port(), free_port()
    kcert, kkey = dpki.cred('keylined.test')
    sock = os.path.join(tmp, 'memif.sock')
    extra = {
        'workers': 1, 'metrics': '"127.0.0.1:%d"' % mport,
        'store': '{path: "%s", kek_file: "%s", map_size_mb: 256}' % (tmp + '/store', kek),
        'diameter': '{identity: keylined.test, listen: 127.0.0.1, port: %d, tls_cert: "%s", '
                    'tls_key: "%s", tls_ca: "%s"}' % (dport, kcert, kkey, dpki.p('ca.pem')),
        'naf_key_center': '{listen: 127.0.0.1, port: %d, tls_cert: "%s/server.pem", '
                          'tls_key: "%s/server.key", device_ca: "%s/device-ca.pem", '
                          'operator_ca: "%s/operator-ca.pem", naf_ids: [{fqdn: naf.keyline.test,'
                          ' ua_protocol: "0100000002", max_lifetime_s: 7200}], bsf: {identity: '
                          'bsf.keyline.test, address: 127.0.0.1, port: %d}, rate_limit: '
                          '{per_cert_rps: 0}, threads: %d, max_connections: %d}'
                          % (hport, pki, pki, pki, pki, bport, a.naf_threads, a.devices + 64)}
    if a.goals:  # no busy-polling worker: the process's CPU is the Key Center's
        extra.update(io='socket', udp_port=kl_itest.free_udp_port())
    cfg = kl_itest.write_config(os.path.join(tmp, 'keylined.yaml'), ipv6=(),
                                ipv4=('127.0.0.1',) if a.goals else ('192.0.2.1',),
                                ports=() if a.goals else
                                [('memif0', f'net_memif0,role=server,socket={sock}', 1)],
                                admin=os.path.join(tmp, 'admin.sock'), extra=extra,
                                table={'ues': a.ues + 16, 'groups': 4, 'emses': 4, 'imsis': 4,
                                       'appids': 4})
    url = 'https://localhost:%d' % hport
    naf = ['taskset', '-c', OTHER, B + '/tools/keyline-burst', '--kind', 'naf', '--pki', pki, '--ue-file', uefile,
           '--naf-id', NAF.hex(), '--url', url, '--devices', str(a.devices)]
    return cfg, naf, sock, pop, a.ues * 300 // 1048576 + 512


def start_keylined(cfg, naf, pop, mem, r):
    """A fresh keylined (DPDK 22.11's memif PMD may fault in a worker still polling when its
    client goes away: README's memif caveat), its Key Center answering."""
    kd = kl_itest.Keylined(B + '/control/keylined', kl_itest.eal_args(
        kl_itest.unique(f'nmk{r}'), mem=mem, lcores='0-1'), cfg, ['-p', pop],
        workdir=tempfile.mkdtemp(prefix='kd-', dir=tmp))
    live.append(kd)
    kd.wait_ready(timeout=300)
    end = time.time() + 30  # the Zn connection opens a few seconds after 'ready'
    while True:
        r = subprocess.run(naf + ['--devices', '1', '--interval-ms', '0'], capture_output=True,
                           text=True, timeout=60)
        if r.returncode == 0 or time.time() > end:
            break
        time.sleep(0.5)
    if r.returncode:
        raise RuntimeError('the Key Center does not answer: ' + r.stderr[-500:])
    return kd


def mbms(kd, sock, pop, mem, r, load=None):
    """One max-rate MBMS run over memif: (answers/s, worker CPU s per s, worker involuntary
    switches, the summary)."""
    cmd = [B + '/tools/keyline-burst'] + kl_itest.eal_args(
        kl_itest.unique(f'nmc{r}'), mem=mem, lcores='0') + [
        '--vdev', f'net_memif0,role=client,socket={sock}', '--', '--population', pop,
        '--server-ip', '192.0.2.1', '--client-ip', '192.0.2.100', '--sources', '16',
        '--interval-ms', '0', '--timeout-ms', '500', '--retries', '4', '--mode', 'max',
        '--verify-after', '--seed', str(r + 1), '--inflight', '1024', '--hold-s', '30']
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    w0 = w1 = None
    err = []
    for line in p.stderr:
        err.append(line)
        if ', mode max, io ' in line:
            w0, t0 = worker_view(kd.p.pid), time.time()
        if 'holding the port' in line:
            w1, t1 = worker_view(kd.p.pid), time.time()
            break
    if load:
        load()  # the NAF load stops before keylined
    rc_kd, _ = kd.stop()
    out, e = p.communicate(timeout=600)
    err = ''.join(err) + e
    s = [json.loads(x) for x in out.splitlines() if x.startswith('{')]
    if p.returncode or rc_kd or not s or s[-1].get('ok') != a.ues:
        raise RuntimeError(f'MBMS run {r}: exit {p.returncode}, keylined {rc_kd}: '
                           f'{json.dumps(s[-1].get("failures")) if s else err[-800:]}')
    if not (w0 and w1) or w1[0] <= w0[0]:
        raise RuntimeError(f'MBMS run {r}: the worker thread\'s CPU time was not measured')
    return (s[-1]['answered_per_s'], (w1[0] - w0[0]) / (t1 - t0), w1[1] - w0[1],
            a.ues / (w1[0] - w0[0]), s[-1])


def goals():
    """The issue's Key Center figures (keyline-burst --kind naf rows)."""
    cfg, naf, sock, pop, mem = setup()
    kd = start_keylined(cfg, naf, pop, mem, 0)
    base = naf + ['--server-pid', str(kd.p.pid), '--interval-ms', '0']
    per = max(1, a.cold_ues // a.devices)
    runs = [('keep-alive, Zn warm', ['--requests', '100']),
            ('full handshake, Zn warm', ['--requests', '10', '--full-handshake']),
            ('Zn cold: %d new B-TIDs, keep-alive' % (per * a.devices),
             ['--requests', str(per), '--ue-per-request', '--first-ue', str(a.devices)]),
            ('Zn warm: the same again', ['--requests', str(per), '--ue-per-request',
                                         '--first-ue', str(a.devices)])]
    subprocess.run(base + ['--requests', '1'], capture_output=True, timeout=300)  # warm
    ok = True
    print(f'{a.devices} devices, HTTPS threads {a.naf_threads}, store on, rate limit off; '
          f'keylined --io socket -l 0-1 (control and HTTPS threads on CPU 0, the idle worker '
          f'on 1), keyline-burst and the BSF taskset -c 1')
    for what, extra in runs:
        r = subprocess.run(base + extra, capture_output=True, text=True, timeout=900)
        s = [json.loads(x) for x in r.stdout.splitlines() if x.startswith('{')]
        s = s[-1] if s else {}
        nf, lat, io = s.get('naf') or {}, s.get('latency_us') or {}, s.get('io') or {}
        ok = ok and r.returncode == 0
        print(f'{what}: {nf.get("keys_per_s", 0):,.0f} keys/s, {nf.get("handshakes_per_s", 0):,.0f} '
              f'handshakes/s, p50 {lat.get("p50", 0) / 1000:.1f} ms, p99 '
              f'{lat.get("p99", 0) / 1000:.1f} ms; per server CPU-second '
              f'{nf.get("keys_per_server_cpu_s", 0):,.0f} keys, '
              f'{nf.get("handshakes_per_server_cpu_s", 0):,.0f} handshakes (server CPU '
              f'{io.get("server_cpu_s", 0):.2f} s, client CPU {io.get("client_cpu_s", 0):.2f} s); '
              f'exit {r.returncode} {(s.get("failures") or {}).get("by_reason") or ""}',
              flush=True)
    rc, _ = kd.stop()
    return 0 if ok and rc == 0 else 1


def main():
    if a.goals:
        return goals()
    cfg, naf, sock, pop, mem = setup()
    res = {'alone': [], 'loaded': []}
    naf_rates, ok = [], True
    for r in range(a.rounds):
        for what in ('alone', 'loaded'):
            n = 2 * r + (what == 'loaded')
            kd = start_keylined(cfg, naf, pop, mem, n)
            if n == 0:
                print('keylined threads and the CPUs each may run on (EAL -l 0-1, worker '
                      'lcore 1):')
                for name, cpus in sorted(thread_cpus(kd.p.pid).items()):
                    print(f'  {len(cpus):2d} x {name:16s} CPUs {" ".join(sorted(set(cpus)))}')
            lp, got = None, {}
            if what == 'loaded':
                lp = subprocess.Popen(naf + ['--requests', '100000000', '--interval-ms', '500',
                                             '--server-pid', str(kd.p.pid)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                live.append(lp)
                time.sleep(2)  # every device connected, the Zn cache warm

                def stop_load():
                    lp.send_signal(signal.SIGINT)
                    got['out'], got['err'] = lp.communicate(timeout=120)
            rate, cpu, nvcs, per_cpu, s = mbms(kd, sock, pop, mem, n, stop_load if lp else None)
            line = (f'round {r + 1} {what:6s}: MBMS {rate:,.0f} answers/s ({s["ok"]} UEs '
                    f'verified, p99 {s["latency_us"]["p99"]:.0f} us); worker CPU {cpu:.2f} s/s, '
                    f'{per_cpu:,.0f} answers per worker CPU-second, '
                    f'{nvcs} involuntary switches')
            if lp:
                ivs = [json.loads(x) for x in got['out'].splitlines() if x.startswith('{')]
                sm = ivs[-1] if ivs else {}
                # keys/s over the intervals after the 2 s warm-up (the MBMS run's span)
                iv = [x for x in ivs if x.get('type') == 'interval' and x.get('t', 0) > 2.4]
                kps = sum(x['verified'] for x in iv[1:]) / (iv[-1]['t'] - iv[0]['t']) \
                    if len(iv) > 1 else 0
                bad = {k: v for k, v in ((sm.get('failures') or {}).get('by_reason') or
                                         {}).items() if k != 'interrupted'}
                wrong = (sm.get('naf') or {}).get('by_status', {})
                ok = ok and not bad and kps > 0
                naf_rates.append(kps)
                line += (f'; Key Center {kps:,.0f} keys/s (answers {wrong}, failures '
                         f'{bad or "none"})')
            res[what].append((rate, cpu, nvcs, per_cpu))
            print(line, flush=True)

    def fig(w, i=0, unit='answers/s'):
        v = [x[i] for x in res[w]]
        return f'median {statistics.median(v):,.0f} {unit} ({min(v):,.0f}-{max(v):,.0f}, ' \
            f'n={len(v)})'

    def med(w, i=0):
        return statistics.median(x[i] for x in res[w])
    print(f'MBMS alone:  {fig("alone")}; {fig("alone", 3, "per worker CPU-second")}')
    print(f'MBMS loaded: {fig("loaded")}; {fig("loaded", 3, "per worker CPU-second")}; the Key '
          f'Center at a median {statistics.median(naf_rates):,.0f} keys/s')
    print(f'ratio loaded / alone: {med("loaded") / med("alone"):.3f} (answers/s), '
          f'{med("loaded", 3) / med("alone", 3):.3f} (per worker CPU-second); worker CPU '
          f'{med("alone", 1):.2f} s/s alone, {med("loaded", 1):.2f} loaded; its involuntary '
          f'context switches alone {[x[2] for x in res["alone"]]}, loaded '
          f'{[x[2] for x in res["loaded"]]}')
    return 0 if ok else 1


try:
    status = main()
finally:
    for p in live:
        if isinstance(p, subprocess.Popen):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        else:
            p.kill()
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(status)

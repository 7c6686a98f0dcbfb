#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""HM sessions per second per worker core over memif, beside the crypto-only ceiling of the same
run (crypto_bench hm_session_crypto, ipsec-mb, burst 32, CPU time), as a ratio.

keylined (one worker, net_memif, identity vlr-a with a pair key with itself, a TEST population
whose UEs have the hm service) serves keyline-burst --kind hm --mode max --presign over memif:
N sessions (UEa i, UEb 1 + i % 1000, so K*b fetches are 1,000 of the requests). RUNS runs, a
fresh keylined each; the median counts. Every pair must agree on Ks.

    bench/run-hm-bench.py [BUILD_DIR] [SESSIONS] [RUNS]     (default build 300000 3)
"""
import json
import os
import subprocess
import sys
import tempfile

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(top, 'tests'))
import kl_itest  # noqa: E402

B = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, 'build'))
N = int(sys.argv[2]) if len(sys.argv) > 2 else 300000
RUNS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
PEERS = 1000
tmp = tempfile.mkdtemp(prefix='kl-hm-bench-')
pop, sock, adm = (os.path.join(tmp, f) for f in ('pop.txt', 'memif.sock', 'admin.sock'))
subprocess.run([B + '/tools/keyline-population', '--seed', '5', '--ues', str(N + 1), '--groups',
                '1', '--emses', '1', '--imsis', '1', '--appids', '0', '-o', pop],
               check=True, capture_output=True)
rates = []
for r in range(RUNS):
    cfg = kl_itest.write_config(os.path.join(tmp, 'k.yaml'),
                                ports=[('memif0', f'net_memif0,role=server,socket={sock}', 1)],
                                ipv6=(), admin=adm, identity='vlr-a',
                                table={'ues': N + 16, 'pairs': 4}, extra={'workers': 1})
    kd = kl_itest.Keylined(B + '/control/keylined',
                           kl_itest.eal_args(kl_itest.unique(f'hmb{r}'), mem=1024), cfg,
                           ['-p', pop], workdir=tmp)
    p = None  # keyline-burst
    try:
        kd.wait_ready(timeout=300)
        kl_itest.admin_many(adm, [{'cmd': 'ue-services', 'services': ['mbms', 'hm'],
                                   'id': f'ue{i:08d}@ims.mnc001.mcc001.3gppnetwork.org'}
                                  for i in range(N + 1)], chunk=1024)
        kl_itest.admin_many(adm, [{'cmd': 'put-pair', 'peer': 'vlr-a', 'key': os.urandom(32).hex()}])
        cmd = [B + '/tools/keyline-burst'] + kl_itest.eal_args(kl_itest.unique(f'hmc{r}'), mem=1024,
                                                              lcores='0') + [
            '--vdev', f'net_memif0,role=client,socket={sock}', '--', '--population', pop,
            '--kind', 'hm', '--server-id', 'vlr-a', '--server-ip', '192.0.2.1', '--client-ip',
            '192.0.2.100', '--sources', '16', '--interval-ms', '0', '--timeout-ms', '500',
            '--retries', '4', '--mode', 'max', '--presign', '--ues', str(N), '--peer-ues',
            str(PEERS), '--hold-s', '20', '--seed', str(r + 1)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in p.stderr:
            if 'holding the port' in line:
                break
        kd.stop()  # before the client lets go of memif (README, memif caveat)
        out, _ = p.communicate(timeout=120)
        s = [json.loads(l) for l in out.splitlines() if l.startswith('{')][-1]
        hm, lat = s['hm'], s['latency_us']
        rates.append(hm['sessions_per_s'])
        print(f'run {r + 1}: {hm["agreed"]}/{hm["sessions"]} sessions agreed on Ks, '
              f'{hm["sessions_per_s"]:.0f} sessions/s ({s["requests_per_s"]:.0f} requests/s), '
              f'request p50 {lat["p50"]:.0f} us p99 {lat["p99"]:.0f} us, client busy share '
              f'{s["io"].get("busy_share", 0):.2f}', flush=True)
    finally:
        kd.kill()
        if p is not None and p.poll() is None:  # a step above failed
            p.kill()
            p.communicate()
            kl_itest.remove_rundir(kl_itest.file_prefix(p.args[1:]))
ceil = subprocess.run([B + '/bench/crypto_bench',
                       '--benchmark_filter=hm_session_crypto/ipsec-mb/burst:32$',
                       '--benchmark_min_time=0.5', '--benchmark_repetitions=3',
                       '--benchmark_format=json'], capture_output=True, text=True, check=True)
c = sorted(b['items_per_second'] for b in json.loads(ceil.stdout)['benchmarks']
           if b.get('run_type') == 'iteration')
ceiling = c[len(c) // 2]
rates.sort()
med = rates[len(rates) // 2]
print(f'HM sessions/s per worker core (memif, median of {RUNS}): {med:.0f} '
      f'(min {rates[0]:.0f}, max {rates[-1]:.0f}); hm_session_crypto ceiling (ipsec-mb, burst 32, '
      f'median of 3): {ceiling:.0f}/s; ratio {med / ceiling:.2f} (best run {rates[-1] / ceiling:.2f})')
subprocess.run(['rm', '-rf', tmp])

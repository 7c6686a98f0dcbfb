#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keylined on net_tap with kernel peers: the tap interface is moved into a network namespace of
its own, so the kernel side (ping, the kernel UDP clients) talks to keylined and nothing else.
Checks: ARP and NDP resolve keylined's addresses, ICMP and ICMPv6 echo are answered, MBMS and E2M
requests over IPv4 and IPv6 are verified by keyline-burst --io socket, and a UE's MUK replaced by
keylinectl while requests flow switches answers from the old key to the new one with no answer
that verifies under neither.
    test_keylined_tap.py KEYLINED KEYLINECTL KEYLINE_BURST KEYLINE_POPULATION KEYLINE_KDF SWITCH_CLIENT"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, keylinectl, burst, popgen, kdf, switch = sys.argv[1:7]
ck = kl_itest.Checks('keylined-tap')
tmp = tempfile.mkdtemp(prefix='kl-tap-')
tag = os.getpid() % 100000
ns, ifname = f'kltap{tag}', f'kltap{tag}'
S4, C4, S6, C6 = '198.18.0.1', '198.18.0.2', '2001:db8:18::1', '2001:db8:18::2'
PORT = 2269


def sh(*cmd, check=True, timeout=60, **kw):
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=timeout,
                          **kw)


def nsrun(*cmd, **kw):
    return sh('ip', 'netns', 'exec', ns, *cmd, **kw)


def ctl(*args, check=True):
    p = sh(keylinectl, '-s', admin, *args, check=False)
    if check and p.returncode != 0:
        raise RuntimeError(f'keylinectl {args}: {p.returncode} {p.stdout} {p.stderr}')
    return p


pop = os.path.join(tmp, 'pop.txt')
sh(popgen, '--seed', '4242', '--ues', '2000', '--groups', '4', '--emses', '16', '--imsis', '16',
   '--appids', '16', '-o', pop)
admin = os.path.join(tmp, 'admin.sock')
cfg = kl_itest.write_config(os.path.join(tmp, 'k.yaml'),
                            ports=[('tap0', f'net_tap0,iface={ifname}', 1)],
                            ipv4=(S4,), ipv6=(S6,), admin=admin)
sh('ip', 'netns', 'add', ns)
kd = None
try:
    kd = kl_itest.Keylined(keylined, kl_itest.eal_args(kl_itest.unique('tap')), cfg, ['-p', pop],
                           workdir=tmp)
    kd.wait_ready()
    sh('ip', 'link', 'set', ifname, 'netns', ns)
    nsrun('ip', 'link', 'set', 'lo', 'up')
    nsrun('ip', 'link', 'set', ifname, 'up')
    nsrun('ip', 'addr', 'add', f'{C4}/24', 'dev', ifname)
    nsrun('ip', '-6', 'addr', 'add', f'{C6}/64', 'dev', ifname, 'nodad')

    # ICMP echo, which also makes the kernel resolve keylined by ARP and NDP
    for fam, addr in (('-4', S4), ('-6', S6)):
        p = nsrun('ping', fam, '-c', '3', '-i', '0.2', '-W', '2', addr, check=False)
        ck.check(' 0% packet loss' in p.stdout, f'ping {addr}: {p.stdout[-200:]}')
    neigh = nsrun('ip', 'neigh', 'show', 'dev', ifname).stdout
    for addr in (S4, S6):
        ck.check(re.search(re.escape(addr) + r' lladdr ([0-9a-f:]{17}) (REACHABLE|STALE|DELAY)',
                           neigh) is not None, f'{addr} resolved: {neigh}')

    # MBMS and E2M over IPv4 and IPv6, every answer verified by keyline-burst
    sent = {}
    for kind, n in (('mbms', 2000), ('e2m', 16)):
        for server in (S4, S6):
            p = nsrun(burst, '--io', 'socket', '--population', pop, '--kind', kind,
                      '--server-ip', server, '--server-port', str(PORT), '--mode', 'rate', '--rate', '5000',
                      '--timeout-ms', '200', '--retries', '3', '--interval-ms', '1000',
                      check=False, timeout=120)
            lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith('{')]
            summary = lines[-1] if lines else {}
            ck.eq(p.returncode, 0, f'keyline-burst {kind} to {server}: exit ({p.stderr[-300:]})')
            ck.eq(summary.get('ok'), n, f'{kind} to {server}: every UE verified')
            sent[(kind, server)] = summary

    # a UE's MUK replaced while requests flow
    newmuk = os.urandom(32).hex()
    mukfile = os.path.join(tmp, 'newmuk.hex')
    with open(mukfile, 'w') as f:
        f.write(newmuk + '\n')
    os.chmod(mukfile, 0o600)
    ue = 17
    show = sh(popgen, '--show', pop, '--index', str(ue)).stdout
    m = re.search(r'(ue\d{8}@\S+)', show)
    impi = m.group(1)
    g = re.search(r'groups 00f110:(\d+)', show)
    out = {}

    def run_switch():
        out['p'] = nsrun(switch, pop, str(ue), mukfile, S4, str(PORT), '3', check=False,
                         timeout=60)

    t = threading.Thread(target=run_switch)
    t.start()
    time.sleep(1.0)
    grp = int(g.group(1)) if g else 1 + ue % 4
    ctl('put-ue', impi, '--muk-file', mukfile, '--group', f'00f110:{grp}')
    t.join()
    res = json.loads(out['p'].stdout.strip().splitlines()[-1])
    ck.eq(out['p'].returncode, 0, f'MUK switch under traffic: {res}')
    ck.eq(res.get('neither'), 0, 'no answer verifies under neither key')
    ck.eq(res.get('old_after_first_new'), 0, 'no old-key answer after the first new-key answer')
    ck.check(res.get('ok_old', 0) > 0 and res.get('ok_new', 0) > 0,
             f'answers under the old key, then the new one: {res}')
    want_kcv = sh(kdf, 'kcv', '--key', newmuk).stdout.strip().lower()
    shown = ctl('show', 'ue', impi, '--json').stdout
    ck.check(want_kcv in shown.lower(), f'keylinectl show ue: KCV {want_kcv} in {shown}')
    ck.check(newmuk not in shown.lower(), 'keylinectl show never prints the MUK')

    rc, c = kd.stop()
    ck.eq(rc, 0, 'keylined exit status after SIGTERM')
    ck.check(c is not None, 'final counters printed')
    c = c or {}
    ck.check(c.get('arp_replies', 0) >= 1, f'ARP answered: {c.get("arp_replies")}')
    ck.check(c.get('ndp_adverts', 0) >= 1, f'NDP answered: {c.get("ndp_adverts")}')
    ck.eq(c.get('icmp4_echo_replies'), 3, 'ICMP echo replies')
    ck.eq(c.get('icmp6_echo_replies'), 3, 'ICMPv6 echo replies')
    ck.check(c.get('answered_mbms', 0) >= 2 * 2000 + res.get('ok_old', 0) + res.get('ok_new', 0),
             f'answered_mbms {c.get("answered_mbms")}')
    ck.check(c.get('answered_e2m', 0) >= 2 * 16, f'answered_e2m {c.get("answered_e2m")}')
finally:
    if kd:
        kd.kill()
    subprocess.run(['ip', 'netns', 'del', ns], capture_output=True)
sys.exit(ck.done())

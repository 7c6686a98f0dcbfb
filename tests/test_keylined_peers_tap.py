#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Server-to-server messages through the DPDK I/O (PROTOCOL.md section 10): keylined vlr-a on
net_tap, its interface moved into a network namespace where two more keylined (--io socket) run
as its peers, vlr-b on IPv4 and vlr-c on IPv6, on addresses other than the UEs'. vlr-a knows no
peer MAC at first:
  - UEa asks vlr-a (kind 4) for UEb's / UEc's public value: vlr-a's kind 6 finds no MAC, sends an
    ARP request / a neighbour solicitation instead (the kernel answers), learns the MAC,
    retransmits, and UEa's retry gets P_b / P_c (checked with X25519 here);
  - UEb asks vlr-b for UEa's value: vlr-b's kind 6 reaches vlr-a over the tap, which must see it
    as vlr-b's (source address and port) and answer it;
  - a kind 6 with vlr-b's identity from vlr-b's address but another port is refused and counted.
    test_keylined_peers_tap.py KEYLINED KEYLINE_KDF"""
import ctypes
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, kdf = sys.argv[1:3]
ck = kl_itest.Checks('keylined-peers-tap')
tmp = tempfile.mkdtemp(prefix='kl-ptap-')
tag = os.getpid() % 100000
ns, ifname = f'klpt{tag}', f'klpt{tag}'
A4, B4, U4 = '198.19.0.1', '198.19.0.2', '198.19.0.3'
A6, C6, U6 = '2001:db8:19::1', '2001:db8:19::2', '2001:db8:19::3'
PA = 2269
PAIR_KEY = bytes(range(32))
K = {'a': bytes(range(100, 132)), 'b': bytes(range(150, 182)), 'c': bytes(range(200, 232))}
UE = {x: f'ue{x}@ims.{x}.example' for x in 'abc'}


def sh(*cmd, check=True):
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=60)


def in_ns(fn):
    """fn() run with this thread in the namespace (sockets made there stay there)."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open('/proc/self/ns/net', os.O_RDONLY)
    there = os.open(f'/var/run/netns/{ns}', os.O_RDONLY)
    try:
        if libc.setns(there, 0x40000000) != 0:  # CLONE_NEWNET
            raise OSError(ctypes.get_errno(), 'setns')
        try:
            return fn()
        finally:
            libc.setns(home, 0x40000000)
    finally:
        os.close(home)
        os.close(there)


def udp(family, addr):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    return s


def ask(sock, addr, port, psk, idi, kind, tlvs, want, timeout=5.0):
    """Send the request (fresh each try) until an answer holds want; (answer or None, tries)."""
    t0, tries = time.time(), 0
    sock.settimeout(0.3)
    while time.time() - t0 < timeout:
        tries += 1
        sock.sendto(kl_itest.ext250_request(kdf, psk, idi, kind, tlvs), (addr, port))
        try:
            ans = sock.recv(2048)
        except socket.timeout:
            continue
        if want in ans:
            return ans, tries
        time.sleep(0.1)
    return None, tries


def config(name, ident, ipv4, ipv6, port, peers, ports=()):
    admin = os.path.join(tmp, f'{name}.sock')
    plist = ', '.join(f'{{identity: "{i}", address: "{a}", port: {p}}}' for i, a, p in peers)
    extra = {'udp_port': port, 'peers': f'[{plist}]'}
    if not ports:
        extra['io'] = 'socket'
    cfg = kl_itest.write_config(os.path.join(tmp, f'{name}.yaml'), ports=ports, ipv4=ipv4,
                                ipv6=ipv6, admin=admin, identity=ident,
                                table={'ues': 64, 'pairs': 8}, extra=extra)
    return cfg, admin


def setup_keys(admin, ue, peers):
    reqs = [{'cmd': 'put-pair', 'peer': p, 'key': PAIR_KEY.hex()} for p in peers]
    reqs.append({'cmd': 'put-ue', 'id': UE[ue], 'muk': K[ue].hex(), 'groups': [],
                 'services': 'dh'})
    ans = kl_itest.admin_many(admin, reqs)
    ck.check(all(a.get('ok') for a in ans), f'{admin}: pair keys and UE: {ans}')


def peers_of(admin):
    return kl_itest.admin_many(admin, [{'cmd': 'peers'}])[0]


pb, pc = 2270, 2271
cfg_a, admin_a = config('vlra', 'vlr-a.test', (A4,), (A6,), PA,
                        [('vlr-b.test', B4, pb), ('vlr-c.test', C6, pc)],
                        ports=[('tap0', f'net_tap0,iface={ifname}', 1)])
cfg_b, admin_b = config('vlrb', 'vlr-b.test', (B4,), (), pb, [('vlr-a.test', A4, PA)])
cfg_c, admin_c = config('vlrc', 'vlr-c.test', (), (C6,), pc, [('vlr-a.test', A6, PA)])
sh('ip', 'netns', 'add', ns)
ka = kb = kc = None
try:
    ka = kl_itest.Keylined(keylined, kl_itest.eal_args(kl_itest.unique('pta')), cfg_a,
                           workdir=tmp)
    ka.wait_ready()
    sh('ip', 'link', 'set', ifname, 'netns', ns)
    for cmd in (['ip', 'link', 'set', 'lo', 'up'], ['ip', 'link', 'set', ifname, 'up'],
                ['ip', 'addr', 'add', f'{B4}/24', 'dev', ifname],
                ['ip', 'addr', 'add', f'{U4}/24', 'dev', ifname],
                ['ip', '-6', 'addr', 'add', f'{C6}/64', 'dev', ifname, 'nodad'],
                ['ip', '-6', 'addr', 'add', f'{U6}/64', 'dev', ifname, 'nodad']):
        sh('ip', 'netns', 'exec', ns, *cmd)
    # the socket peers run in the namespace
    kb = kl_itest.Keylined('ip', ['netns', 'exec', ns, keylined] +
                           kl_itest.eal_args(kl_itest.unique('ptb'), mem=256), cfg_b, workdir=tmp)
    kc = kl_itest.Keylined('ip', ['netns', 'exec', ns, keylined] +
                           kl_itest.eal_args(kl_itest.unique('ptc'), mem=256), cfg_c, workdir=tmp)
    kb.wait_ready()
    kc.wait_ready()
    setup_keys(admin_a, 'a', ['vlr-b.test', 'vlr-c.test'])
    setup_keys(admin_b, 'b', ['vlr-a.test'])
    setup_keys(admin_c, 'c', ['vlr-a.test'])
    ue4, ue6, rogue = in_ns(lambda: (udp(socket.AF_INET, U4), udp(socket.AF_INET6, U6),
                                     udp(socket.AF_INET, B4)))
    try:
        # vlr-a -> vlr-b over IPv4 (ARP first), vlr-a -> vlr-c over IPv6 (NS first)
        for peer, sock, addr in (('b', ue4, A4), ('c', ue6, A6)):
            p_x = kl_itest.dh_public(kdf, K[peer])
            ans, tries = ask(sock, addr, PA, K['a'], UE['a'], 4,
                             [(5, UE[peer].encode()), (6, f'vlr-{peer}.test'.encode())],
                             b'\x09\x00\x20' + p_x)
            ck.check(ans is not None and ans[1] == 1,
                     f'UEa got UE{peer}\'s public value through vlr-a (dpdk) <-> vlr-{peer} '
                     f'({tries} tries)')
        pv = peers_of(admin_a)
        for i, peer in enumerate(('vlr-b.test', 'vlr-c.test')):
            c = pv['peers'][i]['counters']
            ck.check(pv['peers'][i]['identity'] == peer and c['sent'] >= 1
                     and c['answered'] >= 1 and c['refused'] == 0,
                     f'vlr-a asked {peer} and had its answer: {pv["peers"][i]}')
        # vlr-b -> vlr-a: vlr-a takes it as vlr-b's over the tap and answers
        p_a = kl_itest.dh_public(kdf, K['a'])
        ans, tries = ask(ue4, B4, pb, K['b'], UE['b'], 4, [(5, UE['a'].encode()),
                                                           (6, b'vlr-a.test')],
                         b'\x09\x00\x20' + p_a)
        ck.check(ans is not None, f'UEb got UEa\'s public value through vlr-b <-> vlr-a (dpdk) '
                                  f'({tries} tries)')
        received = peers_of(admin_a)['peers'][0]['counters']['received']
        ck.check(received >= 1, f'vlr-a received vlr-b\'s kind 6 over the tap: {received}')
        # vlr-b's address, another port: refused on vlr-b, not answered
        s2s_psk = bytes.fromhex(subprocess.run([kdf, 's2s-psk', '--key', PAIR_KEY.hex()],
                                               capture_output=True, text=True,
                                               check=True).stdout.strip())
        rogue.settimeout(0.5)
        rogue.sendto(kl_itest.ext250_request(kdf, s2s_psk, 'vlr-b.test', 6,
                                             [(5, UE['a'].encode())]), (A4, PA))
        try:
            ck.check(False, f'the rogue kind 6 was answered: {rogue.recv(2048)!r}')
        except socket.timeout:
            pass
        pv = peers_of(admin_a)
        ck.eq(pv['peers'][0]['counters']['refused'], 1, f'vlr-a refused the rogue kind 6: {pv}')
        ck.eq(pv['peers'][0]['counters']['received'], received, 'and did not take it')
    finally:
        for s in (ue4, ue6, rogue):
            s.close()
    rc, cnt = ka.stop()
    cnt = cnt or {}
    ck.eq(rc, 0, 'vlr-a exits 0')
    ck.check(cnt.get('s2s_no_neighbour', 0) >= 2,
             f'vlr-a had no MAC for either peer at first: {cnt.get("s2s_no_neighbour")}')
    ck.check(cnt.get('neighbour_learned', 0) >= 2,
             f'vlr-a learned both MACs: {cnt.get("neighbour_learned")}')
    ck.check(cnt.get('s2s_tx', 0) >= 2 and cnt.get('s2s_tx_failed') == 0,
             f'vlr-a sent its kind 6 messages: {cnt.get("s2s_tx")}, {cnt.get("s2s_tx_failed")}')
    ck.check(cnt.get('peer0_retried', 0) + cnt.get('peer1_retried', 0) >= 2,
             'the messages that waited for a MAC were retransmitted')
    ck.eq(cnt.get('drop_not_peer'), 1, 'vlr-a: one kind 6 refused')
    for k in (kb, kc):
        rc, _ = k.stop()
        ck.eq(rc, 0, 'socket peer exits 0')
finally:
    for k in (ka, kb, kc):
        if k:
            k.kill()
    sh('ip', 'netns', 'del', ns, check=False)
rc = ck.done()
if rc == 0:
    subprocess.run(['rm', '-rf', tmp])
sys.exit(rc)

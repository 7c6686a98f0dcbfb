#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Two keylined on loopback (--io socket, distinct ports), each the other's peer (PROTOCOL.md
section 10): a server-to-server message is accepted only from the configured peer's address AND
port. First the positive control: UEb asks VLRb (kind 4) for UEa's public value; VLRb answers
ERR 12/5, asks VLRa with kind 6 from its own port, VLRa answers, and UEb's retry gets P_a (checked
against X25519 of KDF(Ka, FF07, "dh-x25519") computed here); the peers' counters show the
exchange (sent, answered, received). Then kind 6 messages, well-formed and MACed with the real
s2s PSK, from a source that is not the peer (the peer's address, another port): with the peer's
identity each is refused and counted on that peer (refused, drop not_peer), with an unknown
identity on the unconfigured sources; none is answered, and the peer's own counters do not move.
    test_keylined_peers.py KEYLINED KEYLINE_KDF"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, kdf = sys.argv[1:3]
ck = kl_itest.Checks('keylined-peers')
tmp = tempfile.mkdtemp(prefix='kl-peers-')
PAIR_KEY = bytes(range(32))
KA, KB = bytes(range(100, 132)), bytes(range(150, 182))
UEA, UEB = 'uea@ims.a.example', 'ueb@ims.b.example'


def kdf_hex(*args):
    return subprocess.run([kdf] + list(args), capture_output=True, text=True,
                          check=True).stdout.strip()


def request(psk, idi, kind, tlvs):
    return kl_itest.ext250_request(kdf, psk, idi, kind, tlvs)


def exchange(sock, msg, port, wait=0.5):
    """Send msg to 127.0.0.1:port from sock; the answer or None within wait seconds."""
    sock.settimeout(wait)
    sock.sendto(msg, ('127.0.0.1', port))
    try:
        return sock.recv(2048)
    except socket.timeout:
        return None


def peers_of(admin):
    return kl_itest.admin_many(admin, [{'cmd': 'peers'}])[0]


def server(name, ident, port, peer_ident, peer_port):
    admin = os.path.join(tmp, f'{name}.sock')
    cfg = kl_itest.write_config(
        os.path.join(tmp, f'{name}.yaml'), ipv4=('127.0.0.1',), ipv6=(), admin=admin,
        identity=ident, table={'ues': 64, 'pairs': 8},
        extra={'io': 'socket', 'udp_port': port,
               'peers': f'[{{identity: "{peer_ident}", address: 127.0.0.1, port: {peer_port}}}]'})
    return kl_itest.Keylined(keylined, kl_itest.eal_args(kl_itest.unique(name)), cfg,
                             workdir=tmp), admin


pa, pb = kl_itest.free_udp_port(), kl_itest.free_udp_port()
while pb == pa:
    pb = kl_itest.free_udp_port()
(ka, admin_a), (kb, admin_b) = server('vlra', 'vlr-a.test', pa, 'vlr-b.test', pb), \
    server('vlrb', 'vlr-b.test', pb, 'vlr-a.test', pa)
ue = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rogue = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rogue.bind(('127.0.0.1', 0))
try:
    ka.wait_ready()
    kb.wait_ready()
    for admin, peer, ue_id, muk in ((admin_a, 'vlr-b.test', UEA, KA),
                                    (admin_b, 'vlr-a.test', UEB, KB)):
        ans = kl_itest.admin_many(admin, [
            {'cmd': 'put-pair', 'peer': peer, 'key': PAIR_KEY.hex()},
            {'cmd': 'put-ue', 'id': ue_id, 'muk': muk.hex(), 'groups': [], 'services': 'dh'}])
        ck.check(all(a.get('ok') for a in ans), f'{admin}: pair key and UE: {ans}')
    pk = peers_of(admin_a)['peers'][0]
    ck.check(pk['identity'] == 'vlr-b.test' and pk['port'] == pb and pk['pair_key'],
             f'vlr-a sees vlr-b with the pair key: {pk}')

    # positive control: kind 4 at VLRb for UEa (at VLRa): 12/5, then P_a after the exchange
    p_a = kl_itest.dh_public(kdf, KA)
    got, tries, t0 = None, 0, time.time()
    while time.time() - t0 < 5 and got is None:
        ans = exchange(ue, request(KB, UEB, 4, [(5, UEA.encode()), (6, b'vlr-a.test')]), pb)
        tries += 1
        if ans and ans[1] == 1 and b'\x09\x00\x20' + p_a in ans:
            got = ans
        else:
            time.sleep(0.1)
    ck.check(got is not None, f'UEb got UEa\'s public value through vlr-b <-> vlr-a '
                              f'({tries} tries)')
    ck.check(tries >= 2, f'the first answer was ERR 12/5 (not ready): {tries} tries')
    pa_peer, pb_peer = peers_of(admin_a)['peers'][0], peers_of(admin_b)['peers'][0]
    ck.check(pb_peer['counters']['sent'] >= 1 and pb_peer['counters']['answered'] >= 1
             and pb_peer['counters']['refused'] == 0,
             f'vlr-b sent kind 6 to vlr-a and had it answered: {pb_peer}')
    ck.check(pa_peer['counters']['received'] >= 1 and pa_peer['counters']['refused'] == 0,
             f'vlr-a received kind 6 from vlr-b\'s address and port: {pa_peer}')
    before_b = pb_peer['counters']

    # refused: vlr-b's identity (and its real s2s PSK), vlr-b's address, another port
    s2s_psk = bytes.fromhex(kdf_hex('s2s-psk', '--key', PAIR_KEY.hex()))
    N = 3
    for i in range(N):
        ans = exchange(rogue, request(s2s_psk, 'vlr-b.test', 6, [(5, UEA.encode())]), pa)
        ck.eq(ans, None, f'kind 6 with vlr-b\'s identity from {rogue.getsockname()} answered')
    ans = exchange(rogue, request(s2s_psk, 'vlr-x.test', 6, [(5, UEA.encode())]), pa)
    ck.eq(ans, None, 'kind 6 with an unknown identity answered')
    time.sleep(0.2)
    pv = peers_of(admin_a)
    ck.eq(pv['peers'][0]['counters']['refused'], N, f'vlr-a: refused counted on vlr-b: {pv}')
    ck.eq(pv['peers'][0]['counters']['received'], pa_peer['counters']['received'],
          'vlr-a: nothing received from the rogue source')
    ck.eq(pv['unconfigured_refused'], 1, 'vlr-a: the unknown identity counted unconfigured')
    ck.eq(peers_of(admin_b)['peers'][0]['counters'], before_b,
          'vlr-b\'s counters do not move')
    rc_a, cnt_a = ka.stop()
    rc_b, cnt_b = kb.stop()
    cnt_a, cnt_b = cnt_a or {}, cnt_b or {}
    ck.eq(rc_a, 0, 'vlr-a exits 0')
    ck.eq(rc_b, 0, 'vlr-b exits 0')
    ck.eq(cnt_a.get('drop_not_peer'), N + 1, f'vlr-a drops not_peer: {cnt_a}')
    ck.eq(cnt_a.get('peer0_refused'), N, 'vlr-a final counters: peer0_refused')
    ck.eq(cnt_a.get('unconfigured_refused'), 1, 'vlr-a final counters: unconfigured_refused')
    ck.check((cnt_b.get('s2s_tx') or 0) >= 1 and cnt_b.get('s2s_tx_failed') == 0,
             f'vlr-b sent its kind 6 from its socket: {cnt_b}')
    ck.eq(cnt_b.get('drop_not_peer'), 0, 'vlr-b refused nothing')
finally:
    ue.close()
    rogue.close()
    ka.kill()
    kb.kill()
rc = ck.done()
if rc == 0:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(rc)

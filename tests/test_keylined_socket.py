#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keylined on kernel sockets counts a datagram larger than a request as the drop reason
"oversized", as the DPDK path does, whether or not it fits the receive buffer (2,048 bytes):
it is never a receive error.
    test_keylined_socket.py KEYLINED"""
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined = sys.argv[1]
ck = kl_itest.Checks('keylined-socket')
tmp = tempfile.mkdtemp(prefix='kl-sock-')

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 0))
port = s.getsockname()[1]
s.close()
cfg = kl_itest.write_config(os.path.join(tmp, 'k.yaml'), ipv4=('127.0.0.1',), ipv6=(),
                            admin=os.path.join(tmp, 'k.sock'),
                            extra={'io': 'socket', 'udp_port': port})
kd = kl_itest.Keylined(keylined, kl_itest.eal_args(kl_itest.unique('sock')), cfg, workdir=tmp)
SIZES = (513, 2047, 2048, 2049, 4000, 65000)
try:
    kd.wait_ready()
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for n in SIZES:
        c.sendto(b'\x01' + bytes(n - 1), ('127.0.0.1', port))
        time.sleep(0.05)
    time.sleep(0.5)
    rc, cnt = kd.stop()
    cnt = cnt or {}
    ck.eq(rc, 0, 'keylined exits 0')
    ck.eq(cnt.get('rx_frames'), len(SIZES), 'every datagram received')
    ck.eq(cnt.get('drop_oversized'), len(SIZES), f'every datagram counted oversized: {cnt}')
    ck.eq(cnt.get('rx_errors'), 0, 'no receive errors')
finally:
    kd.kill()
sys.exit(ck.done())

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keylined over net_pcap: replay a generated capture (pcap_mix_gen gen) that mixes valid MBMS
and E2M requests over IPv4 and IPv6 with frames every MIKEY and L2-L4 check must drop, and ARP,
ICMP, ICMPv6 echo and neighbour solicitations; then
  - every counter keylined prints at stop must equal pcap_mix_gen's expectation exactly,
  - every frame keylined sent must be a right answer to a frame that deserved one, and every
    such frame must be answered (pcap_mix_gen verify: MACs, keys against the population),
  - tshark must decode every answer as MIKEY with no malformed field or warning.

usage: test_keylined_pcap.py KEYLINED PCAP_MIX_GEN KEYLINE_POPULATION
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

KEYLINED, GEN, POPTOOL = sys.argv[1], sys.argv[2], sys.argv[3]
IDENTITY = 'keyline.test'
failures, passed = [], 0


def check(what, cond, detail=''):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print(f'FAIL {what}: {detail}')


def run(cmd, ok_codes=(0,)):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode not in ok_codes:
        sys.exit(f'{os.path.basename(cmd[0])} exited {r.returncode}: {r.stderr.strip()}')
    return r


def pcap_frames(path):
    """Number of records in a classic pcap file (0 while the file is not there yet)."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    if len(data) < 24:
        return 0
    end = '<' if data[:4] in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1') else '>'
    off, n = 24, 0
    while off + 16 <= len(data):
        incl = struct.unpack_from(end + 'I', data, off + 8)[0]
        if off + 16 + incl > len(data):
            break
        off += 16 + incl
        n += 1
    return n


class Server:
    """keylined with stdout read by a thread, so 'ready' can be waited for with a timeout."""

    def __init__(self, args):
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines, self.ready = [], threading.Event()
        self.err = []
        threading.Thread(target=self._read, args=(self.p.stdout, self.lines, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.p.stderr, self.err, False), daemon=True).start()

    def _read(self, stream, into, watch):
        for line in stream:
            into.append(line.rstrip('\n'))
            if watch and line.strip() == 'keylined: ready':
                self.ready.set()
        if watch:
            self.ready.set()  # EOF: stop waiting, the caller sees the exit

    def stop(self, timeout=30):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None

    def counters(self):
        out, seen = {}, False
        for line in self.lines:
            if line.strip() == 'keylined: final counters':
                seen = True
                continue
            if seen and line.startswith('  '):
                parts = line.split()
                if len(parts) == 2 and parts[1].isdigit():
                    out[parts[0]] = int(parts[1])
        return out if seen else None


with tempfile.TemporaryDirectory(prefix='klpcap') as td:
    pop, mix, exp_path, out = (os.path.join(td, n) for n in ('pop.txt', 'mix.pcap', 'expect.json', 'out.pcap'))
    cfg = os.path.join(td, 'k.yaml')
    run([POPTOOL, '--seed', '7', '--ues', '10000', '--groups', '4', '--emses', '10', '--imsis', '10',
         '--appids', '10', '-o', pop])
    run([GEN, 'gen', pop, mix, exp_path])
    with open(exp_path) as f:
        exp = json.load(f)
    check('mix written', pcap_frames(mix) == exp['frames'], f'{pcap_frames(mix)} vs {exp["frames"]}')
    with open(cfg, 'w') as f:
        f.write(f'''ports:
  - name: pcap0
    devargs: "net_pcap0,rx_pcap={mix},tx_pcap={out}"
    queues: 1
ipv4: [192.0.2.1]
ipv6: ["2001:db8::1"]
server_identity: "{IDENTITY}"
admin_socket: {os.path.join(td, 'admin.sock')}
table: {{ues: 20000, groups: 16, emses: 64, imsis: 64, appids: 64}}
''')
    srv = Server([KEYLINED, '--no-huge', '--no-shconf', '-m', '512', '--no-pci', '--no-telemetry',
                  '-l', '0-1', '--log-level=error', '--file-prefix', f'klpcap{os.getpid()}', '--',
                  '-c', cfg, '-p', pop])
    try:
        srv.ready.wait(60)
        check('keylined ready', srv.p.poll() is None and 'keylined: ready' in srv.lines,
              '\n'.join(srv.err[-10:]))
        # The pcap PMD reads the whole file at once; the TX capture is flushed per burst. Wait
        # for the expected number of sent frames, then a little longer for anything extra.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and srv.p.poll() is None and pcap_frames(out) < exp['tx_frames']:
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        rc = srv.stop()
    check('keylined exits 0 on SIGTERM', rc == 0, f'exit {rc}: ' + '\n'.join(srv.err[-10:]))
    got = srv.counters()
    check('final counters printed', got is not None, '\n'.join(srv.lines[-5:]))
    got = got or {}
    for name, want in exp['counters'].items():
        check(f'counter {name}', got.get(name) == want, f'keylined {got.get(name)}, expected {want}')
    extra = sorted(set(got) - set(exp['counters']))
    if extra:
        print(f'note: counters keylined prints that the mix does not predict: {extra}')
    n_out = pcap_frames(out)
    check('frames in the TX capture', n_out == exp['tx_frames'], f'{n_out} vs {exp["tx_frames"]}')

    r = subprocess.run([GEN, 'verify', pop, mix, out, IDENTITY], capture_output=True, text=True, timeout=60)
    if r.stderr.strip():
        print(r.stderr.strip())
    check('verify accepts every answer and finds none missing', r.returncode == 0, f'exit {r.returncode}')
    try:
        summ = json.loads(r.stdout)
    except ValueError:
        summ = {}
        check('verify prints a JSON summary', False, r.stdout)
    c = exp['counters']
    for k in ('answered_mbms', 'answered_e2m', 'error_invalid_ts', 'error_not_authorised',
              'error_no_such_key', 'error_key_not_valid', 'arp_replies', 'icmp4_echo_replies',
              'icmp6_echo_replies', 'ndp_adverts'):
        check(f'verify: {k}', summ.get(k) == c[k], f'{summ.get(k)} vs {c[k]}')
    check('verify: deserved UDP answers', summ.get('deserved_udp_answers') == exp['udp_answers'],
          f'{summ.get("deserved_udp_answers")} vs {exp["udp_answers"]}')
    check('verify: UDP answers', summ.get('udp_answers') == exp['udp_answers'])

    if shutil.which('tshark'):
        bad = subprocess.run(['tshark', '-n', '-r', out, '-Y',
                              '_ws.malformed || _ws.expert.severity >= warning'],
                             capture_output=True, text=True, timeout=120)
        check('tshark: no malformed field or warning in the answers',
              bad.returncode == 0 and bad.stdout.strip() == '', bad.stdout + bad.stderr)
        types = subprocess.run(['tshark', '-n', '-r', out, '-Y', 'mikey', '-T', 'fields', '-e', 'mikey.type'],
                               capture_output=True, text=True, timeout=120).stdout.split()
        n_resp = c['answered_mbms'] + c['answered_e2m']
        n_err = exp['udp_answers'] - n_resp
        check('tshark: responses decoded as MIKEY data type 1', types.count('1') == n_resp,
              f'{types.count("1")} vs {n_resp}')
        check('tshark: errors decoded as MIKEY data type 6', types.count('6') == n_err,
              f'{types.count("6")} vs {n_err}')
        check('tshark: nothing else decoded as MIKEY', len(types) == exp['udp_answers'], str(types))
    else:
        print('note: tshark not found, decoder checks skipped')

print(f'keylined pcap replay: {passed} passed, {len(failures)} failed')
sys.exit(1 if failures else 0)

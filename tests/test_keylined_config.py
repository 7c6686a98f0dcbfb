#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keylined refuses bad configurations and arguments: exit status 2, one message naming the key
(and for file errors its line), never a crash. Every bad file of tests/config (each wrong in one
field, listed with key and line in tests/test_config.c) is given to the real binary, then bad
overrides, bad options, bad EAL arguments and start-up conditions only the daemon can see.
    test_keylined_config.py KEYLINED SRC_ROOT"""
import concurrent.futures
import itertools
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, src = sys.argv[1], sys.argv[2]
ck = kl_itest.Checks('keylined-config')
tmp = tempfile.mkdtemp(prefix='kl-cfg-')
n = itertools.count(1)
# The bad files and overrides run 3 keylined at a time (each its own file prefix): most of a
# refusal's time is EAL's start-up and clean-up, not CPU.
pool = concurrent.futures.ThreadPoolExecutor(max_workers=3)


def run(config, args=(), eal=None, lcores='0-1', timeout=60):
    eal = eal if eal is not None else kl_itest.eal_args(f'klcfg{os.getpid()}x{next(n)}', mem=128,
                                                        lcores=lcores)
    cmd = [keylined] + eal + ['--', '-c', config] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def keylined_lines(err):
    return [l for l in err.splitlines() if l.startswith('keylined:')]


# 1. every bad file, with the key and line test_config.c expects
table = open(os.path.join(src, 'tests', 'test_config.c')).read()
cases = re.findall(r'\{ "(bad-[^"]+\.yaml)", (NULL|"[^"]*"), (\d+) \}', table)
ck.check(len(cases) >= 60, f'bad-file table found ({len(cases)} cases)')
runs = pool.map(lambda c: run(os.path.join(src, 'tests', 'config', c[0])), cases)
for (f, key, line), (rc, out, err) in zip(cases, runs):
    ck.eq(rc, 2, f'{f}: exit status')
    msgs = keylined_lines(err)
    ck.eq(len(msgs), 1, f'{f}: one keylined message ({msgs})')
    msg = msgs[0] if msgs else ''
    if key != 'NULL':
        ck.check(key.strip('"') in msg, f'{f}: message names {key}: {msg}')
    if line != '0':
        ck.check(f'{f}:{line}:' in msg, f'{f}: message gives line {line}: {msg}')
    ck.check('ready' not in out, f'{f}: never became ready')

# 2. a good base config (pcap port on /dev/null captures, so nothing touches the host)
base = kl_itest.write_config(os.path.join(tmp, 'base.yaml'),
                             ports=[('p0', f'net_pcap0,rx_pcap={tmp}/none.pcap,tx_pcap={tmp}/o.pcap', 1)],
                             admin=os.path.join(tmp, 'admin.sock'))
open(os.path.join(tmp, 'none.pcap'), 'wb').write(
    bytes.fromhex('d4c3b2a1020004000000000000000000ffff000001000000'))

bad_overrides = [
    ('skew_s=0', 'skew_s'),
    ('hm_session_s=59', 'hm_session_s'),
    ('skew_s=abc', 'skew_s'),
    ('workers=65', 'workers'),
    ('udp_port=70000', 'udp_port'),
    ('ipv4[0]=300.1.1.1', 'ipv4[0]'),
    ('ipv6[0]=zz::1', 'ipv6[0]'),
    ('replay_cache=1000', 'replay_cache'),
    ('rate_limit.burst=0', 'rate_limit.burst'),
    ('table.ues=0', 'table.ues'),
    ('table.e2m_ring=9', 'table.e2m_ring'),
    ('metrics=127.0.0.1', 'metrics'),
    ('crypto=aesni', 'crypto'),
    ('io=xdp', 'io'),
    ('no_such_key=1', 'no_such_key'),
    ('noequals', 'noequals'),
    ('ports[0].queues=2', 'queues'),   # cross-field: queues must equal workers
    ('admin_socket=relative/path', 'admin_socket'),
    ('diameter.port=0', 'diameter.port'),
    ('naf_key_center.port=0', 'naf_key_center.port'),
    ('naf_key_center.naf_ids[0].ua_protocol=zz', 'naf_key_center.naf_ids[0].ua_protocol'),
    ('naf_key_center.threads=1', 'naf_key_center'),   # cross-field: needs the diameter: section
    ('peers[0].address=192.0.2.9:2269', 'peers[0].address'),
    ('peers[0].identity=vlr-b.test', 'peers[0].address'),  # cross-field: the address is missing
    ('s2s_pending=70000', 's2s_pending'),
    ('diameter.tls_ca=ca.pem', 'diameter.tls_ca'),
    ('diameter.max_queue=1', 'diameter.identity'),   # cross-field: the feed needs an identity
    ('msk_rotation[0].period_s=5', 'msk_rotation[0].period_s'),
    ('msk_rotation[0].group=00f110:1', 'msk_rotation[0].period_s'),  # required
]
runs = pool.map(lambda o: run(base, [o[0]]), bad_overrides)
for (ov, key), (rc, out, err) in zip(bad_overrides, runs):
    msgs = keylined_lines(err)
    ck.eq(rc, 2, f'override {ov}: exit status')
    ck.check(len(msgs) == 1 and key in msgs[0], f'override {ov}: one message naming {key}: {msgs}')

for args, what in [(['--io', 'rdma'], 'io'), (['--crypto', 'none'], 'crypto'),
                   (['--bogus'], 'usage'), (['-p', os.path.join(tmp, 'missing.pop')], 'population')]:
    rc, out, err = run(base, args)
    ck.eq(rc, 2, f'args {args}: exit status')
    ck.check(what in err, f'args {args}: message mentions {what}: {err[-300:]}')

# no -c at all, a missing file, a directory, garbage EAL arguments
p = subprocess.run([keylined] + kl_itest.eal_args(f'klcfg{os.getpid()}nc', mem=128) + ['--'],
                   capture_output=True, text=True, timeout=60)
ck.eq(p.returncode, 2, 'no -c: exit status')
rc, out, err = run(os.path.join(tmp, 'nonexistent.yaml'))
ck.eq(rc, 2, 'missing config file: exit status')
rc, out, err = run(tmp)
ck.eq(rc, 2, 'config is a directory: exit status')
p = subprocess.run([keylined, '--no-such-eal-flag', '--', '-c', base], capture_output=True,
                   text=True, timeout=60)
ck.eq(p.returncode, 2, 'bad EAL argument: exit status')

# conditions only the daemon sees: more workers than lcores, a device that cannot be probed,
# a population larger than the table
rc, out, err = run(base, ['workers=2', 'ports[0].queues=2'])
ck.eq(rc, 2, 'workers > worker lcores: exit status')
ck.check('workers' in err and '-l' in err, f'workers > lcores: message: {err[-300:]}')
rc, out, err = run(base, ['ports[0].devargs=net_nosuchdriver0'])
ck.eq(rc, 2, 'unknown device: exit status')
ck.check('ports[0]' in err, f'unknown device: message names the port: {err[-300:]}')
pop = os.path.join(tmp, 'big.pop')
subprocess.run([os.path.join(os.path.dirname(keylined), '..', 'tools', 'keyline-population'),
                '--seed', '1', '--ues', '30000', '-o', pop], check=True, capture_output=True)
rc, out, err = run(base, ['-p', pop])
ck.eq(rc, 2, 'population larger than table.ues: exit status')
ck.check('table' in err, f'population too large: message: {err[-300:]}')

# a diameter: section whose TLS files do not exist: the feed cannot start (exit 2, one line)
rc, out, err = run(base, ['diameter.identity=keylined.test', 'diameter.listen=127.0.0.1',
                          'diameter.port=%d' % (20000 + os.getpid() % 20000),
                          f'diameter.tls_cert={tmp}/missing.pem', f'diameter.tls_key={tmp}/k.pem',
                          f'diameter.tls_ca={tmp}/ca.pem'])
msgs = [l for l in keylined_lines(err) if ': error: ' in l]
ck.eq(rc, 2, 'diameter with a missing certificate: exit status')
ck.check(len(msgs) == 1 and 'diameter' in msgs[0] and 'missing.pem' in msgs[0],
         f'diameter with a missing certificate: one message naming it: {msgs} {err[-300:]}')
ck.check('ready' not in out, 'diameter with a missing certificate: never ready')

# files that are FIFOs (nobody writes them) are refused at once, never waited on; a NUL in
# server_identity is refused rather than cutting it short
def run_quick(config, args=(), what=''):
    try:
        return run(config, args, timeout=20)
    except subprocess.TimeoutExpired:
        ck.check(False, f'{what}: keylined hung (no exit within 20 s)')
        return None, '', ''


fifo = os.path.join(tmp, 'fifo')
os.mkfifo(fifo)
for what, cfg, args, want in [
        ('config is a FIFO', fifo, [], 'not a regular file'),
        ('population is a FIFO', base, ['-p', fifo], 'not a regular file'),
        ('store.kek_file is a FIFO', base, [f'store.path={tmp}', f'store.kek_file={fifo}'],
         'KEK'),
        ('diameter.tls_cert is a FIFO', base,
         ['diameter.identity=keylined.test', 'diameter.listen=127.0.0.1',
          'diameter.port=%d' % (20000 + (os.getpid() + 1) % 20000), f'diameter.tls_cert={fifo}',
          f'diameter.tls_key={fifo}', f'diameter.tls_ca={fifo}'], 'tls_cert')]:
    rc, out, err = run_quick(cfg, args, what)
    msgs = [l for l in keylined_lines(err) if 'error' in l or 'regular' in l]
    ck.eq(rc, 2, f'{what}: exit status')
    ck.check(any(want in l for l in keylined_lines(err)), f'{what}: message says {want!r}: {err[-300:]}')
    ck.check('ready' not in out, f'{what}: never ready')
for ident in (r'a\0b', r'a\x00b', r'a\u0000b'):
    bad = kl_itest.write_config(os.path.join(tmp, 'nul.yaml'), identity=ident,
                                ports=[('p0', f'net_pcap0,rx_pcap={tmp}/none.pcap,tx_pcap={tmp}/o.pcap', 1)],
                                admin=os.path.join(tmp, 'admin.sock'))
    rc, out, err = run_quick(bad, [], f'server_identity "{ident}"')
    msgs = keylined_lines(err)
    ck.eq(rc, 2, f'server_identity "{ident}": exit status')
    ck.check(len(msgs) == 1 and 'server_identity' in msgs[0] and 'NUL' in msgs[0],
             f'server_identity "{ident}": one message naming it: {msgs}')
    ck.check('ready' not in out, f'server_identity "{ident}": never ready')

# every keylinectl command keyline.example.yaml and README.md name exists (the example once named
# "import-population", the admin request, for keylinectl import)
ctl = os.path.join(os.path.dirname(keylined), '..', 'tools', 'keylinectl')
if os.path.exists(ctl):
    helptext = subprocess.run([ctl, '--help'], capture_output=True, text=True).stdout
    known = set(re.findall(r'^  ([a-z][a-z0-9-]+)', helptext, re.M)) | {'ping', 'version', 'count'}
    for doc in ('keyline.example.yaml', 'README.md'):
        text = open(os.path.join(src, doc)).read()
        for word in re.findall(r'keylinectl ([a-z][a-z0-9-]+)', text):
            if word not in ('talks', 'waits', 'write', 'and', 'or'):
                ck.check(word in known, f'{doc} names keylinectl {word}, which keylinectl lacks')

# --help: DPDK's EAL options and keylined's own (exit 0); -- --help: only keylined's
p = subprocess.run([keylined, '--help'], capture_output=True, text=True, timeout=60)
ck.eq(p.returncode, 0, 'keylined --help: exit status')
ck.check('--file-prefix' in p.stdout and '-c, --config FILE' in p.stdout
         and '--population FILE' in p.stdout, f'keylined --help shows both: {p.stdout[-600:]!r}')
p = subprocess.run([keylined] + kl_itest.eal_args(f'klcfg{os.getpid()}h', mem=128) + ['--', '--help'],
                   capture_output=True, text=True, timeout=60)
ck.eq(p.returncode, 0, 'keylined -- --help: exit status')
ck.check('-c, --config FILE' in p.stdout and '--file-prefix' not in p.stdout,
         f'keylined -- --help: keylined only: {p.stdout[-600:]!r}')

sys.exit(ck.done())

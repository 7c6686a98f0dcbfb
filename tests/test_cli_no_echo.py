#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""No CLI echoes text that could be a key (issue 15, item 4). For every CLI and a set of
representative valid command lines, each argument position (and each "--option VALUE" as
"--option=VALUE") gets a planted key: 32 and 64 hex digits, 0x-prefixed hex, base64 of 16 and
32 bytes. A run that fails must not show any 8-character piece of the planted text on stdout
or stderr; a run that succeeds must not show it on stderr (stdout may carry an accepted value,
e.g. "ue ID: added", as data). keylinectl talks to a real admin server (admin_testd), so
keylined's admin errors are checked too.
    test_cli_no_echo.py KEYLINECTL ADMIN_TESTD KEYLINE_HSS_SIM KEYLINE_KDF KEYLINE_POPULATION
                        KEYLINE_BURST KEYLINE_REPORT KEYLINED DATA_DIR"""
import base64
import concurrent.futures
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

(CTL, TESTD, HSS, KDF, POPGEN, BURST, REPORT, KEYLINED, DATA) = map(os.path.abspath,
                                                                   sys.argv[1:10])
FAILS = []
RUNS = [0]
CWD = [None]  # a planted output path creates a file: in the scratch directory


def plants():
    h = hashlib.sha256(b'keyline planted key').digest() + hashlib.sha256(b'second').digest()
    out = [h[:16].hex(), h[:32].hex().upper(), '0x' + h[16:32].hex(),
           base64.b64encode(h[:16]).decode(), base64.b64encode(h[8:40]).decode()]
    # and a base64 key with '/' inside, so that no run between slashes is 16 long
    for i in range(10000):
        b = base64.b64encode(hashlib.sha256(b'slash %d' % i).digest()[:16]).decode()
        if b[0] != '/' and '/' in b[7:10] and '/' in b[15:18]:
            return out + [b]
    raise RuntimeError('no slashed base64 plant')


PLANTS = plants()
# KL_NOECHO_PLANTS=0,5: only those plants (the sanitizer run: every argument position still gets
# a hex and a base64 key; the release run plants all six kinds)
if os.environ.get('KL_NOECHO_PLANTS'):
    PLANTS = [PLANTS[int(i)] for i in os.environ['KL_NOECHO_PLANTS'].split(',')]


def pieces(text):
    t = text.lower()
    return {t[i:i + 8] for i in range(len(t) - 7)}


PIECES = {p: pieces(p) for p in PLANTS}


def leaks(plant, text):
    low = text.lower()
    return any(pc in low for pc in PIECES[plant])


def variants(argv, first):
    """(description, argv) with a plant in each position >= first and each --opt VALUE as
    --opt=PLANT."""
    for plant in PLANTS:
        for i in range(first, len(argv)):
            yield plant, f'argument {i}', argv[:i] + [plant] + argv[i + 1:]
            if argv[i].startswith('--') and i + 1 < len(argv) and not argv[i + 1].startswith('-'):
                yield plant, f'{argv[i]}=', argv[:i] + [argv[i] + '=' + plant] + argv[i + 2:]


def run_one(name, line, plant, where, a, timeout, env):
    try:
        p = subprocess.run(a, capture_output=True, text=True, timeout=timeout,
                           env=env, stdin=subprocess.DEVNULL, errors='replace',
                           cwd=CWD[0])
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc = None
        out = (e.stdout or b'').decode(errors='replace') if isinstance(e.stdout, bytes) else (e.stdout or '')
        err = (e.stderr or b'').decode(errors='replace') if isinstance(e.stderr, bytes) else (e.stderr or '')
    # the run is over (a timeout killed it): what EAL left under its prefix goes
    kl_itest.remove_rundir(kl_itest.file_prefix(a[1:]))
    fails = []
    if rc is not None and rc < 0:  # a planted argument must be refused, never crash the tool
        fails.append(f'{name}: {where} ({" ".join(line[:3])} ...): killed by signal '
                     f'{-rc}: {err.strip()[-300:]!r}')
    shown = err if rc == 0 else out + err
    if leaks(plant, shown):
        fails.append(f'{name}: {where} ({" ".join(line[:3])} ...): the planted key is '
                     f'echoed (exit {rc}): {shown.strip()[-300:]!r}')
    return fails


def run_all(name, base, lines, first=1, timeout=20, env=None):
    """Every variant of every line; two at a time, except lines with an EAL --file-prefix (the
    variants of one line share it: one at a time)."""
    t0, n0 = time.time(), RUNS[0]
    for line in lines:
        argv = base + line
        jobs = list(variants(argv, first))
        RUNS[0] += len(jobs)
        workers = 1 if '--file-prefix' in argv else 2
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
            for fails in ex.map(lambda j: run_one(name, line, j[0], j[1], j[2], timeout, env),
                                jobs):
                for f in fails:
                    FAILS.append(f)
                    print('FAIL:', f, flush=True)
    print(f'{name}: {RUNS[0] - n0} runs, {time.time() - t0:.1f} s', flush=True)


def main():
    tmp = tempfile.mkdtemp(prefix='kl-noecho-')
    CWD[0] = os.path.join(tmp, 'cwd')
    os.mkdir(CWD[0])
    k16 = os.path.join(tmp, 'k16.hex')
    k32 = os.path.join(tmp, 'k32.hex')
    with open(k16, 'w') as f:
        f.write(os.urandom(16).hex())
    with open(k32, 'w') as f:
        f.write(os.urandom(32).hex())
    os.chmod(k16, 0o600)
    os.chmod(k32, 0o600)
    pop = os.path.join(tmp, 'pop.txt')
    subprocess.run([POPGEN, '--seed', '5', '--ues', '100', '--groups', '4', '--emses', '4',
                    '--imsis', '4', '-o', pop], check=True, capture_output=True)

    # keylinectl against admin_testd: client-side and server-side errors
    sock = os.path.join(tmp, 'admin.sock')
    log = open(os.path.join(tmp, 'testd.log'), 'w')
    srv = subprocess.Popen([TESTD, sock, '1000'], stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        if srv.stdout.readline().strip() != 'ready':
            FAILS.append('admin_testd did not start')
            return
        run_all('keylinectl', [CTL], [
            ['-s', sock, '--timeout', '10', 'ping'],
            ['-s', sock, 'put-ue', 'ue1@ims.example', '--muk-file', k32, '--group', '00f110:1',
             '--expires', 'now+60'],
            ['-s', sock, 'put-group', '00f110:1', '--msk-file', k16, '--key-number', '1',
             '--valid-from', 'now', '--valid-to', 'now+3600'],
            ['-s', sock, 'put-emse', 'emse-1.example', '--psk-file', k32],
            ['-s', sock, 'push-e2m', '001010000000001', '--key-file', k32, '--key-id', '7'],
            ['-s', sock, 'put-appid', 'app1', '001010000000001'],
            ['-s', sock, 'show', 'ue', 'ue1@ims.example'],
            ['-s', sock, 'del', 'appid', 'app1'],
            ['-s', sock, 'stats', '--worker', '0'],
            ['-s', sock, 'rotate', '00f110:1'],
            ['-s', sock, 'import', pop],
        ])
    finally:
        srv.terminate()
        srv.wait(timeout=10)
        log.close()
    with open(os.path.join(tmp, 'testd.log')) as f:
        text = f.read()
    # an accepted write's log line names its entry (the planted text was taken as an ID);
    # any other line must not show it
    for line in text.splitlines():
        if re.search(r'": (added|replaced|deleted)', line):
            continue
        for plant in PLANTS:
            if leaks(plant, line):
                FAILS.append(f'admin_testd log: a planted key in {line[-200:]!r}')
                print('FAIL:', FAILS[-1], flush=True)

    # keyline-kdf (its successful output is derived key material, never an input)
    ck, ik, rnd = '11' * 16, '22' * 16, '33' * 16
    run_all('keyline-kdf', [KDF], [
        ['e2m-int-key', '--ck', ck, '--ik', ik],
        ['e2m-key', '--key', '44' * 32, '--emse-id', 'emse-7.corp.example'],
        ['kdf', '--key', '44' * 32, '--fc', 'ff02', '--p', 'text:emse-7'],
        ['mikey-keys', '--psk', '55' * 16, '--csb-id', '01020304', '--rand', rnd],
        ['milenage', '--k', '66' * 16, '--opc', '77' * 16, '--rand', rnd, '--sqn', '000000000001',
         '--amf', '8000'],
        ['kcv', '--key', '88' * 16],
        ['--backend', 'openssl', 'list'],
        ['dh-pub', '--key-file', k32],
        ['dh-ks', '--key-file', k32, '--peer-pub', '09' + '00' * 31, '--ue', 'ue-a@x',
         '--peer-ue', 'ue-b@x'],
        ['prose-p', '--kasme-file', k32, '--p', '33' * 16],
        ['prose-kd', '--p2-file', k32, '--p4-file', k32],
    ])

    # keyline-hss-sim: every option is checked before it connects; the TLS files are missing
    # here, so every run ends before a Diameter connection
    nofile = os.path.join(tmp, 'missing.pem')
    common = ['--peer', 'keylined.test@127.0.0.1:1', '--identity', 'hss.test', '--cert', nofile,
              '--key', nofile, '--ca', nofile, '--timeout-ms', '200']
    run_all('keyline-hss-sim', [HSS], [
        ['push-e2m'] + common + ['--k', ck, '--opc', ik, '--rand', rnd, '--sqn',
                                 '000000000001', '--amf', '8000', '--imsi', '001010000000001'],
        ['push-muk'] + common + ['--k', ck, '--op', ik, '--rand', rnd, '--sqn', '000000000001',
                                 '--amf', '8000', '--impi', 'ue1@ims.example',
                                 '--bmsc-fqdn', 'bmsc.example'],
        ['put-emse'] + common + ['--emse-id', 'emse-1', '--psk-file', k32],
        ['put-ue-groups'] + common + ['--id', 'ue1@ims.example', '--group', '00f110:1'],
        ['remove'] + common + ['--type', 'e2m', '--imsi', '001010000000001', '--key-id', '0a0b0c0d'],
        ['bulk'] + common + ['--kind', 'replace', '--population', pop, '--seed', '3',
                             '--ack-log', os.path.join(tmp, 'ack.log')],
    ], timeout=20)

    # keyline-population
    run_all('keyline-population', [POPGEN], [
        ['--seed', '1', '--ues', '10', '--groups', '2', '-o', os.path.join(tmp, 'p2.txt')],
        ['--show', pop, '--index', '0'],
    ])

    # keyline-burst over kernel sockets against a port nobody answers (a valid line fails its
    # UEs quickly), and with EAL options
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    run_all('keyline-burst', [BURST], [
        ['--io', 'socket', '--population', pop, '--server-ip', '127.0.0.1', '--server-port',
         str(port), '--ues', '2', '--timeout-ms', '10', '--retries', '0', '--interval-ms', '0',
         '--mode', 'max', '--crypto', 'openssl'],
        ['--no-huge', '--no-pci', '-m', '64', '--no-shconf', '-l', '0', '--no-telemetry',
         '--file-prefix', f'klnoecho{os.getpid()}', '--', '--population', pop,
         '--server-ip', '192.0.2.1', '--client-ip', '192.0.2.2', '--ues', '1',
         '--link-timeout-s', '1'],
    ], timeout=30)
    s.close()

    # keyline-report
    out = os.path.join(tmp, 'report')
    run_all('keyline-report', [sys.executable, REPORT], [
        [os.path.join(DATA, 'burst_ok.jsonl'), '-o', out, '--compare',
         os.path.join(DATA, 'compare.json')],
    ], first=2)

    # keylined: EAL options and its own (-c, -p, --io, --crypto, KEY=VALUE)
    cfg = os.path.join(tmp, 'k.yaml')
    with open(cfg, 'w') as f:
        f.write('server_identity: "keyline.test"\nio: socket\nipv4: [127.0.0.1]\n'
                f'udp_port: {port}\nadmin_socket: {tmp}/kd.sock\n'
                'table: {ues: 1000, groups: 16, emses: 16, imsis: 16, appids: 16}\n')
    run_all('keylined', [KEYLINED], [
        ['--no-huge', '--no-pci', '-m', '128', '--no-shconf', '-l', '0-1', '--no-telemetry',
         '--log-level=error', '--file-prefix', f'klnoechod{os.getpid()}', '--', '-c', cfg,
         '-p', pop, '--io', 'socket', '--crypto', 'openssl', 'skew_s=30', 'workers=9'],
    ], timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)


main()
print(f'cli-no-echo: {RUNS[0]} runs, {len(FAILS)} echoes', flush=True)
sys.exit(1 if FAILS else 0)

# SPDX-License-Identifier: BSD-3-Clause
"""Shared pieces of keyline's integration tests: start keylined as a real process with a
generated config, wait until it serves, stop it with SIGTERM and read its final counters."""
import hashlib
import hmac
import json
import os
import re
import select
import socket
import signal
import subprocess
import tempfile
import time

EAL_BASE = ['--no-huge', '--no-shconf', '--no-pci', '--log-level=error']


def load_vectors(path):
    """The blocks of a shared/vectors file: dicts of "name: value" lines, blank-line separated."""
    blocks, cur = [], {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                if cur:
                    blocks.append(cur)
                cur = {}
                continue
            if line.startswith('#') or ':' not in line:
                continue
            k, v = line.split(':', 1)
            cur[k.strip()] = v.strip()
    if cur:
        blocks.append(cur)
    assert blocks, path
    return blocks


def eal_args(prefix, mem=512, lcores='0-1', telemetry=False):
    a = EAL_BASE + ['-m', str(mem), '-l', lcores, '--file-prefix', prefix]
    if not telemetry:
        a.append('--no-telemetry')
    return a


def kcv(k):
    """The key check value of key bytes k outside keyline (DESIGN.md: the first 3 bytes of AES-ECB
    of 16 zero bytes for a 16-byte key, of HMAC-SHA-256 over them for a longer one), upper-case
    hex: Python's cryptography, else the openssl command, else hmac."""
    if len(k) == 16:
        try:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
            enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
            out = enc.update(bytes(16)) + enc.finalize()
        except ImportError:
            out = subprocess.run(["openssl", "enc", "-aes-128-ecb", "-nopad", "-K", k.hex()],
                                 input=bytes(16), capture_output=True, check=True).stdout
    else:
        out = hmac.new(k, bytes(16), hashlib.sha256).digest()
    return out[:3].hex().upper()


def ext250_request(kdf, psk, idi, kind, tlvs):
    """A request of PROTOCOL.md section 2 with EXT 250 (kind, then TLVs (type, value bytes)),
    IDi idi, MAC (MIKEY-1 PRF) with the keys keyline-kdf mikey-keys derives from psk; fresh
    RAND, CSB ID and T."""
    rand, csb = os.urandom(16), os.urandom(4)
    out = subprocess.run([kdf, 'mikey-keys', '--psk', psk.hex(), '--csb-id', csb.hex(), '--rand',
                          rand.hex()], capture_output=True, text=True, check=True).stdout
    auth = bytes.fromhex(dict(l.split('=', 1) for l in out.split())['auth_key'])
    ntp = int((time.time() + 2208988800) * (1 << 32))
    ext = bytes([kind]) + b''.join(bytes([t]) + len(v).to_bytes(2, 'big') + v for t, v in tlvs)
    msg = (bytes([1, 0, 5, 0]) + csb + bytes([0, 1]) + bytes([11, 0]) + ntp.to_bytes(8, 'big') +
           bytes([6, 16]) + rand + bytes([21, 0]) + len(idi).to_bytes(2, 'big') + idi.encode() +
           bytes([9, 250]) + len(ext).to_bytes(2, 'big') + ext + bytes([0, 1]))
    return msg + hmac.new(auth, msg, hashlib.sha1).digest()


def dh_public(kdf, muk):
    """P_x of a UE whose key is muk (PROTOCOL.md section 9, kind 4): X25519 (Python's
    cryptography) of the scalar keyline-kdf dh-scalar derives, KDF(Kx, FF07, "dh-x25519")."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    s = subprocess.run([kdf, 'dh-scalar', '--key', muk.hex()], capture_output=True, text=True,
                       check=True).stdout.strip()
    return X25519PrivateKey.from_private_bytes(bytes.fromhex(s)).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


def unique(tag):
    return f'kl{tag}{os.getpid()}'


def sigstop(pid, timeout=5.0):
    """SIGSTOP pid and return once every one of its threads is stopped. kill() returns when the
    signal is queued: until one thread has taken it, the others run on (a loaded machine can
    leave etcd or the BSF many milliseconds to answer a request sent right after)."""
    os.kill(pid, signal.SIGSTOP)
    end = time.time() + timeout
    while time.time() < end:
        states = []
        try:
            for t in os.listdir(f'/proc/{pid}/task'):
                with open(f'/proc/{pid}/task/{t}/stat') as f:
                    states.append(f.read().rsplit(')', 1)[1].split()[0])
        except OSError:
            continue  # a thread ended meanwhile
        if states and all(s in ('T', 't') for s in states):
            return
        time.sleep(0.005)
    raise RuntimeError(f'process {pid} not stopped after {timeout} s')


def free_udp_port():
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rundir_parent():
    """Where EAL makes its runtime directories: /var/run/dpdk as root, else
    $XDG_RUNTIME_DIR/dpdk or /tmp/dpdk (DPDK 22.11, eal_create_runtime_dir)."""
    if os.geteuid() == 0:
        return '/var/run/dpdk'
    return os.path.join(os.environ.get('XDG_RUNTIME_DIR') or '/tmp', 'dpdk')


def rundirs():
    """The names of the runtime directories there now."""
    try:
        return set(os.listdir(rundir_parent()))
    except OSError:
        return set()


def file_prefix(args):
    """The --file-prefix of an EAL command line, None without one."""
    args = list(args)
    for i, a in enumerate(args):
        if a == '--':
            break
        if a == '--file-prefix' and i + 1 < len(args):
            return args[i + 1]
        if a.startswith('--file-prefix='):
            return a.split('=', 1)[1]
    return None


def remove_rundir(prefix):
    """After the process of that prefix is gone (a clean exit removes its own directory): what a
    killed one left, its files (a telemetry socket) and the directory."""
    if not prefix or '/' in prefix or prefix in ('.', '..'):
        return
    d = os.path.join(rundir_parent(), prefix)
    try:
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        os.rmdir(d)
    except OSError:
        pass


def write_config(path, ports=(), ipv4=('192.0.2.1',), ipv6=('2001:db8::1',), extra=None,
                 admin=None, identity='keyline.test', table=None):
    t = {'ues': 20000, 'groups': 16, 'emses': 64, 'imsis': 64, 'appids': 64}
    if table:
        t.update(table)
    lines = []
    if ports:
        lines.append('ports:')
        for name, devargs, queues in ports:
            lines += [f'  - name: {name}', f'    devargs: "{devargs}"', f'    queues: {queues}']
    if ipv4:
        lines.append('ipv4: [' + ', '.join(ipv4) + ']')
    if ipv6:
        lines.append('ipv6: [' + ', '.join(f'"{a}"' for a in ipv6) + ']')
    lines.append(f'server_identity: "{identity}"')
    lines.append(f'admin_socket: {admin or os.path.join(os.path.dirname(path), "admin.sock")}')
    lines.append('table: {' + ', '.join(f'{k}: {v}' for k, v in t.items()) + '}')
    for k, v in (extra or {}).items():
        lines.append(f'{k}: {v}')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


class Keylined:
    """keylined as a child process; stderr goes to a log file, stdout is read for 'ready' and
    the final counters."""

    def __init__(self, binary, eal, config, args=(), workdir=None, wrap=(), **popen):
        """wrap: a command that runs keylined (it must exec it); popen: more Popen arguments
        (env, preexec_fn)."""
        self.workdir = workdir or tempfile.mkdtemp(prefix='kl-')
        self.log_path = os.path.join(self.workdir, 'keylined.log')
        self.log = open(self.log_path, 'w')
        self.cmd = list(wrap) + [binary] + list(eal) + ['--', '-c', config] + list(args)
        self.prefix = file_prefix(eal)
        self.p = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                  **popen)
        self.out = []
        self.counters = None
        self.rc = None

    def wait_ready(self, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            r, _, _ = select.select([self.p.stdout], [], [], 0.2)
            if r:
                line = self.p.stdout.readline()
                if not line:
                    break
                self.out.append(line)
                if line.strip() == 'keylined: ready':
                    return True
            elif self.p.poll() is not None:
                break
        self.kill()
        raise RuntimeError('keylined did not become ready:\n' + self.stderr())

    def stderr(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout=30, sig=signal.SIGTERM):
        """SIGTERM (or sig), wait for exit; returns (exit status, final counters)."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rest, _ = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError('keylined did not stop within %d s after SIGTERM' % timeout)
        self.out.append(rest)
        self.rc = self.p.returncode
        remove_rundir(self.prefix)  # a clean exit left none; a killed one may have
        self.counters = parse_counters(''.join(self.out))
        if self.rc != 0 or self.counters is None:
            print(f'keylined exit status {self.rc}; stdout tail: {"".join(self.out)[-800:]!r}')
            print('keylined stderr tail:\n' + self.stderr()[-2000:], flush=True)
        self.log.close()
        return self.rc, self.counters

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        remove_rundir(self.prefix)


def admin(sock, req):
    """One request on keylined's admin socket: its JSON answer."""
    return admin_many(sock, [req])[0]


def write_kek(path, data=None):
    """A KEK file (mode 0600, replacing any): data, or 32 random bytes."""
    if os.path.exists(path):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32) if data is None else data)
    os.close(fd)
    os.chmod(path, 0o600)
    return path


def admin_many(sock, reqs, chunk=256):
    """Requests on one connection to keylined's admin socket (JSON lines), pipelined in chunks;
    the answers in order."""
    out = []
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(sock)
    f = s.makefile('rb')
    for i in range(0, len(reqs), chunk):
        part = reqs[i:i + chunk]
        s.sendall(b''.join((json.dumps(r) + '\n').encode() for r in part))
        for _ in part:
            out.append(json.loads(f.readline()))
    s.close()
    return out


def parse_counters(text):
    m = text.split('keylined: final counters\n', 1)
    if len(m) < 2:
        return None
    c = {}
    for line in m[1].splitlines():
        mm = re.match(r'^\s+(\S+)\s+(\d+)$', line)
        if mm:
            c[mm.group(1)] = int(mm.group(2))
    return c


def check_pairs(ck, what, kind, rc, err, s, n):
    """A keyline-burst --kind dh / prose run (exit status rc, stderr err, summary s) in which
    every one of n pairs must agree: both UEs' keys equal and the one keyline-burst derives from
    the population. Returns the summary's pairs object."""
    fs = s.get('failures') or {}
    fl = [(f.get('reason'), f.get('err'), f.get('detail'), f.get('side'))
          for f in (fs.get('list') or [])[:10]]
    ck.eq(rc, 0, f'{what}: keyline-burst exits 0 ({err[-400:]}; failures '
                 f'{fs.get("by_reason")} {fl})')
    ck.eq(s.get('kind'), kind, f'{what}: summary kind')
    pr = s.get('pairs') or {}
    ck.eq((pr.get('pairs'), pr.get('ok'), pr.get('failed')), (n, n, 0),
          f'{what}: {n} pairs, every one with both keys equal')
    ck.eq(s.get('ok'), 2 * n, f'{what}: both UEs of every pair verified')
    ck.eq((pr.get('time_to_key_us') or {}).get('n'), n, f'{what}: a time to key per pair')
    return pr


class Checks:
    """Counts checks; every failure is printed; exit status at the end."""

    def __init__(self, name):
        self.name = name
        self.ok = 0
        self.bad = 0
        self.rundirs = rundirs()

    def check(self, cond, what):
        if cond:
            self.ok += 1
        else:
            self.bad += 1
            print(f'FAIL: {what}', flush=True)
        return cond

    def eq(self, got, want, what):
        return self.check(got == want, f'{what}: got {got!r}, want {want!r}')

    def done(self):
        # EAL runtime directories of this test's prefixes (their first number is its pid, as
        # unique() makes them) must be gone; any left is a failure, and is removed so that none
        # piles up
        pid = str(os.getpid())
        left = sorted(d for d in rundirs() - self.rundirs
                      if (re.search(r'\d+', d) or [None])[0] == pid)
        self.eq(left, [], f'EAL runtime directories left in {rundir_parent()}')
        for d in left:
            remove_rundir(d)
        print(f'{self.name}: {self.ok} checks passed, {self.bad} failed', flush=True)
        return 1 if self.bad else 0


def wait_until(cond, timeout, step=0.05):
    """cond() polled every step seconds until it is true or timeout seconds passed; its last
    value."""
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


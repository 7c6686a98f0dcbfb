# SPDX-License-Identifier: BSD-3-Clause
"""Shared pieces of keyline's Diameter/TLS tests: sanitizer settings for freeDiameter, the
TS 35.208 Milenage test sets, keyline-kdf helpers, free ports, and test certificates made with
the openssl CLI at test time (a CA, a second CA nobody trusts ('rogue-ca'), P-256 leaf
certificates whose subject alternative name is the Diameter identity they are for)."""
import os
import socket
import subprocess

# Sanitizer builds: freeDiameter's own leaks (lsan.supp here says which) are not ours. The
# suppressions name its functions, so allocation stacks are unwound fully (libfdcore and GnuTLS
# have no frame pointers for the fast unwinder). Imported before any child process starts.
_supp = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lsan.supp')
os.environ['LSAN_OPTIONS'] = ':'.join(x for x in (os.environ.get('LSAN_OPTIONS'),
                                                  'suppressions=' + _supp,
                                                  'print_suppressions=0') if x)
os.environ['ASAN_OPTIONS'] = ':'.join(x for x in (os.environ.get('ASAN_OPTIONS'),
                                                  'fast_unwind_on_malloc=0') if x)


def client_env():
    """The environment for the clients (keyline-burst, keyline-device): no freeDiameter in them,
    so no full unwinding of every allocation. Under the sanitizers that unwinding made every
    malloc of OpenSSL's PEM decoders and handshakes walk the whole stack with libgcc: 32 devices'
    keep-alive handshakes then outlasted the burst's 10 s request timeout on a loaded machine."""
    env = dict(os.environ)
    opts = [x for x in env.get('ASAN_OPTIONS', '').split(':')
            if x and x != 'fast_unwind_on_malloc=0']
    env['ASAN_OPTIONS'] = ':'.join(opts)
    return env

# TS 35.208 test sets 1 and 2 (Milenage): K, RAND, SQN, AMF, OP, OPc
SET1 = dict(k='465b5ce8b199b49faa5f0a2ee238a6bc', rand='23553cbe9637a89d218ae64dae47bf35',
            sqn='ff9bb4d0b607', amf='b9b9', opc='cd63cb71954a9f4e48a5994e37a02baf')
SET2 = dict(k='0396eb317b6d1c36f19c1c84cd6ffd16', rand='c00d603103dcee52c4478119494202e8',
            sqn='fd8eef40df7d', amf='af17', op='ff53bade17df5d4e793073ce9d7579fa')


def run(cmd, timeout=60, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if 'Sanitizer' in r.stderr:
        # the checks print only a tail: the whole report goes to the test log
        print('%s: sanitizer report:\n%s' % (os.path.basename(cmd[0]), r.stderr), flush=True)
    return r


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def read_lines(path):
    """Complete lines of a file another process appends to ([] while it does not exist)."""
    try:
        with open(path) as f:
            return [x.rstrip('\n') for x in f if x.endswith('\n')]
    except FileNotFoundError:
        return []


class Kdf:
    """tools/keyline-kdf, the project's key-derivation CLI."""

    def __init__(self, binary):
        self.binary = binary

    def __call__(self, *args):
        r = run([self.binary] + list(args))
        if r.returncode:
            raise RuntimeError('keyline-kdf %s: %s' % (' '.join(args), r.stderr))
        return r.stdout.strip()

    def kcv(self, hexkey):
        return self('kcv', '--key', hexkey)

    def ckik(self, s):
        """CK, IK of a Milenage test set."""
        av = dict(line.split('=', 1) for line in self('milenage', *av_args(s)).splitlines())
        return av['f3_ck'], av['f4_ik']


def av_args(s):
    a = ['--k', s['k'], '--rand', s['rand'], '--sqn', s['sqn'], '--amf', s['amf']]
    return a + (['--opc', s['opc']] if 'opc' in s else ['--op', s['op']])


class Pki:
    def __init__(self, d, leaves=(), rogue=()):
        """leaves: identities certified by 'ca'; rogue: (file, identity) pairs certified by
        'rogue-ca'."""
        self.d = d
        self.ca('ca')
        self.ca('rogue-ca')
        for name in leaves:
            self.leaf(name, name, 'ca')
        for file, cn in rogue:
            self.leaf(file, cn, 'rogue-ca')

    def p(self, name):
        return os.path.join(self.d, name)

    def _ssl(self, *args):
        r = subprocess.run(['openssl'] + list(args), capture_output=True, text=True, timeout=60)
        if r.returncode:
            raise RuntimeError('openssl %s: %s' % (args[0], r.stderr))

    def ca(self, name):
        self._ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                  '-nodes', '-keyout', self.p(name + '.key'), '-out', self.p(name + '.pem'),
                  '-days', '2', '-subj', '/CN=keyline test ' + name)

    def leaf(self, file, cn, ca):
        ext = self.p(file + '.ext')
        with open(ext, 'w') as f:
            f.write('subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\n'
                    'keyUsage=digitalSignature,keyEncipherment\n'
                    'extendedKeyUsage=serverAuth,clientAuth\n' % cn)
        self._ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                  '-keyout', self.p(file + '.key'), '-out', self.p(file + '.csr'),
                  '-subj', '/CN=' + cn)
        self._ssl('x509', '-req', '-in', self.p(file + '.csr'), '-CA', self.p(ca + '.pem'),
                  '-CAkey', self.p(ca + '.key'), '-CAcreateserial', '-out', self.p(file + '.pem'),
                  '-days', '2', '-extfile', ext)

    def cred(self, name):
        return self.p(name + '.pem'), self.p(name + '.key')

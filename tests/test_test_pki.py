#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""tools/make-test-pki.sh (the NAF Key Center's test PKI) into a temporary directory, checked with
openssl verify / x509 / s_server / s_client and Python's cryptography, never by file existence
alone: pki.json names every file and nothing else; each certificate's CN, serial and validity are
the index's, its key is P-256 and matches it, keys 0600 and the rest 0644; CA and leaf extensions
(basicConstraints, keyUsage, EKU, the server's SANs); each device verifies against the device CA
and against no other root, the operator against the operator CA only, the server against the
server CA only, the other CA's device against neither device nor operator CA; the expired device
fails for its time alone (it verifies at a time inside its validity), the revoked one only with
-crl_check, and the CRL is the device CA's, signed by it, listing that serial alone; a real mutual
TLS handshake on loopback (s_server -Verify 1 -CAfile device-ca) with a device certificate
succeeds over TLS 1.3 and 1.2 (IPv4, and ::1 where there is IPv6), and fails without a
certificate, with the other CA's device, the operator's or the expired one; bad arguments and a
non-empty OUTDIR exit 2 and change nothing; --force replaces an old PKI.

usage: test_test_pki.py MAKE_TEST_PKI_SH
"""
import datetime
import ipaddress
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

SCRIPT = os.path.abspath(sys.argv[1])
ck = kl_itest.Checks('test-pki')
tmp = tempfile.mkdtemp(prefix='kl-test-pki-')
DEVICES, DAYS = 3, 5
CAS = ('device-ca', 'operator-ca', 'server-ca', 'other-ca')
procs = []


def make(*args, timeout=120):
    return subprocess.run([SCRIPT] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout)


def utc(s):
    return datetime.datetime.strptime(s, '%Y-%m-%dT%H:%M:%SZ').replace(
        tzinfo=datetime.timezone.utc)


def verify(d, ca, cert, *extra):
    """openssl verify: (ok, error number or None, output)."""
    r = subprocess.run(['openssl', 'verify', '-CAfile', os.path.join(d, ca + '.pem')]
                       + list(extra) + [os.path.join(d, cert)],
                       capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    err = None
    for line in out.splitlines():
        if line.startswith('error ') and ' at ' in line:
            err = int(line.split()[1])
            break
    return r.returncode == 0 and err is None and out.strip().endswith(': OK'), err, out


def load_cert(path):
    with open(path, 'rb') as f:
        return x509.load_pem_x509_certificate(f.read())


def when(obj, name):
    """A certificate's or CRL's time as an aware UTC datetime: cryptography >= 42 has *_utc, the
    Debian 12 one (38) only the naive UTC attribute."""
    t = getattr(obj, name + '_utc', None)
    return t if t is not None else getattr(obj, name).replace(tzinfo=datetime.timezone.utc)


def signed_by(c, issuer):
    """True when issuer's key signed c (cryptography 38 has no verify_directly_issued_by)."""
    try:
        issuer.public_key().verify(c.signature, c.tbs_certificate_bytes,
                                   ec.ECDSA(c.signature_hash_algorithm))
        return True
    except Exception as ex:  # noqa: BLE001
        return repr(ex)


def ext(cert, cls):
    try:
        return cert.extensions.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        return None


def mode(path):
    return os.stat(path).st_mode & 0o777


def free_port(family):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind(('::1' if family == socket.AF_INET6 else '127.0.0.1', 0))
        return s.getsockname()[1]


def have_ipv6():
    try:
        free_port(socket.AF_INET6)
        return True
    except OSError:
        return False


# ---- the PKI and its index ----------------------------------------------------------------------

def check_index(d):
    with open(os.path.join(d, 'pki.json')) as f:
        pki = json.load(f)
    entries = pki['entries']
    roles = [e['role'] for e in entries]
    for r in CAS + ('server', 'operator', 'other-ca-device', 'expired-device', 'revoked-device',
                    'crl'):
        ck.eq(roles.count(r), 1, f'pki.json: one {r}')
    ck.eq(roles.count('device'), DEVICES, 'pki.json: --devices device entries')
    listed = {'pki.json'}
    for e in entries:
        for k in ('cert', 'key', 'crl'):
            if k in e:
                listed.add(e[k])
    ck.eq(sorted(os.listdir(d)), sorted(listed), 'OUTDIR holds exactly the files pki.json names')
    return pki, {e['role']: e for e in entries if e['role'] != 'device'}, \
        [e for e in entries if e['role'] == 'device']


def check_certs(d, pki, devices):
    now = datetime.datetime.now(datetime.timezone.utc)
    certs = {}
    serials = []
    for e in pki['entries']:
        if 'cert' not in e:
            continue
        what = f"{e['role']} {e['cert']}"
        cpath, kpath = os.path.join(d, e['cert']), os.path.join(d, e['key'])
        ck.eq(mode(cpath), 0o644, f'{what}: certificate mode')
        ck.eq(mode(kpath), 0o600, f'{what}: key mode')
        c = load_cert(cpath)
        certs[e['cert']] = c
        serials.append(c.serial_number)
        cns = [a.value for a in c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        ck.eq(cns, [e['cn']], f'{what}: CN is the index\'s')
        ck.eq(c.serial_number, int(e['serial'], 16), f'{what}: serial is the index\'s')
        ck.eq(when(c, 'not_valid_after'), utc(e['not_after']), f'{what}: notAfter is the index\'s')
        ck.eq(when(c, 'not_valid_before'), utc(e['not_before']),
              f'{what}: notBefore is the index\'s')
        pub = c.public_key()
        ck.check(isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == 'secp256r1',
                 f'{what}: public key is EC P-256 ({pub!r})')
        ck.eq(c.signature_algorithm_oid, SignatureAlgorithmOID.ECDSA_WITH_SHA256,
              f'{what}: signed with ecdsa-with-SHA256')
        with open(kpath, 'rb') as f:
            key = serialization.load_pem_private_key(f.read(), None)
        ck.check(isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == 'secp256r1',
                 f'{what}: private key is EC P-256')
        ck.eq(key.public_key().public_numbers(), pub.public_numbers(),
              f'{what}: the key is the certificate\'s')
        issuer = certs.get(e['issuer'] + '.pem') or load_cert(os.path.join(d, e['issuer'] + '.pem'))
        ck.eq(c.issuer, issuer.subject, f'{what}: issuer is {e["issuer"]}')
        ck.eq(signed_by(c, issuer), True, f'{what}: signed by {e["issuer"]}\'s key')
        bc = ext(c, x509.BasicConstraints)
        ku = ext(c, x509.KeyUsage)
        eku = ext(c, x509.ExtendedKeyUsage)
        ck.check(bc is not None and bc.critical, f'{what}: basicConstraints present, critical')
        ck.check(ku is not None and ku.critical, f'{what}: keyUsage present, critical')
        if e['role'] in CAS:
            ck.eq(e['issuer'], e['role'], f'{what}: a self-signed root')
            ck.check(bc is not None and bc.value.ca, f'{what}: CA:TRUE')
            ck.check(ku is not None and ku.value.key_cert_sign and ku.value.crl_sign,
                     f'{what}: keyCertSign, cRLSign')
            ck.check(when(c, 'not_valid_before') < now - datetime.timedelta(days=2),
                     f'{what}: valid from days ago')
            ck.check(when(c, 'not_valid_after') > now + datetime.timedelta(days=DAYS),
                     f'{what}: outlives its leaves')
            continue
        ck.check(bc is not None and not bc.value.ca, f'{what}: CA:FALSE')
        ck.check(ku is not None and ku.value.digital_signature and not ku.value.key_cert_sign,
                 f'{what}: keyUsage digitalSignature only')
        want = [ExtendedKeyUsageOID.SERVER_AUTH] if e['role'] == 'server' \
            else [ExtendedKeyUsageOID.CLIENT_AUTH]
        ck.eq(list(eku.value) if eku else None, want, f'{what}: extendedKeyUsage')
        if e['role'] == 'expired-device':
            ck.check(when(c, 'not_valid_after') < now, f'{what}: notAfter in the past')
            ck.check(when(c, 'not_valid_before') < when(c, 'not_valid_after'),
                     f'{what}: a real window')
        else:
            left = when(c, 'not_valid_after') - now
            ck.check(datetime.timedelta(days=DAYS, minutes=-10) < left
                     <= datetime.timedelta(days=DAYS), f'{what}: valid for --days {DAYS} ({left})')
            ck.check(when(c, 'not_valid_before') <= now, f'{what}: valid already')
    ck.eq(len(set(serials)), len(serials), 'every certificate has its own serial')
    ck.eq([e['cn'] for e in devices], ['device-%04d.test' % i for i in range(1, DEVICES + 1)],
          'device CNs are the Device_IDs device-0001.test ..')
    return certs


def check_server(d, one):
    c = load_cert(os.path.join(d, one['server']['cert']))
    san = ext(c, x509.SubjectAlternativeName)
    ck.check(san is not None, 'server: has subjectAltName')
    if san:
        ck.eq(sorted(san.value.get_values_for_type(x509.DNSName)), ['localhost'], 'server: SAN DNS')
        ck.eq(sorted(str(a) for a in san.value.get_values_for_type(x509.IPAddress)),
              sorted(str(ipaddress.ip_address(a)) for a in ('127.0.0.1', '::1')), 'server: SAN IPs')
    ck.eq(one['server']['cn'], 'localhost', 'server: CN localhost')
    for name, opt in (('localhost', '-verify_hostname'), ('127.0.0.1', '-verify_ip'),
                      ('::1', '-verify_ip')):
        ok, _, out = verify(d, 'server-ca', 'server.pem', '-purpose', 'sslserver', opt, name)
        ck.check(ok, f'server: verifies as an SSL server for {name}: {out}')
    ok, err, _ = verify(d, 'server-ca', 'server.pem', '-verify_hostname', 'example.test')
    ck.eq((ok, err), (False, 62), 'server: not for another hostname (error 62)')


def check_verify(d, one, devices):
    crl = ['-crl_check', '-CRLfile', os.path.join(d, one['crl']['crl'])]
    for e in devices + [one['revoked-device']]:
        f = e['cert']
        ok, _, out = verify(d, 'device-ca', f, '-purpose', 'sslclient')
        ck.check(ok, f'{f}: verifies against the device CA as an SSL client: {out}')
        for ca in ('operator-ca', 'server-ca', 'other-ca'):
            ok, err, _ = verify(d, ca, f)
            ck.eq((ok, err), (False, 20), f'{f}: not against {ca} (error 20, no issuer)')
        ok, err, _ = verify(d, 'device-ca', f, '-purpose', 'sslserver')
        ck.eq((ok, err), (False, 26), f'{f}: not an SSL server (error 26, unsuitable purpose)')
    for e in devices:
        ok, _, out = verify(d, 'device-ca', e['cert'], *crl)
        ck.check(ok, f'{e["cert"]}: passes -crl_check: {out}')
    ok, err, _ = verify(d, 'device-ca', 'revoked-device.pem', *crl)
    ck.eq((ok, err), (False, 23), 'revoked device: -crl_check fails, certificate revoked (23)')

    ok, _, out = verify(d, 'operator-ca', 'operator.pem', '-purpose', 'sslclient')
    ck.check(ok, f'operator: verifies against the operator CA: {out}')
    for ca in ('device-ca', 'server-ca', 'other-ca'):
        ck.eq(verify(d, ca, 'operator.pem')[:2], (False, 20), f'operator: not against {ca}')
    for ca in ('device-ca', 'operator-ca', 'other-ca'):
        ck.eq(verify(d, ca, 'server.pem')[:2], (False, 20), f'server: not against {ca}')

    ck.eq(one['other-ca-device']['cn'], 'device-0001.test', 'other CA device: claims a real ID')
    for ca in ('device-ca', 'operator-ca'):
        ck.eq(verify(d, ca, 'other-device.pem')[:2], (False, 20),
              f'other CA device: not against {ca} (error 20)')
    ok, _, out = verify(d, 'other-ca', 'other-device.pem', '-purpose', 'sslclient')
    ck.check(ok, f'other CA device: a sound certificate of the other CA: {out}')

    ok, err, _ = verify(d, 'device-ca', 'expired-device.pem')
    ck.eq((ok, err), (False, 10), 'expired device: fails with certificate has expired (10)')
    e = one['expired-device']
    inside = (utc(e['not_before']) + (utc(e['not_after']) - utc(e['not_before'])) / 2).timestamp()
    ok, _, out = verify(d, 'device-ca', 'expired-device.pem', '-attime', str(int(inside)))
    ck.check(ok, f'expired device: verifies inside its validity (time is its only fault): {out}')


def check_crl(d, one, certs):
    e = one['crl']
    path = os.path.join(d, e['crl'])
    ck.eq(mode(path), 0o644, 'CRL mode')
    with open(path, 'rb') as f:
        crl = x509.load_pem_x509_crl(f.read())
    ca = certs['device-ca.pem']
    ck.eq(crl.issuer, ca.subject, 'CRL: issued by the device CA')
    ck.check(crl.is_signature_valid(ca.public_key()), 'CRL: signed by the device CA\'s key')
    revoked = [r.serial_number for r in crl]
    want = certs['revoked-device.pem'].serial_number
    ck.eq(revoked, [want], 'CRL: lists the revoked device alone')
    ck.eq([int(s, 16) for s in e['revoked']], [want], 'pki.json: the CRL\'s revoked serial')
    ck.eq(when(crl, 'next_update'), utc(e['next_update']), 'CRL: nextUpdate is the index\'s')
    left = when(crl, 'next_update') - datetime.datetime.now(datetime.timezone.utc)
    ck.check(datetime.timedelta(days=DAYS - 1) < left <= datetime.timedelta(days=DAYS),
             f'CRL: next update in --days ({left})')


# ---- a real handshake -------------------------------------------------------------------------

class Server:
    """openssl s_server -Verify 1 -CAfile device-ca -rev: answers a line reversed once the
    client's certificate is accepted."""

    def __init__(self, d, family, tls):
        self.host = '::1' if family == socket.AF_INET6 else '127.0.0.1'
        for attempt in range(5):
            self.port = free_port(family)
            self.log = open(os.path.join(tmp, f's_server-{self.port}.log'), 'w+')
            self.p = subprocess.Popen(
                ['openssl', 's_server', '-6' if family == socket.AF_INET6 else '-4',
                 '-accept', str(self.port), '-cert', os.path.join(d, 'server.pem'),
                 '-key', os.path.join(d, 'server.key'), '-Verify', '1',
                 '-CAfile', os.path.join(d, 'device-ca.pem'), '-verify_return_error',
                 '-rev', tls], stdin=subprocess.DEVNULL, stdout=self.log,
                stderr=subprocess.STDOUT)
            procs.append(self.p)
            if self._ready():
                return
            self.stop()
        raise RuntimeError('s_server did not start: ' + self.output())

    def _ready(self):
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if self.p.poll() is not None:
                return False
            if 'ACCEPT' in self.output():
                return True
            time.sleep(0.02)
        return False

    def output(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self.log.close()


def client(d, srv, tls, name=None):
    """openssl s_client against srv, optionally with name's certificate; the server's chain and
    address checked against the server CA. (ok, output): ok when the reversed line came back."""
    args = ['openssl', 's_client', '-connect', f'[{srv.host}]:{srv.port}', tls,
            '-CAfile', os.path.join(d, 'server-ca.pem'), '-verify_return_error',
            '-verify_ip', srv.host, '-ign_eof']
    if name:
        args += ['-cert', os.path.join(d, name + '.pem'), '-key', os.path.join(d, name + '.key')]
    try:
        r = subprocess.run(args, input='keyline-mtls\nCLOSE\n', capture_output=True, text=True,
                           timeout=20)
    except subprocess.TimeoutExpired as ex:
        return False, f'timeout: {ex}'
    return 'sltm-enilyek' in r.stdout, r.stdout[-1500:] + r.stderr[-1500:]


def check_tls(d):
    families = [socket.AF_INET] + ([socket.AF_INET6] if have_ipv6() else [])
    if len(families) == 1:
        print('test-pki: no IPv6 loopback, ::1 handshake skipped', flush=True)
    for family in families:
        for tls in ('-tls1_3', '-tls1_2'):
            srv = Server(d, family, tls)
            try:
                where = f'{srv.host} {tls}'
                ok, out = client(d, srv, tls, 'device-0001')
                ck.check(ok, f'mTLS {where}: device-0001 gets its answer: {out}')
                ck.check('device-0001.test' in srv.output(),
                         f'mTLS {where}: the server saw CN device-0001.test')
                if family != socket.AF_INET or tls != '-tls1_3':
                    continue
                for name in (None, 'other-device', 'operator', 'expired-device'):
                    ok, out = client(d, srv, tls, name)
                    ck.check(not ok, f'mTLS {where}: {name or "no certificate"} refused: {out}')
                ok, out = client(d, srv, tls, f'device-{DEVICES:04d}')
                ck.check(ok, f'mTLS {where}: the server still serves after refusals: {out}')
                log = srv.output()
                for reason in ('unable to get local issuer certificate',
                               'certificate has expired'):
                    ck.check(reason in log, f'mTLS {where}: the server said {reason!r}')
            finally:
                srv.stop()


# ---- arguments ----------------------------------------------------------------------------------

def check_args():
    d = os.path.join(tmp, 'args')
    for args in ([], ['--devices', '2'], [d, '--devices'], [d, '--devices', '0'],
                 [d, '--devices', 'x'], [d, '--devices', '10000'], [d, '--devices', '9' * 20],
                 [d, '--days', '-1'], [d, '--days', '0'], [d, '--days', '1.5'], [d, '--frobnicate'],
                 [d, d + '2'], [os.path.abspath(__file__)]):
        r = make(*args)
        ck.eq(r.returncode, 2, f'make-test-pki.sh {args}: exit 2 ({r.stderr.strip()})')
        first = r.stderr.splitlines()[0] if r.stderr else ''
        ck.check(first.startswith(os.path.basename(SCRIPT) + ': ') and 'usage:' in r.stderr,
                 f'make-test-pki.sh {args}: a reason and the usage on stderr ({r.stderr!r})')
        ck.eq(r.stdout, '', f'make-test-pki.sh {args}: nothing on stdout')
        ck.check(not os.path.exists(d) and not os.path.exists(d + '2'),
                 f'make-test-pki.sh {args}: no OUTDIR made')
    r = make('--help')
    ck.check(r.returncode == 0 and r.stdout.startswith('usage:'), '--help: usage, exit 0')


def snapshot(d):
    out = {}
    for n in sorted(os.listdir(d)):
        with open(os.path.join(d, n), 'rb') as f:
            out[n] = f.read()
    return out


def check_force(d):
    before = snapshot(d)
    r = make(d, '--devices', 1)
    ck.eq(r.returncode, 2, f'a non-empty OUTDIR is refused with exit 2 ({r.stderr.strip()})')
    ck.check('--force' in r.stderr, 'the refusal names --force')
    ck.check(snapshot(d) == before, 'a refused run changed nothing in OUTDIR')
    mine = os.path.join(d, 'notes.txt')
    with open(mine, 'w') as f:
        f.write('not the PKI\n')
    r = make(d, '--devices', 1, '--days', 2, '--force')
    ck.eq(r.returncode, 0, f'--force: exit 0 ({r.stderr.strip()})')
    with open(os.path.join(d, 'pki.json')) as f:
        pki = json.load(f)
    ck.eq(sum(1 for e in pki['entries'] if e['role'] == 'device'), 1, '--force: one device now')
    ck.check(not os.path.exists(os.path.join(d, 'device-0002.pem')),
             '--force: the old PKI\'s extra devices are gone')
    ck.check(os.path.exists(mine), '--force: a file the PKI did not make is left alone')
    old = x509.load_pem_x509_certificate(before['device-ca.pem'])
    new = load_cert(os.path.join(d, 'device-ca.pem'))
    ck.check(old.public_key().public_numbers() != new.public_key().public_numbers(),
             '--force: a new device CA')
    ok, _, out = verify(d, 'device-ca', 'device-0001.pem')
    ck.check(ok, f'--force: the new device verifies against the new CA: {out}')
    ck.eq(sorted(n for n in os.listdir(d) if n.startswith('.')), [],
          'no staging directory left behind')


try:
    d = os.path.join(tmp, 'pki')
    t0 = time.monotonic()
    r = make(d, '--devices', DEVICES, '--days', DAYS)
    ck.eq(r.returncode, 0, f'make-test-pki.sh: exit 0 ({r.stderr.strip()})')
    print(f'test-pki: made in {time.monotonic() - t0:.2f} s', flush=True)
    if r.returncode == 0:
        pki, one, devices = check_index(d)
        ck.eq((pki['devices'], pki['days']), (DEVICES, DAYS), 'pki.json: devices and days')
        certs = check_certs(d, pki, devices)
        check_server(d, one)
        check_verify(d, one, devices)
        check_crl(d, one, certs)
        check_tls(d)
        check_force(d)
    check_args()
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    subprocess.run(['rm', '-rf', tmp])
sys.exit(ck.done())

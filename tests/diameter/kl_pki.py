# SPDX-License-Identifier: BSD-3-Clause
"""Test certificates for keyline's Diameter/TLS tests, made with the openssl CLI at test time:
a CA, a second CA nobody trusts ('rogue-ca'), and P-256 leaf certificates whose subject
alternative name is the Diameter identity they are for."""
import os
import subprocess


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

# SPDX-License-Identifier: BSD-3-Clause
"""A scripted HTTPS peer for the NAF Key Center's clients (keyline-device, keyline-burst --kind
naf) in tests that must not need keylined: mutual TLS with Python's ssl (client certificate
required, chained to the given CAs), the API of PROTOCOL.md section 11, keys derived with
naf_reference (Python, independent of the C code) from a UE file, and answers the real Key
Center cannot be made to give on demand (every error status, malformed 200 answers, a key for
another B-TID, a wrong key). It records what the clients sent. End-to-end tests use keylined."""
import base64
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import naf_reference as ref

# B-TIDs that script an answer instead of a key
SCRIPTED = {
    'st-400@bsf.test': (400, {'error': 'bad_request', 'detail': 'malformed body'}),
    'st-403@bsf.test': (403, {'error': 'forbidden', 'detail': 'device not authorised'}),
    'st-404@bsf.test': (404, {'error': 'not_found', 'detail': 'B-TID unknown to the BSF'}),
    'st-429@bsf.test': (429, {'error': 'rate_limited', 'detail': 'slow down'}),
    'st-503@bsf.test': (503, {'error': 'bsf_unreachable', 'detail': 'no BSF'}),
    'st-418@bsf.test': (418, {'error': 'teapot', 'detail': 'other status'}),
    'st-500-nojson@bsf.test': (500, None),
}


class Peer:
    def __init__(self, pki, ue_entries, naf_id, tls_max=None, wrong_key_for=()):
        self.ues = {u['b_tid']: u for u in ue_entries}
        self.naf_id = naf_id
        self.wrong_key_for = set(wrong_key_for)
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if tls_max is not None:
            ctx.set_ciphers('DEFAULT:@SECLEVEL=0')
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = tls_max
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(f'{pki}/server.pem', f'{pki}/server.key')
        ctx.load_verify_locations(f'{pki}/device-ca.pem')
        ctx.load_verify_locations(f'{pki}/operator-ca.pem')
        ctx.verify_mode = ssl.CERT_REQUIRED
        peer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def setup(self):
                super().setup()
                with peer.lock:
                    peer.connections += 1

            def log_message(self, *a):
                pass

            def cn(self):
                for rdn in self.connection.getpeercert().get('subject', ()):
                    for k, v in rdn:
                        if k == 'commonName':
                            return v
                return None

            def answer(self, status, obj=None, raw=None):
                body = raw if raw is not None else (json.dumps(obj).encode() if obj is not None
                                                    else b'oops')
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Cache-Control', 'no-store')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_DELETE(self):
                with peer.lock:
                    peer.requests.append({'method': 'DELETE', 'path': self.path, 'cn': self.cn(),
                                          'tls': self.connection.version()})
                if self.cn() != 'operator.test':
                    return self.answer(403, {'error': 'forbidden', 'detail': 'not an operator'})
                self.answer(200, {'invalidated': True})

            def do_POST(self):
                n = int(self.headers.get('Content-Length', '0'))
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                cn = self.cn()
                with peer.lock:
                    peer.requests.append({'method': 'POST', 'path': self.path, 'cn': cn,
                                          'body': body, 'tls': self.connection.version(),
                                          'ctype': self.headers.get('Content-Type')})
                if self.path != '/v1/ks-local-mt' or not isinstance(body, dict):
                    return self.answer(400, {'error': 'bad_request', 'detail': 'path or body'})
                btid, dev = body.get('b_tid'), body.get('device_id')
                if dev != cn:
                    return self.answer(403, {'error': 'forbidden',
                                             'detail': 'Device_ID differs from the certificate'})
                if btid in SCRIPTED:
                    st, obj = SCRIPTED[btid]
                    return self.answer(st, obj)
                naf = bytes.fromhex(body['naf_id']) if 'naf_id' in body else peer.naf_id
                ans = {'b_tid': btid, 'naf_id': naf.hex(), 'device_id': dev,
                       'expires': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time() + 3600)),
                       'lifetime_s': 3600}
                if btid == 'huge@bsf.test':
                    return self.answer(200, raw=b'{"pad": "' + b'x' * 100000 + b'"}')
                if btid == 'bad-json@bsf.test':
                    return self.answer(200, raw=b'{"b_tid": ')
                if btid == 'short-key@bsf.test':
                    ans['ks_local_mt'] = base64.b64encode(bytes(16)).decode()
                    return self.answer(200, ans)
                if btid == 'other-btid@bsf.test':
                    ans['b_tid'] = 'someone-else@bsf.test'
                    ans['ks_local_mt'] = base64.b64encode(bytes(32)).decode()
                    return self.answer(200, ans)
                ue = peer.ues.get(btid)
                if ue is None:
                    return self.answer(404, {'error': 'not_found', 'detail': 'unknown B-TID'})
                key = ref.mt_key(ue, naf, dev)
                if dev in peer.wrong_key_for:
                    key = bytes([key[0] ^ 1]) + key[1:]
                ans['ks_local_mt'] = base64.b64encode(key).decode()
                self.answer(200, ans)

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), H)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f'https://localhost:{self.port}'
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

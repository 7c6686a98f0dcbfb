# SPDX-License-Identifier: BSD-3-Clause
"""A raw Diameter (RFC 6733) client over TLS for tests: its own codec, independent of
freeDiameter and of kl_diameter's dictionary, so it can send what a correct stack never would
(missing, unknown, repeated or mis-sized AVPs, bad headers, garbage) and read the answers."""
import socket
import ssl
import struct

# base AVP codes (RFC 6733)
HOST_IP_ADDRESS = 257
AUTH_APPLICATION_ID = 258
VENDOR_SPECIFIC_APPLICATION_ID = 260
SESSION_ID = 263
ORIGIN_HOST = 264
VENDOR_ID = 266
RESULT_CODE = 268
PRODUCT_NAME = 269
AUTH_SESSION_STATE = 277
FAILED_AVP = 279
ERROR_MESSAGE = 281
DESTINATION_REALM = 283
DESTINATION_HOST = 293
ORIGIN_REALM = 296

CMD_CER = 257
CMD_DWR = 280
CMD_DPR = 282
CMD_PUSH = 8388900
CMD_REMOVE = 8388901

# keyline's AVPs (kl_diameter.h)
KL_ENTRY_TYPE = 1001
KL_USER_IDENTITY = 1002
KL_IMSI = 1003
KL_KEY = 1004
KL_KEY_ID = 1005
KL_EXPIRY = 1006
KL_APP_IDENTITY = 1007
KL_EMSE_ID = 1008
KL_MBMS_KEY_GROUP = 1009
KL_KEY_DOMAIN_ID = 1010
KL_KEY_GROUP_ID = 1011
KL_PEER_IDENTITY = 1012
KL_SERVICES = 1013

T_MUK, T_E2M, T_APPID, T_EMSE, T_UE_GROUPS, T_PAIR = 1, 2, 3, 4, 5, 6

FLAG_R = 0x80
FLAG_P = 0x40
FLAG_E = 0x20


def u32(v):
    return struct.pack('!I', v)


def avp(code, data, vendor=None, mandatory=True, length=None):
    """One AVP; length overrides the header's length field (to lie about it)."""
    if isinstance(data, str):
        data = data.encode()
    flags = (0x80 if vendor is not None else 0) | (0x40 if mandatory else 0)
    hlen = 12 if vendor is not None else 8
    n = hlen + len(data) if length is None else length
    h = struct.pack('!I', code) + bytes([flags]) + n.to_bytes(3, 'big')
    if vendor is not None:
        h += u32(vendor)
    return h + data + b'\0' * ((4 - len(data) % 4) % 4)


def message(code, app, flags, avps, hbh, e2e, version=1):
    body = b''.join(avps)
    return (bytes([version]) + (20 + len(body)).to_bytes(3, 'big') + bytes([flags]) +
            code.to_bytes(3, 'big') + struct.pack('!III', app, hbh, e2e) + body)


def parse_avps(b):
    out = []
    i = 0
    while i + 8 <= len(b):
        code, = struct.unpack('!I', b[i:i + 4])
        flags = b[i + 4]
        n = int.from_bytes(b[i + 5:i + 8], 'big')
        hlen = 12 if flags & 0x80 else 8
        vendor = struct.unpack('!I', b[i + 8:i + 12])[0] if flags & 0x80 else 0
        if n < hlen or i + n > len(b):
            raise ValueError('bad AVP length')
        out.append((code, flags, vendor, b[i + hlen:i + n]))
        i += (n + 3) & ~3
    return out


class Answer:
    def __init__(self, raw):
        self.raw = raw
        self.version = raw[0]
        self.flags = raw[4]
        self.code = int.from_bytes(raw[5:8], 'big')
        self.app, self.hbh, self.e2e = struct.unpack('!III', raw[8:20])
        self.avps = parse_avps(raw[20:])

    def get(self, code, vendor=0):
        for c, _, v, d in self.avps:
            if c == code and v == vendor:
                return d
        return None

    @property
    def result(self):
        d = self.get(RESULT_CODE)
        return struct.unpack('!I', d)[0] if d else None

    def failed(self):
        """AVPs inside Failed-AVP: [(code, flags, vendor, data)]."""
        d = self.get(FAILED_AVP)
        return parse_avps(d) if d is not None else []


class RawClient:
    """TLS connection to a Diameter server; CER/CEA on connect; DWR answered while waiting."""

    def __init__(self, port, ca, cert, key, origin, realm='test', server_name='keylined.test',
                 vendor=99999, app=16777999, timeout=5.0):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca)
        ctx.load_cert_chain(cert, key)
        s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
        self.s = ctx.wrap_socket(s, server_hostname=server_name)
        self.origin, self.realm, self.vendor, self.app = origin, realm, vendor, app
        self.next_id = 1
        self.sid = 0
        self.cea = self.exchange(CMD_CER, 0, FLAG_R, [
            avp(ORIGIN_HOST, origin), avp(ORIGIN_REALM, realm),
            avp(HOST_IP_ADDRESS, b'\x00\x01' + socket.inet_aton('127.0.0.1')),
            avp(VENDOR_ID, u32(0)), avp(PRODUCT_NAME, 'kl-raw', mandatory=False),
            avp(VENDOR_SPECIFIC_APPLICATION_ID,
                avp(VENDOR_ID, u32(vendor)) + avp(AUTH_APPLICATION_ID, u32(app)))])

    def send_raw(self, b):
        self.s.sendall(b)

    def read(self):
        hdr = self._exact(4)
        n = int.from_bytes(hdr[1:4], 'big')
        if n < 20:
            raise ValueError('bad message length %d' % n)
        return Answer(hdr + self._exact(n - 4))

    def _exact(self, n):
        b = b''
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise ConnectionError('connection closed by the server')
            b += c
        return b

    def exchange(self, code, app, flags, avps, version=1):
        hbh = self.next_id
        self.next_id += 1
        self.send_raw(message(code, app, flags, avps, hbh, hbh, version))
        return self.wait(hbh)

    def wait(self, hbh):
        while True:
            a = self.read()
            if a.flags & FLAG_R and a.code == CMD_DWR:
                self.send_raw(message(CMD_DWR, 0, 0, [
                    avp(RESULT_CODE, u32(2001)), avp(ORIGIN_HOST, self.origin),
                    avp(ORIGIN_REALM, self.realm)], a.hbh, a.e2e))
                continue
            if a.hbh == hbh:
                return a

    def base_avps(self, session=True, vsai=True, dest_realm=True):
        self.sid += 1
        out = []
        if session:
            out.append(avp(SESSION_ID, '%s;1;%d' % (self.origin, self.sid)))
        if vsai:
            out.append(avp(VENDOR_SPECIFIC_APPLICATION_ID,
                           avp(VENDOR_ID, u32(self.vendor)) +
                           avp(AUTH_APPLICATION_ID, u32(self.app))))
        out.append(avp(AUTH_SESSION_STATE, u32(1)))
        out += [avp(ORIGIN_HOST, self.origin), avp(ORIGIN_REALM, self.realm)]
        if dest_realm:
            out.append(avp(DESTINATION_REALM, 'test'))
        return out

    def kl(self, code, data, mandatory=True):
        return avp(code, data, vendor=self.vendor, mandatory=mandatory)

    def request(self, avps, cmd=CMD_PUSH, app=None, flags=FLAG_R | FLAG_P, **base):
        return self.exchange(cmd, self.app if app is None else app, flags,
                             self.base_avps(**base) + avps)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

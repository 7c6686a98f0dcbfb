// SPDX-License-Identifier: BSD-3-Clause
//
// keyline crypto micro-benchmarks (Google Benchmark).
//
// A thin C++ shim over the C API of crypto/kl_crypto.h: every byte of cryptography is done by the
// kl_ calls; this file only prepares inputs at set-up and calls the burst API in the timed loop.
// Each primitive runs on both backends (IPsec-MB and OpenSSL) for bursts of 1, 8, 32 and 64, plus
// two per-request composites following PROTOCOL.md sections 2, 3, 5 and 7:
//   mbms_request_crypto  transport keys (MIKEY-1) -> auth_key HMAC state -> verify V (HMAC-SHA-1 over
//                        the 100-byte request body) -> AES-CM of one 25-byte Key data -> response MAC
//   e2m_fetch_crypto     the same, plus e2m_key = KDF(e2m_int_key, 0xFF02, EMSE_Id, "e2m_CIoT")
//                        written into a 41-byte Key data before encryption
//   hm_session_crypto    PROTOCOL.md section 9 kind 2 (a ceiling for later: the crypto of one request
//                        over realistic lengths, not its framing): the request checks above, then
//                        K*a, K*b = KDF(pair key, 0xFF06, IDUEx) with 40-byte identities, two
//                        tokens sealed with AES-256-GCM (80-byte plaintext, 34-byte AAD) into the
//                        answer, K*a's Key data by AES-CM and the response MAC over the 355 bytes
//   dh_public_crypto     PROTOCOL.md section 9 kind 4 with the asked UE local (its P_a is in the table,
//                        copied, no crypto): the request checks above over the 150-byte request
//                        body, then the response MAC over the 99-byte V-terminated answer with
//                        TLV 9 (no KEMAC, no AES-CM)
//   prose_assist_crypto  PROTOCOL.md section 9 kind 5: the request checks over the 173-byte body,
//                        p2 = KDF(KASME, 0xFF04, p1) with a 16-byte p1 (S = 20 bytes), AES-CM of
//                        the 41-byte Key data (the other side's p4, 32 bytes) and the response MAC
//                        over the 131-byte answer (the responder's answer; an initiator's ERR 12/5
//                        costs less: 59 bytes MACed, no AES-CM)
// gcm_seal_227 / gcm_open_227 are one 256-byte token each (227-byte plaintext, 43-byte AAD), every op
// under its own key, as K*x is fresh per request.
// Items are operations (or requests for the composites): items/s = iterations * burst / time.
// The process exits non-zero when any benchmark reported an error, so a smoke run can fail.

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "kl_crypto.h"

namespace {

constexpr int kBursts[] = { 1, 8, 32, 64 };

struct Backend {
	kl_crypto_backend id;
	const char *name;
};
constexpr Backend kBackends[] = {
	{ KL_CRYPTO_IPSECMB, "ipsec-mb" },
	{ KL_CRYPTO_OPENSSL, "openssl" },
};

std::atomic<bool> g_failed{ false };

void drop_log(const char *msg)
{
	(void)msg;
}

void fail(benchmark::State &state, const char *msg)
{
	g_failed.store(true);
	state.SkipWithError(msg);
}

// Deterministic test data (not cryptography: just distinct bytes per slot).
struct Filler {
	uint64_t s;
	explicit Filler(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
	uint8_t next()
	{
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		return static_cast<uint8_t>(s >> 24);
	}
	void fill(uint8_t *p, size_t n)
	{
		for (size_t i = 0; i < n; i++)
			p[i] = next();
	}
};

// One context per benchmark run, destroyed at the end.
class Ctx {
public:
	Ctx(benchmark::State &state, kl_crypto_backend b) : c_(kl_crypto_create(b))
	{
		if (!c_)
			fail(state, "kl_crypto_create failed");
	}
	~Ctx() { kl_crypto_destroy(c_); }
	Ctx(const Ctx &) = delete;
	Ctx &operator=(const Ctx &) = delete;
	kl_crypto *get() const { return c_; }
	explicit operator bool() const { return c_ != nullptr; }

private:
	kl_crypto *c_;
};

void put_be16(uint8_t *p, uint32_t v)
{
	p[0] = static_cast<uint8_t>(v >> 8);
	p[1] = static_cast<uint8_t>(v);
}

void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, v >> 16);
	put_be16(p + 2, v & 0xFFFF);
}

void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, static_cast<uint32_t>(v >> 32));
	put_be32(p + 4, static_cast<uint32_t>(v));
}

void finish(benchmark::State &state, unsigned n)
{
	state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
}

// ---------------------------------------------------------------------------------------------
// Primitives

void bm_hmac(benchmark::State &state, kl_crypto_backend b, kl_hash_alg alg)
{
	const unsigned n = static_cast<unsigned>(state.range(0));
	const size_t klen = alg == KL_HASH_SHA1 ? KL_SHA1_LEN : KL_SHA256_LEN;
	constexpr size_t kMsg = 100;
	Ctx ctx(state, b);
	if (!ctx)
		return;

	std::vector<kl_hmac_key> keys(n);
	std::vector<std::array<uint8_t, kMsg>> msgs(n);
	std::vector<std::array<uint8_t, KL_HMAC_MAX_LEN>> macs(n);
	std::vector<kl_hmac_op> ops(n);
	Filler f(1);
	for (unsigned i = 0; i < n; i++) {
		uint8_t key[KL_SHA256_LEN];
		f.fill(key, klen);
		f.fill(msgs[i].data(), kMsg);
		if (kl_hmac_key_init(alg, key, klen, &keys[i]) != 0) {
			fail(state, "kl_hmac_key_init failed");
			return;
		}
		ops[i].key = &keys[i];
		ops[i].msg = msgs[i].data();
		ops[i].len = kMsg;
		ops[i].mac = macs[i].data();
	}
	for (auto _ : state) {
		if (kl_hmac_burst(ctx.get(), ops.data(), n) != static_cast<int>(n)) {
			fail(state, "kl_hmac_burst failed");
			break;
		}
		benchmark::DoNotOptimize(macs.data());
		benchmark::ClobberMemory();
	}
	finish(state, n);
}

void bm_hmac_key_init(benchmark::State &state, kl_hash_alg alg)
{
	const unsigned n = static_cast<unsigned>(state.range(0));
	const uint16_t klen = alg == KL_HASH_SHA1 ? KL_SHA1_LEN : KL_SHA256_LEN;

	std::vector<std::array<uint8_t, KL_SHA256_LEN>> raw(n);
	std::vector<const uint8_t *> kp(n);
	std::vector<uint16_t> lens(n, klen);
	std::vector<kl_hmac_key> out(n);
	Filler f(2);
	for (unsigned i = 0; i < n; i++) {
		f.fill(raw[i].data(), klen);
		kp[i] = raw[i].data();
	}
	for (auto _ : state) {
		if (kl_hmac_key_init_burst(alg, kp.data(), lens.data(), out.data(), n) !=
		    static_cast<int>(n)) {
			fail(state, "kl_hmac_key_init_burst failed");
			break;
		}
		benchmark::DoNotOptimize(out.data());
		benchmark::ClobberMemory();
	}
	finish(state, n);
}

// EMSE_Id of 26 bytes: S = FC (2) || EMSE_Id (26) || L (2) || "e2m_CIoT" (8) || L (2) = 40 bytes.
constexpr size_t kEmseIdLen = 26;
constexpr uint16_t kFcE2m = 0xFF02;
const uint8_t kE2mLabel[8] = { 'e', '2', 'm', '_', 'C', 'I', 'o', 'T' };

void make_emse_id(uint8_t *p, unsigned slot)
{
	char buf[kEmseIdLen + 1];
	std::snprintf(buf, sizeof(buf), "emse-%05u.e2m.example.net", slot % 100000u);
	std::memcpy(p, buf, kEmseIdLen);
}

void bm_kdf(benchmark::State &state, kl_crypto_backend b)
{
	const unsigned n = static_cast<unsigned>(state.range(0));
	Ctx ctx(state, b);
	if (!ctx)
		return;

	std::vector<kl_hmac_key> keys(n);
	std::vector<std::array<uint8_t, kEmseIdLen>> ids(n);
	std::vector<std::array<kl_kdf_param, 2>> params(n);
	std::vector<std::array<uint8_t, KL_KDF_OUT_LEN>> outs(n);
	std::vector<kl_kdf_op> ops(n);
	Filler f(3);
	for (unsigned i = 0; i < n; i++) {
		uint8_t key[KL_SHA256_LEN];
		f.fill(key, sizeof(key));
		if (kl_hmac_key_init(KL_HASH_SHA256, key, sizeof(key), &keys[i]) != 0) {
			fail(state, "kl_hmac_key_init failed");
			return;
		}
		make_emse_id(ids[i].data(), i);
		params[i][0].data = ids[i].data();
		params[i][0].len = kEmseIdLen;
		params[i][1].data = kE2mLabel;
		params[i][1].len = sizeof(kE2mLabel);
		ops[i].key = &keys[i];
		ops[i].params = params[i].data();
		ops[i].fc = kFcE2m;
		ops[i].nparams = 2;
		ops[i].out = outs[i].data();
	}
	// S is 40 bytes as intended.
	uint8_t s[64];
	if (kl_kdf_s_build(kFcE2m, params[0].data(), 2, s, sizeof(s)) != 40) {
		fail(state, "S is not 40 bytes");
		return;
	}
	for (auto _ : state) {
		if (kl_kdf_burst(ctx.get(), ops.data(), n) != static_cast<int>(n)) {
			fail(state, "kl_kdf_burst failed");
			break;
		}
		benchmark::DoNotOptimize(outs.data());
		benchmark::ClobberMemory();
	}
	finish(state, n);
}

// Per-slot MIKEY transport key material: PSK state, RAND, CSB ID, outputs.
struct TkSlots {
	std::vector<kl_hmac_key> psk;
	std::vector<std::array<uint8_t, 16>> rand;
	std::vector<std::array<uint8_t, KL_MIKEY_AUTH_KEY_LEN>> auth;
	std::vector<std::array<uint8_t, KL_MIKEY_ENCR_KEY_LEN>> encr;
	std::vector<std::array<uint8_t, KL_MIKEY_SALT_KEY_LEN>> salt;
	std::vector<uint32_t> csb;
	std::vector<kl_mikey_tk_op> ops;

	// @return false when a PSK state could not be built.
	bool init(kl_prf prf, unsigned n, uint64_t seed)
	{
		psk.resize(n);
		rand.resize(n);
		auth.resize(n);
		encr.resize(n);
		salt.resize(n);
		csb.resize(n);
		ops.resize(n);
		Filler f(seed);
		for (unsigned i = 0; i < n; i++) {
			uint8_t key[32];
			f.fill(key, sizeof(key));
			if (kl_prf_key_init(prf, key, sizeof(key), &psk[i], 1) != 1)
				return false;
			f.fill(rand[i].data(), 16);
			csb[i] = 0x10000000u + i * 7919u;
			ops[i].chunks = &psk[i];
			ops[i].rand = rand[i].data();
			ops[i].auth_key = auth[i].data();
			ops[i].encr_key = encr[i].data();
			ops[i].salt_key = salt[i].data();
			ops[i].csb_id = csb[i];
			ops[i].nchunks = 1;
			ops[i].rand_len = 16;
			ops[i].cs_id = 0xFF;
		}
		return true;
	}
};

void bm_mikey_tk(benchmark::State &state, kl_crypto_backend b, kl_prf prf)
{
	const unsigned n = static_cast<unsigned>(state.range(0));
	Ctx ctx(state, b);
	if (!ctx)
		return;
	TkSlots t;
	if (!t.init(prf, n, 4)) {
		fail(state, "kl_prf_key_init failed");
		return;
	}
	for (auto _ : state) {
		if (kl_mikey_transport_keys_burst(ctx.get(), t.ops.data(), n) != static_cast<int>(n)) {
			fail(state, "kl_mikey_transport_keys_burst failed");
			break;
		}
		benchmark::DoNotOptimize(t.auth.data());
		benchmark::ClobberMemory();
	}
	finish(state, n);
}

void bm_aescm(benchmark::State &state, kl_crypto_backend b, uint32_t len)
{
	const unsigned n = static_cast<unsigned>(state.range(0));
	Ctx ctx(state, b);
	if (!ctx)
		return;

	std::vector<std::array<uint8_t, KL_AES128_KEY_LEN>> keys(n);
	std::vector<std::array<uint8_t, KL_MIKEY_SALT_KEY_LEN>> salts(n);
	std::vector<std::array<uint8_t, 64>> in(n), out(n);
	std::vector<kl_aescm_op> ops(n);
	Filler f(5);
	for (unsigned i = 0; i < n; i++) {
		f.fill(keys[i].data(), KL_AES128_KEY_LEN);
		f.fill(salts[i].data(), KL_MIKEY_SALT_KEY_LEN);
		f.fill(in[i].data(), 64);
		ops[i].key = keys[i].data();
		ops[i].salt = salts[i].data();
		ops[i].in = in[i].data();
		ops[i].out = out[i].data();
		ops[i].ntp_ts = 0xE8A1B2C300000000ull + i;
		ops[i].csb_id = 0x20000000u + i;
		ops[i].len = len;
	}
	for (auto _ : state) {
		if (kl_aescm_burst(ctx.get(), ops.data(), n) != static_cast<int>(n)) {
			fail(state, "kl_aescm_burst failed");
			break;
		}
		benchmark::DoNotOptimize(out.data());
		benchmark::ClobberMemory();
	}
	finish(state, n);
}

// One HM token per slot: 0x01 || nonce || ciphertext || tag, the plaintext and AAD filled with
// stand-in bytes of the lengths given, each slot with its own key.
struct GcmSlots {
	std::vector<std::array<uint8_t, KL_GCM_KEY_LEN>> key;
	std::vector<std::array<uint8_t, 48>> aad;
	std::vector<std::array<uint8_t, 256>> pt, token, back;
	std::vector<kl_gcm_op> seal, open;

	void init(unsigned n, uint16_t len, uint16_t aad_len, uint64_t seed)
	{
		key.resize(n);
		aad.resize(n);
		pt.resize(n);
		token.resize(n);
		back.resize(n);
		seal.resize(n);
		open.resize(n);
		Filler f(seed);
		for (unsigned i = 0; i < n; i++) {
			f.fill(key[i].data(), KL_GCM_KEY_LEN);
			f.fill(aad[i].data(), aad_len);
			f.fill(pt[i].data(), len);
			token[i][0] = 0x01;
			f.fill(&token[i][1], KL_GCM_IV_LEN);
			uint8_t *ct = &token[i][1 + KL_GCM_IV_LEN];
			seal[i] = kl_gcm_op{ key[i].data(), &token[i][1], aad[i].data(), pt[i].data(), ct,
					     ct + len, aad_len, len, 0 };
			open[i] = kl_gcm_op{ key[i].data(), &token[i][1], aad[i].data(), ct, back[i].data(),
					     ct + len, aad_len, len, 0 };
		}
	}
};

constexpr uint16_t kTokenPt = 227; // 1 + 12 + 227 + 16 = 256 bytes
constexpr uint16_t kTokenAad = 43; // 0x01 || 1 + 20 || 1 + 20

void bm_gcm(benchmark::State &state, kl_crypto_backend b, bool open)
{
	const unsigned n = static_cast<unsigned>(state.range(0));
	Ctx ctx(state, b);
	if (!ctx)
		return;
	GcmSlots g;
	g.init(n, kTokenPt, kTokenAad, 10);
	if (kl_gcm_seal_burst(ctx.get(), g.seal.data(), n) != static_cast<int>(n)) {
		fail(state, "kl_gcm_seal_burst failed");
		return;
	}
	std::vector<kl_gcm_op> &ops = open ? g.open : g.seal;
	for (auto _ : state) {
		if ((open ? kl_gcm_open_burst(ctx.get(), ops.data(), n)
			  : kl_gcm_seal_burst(ctx.get(), ops.data(), n)) != static_cast<int>(n)) {
			fail(state, "kl_gcm burst failed");
			break;
		}
		benchmark::DoNotOptimize(open ? g.back.data() : g.token.data());
		benchmark::ClobberMemory();
	}
	for (unsigned i = 0; i < n; i++)
		if (ops[i].rc != 0 || (open && std::memcmp(g.back[i].data(), g.pt[i].data(), kTokenPt))) {
			fail(state, "a token did not open");
			break;
		}
	finish(state, n);
}

// ---------------------------------------------------------------------------------------------
// Composites: one request per burst slot

constexpr size_t kReqBody = 100;  // bytes covered by the request MAC
constexpr size_t kMacLen = KL_SHA1_LEN;
constexpr size_t kBufMax = 160;

struct Msg {
	std::array<uint8_t, kBufMax> b{};
	size_t len = 0; // bytes before the MAC field
	void u8(uint8_t v) { b[len++] = v; }
	void be16(uint32_t v)
	{
		put_be16(&b[len], v);
		len += 2;
	}
	void be32(uint32_t v)
	{
		put_be32(&b[len], v);
		len += 4;
	}
	void be64(uint64_t v)
	{
		put_be64(&b[len], v);
		len += 8;
	}
	void bytes(const uint8_t *p, size_t n)
	{
		std::memcpy(&b[len], p, n);
		len += n;
	}
};

// MIKEY HDR (10): version 1, data type, next 5 (T), V 0 | PRF func, CSB ID, #CS 0, map type 1.
void put_hdr(Msg &m, uint8_t type, uint8_t prf, uint32_t csb)
{
	m.u8(0x01);
	m.u8(type);
	m.u8(5);
	m.u8(prf);
	m.be32(csb);
	m.u8(0);
	m.u8(1);
}

// T (10) and RAND (18).
void put_t_rand(Msg &m, uint64_t ntp, const uint8_t *rand)
{
	m.u8(11);
	m.u8(0);
	m.be64(ntp);
	m.u8(6);
	m.u8(16);
	m.bytes(rand, 16);
}

enum class Kind { Mbms, E2m };

// PROTOCOL.md section 2 request, 100 bytes before the MAC field.
//  MBMS: HDR 10 + T 10 + RAND 18 + IDi (4 + 42) + EXT type 2 (14) + V head 2 = 100
//  E2M : HDR 10 + T 10 + RAND 18 + IDi (4 + 26 EMSE_Id) + EXT type 250 (30) + V head 2 = 100
void build_request(Msg &m, Kind k, uint32_t csb, uint64_t ntp, const uint8_t *rand,
		   const uint8_t *emse_id, unsigned slot)
{
	put_hdr(m, 0x00, 0, csb);
	put_t_rand(m, ntp, rand);
	m.u8(21); // IDi, next EXT
	if (k == Kind::Mbms) {
		char impi[43];
		std::snprintf(impi, sizeof(impi), "00101%010u@ims.mnc001.mcc001.3gpp.org",
			      slot % 1000000000u);
		m.u8(0);
		m.be16(42);
		m.bytes(reinterpret_cast<const uint8_t *>(impi), 42);
		m.u8(9); // EXT, next V
		m.u8(2); // RFC 4563 Key ID
		m.be16(10);
		m.u8(1); // MSK
		m.be16(7);
		m.u8(0x00);
		m.u8(0xF1);
		m.u8(0x10);
		m.be32(0x00070000u); // key group 7, key number 0 (current)
	} else {
		m.u8(0);
		m.be16(kEmseIdLen);
		m.bytes(emse_id, kEmseIdLen);
		m.u8(9);   // EXT, next V
		m.u8(250); // keyline request
		m.be16(26);
		m.u8(1); // kind 1: E2M key fetch
		m.u8(1); // TLV 1: IMSI
		m.be16(15);
		char imsi[16];
		std::snprintf(imsi, sizeof(imsi), "00101%010u", slot % 1000000000u);
		m.bytes(reinterpret_cast<const uint8_t *>(imsi), 15);
		m.u8(2); // TLV 2: key identifier
		m.be16(4);
		m.be32(0x5A5A0000u + slot);
	}
	m.u8(0); // V: next 0
	m.u8(1); // HMAC-SHA-1-160
}

// PROTOCOL.md section 5 response with the encrypted Key data at *enc_off; MAC at len.
//  MBMS: 10 + 10 + 18 + IDr (4 + 10) + EXT (4 + 1 + 23) + KEMAC (4 + 25 + 1) = 110
//  E2M : the same with 41 bytes of Key data = 126
void build_response(Msg &m, uint32_t csb, uint64_t ntp, const uint8_t *rand, uint32_t key_id,
		    uint32_t kd_len, size_t *enc_off)
{
	static const char idr[] = "keyline.ex";
	put_hdr(m, 0x01, 0, csb);
	put_t_rand(m, ntp, rand);
	m.u8(21); // IDr, next EXT
	m.u8(0);
	m.be16(10);
	m.bytes(reinterpret_cast<const uint8_t *>(idr), 10);
	m.u8(1);   // EXT, next KEMAC
	m.u8(250);
	m.be16(24);
	m.u8(0); // kind
	m.u8(3); // TLV 3
	m.be16(20);
	m.be32(key_id);
	m.be64(ntp - (3600ull << 32));
	m.be64(ntp + (3600ull << 32));
	m.u8(0); // KEMAC, next 0
	m.u8(1); // AES-CM-128
	m.be16(kd_len);
	*enc_off = m.len;
	m.len += kd_len; // filled by AES-CM
	m.u8(1); // MAC alg HMAC-SHA-1-160
}

// Key data sub-payload: next 0, 0x21, key length, key, SPI length 4, SPI.
void build_key_data(uint8_t *p, const uint8_t *key, uint16_t klen, uint32_t spi)
{
	p[0] = 0;
	p[1] = 0x21;
	put_be16(p + 2, klen);
	if (key)
		std::memcpy(p + 4, key, klen);
	p[4 + klen] = 4;
	put_be32(p + 5 + klen, spi);
}

// The request side of a composite: transport keys, the auth_key HMAC state and the request MAC
// (HMAC-SHA-1) over each slot's request body, with the client's MAC right after the body.
struct ReqCheck {
	std::vector<const uint8_t *> auth_ptr;
	std::vector<uint16_t> auth_len;
	std::vector<kl_hmac_key> auth_state;
	std::vector<std::array<uint8_t, KL_HMAC_MAX_LEN>> vmac;
	std::vector<kl_hmac_op> vops;
	std::vector<uint8_t *> body;

	void init(TkSlots &t, unsigned n)
	{
		auth_ptr.resize(n);
		auth_len.assign(n, KL_MIKEY_AUTH_KEY_LEN);
		auth_state.resize(n);
		vmac.resize(n);
		vops.resize(n);
		body.resize(n);
		for (unsigned i = 0; i < n; i++) {
			auth_ptr[i] = t.auth[i].data();
			vops[i].key = &auth_state[i];
			vops[i].mac = vmac[i].data();
		}
	}
	void set_body(unsigned i, uint8_t *msg, size_t len)
	{
		body[i] = msg;
		vops[i].msg = msg;
		vops[i].len = static_cast<uint32_t>(len);
	}
	// The server's calls. @return false when one failed.
	bool run(kl_crypto *c, TkSlots &t)
	{
		const unsigned n = static_cast<unsigned>(vops.size());
		return kl_mikey_transport_keys_burst(c, t.ops.data(), n) == static_cast<int>(n) &&
		       kl_hmac_key_init_burst(KL_HASH_SHA1, auth_ptr.data(), auth_len.data(),
					      auth_state.data(), n) == static_cast<int>(n) &&
		       kl_hmac_burst(c, vops.data(), n) == static_cast<int>(n);
	}
	// Make the requests genuinely valid: the client's MAC under the same transport keys.
	bool sign(kl_crypto *c, TkSlots &t)
	{
		if (!run(c, t))
			return false;
		for (size_t i = 0; i < vops.size(); i++) {
			std::memcpy(body[i] + vops[i].len, vmac[i].data(), kMacLen);
			std::memset(t.auth[i].data(), 0, KL_MIKEY_AUTH_KEY_LEN);
			std::memset(vmac[i].data(), 0, kMacLen);
			kl_hmac_key_wipe(&auth_state[i]);
		}
		return true;
	}
	bool verified() const
	{
		bool ok = true;
		for (size_t i = 0; i < vops.size(); i++)
			ok &= std::memcmp(vmac[i].data(), body[i] + vops[i].len, kMacLen) == 0;
		return ok;
	}
};

// The end of every answer: KEMAC's Key data by AES-CM, then the response MAC. @return false on error.
bool seal_answers(kl_crypto *c, const std::vector<kl_aescm_op> &cops,
		  const std::vector<kl_hmac_op> &rops)
{
	const int n = static_cast<int>(cops.size());
	return kl_aescm_burst(c, cops.data(), static_cast<unsigned>(n)) == n &&
	       kl_hmac_burst(c, rops.data(), static_cast<unsigned>(n)) == n;
}

void bm_request(benchmark::State &state, kl_crypto_backend b, Kind kind)
{
	const unsigned n = static_cast<unsigned>(state.range(0));
	const uint16_t klen = kind == Kind::Mbms ? 16 : 32;
	const uint32_t kd_len = 9u + klen; // 25 or 41
	Ctx ctx(state, b);
	if (!ctx)
		return;

	TkSlots t;
	if (!t.init(KL_PRF_MIKEY1, n, kind == Kind::Mbms ? 6 : 7)) {
		fail(state, "kl_prf_key_init failed");
		return;
	}
	std::vector<Msg> req(n), resp(n);
	std::vector<size_t> enc_off(n);
	ReqCheck rc;
	rc.init(t, n);
	std::vector<kl_hmac_op> rops(n);
	std::vector<std::array<uint8_t, 48>> key_data(n);
	std::vector<kl_aescm_op> cops(n);
	std::vector<std::array<uint8_t, kEmseIdLen>> emse(n);
	std::vector<kl_hmac_key> e2m_int(n);
	std::vector<std::array<kl_kdf_param, 2>> kparams(n);
	std::vector<kl_kdf_op> kops(n);
	Filler f(kind == Kind::Mbms ? 8 : 9);
	uint8_t msk[16];
	f.fill(msk, sizeof(msk));

	for (unsigned i = 0; i < n; i++) {
		const uint64_t ntp_req = 0xE8A1B2C312340000ull + (uint64_t(i) << 20);
		const uint64_t ntp_resp = ntp_req + (1ull << 30);
		make_emse_id(emse[i].data(), i);
		build_request(req[i], kind, t.csb[i], ntp_req, t.rand[i].data(), emse[i].data(), i);
		if (req[i].len != kReqBody) {
			fail(state, "request body is not 100 bytes");
			return;
		}
		const uint32_t key_id = kind == Kind::Mbms ? 0x00070003u : kl_e2m_key_id(t.rand[i].data());
		build_response(resp[i], t.csb[i], ntp_resp, t.rand[i].data(), key_id, kd_len, &enc_off[i]);
		// MSK is known; e2m_key is filled in by the KDF at request time.
		build_key_data(key_data[i].data(), kind == Kind::Mbms ? msk : nullptr, klen, key_id);

		rc.set_body(i, req[i].b.data(), kReqBody);

		if (kind == Kind::E2m) {
			uint8_t ckik[32];
			f.fill(ckik, sizeof(ckik));
			if (kl_hmac_key_init(KL_HASH_SHA256, ckik, sizeof(ckik), &e2m_int[i]) != 0) {
				fail(state, "kl_hmac_key_init failed");
				return;
			}
			kparams[i][0].data = emse[i].data(); // EMSE_Id = IDi
			kparams[i][0].len = kEmseIdLen;
			kparams[i][1].data = kE2mLabel;
			kparams[i][1].len = sizeof(kE2mLabel);
			kops[i].key = &e2m_int[i];
			kops[i].params = kparams[i].data();
			kops[i].fc = kFcE2m;
			kops[i].nparams = 2;
			kops[i].out = key_data[i].data() + 4; // straight into the Key data
		}

		cops[i].key = t.encr[i].data();
		cops[i].salt = t.salt[i].data();
		cops[i].in = key_data[i].data();
		cops[i].out = resp[i].b.data() + enc_off[i];
		cops[i].ntp_ts = ntp_resp;
		cops[i].csb_id = t.csb[i];
		cops[i].len = kd_len;

		rops[i].key = &rc.auth_state[i];
		rops[i].msg = resp[i].b.data();
		rops[i].len = static_cast<uint32_t>(resp[i].len);
		rops[i].mac = resp[i].b.data() + resp[i].len;
	}

	if (!rc.sign(ctx.get(), t)) {
		fail(state, "request MAC set-up failed");
		return;
	}
	for (auto _ : state) {
		if (!rc.run(ctx.get(), t)) {
			fail(state, "request verification calls failed");
			break;
		}
		if (!rc.verified()) {
			fail(state, "request MAC did not verify");
			break;
		}
		if (kind == Kind::E2m &&
		    kl_kdf_burst(ctx.get(), kops.data(), n) != static_cast<int>(n)) {
			fail(state, "kl_kdf_burst failed");
			break;
		}
		if (!seal_answers(ctx.get(), cops, rops)) {
			fail(state, "response calls failed");
			break;
		}
		benchmark::DoNotOptimize(resp.data());
		benchmark::ClobberMemory();
	}
	finish(state, n);
}

// HM session (PROTOCOL.md section 9, kind 2). Lengths: 40-byte UE identities, 15-byte server
// identities; plaintext Ks 16 || valid-to 8 || 1 + 27 || 1 + 27 = 80; AAD 0x01 || 1 + 15 || 1 + 16 = 34;
// token 1 + 12 + 80 + 16 = 109. Answer: HDR 10, T 10, RAND 18, IDr 4 + 15, EXT 250 (4 + 1 +
// TLV 3 (3 + 20) + TLV 7 (3 + 109) + TLV 8 (3 + 109)), KEMAC (4 + 41 + 1) = 355 bytes before the MAC.
constexpr size_t kHmIdLen = 40;
constexpr uint16_t kFcHm = 0xFF06;
constexpr uint16_t kHmPt = 80;
constexpr uint16_t kHmAad = 34;
constexpr size_t kHmToken = 1 + KL_GCM_IV_LEN + kHmPt + KL_GCM_TAG_LEN;
constexpr size_t kHmReq = 130; // HDR, T, RAND, IDi 4 + 40, EXT 250 (4 + 1 + 3 + 40 + 3 + 15), V 2
constexpr size_t kHmResp = 355;
constexpr size_t kHmTokA = 88; // offset of TLV 7's value in the answer
constexpr size_t kHmTokB = kHmTokA + kHmToken + 3;
constexpr size_t kHmKemac = kHmTokB + kHmToken + 4; // Key data (41 bytes)

void bm_hm_session(benchmark::State &state, kl_crypto_backend b)
{
	const unsigned n = static_cast<unsigned>(state.range(0));
	constexpr uint32_t kd_len = 41; // Key data of K*a (32 bytes)
	Ctx ctx(state, b);
	if (!ctx)
		return;
	static_assert(kHmKemac + kd_len + 1 == kHmResp, "answer layout");

	TkSlots t;
	if (!t.init(KL_PRF_MIKEY1, n, 11)) {
		fail(state, "kl_prf_key_init failed");
		return;
	}
	kl_hmac_key pair;
	uint8_t pair_key[32];
	Filler f(12);
	f.fill(pair_key, sizeof(pair_key));
	if (kl_hmac_key_init(KL_HASH_SHA256, pair_key, sizeof(pair_key), &pair) != 0) {
		fail(state, "kl_hmac_key_init failed");
		return;
	}
	std::memset(pair_key, 0, sizeof(pair_key));

	std::vector<std::array<uint8_t, kHmReq + kMacLen>> req(n);
	std::vector<std::array<uint8_t, kHmResp + kMacLen>> resp(n);
	std::vector<std::array<uint8_t, 2 * kHmIdLen>> ids(n);
	std::vector<std::array<kl_kdf_param, 2>> kparams(n);
	std::vector<std::array<uint8_t, 48>> key_data(n);
	std::vector<std::array<uint8_t, KL_KDF_OUT_LEN>> kstar_b(n);
	std::vector<std::array<uint8_t, 2 * kHmPt>> pt(n);
	std::vector<std::array<uint8_t, kHmAad>> aad(n);
	ReqCheck rc;
	rc.init(t, n);
	std::vector<kl_hmac_op> rops(n);
	std::vector<kl_kdf_op> kops(2 * n);
	std::vector<kl_gcm_op> gops(2 * n);
	std::vector<kl_aescm_op> cops(n);

	for (unsigned i = 0; i < n; i++) {
		const uint64_t ntp = 0xE8A1B2C312340000ull + (uint64_t(i) << 20);
		f.fill(req[i].data(), kHmReq);
		f.fill(resp[i].data(), kHmResp);
		for (int x = 0; x < 2; x++) {
			char id[kHmIdLen + 1];
			std::snprintf(id, sizeof(id), "ue-%c-%08u@vlr%c.hm.mnc001.mcc001.3gpp", 'a' + x,
				      i % 100000000u, 'a' + x);
			std::memcpy(&ids[i][x * kHmIdLen], id, kHmIdLen);
			kparams[i][x].data = &ids[i][x * kHmIdLen];
			kparams[i][x].len = kHmIdLen;
			// K*a straight into KEMAC's Key data, K*b aside.
			kops[2 * i + x] = kl_kdf_op{ &pair, &kparams[i][x], kFcHm, 1,
						     x ? kstar_b[i].data() : key_data[i].data() + 4 };
			uint8_t *tok = resp[i].data() + (x ? kHmTokB : kHmTokA);
			f.fill(&pt[i][x * kHmPt], kHmPt); // Ks, valid-to, the identities (same bytes in both)
			gops[2 * i + x] = kl_gcm_op{ x ? kstar_b[i].data() : key_data[i].data() + 4, tok + 1,
						     aad[i].data(), &pt[i][x * kHmPt], tok + 13,
						     tok + 13 + kHmPt, kHmAad, kHmPt, 0 };
		}
		f.fill(aad[i].data(), kHmAad);
		build_key_data(key_data[i].data(), nullptr, 32, 0);

		rc.set_body(i, req[i].data(), kHmReq);
		cops[i] = kl_aescm_op{ t.encr[i].data(), t.salt[i].data(), key_data[i].data(),
				       resp[i].data() + kHmKemac, ntp, t.csb[i], kd_len };
		rops[i] = kl_hmac_op{ &rc.auth_state[i], resp[i].data(), static_cast<uint32_t>(kHmResp),
				      resp[i].data() + kHmResp };
	}
	if (!rc.sign(ctx.get(), t)) {
		fail(state, "request MAC set-up failed");
		return;
	}
	for (auto _ : state) {
		if (!rc.run(ctx.get(), t) || !rc.verified()) {
			fail(state, "request verification failed");
			break;
		}
		if (kl_kdf_burst(ctx.get(), kops.data(), 2 * n) != static_cast<int>(2 * n) ||
		    kl_gcm_seal_burst(ctx.get(), gops.data(), 2 * n) != static_cast<int>(2 * n) ||
		    !seal_answers(ctx.get(), cops, rops)) {
			fail(state, "answer calls failed");
			break;
		}
		benchmark::DoNotOptimize(resp.data());
		benchmark::ClobberMemory();
	}
	finish(state, n);
}

// DH public value and ProSe assist (PROTOCOL.md section 9, kinds 4 and 5), with the identity
// lengths of the HM composite: 40-byte UE identities, a 15-byte server identity (IDr and TLV 6).
//  kind 4 request: HDR 10, T 10, RAND 18, IDi 4 + 40, EXT 250 (4 + 1 + TLV 5 (3 + 40) + TLV 6
//    (3 + 15)), V 2 = 150 bytes before the MAC
//  kind 4 answer:  HDR 10, T 10, RAND 18, IDr 4 + 15, EXT 250 (4 + 1 + TLV 9 (3 + 32)), V 2 = 99
//  kind 5 request: as kind 4 plus TLV 11 (3 + 16) and TLV 12 (3 + 1) = 173
//  kind 5 answer:  HDR 10, T 10, RAND 18, IDr 4 + 15, EXT 250 (4 + 1 + TLV 3 (3 + 20)), KEMAC
//    (4 + 41 + 1) = 131, the Key data at 89
constexpr size_t kDhReq = 150;
constexpr size_t kDhResp = 99;
constexpr size_t kProseReq = 173;
constexpr size_t kProseResp = 131;
constexpr size_t kProseKd = 89;
constexpr uint16_t kFcProse = 0xFF04;
constexpr uint16_t kProseP = 16;
static_assert(10 + 10 + 18 + 4 + 40 + 4 + 1 + 3 + 40 + 3 + 15 + 2 == kDhReq, "kind 4 request");
static_assert(10 + 10 + 18 + 4 + 15 + 4 + 1 + 3 + 32 + 2 == kDhResp, "kind 4 answer");
static_assert(kDhReq + 3 + kProseP + 3 + 1 == kProseReq, "kind 5 request");
static_assert(10 + 10 + 18 + 4 + 15 + 4 + 1 + 3 + 20 + 4 == kProseKd, "kind 5 Key data");
static_assert(kProseKd + 41 + 1 == kProseResp, "kind 5 answer");

enum class PeerKind { Dh, Prose };

void bm_peer_value(benchmark::State &state, kl_crypto_backend b, PeerKind kind)
{
	const unsigned n = static_cast<unsigned>(state.range(0));
	const bool prose = kind == PeerKind::Prose;
	const size_t req_len = prose ? kProseReq : kDhReq;
	const size_t resp_len = prose ? kProseResp : kDhResp;
	constexpr uint32_t kd_len = 41; // Key data of p4 (32 bytes), SPI 0
	Ctx ctx(state, b);
	if (!ctx)
		return;

	TkSlots t;
	if (!t.init(KL_PRF_MIKEY1, n, prose ? 14 : 13)) {
		fail(state, "kl_prf_key_init failed");
		return;
	}
	std::vector<std::array<uint8_t, kProseReq + kMacLen>> req(n);
	std::vector<std::array<uint8_t, kProseResp + kMacLen>> resp(n);
	std::vector<kl_hmac_key> kasme(n);
	std::vector<std::array<uint8_t, kProseP>> p1(n);
	std::vector<kl_kdf_param> kparam(n);
	std::vector<std::array<uint8_t, KL_KDF_OUT_LEN>> p2(n);
	std::vector<std::array<uint8_t, 48>> key_data(n);
	ReqCheck rc;
	rc.init(t, n);
	std::vector<kl_kdf_op> kops(n);
	std::vector<kl_aescm_op> cops(n);
	std::vector<kl_hmac_op> rops(n);
	Filler f(prose ? 16 : 15);

	for (unsigned i = 0; i < n; i++) {
		const uint64_t ntp = 0xE8A1B2C312340000ull + (uint64_t(i) << 20);
		f.fill(req[i].data(), req_len);
		f.fill(resp[i].data(), resp_len); // P_a (TLV 9) or the rest of the answer
		rc.set_body(i, req[i].data(), req_len);
		rops[i] = kl_hmac_op{ &rc.auth_state[i], resp[i].data(), static_cast<uint32_t>(resp_len),
				      resp[i].data() + resp_len };
		if (!prose)
			continue;
		uint8_t k[32];
		f.fill(k, sizeof(k)); // KASME, as the KDF key (its HMAC state is in the table)
		if (kl_hmac_key_init(KL_HASH_SHA256, k, sizeof(k), &kasme[i]) != 0) {
			fail(state, "kl_hmac_key_init failed");
			return;
		}
		f.fill(p1[i].data(), kProseP); // TLV 11 of the request
		kparam[i] = kl_kdf_param{ p1[i].data(), kProseP };
		kops[i] = kl_kdf_op{ &kasme[i], &kparam[i], kFcProse, 1, p2[i].data() };
		uint8_t p4[32];
		f.fill(p4, sizeof(p4)); // the other side's value, from the rendezvous
		build_key_data(key_data[i].data(), p4, 32, 0);
		cops[i] = kl_aescm_op{ t.encr[i].data(), t.salt[i].data(), key_data[i].data(),
				       resp[i].data() + kProseKd, ntp, t.csb[i], kd_len };
	}
	// S = FC (2) || p1 (16) || L (2) = 20 bytes.
	uint8_t s[64];
	if (prose && kl_kdf_s_build(kFcProse, &kparam[0], 1, s, sizeof(s)) != 20) {
		fail(state, "S is not 20 bytes");
		return;
	}
	if (!rc.sign(ctx.get(), t)) {
		fail(state, "request MAC set-up failed");
		return;
	}
	for (auto _ : state) {
		if (!rc.run(ctx.get(), t) || !rc.verified()) {
			fail(state, "request verification failed");
			break;
		}
		if (prose ? kl_kdf_burst(ctx.get(), kops.data(), n) != static_cast<int>(n) ||
				    !seal_answers(ctx.get(), cops, rops)
			  : kl_hmac_burst(ctx.get(), rops.data(), n) != static_cast<int>(n)) {
			fail(state, "answer calls failed");
			break;
		}
		benchmark::DoNotOptimize(resp.data());
		benchmark::DoNotOptimize(p2.data());
		benchmark::ClobberMemory();
	}
	finish(state, n);
}

// ---------------------------------------------------------------------------------------------
// Registration

template <class Fn>
void reg(const std::string &name, Fn &&fn)
{
	auto *bm = benchmark::RegisterBenchmark(name.c_str(), std::forward<Fn>(fn));
	for (int burst : kBursts)
		bm->Arg(burst);
	bm->ArgName("burst");
}

void register_all()
{
	reg("hmac_key_init_sha1", [](benchmark::State &s) { bm_hmac_key_init(s, KL_HASH_SHA1); });
	reg("hmac_key_init_sha256", [](benchmark::State &s) { bm_hmac_key_init(s, KL_HASH_SHA256); });
	for (const Backend &be : kBackends) {
		const kl_crypto_backend b = be.id;
		const std::string sfx = std::string("/") + be.name;
		reg("hmac_sha1" + sfx, [b](benchmark::State &s) { bm_hmac(s, b, KL_HASH_SHA1); });
		reg("hmac_sha256" + sfx, [b](benchmark::State &s) { bm_hmac(s, b, KL_HASH_SHA256); });
		reg("kdf" + sfx, [b](benchmark::State &s) { bm_kdf(s, b); });
		reg("mikey_tk_mikey1" + sfx, [b](benchmark::State &s) { bm_mikey_tk(s, b, KL_PRF_MIKEY1); });
		reg("mikey_tk_sha256" + sfx,
		    [b](benchmark::State &s) { bm_mikey_tk(s, b, KL_PRF_HMAC_SHA256); });
		reg("aescm_25" + sfx, [b](benchmark::State &s) { bm_aescm(s, b, 25); });
		reg("aescm_64" + sfx, [b](benchmark::State &s) { bm_aescm(s, b, 64); });
		reg("mbms_request_crypto" + sfx, [b](benchmark::State &s) { bm_request(s, b, Kind::Mbms); });
		reg("e2m_fetch_crypto" + sfx, [b](benchmark::State &s) { bm_request(s, b, Kind::E2m); });
		reg("gcm_seal_227" + sfx, [b](benchmark::State &s) { bm_gcm(s, b, false); });
		reg("gcm_open_227" + sfx, [b](benchmark::State &s) { bm_gcm(s, b, true); });
		reg("hm_session_crypto" + sfx, [b](benchmark::State &s) { bm_hm_session(s, b); });
		reg("dh_public_crypto" + sfx,
		    [b](benchmark::State &s) { bm_peer_value(s, b, PeerKind::Dh); });
		reg("prose_assist_crypto" + sfx,
		    [b](benchmark::State &s) { bm_peer_value(s, b, PeerKind::Prose); });
	}
}

} // namespace

int main(int argc, char **argv)
{
	kl_crypto_set_log(drop_log);
	for (const Backend &be : kBackends) {
		kl_crypto *c = kl_crypto_create(be.id);
		if (c) {
			std::fprintf(stderr, "%s: %s\n", be.name, kl_crypto_arch(c));
			kl_crypto_destroy(c);
		} else {
			std::fprintf(stderr, "%s: unavailable (%s)\n", be.name, std::strerror(errno));
		}
	}
	register_all();
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	const size_t ran = benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	if (g_failed.load()) {
		std::fprintf(stderr, "crypto_bench: a benchmark reported an error\n");
		return 1;
	}
	return ran ? 0 : 1;
}

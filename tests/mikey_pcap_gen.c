/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writes a pcap of real keyline traffic for the interop test: client-signed requests, the
 * engine's responses and error messages, in Ethernet/IPv4/UDP frames on port 2269, and prints
 * one JSON line per frame with what an independent tool must find in it (test keys only: a
 * throw-away population made here). Kinds 4-7 (PROTOCOL.md sections 9, 10) follow: requests
 * signed by the client side (kind 7's KEMAC encrypted and MACed with the s2s keys), their
 * answers laid out by the codec and protected with the request's keys as a server does (V with
 * TLV 9, kind 5's KEMAC, kind 7's bare V, ERR 12/5 with retry-after). Then the same schemes
 * across two keylines, every datagram from their engines: a UE's request and its answer, the
 * kind 6 / kind 7 messages the server sends its peer (192.0.2.1 <-> 192.0.2.2, port 2269 both
 * ends) and the peer's answers.
 *   mikey_pcap_gen OUT.pcap
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>

#include "kl_eal_rundir.h"
#include "kl_engine.h"
#include "kl_s2s.h"

static FILE *pcap;
static unsigned frame;

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Hosts: 192.0.2.10 the clients (UDP 40000), 192.0.2.1 keyline (this server, 2269), 192.0.2.2
 * its peer server vlr-a.example (2269). */
#define HOST_CLIENT 10
#define HOST_SERVER 1
#define HOST_PEER 2

static void write_frame_at(const uint8_t *payload, uint16_t len, uint8_t src, uint8_t dst)
{
	uint8_t f[2048], rec[16];
	uint16_t ulen = (uint16_t)(8 + len), iplen = (uint16_t)(20 + ulen);
	uint32_t sum = 0;
	const uint8_t s4[4] = { 192, 0, 2, src }, d4[4] = { 192, 0, 2, dst };

	memset(f, 0, 42);
	memcpy(f, "\x02\x00\x00\x00\x00", 5);
	f[5] = dst;
	memcpy(f + 6, "\x02\x00\x00\x00\x00", 5);
	f[11] = src;
	f[12] = 0x08;
	f[14] = 0x45;
	kl_put16(f + 16, iplen);
	f[22] = 64;
	f[23] = 17;
	memcpy(f + 26, s4, 4);
	memcpy(f + 30, d4, 4);
	for (int i = 14; i < 34; i += 2)
		sum += kl_be16(f + i);
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	kl_put16(f + 24, (uint16_t)~sum);
	kl_put16(f + 34, src == HOST_CLIENT ? 40000 : KL_MIKEY_PORT);
	kl_put16(f + 36, dst == HOST_CLIENT ? 40000 : KL_MIKEY_PORT);
	kl_put16(f + 38, ulen);
	memcpy(f + 42, payload, len);
	put_le32(rec, 1700000000u + frame);
	put_le32(rec + 4, 0);
	put_le32(rec + 8, 42u + len);
	put_le32(rec + 12, 42u + len);
	fwrite(rec, 1, 16, pcap);
	fwrite(f, 1, 42u + len, pcap);
	frame++;
}

static void write_frame(const uint8_t *payload, uint16_t len, int to_server)
{
	write_frame_at(payload, len, to_server ? HOST_CLIENT : HOST_SERVER,
		       to_server ? HOST_SERVER : HOST_CLIENT);
}

static void hex(const char *name, const uint8_t *b, size_t n)
{
	printf("\"%s\":\"", name);
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\"");
}

/* ---- kinds 4-7 ---------------------------------------------------------------------------- */

static struct kl_crypto *cc;

static const uint8_t KA[32] = "dh-ue-a-psk-0123456789abcdef-012"; /* UEa's key with VLRa */
static const uint8_t KB[32] = "dh-ue-b-psk-0123456789abcdef-012"; /* UEb's with this server */
static const uint8_t KASME1[32] = "prose-kasme-ue1-0123456789abcdef";
static const uint8_t KASME2[32] = "prose-kasme-ue2-0123456789abcdef";
static const uint8_t PAIR[32] = "pair-key-vlr-a-vlr-b-32-bytes!!!";
static const char IDR[] = "keyline.example.net", PEER[] = "vlr-a.example";
static const char UEA[] = "ue-a@ims.example", UEB[] = "ue-b@ims.example";
static const char UE1[] = "ue1@prose.example", UE2[] = "ue2@prose.example";

static void mac_at(const uint8_t *auth_key, uint8_t *msg, uint16_t mac_off)
{
	struct kl_hmac_key k;

	kl_hmac_key_init(KL_HASH_SHA1, auth_key, KL_MIKEY_AUTH_KEY_LEN, &k);
	kl_hmac(cc, &k, msg, mac_off, msg + mac_off);
}

static void aescm_at(const struct kl_client_req *q, uint8_t *msg, uint16_t off, uint16_t len)
{
	struct kl_aescm_op op = { .key = q->encr_key, .salt = q->salt_key, .in = msg + off,
				  .out = msg + off, .ntp_ts = kl_be64(msg + 12), .csb_id = q->spec.csb_id,
				  .len = len };

	kl_aescm_burst(cc, &op, 1);
}

/* KDF(key, fc, one text parameter) */
static void kdf_text(const uint8_t *key, uint16_t fc, const char *text, uint8_t out[32])
{
	struct kl_hmac_key k;
	struct kl_kdf_param p = { (const uint8_t *)text, strlen(text) };

	kl_hmac_key_init(KL_HASH_SHA256, key, 32, &k);
	kl_kdf(cc, &k, fc, &p, 1, out);
}

/* ,"keys":[{"key":"<hex>","id":"00000000"}] (one 32-byte key, SPI 0) into b. @return its length. */
static size_t hex_key_json(char *b, size_t cap, const uint8_t *key)
{
	size_t o = (size_t)snprintf(b, cap, ",\"keys\":[{\"key\":\"");

	for (int i = 0; i < 32; i++)
		o += (size_t)snprintf(b + o, cap - o, "%02x", key[i]);
	return o + (size_t)snprintf(b + o, cap - o, "\",\"id\":\"00000000\"}]");
}

static void meta(const char *dir, const struct kl_client_req *q, const char *extra)
{
	printf("{\"frame\":%u,\"dir\":\"%s\",\"kind\":%u,\"prf\":%u,\"csb_id\":\"%08x\",", frame, dir,
	       q->spec.kind, q->spec.prf, q->spec.csb_id);
	hex("rand", q->spec.rand, 16);
	printf(",");
	hex("psk", q->psk, q->psk_len);
	printf("%s}\n", extra);
}

/* One request of kinds 4-6 (kl_client_sign) or 7 (KEMAC with push_key), written; its keys in q. */
static int request(struct kl_client_req *q, uint8_t *buf, const char *extra)
{
	char x[300];

	q->buf = buf;
	q->cap = 600;
	if (q->spec.kind == KL_KIND_PUSH) {
		/* kl_client_sign refuses kind 7 (no V): it gives the transport keys of the same PSK,
		 * CSB ID and RAND through a kind 6 stand-in; the KEMAC is laid out, AES-CM encrypted
		 * and MACed here as a peer server does */
		struct kl_mikey_layout lay;
		struct kl_client_req t = *q;
		int n;

		t.spec.kind = KL_KIND_PEERPV;
		t.spec.peer_ue = (const uint8_t *)"x";
		t.spec.peer_ue_len = 1;
		t.spec.source_ue_len = 0;
		t.spec.role = 0;
		if (kl_client_sign(cc, &t, 1) != 1)
			return -1;
		memcpy(q->auth_key, t.auth_key, sizeof(q->auth_key));
		memcpy(q->encr_key, t.encr_key, sizeof(q->encr_key));
		memcpy(q->salt_key, t.salt_key, sizeof(q->salt_key));
		n = kl_mikey_build_req_kemac(buf, 600, &q->spec, &lay);
		if (n < 0)
			return -1;
		aescm_at(q, buf, lay.encr_off, lay.encr_len);
		mac_at(q->auth_key, buf, lay.mac_off);
		q->len = (uint16_t)n;
	} else if (kl_client_sign(cc, q, 1) != 1) {
		return -1;
	}
	write_frame(buf, q->len, 1);
	snprintf(x, sizeof(x), ",\"end\":\"%s\"%s", q->spec.kind == KL_KIND_PUSH ? "kemac" : "v",
		 extra);
	meta("req", q, x);
	return 0;
}

/* The answer to q: V with the TLVs given (kinds 4, 6, 7), one key in a KEMAC (kind 5), or ERR
 * 12/5 with retry-after (retry_ms > 0). */
static int answer(const struct kl_client_req *q, const uint8_t *in, uint64_t now,
		  struct kl_mikey_tlv *x, unsigned nx, const uint8_t *key, uint16_t retry_ms)
{
	uint8_t out[800];
	struct kl_mikey_req r;
	struct kl_mikey_layout lay;
	struct kl_mikey_resp rs;
	char extra[300];
	size_t o;
	int rc;

	if (kl_mikey_parse_req(in, q->len, &r) != KL_DROP_NONE)
		return -1;
	if (retry_ms)
		rc = kl_mikey_build_err_retry(out, sizeof(out), &r, now, KL_ERR_UNSPECIFIED, 5,
					      retry_ms, &lay);
	else if (key) {
		struct kl_mikey_key k = { .key = key, .key_len = 32, .key_id = 0x5E550001,
					  .valid_from = now, .valid_to = now + (30ull << 32) };

		rc = kl_mikey_build_resp(out, sizeof(out), &r, now, (const uint8_t *)IDR,
					 sizeof(IDR) - 1, &k, 1, &lay);
	} else
		rc = kl_mikey_build_resp_v(out, sizeof(out), &r, now, (const uint8_t *)IDR,
					   sizeof(IDR) - 1, x, nx, &lay);
	if (rc)
		return -1;
	if (lay.encr_len)
		aescm_at(q, out, lay.encr_off, lay.encr_len);
	mac_at(q->auth_key, out, lay.mac_off);
	/* what a client accepts */
	if (kl_mikey_parse_resp(out, lay.len, &rs) != KL_DROP_NONE || rs.mac_off != lay.mac_off)
		return -1;
	write_frame(out, lay.len, 0);
	o = (size_t)snprintf(extra, sizeof(extra), ",\"end\":\"%s\"", key ? "kemac" : "v");
	if (retry_ms)
		o += (size_t)snprintf(extra + o, sizeof(extra) - o,
				      ",\"err_no\":12,\"detail\":5,\"retry_ms\":%u", retry_ms);
	if (key)
		o += hex_key_json(extra + o, sizeof(extra) - o, key);
	meta(retry_ms ? "err" : "resp", q, extra);
	return 0;
}

/* The s2s PSK = KDF(pair key, FF09, "s2s"); the ProSe pair's p1 and p3 and p2 = KDF(KASME1,
 * FF04, p1), p4 = KDF(KASME2, FF04, p3). */
static void scheme_values(uint8_t s2s[32], uint8_t p1[16], uint8_t p3[16], uint8_t p2[32],
			  uint8_t p4[32])
{
	struct kl_kdf_param kp;

	kdf_text(PAIR, 0xFF09, "s2s", s2s);
	for (int i = 0; i < 16; i++) {
		p1[i] = (uint8_t)(0xA0 + i);
		p3[i] = (uint8_t)(0xC0 + i);
	}
	kp = (struct kl_kdf_param){ p1, 16 };
	kl_derive(cc, KL_KDF_PROSE_P2, KASME1, 32, &kp, 1, p2);
	kp = (struct kl_kdf_param){ p3, 16 };
	kl_derive(cc, KL_KDF_PROSE_P2, KASME2, 32, &kp, 1, p4);
}

/* Kinds 4-7: both ends of the DH scheme and of a ProSe pair, as PROTOCOL.md sections 9-10 lay
 * them out (this server is VLRb / MME2; vlr-a.example its peer). */
static int peer_kinds(uint64_t now)
{
	uint8_t s_a[32], p_a[32], s2s[32], p1[16], p3[16], p2[32], p4[32], rand[8][16], buf[600];
	struct kl_mikey_tlv pv = { .type = KL_TLV_X25519, .val = p_a, .len = 32 };
	struct kl_client_req q;
	char x[200];

	kdf_text(KA, 0xFF07, "dh-x25519", s_a);
	if (kl_x25519_public(s_a, p_a))
		return -1;
	scheme_values(s2s, p1, p3, p2, p4);
	for (int k = 0; k < 8; k++)
		for (int i = 0; i < 16; i++)
			rand[k][i] = (uint8_t)(0x80 + k * 16 + i);
	/* kind 4, UEb asks for UEa's public value: first answer ERR 12/5 (VLRa asked), the retry
	 * gets TLV 9 = P_a */
	for (int k = 0; k < 2; k++) {
		q = (struct kl_client_req){ .psk = KB, .psk_len = 32 };
		q.spec = (struct kl_mikey_req_spec){
			.rand = rand[k], .ts = now, .csb_id = 0x44440000u + (uint32_t)k,
			.prf = (uint8_t)k, .id = (const uint8_t *)UEB, .id_len = sizeof(UEB) - 1,
			.kind = KL_KIND_DH, .peer_ue = (const uint8_t *)UEA,
			.peer_ue_len = sizeof(UEA) - 1, .peer_server = (const uint8_t *)PEER,
			.peer_server_len = sizeof(PEER) - 1 };
		if (request(&q, buf, "") ||
		    answer(&q, buf, now, k ? &pv : NULL, k ? 1 : 0, NULL, k ? 0 : 100))
			return -1;
	}
	/* kind 6, this server asks VLRa: TLV 5 = UEa; the answer TLV 9 = P_a (s2s PSK) */
	q = (struct kl_client_req){ .psk = s2s, .psk_len = 32 };
	q.spec = (struct kl_mikey_req_spec){
		.rand = rand[2], .ts = now, .csb_id = 0x66660000u, .prf = 1,
		.id = (const uint8_t *)IDR, .id_len = sizeof(IDR) - 1, .kind = KL_KIND_PEERPV,
		.peer_ue = (const uint8_t *)UEA, .peer_ue_len = sizeof(UEA) - 1 };
	if (request(&q, buf, "") || answer(&q, buf, now, &pv, 1, NULL, 0))
		return -1;
	/* kind 5: UE2 (responder, p3) first: ERR 12/5; UE1 (initiator, p1) gets p4; UE2's retry p2 */
	for (int k = 0; k < 3; k++) {
		int ue1 = k == 1;

		q = (struct kl_client_req){ .psk = ue1 ? KASME1 : KASME2, .psk_len = 32 };
		q.spec = (struct kl_mikey_req_spec){
			.rand = rand[3 + k], .ts = now, .csb_id = 0x55550000u + (uint32_t)k,
			.prf = (uint8_t)(k & 1), .id = (const uint8_t *)(ue1 ? UE1 : UE2),
			.id_len = sizeof(UE1) - 1, .kind = KL_KIND_PROSE,
			.peer_ue = (const uint8_t *)(ue1 ? UE2 : UE1), .peer_ue_len = sizeof(UE1) - 1,
			.peer_server = (const uint8_t *)PEER, .peer_server_len = sizeof(PEER) - 1,
			.contrib = ue1 ? p1 : p3, .role = (uint8_t)(ue1 ? 1 : 2) };
		snprintf(x, sizeof(x), ",\"p\":\"%s\"", ue1 ? "p1" : "p3");
		if (request(&q, buf, x) ||
		    answer(&q, buf, now, NULL, 0, k == 0 ? NULL : ue1 ? p4 : p2, k == 0 ? 500 : 0))
			return -1;
	}
	/* kind 7: VLRa pushes UE1's p2 to this server (KEMAC with the s2s keys); the bare V */
	q = (struct kl_client_req){ .psk = s2s, .psk_len = 32 };
	q.spec = (struct kl_mikey_req_spec){
		.rand = rand[6], .ts = now, .csb_id = 0x77770000u, .prf = 0,
		.id = (const uint8_t *)PEER, .id_len = sizeof(PEER) - 1, .kind = KL_KIND_PUSH,
		.source_ue = (const uint8_t *)UE1, .source_ue_len = sizeof(UE1) - 1,
		.peer_ue = (const uint8_t *)UE2, .peer_ue_len = sizeof(UE2) - 1, .role = 1,
		.push_key = p2, .push_key_len = 32 };
	hex_key_json(x, sizeof(x), p2);
	if (request(&q, buf, x) || answer(&q, buf, now, NULL, 0, NULL, 0))
		return -1;
	return 0;
}

/* ---- kinds 4-7 between two keylines: what their engines send --------------------------------- */

/* Server 0 is keyline.example.net (UEb, UE2), server 1 vlr-a.example (UEa, UE1); each has the
 * other as its one peer and the pair key. */
static struct kl_table *et[2];
static struct kl_worker *ew[2];
static struct kl_peers eps[2];
static struct kl_s2s *es2s[2];
static const uint8_t HOST_OF[2] = { HOST_SERVER, HOST_PEER };

static int two_servers(void)
{
	const char *ids[2] = { IDR, PEER };
	const char *ue[2][2] = { { UEB, UE2 }, { UEA, UE1 } };
	const uint8_t *key[2][2] = { { KB, KASME2 }, { KA, KASME1 } };

	for (int i = 0; i < 2; i++) {
		char name[16];
		struct kl_table_params tp = { .name = name, .max_ues = 16, .max_groups = 4,
					      .max_emses = 4, .max_imsis = 4, .max_appids = 4,
					      .max_pairs = 4, .e2m_ring = 4, .max_readers = 1,
					      .socket_id = -1 };
		struct kl_engine_config ec = { .idr = (const uint8_t *)ids[i],
					       .idr_len = (uint16_t)strlen(ids[i]), .skew_s = 60,
					       .predelivery_s = 60, .replay_entries = 1024,
					       .backend = KL_CRYPTO_OPENSSL };
		const char *other = ids[1 - i];

		snprintf(name, sizeof(name), "pcapgen%d", i);
		et[i] = kl_table_create(&tp);
		if (!et[i] || kl_table_reader_register(et[i], 0) < 0 ||
		    kl_table_put_pair(et[i], (const uint8_t *)other, (uint16_t)strlen(other), PAIR, 32,
				      0) < 0)
			return -1;
		for (int u = 0; u < 2; u++)
			if (kl_table_put_ue(et[i], (const uint8_t *)ue[i][u], (uint16_t)strlen(ue[i][u]),
					    key[i][u], 32, NULL, 0) < 0 ||
			    kl_table_set_ue_services(et[i], (const uint8_t *)ue[i][u],
						     (uint16_t)strlen(ue[i][u]),
						     KL_SVC(DH) | KL_SVC(PROSE)) != 1)
				return -1;
		eps[i].n = 1;
		eps[i].p[0].id_len = (uint16_t)strlen(other);
		memcpy(eps[i].p[0].id, other, eps[i].p[0].id_len);
		eps[i].p[0].family = 4;
		memcpy(eps[i].p[0].ip, "\xc0\x00\x02", 3);
		eps[i].p[0].ip[3] = HOST_OF[1 - i];
		eps[i].p[0].port = KL_MIKEY_PORT;
		es2s[i] = kl_s2s_create(64, 64, 16, 30, 300);
		ec.peers = &eps[i];
		ec.s2s = es2s[i];
		ew[i] = es2s[i] ? kl_worker_create(&ec, et[i], 0) : NULL;
		if (!ew[i])
			return -1;
	}
	return 0;
}

/* Serve one datagram on server s (peer: it came from the other server). @return answer length. */
static uint16_t serve_on(int s, const uint8_t *in, uint16_t len, uint8_t peer, uint8_t *out,
			 uint64_t now)
{
	struct kl_pkt p = { .in = in, .out = out, .in_len = len, .out_cap = 1600, .peer = peer };

	kl_engine_serve(ew[s], now, &p, 1);
	kl_table_quiescent(et[s], 0);
	return p.out_len;
}

/* The JSON line of a frame of server-to-server traffic or of a UE's answer from the engine:
 * what the request it belongs to was (parsed from the request's bytes). */
static void engine_meta(const char *dir, const uint8_t *req, uint16_t rlen, const uint8_t *psk,
			const uint8_t *ans, uint16_t alen, const uint8_t *pushed)
{
	struct kl_mikey_req r;
	struct kl_mikey_resp rs;
	struct kl_client_req q = { .psk = psk, .psk_len = 32 };
	char x[300];
	size_t o;

	kl_mikey_parse_req(req, rlen, &r);
	q.spec = (struct kl_mikey_req_spec){ .rand = r.rand, .csb_id = r.csb_id, .prf = r.prf,
					     .kind = r.kind };
	o = (size_t)snprintf(x, sizeof(x), ",\"engine\":1,\"s2s\":1");
	if (!strcmp(dir, "req")) {
		o += (size_t)snprintf(x + o, sizeof(x) - o, ",\"end\":\"%s\"",
				      r.kind == KL_KIND_PUSH ? "kemac" : "v");
		if (r.kind == KL_KIND_PUSH)
			o += hex_key_json(x + o, sizeof(x) - o, pushed);
	} else if (kl_mikey_parse_resp(ans, alen, &rs) == KL_DROP_NONE) {
		o += (size_t)snprintf(x + o, sizeof(x) - o, ",\"end\":\"%s\"", rs.encr ? "kemac" : "v");
		if (rs.data_type == KL_DT_ERROR)
			o += (size_t)snprintf(x + o, sizeof(x) - o,
					      ",\"err_no\":%u,\"detail\":%u,\"retry_ms\":%u", rs.err_no,
					      rs.detail, rs.retry_after_ms);
		dir = rs.data_type == KL_DT_ERROR ? "err" : "resp";
	}
	meta(dir, &q, x);
}

/* A UE's request to server s, its answer, then every message server s left for its peer and
 * the peer's answer to each. key_json_val: the value a KEMAC answer carries; pushed: the value
 * a kind 7 push carries (or NULL). */
static int exchange(int s, struct kl_client_req *q, uint64_t now, const uint8_t *key_json_val,
		    const uint8_t *pushed, const uint8_t *s2s)
{
	static struct kl_s2s_msg msg[KL_ENGINE_OUTBOX];
	uint8_t buf[600], out[1600], back[1600];
	const struct kl_s2s_msg *m;
	unsigned n;
	uint16_t alen;
	char kx[200] = "";

	q->buf = buf;
	q->cap = sizeof(buf);
	if (kl_client_sign(cc, q, 1) != 1)
		return -1;
	write_frame_at(buf, q->len, HOST_CLIENT, HOST_OF[s]);
	meta("req", q, ",\"engine\":1,\"s2s\":0,\"end\":\"v\"");
	alen = serve_on(s, buf, q->len, 0, out, now);
	if (!alen)
		return -1;
	write_frame_at(out, alen, HOST_OF[s], HOST_CLIENT);
	if (key_json_val)
		hex_key_json(kx, sizeof(kx), key_json_val);
	{
		char x[300];
		struct kl_mikey_resp rs;

		if (kl_mikey_parse_resp(out, alen, &rs) != KL_DROP_NONE)
			return -1;
		if (rs.data_type == KL_DT_ERROR)
			snprintf(x, sizeof(x),
				 ",\"engine\":1,\"s2s\":0,\"end\":\"v\",\"err_no\":%u,\"detail\":%u,"
				 "\"retry_ms\":%u",
				 rs.err_no, rs.detail, rs.retry_after_ms);
		else
			snprintf(x, sizeof(x), ",\"engine\":1,\"s2s\":0,\"end\":\"%s\"%s",
				 rs.encr ? "kemac" : "v", rs.encr ? kx : "");
		meta(rs.data_type == KL_DT_ERROR ? "err" : "resp", q, x);
	}
	n = kl_engine_outbox(ew[s], &m);
	memcpy(msg, m, n * sizeof(*m)); /* serving again reuses the outbox */
	for (unsigned i = 0; i < n; i++) {
		uint16_t bl;

		write_frame_at(msg[i].buf, msg[i].len, HOST_OF[s], HOST_OF[1 - s]);
		engine_meta("req", msg[i].buf, msg[i].len, s2s, NULL, 0, pushed);
		bl = serve_on(1 - s, msg[i].buf, msg[i].len, 1, back, now);
		if (!bl)
			return -1;
		write_frame_at(back, bl, HOST_OF[1 - s], HOST_OF[s]);
		engine_meta("resp", msg[i].buf, msg[i].len, s2s, back, bl, pushed);
		if (serve_on(s, back, bl, 1, out, now)) /* the answer is taken, not answered */
			return -1;
	}
	return 0;
}

/* The DH scheme and a ProSe pair across the two servers, every datagram from the engines. */
static int two_server_kinds(uint64_t now)
{
	uint8_t s2s[32], rand[6][16], p1[16], p3[16], p2[32], p4[32];
	struct kl_client_req q;

	if (two_servers())
		return -1;
	scheme_values(s2s, p1, p3, p2, p4);
	for (int k = 0; k < 6; k++)
		for (int i = 0; i < 16; i++)
			rand[k][i] = (uint8_t)(0x10 + k * 16 + i);
	/* kind 4: UEb asks server 0 for UEa (server 1's): ERR 12/5, kind 6 to the peer and its
	 * answer; UEb's retry gets P_a */
	for (int k = 0; k < 2; k++) {
		q = (struct kl_client_req){ .psk = KB, .psk_len = 32 };
		q.spec = (struct kl_mikey_req_spec){
			.rand = rand[k], .ts = now, .csb_id = 0xE4000000u + (uint32_t)k, .prf = 1,
			.id = (const uint8_t *)UEB, .id_len = sizeof(UEB) - 1, .kind = KL_KIND_DH,
			.peer_ue = (const uint8_t *)UEA, .peer_ue_len = sizeof(UEA) - 1,
			.peer_server = (const uint8_t *)PEER, .peer_server_len = sizeof(PEER) - 1 };
		if (exchange(0, &q, now, NULL, NULL, s2s))
			return -1;
	}
	/* kind 5: UE1 (initiator) at server 1: ERR 12/5 and p2 pushed to server 0; UE2 (responder)
	 * at server 0 gets p2, p4 is pushed back; UE1's retry gets p4 */
	for (int k = 0; k < 3; k++) {
		int ue1 = k != 1;

		q = (struct kl_client_req){ .psk = ue1 ? KASME1 : KASME2, .psk_len = 32 };
		q.spec = (struct kl_mikey_req_spec){
			.rand = rand[2 + k], .ts = now, .csb_id = 0xE5000000u + (uint32_t)k,
			.prf = (uint8_t)(k & 1), .id = (const uint8_t *)(ue1 ? UE1 : UE2),
			.id_len = sizeof(UE1) - 1, .kind = KL_KIND_PROSE,
			.peer_ue = (const uint8_t *)(ue1 ? UE2 : UE1), .peer_ue_len = sizeof(UE1) - 1,
			.peer_server = (const uint8_t *)(ue1 ? IDR : PEER),
			.peer_server_len = (uint16_t)strlen(ue1 ? IDR : PEER),
			.contrib = ue1 ? p1 : p3, .role = (uint8_t)(ue1 ? 1 : 2) };
		if (exchange(ue1, &q, now, ue1 ? p4 : p2, ue1 ? p2 : p4, s2s))
			return -1;
	}
	for (int i = 0; i < 2; i++) {
		kl_worker_destroy(ew[i]);
		kl_s2s_destroy(es2s[i]);
		kl_table_reader_unregister(et[i], 0);
		kl_table_free(et[i]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	char prefix[64];
	char *eal[] = { "gen", "--no-huge", "--no-shconf", "-m", "128", "--no-pci", "--no-telemetry",
			"-l", "0", "--log-level=error", "--file-prefix", prefix };
	static const uint8_t muk[32] = "0123456789abcdef0123456789abcdef";
	static const uint8_t emse_psk[20] = "emse-psk-20-bytes!!!";
	static const uint8_t muk_b[32] = "fedcba9876543210fedcba9876543210";
	static const uint8_t pair[32] = "pair-key-vlr-a-vlr-b-32-bytes!!!";
	uint8_t e2m_int[32];
	const uint8_t hdr[24] = { 0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				  0xff, 0xff, 0, 0, 1, 0, 0, 0 };
	struct kl_table_params tp = { .name = "pcapgen", .max_ues = 16, .max_groups = 16, .max_emses = 16,
				      .max_imsis = 16, .max_appids = 16, .max_pairs = 4, .e2m_ring = 4,
				      .max_readers = 1, .socket_id = -1 };
	struct kl_engine_config ec = { .idr = (const uint8_t *)"keyline.example.net", .idr_len = 19,
				       .skew_s = 60, .predelivery_s = 60, .replay_entries = 1024,
				       .backend = KL_CRYPTO_IPSECMB };
	struct kl_group_ref g = { .domain = { 0x00, 0xF1, 0x10 }, .group = 3 };
	struct kl_group grp = { 0 };
	struct kl_table *t;
	struct kl_worker *w;
	struct kl_crypto *c;
	uint64_t now;

	if (argc != 2) {
		fprintf(stderr, "usage: mikey_pcap_gen OUT.pcap\n");
		return 2;
	}
	snprintf(prefix, sizeof(prefix), "kl_pcapgen_%d", (int)getpid());
	kl_crypto_set_log(NULL);
	kl_eal_rundir_cleanup_at_exit(); /* no /var/run/dpdk/<prefix> left behind */
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0)
		return 1;
	now = kl_ntp_now();
	t = kl_table_create(&tp);
	if (!t || kl_table_reader_register(t, 0) < 0)
		return 1;
	memset(grp.current.key, 0x31, 16);
	grp.current.valid_from = now - (100ull << 32);
	grp.current.valid_to = now + (10ull << 32);
	grp.current.msk_id = 3u << 16 | 8;
	memset(grp.next.key, 0x32, 16);
	grp.next.valid_from = grp.current.valid_to;
	grp.next.valid_to = now + (3600ull << 32);
	grp.next.msk_id = 3u << 16 | 9;
	grp.has_next = 1;
	memset(e2m_int, 0x77, sizeof(e2m_int));
	if (kl_table_put_ue(t, (const uint8_t *)"ue@ims.example", 14, muk, 32, &g, 1) < 0 ||
	    kl_table_put_group(t, &g, &grp) < 0 ||
	    kl_table_put_emse(t, (const uint8_t *)"emse-1.example", 14, emse_psk, 20) < 0 ||
	    kl_table_push_e2m(t, "001010123456789", e2m_int, 0xBEEF0001, 0) < 0 ||
	    kl_table_put_ue(t, (const uint8_t *)"ue-b@ims.example", 16, muk_b, 32, NULL, 0) < 0 ||
	    kl_table_set_ue_services(t, (const uint8_t *)"ue@ims.example", 14,
				     KL_SVC(MBMS) | KL_SVC(HM)) < 0 ||
	    kl_table_set_ue_services(t, (const uint8_t *)"ue-b@ims.example", 16, KL_SVC(HM)) < 0 ||
	    kl_table_put_pair(t, (const uint8_t *)"vlr-b.example", 13, pair, 32, 0) < 0)
		return 1;
	w = kl_worker_create(&ec, t, 0);
	c = cc = kl_crypto_create(KL_CRYPTO_OPENSSL);
	pcap = fopen(argv[1], "wb");
	if (!w || !c || !pcap)
		return 1;
	fwrite(hdr, 1, sizeof(hdr), pcap);
	/* MBMS, E2M, late, unauthorised; kind 2 (UE to ue-b of vlr-b.example), kind 3 (ue-b) */
	for (int k = 0; k < 8; k++) {
		uint8_t rand[16], buf[600], out[1600];
		struct kl_client_req q = { 0 };
		struct kl_client_result res;
		struct kl_pkt p;
		int is_e2m = k >= 2 && k < 4, late = k == 4, unauth = k == 5, is_hm = k >= 6;

		for (int i = 0; i < 16; i++)
			rand[i] = (uint8_t)(k * 16 + i + 1);
		q.spec = (struct kl_mikey_req_spec){ .rand = rand, .ts = late ? now - (600ull << 32) : now,
						     .csb_id = 0x11110000u + (uint32_t)k, .prf = (uint8_t)(k & 1) };
		if (is_hm) {
			q.spec.kind = k == 6 ? KL_KIND_HM : KL_KIND_KSTAR;
			q.spec.id = (const uint8_t *)(k == 6 ? "ue@ims.example" : "ue-b@ims.example");
			q.spec.id_len = k == 6 ? 14 : 16;
			q.spec.peer_ue = (const uint8_t *)(k == 6 ? "ue-b@ims.example" : NULL);
			q.spec.peer_ue_len = k == 6 ? 16 : 0;
			/* the session's other server; this one serves both UEs (VLRa = VLRb's peer) */
			q.spec.peer_server = (const uint8_t *)"vlr-b.example";
			q.spec.peer_server_len = 13;
			q.psk = k == 6 ? muk : muk_b;
			q.psk_len = 32;
		} else if (is_e2m) {
			q.spec.id = (const uint8_t *)"emse-1.example";
			q.spec.id_len = 14;
			q.spec.id_type = 1;
			q.spec.kind = KL_KIND_E2M;
			q.spec.ue = (const uint8_t *)"001010123456789";
			q.spec.ue_len = 15;
			q.psk = emse_psk;
			q.psk_len = sizeof(emse_psk);
		} else {
			q.spec.id = (const uint8_t *)"ue@ims.example";
			q.spec.id_len = 14;
			q.spec.kind = KL_KIND_MBMS;
			memcpy(q.spec.domain, g.domain, 3);
			q.spec.group = unauth ? 4 : 3;
			q.psk = muk;
			q.psk_len = sizeof(muk);
		}
		q.buf = buf;
		q.cap = sizeof(buf);
		if (kl_client_sign(c, &q, 1) != 1)
			return 1;
		p = (struct kl_pkt){ .in = buf, .out = out, .in_len = q.len, .out_cap = sizeof(out) };
		kl_engine_serve(w, now, &p, 1);
		kl_table_quiescent(t, 0);
		if (!p.out_len)
			return 1;
		write_frame(buf, q.len, 1);
		printf("{\"frame\":%u,\"dir\":\"req\",\"kind\":%u,\"prf\":%u,\"csb_id\":\"%08x\",", frame,
		       q.spec.kind, q.spec.prf, q.spec.csb_id);
		hex("rand", rand, 16);
		printf(",");
		hex("psk", q.psk, q.psk_len);
		printf("}\n");
		write_frame(out, p.out_len, 0);
		printf("{\"frame\":%u,\"dir\":\"%s\",\"kind\":%u,\"prf\":%u,\"csb_id\":\"%08x\",", frame,
		       (late || unauth) ? "err" : "resp", q.spec.kind, q.spec.prf, q.spec.csb_id);
		hex("rand", rand, 16);
		printf(",");
		hex("psk", q.psk, q.psk_len);
		printf(",\"err_no\":%d,", late ? KL_ERR_INVALID_TS : unauth ? KL_ERR_INVALID_ID : 0);
		if (is_hm) {
			/* K* = KDF(pair, FF06, the requester); SPI 0; kind 2 also the two tokens */
			uint8_t want[32];
			struct kl_kdf_param id = { q.spec.id, q.spec.id_len };

			kl_derive(c, KL_KDF_VLR_TOKEN, pair, 32, &id, 1, want);
			printf("\"keys\":[{");
			hex("key", want, 32);
			printf(",\"id\":\"00000000\"}]");
			if (k == 6 && !kl_client_verify(c, &q, out, p.out_len, now, 60, &res) &&
			    res.token[0] && res.token[1]) {
				printf(",");
				hex("token_a", res.token[0], res.token_len[0]);
				printf(",");
				hex("token_b", res.token[1], res.token_len[1]);
			}
			printf("}\n");
		} else if (is_e2m) {
			uint8_t want[32];
			struct kl_kdf_param em = { (const uint8_t *)"emse-1.example", 14 };

			kl_derive(c, KL_KDF_E2M, e2m_int, 32, &em, 1, want);
			printf("\"keys\":[{");
			hex("key", want, 32);
			printf(",\"id\":\"beef0001\"}]}\n");
		} else {
			printf("\"keys\":[{");
			hex("key", grp.current.key, 16);
			printf(",\"id\":\"%08x\"},{", grp.current.msk_id);
			hex("key", grp.next.key, 16);
			printf(",\"id\":\"%08x\"}]}\n", grp.next.msk_id);
		}
	}
	if (peer_kinds(now) || two_server_kinds(now))
		return 1;
	fclose(pcap);
	kl_worker_destroy(w);
	kl_crypto_destroy(c);
	kl_table_reader_unregister(t, 0);
	kl_table_free(t);
	return 0;
}

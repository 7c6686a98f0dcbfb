/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target over the request engine: parse + lookups + crypto + key selection + build,
 * against a real key table. Most random datagrams die at the MAC check, so when the first input
 * byte is odd the harness plays a client that holds the right key: if the rest parses and names
 * a known requester, it stamps T near the engine's clock and re-computes the MAC, which drives
 * the input through every stage after verification. Invariants (abort = bug):
 *   - an answer is never larger than 3x the request, an error never larger than the request;
 *   - every answer to a request signed with the right key verifies with the client side, and
 *     echoes its RAND and CSB ID;
 *   - a request that was not re-signed is never answered unless its bytes carried a valid MAC;
 *   - drop reasons are in range and the counters add up.
 * The engine's clock moves 1000 s per input, so earlier inputs never make later ones replays;
 * before the NTP seconds would wrap (about 390,000 inputs) the worker and the shared state are
 * made anew and the clock starts again (found by fuzzing: after the wrap, entries of the replay
 * cache from before it looked live and fresh requests were dropped as replays).
 *
 * Kinds 4-7 (PROTOCOL.md sections 9, 10): a second local UE (peer@fuzz.example) with the dh and
 * prose services, and one configured peer server (vlr-b@fuzz, pair key 0x41..): its kind 6 and 7
 * requests are re-signed with the s2s PSK and come from its address (kind 7's key data is
 * AES-CM encrypted as it came before the MAC). A kind 5 request between the two local UEs is,
 * when bit 1 of the first byte is set, preceded in the same burst by the other UE's request, so
 * that the answer carries the other side's value. More invariants: a kind 4 answer naming the
 * other local UE carries its X25519 public value; a kind 5 answer carries p = KDF(KASME, FF04,
 * p_in) of the other side; every server-to-server message the engine leaves in its outbox (after
 * the burst and after a tick) is a well-formed kind 6 or 7 request from this server whose MAC
 * verifies under the s2s keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>

#include "fuzz_common.h"
#include "kl_eal_rundir.h"
#include "kl_engine.h"
#include "kl_s2s.h"

#define SEC(s) ((uint64_t)(s) << 32)

static struct kl_table *tab;
static struct kl_worker *wk;
static struct kl_crypto *cli;
static uint64_t clock_now;
static struct kl_engine_config ecfg;
#define CLOCK_START SEC(3900000000u)
#define CLOCK_END SEC(4290000000u) /* NTP seconds wrap at 2^32 */

static const uint8_t MUK[32] = "fuzz-muk-0123456789abcdef-012345";
static const uint8_t PSK2[48] = "fuzz-emse-psk-48-bytes-0123456789abcdef-0123456";
static const char *UE = "ue@fuzz.example";
static const char *EMSE = "emse@fuzz.example";
static const uint8_t PEER_KEY[32] = "fuzz-peer-ue-key-0123456789abcde";
static const char *PEER_UE = "peer@fuzz.example";
static const char *PEER_SRV = "vlr-b@fuzz";
static const uint8_t P_OTHER[16] = "fuzz-prose-p-in!"; /* the partner's p1 / p3 */
static uint8_t s2s_psk[32], pub_ue[32], pub_peer[32];
static struct kl_peers peers;
static struct kl_s2s *s2s;

static void init_once(void)
{
	static int done;
	char prefix[64];
	char *eal[] = { "fuzz_engine", "--no-huge", "--no-shconf", "-m", "128", "--no-pci",
			"--no-telemetry", "-l", "0", "--log-level=error", "--file-prefix", prefix };
	struct kl_table_params tp = { .name = "fuzz", .max_ues = 8, .max_groups = 8, .max_emses = 8,
				      .max_imsis = 8, .max_appids = 8, .max_pairs = 4, .e2m_ring = 2,
				      .max_readers = 1, .socket_id = -1 };
	struct kl_engine_config ec = { .idr = (const uint8_t *)"keyline.fuzz", .idr_len = 12,
				       .skew_s = 60, .predelivery_s = 60, .replay_entries = 64,
				       .backend = KL_CRYPTO_OPENSSL };
	struct kl_group_ref g[3] = { { { 0x00, 0xF1, 0x10 }, 1 }, { { 0x00, 0xF1, 0x10 }, 2 },
				     { { 0x00, 0xF1, 0x10 }, 3 } };
	struct kl_group live = { 0 }, dead = { 0 };
	uint8_t k[32];

	if (done)
		return;
	done = 1;
	snprintf(prefix, sizeof(prefix), "kl_fuzz_engine_%d", (int)getpid());
	kl_crypto_set_log(NULL);
	kl_eal_rundir_cleanup_at_exit(); /* no /var/run/dpdk/<prefix> left behind */
	FZ_CHECK(rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) >= 0);
	tab = kl_table_create(&tp);
	FZ_CHECK(tab && kl_table_reader_register(tab, 0) == 0);
	/* group 1 live with a next key that rotates in every 1000 s step; group 2 long expired;
	 * group 3 is authorised but does not exist */
	memset(live.current.key, 0x11, 16);
	live.current.valid_from = 0;
	live.current.valid_to = UINT64_MAX;
	live.current.msk_id = 1u << 16 | 5;
	memset(live.next.key, 0x12, 16);
	live.next.valid_from = SEC(4000000000u);
	live.next.valid_to = UINT64_MAX;
	live.next.msk_id = 1u << 16 | 6;
	live.has_next = 1;
	memset(dead.current.key, 0x21, 16);
	dead.current.valid_to = SEC(1);
	dead.current.msk_id = 2u << 16 | 1;
	FZ_CHECK(kl_table_put_group(tab, &g[0], &live) == 0);
	FZ_CHECK(kl_table_put_group(tab, &g[1], &dead) == 0);
	FZ_CHECK(kl_table_put_ue(tab, (const uint8_t *)UE, (uint16_t)strlen(UE), MUK, 32, g, 3) == 0);
	/* the UE may use every service: kinds 2 and 3 reach their pair keys (one live, one
	 * expired) */
	FZ_CHECK(kl_table_set_ue_services(tab, (const uint8_t *)UE, (uint16_t)strlen(UE), KL_SVC_ALL) ==
		 1);
	memset(k, 0x41, 32);
	FZ_CHECK(kl_table_put_pair(tab, (const uint8_t *)"vlr-b@fuzz", 10, k, 32, 0) == 0);
	FZ_CHECK(kl_table_put_pair(tab, (const uint8_t *)"vlr-old@fuzz", 12, k, 32, SEC(1)) == 0);
	FZ_CHECK(kl_table_put_emse(tab, (const uint8_t *)EMSE, (uint16_t)strlen(EMSE), PSK2, 48) == 0);
	memset(k, 0x31, 32);
	FZ_CHECK(kl_table_push_e2m(tab, "001010000000001", k, 0x100, 0) == 0);
	memset(k, 0x32, 32);
	FZ_CHECK(kl_table_push_e2m(tab, "001010000000001", k, 0x101, 0) == 0);
	FZ_CHECK(kl_table_push_e2m(tab, "001010000000002", k, 0x200, SEC(1)) == 0);
	FZ_CHECK(kl_table_put_appid(tab, (const uint8_t *)"app@fuzz", 8, "001010000000001") == 0);
	/* kinds 4-7: the second UE, the peer server and the state the workers share */
	FZ_CHECK(kl_table_put_ue(tab, (const uint8_t *)PEER_UE, (uint16_t)strlen(PEER_UE), PEER_KEY, 32,
				 NULL, 0) == 0);
	FZ_CHECK(kl_table_set_ue_services(tab, (const uint8_t *)PEER_UE, (uint16_t)strlen(PEER_UE),
					  KL_SVC_ALL) == 1);
	peers.n = 1;
	peers.p[0].id_len = (uint16_t)strlen(PEER_SRV);
	memcpy(peers.p[0].id, PEER_SRV, peers.p[0].id_len);
	peers.p[0].family = 4;
	peers.p[0].ip[0] = 127;
	peers.p[0].ip[3] = 1;
	peers.p[0].port = 2269;
	s2s = kl_s2s_create(64, 64, 16, 30, 300);
	FZ_CHECK(s2s);
	ec.peers = &peers;
	ec.s2s = s2s;
	ecfg = ec;
	wk = kl_worker_create(&ec, tab, 0);
	cli = kl_crypto_create(KL_CRYPTO_OPENSSL);
	FZ_CHECK(wk && cli);
	memset(k, 0x41, 32);
	FZ_CHECK(kl_derive(cli, KL_KDF_S2S_PSK, k, 32, NULL, 0, s2s_psk) == 0);
	FZ_CHECK(kl_client_dh_public(cli, MUK, 32, pub_ue) == 0);
	FZ_CHECK(kl_client_dh_public(cli, PEER_KEY, 32, pub_peer) == 0);
	clock_now = CLOCK_START;
}

/* A fresh worker and server-to-server state, and the clock back at its start. */
static void restart_clock(void)
{
	kl_worker_destroy(wk);
	kl_s2s_destroy(s2s);
	s2s = kl_s2s_create(64, 64, 16, 30, 300);
	FZ_CHECK(s2s);
	ecfg.s2s = s2s;
	wk = kl_worker_create(&ecfg, tab, 0);
	FZ_CHECK(wk);
	clock_now = CLOCK_START;
}

/* The transport keys of a request under psk into cr (auth, encr, salt). */
static void transport_keys(struct kl_client_req *cr, const struct kl_mikey_req *r)
{
	struct kl_hmac_key ch[KL_PRF_MAX_CHUNKS];
	int nch = kl_prf_key_init((enum kl_prf)r->prf, cr->psk, cr->psk_len, ch, KL_PRF_MAX_CHUNKS);
	struct kl_mikey_tk_op tk = { .chunks = ch, .rand = r->rand, .auth_key = cr->auth_key,
				     .encr_key = cr->encr_key, .salt_key = cr->salt_key,
				     .csb_id = r->csb_id, .nchunks = (uint8_t)nch, .rand_len = 16,
				     .cs_id = 0xFF };

	FZ_CHECK(nch > 0 && kl_mikey_transport_keys_burst(cli, &tk, 1) == 1);
}

static int is_id(const uint8_t *id, uint16_t len, const char *name)
{
	return len == strlen(name) && !memcmp(id, name, len);
}

/* Every server-to-server message in the outbox: a kind 6 or 7 request from this server to the
 * one peer, its MAC good under the s2s keys. */
static void check_outbox(void)
{
	const struct kl_s2s_msg *m;
	unsigned n = kl_engine_outbox(wk, &m);

	FZ_CHECK(n <= KL_ENGINE_OUTBOX);
	for (unsigned i = 0; i < n; i++) {
		struct kl_mikey_req r;
		struct kl_client_req cr = { .psk = s2s_psk, .psk_len = 32 };
		struct kl_hmac_key auth;
		uint8_t mac[20];

		FZ_CHECK(m[i].peer == 0 && m[i].len <= KL_MIKEY_REQ_MAX);
		FZ_CHECK(kl_mikey_parse_req(m[i].buf, m[i].len, &r) == KL_DROP_NONE);
		FZ_CHECK(r.kind == KL_KIND_PEERPV || r.kind == KL_KIND_PUSH);
		FZ_CHECK(is_id(r.id, r.id_len, "keyline.fuzz"));
		transport_keys(&cr, &r);
		kl_hmac_key_init(KL_HASH_SHA1, cr.auth_key, 20, &auth);
		FZ_CHECK(kl_hmac(cli, &auth, m[i].buf, r.mac_off, mac) == 0);
		FZ_CHECK(memcmp(mac, r.mac, 20) == 0);
		kl_memzero(&cr, sizeof(cr));
	}
}

/* Kind 5 between the two local UEs: the other UE's request (role 3 - role, p = P_OTHER) into
 * buf, signed, its keys in cr. @return its length, 0 when r is no such request. */
static uint16_t prose_partner(const struct kl_mikey_req *r, struct kl_client_req *cr,
			      uint8_t *buf)
{
	static uint8_t rand[16];
	int from_ue = is_id(r->id, r->id_len, UE);
	const char *other = from_ue ? PEER_UE : UE;

	if (r->kind != KL_KIND_PROSE ||
	    !is_id(r->tlv[KL_TLVI_PEER_UE], r->tlv_len[KL_TLVI_PEER_UE], other))
		return 0;
	memcpy(rand, r->rand, 16);
	rand[0] ^= 0x5A;
	*cr = (struct kl_client_req){ .psk = from_ue ? PEER_KEY : MUK, .psk_len = 32, .buf = buf,
				      .cap = 600 };
	cr->spec = (struct kl_mikey_req_spec){
		.rand = rand, .ts = clock_now, .csb_id = r->csb_id ^ 0x5A5A5A5Au, .prf = r->prf,
		.id = (const uint8_t *)other, .id_len = (uint16_t)strlen(other),
		.kind = KL_KIND_PROSE, .peer_ue = r->id, .peer_ue_len = r->id_len,
		.peer_server = r->tlv[KL_TLVI_PEER_SERVER],
		.peer_server_len = r->tlv_len[KL_TLVI_PEER_SERVER], .contrib = P_OTHER,
		.role = (uint8_t)(3 - r->tlv[KL_TLVI_ROLE][0]) };
	FZ_CHECK(kl_client_sign(cli, cr, 1) == 1);
	return cr->len;
}

/* Answers with keys, all kinds. */
static uint64_t answered(const struct kl_worker_stats *st)
{
	uint64_t n = 0;

	for (unsigned k = 0; k < KL_KIND__COUNT; k++)
		n += st->counter[KL_CNT_ANSWERED_MBMS + k];
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t in[1024], out[4096], in2[600], out2[1024];
	struct kl_client_req cr, cr2;
	struct kl_mikey_req r;
	struct kl_client_result res;
	struct kl_pkt p[2];
	const struct kl_worker_stats *st;
	uint64_t rx0, ans0, drops0 = 0, drops1 = 0, want_ans = 0;
	int resign = 0;
	unsigned np = 0;
	uint8_t peer = 0;
	size_t len;

	init_once();
	if (size < 1 || size - 1 > sizeof(in))
		return 0;
	len = size - 1;
	memcpy(in, data + 1, len);
	clock_now += SEC(1000);
	if (clock_now > CLOCK_END)
		restart_clock();
	memset(&cr, 0, sizeof(cr));
	if ((data[0] & 1) && kl_mikey_parse_req(in, len, &r) == KL_DROP_NONE) {
		const uint8_t *psk = is_id(r.id, r.id_len, UE)		? MUK
				     : is_id(r.id, r.id_len, PEER_UE)	? PEER_KEY
				     : is_id(r.id, r.id_len, EMSE)	? PSK2
				     : is_id(r.id, r.id_len, PEER_SRV) ? s2s_psk
									: NULL;

		if (psk) {
			/* T near the clock (data[0] bits pick the offset, sometimes outside the skew) */
			int64_t off = ((int64_t)(data[0] >> 1) - 64) * 2;
			struct kl_hmac_key auth;

			kl_put64(in + 12, clock_now + (uint64_t)(off * (int64_t)SEC(1)));
			r.ts = kl_be64(in + 12);
			cr.spec.rand = r.rand;
			cr.spec.csb_id = r.csb_id;
			cr.spec.prf = r.prf;
			cr.spec.kind = r.kind;
			cr.psk = psk;
			cr.psk_len = psk == PSK2 ? 48 : 32;
			transport_keys(&cr, &r);
			if (r.kind == KL_KIND_PUSH) { /* its key data came in clear */
				struct kl_aescm_op op = { .key = cr.encr_key, .salt = cr.salt_key,
							  .in = in + r.encr_off, .out = in + r.encr_off,
							  .ntp_ts = r.ts, .csb_id = r.csb_id,
							  .len = r.encr_len };

				FZ_CHECK(kl_aescm_burst(cli, &op, 1) == 1);
			}
			kl_hmac_key_init(KL_HASH_SHA1, cr.auth_key, 20, &auth);
			FZ_CHECK(kl_hmac(cli, &auth, in, r.mac_off, in + r.mac_off) == 0);
			resign = 1;
			if ((data[0] & 2) && prose_partner(&r, &cr2, in2))
				p[np++] = (struct kl_pkt){ .in = in2, .out = out2, .in_len = cr2.len,
							   .out_cap = sizeof(out2) };
		}
		if (is_id(r.id, r.id_len, PEER_SRV))
			peer = 1; /* from the peer's address */
	}
	st = kl_worker_stats(wk);
	rx0 = st->counter[KL_CNT_RX];
	ans0 = answered(st);
	for (unsigned d = 1; d < KL_DROP__COUNT; d++)
		drops0 += st->drop[d];
	p[np++] = (struct kl_pkt){ .in = in, .out = out,
				   .in_len = (uint16_t)(len > 65535 ? 65535 : len),
				   .out_cap = sizeof(out), .peer = peer };
	kl_engine_serve(wk, clock_now, p, np);
	kl_table_quiescent(tab, 0);
	check_outbox();
	kl_engine_tick(wk, clock_now);
	check_outbox();
	for (unsigned d = 1; d < KL_DROP__COUNT; d++)
		drops1 += st->drop[d];
	FZ_CHECK(st->counter[KL_CNT_RX] == rx0 + np);
	for (unsigned i = 0; i < np; i++) {
		FZ_CHECK(p[i].drop < KL_DROP__COUNT);
		FZ_CHECK((p[i].out_len == 0) == (p[i].drop != KL_DROP_NONE));
		drops0 += p[i].out_len == 0;
	}
	FZ_CHECK(drops1 == drops0);
	if (np == 2) { /* the partner's answer verifies too */
		FZ_CHECK(p[0].out_len && kl_client_verify(cli, &cr2, out2, p[0].out_len, clock_now, 60,
							  &res) == 0);
		want_ans += !res.is_error;
	}
	if (!p[np - 1].out_len)
		return 0;
	FZ_CHECK(p[np - 1].out_len <= 3 * len);
	FZ_CHECK(resign); /* answered although nobody holding the key signed it: a MAC bypass */
	if (resign) {
		uint16_t n = p[np - 1].out_len;
		int rc = kl_client_verify(cli, &cr, out, n, clock_now, 60, &res);

		FZ_CHECK(rc == 0);
		if (res.is_error) {
			FZ_CHECK(n <= len);
		} else {
			FZ_CHECK(answered(st) == ans0 + want_ans + 1);
			/* kind 4 for the other local UE: its public value */
			if (r.kind == KL_KIND_DH &&
			    is_id(r.tlv[KL_TLVI_PEER_UE], r.tlv_len[KL_TLVI_PEER_UE], PEER_UE))
				FZ_CHECK(res.x25519 && !memcmp(res.x25519, pub_peer, 32));
			if (r.kind == KL_KIND_DH &&
			    is_id(r.tlv[KL_TLVI_PEER_UE], r.tlv_len[KL_TLVI_PEER_UE], UE))
				FZ_CHECK(res.x25519 && !memcmp(res.x25519, pub_ue, 32));
			/* kind 5 with its partner in the burst: the partner's p */
			if (np == 2) {
				uint8_t want[32];

				FZ_CHECK(kl_client_prose_p(cli, cr2.psk, 32, P_OTHER, want) == 0);
				FZ_CHECK(res.nkeys == 1 && res.keys[0].key_len == 32 &&
					 !memcmp(res.keys[0].key, want, 32));
			}
		}
	}
	kl_memzero(&cr, sizeof(cr));
	return 0;
}

/* KL_FUZZ_STATS=1: say at exit how far the inputs got (a corpus that never gets past the MAC
 * check fuzzes only the parser). */
__attribute__((destructor)) static void fuzz_engine_stats(void)
{
	const struct kl_worker_stats *st;

	if (!wk || !getenv("KL_FUZZ_STATS"))
		return;
	st = kl_worker_stats(wk);
	for (unsigned c = 0; c < KL_CNT__COUNT; c++)
		fprintf(stderr, "%s=%llu ", kl_counter_name(c), (unsigned long long)st->counter[c]);
	for (unsigned d = 1; d < KL_DROP__COUNT; d++)
		fprintf(stderr, "%s=%llu ", kl_drop_name(d), (unsigned long long)st->drop[d]);
	fputc('\n', stderr);
}

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
 * The engine's clock moves 1000 s per input, so earlier inputs never make later ones replays.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>

#include "fuzz_common.h"
#include "kl_eal_rundir.h"
#include "kl_engine.h"

#define SEC(s) ((uint64_t)(s) << 32)

static struct kl_table *tab;
static struct kl_worker *wk;
static struct kl_crypto *cli;
static uint64_t clock_now;

static const uint8_t MUK[32] = "fuzz-muk-0123456789abcdef-012345";
static const uint8_t PSK2[48] = "fuzz-emse-psk-48-bytes-0123456789abcdef-0123456";
static const char *UE = "ue@fuzz.example";
static const char *EMSE = "emse@fuzz.example";

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
	wk = kl_worker_create(&ec, tab, 0);
	cli = kl_crypto_create(KL_CRYPTO_OPENSSL);
	FZ_CHECK(wk && cli);
	clock_now = SEC(3900000000u);
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
	static uint8_t in[1024], out[4096];
	struct kl_client_req cr;
	struct kl_mikey_req r;
	struct kl_client_result res;
	struct kl_pkt p;
	const struct kl_worker_stats *st;
	uint64_t rx0, ans0, drops0 = 0, drops1 = 0;
	int resign = 0;
	size_t len;

	init_once();
	if (size < 1 || size - 1 > sizeof(in))
		return 0;
	len = size - 1;
	memcpy(in, data + 1, len);
	clock_now += SEC(1000);
	memset(&cr, 0, sizeof(cr));
	if ((data[0] & 1) && kl_mikey_parse_req(in, len, &r) == KL_DROP_NONE) {
		int is_ue = r.id_len == strlen(UE) && !memcmp(r.id, UE, r.id_len);
		int is_emse = r.id_len == strlen(EMSE) && !memcmp(r.id, EMSE, r.id_len);

		if (is_ue || is_emse) {
			/* T near the clock (data[0] bits pick the offset, sometimes outside the skew) */
			int64_t off = ((int64_t)(data[0] >> 1) - 64) * 2;

			kl_put64(in + 12, clock_now + (uint64_t)(off * (int64_t)SEC(1)));
			cr.spec.rand = r.rand;
			cr.spec.csb_id = r.csb_id;
			cr.spec.prf = r.prf;
			cr.spec.kind = r.kind;
			cr.psk = is_ue ? MUK : PSK2;
			cr.psk_len = is_ue ? 32 : 48;
			{
				struct kl_hmac_key ch[KL_PRF_MAX_CHUNKS], auth;
				struct kl_mikey_tk_op tk;
				int nch = kl_prf_key_init((enum kl_prf)r.prf, cr.psk, cr.psk_len, ch, KL_PRF_MAX_CHUNKS);

				tk = (struct kl_mikey_tk_op){ .chunks = ch, .rand = r.rand, .auth_key = cr.auth_key,
							      .encr_key = cr.encr_key, .salt_key = cr.salt_key,
							      .csb_id = r.csb_id, .nchunks = (uint8_t)nch,
							      .rand_len = 16, .cs_id = 0xFF };
				FZ_CHECK(nch > 0 && kl_mikey_transport_keys_burst(cli, &tk, 1) == 1);
				kl_hmac_key_init(KL_HASH_SHA1, cr.auth_key, 20, &auth);
				FZ_CHECK(kl_hmac(cli, &auth, in, r.mac_off, in + r.mac_off) == 0);
			}
			resign = 1;
		}
	}
	st = kl_worker_stats(wk);
	rx0 = st->counter[KL_CNT_RX];
	ans0 = answered(st);
	for (unsigned d = 1; d < KL_DROP__COUNT; d++)
		drops0 += st->drop[d];
	p = (struct kl_pkt){ .in = in, .out = out, .in_len = (uint16_t)(len > 65535 ? 65535 : len),
			     .out_cap = sizeof(out) };
	kl_engine_serve(wk, clock_now, &p, 1);
	kl_table_quiescent(tab, 0);
	for (unsigned d = 1; d < KL_DROP__COUNT; d++)
		drops1 += st->drop[d];
	FZ_CHECK(st->counter[KL_CNT_RX] == rx0 + 1);
	FZ_CHECK(p.drop < KL_DROP__COUNT);
	FZ_CHECK((p.out_len == 0) == (p.drop != KL_DROP_NONE));
	FZ_CHECK(drops1 == drops0 + (p.out_len == 0));
	if (!p.out_len)
		return 0;
	FZ_CHECK(p.out_len <= 3 * len);
	FZ_CHECK(resign); /* answered although nobody holding the key signed it: a MAC bypass */
	if (resign) {
		int rc = kl_client_verify(cli, &cr, out, p.out_len, clock_now, 60, &res);

		FZ_CHECK(rc == 0);
		if (res.is_error)
			FZ_CHECK(p.out_len <= len);
		else
			FZ_CHECK(answered(st) == ans0 + 1);
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

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writes a pcap of real keyline traffic for the interop test: client-signed requests, the
 * engine's responses and error messages, in Ethernet/IPv4/UDP frames on port 2269, and prints
 * one JSON line per frame with what an independent tool must find in it (test keys only: a
 * throw-away population made here).
 *   mikey_pcap_gen OUT.pcap
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>

#include "kl_eal_rundir.h"
#include "kl_engine.h"

static FILE *pcap;
static unsigned frame;

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void write_frame(const uint8_t *payload, uint16_t len, int to_server)
{
	uint8_t f[2048], rec[16];
	uint16_t ulen = (uint16_t)(8 + len), iplen = (uint16_t)(20 + ulen);
	uint32_t sum = 0;
	const uint8_t cli[4] = { 192, 0, 2, 10 }, srv[4] = { 192, 0, 2, 1 };

	memset(f, 0, 42);
	memcpy(f, to_server ? "\x02\x00\x00\x00\x00\x01" : "\x02\x00\x00\x00\x00\x02", 6);
	memcpy(f + 6, to_server ? "\x02\x00\x00\x00\x00\x02" : "\x02\x00\x00\x00\x00\x01", 6);
	f[12] = 0x08;
	f[14] = 0x45;
	kl_put16(f + 16, iplen);
	f[22] = 64;
	f[23] = 17;
	memcpy(f + 26, to_server ? cli : srv, 4);
	memcpy(f + 30, to_server ? srv : cli, 4);
	for (int i = 14; i < 34; i += 2)
		sum += kl_be16(f + i);
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	kl_put16(f + 24, (uint16_t)~sum);
	kl_put16(f + 34, to_server ? 40000 : KL_MIKEY_PORT);
	kl_put16(f + 36, to_server ? KL_MIKEY_PORT : 40000);
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

static void hex(const char *name, const uint8_t *b, size_t n)
{
	printf("\"%s\":\"", name);
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\"");
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
	c = kl_crypto_create(KL_CRYPTO_OPENSSL);
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
	fclose(pcap);
	kl_worker_destroy(w);
	kl_crypto_destroy(c);
	kl_table_reader_unregister(t, 0);
	kl_table_free(t);
	return 0;
}

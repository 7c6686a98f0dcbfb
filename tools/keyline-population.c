/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-population: write or show the parameter file of a deterministic TEST population
 * (load tests and labs only; anyone with the file can compute every key).
 *
 *   keyline-population --seed N --ues N [--groups N] [--emses N] [--imsis N] [--appids N]
 *                      [--e2m-keys N] [--period S] [--now NTP_SECONDS] -o FILE
 *   keyline-population --show FILE [--index I]
 *
 * --show prints the parameters and, for one index, identities and key check values (kl_kcv),
 * never key bytes. Bad arguments: one line on stderr, exit 2. I/O errors: exit 1.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_population.h"

#define NTP_UNIX_OFFSET 2208988800ull

__attribute__((format(printf, 1, 2), noreturn)) static void usage_err(const char *fmt, ...)
{
	va_list ap;

	fputs("keyline-population: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	exit(2);
}

static uint64_t num(const char *opt, const char *s, uint64_t max)
{
	uint64_t v = 0;

	if (!s || !*s)
		usage_err("%s: missing value", opt);
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9' || v > (UINT64_MAX - (uint64_t)(*c - '0')) / 10)
			usage_err("%s: not a decimal number", opt);
		v = v * 10 + (uint64_t)(*c - '0');
	}
	if (v > max)
		usage_err("%s: out of range (max %" PRIu64 ")", opt, max);
	return v;
}

static void kcv_hex(const uint8_t *key, size_t len, char out[2 * KL_KCV_LEN + 1])
{
	uint8_t k[KL_KCV_LEN];

	if (kl_kcv(key, len, k)) {
		strcpy(out, "??????");
		return;
	}
	snprintf(out, 2 * KL_KCV_LEN + 1, "%02X%02X%02X", k[0], k[1], k[2]);
}

static void help(void)
{
	puts("usage: keyline-population --seed N --ues N [--groups N] [--emses N] [--imsis N]\n"
	     "                          [--appids N] [--e2m-keys N] [--period S] [--now NTP_S]\n"
	     "                          [--pairs N] [--services LIST] -o FILE\n"
	     "       keyline-population --show FILE [--index I] [--server-id ID]\n"
	     "Writes/shows the parameters of a deterministic TEST population (load tests and labs\n"
	     "only: the keys follow from the seed). --show prints key check values, never keys.\n"
	     "--pairs N: peer servers vlr-<i>.pop.keyline.test (i < N) with pair keys K({X, P}),\n"
	     "the same for both servers; a keylined with identity X imports its keys with every\n"
	     "peer P != X. --services LIST (mbms,hm,dh,prose): the UEs' services; default mbms,hm\n"
	     "with --pairs, else mbms. --show --server-id ID: the pair key of ID with peer I\n"
	     "(default ID vlr-0.pop.keyline.test).");
}

static int show(const char *path, uint64_t index, const char *server_id)
{
	struct kl_pop_params p;
	char err[256], kcv[8], kcv2[8], svc[64];
	int rc;

	rc = kl_pop_read_file(path, &p, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "keyline-population: --show: %s\n", err);
		return rc == -EINVAL ? 2 : 1;
	}
	printf("population (TEST keys, load tests and labs only)\n"
	       "seed %" PRIu64 "\nues %" PRIu32 "\ngroups %" PRIu32 "\nemses %" PRIu32
	       "\nimsis %" PRIu32 "\nappids %" PRIu32 "\ne2m-keys %u\nnow %" PRIu64
	       "\nmsk-period %" PRIu32 "\n",
	       p.seed, p.ues, p.groups, p.emses, p.imsis, p.appids, (unsigned)p.e2m_keys_per_imsi,
	       p.now_ntp >> 32, p.msk_period_s);
	printf("pairs %" PRIu32 "\nservices %s\n", p.pairs,
	       kl_service_format(kl_pop_services(&p), svc, sizeof(svc)));
	if (index >= p.ues && index >= p.emses && index >= p.imsis && index >= p.appids &&
	    index >= p.pairs) {
		fprintf(stderr, "keyline-population: --index %" PRIu64 " beyond the population\n", index);
		return 2;
	}
	printf("index %" PRIu64 "\n", index);
	if (index < p.ues) {
		struct kl_pop_ue ue;

		if (kl_pop_ue(&p, (uint32_t)index, &ue))
			return 1;
		kcv_hex(ue.muk, sizeof(ue.muk), kcv);
		printf("ue %s muk-kcv %s groups", ue.impi, kcv);
		for (unsigned j = 0; j < ue.ngroups; j++)
			printf(" %02x%02x%02x:%u", ue.groups[j].domain[0], ue.groups[j].domain[1],
			       ue.groups[j].domain[2], ue.groups[j].group);
		putchar('\n');
		for (unsigned j = 0; j < ue.ngroups; j++) {
			struct kl_group g;

			if (kl_pop_group(&p, ue.groups[j].group, NULL, &g))
				return 1;
			kcv_hex(g.current.key, sizeof(g.current.key), kcv);
			kcv_hex(g.next.key, sizeof(g.next.key), kcv2);
			printf("group %u current msk-id 0x%08" PRIX32 " kcv %s valid %" PRIu64 "..%" PRIu64
			       " next msk-id 0x%08" PRIX32 " kcv %s valid %" PRIu64 "..%" PRIu64 "\n",
			       ue.groups[j].group, g.current.msk_id, kcv, g.current.valid_from >> 32,
			       g.current.valid_to >> 32, g.next.msk_id, kcv2, g.next.valid_from >> 32,
			       g.next.valid_to >> 32);
			kl_memzero(&g, sizeof(g));
		}
		kl_memzero(&ue, sizeof(ue));
	}
	if (index < p.emses) {
		struct kl_pop_emse e;

		if (kl_pop_emse(&p, (uint32_t)index, &e))
			return 1;
		kcv_hex(e.psk, sizeof(e.psk), kcv);
		printf("emse %s psk-kcv %s\n", e.id, kcv);
		kl_memzero(&e, sizeof(e));
	}
	if (index < p.imsis) {
		for (unsigned k = 0; k < p.e2m_keys_per_imsi; k++) {
			struct kl_pop_e2m e;

			if (kl_pop_e2m(&p, (uint32_t)index, k, &e))
				return 1;
			kcv_hex(e.key, sizeof(e.key), kcv);
			printf("imsi %s e2m key %u key-id 0x%08" PRIX32 " kcv %s\n", e.imsi, k, e.key_id, kcv);
			kl_memzero(&e, sizeof(e));
		}
	}
	if (index < p.appids) {
		struct kl_pop_appid a;

		if (kl_pop_appid(&p, (uint32_t)index, &a))
			return 1;
		printf("appid %s imsi %s\n", a.id, a.imsi);
	}
	if (index < p.pairs) {
		struct kl_pop_pair k;

		if (kl_pop_pair(&p, (uint32_t)index, server_id, strlen(server_id), &k))
			return 1;
		kcv_hex(k.key, sizeof(k.key), kcv);
		if (strlen(server_id) == k.peer_len && !memcmp(server_id, k.peer, k.peer_len))
			printf("pair %s: the server itself (no key)\n", k.peer);
		else
			printf("pair %s with %s kcv %s\n", server_id, k.peer, kcv);
		kl_memzero(&k, sizeof(k));
	}
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_SEED = 256, O_UES, O_GROUPS, O_EMSES, O_IMSIS, O_APPIDS, O_E2M, O_PERIOD, O_NOW,
	       O_SHOW, O_INDEX, O_HELP, O_PAIRS, O_SERVICES, O_SERVER_ID };
	static const struct option opts[] = {
		{ "seed", required_argument, NULL, O_SEED },	 { "ues", required_argument, NULL, O_UES },
		{ "groups", required_argument, NULL, O_GROUPS }, { "emses", required_argument, NULL, O_EMSES },
		{ "imsis", required_argument, NULL, O_IMSIS },	 { "appids", required_argument, NULL, O_APPIDS },
		{ "e2m-keys", required_argument, NULL, O_E2M },	 { "period", required_argument, NULL, O_PERIOD },
		{ "now", required_argument, NULL, O_NOW },	 { "show", required_argument, NULL, O_SHOW },
		{ "index", required_argument, NULL, O_INDEX },	 { "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, O_HELP },		 { "pairs", required_argument, NULL, O_PAIRS },
		{ "services", required_argument, NULL, O_SERVICES },
		{ "server-id", required_argument, NULL, O_SERVER_ID }, { NULL, 0, NULL, 0 },
	};
	struct kl_pop_params p = { .groups = 16, .emses = 100, .imsis = 1000, .appids = 0,
				   .e2m_keys_per_imsi = 4, .msk_period_s = 3600 };
	const char *out = NULL, *show_path = NULL, *server_id = "vlr-0.pop.keyline.test";
	unsigned bad;
	int have_seed = 0, have_ues = 0, have_index = 0, c, rc;
	uint64_t index = 0, now_s = 0;
	char err[256];

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:", opts, NULL)) != -1) {
		switch (c) {
		case O_SEED: p.seed = num("--seed", optarg, UINT64_MAX); have_seed = 1; break;
		case O_UES: p.ues = (uint32_t)num("--ues", optarg, KL_POP_MAX_UES); have_ues = 1; break;
		case O_GROUPS: p.groups = (uint32_t)num("--groups", optarg, KL_POP_MAX_GROUPS); break;
		case O_EMSES: p.emses = (uint32_t)num("--emses", optarg, KL_POP_MAX_EMSES); break;
		case O_IMSIS: p.imsis = (uint32_t)num("--imsis", optarg, KL_POP_MAX_IMSIS); break;
		case O_APPIDS: p.appids = (uint32_t)num("--appids", optarg, KL_POP_MAX_APPIDS); break;
		case O_E2M: p.e2m_keys_per_imsi = (uint8_t)num("--e2m-keys", optarg, KL_TABLE_E2M_RING_MAX); break;
		case O_PERIOD: p.msk_period_s = (uint32_t)num("--period", optarg, KL_POP_MAX_PERIOD); break;
		case O_NOW: now_s = num("--now", optarg, UINT32_MAX); break;
		case O_SHOW: show_path = optarg; break;
		case O_INDEX: index = num("--index", optarg, UINT32_MAX); have_index = 1; break;
		case O_PAIRS: p.pairs = (uint32_t)num("--pairs", optarg, KL_POP_MAX_PAIRS); break;
		case O_SERVICES:
			if (kl_service_parse(optarg, &p.services, &bad))
				usage_err("--services: item %u is not mbms, hm, dh or prose, or is "
					  "listed twice", bad);
			break;
		case O_SERVER_ID:
			if (!*optarg || strlen(optarg) > KL_TABLE_ID_MAX)
				usage_err("--server-id: 1..%u bytes", KL_TABLE_ID_MAX);
			server_id = optarg;
			break;
		case 'o': out = optarg; break;
		case O_HELP: help(); return 0;
		/* by position: what was typed may be a key in the wrong place */
		case ':': usage_err("argument %d: needs a value", optind - 1);
		default: usage_err("argument %d: unknown option", optind - 1);
		}
	}
	if (optind < argc)
		usage_err("argument %d: unexpected (not shown)", optind);
	if (show_path) {
		if (out || have_seed || have_ues)
			usage_err("--show takes only --index and --server-id");
		return show(show_path, index, server_id);
	}
	if (have_index || strcmp(server_id, "vlr-0.pop.keyline.test"))
		usage_err("--index and --server-id need --show");
	if (!out)
		usage_err("missing -o FILE");
	if (!have_seed)
		usage_err("missing --seed");
	if (!have_ues)
		usage_err("missing --ues");
	if (!now_s)
		now_s = (uint64_t)time(NULL) + NTP_UNIX_OFFSET;
	p.now_ntp = now_s << 32;
	if (kl_pop_params_check(&p, err, sizeof(err)))
		usage_err("%s", err);
	rc = kl_pop_write_file(out, &p);
	if (rc) {
		fprintf(stderr, "keyline-population: -o: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}

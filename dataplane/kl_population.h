/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline test population: a deterministic set of UEs, MBMS key groups, EMSEs, E2M keys and
 * application identities, computed from a seed and a few counts.
 *
 * THESE ARE TEST KEYS, for load tests and labs only: anybody who knows the seed knows every key.
 * Never import a population into a server that serves real subscribers.
 *
 * The server's import and the load generator agree without sharing keys: the population file
 * holds only the parameters, and every generator is a pure function of (parameters, index), so
 * the i-th UE can be computed without reading anything else. Generation needs no DPDK; only
 * kl_pop_import writes into a key table (link kl_population, not kl_popgen, to get it).
 *
 * Key material: root = HMAC-SHA-256("keyline-population v1 TEST KEYS", seed as 8 bytes BE);
 * each key = HMAC-SHA-256(root, label || 0x00 || index (4, BE) [|| second index (4, BE)]),
 * truncated to the key length. Labels: "muk", "msk" (group, key number), "emse",
 * "e2m" (IMSI index, k), "e2m-rand" (IMSI index, k).
 * Pair keys (PROTOCOL.md section 9) have their own stream: K({X, P}) = HMAC-SHA-256(root,
 * "pair" || 0x00 || len(A) (2, BE) || A || len(B) (2, BE) || B), A and B the two server
 * identities sorted (bytewise, a prefix first), so that two servers X and P importing the same
 * population hold the same key. The population's peer servers are "vlr-<i>.pop.keyline.test"
 * for i < pairs; a server imports its pair key with every one of them that is not itself.
 * Services: UEs get the file's services (KL_SVC() bits); without them (0) mbms and hm when the
 * population has pair keys (pairs > 0), else mbms.
 */
#ifndef KL_POPULATION_H
#define KL_POPULATION_H

#include <stddef.h>
#include <stdint.h>

#include "kl_table.h" /* plain structs only; no DPDK header */

#ifdef __cplusplus
extern "C" {
#endif

#define KL_POP_FILE_MAGIC "keyline-population 1"
#define KL_POP_MAX_UES 100000000u      /* "ue%08u" */
#define KL_POP_MAX_GROUPS 65535u       /* key group 1..groups */
#define KL_POP_MAX_EMSES 1000000u      /* "emse%06u" */
#define KL_POP_MAX_IMSIS 100000000u
#define KL_POP_MAX_APPIDS 1000000u     /* "app%06u" */
#define KL_POP_MAX_PERIOD 31536000u    /* one year */
#define KL_POP_MAX_PAIRS 10000u        /* "vlr-%u.pop.keyline.test" */
#define KL_POP_ID_MAX 64

/* Key Domain ID of every group: MCC 001, MNC 01 (00 F1 10). */
extern const uint8_t kl_pop_domain[3];

struct kl_pop_params {
	uint64_t seed;
	uint32_t ues, groups, emses, imsis, appids;
	uint8_t e2m_keys_per_imsi; /* 1..KL_TABLE_E2M_RING_MAX */
	uint64_t now_ntp;	   /* NTP timestamp (seconds << 32); the file keeps whole seconds */
	uint32_t msk_period_s;	   /* 2..KL_POP_MAX_PERIOD */
	/* Optional in the file (absent: 0), so that older files stay valid: */
	uint32_t pairs;	   /* peer servers with pair keys, 0..KL_POP_MAX_PAIRS */
	uint8_t services;  /* the UEs' KL_SVC() bits; 0: kl_pop_services' default */
	/* Not in the file: the importing server's identity (kl_pop_import loads its pair keys
	 * with the population's peers); NULL: no pair keys are imported. */
	const char *server_id;
	uint16_t server_id_len;
};

struct kl_pop_ue {
	char impi[KL_POP_ID_MAX]; /* "ue%08u@ims.mnc001.mcc001.3gppnetwork.org" */
	uint16_t impi_len;
	uint8_t muk[32];
	struct kl_group_ref groups[KL_TABLE_UE_GROUPS];
	uint8_t ngroups; /* 1 (group 1 + i % groups), 0 when there are no groups */
};

struct kl_pop_emse {
	char id[KL_POP_ID_MAX]; /* "emse%06u.corp.example" */
	uint16_t id_len;
	uint8_t psk[32];
};

struct kl_pop_e2m {
	char imsi[KL_TABLE_IMSI_MAX + 1]; /* "00101%010u", NUL-terminated */
	uint8_t key[32];		  /* e2m_int_key */
	uint32_t key_id;		  /* low 32 bits of the (generated) AV RAND; distinct per k */
	uint64_t expires;		  /* 0 = never */
};

struct kl_pop_appid {
	char id[KL_POP_ID_MAX]; /* "app%06u@factory.example" */
	uint16_t id_len;
	char imsi[KL_TABLE_IMSI_MAX + 1]; /* IMSI of index i % imsis */
};

/* The pair key of a server with population peer i. */
struct kl_pop_pair {
	char peer[KL_POP_ID_MAX]; /* "vlr-<i>.pop.keyline.test" */
	uint16_t peer_len;
	uint8_t key[32];
};

struct kl_pop_stats {
	uint32_t ues, groups, emses, imsis, e2m_keys, appids, pairs;
	uint64_t elapsed_ns;
};

/** Check parameter ranges. @return 0 or -EINVAL (msg, if given, says which). */
int kl_pop_params_check(const struct kl_pop_params *p, char *err, size_t errlen);

/* Generators: pure functions of (params, index). @return 0, -EINVAL (index out of range, bad
 * params) or -EIO (HMAC failed). Outputs hold key bytes: wipe them with kl_memzero after use. */
int kl_pop_ue(const struct kl_pop_params *p, uint32_t i, struct kl_pop_ue *out);
/** Key group g (1..groups): current MSK valid [now - period/2, now + period/2), next MSK
 * valid for the period after; MSK IDs g << 16 | key number (1..65535, from now / period). */
int kl_pop_group(const struct kl_pop_params *p, uint32_t g, struct kl_group_ref *ref,
		 struct kl_group *out);
int kl_pop_emse(const struct kl_pop_params *p, uint32_t i, struct kl_pop_emse *out);
/** The k-th newest (k = 0 newest) e2m_int_key of IMSI index i. */
int kl_pop_e2m(const struct kl_pop_params *p, uint32_t i, unsigned k, struct kl_pop_e2m *out);
int kl_pop_appid(const struct kl_pop_params *p, uint32_t i, struct kl_pop_appid *out);
/** The pair key K({own, peer i}) (own: a server identity, 1..KL_TABLE_ID_MAX bytes). */
int kl_pop_pair(const struct kl_pop_params *p, uint32_t i, const char *own, size_t own_len,
		struct kl_pop_pair *out);
/** The UEs' services: p->services, or mbms|hm when p->pairs > 0, else mbms. */
uint8_t kl_pop_services(const struct kl_pop_params *p);

/** Parameter file (no keys): written with mode 0600. @return 0 or -errno. */
int kl_pop_write_file(const char *path, const struct kl_pop_params *p);
/** Read and validate strictly; err gets "line N: ..." on failure. @return 0, -EINVAL or -errno. */
int kl_pop_read_file(const char *path, struct kl_pop_params *p, char *err, size_t errlen);

struct kl_table;
/** Write the whole population (control thread; UEs in bulk batches of 1024, E2M keys oldest
 * first so the newest ends first; pair keys with every population peer other than
 * p->server_id, when given). Only in the kl_population library (DPDK).
 * @return 0 or the first -errno. */
int kl_pop_import(struct kl_table *t, const struct kl_pop_params *p, struct kl_pop_stats *st);

#ifdef __cplusplus
}
#endif
#endif

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline key table: what the workers read to answer requests.
 *
 * rte_hash tables with lock-free readers (RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF) and RCU
 * (rte_rcu_qsbr): exactly one writer thread (the control thread) adds, replaces and deletes;
 * workers look up in bulk and report quiescence once per loop. An entry is immutable once
 * published: a replacement is a new entry swapped in, and the old one is zeroed and reused only
 * after every registered reader has reported quiescence since the swap.
 *
 * Entries live in preallocated arenas (no allocation after create); PSK and key material is held
 * as precomputed HMAC midstates (struct kl_psk), so a request costs no key setup.
 * Memory target: <= 256 bytes of table memory per UE at 10 M UEs.
 */
#ifndef KL_TABLE_H
#define KL_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "kl_crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KL_TABLE_ID_MAX 128	/* identities: 1..128 bytes */
#define KL_TABLE_PSK_CHUNKS 2	/* PSKs of 1..64 bytes */
#define KL_TABLE_UE_GROUPS 4	/* authorised key groups held per UE */
#define KL_TABLE_E2M_RING_MAX 8 /* e2m_int_keys kept per IMSI (configurable 1..8, default 4) */
#define KL_TABLE_IMSI_MAX 16

/* HMAC midstates of one 256-bit PSK chunk, for both PRFs (a request picks its PRF). 104 bytes. */
struct kl_psk_chunk {
	uint32_t sha1_i[5], sha1_o[5];
	uint32_t sha256_i[8], sha256_o[8];
};

struct kl_psk {
	struct kl_psk_chunk chunk[KL_TABLE_PSK_CHUNKS];
};

/** Expand the chunk states of a PSK for a PRF into crypto key states (out: nchunks entries). */
void kl_psk_expand(const struct kl_psk_chunk *chunks, unsigned nchunks, enum kl_prf prf,
		   struct kl_hmac_key *out);
/** Fill chunk states from a raw PSK of 1..64 bytes. @return nchunks (1..2) or -EINVAL. */
int kl_psk_init(const uint8_t *psk, unsigned len, struct kl_psk_chunk *chunks);

/* A key group is named by Key Domain ID (3 bytes, MCC||MNC) and key group (2 bytes). */
struct kl_group_ref {
	uint8_t domain[3];
	uint16_t group;
};

/* A 64-bit value on a 4-byte boundary: keeps struct kl_ue (and its arena slots) 4-aligned. */
typedef uint64_t kl_u64_a4 __attribute__((aligned(4)));

/* Services a UE may use (PROTOCOL.md sections 4 and 9), one bit each; the kinds of requests
 * they open: mbms kind 0, hm kinds 2 and 3, dh kind 4, prose kind 5. Defined once: names in the
 * admin socket, the store, the Diameter feed and keylinectl come from this list. */
#define KL_SERVICE_LIST(X)                                      \
	X(MBMS, "mbms", "MBMS service keys")                   \
	X(HM, "hm", "VLR token scheme (Hoyle-Mitchell)")       \
	X(DH, "dh", "Diffie-Hellman VLR scheme")               \
	X(PROSE, "prose", "ProSe network-assisted keys")

enum kl_service {
#define KL_X(e, n, d) KL_SVC_##e##_BIT,
	KL_SERVICE_LIST(KL_X)
#undef KL_X
	KL_SVC__COUNT
};
#define KL_SVC(e) ((uint8_t)(1u << KL_SVC_##e##_BIT))
#define KL_SVC_DEFAULT KL_SVC(MBMS) /* a UE written without a service list */
#define KL_SVC_ALL ((uint8_t)((1u << KL_SVC__COUNT) - 1))

/** Name of service bit b ("mbms", ...); NULL out of range. */
const char *kl_service_name(unsigned b);
/**
 * Parse a comma-separated service list ("mbms,hm"; "all" = every service) into bits.
 * @return 0, or -EINVAL (empty, unknown or repeated name: *bad gets its position, 1-based).
 */
int kl_service_parse(const char *s, uint8_t *bits, unsigned *bad);
/** Write bits as a comma-separated list into out (cap bytes). @return out. */
char *kl_service_format(uint8_t bits, char *out, size_t cap);

/* UE (MBMS): IMPI or B-TID -> MUK states, authorised key groups and the MUK's expiry.
 * 40 bytes before the chunk states (ngroups and nchunks share a byte so that the expiry costs
 * 4 bytes per UE, not 8; the services byte costs 4 with its padding): a 1-chunk UE slot is 144
 * bytes. A UE with the dh service carries its X25519 public value P (32 bytes) after its chunks
 * (kl_ue_dh_pub): only dh UEs pay for it (their own arenas, 176 / 280-byte slots). */
struct kl_ue {
	struct kl_group_ref groups[KL_TABLE_UE_GROUPS];
	uint8_t ngroups : 4;	     /* 0..KL_TABLE_UE_GROUPS */
	uint8_t nchunks : 4;	     /* 1..KL_TABLE_PSK_CHUNKS */
	uint8_t kcv[KL_KCV_LEN];     /* of the MUK, for operators (the MUK itself is not kept) */
	uint8_t services;	     /* KL_SVC() bits: what the UE may ask for */
	kl_u64_a4 expires;	     /* the MUK's (GBA Ks_NAF lifetime): NTP timestamp (NTP seconds
					<< 32); 0 = never. From it on (now >= expires) the UE gets
					ERR 12 Unspecified, detail 3 and must bootstrap again */
	struct kl_psk_chunk chunk[]; /* nchunks; UEs with a 1-chunk MUK take 1; then P (dh only) */
};

/**
 * A UE's X25519 public value of the DH VLR scheme (PROTOCOL.md section 9, kind 4):
 * P = X25519(KDF(Kx, FF07, "dh-x25519"), 9), Kx its PSK (MUK as stored), computed by the
 * table's writer whenever the UE's MUK or services are written (the scalar is never kept).
 * @return the 32 bytes inside the entry, NULL when the UE does not have the dh service.
 */
static inline const uint8_t *kl_ue_dh_pub(const struct kl_ue *ue)
{
	if (!ue || !(ue->services & KL_SVC(DH)))
		return NULL;
	return (const uint8_t *)&ue->chunk[ue->nchunks];
}

struct kl_msk {
	uint8_t key[16];
	uint64_t valid_from; /* NTP seconds << 32 (NTP timestamp format) */
	uint64_t valid_to;
	uint32_t msk_id; /* key group (2) || key number (2) */
};

/* MBMS key group: current and (optional) next MSK. */
struct kl_group {
	struct kl_msk current;
	struct kl_msk next;
	uint8_t has_next;
};

/* EMSE: EMSE_Id -> PSK states. */
struct kl_emse {
	uint8_t nchunks;
	uint8_t kcv[KL_KCV_LEN]; /* of the PSK */
	struct kl_psk_chunk chunk[KL_TABLE_PSK_CHUNKS];
};

/* One e2m_int_key: SHA-256 midstates (it is only ever a KDF key), its key id and expiry. */
struct kl_e2m_key {
	uint32_t istate[8], ostate[8];
	uint64_t expires; /* NTP timestamp; 0 = never */
	uint32_t key_id;
	uint8_t kcv[KL_KCV_LEN]; /* of the e2m_int_key */
};

/* IMSI -> the newest N e2m_int_keys, newest first. */
struct kl_e2m {
	uint8_t n;
	struct kl_e2m_key keys[]; /* n <= ring size */
};

/* Peer server identity -> the pair key K(own identity, peer) of PROTOCOL.md section 9: only ever
 * a KDF key (K*x, the s2s PSK), so it is held as HMAC-SHA-256 midstates; its expiry and KCV; and
 * the chunk states of the server-to-server PSK KDF(K(VLRa,VLRb), FF09, "s2s") (section 10),
 * computed when the pair key is written. */
struct kl_pair {
	uint32_t istate[8], ostate[8];
	uint64_t expires; /* NTP timestamp; 0 = never */
	uint8_t kcv[KL_KCV_LEN];
	struct kl_psk_chunk s2s; /* the s2s PSK (32 bytes: one chunk) */
};

/** A pair entry's server-to-server PSK (the requester PSK of kinds 6 and 7, both ways), in the
 * shape of a UE's PSK: chunk states and their count. */
static inline void kl_pair_s2s_psk(const void *entry, const struct kl_psk_chunk **chunk,
				   unsigned *n)
{
	const struct kl_pair *p = (const struct kl_pair *)entry;

	*chunk = &p->s2s;
	*n = 1;
}

/* Application-layer identity -> IMSI. */
struct kl_appid {
	uint8_t imsi_len;
	char imsi[KL_TABLE_IMSI_MAX];
};

/* The kinds of entry, defined once: enum, name (the admin socket's and the store's), plural
 * (counts in stats, /metrics and telemetry), what the entry is keyed by. */
#define KL_TABLE_KIND_LIST(X)                                                  \
	X(UE, "ue", "ues", "IMPI or B-TID")                                    \
	X(GROUP, "group", "groups", "key domain and key group")                \
	X(EMSE, "emse", "emses", "EMSE_Id")                                    \
	X(E2M, "imsi", "imsis", "IMSI (its e2m_int_keys)")                     \
	X(APPID, "appid", "appids", "application-layer identity")              \
	X(PAIR, "pair", "pairs", "peer server identity (the pair key)")

enum kl_table_kind {
#define KL_X(e, n, pl, d) KL_TK_##e,
	KL_TABLE_KIND_LIST(KL_X)
#undef KL_X
	KL_TK__COUNT
};

/** Name of a kind ("ue", "group", "emse", "imsi", "appid", "pair"); NULL out of range. */
const char *kl_table_kind_name(unsigned kind);
/** Plural of a kind's name ("ues", ...); "unknown" out of range. */
const char *kl_table_kind_plural(unsigned kind);
/** The kind of a name. @return 0 or -EINVAL. */
int kl_table_kind_parse(const char *name, enum kl_table_kind *kind);

struct kl_table_params {
	const char *name;   /* unique per process, prefixes the rte_hash names */
	uint32_t max_ues;   /* capacity of each kind */
	uint32_t max_groups;
	uint32_t max_emses;
	uint32_t max_imsis;
	uint32_t max_appids;
	uint32_t max_pairs; /* peer servers with a pair key; 0 = none */
	uint8_t e2m_ring;   /* 1..KL_TABLE_E2M_RING_MAX; 0 = default 4 */
	uint8_t max_readers; /* worker threads that will register */
	int socket_id;
	/* UEs whose MUK is over 32 bytes (two chunks) get their own, smaller arena so that the usual
	 * 32-byte MUK costs one chunk: 0 = max_ues / 32 + 64 (capped at max_ues). */
	uint32_t max_ues_2chunk;
	/* UEs with the dh service (their entry holds P): 0 = max_ues / 16 + 1024, at least
	 * min(max_ues, 65536) (capped at max_ues).
	 * Those with a two-chunk MUK: min(this, the two-chunk maximum) / 8 + 64 (capped at that
	 * minimum). */
	uint32_t max_ues_dh;
};

struct kl_table;

/** Create (EAL must be initialised). @return NULL with rte_errno set. */
struct kl_table *kl_table_create(const struct kl_table_params *p);
/** Free everything; all entry memory is zeroed first. */
void kl_table_free(struct kl_table *t);

/* ---- read side: workers ------------------------------------------------------------------- */
/** Register reader thread id (0..max_readers-1) before its first lookup. @return 0 or -errno. */
int kl_table_reader_register(struct kl_table *t, unsigned reader);
/** Report quiescence: the reader holds no entry pointer from earlier lookups. Once per loop. */
void kl_table_quiescent(struct kl_table *t, unsigned reader);
/** A reader about to block (it holds no entry pointer): writers need not wait for it. */
void kl_table_reader_offline(struct kl_table *t, unsigned reader);
/** Back from blocking: call before the next lookup. */
void kl_table_reader_online(struct kl_table *t, unsigned reader);
/** Unregister (a stopping worker). */
void kl_table_reader_unregister(struct kl_table *t, unsigned reader);

struct kl_table_key {
	const uint8_t *id;
	uint16_t len;
};

/**
 * Bulk lookup of n (<= 64) identities of one kind; out[i] is the entry or NULL when absent.
 * For KL_TK_GROUP the key is the 5 bytes domain || group (big-endian); for KL_TK_E2M it is the
 * IMSI's decimal digits (no NUL), as given to kl_table_push_e2m. Entry pointers stay valid
 * until the reader's next kl_table_quiescent.
 * @return the number found.
 */
unsigned kl_table_lookup_bulk(struct kl_table *t, enum kl_table_kind kind,
			      const struct kl_table_key *keys, unsigned n, const void **out);

/* ---- write side: the control thread only --------------------------------------------------- */
/* Each put returns 0 (added), 1 (replaced) or -errno (-EINVAL bad argument, -ENOSPC kind full, or
 * no spare slot because readers lag). Every write also reclaims entries no reader can still see.
 * The writer-side reads (kl_table_get_*) belong to the control thread too. */
/** Add/replace a UE whose MUK never expires (kl_table_put_ue_exp with expires 0). */
int kl_table_put_ue(struct kl_table *t, const uint8_t *id, uint16_t id_len, const uint8_t *muk,
		    unsigned muk_len, const struct kl_group_ref *groups, unsigned ngroups);
/** Add/replace a UE with its MUK's expiry: an NTP timestamp (NTP seconds << 32), 0 = never.
 * A replacement takes the given expiry (a new MUK brings its own lifetime) and the default
 * services (KL_SVC_DEFAULT; kl_table_put_ue_bulk takes others). */
int kl_table_put_ue_exp(struct kl_table *t, const uint8_t *id, uint16_t id_len,
			const uint8_t *muk, unsigned muk_len, const struct kl_group_ref *groups,
			unsigned ngroups, uint64_t expires);
/** One UE of a bulk write. Initialise it with designated initialisers: members may be added. */
struct kl_ue_put {
	const uint8_t *id;
	const uint8_t *muk;
	const struct kl_group_ref *groups;
	uint16_t id_len;
	uint8_t muk_len;
	uint8_t ngroups;
	uint64_t expires; /* as for kl_table_put_ue_exp; 0 (never) when left out */
	uint8_t services; /* KL_SVC() bits; 0 (left out) = KL_SVC_DEFAULT, also when replacing */
};
/**
 * Bulk add/replace of UEs (a population import, a batch from the HSS feed, a store load):
 * results[i] gets what kl_table_put_ue_exp returned for v[i] (with v[i].expires); a bad entry
 * does not stop the others. A UE with the dh service gets its public value computed here (one
 * X25519 each): -ENOSPC also when the dh UEs' maximum is reached, -EIO when X25519 failed.
 * @return the number of entries written (added or replaced).
 */
unsigned kl_table_put_ue_bulk(struct kl_table *t, const struct kl_ue_put *v, unsigned n,
			      int *results);
int kl_table_put_group(struct kl_table *t, const struct kl_group_ref *ref,
		       const struct kl_group *g);
int kl_table_put_emse(struct kl_table *t, const uint8_t *id, uint16_t id_len, const uint8_t *psk,
		      unsigned psk_len);
/** Push one e2m_int_key (32 bytes) for an IMSI: it becomes the newest; the oldest beyond the
 * ring size is evicted; pushing an existing key id replaces that key in place.
 * @return 0 (key added, the IMSI created if new), 1 (key id already held: replaced) or -errno. */
int kl_table_push_e2m(struct kl_table *t, const char *imsi, const uint8_t key[32], uint32_t key_id,
		      uint64_t expires);
int kl_table_put_appid(struct kl_table *t, const uint8_t *appid, uint16_t len, const char *imsi);
/**
 * Replace a UE's authorised key groups, keeping its MUK states, KCV and expiry (a Diameter feed
 * update that changes only the groups). Like every replacement, the new entry (a copy of the old
 * one's nchunks, chunk states, kcv and expires with the new groups) is swapped in and the old one is retired:
 * a reader sees either the old entry or the new one, never a mix. The new entry is taken from
 * the old one's arena (1- or 2-chunk), so the 2-chunk UE count does not change. ngroups may be 0
 * (groups may then be NULL).
 * @return 1 (replaced), -ENOENT (no such UE), -EINVAL (ngroups > KL_TABLE_UE_GROUPS, groups NULL
 *         with ngroups > 0, bad id), -ENOSPC (no spare slot: readers have not reported
 *         quiescence within the writer's bounded wait).
 */
int kl_table_set_ue_groups(struct kl_table *t, const uint8_t *id, uint16_t id_len,
			   const struct kl_group_ref *groups, unsigned ngroups);
/**
 * Writer-side read of a UE's groups and MUK KCV (control thread only: it uses no RCU, it relies
 * on being the only thread that retires and recycles entries). groups: room for
 * KL_TABLE_UE_GROUPS (the first *ngroups are written); any of groups, ngroups and kcv may be
 * NULL when not wanted. No key material is returned.
 * @return 0, -ENOENT (no such UE) or -EINVAL (t NULL, bad id).
 */
int kl_table_get_ue(struct kl_table *t, const uint8_t *id, uint16_t id_len,
		    struct kl_group_ref *groups, unsigned *ngroups, uint8_t kcv[KL_KCV_LEN]);
/**
 * Writer-side read of a UE's MUK expiry (control thread only, as kl_table_get_ue): *expires gets
 * the NTP timestamp (NTP seconds << 32), 0 = never.
 * @return 0, -ENOENT (no such UE) or -EINVAL (t or expires NULL, bad id).
 */
int kl_table_get_ue_expiry(struct kl_table *t, const uint8_t *id, uint16_t id_len,
			   uint64_t *expires);
/**
 * Writer-side copy of a key group (control thread only, as kl_table_get_ue): current and next
 * MSK with their ids and validity, has_next; *out is zeroed first (padding included). The copy
 * holds the MSK bytes: the caller wipes it (kl_memzero) when done.
 * @return 0, -ENOENT (no such group) or -EINVAL (a NULL argument).
 */
int kl_table_get_group(struct kl_table *t, const struct kl_group_ref *ref, struct kl_group *out);
/**
 * Delete one e2m_int_key of an IMSI by key id. The others keep their order (newest first) in a
 * new entry swapped in for the old one; when the key was the IMSI's last one the IMSI's entry
 * is deleted as by kl_table_del (the E2M count drops).
 * @return 0, -ENOENT (no such IMSI, or the IMSI holds no key with that id), -EINVAL (imsi not
 *         1..15 decimal digits, t NULL), -ENOSPC (no spare slot, as for the other writes).
 */
int kl_table_del_e2m_key(struct kl_table *t, const char *imsi, uint32_t key_id);
/**
 * Replace a UE's services (KL_SVC() bits, at least one), keeping everything else, as
 * kl_table_set_ue_groups does. A UE that gets the dh service gets its public value (computed
 * from its MUK's state), one that loses it loses the value; the entry moves to the arena of its
 * new size. @return 1 (replaced), -ENOENT, -EINVAL, -ENOSPC (also: the dh UEs' maximum
 * reached), -EOPNOTSUPP (the dh service for a UE whose MUK is over 32 bytes: its whole MUK's
 * state is not kept; put the UE again with its MUK) or -EIO (X25519 failed).
 */
int kl_table_set_ue_services(struct kl_table *t, const uint8_t *id, uint16_t id_len,
			     uint8_t services);
/** Writer-side read of a UE's services (control thread only). @return 0, -ENOENT or -EINVAL. */
int kl_table_get_ue_services(struct kl_table *t, const uint8_t *id, uint16_t id_len,
			     uint8_t *services);
/** Writer-side copy of a dh UE's public value (control thread only). @return 0, -ENOENT,
 * -ENODATA (the UE does not have the dh service) or -EINVAL. */
int kl_table_get_ue_dh_pub(struct kl_table *t, const uint8_t *id, uint16_t id_len,
			   uint8_t pub[KL_X25519_LEN]);
/**
 * Add/replace the pair key (1..64 bytes; PROTOCOL.md: 32) shared with peer server peer, with its
 * expiry (NTP timestamp, 0 = never); the s2s PSK's states are derived from it here.
 * @return 0 (added), 1 (replaced) or -errno as the other puts (-EIO: the derivation failed).
 */
int kl_table_put_pair(struct kl_table *t, const uint8_t *peer, uint16_t peer_len,
		      const uint8_t *key, unsigned key_len, uint64_t expires);
/** Writer-side read of a pair key's expiry and KCV (either may be NULL); no key material.
 * @return 0, -ENOENT or -EINVAL. */
int kl_table_get_pair(struct kl_table *t, const uint8_t *peer, uint16_t peer_len,
		      uint64_t *expires, uint8_t kcv[KL_KCV_LEN]);
/** Delete an entry of a kind (group key: 5 bytes). @return 0, -ENOENT or -EINVAL. */
int kl_table_del(struct kl_table *t, enum kl_table_kind kind, const uint8_t *key, uint16_t len);
/** Entries of a kind. */
uint32_t kl_table_count(const struct kl_table *t, enum kl_table_kind kind);
/** Bytes of table memory (hashes + arenas) in use by the table, for the per-UE report. */
uint64_t kl_table_memory(const struct kl_table *t);
/** Reclaim retired entries every reader has passed (also done by each write). */
void kl_table_reclaim(struct kl_table *t);

#ifdef __cplusplus
}
#endif
#endif

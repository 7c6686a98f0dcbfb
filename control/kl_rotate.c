/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline MSK rotation (see kl_rotate.h): per group, read the state (store first, else table),
 * advance it to now (create, pre-deliver, promote, catch up), store the result, then put it into
 * the table. Fresh MSKs come from RAND_priv_bytes; every copy of a key is wiped after use.
 */
#include "kl_rotate.h"
#include "kl_cluster_repl.h"
#include "kl_ctl_stats.h"
#include "kl_elect.h"
#include "kl_etcd.h"
#include "kl_msk_guard.h"
#include "kl_store.h"
#include "kl_store_repl.h"
#include "kl_write.h"
#include "kl_util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define NTP_UNIX_OFFSET 2208988800ull
#define NTP_SEC(s) ((uint64_t)(s) << 32)
#define KN_MASK 0xFFFFu
#define MAX_STEPS 8 /* advance() iterations per call: create/promote/pre-deliver take <= 3 */
/* The MSK-ID guard's value (cluster): AES-KWP(KEK, label | domain | group | MSK ID | valid_from |
 * valid_to | key): the label and the IDs bind a record to its key, so a value moved to another
 * ID does not pass. */
#define GUARD_LABEL "klmsk1"
#define GUARD_PLAIN (6 + 3 + 2 + 4 + 8 + 8 + 16)
#define GUARD_WRAPPED (GUARD_PLAIN + 15)
#define GUARD_CLAIM_TRIES 3 /* a stale claim deleted, then claimed again */
#define GUARD_SWEEP_MAX 256 /* guard records of a group looked at per promotion */

struct rot_group {
	struct kl_rotate_group cfg;
	uint64_t rotations, failures;
};

struct kl_rotate {
	struct kl_table *table;
	struct kl_store *store;
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
	struct kl_ctl_stats *ctl;
	struct kl_elect *elect; /* cluster: only the leader rotates (NULL: standalone) */
	struct kl_etcd *etcd;
	char *prefix;
	int behind; /* the last tick found a group whose replica is behind the catalogue */
	uint64_t due; /* NTP: the next pre-delivery or promotion the last ticks found (none: max) */
	unsigned n;
	struct rot_group g[];
};

enum { LOG_ERROR = 0, LOG_WARNING, LOG_INFO, LOG_DEBUG };

__attribute__((format(printf, 3, 4)))
static void rlog(const struct kl_rotate *r, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->log)
		r->log(r->log_arg, level, msg);
	else if (level <= LOG_INFO)
		fprintf(stderr, "keyline rotate: %s\n", msg);
}

/* NTP timestamp as YYYY-MM-DDTHH:MM:SSZ (era 0). */
static void ntp_str(uint64_t ntp, char out[32])
{
	time_t t = (time_t)((int64_t)(ntp >> 32) - (int64_t)NTP_UNIX_OFFSET);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "ntp %" PRIu64, ntp >> 32);
}

static bool same_ref(const struct kl_group_ref *a, const struct kl_group_ref *b)
{
	return !memcmp(a->domain, b->domain, 3) && a->group == b->group;
}

static bool msk_equal(const struct kl_msk *a, const struct kl_msk *b)
{
	return !CRYPTO_memcmp(a->key, b->key, sizeof(a->key)) && a->msk_id == b->msk_id &&
	       a->valid_from == b->valid_from && a->valid_to == b->valid_to;
}

static bool group_equal(const struct kl_group *a, const struct kl_group *b)
{
	return msk_equal(&a->current, &b->current) && !!a->has_next == !!b->has_next &&
	       (!a->has_next || msk_equal(&a->next, &b->next));
}

static uint16_t next_kn(uint32_t msk_id)
{
	return (uint16_t)((msk_id & KN_MASK) % 65535u + 1u); /* 65535 -> 1, 0 -> 1 */
}

/* A fresh MSK: CSPRNG key, key number kn, valid [from, from + P). */
static int fresh(const struct rot_group *g, uint16_t kn, uint64_t from, struct kl_msk *m)
{
	if ((from >> 32) + g->cfg.period_s > UINT32_MAX)
		return -ERANGE; /* would end after NTP era 0 (2036) */
	if (RAND_priv_bytes(m->key, sizeof(m->key)) != 1) {
		OPENSSL_cleanse(m->key, sizeof(m->key));
		return -EIO;
	}
	m->msk_id = (uint32_t)g->cfg.ref.group << 16 | kn;
	m->valid_from = from;
	m->valid_to = from + NTP_SEC(g->cfg.period_s);
	return 0;
}

/* What advance() made, for the log lines (MSK IDs: the keys stay in the group). */
struct made {
	unsigned n;	   /* fresh MSKs */
	bool changed;	   /* the state changed (fresh MSKs or a promotion) */
	bool current_made; /* the final current is fresh (created / forced / catch-up) */
	bool next_made;	   /* the final next is fresh */
	uint32_t lost_ids[MAX_STEPS]; /* fresh MSKs that did not survive (promoted over) */
	unsigned nlost;
};

/*
 * Bring st (exists: has a current) to now. force: replace the current at once.
 * @return 0 or -errno (st then holds partial work: the caller discards it).
 */
static int advance(const struct rot_group *g, struct kl_group *st, bool exists, uint64_t now,
		   bool force, struct made *mk)
{
	const uint64_t P = NTP_SEC(g->cfg.period_s), D = NTP_SEC(g->cfg.predelivery_s);
	const uint64_t now_s = now & ~(uint64_t)0xFFFFFFFFu; /* fresh validity on whole seconds */
	int rc;

	memset(mk, 0, sizeof(*mk));
	if (!exists || force) {
		uint16_t kn = exists ? next_kn(st->has_next ? st->next.msk_id : st->current.msk_id)
				     : 1;

		if (exists && st->has_next)
			OPENSSL_cleanse(&st->next, sizeof(st->next));
		st->has_next = 0;
		rc = fresh(g, kn, now_s, &st->current);
		if (rc)
			return rc;
		mk->n++;
		mk->changed = true;
		mk->current_made = true;
	}
	for (unsigned i = 0; i < MAX_STEPS; i++) {
		if (st->current.valid_to <= now) { /* current has ended */
			if (st->has_next && st->next.valid_to > now) {
				/* promote */
				OPENSSL_cleanse(&st->current, sizeof(st->current));
				st->current = st->next;
				OPENSSL_cleanse(&st->next, sizeof(st->next));
				st->has_next = 0;
				mk->current_made = mk->next_made;
				mk->next_made = false;
				mk->changed = true;
				continue;
			}
			uint16_t kn = next_kn(st->has_next ? st->next.msk_id : st->current.msk_id);
			/* No next (pre-delivery window 0, or a tick late): the scheduled successor
			 * if its period has not ended yet, else (keyline was down) one from now. */
			uint64_t from = !st->has_next && st->current.valid_to + P > now
						? st->current.valid_to
						: now_s;

			if (mk->current_made && mk->nlost < MAX_STEPS)
				mk->lost_ids[mk->nlost++] = st->current.msk_id;
			if (mk->next_made && mk->nlost < MAX_STEPS)
				mk->lost_ids[mk->nlost++] = st->next.msk_id;
			OPENSSL_cleanse(&st->next, sizeof(st->next));
			st->has_next = 0;
			mk->next_made = false;
			rc = fresh(g, kn, from, &st->current);
			if (rc)
				return rc;
			mk->n++;
			mk->changed = true;
			mk->current_made = true;
			continue;
		}
		if (!st->has_next && now + D >= st->current.valid_to) {
			/* pre-delivery window reached */
			rc = fresh(g, next_kn(st->current.msk_id), st->current.valid_to,
				   &st->next);
			if (rc)
				return rc;
			st->has_next = 1;
			mk->n++;
			mk->changed = true;
			mk->next_made = true;
			continue;
		}
		return 0;
	}
	return 0;
}

static void log_msk(const struct kl_rotate *r, const char *gname, const char *role,
		    const struct kl_msk *m, const char *why)
{
	uint8_t kcv[KL_KCV_LEN];
	char from[32], to[32];

	if (kl_kcv(m->key, sizeof(m->key), kcv))
		memset(kcv, 0, sizeof(kcv));
	ntp_str(m->valid_from, from);
	ntp_str(m->valid_to, to);
	rlog(r, LOG_INFO,
	     "group %s: new MSK 0x%08" PRIX32 " (key %u) kcv %02X%02X%02X valid %s .. %s, %s%s",
	     gname, m->msk_id, (unsigned)(m->msk_id & KN_MASK), kcv[0], kcv[1], kcv[2], from, to,
	     role, why);
}

/* The log lines of the MSKs made (one INFO line each) and the rotation counter. */
static void announce(const struct kl_rotate *r, struct rot_group *g, const char *gname,
		     const struct kl_group *st, const struct made *mk, bool force, bool exists)
{
	for (unsigned i = 0; i < mk->nlost; i++)
		rlog(r, LOG_DEBUG, "group %s: MSK 0x%08" PRIX32 " expired before use (catch-up)",
		     gname, mk->lost_ids[i]);
	if (mk->current_made)
		log_msk(r, gname, "current", &st->current,
			force ? " (forced rotation)" : exists ? "" : " (group created)");
	if (mk->next_made && st->has_next)
		log_msk(r, gname, "next", &st->next, "");
	g->rotations += mk->n;
	kl_ctl_add(r->ctl, KL_CTL_ROTATIONS, mk->n);
}

/* ---- cluster: leadership and the MSK-ID guard (kl_elect.h, kl_msk_guard.h) ------------------ */

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void guard_plain(const struct kl_group_ref *ref, const struct kl_msk *m,
			uint8_t p[GUARD_PLAIN])
{
	memcpy(p, GUARD_LABEL, 6);
	memcpy(p + 6, ref->domain, 3);
	put_be(p + 9, ref->group, 2);
	put_be(p + 11, m->msk_id, 4);
	put_be(p + 15, m->valid_from, 8);
	put_be(p + 23, m->valid_to, 8);
	memcpy(p + 31, m->key, sizeof(m->key));
}

/* A guard value back into an MSK: 0, or -EBADMSG (another KEK, damaged, another group or ID
 * when msk_id is non-zero). */
static int guard_decode(const struct kl_rotate *r, const struct kl_group_ref *ref,
			uint32_t msk_id, const uint8_t *v, size_t len, struct kl_msk *m)
{
	uint8_t p[GUARD_WRAPPED];
	long n = len <= sizeof(p) ? kl_store_kek_wrap(r->store, 0, v, len, p, sizeof(p)) : -EINVAL;
	int rc = -EBADMSG;

	if (n == GUARD_PLAIN && !memcmp(p, GUARD_LABEL, 6) && !memcmp(p + 6, ref->domain, 3) &&
	    get_be(p + 9, 2) == ref->group && (!msk_id || get_be(p + 11, 4) == msk_id)) {
		m->msk_id = (uint32_t)get_be(p + 11, 4);
		m->valid_from = get_be(p + 15, 8);
		m->valid_to = get_be(p + 23, 8);
		memcpy(m->key, p + 31, sizeof(m->key));
		rc = 0;
	}
	OPENSSL_cleanse(p, sizeof(p));
	return rc;
}

/* Delete a guard record unless it was created again meanwhile (create_revision compared). */
static int guard_delete(struct kl_rotate *r, const uint8_t *key, size_t klen, int64_t create_rev)
{
	struct kl_etcd_cmp cmp = { .key = key, .key_len = klen, .target = KL_ETCD_CREATE,
				   .op = KL_ETCD_EQUAL, .number = create_rev };
	struct kl_etcd_op del = { .kind = KL_ETCD_OP_DELETE, .key = key, .key_len = klen };
	struct kl_etcd_txn_result t;
	int rc = kl_etcd_txn(r->etcd, &cmp, 1, &del, 1, NULL, 0, &t);

	if (!rc)
		kl_etcd_txn_result_free(&t);
	return rc;
}

/*
 * Claim m's MSK ID for m (a fresh MSK). Another node's claim whose validity has not ended wins:
 * m becomes that MSK. @return 0 ours, 1 replaced by the claimed MSK, -errno with err set.
 */
static int guard_claim(struct kl_rotate *r, const struct rot_group *g, const char *gname,
		       struct kl_msk *m, uint64_t now, char *err, size_t errlen)
{
	uint8_t p[GUARD_PLAIN], w[GUARD_WRAPPED];
	struct kl_msk other;
	int rc = -EIO;
	long wl;

	guard_plain(&g->cfg.ref, m, p);
	wl = kl_store_kek_wrap(r->store, 1, p, sizeof(p), w, sizeof(w));
	if (wl <= 0) {
		OPENSSL_cleanse(p, sizeof(p));
		kl_errf(err, errlen, "group %s: cannot wrap MSK 0x%08" PRIX32 " for the guard", gname,
			m->msk_id);
		return -EIO;
	}
	OPENSSL_cleanse(p, sizeof(p));
	for (unsigned t = 0; t < GUARD_CLAIM_TRIES; t++) {
		struct kl_msk_claim cl;
		char key[1024];
		size_t klen;
		int e = kl_msk_claim(r->etcd, r->prefix, gname, m->msk_id, w, (size_t)wl, &cl);

		if (e) {
			kl_errf(err, errlen, "group %s: MSK 0x%08" PRIX32 ": guard claim in etcd: %s (%s)",
				gname, m->msk_id, kl_etcd_strerror(e), kl_etcd_errmsg(r->etcd));
			return e == KL_ETCD_EUNREACHABLE ? -ENOTCONN : -EIO;
		}
		if (cl.ours) {
			kl_msk_claim_free(&cl);
			return 0;
		}
		if (guard_decode(r, &g->cfg.ref, m->msk_id, cl.value, cl.value_len, &other)) {
			kl_msk_claim_free(&cl);
			kl_errf(err, errlen, "group %s: the guard record of MSK 0x%08" PRIX32
				" does not unwrap under this node's KEK (or is not this group's)",
				gname, m->msk_id);
			rc = -EBADMSG;
			break;
		}
		if (other.valid_to > now) {
			/* claimed first by another node (or by us before a write that failed) */
			kl_msk_claim_free(&cl);
			OPENSSL_cleanse(m, sizeof(*m));
			*m = other;
			OPENSSL_cleanse(&other, sizeof(other));
			rlog(r, LOG_INFO, "group %s: MSK 0x%08" PRIX32 " was claimed before: using that "
			     "MSK", gname, m->msk_id);
			return 1;
		}
		/* ended: an earlier pass of the key numbers, or a claim whose group write never
		 * happened: free the ID and claim it again */
		OPENSSL_cleanse(&other, sizeof(other));
		klen = kl_msk_guard_key(r->prefix, gname, m->msk_id, key, sizeof(key));
		rc = klen ? guard_delete(r, (const uint8_t *)key, klen, cl.create_revision)
			  : KL_ETCD_EINVAL;
		kl_msk_claim_free(&cl);
		if (rc) {
			kl_errf(err, errlen, "group %s: MSK 0x%08" PRIX32 ": cannot drop an ended guard "
				"record: %s (%s)", gname, m->msk_id, kl_etcd_strerror(rc),
				kl_etcd_errmsg(r->etcd));
			rc = rc == KL_ETCD_EUNREACHABLE ? -ENOTCONN : -EIO;
			break;
		}
		rlog(r, LOG_DEBUG, "group %s: ended guard record of MSK 0x%08" PRIX32 " dropped",
		     gname, m->msk_id);
		rc = -EIO;
		kl_errf(err, errlen, "group %s: MSK 0x%08" PRIX32 ": guard claim did not settle",
			gname, m->msk_id);
	}
	OPENSSL_cleanse(w, sizeof(w));
	return rc;
}

/* Claim the fresh MSKs of st (mk). @return 0 or -errno with err set (nothing stored). */
static int guard_fresh(struct kl_rotate *r, const struct rot_group *g, const char *gname,
		       struct kl_group *st, const struct made *mk, uint64_t now, char *err,
		       size_t errlen)
{
	int rc = 0;

	if (mk->current_made)
		rc = guard_claim(r, g, gname, &st->current, now, err, errlen);
	if (rc >= 0 && mk->next_made && st->has_next)
		rc = guard_claim(r, g, gname, &st->next, now, err, errlen);
	return rc < 0 ? rc : 0;
}

/* After a promotion: delete the guard records of this group's MSKs that have ended (neither
 * current nor next), so their key numbers can come round again. Failures only delay that. */
static void guard_sweep(struct kl_rotate *r, const struct rot_group *g, const char *gname,
			const struct kl_group *st, uint64_t now)
{
	char pfx[1024];
	size_t plen = kl_msk_guard_key(r->prefix, gname, 0, pfx, sizeof(pfx));
	struct kl_etcd_range rr;
	unsigned dropped = 0;
	int rc;

	if (plen < 8)
		return;
	plen -= 8; /* <prefix>/msk/<group>/ */
	rc = kl_etcd_range_page(r->etcd, pfx, plen, NULL, 0, GUARD_SWEEP_MAX, 0, &rr);
	if (rc) {
		rlog(r, LOG_WARNING, "group %s: guard records not swept: %s (%s)", gname,
		     kl_etcd_strerror(rc), kl_etcd_errmsg(r->etcd));
		return;
	}
	for (size_t i = 0; i < rr.n; i++) {
		struct kl_msk m;

		if (guard_decode(r, &g->cfg.ref, 0, rr.kvs[i].value, rr.kvs[i].value_len, &m))
			continue; /* not ours to judge */
		OPENSSL_cleanse(m.key, sizeof(m.key));
		if (m.valid_to > now || m.msk_id == st->current.msk_id ||
		    (st->has_next && m.msk_id == st->next.msk_id))
			continue;
		if (!guard_delete(r, rr.kvs[i].key, rr.kvs[i].key_len, rr.kvs[i].create_revision))
			dropped++;
	}
	kl_etcd_range_free(&rr);
	if (dropped)
		rlog(r, LOG_DEBUG, "group %s: %u guard record%s of ended MSKs dropped", gname, dropped,
		     dropped > 1 ? "s" : "");
}

/* May this node rotate now? 0 yes (standalone, or the leader); -EPERM not the leader (err
 * names the leader). */
static int may_rotate(struct kl_rotate *r, char *err, size_t errlen)
{
	struct kl_elect_status es;

	if (!r->elect)
		return 0;
	kl_elect_status(r->elect, &es);
	if (es.role != KL_ELECT_LEADER) {
		kl_errf(err, errlen, "not the rotation leader (leader: %s)",
			es.leader[0] ? es.leader : "none right now");
		r->behind = 1; /* looked at again when this node leads */
		return -EPERM;
	}
	return 0;
}

/*
 * Has the replica applied the catalogue's newest record of this group (every write of an earlier
 * leader)? One read of the record's mod_revision, compared with the replica's stamp: a quiet
 * catalogue moves no watch, so the replica's revision alone cannot tell. A write that lands
 * after this read is caught by the group write's compare. @return 1 yes, 0 not yet, -errno
 * (err set).
 */
static int group_fresh(struct kl_rotate *r, const struct rot_group *g, const char *gname,
		       char *err, size_t errlen)
{
	uint8_t key[5];
	char ekey[1024];
	size_t klen;
	struct kl_etcd_range rr;
	int64_t stamp = 0, mod;
	int rc;

	memcpy(key, g->cfg.ref.domain, 3);
	key[3] = (uint8_t)(g->cfg.ref.group >> 8);
	key[4] = (uint8_t)g->cfg.ref.group;
	klen = kl_cluster_key(r->prefix, "group", key, sizeof(key), ekey, sizeof(ekey));
	if (!klen) {
		kl_errf(err, errlen, "group %s: catalogue key too long", gname);
		return -EINVAL;
	}
	rc = kl_etcd_get(r->etcd, ekey, klen, &rr);
	if (rc) {
		kl_errf(err, errlen, "group %s: read from etcd: %s (%s)", gname, kl_etcd_strerror(rc),
			kl_etcd_errmsg(r->etcd));
		return rc == KL_ETCD_EUNREACHABLE ? -ENOTCONN : -EIO;
	}
	mod = rr.n ? rr.kvs[0].mod_revision : 0;
	kl_etcd_range_free(&rr);
	rc = kl_store_stamp(r->store, "group", key, sizeof(key), &stamp);
	if (rc) {
		kl_errf(err, errlen, "group %s: replica stamp: %s", gname, strerror(-rc));
		return rc;
	}
	/* held at that revision or later; or absent from both (a tombstone, or never written) */
	return mod ? stamp >= mod : stamp <= 0;
}

/* One group: read, advance, store, table. @return 1 changed, 0 unchanged, -errno. */
static int step(struct kl_rotate *r, struct rot_group *g, uint64_t now, bool force,
		uint32_t *msk_id, char *err, size_t errlen)
{
	struct kl_group st, tab;
	struct made mk;
	bool in_store = false, in_table, exists;
	struct kl_write_result res;
	struct kl_writer wr = { 0 };
	struct kl_write w;
	char gname[16];
	uint32_t old_current = 0;
	int rc;

	kl_write_group_name(&g->cfg.ref, gname);
	memset(&st, 0, sizeof(st));
	memset(&tab, 0, sizeof(tab));
	memset(&w, 0, sizeof(w));
	/* cluster: followers leave the group to the leader (the watch brings its writes); the
	 * leader starts from the catalogue's newest state of the group */
	if (r->elect) {
		if (may_rotate(r, err, errlen))
			return 0;
		rc = group_fresh(r, g, gname, err, errlen);
		if (rc < 0)
			goto fail;
		if (!rc) {
			r->behind = 1;
			kl_errf(err, errlen, "group %s: this node's replica has not applied the "
				"catalogue's newest record of the group yet (try again)", gname);
			return force ? -EAGAIN : 0;
		}
	}
	rc = kl_table_get_group(r->table, &g->cfg.ref, &tab);
	if (rc && rc != -ENOENT) {
		kl_errf(err, errlen, "group %s: key table read: %s", gname, strerror(-rc));
		goto fail;
	}
	in_table = rc == 0;
	if (r->store) {
		rc = kl_store_get_group(r->store, &g->cfg.ref, &st);
		if (rc && rc != -ENOENT) {
			const char *m = kl_store_last_error(r->store);

			kl_errf(err, errlen, "group %s: store read: %s", gname,
				m && m[0] ? m : strerror(-rc));
			goto fail;
		}
		in_store = rc == 0;
	}
	exists = in_store || in_table;
	if (!in_store && in_table)
		st = tab; /* the table's state (not stored yet) is the base */
	if (exists)
		old_current = st.current.msk_id;
	rc = advance(g, &st, exists, now, force, &mk);
	if (rc) {
		kl_errf(err, errlen, "group %s: cannot make a new MSK: %s", gname,
			rc == -EIO ? "the random generator failed" : strerror(-rc));
		goto fail;
	}
	if (r->elect && mk.n) {
		/* one MSK per MSK ID across the cluster: claim before anything is stored */
		rc = guard_fresh(r, g, gname, &st, &mk, now, err, errlen);
		if (rc)
			goto fail;
	}
	if (r->elect) {
		if (!kl_elect_is_leader(r->elect)) {
			/* leadership ended meanwhile: the next leader does it (from the guard) */
			rlog(r, LOG_WARNING, "group %s: no longer the rotation leader: nothing written",
			     gname);
			kl_write_wipe(&w);
			OPENSSL_cleanse(&st, sizeof(st));
			OPENSSL_cleanse(&tab, sizeof(tab));
			kl_errf(err, errlen, "lost the rotation leadership during the rotation");
			return force ? -EPERM : 0;
		}
	}
	/* store first (when it lacks this state), then the table (when it differs), as every
	 * durable write (kl_write) */
	wr.table = r->table;
	wr.keep_stored = 1; /* the stored MSKs were announced: a later tick retries the table */
	wr.store = r->store && (mk.changed || !in_store) ? r->store : NULL;
	kl_write_group(&w, &g->cfg.ref, &st);
	rc = kl_write_stage(&wr, &w, &res);
	if (rc) {
		const char *m = kl_store_last_error(r->store);

		kl_errf(err, errlen, "group %s: store: %s%s", gname,
			m && m[0] ? m : strerror(-rc),
			rc == -ENOSPC ? " (raise store.map_size_mb)" : "");
		goto fail;
	}
	/* Stored: the new MSKs exist from here on (whatever the table does next). */
	if (r->store)
		announce(r, g, gname, &st, &mk, force, exists);
	if (mk.changed || !in_table || !group_equal(&st, &tab)) {
		rc = kl_write_apply(&wr, &w, &res);
		if (rc < 0) {
			kl_errf(err, errlen, "group %s: key table: %s%s", gname,
				rc == -ENOSPC ? "full for groups" : strerror(-rc),
				r->store ? " (the new state is stored; retried at the next tick)"
					 : "");
			goto fail;
		}
		rc = 1;
	} else {
		rc = 0;
	}
	kl_write_wipe(&w);
	if (!r->store)
		announce(r, g, gname, &st, &mk, force, exists);
	if (r->elect && old_current && st.current.msk_id != old_current)
		guard_sweep(r, g, gname, &st, now);
	if (msk_id)
		*msk_id = st.current.msk_id;
	{
		/* the group's next change: pre-delivery, or the promotion once next is there */
		uint64_t d = st.has_next ? st.current.valid_to
					 : st.current.valid_to - NTP_SEC(g->cfg.predelivery_s);

		if (d > now && d < r->due)
			r->due = d;
	}
	OPENSSL_cleanse(&st, sizeof(st));
	OPENSSL_cleanse(&tab, sizeof(tab));
	return rc;
fail:
	kl_write_wipe(&w);
	OPENSSL_cleanse(&st, sizeof(st));
	OPENSSL_cleanse(&tab, sizeof(tab));
	g->failures++;
	kl_ctl_add(r->ctl, KL_CTL_ROTATION_FAILURES, 1);
	return rc < 0 ? rc : -EIO;
}

struct kl_rotate *kl_rotate_create(const struct kl_rotate_params *p, char *err, size_t errlen)
{
	struct kl_rotate *r;

	if (!p || !p->table || (p->n && !p->groups)) {
		kl_errf(err, errlen, "msk rotation: missing table or groups");
		errno = EINVAL;
		return NULL;
	}
	if (p->elect && (!p->store || !p->etcd || !p->prefix)) {
		kl_errf(err, errlen, "msk rotation: a cluster's rotation needs the store, the etcd "
			"client and the prefix");
		errno = EINVAL;
		return NULL;
	}
	for (unsigned i = 0; i < p->n; i++) {
		const struct kl_rotate_group *g = &p->groups[i];
		char name[16];

		kl_write_group_name(&g->ref, name);
		if (g->period_s < KL_ROTATE_MIN_PERIOD_S || g->period_s > KL_ROTATE_MAX_PERIOD_S) {
			kl_errf(err, errlen, "msk rotation: group %s: period %" PRIu32
				" s out of range (%u..%u)", name, g->period_s,
				KL_ROTATE_MIN_PERIOD_S, KL_ROTATE_MAX_PERIOD_S);
			errno = EINVAL;
			return NULL;
		}
		if (g->predelivery_s >= g->period_s) {
			kl_errf(err, errlen, "msk rotation: group %s: pre-delivery %" PRIu32
				" s must be shorter than the period (%" PRIu32 " s)", name,
				g->predelivery_s, g->period_s);
			errno = EINVAL;
			return NULL;
		}
		for (unsigned k = 0; k < i; k++)
			if (same_ref(&p->groups[k].ref, &g->ref)) {
				kl_errf(err, errlen, "msk rotation: group %s listed twice", name);
				errno = EINVAL;
				return NULL;
			}
	}
	r = calloc(1, sizeof(*r) + (size_t)p->n * sizeof(r->g[0]));
	if (!r) {
		kl_errf(err, errlen, "msk rotation: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	r->table = p->table;
	r->store = p->store;
	r->log = p->log;
	r->log_arg = p->log_arg;
	r->ctl = p->ctl;
	r->elect = p->elect;
	r->etcd = p->etcd;
	r->prefix = p->elect ? strdup(p->prefix) : NULL;
	r->behind = 1; /* until a tick found every group up to date */
	r->due = UINT64_MAX;
	if (p->elect && !r->prefix) {
		free(r);
		kl_errf(err, errlen, "msk rotation: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	r->n = p->n;
	for (unsigned i = 0; i < p->n; i++)
		r->g[i].cfg = p->groups[i];
	return r;
}

int kl_rotate_tick(struct kl_rotate *r, uint64_t now)
{
	int changed = 0, first_err = 0;

	if (!r)
		return -EINVAL;
	r->behind = 0;
	r->due = UINT64_MAX;
	for (unsigned i = 0; i < r->n; i++) {
		char err[320];
		int rc = step(r, &r->g[i], now, false, NULL, err, sizeof(err));

		if (rc < 0) {
			rlog(r, LOG_ERROR, "%s (retried at the next tick)", err);
			if (!first_err)
				first_err = rc;
		} else {
			changed += rc;
		}
	}
	return first_err ? first_err : changed;
}

static struct rot_group *find(struct kl_rotate *r, const struct kl_group_ref *ref)
{
	for (unsigned i = 0; i < r->n; i++)
		if (same_ref(&r->g[i].cfg.ref, ref))
			return &r->g[i];
	return NULL;
}

int kl_rotate_force(struct kl_rotate *r, const struct kl_group_ref *ref, uint64_t now,
		    uint32_t *msk_id, char *err, size_t errlen)
{
	struct rot_group *g;
	char name[16];
	uint32_t id = 0;
	int rc;

	if (!r || !ref) {
		kl_errf(err, errlen, "msk rotation: bad argument");
		return -EINVAL;
	}
	kl_write_group_name(ref, name);
	g = find(r, ref);
	if (!g) {
		kl_errf(err, errlen, "group %s: no MSK rotation configured for it", name);
		return -ENOENT;
	}
	rc = may_rotate(r, err, errlen);
	if (rc)
		return rc; /* a follower: refused, not a failure */
	rc = step(r, g, now, true, &id, err, errlen);
	if (rc < 0) {
		rlog(r, LOG_ERROR, "forced rotation: %s", err);
		return rc;
	}
	if (msk_id)
		*msk_id = id;
	return 0;
}

unsigned kl_rotate_count(const struct kl_rotate *r)
{
	return r ? r->n : 0;
}

int kl_rotate_status(const struct kl_rotate *r, unsigned i, struct kl_rotate_status *st)
{
	const struct rot_group *g;
	struct kl_group cur;

	if (!r || !st || i >= r->n)
		return -ENOENT;
	g = &r->g[i];
	memset(st, 0, sizeof(*st));
	st->ref = g->cfg.ref;
	st->period_s = g->cfg.period_s;
	st->predelivery_s = g->cfg.predelivery_s;
	st->rotations = g->rotations;
	st->failures = g->failures;
	/* What the workers serve: the table. */
	if (kl_table_get_group(r->table, &g->cfg.ref, &cur))
		return 0;
	st->current_id = cur.current.msk_id;
	st->current_from = cur.current.valid_from;
	st->current_to = cur.current.valid_to;
	if (kl_kcv(cur.current.key, sizeof(cur.current.key), st->current_kcv))
		memset(st->current_kcv, 0, sizeof(st->current_kcv));
	if (cur.has_next) {
		st->has_next = 1;
		st->next_id = cur.next.msk_id;
		st->next_from = cur.next.valid_from;
		st->next_to = cur.next.valid_to;
		if (kl_kcv(cur.next.key, sizeof(cur.next.key), st->next_kcv))
			memset(st->next_kcv, 0, sizeof(st->next_kcv));
	}
	OPENSSL_cleanse(&cur, sizeof(cur));
	return 0;
}

void kl_rotate_free(struct kl_rotate *r)
{
	if (r)
		free(r->prefix);
	free(r);
}

int kl_rotate_timeout_ms(const struct kl_rotate *r, uint64_t now)
{
	uint64_t ms;

	if (!r || r->due == UINT64_MAX)
		return -1;
	if (now >= r->due)
		return 0;
	ms = ((r->due - now) * 1000u >> 32) + 1; /* just after the boundary */
	return ms > 60000 ? 60000 : (int)ms;
}

int kl_rotate_ready(struct kl_rotate *r)
{
	char err[8];

	return r && !may_rotate(r, err, sizeof(err)) && !r->behind;
}

int kl_rotate_has(const struct kl_rotate *r, const struct kl_group_ref *g)
{
	struct kl_rotate_status st;

	for (unsigned i = 0; r && g && i < kl_rotate_count(r); i++)
		if (!kl_rotate_status(r, i, &st) && st.ref.group == g->group &&
		    !memcmp(st.ref.domain, g->domain, sizeof(g->domain)))
			return 1;
	return 0;
}

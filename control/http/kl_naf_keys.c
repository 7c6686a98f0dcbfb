/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NAF Key Center's issued keys and blocklists (see kl_naf_keys.h): an in-memory index read
 * by the HTTPS threads under a rwlock, written by the control thread after the store commit;
 * writes from any thread queued to the control thread (eventfd) and group-committed there
 * through control/store/kl_write.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "kl_crypto.h"
#include "kl_naf_keys.h"
#include "kl_siphash.h"
#include "kl_store.h"
#include "kl_store_repl.h"
#include "kl_util.h"
#include "kl_write.h"

#define MAX_KEYS_DEFAULT 1000000u
#define WAIT_MS_DEFAULT 2000u
#define BATCH_MAX_DEFAULT 1024u
#define BLOCK_BUCKETS 256u
#define PURGE_MAX 4096u /* purged per tick: bounds the control thread's time */
#define NAF_SKEY_LEN 32	/* the store's LMDB key of an issued key (kl_store_naf_key) */

struct entry {
	struct entry *next;
	uint64_t hash;	/* of (btid, device_id): an invalidation names those two */
	uint64_t purge; /* when the tick deletes it (purge_at) */
	size_t hpos;	/* its place in the purge heap */
	struct entry *snext; /* by store key (with a store): a replicated deletion names it so */
	uint8_t skey[NAF_SKEY_LEN];
	struct kl_naf_key_info info;
};

struct bentry {
	struct bentry *next;
	uint8_t kind; /* enum kl_naf_block_kind */
	char value[KL_NAF_DEVICE_ID_MAX + 1];
};

enum req_state { Q_QUEUED, Q_TAKEN, Q_DONE };
enum req_kind { R_ISSUE, R_INVALIDATE };

struct req {
	struct req *next;
	pthread_cond_t cv; /* signalled when done: one waiter woken per request */
	uint8_t state, kind, abandoned;
	struct kl_store_naf n; /* issue: the key's fields; invalidate: btid, device_id */
	char serial[KL_NAF_SERIAL_MAX + 1];
	uint8_t key[KL_NAF_KEY_LEN];
	int rc; /* issue: enum kl_naf_issue_rc; invalidate: 0 / -ENOENT / -EIO */
};

/* One write of a batch and what it does to the index after the commit. */
struct op {
	struct kl_write w;
	struct req *req; /* NULL: the control thread's own */
};

struct kl_naf_keys {
	struct kl_store *store;
	struct kl_writer wr;
	unsigned max_keys, wait_ms, batch_max;
	uint64_t keep_s;
	struct kl_sipkey sip;

	pthread_rwlock_t lock; /* the index and the blocklist */
	struct entry **tab;
	struct entry **stab; /* the same entries by store key (with a store), mask as tab */
	uint64_t mask;
	struct entry **heap; /* every entry, a min-heap on purge: the tick reads its top only */
	size_t heap_cap;
	size_t *walk; /* the tick's stack over the heap: 2 * PURGE_MAX + 2 places */
	struct bentry *blk[BLOCK_BUCKETS];
	uint64_t nkeys, ninvalid, nblk[2];

	pthread_mutex_t qlock; /* the queue */
	pthread_cond_t qcond;  /* a waiter gone (kl_naf_keys_close waits for them) */
	pthread_condattr_t cattr; /* CLOCK_MONOTONIC, for the requests' */
	struct req *qhead, **qtail;
	unsigned waiters;
	int closing;
	int efd;

	struct op *ops; /* batch_max + PURGE_MAX: one batch's writes */
	unsigned nops, ops_cap;

	_Atomic uint64_t issued, refused_invalidated, refused_blocked, refused_full, store_failed;
	_Atomic uint64_t commits, batched_writes;
	_Atomic uint64_t applied, apply_failed; /* other nodes' entries (cluster: view()) */
};

/* ---- hashing ---------------------------------------------------------------------------------- */

static uint64_t hash2(const struct kl_naf_keys *k, const char *a, const char *b)
{
	uint8_t buf[KL_NAF_BTID_MAX + 1 + KL_NAF_DEVICE_ID_MAX + 1], out[16];
	size_t al = strlen(a), bl = strlen(b);
	uint64_t h;

	memcpy(buf, a, al);
	buf[al] = 0;
	memcpy(buf + al + 1, b, bl);
	kl_siphash128(&k->sip, buf, al + 1 + bl, out);
	memcpy(&h, out, sizeof(h));
	return h;
}

static int same_id(const struct kl_naf_key_info *i, const struct kl_store_naf *n)
{
	return i->naf_len == n->naf_len && !memcmp(i->naf_id, n->naf_id, n->naf_len) &&
	       !strcmp(i->btid, n->btid) && !strcmp(i->device_id, n->device_id);
}

static int same_naf(const struct kl_store_naf *a, const struct kl_store_naf *b)
{
	return a->naf_len == b->naf_len && !memcmp(a->naf_id, b->naf_id, a->naf_len) &&
	       !strcmp(a->btid, b->btid) && !strcmp(a->device_id, b->device_id);
}

/* Under the lock (either). */
static struct entry *find(const struct kl_naf_keys *k, const struct kl_store_naf *n)
{
	uint64_t h = hash2(k, n->btid, n->device_id);

	for (struct entry *e = k->tab[h & k->mask]; e; e = e->next)
		if (e->hash == h && same_id(&e->info, n))
			return e;
	return NULL;
}

static unsigned bbucket(const struct kl_naf_keys *k, uint8_t kind, const char *v)
{
	return (unsigned)(hash2(k, kind == KL_NAF_BLOCK_DEVICE ? "d" : "s", v) % BLOCK_BUCKETS);
}

static struct bentry *bfind(const struct kl_naf_keys *k, uint8_t kind, const char *v)
{
	for (struct bentry *b = k->blk[bbucket(k, kind, v)]; b; b = b->next)
		if (b->kind == kind && !strcmp(b->value, v))
			return b;
	return NULL;
}

static void info_from(struct kl_naf_key_info *i, const struct kl_store_naf *n)
{
	memset(i, 0, sizeof(*i));
	memcpy(i->btid, n->btid, sizeof(i->btid));
	memcpy(i->naf_id, n->naf_id, n->naf_len);
	i->naf_len = n->naf_len;
	memcpy(i->device_id, n->device_id, sizeof(i->device_id));
	memcpy(i->kcv, n->kcv, sizeof(i->kcv));
	i->issued = n->issued;
	i->expiry = n->expiry;
	i->invalidated = n->invalidated;
}

static void store_from(struct kl_store_naf *n, const struct kl_naf_key_info *i)
{
	memset(n, 0, sizeof(*n));
	memcpy(n->btid, i->btid, sizeof(n->btid));
	memcpy(n->naf_id, i->naf_id, i->naf_len);
	n->naf_len = i->naf_len;
	memcpy(n->device_id, i->device_id, sizeof(n->device_id));
	memcpy(n->kcv, i->kcv, sizeof(n->kcv));
	n->issued = i->issued;
	n->expiry = i->expiry;
	n->invalidated = (uint8_t)i->invalidated;
}

/* ---- the purge heap: entries by the time the tick deletes them ------------------------------- */

/* A key is deleted at its expiry; an invalidated one keep_s later (never with keep_s 0: it is
 * refused for good). */
static uint64_t purge_at(const struct kl_naf_keys *k, const struct kl_naf_key_info *i)
{
	if (!i->invalidated)
		return i->expiry;
	if (!k->keep_s)
		return UINT64_MAX;
	return i->expiry + k->keep_s < i->expiry ? UINT64_MAX : i->expiry + k->keep_s;
}

static void heap_set(struct kl_naf_keys *k, size_t i, struct entry *e)
{
	k->heap[i] = e;
	e->hpos = i;
}

/* Move the entry at i up or down to its place. */
static void heap_fix(struct kl_naf_keys *k, size_t i)
{
	struct entry *e = k->heap[i];

	while (i > 0 && k->heap[(i - 1) / 2]->purge > e->purge) {
		heap_set(k, i, k->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= k->nkeys)
			break;
		if (c + 1 < k->nkeys && k->heap[c + 1]->purge < k->heap[c]->purge)
			c++;
		if (k->heap[c]->purge >= e->purge)
			break;
		heap_set(k, i, k->heap[c]);
		i = c;
	}
	heap_set(k, i, e);
}

/* e, not yet counted in nkeys, joins the heap. */
static int heap_add(struct kl_naf_keys *k, struct entry *e)
{
	if (k->nkeys == k->heap_cap) {
		size_t cap = k->heap_cap ? 2 * k->heap_cap : 1024;
		struct entry **h = realloc(k->heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		k->heap = h;
		k->heap_cap = cap;
	}
	heap_set(k, k->nkeys, e);
	return 0;
}

/* e, still counted in nkeys, leaves the heap. */
static void heap_remove(struct kl_naf_keys *k, struct entry *e)
{
	size_t i = e->hpos, last = k->nkeys - 1;

	if (i != last) {
		heap_set(k, i, k->heap[last]);
		k->nkeys--;
		heap_fix(k, i);
		k->nkeys++;
	}
}

/* ---- index writes (control thread, under the write lock) ------------------------------------ */

static uint64_t sbucket(const struct kl_naf_keys *k, const uint8_t skey[NAF_SKEY_LEN])
{
	uint8_t out[16];
	uint64_t h;

	kl_siphash128(&k->sip, skey, NAF_SKEY_LEN, out);
	memcpy(&h, out, sizeof(h));
	return h & k->mask;
}

/* Under the lock (either): the entry whose store key is skey, or NULL. */
static struct entry *sfind(const struct kl_naf_keys *k, const uint8_t skey[NAF_SKEY_LEN])
{
	for (struct entry *e = k->stab ? k->stab[sbucket(k, skey)] : NULL; e; e = e->snext)
		if (!memcmp(e->skey, skey, NAF_SKEY_LEN))
			return e;
	return NULL;
}

static int idx_put(struct kl_naf_keys *k, const struct kl_store_naf *n)
{
	struct entry *e = find(k, n);

	if (!e) {
		e = calloc(1, sizeof(*e));
		/* the store key: a replicated deletion names the entry by it alone */
		if (!e || (k->stab && kl_store_naf_key(k->store, n, e->skey)) || heap_add(k, e)) {
			free(e);
			return -ENOMEM;
		}
		e->hash = hash2(k, n->btid, n->device_id);
		e->next = k->tab[e->hash & k->mask];
		k->tab[e->hash & k->mask] = e;
		if (k->stab) {
			uint64_t b = sbucket(k, e->skey);

			e->snext = k->stab[b];
			k->stab[b] = e;
		}
		k->nkeys++;
	} else if (e->info.invalidated) {
		k->ninvalid--;
	}
	info_from(&e->info, n);
	e->purge = purge_at(k, &e->info);
	heap_fix(k, e->hpos);
	if (n->invalidated)
		k->ninvalid++;
	return 0;
}

static void idx_del(struct kl_naf_keys *k, const struct kl_store_naf *n)
{
	uint64_t h = hash2(k, n->btid, n->device_id);

	for (struct entry **pp = &k->tab[h & k->mask]; *pp; pp = &(*pp)->next) {
		struct entry *e = *pp;

		if (e->hash == h && same_id(&e->info, n)) {
			*pp = e->next;
			if (k->stab) {
				struct entry **sp = &k->stab[sbucket(k, e->skey)];

				while (*sp && *sp != e)
					sp = &(*sp)->snext;
				if (*sp)
					*sp = e->snext;
			}
			heap_remove(k, e);
			k->nkeys--;
			k->ninvalid -= e->info.invalidated ? 1 : 0;
			kl_memzero(e, sizeof(*e));
			free(e);
			return;
		}
	}
}

static int blk_set(struct kl_naf_keys *k, uint8_t kind, const char *v, int on)
{
	unsigned b = bbucket(k, kind, v);

	for (struct bentry **pp = &k->blk[b]; *pp; pp = &(*pp)->next) {
		if ((*pp)->kind == kind && !strcmp((*pp)->value, v)) {
			if (!on) {
				struct bentry *e = *pp;

				*pp = e->next;
				free(e);
				k->nblk[kind]--;
			}
			return 0;
		}
	}
	if (on) {
		struct bentry *e = calloc(1, sizeof(*e));

		if (!e)
			return -ENOMEM;
		e->kind = kind;
		snprintf(e->value, sizeof(e->value), "%s", v);
		e->next = k->blk[b];
		k->blk[b] = e;
		k->nblk[kind]++;
	}
	return 0;
}

/* ---- serials ---------------------------------------------------------------------------------- */

int kl_naf_serial_norm(const char *in, char out[KL_NAF_SERIAL_MAX + 1])
{
	size_t n = 0;
	int lead = 1;

	if (!in || !*in)
		return -EINVAL;
	for (const char *p = in; *p; p++) {
		char c = *p;

		if (c == ':')
			continue;
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -EINVAL;
		if (lead && c == '0')
			continue;
		lead = 0;
		if (n >= KL_NAF_SERIAL_MAX)
			return -EINVAL;
		out[n++] = c;
	}
	if (!n) {
		if (!strchr(in, '0'))
			return -EINVAL; /* only separators */
		out[n++] = '0';
	}
	out[n] = '\0';
	return 0;
}

/* ---- other nodes' entries (a cluster: kl_store_repl.h kl_store_set_view) ------------------- */

/*
 * The cluster's follower applied an entry of "naf" or "nafblock" that another node wrote or
 * deleted (a watch event, a full resynchronisation's page or deletion) and committed it: the
 * index follows what the store now holds, under the write lock as after our own commits.
 * Control thread (the index's only writer), never inside one of our batches (commit() runs to
 * its end before the control loop polls the cluster). Our own writes coming back are skipped by
 * the store (their stamps) and never get here.
 */
static void view(void *arg, const char *db, const uint8_t *key, size_t len)
{
	struct kl_naf_keys *k = arg;
	int rc, urc = 0;

	if (!strcmp(db, "naf")) {
		struct kl_store_naf n;

		rc = kl_store_naf_get_at(k->store, key, len, &n);
		if (rc && rc != -ENOENT)
			goto failed;
		pthread_rwlock_wrlock(&k->lock);
		if (!rc) {
			urc = idx_put(k, &n);
		} else if (len == NAF_SKEY_LEN) {
			struct entry *e = sfind(k, key);

			if (e) {
				store_from(&n, &e->info);
				idx_del(k, &n);
			}
		}
		pthread_rwlock_unlock(&k->lock);
	} else {
		enum kl_store_naf_block_kind bk;
		char v[KL_STORE_NAF_DEVICE_MAX + 1];

		rc = kl_store_naf_block_get_at(k->store, key, len, &bk, v);
		if (rc && rc != -ENOENT)
			goto failed;
		pthread_rwlock_wrlock(&k->lock);
		urc = blk_set(k,
			      bk == KL_STORE_NAF_SERIAL ? KL_NAF_BLOCK_SERIAL : KL_NAF_BLOCK_DEVICE, v,
			      !rc);
		pthread_rwlock_unlock(&k->lock);
	}
	if (urc)
		goto failed;
	atomic_fetch_add(&k->applied, 1);
	return;
failed: /* the store refused to read it back, or no memory: the index keeps what it had */
	atomic_fetch_add(&k->apply_failed, 1);
}

/* ---- open / close ------------------------------------------------------------------------------ */

static int load_key(void *arg, const struct kl_store_naf *n)
{
	struct kl_naf_keys *k = arg;

	return idx_put(k, n);
}

static int load_block(void *arg, enum kl_store_naf_block_kind kind, const char *value,
		      uint64_t added)
{
	(void)added;
	return blk_set(arg, kind == KL_STORE_NAF_SERIAL ? KL_NAF_BLOCK_SERIAL : KL_NAF_BLOCK_DEVICE,
		       value, 1);
}

static void free_all(struct kl_naf_keys *k)
{
	if (k->tab) {
		for (uint64_t i = 0; i <= k->mask; i++) {
			for (struct entry *e = k->tab[i], *nx; e; e = nx) {
				nx = e->next;
				kl_memzero(e, sizeof(*e));
				free(e);
			}
		}
		free(k->tab);
	}
	free(k->stab);
	free(k->heap);
	free(k->walk);
	for (unsigned i = 0; i < BLOCK_BUCKETS; i++)
		for (struct bentry *b = k->blk[i], *nx; b; b = nx) {
			nx = b->next;
			free(b);
		}
	if (k->ops) {
		kl_memzero(k->ops, sizeof(*k->ops) * k->ops_cap);
		free(k->ops);
	}
	if (k->efd >= 0)
		close(k->efd);
	pthread_rwlock_destroy(&k->lock);
	pthread_mutex_destroy(&k->qlock);
	pthread_cond_destroy(&k->qcond);
	pthread_condattr_destroy(&k->cattr);
	kl_memzero(k, sizeof(*k));
	free(k);
}

struct kl_naf_keys *kl_naf_keys_open_ext(const struct kl_naf_keys_params_ext *p, char *err,
					 size_t errlen)
{
	struct kl_naf_keys *k;
	uint8_t seed[16];
	uint64_t buckets = 64;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!p) {
		snprintf(err, errlen, "naf keys: no parameters");
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "naf keys: out of memory");
		return NULL;
	}
	k->efd = -1;
	pthread_rwlock_init(&k->lock, NULL);
	pthread_mutex_init(&k->qlock, NULL);
	pthread_condattr_init(&k->cattr);
	pthread_condattr_setclock(&k->cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&k->qcond, &k->cattr);
	k->qtail = &k->qhead;
	k->store = p->base.store;
	k->wr = (struct kl_writer){ .store = p->base.store };
	k->max_keys = p->base.max_keys ? p->base.max_keys : MAX_KEYS_DEFAULT;
	k->wait_ms = p->base.wait_ms ? p->base.wait_ms : WAIT_MS_DEFAULT;
	k->batch_max = p->batch_max ? p->batch_max : BATCH_MAX_DEFAULT;
	k->keep_s = p->invalidated_keep_s;
	while (buckets < k->max_keys / 2 && buckets < (1u << 20))
		buckets <<= 1;
	k->mask = buckets - 1;
	k->tab = calloc(buckets, sizeof(*k->tab));
	if (k->store)
		k->stab = calloc(buckets, sizeof(*k->stab));
	k->ops_cap = (k->batch_max > PURGE_MAX ? k->batch_max : PURGE_MAX) + 1;
	k->ops = calloc(k->ops_cap, sizeof(*k->ops));
	k->walk = calloc(2 * PURGE_MAX + 2, sizeof(*k->walk));
	k->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (RAND_bytes(seed, sizeof(seed)) != 1 || !k->tab || (k->store && !k->stab) || !k->ops ||
	    !k->walk || k->efd < 0) {
		snprintf(err, errlen, "naf keys: cannot set up (%s)",
			 k->efd < 0 ? strerror(errno) : "out of memory or no randomness");
		free_all(k);
		return NULL;
	}
	kl_siphash_key(&k->sip, seed);
	kl_memzero(seed, sizeof(seed));
	if (k->store) {
		rc = kl_store_naf_each(k->store, load_key, k, err, errlen);
		if (!rc)
			rc = kl_store_naf_each_blocked(k->store, load_block, k, err, errlen);
		if (rc) {
			if (err && errlen && !err[0])
				snprintf(err, errlen, "naf keys: cannot load from the store: %s",
					 strerror(-rc));
			free_all(k);
			errno = -rc;
			return NULL;
		}
		/* a cluster's follower applies other nodes' entries to the store: told here */
		(void)kl_store_set_view(k->store, "naf", view, k);
		(void)kl_store_set_view(k->store, "nafblock", view, k);
	}
	return k;
}

struct kl_naf_keys *kl_naf_keys_open(const struct kl_naf_keys_params *p, char *err, size_t errlen)
{
	struct kl_naf_keys_params_ext e = { 0 };

	if (!p) {
		snprintf(err, errlen, "naf keys: no parameters");
		return NULL;
	}
	e.base = *p;
	return kl_naf_keys_open_ext(&e, err, errlen);
}

int kl_naf_keys_fd(const struct kl_naf_keys *k)
{
	return k ? k->efd : -1;
}

void kl_naf_keys_close(struct kl_naf_keys *k)
{
	if (!k)
		return;
	if (k->store) {
		(void)kl_store_set_view(k->store, "naf", NULL, NULL);
		(void)kl_store_set_view(k->store, "nafblock", NULL, NULL);
	}
	pthread_mutex_lock(&k->qlock);
	k->closing = 1;
	for (struct req *r = k->qhead, *nx; r; r = nx) {
		nx = r->next;
		r->state = Q_DONE;
		r->rc = r->kind == R_ISSUE ? KL_NAF_STORE_FAILED : -EIO;
		pthread_cond_signal(&r->cv);
	}
	k->qhead = NULL;
	k->qtail = &k->qhead;
	while (k->waiters)
		pthread_cond_wait(&k->qcond, &k->qlock);
	pthread_mutex_unlock(&k->qlock);
	free_all(k);
}

/* ---- batches (control thread) ------------------------------------------------------------------ */

/* What the index will say of n once the batch's ops so far are applied: NULL (absent), or the
 * fields (*out). */
static const struct kl_store_naf *effective(struct kl_naf_keys *k, const struct kl_store_naf *n,
					    struct kl_store_naf *out)
{
	struct entry *e;

	for (unsigned i = k->nops; i-- > 0;) {
		const struct kl_write *w = &k->ops[i].w;

		if (w->op >= KL_WOP_NAF_PUT && w->op <= KL_WOP_NAF_DEL && same_naf(&w->naf, n))
			return w->op == KL_WOP_NAF_DEL ? NULL : &w->naf;
	}
	e = find(k, n);
	if (!e)
		return NULL;
	store_from(out, &e->info);
	return out;
}

static int blocked_locked(struct kl_naf_keys *k, const char *dev, const char *serial)
{
	char s[KL_NAF_SERIAL_MAX + 1];

	if (dev && *dev && bfind(k, KL_NAF_BLOCK_DEVICE, dev))
		return 1;
	return serial && *serial && !kl_naf_serial_norm(serial, s) &&
	       bfind(k, KL_NAF_BLOCK_SERIAL, s);
}

/* Keys in the index plus those the batch adds so far. */
static uint64_t effective_count(struct kl_naf_keys *k)
{
	uint64_t n = k->nkeys;

	for (unsigned i = 0; i < k->nops; i++) {
		const struct kl_write *w = &k->ops[i].w;
		int dup = 0;

		if (w->op != KL_WOP_NAF_PUT || find(k, &w->naf))
			continue;
		for (unsigned j = 0; j < i && !dup; j++)
			dup = k->ops[j].w.op == KL_WOP_NAF_PUT && same_naf(&k->ops[j].w.naf, &w->naf);
		n += !dup;
	}
	return n;
}

/* @return 0, or -ENOSPC when the batch has no room left (many invalidations of many NAF_IDs in
 * one wake-up: the request fails and may be retried). */
static int add_op(struct kl_naf_keys *k, const struct kl_write *w, struct req *r)
{
	if (k->nops >= k->ops_cap)
		return -ENOSPC;
	k->ops[k->nops].w = *w;
	k->ops[k->nops].req = r;
	k->nops++;
	return 0;
}

/* Decide an issue: its result, or an op added (result ISSUED once committed). */
static void plan_issue(struct kl_naf_keys *k, struct req *r)
{
	struct kl_store_naf tmp;
	const struct kl_store_naf *cur;
	struct kl_write w;

	if (blocked_locked(k, r->n.device_id, r->serial)) {
		r->rc = KL_NAF_BLOCKED;
		return;
	}
	cur = effective(k, &r->n, &tmp);
	if (cur && cur->invalidated) {
		r->rc = KL_NAF_INVALIDATED;
		return;
	}
	if (cur && cur->expiry > r->n.issued) {
		r->rc = KL_NAF_ISSUED; /* the same key, stored already (or in this batch) */
		return;
	}
	if (!cur && effective_count(k) >= k->max_keys) {
		r->rc = KL_NAF_FULL;
		return;
	}
	if (kl_write_naf_key(&w, &r->n, r->key)) {
		r->rc = KL_NAF_STORE_FAILED;
		return;
	}
	r->rc = add_op(k, &w, r) ? KL_NAF_STORE_FAILED : KL_NAF_ISSUED;
	kl_write_wipe(&w);
}

/* Invalidate every key of (btid, device_id): ops added (all or none). @return 0, -ENOENT or
 * -EIO (no room left in the batch). */
static int plan_invalidate(struct kl_naf_keys *k, const char *btid, const char *dev,
			   struct req *r)
{
	uint64_t h = hash2(k, btid, dev);
	unsigned n0 = k->nops;
	struct kl_write w;
	int found = 0, full = 0;

	for (struct entry *e = k->tab[h & k->mask]; e; e = e->next) {
		struct kl_store_naf n, tmp;
		const struct kl_store_naf *cur;

		if (e->hash != h || strcmp(e->info.btid, btid) || strcmp(e->info.device_id, dev))
			continue;
		store_from(&n, &e->info);
		cur = effective(k, &n, &tmp);
		if (!cur)
			continue;
		found = 1;
		if (!cur->invalidated && !kl_write_naf_invalidate(&w, cur))
			full |= add_op(k, &w, r);
	}
	/* keys this batch issues that the index does not hold yet */
	for (unsigned i = 0; i < n0; i++) {
		struct kl_write *o = &k->ops[i].w;
		struct kl_store_naf tmp;
		const struct kl_store_naf *cur;

		if (o->op != KL_WOP_NAF_PUT || strcmp(o->naf.btid, btid) ||
		    strcmp(o->naf.device_id, dev) || find(k, &o->naf))
			continue;
		cur = effective(k, &o->naf, &tmp);
		if (!cur)
			continue;
		found = 1;
		if (!cur->invalidated && !kl_write_naf_invalidate(&w, cur))
			full |= add_op(k, &w, r);
	}
	kl_write_wipe(&w);
	if (full) {
		for (unsigned i = n0; i < k->nops; i++)
			kl_write_wipe(&k->ops[i].w);
		k->nops = n0;
		return -EIO;
	}
	return found ? 0 : -ENOENT;
}

/* Commit the batch's ops (one store transaction) and apply them to the index.
 * @return 0, or -errno when nothing was committed (the index unchanged). */
static int commit(struct kl_naf_keys *k, char *msg, size_t msglen)
{
	struct kl_write_result res;
	int rc = 0;

	if (msg && msglen)
		msg[0] = '\0';
	if (!k->nops)
		return 0;
	if (k->store) {
		rc = kl_store_txn_begin(k->store);
		for (unsigned i = 0; !rc && i < k->nops; i++) {
			rc = kl_write_stage(&k->wr, &k->ops[i].w, &res);
			/* a purge or unblock of what the store does not hold changes the index */
			if (rc == -ENOENT && (k->ops[i].w.op == KL_WOP_NAF_DEL ||
					      k->ops[i].w.op == KL_WOP_NAF_UNBLOCK))
				rc = 0;
			if (rc && msg)
				snprintf(msg, msglen, "%s", res.msg);
		}
		if (rc) {
			kl_store_txn_abort(k->store);
		} else {
			rc = kl_store_txn_commit(k->store);
			if (rc && msg)
				snprintf(msg, msglen, "store: commit failed: %s",
					 kl_store_last_error(k->store));
		}
		if (!rc) {
			atomic_fetch_add(&k->commits, 1);
			atomic_fetch_add(&k->batched_writes, k->nops);
		}
	}
	if (!rc) {
		pthread_rwlock_wrlock(&k->lock);
		for (unsigned i = 0; i < k->nops; i++) {
			struct kl_write *w = &k->ops[i].w;
			int urc = 0;

			if (w->op == KL_WOP_NAF_PUT || w->op == KL_WOP_NAF_INVALIDATE)
				urc = idx_put(k, &w->naf);
			else if (w->op == KL_WOP_NAF_DEL)
				idx_del(k, &w->naf);
			else
				urc = blk_set(k, w->naf_block_kind == KL_STORE_NAF_SERIAL
							 ? KL_NAF_BLOCK_SERIAL
							 : KL_NAF_BLOCK_DEVICE,
					      w->naf.device_id, w->op == KL_WOP_NAF_BLOCK);
			if (urc && !rc) { /* durable, but not in memory: out of memory */
				rc = urc;
				if (msg)
					snprintf(msg, msglen, "out of memory for the index");
			}
		}
		pthread_rwlock_unlock(&k->lock);
	}
	for (unsigned i = 0; i < k->nops; i++)
		kl_write_wipe(&k->ops[i].w);
	k->nops = 0;
	return rc;
}

/* Run requests taken from the queue: one batch. */
static void run(struct kl_naf_keys *k, struct req *list)
{
	int rc;

	k->nops = 0;
	/* decisions read the index: the control thread is its only writer, so no lock */
	for (struct req *r = list; r; r = r->next) {
		if (r->kind == R_ISSUE)
			plan_issue(k, r);
		else
			r->rc = plan_invalidate(k, r->n.btid, r->n.device_id, r);
	}
	rc = commit(k, NULL, 0);
	for (struct req *r = list; r; r = r->next) {
		if (r->kind == R_ISSUE) {
			if (rc && r->rc == KL_NAF_ISSUED)
				r->rc = KL_NAF_STORE_FAILED;
		} else if (rc && r->rc == 0) {
			r->rc = -EIO;
		}
	}
}

static void req_free(struct req *r)
{
	pthread_cond_destroy(&r->cv);
	kl_memzero(r, sizeof(*r));
	free(r);
}

void kl_naf_keys_poll(struct kl_naf_keys *k)
{
	struct req *list, **tail, *r;
	uint64_t v;
	unsigned n = 0;

	if (!k)
		return;
	if (read(k->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled; the queue is looked at anyway */
	}
	pthread_mutex_lock(&k->qlock);
	list = k->qhead;
	tail = &list;
	for (r = k->qhead; r && n < k->batch_max; r = r->next, n++) {
		r->state = Q_TAKEN;
		tail = &r->next;
	}
	k->qhead = *tail;
	*tail = NULL;
	if (!k->qhead)
		k->qtail = &k->qhead;
	else /* more than one batch: wake up again */
		(void)!write(k->efd, &(uint64_t){ 1 }, sizeof(uint64_t));
	pthread_mutex_unlock(&k->qlock);
	if (!list)
		return;
	run(k, list);
	pthread_mutex_lock(&k->qlock);
	for (r = list; r;) {
		struct req *nx = r->next;

		r->state = Q_DONE;
		if (r->abandoned) /* its caller gave up waiting: nobody reads it */
			req_free(r);
		else
			pthread_cond_signal(&r->cv);
		r = nx;
	}
	pthread_mutex_unlock(&k->qlock);
}

/* ---- waiting callers (any thread) --------------------------------------------------------------- */

static enum kl_naf_issue_rc count_rc(struct kl_naf_keys *k, enum kl_naf_issue_rc rc)
{
	_Atomic uint64_t *c[] = {
		[KL_NAF_ISSUED] = &k->issued,
		[KL_NAF_INVALIDATED] = &k->refused_invalidated,
		[KL_NAF_BLOCKED] = &k->refused_blocked,
		[KL_NAF_FULL] = &k->refused_full,
		[KL_NAF_STORE_FAILED] = &k->store_failed,
	};

	atomic_fetch_add(c[rc], 1);
	return rc;
}

/* Queue r, wait for it and free it (or leave it to the control thread when it is being
 * committed). An issue's result is counted here, before kl_naf_keys_close may free k: the
 * caller touches k no more. @return r's result, or fail (the wait ran out, or closing). */
static int submit(struct kl_naf_keys *k, struct req *r, int fail)
{
	int kind = r->kind, res = fail, rc = 0;
	struct timespec dl;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += k->wait_ms / 1000;
	dl.tv_nsec += (long)(k->wait_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_cond_init(&r->cv, &k->cattr);
	pthread_mutex_lock(&k->qlock);
	if (k->closing) {
		pthread_mutex_unlock(&k->qlock);
		req_free(r);
		return kind == R_ISSUE ? (int)count_rc(k, (enum kl_naf_issue_rc)fail) : fail;
	}
	r->state = Q_QUEUED;
	*k->qtail = r;
	k->qtail = &r->next;
	k->waiters++;
	(void)!write(k->efd, &(uint64_t){ 1 }, sizeof(uint64_t));
	while (r->state != Q_DONE && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&r->cv, &k->qlock, &dl);
	if (r->state == Q_DONE) {
		res = r->rc;
		req_free(r);
	} else if (r->state == Q_QUEUED) { /* not taken: out of the queue, nothing written */
		struct req **pp = &k->qhead;

		while (*pp != r)
			pp = &(*pp)->next;
		*pp = r->next;
		if (k->qtail == &r->next)
			k->qtail = pp;
		req_free(r);
	} else { /* being committed: the control thread frees it */
		r->abandoned = 1;
	}
	if (kind == R_ISSUE)
		count_rc(k, (enum kl_naf_issue_rc)res);
	k->waiters--;
	if (k->closing) /* kl_naf_keys_close waits for the waiters to go */
		pthread_cond_broadcast(&k->qcond);
	pthread_mutex_unlock(&k->qlock);
	return res;
}

int kl_naf_keys_blocked(struct kl_naf_keys *k, const char *device_id, const char *serial_hex)
{
	int b;

	if (!k)
		return 0;
	pthread_rwlock_rdlock(&k->lock);
	b = blocked_locked(k, device_id, serial_hex);
	pthread_rwlock_unlock(&k->lock);
	return b;
}

static int fill_id(struct kl_store_naf *n, const char *btid, const uint8_t *naf_id,
		   size_t naf_len, const char *device_id)
{
	memset(n, 0, sizeof(*n));
	if (!btid || !device_id || !naf_id || naf_len < 1 || naf_len > KL_NAF_ID_MAX ||
	    strnlen(btid, KL_NAF_BTID_MAX + 1) > KL_NAF_BTID_MAX ||
	    strnlen(device_id, KL_NAF_DEVICE_ID_MAX + 1) > KL_NAF_DEVICE_ID_MAX)
		return -EINVAL;
	snprintf(n->btid, sizeof(n->btid), "%s", btid);
	memcpy(n->naf_id, naf_id, naf_len);
	n->naf_len = (uint16_t)naf_len;
	snprintf(n->device_id, sizeof(n->device_id), "%s", device_id);
	return kl_store_naf_check(n);
}

enum kl_naf_issue_rc kl_naf_keys_issue(struct kl_naf_keys *k, const char *btid,
				       const uint8_t *naf_id, size_t naf_len,
				       const char *device_id, const char *serial_hex,
				       const uint8_t key[KL_NAF_KEY_LEN], uint64_t expiry,
				       uint64_t now)
{
	struct kl_store_naf n;
	struct entry *e;
	struct req *r;
	enum kl_naf_issue_rc rc;

	if (!k)
		return KL_NAF_STORE_FAILED;
	if (!key || fill_id(&n, btid, naf_id, naf_len, device_id) ||
	    (serial_hex && strnlen(serial_hex, 128) >= 128))
		return count_rc(k, KL_NAF_STORE_FAILED);
	n.issued = now;
	n.expiry = expiry;
	/* the fast path: refusals and keys issued already need no write */
	pthread_rwlock_rdlock(&k->lock);
	e = find(k, &n);
	if (blocked_locked(k, device_id, serial_hex))
		rc = KL_NAF_BLOCKED;
	else if (e && e->info.invalidated)
		rc = KL_NAF_INVALIDATED;
	else if (e && e->info.expiry > now)
		rc = KL_NAF_ISSUED;
	else if (!e && k->nkeys >= k->max_keys)
		rc = KL_NAF_FULL;
	else
		rc = (enum kl_naf_issue_rc)-1;
	pthread_rwlock_unlock(&k->lock);
	if ((int)rc >= 0)
		return count_rc(k, rc);
	r = calloc(1, sizeof(*r));
	if (!r || kl_kcv(key, KL_NAF_KEY_LEN, n.kcv)) {
		free(r);
		return count_rc(k, KL_NAF_STORE_FAILED);
	}
	r->kind = R_ISSUE;
	r->n = n;
	memcpy(r->key, key, KL_NAF_KEY_LEN);
	/* the blocklist's form (a serial that has none cannot be blocklisted) */
	if (serial_hex && kl_naf_serial_norm(serial_hex, r->serial))
		r->serial[0] = '\0';
	return (enum kl_naf_issue_rc)submit(k, r, KL_NAF_STORE_FAILED);
}

static int invalidate_args(struct kl_store_naf *n, const char *btid, const char *device_id)
{
	static const uint8_t any = 0;

	return fill_id(n, btid, &any, 1, device_id);
}

int kl_naf_keys_invalidate(struct kl_naf_keys *k, const char *btid, const char *device_id)
{
	struct kl_store_naf n;
	int rc;

	if (!k || invalidate_args(&n, btid, device_id))
		return -EINVAL;
	k->nops = 0;
	rc = plan_invalidate(k, btid, device_id, NULL);
	if (rc) {
		k->nops = 0;
		return rc;
	}
	return commit(k, NULL, 0) ? -EIO : 0;
}

int kl_naf_keys_invalidate_wait(struct kl_naf_keys *k, const char *btid, const char *device_id)
{
	struct req *r;

	if (!k)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	if (invalidate_args(&r->n, btid, device_id)) {
		free(r);
		return -EINVAL;
	}
	r->kind = R_INVALIDATE;
	return submit(k, r, -EIO);
}

int kl_naf_keys_block(struct kl_naf_keys *k, enum kl_naf_block_kind kind, const char *value,
		      int on)
{
	char v[KL_NAF_DEVICE_ID_MAX + 1];
	struct kl_write w;
	int present;

	if (!k || !value || (kind != KL_NAF_BLOCK_DEVICE && kind != KL_NAF_BLOCK_SERIAL))
		return -EINVAL;
	if (kind == KL_NAF_BLOCK_SERIAL ? kl_naf_serial_norm(value, v)
					: snprintf(v, sizeof(v), "%s", value) >= (int)sizeof(v))
		return -EINVAL;
	if (kl_write_naf_block(&w, kind == KL_NAF_BLOCK_SERIAL ? KL_STORE_NAF_SERIAL
							       : KL_STORE_NAF_DEVICE,
			       v, on, (uint64_t)time(NULL)))
		return -EINVAL;
	present = bfind(k, (uint8_t)kind, v) != NULL;
	if (!on && !present)
		return -ENOENT;
	if (present == !!on)
		return 0;
	k->nops = 0;
	(void)add_op(k, &w, NULL); /* an empty batch has room */
	kl_write_wipe(&w);
	return commit(k, NULL, 0) ? -EIO : 0;
}

/* Deletes (one commit) up to PURGE_MAX of the entries whose purge time has come: the heap's top
 * only, walked depth first from the root; a subtree whose root is not due holds none, so a tick
 * costs O(due entries), never a walk of the whole index. */
void kl_naf_keys_tick(struct kl_naf_keys *k, uint64_t now)
{
	struct kl_write w;
	size_t top = 0;

	if (!k)
		return;
	k->nops = 0;
	if (k->nkeys)
		k->walk[top++] = 0;
	while (top && k->nops < PURGE_MAX) { /* at most 2 * PURGE_MAX + 1 places on the stack */
		size_t i = k->walk[--top];
		struct entry *e = k->heap[i];
		struct kl_store_naf n;

		if (e->purge > now)
			continue;
		store_from(&n, &e->info);
		if (!kl_write_naf_del(&w, &n))
			(void)add_op(k, &w, NULL); /* PURGE_MAX < ops_cap */
		for (size_t c = 2 * i + 1; c <= 2 * i + 2 && c < k->nkeys; c++)
			k->walk[top++] = c;
	}
	if (k->nops)
		(void)commit(k, NULL, 0); /* a failure is retried at the next tick */
}

/* ---- listings and stats (control thread) ------------------------------------------------------- */

void kl_naf_keys_list(struct kl_naf_keys *k, int (*cb)(void *arg, const struct kl_naf_key_info *),
		      void *arg)
{
	if (!k || !cb)
		return;
	for (uint64_t i = 0; i <= k->mask; i++)
		for (struct entry *e = k->tab[i]; e; e = e->next)
			if (cb(arg, &e->info))
				return;
}

void kl_naf_keys_list_blocked(struct kl_naf_keys *k,
			      int (*cb)(void *arg, enum kl_naf_block_kind, const char *value),
			      void *arg)
{
	if (!k || !cb)
		return;
	for (unsigned i = 0; i < BLOCK_BUCKETS; i++)
		for (struct bentry *b = k->blk[i]; b; b = b->next)
			if (cb(arg, (enum kl_naf_block_kind)b->kind, b->value))
				return;
}

int kl_naf_keys_lookup(struct kl_naf_keys *k, const char *btid, const uint8_t *naf_id,
		       size_t naf_len, const char *device_id, struct kl_naf_key_info *out)
{
	struct kl_store_naf n;
	struct entry *e;

	if (!k || !out || fill_id(&n, btid, naf_id, naf_len, device_id))
		return -EINVAL;
	pthread_rwlock_rdlock(&k->lock);
	e = find(k, &n);
	if (e)
		*out = e->info;
	pthread_rwlock_unlock(&k->lock);
	return e ? 0 : -ENOENT;
}

void kl_naf_keys_get_stats(struct kl_naf_keys *k, struct kl_naf_keys_stats *s)
{
	memset(s, 0, sizeof(*s));
	if (!k)
		return;
	pthread_rwlock_rdlock(&k->lock);
	s->keys = k->nkeys;
	s->invalidated = k->ninvalid;
	s->blocked_devices = k->nblk[KL_NAF_BLOCK_DEVICE];
	s->blocked_serials = k->nblk[KL_NAF_BLOCK_SERIAL];
	pthread_rwlock_unlock(&k->lock);
	s->issued = atomic_load(&k->issued);
	s->refused_invalidated = atomic_load(&k->refused_invalidated);
	s->refused_blocked = atomic_load(&k->refused_blocked);
	s->refused_full = atomic_load(&k->refused_full);
	s->store_failed = atomic_load(&k->store_failed);
	s->commits = atomic_load(&k->commits);
	s->batched_writes = atomic_load(&k->batched_writes);
	s->applied = atomic_load(&k->applied);
	s->apply_failed = atomic_load(&k->apply_failed);
	pthread_mutex_lock(&k->qlock);
	s->waiting = k->waiters;
	pthread_mutex_unlock(&k->qlock);
}

/* ---- admin (control thread) --------------------------------------------------------------------- */

static int aerr(json_t **answer, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int aerr(json_t **answer, const char *fmt, ...)
{
	char m[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	*answer = json_pack("{s:s}", "error", m);
	return -EINVAL;
}

/* Only "cmd" and the names in allowed (NULL-terminated). @return the first other name or NULL. */
static const char *extra_field(const json_t *req, const char *const *allowed)
{
	const char *name;
	json_t *v;

	json_object_foreach((json_t *)req, name, v) {
		int ok = !strcmp(name, "cmd");

		for (unsigned i = 0; !ok && allowed[i]; i++)
			ok = !strcmp(name, allowed[i]);
		if (!ok)
			return name;
	}
	return NULL;
}

static int check_fields(const json_t *req, const char *const *allowed, json_t **answer)
{
	const char *x;

	if (req && !json_is_object(req))
		return aerr(answer, "the request must be a JSON object");
	x = req ? extra_field(req, allowed) : NULL;
	if (!x)
		return 0;
	for (const char *p = x; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == '_' || (*p >= '0' && *p <= '9')) ||
		    p - x > 32)
			return aerr(answer, "unknown field in the request (name not shown)");
	return aerr(answer, "unknown field \"%s\"", x);
}

/* A string argument: *out set, or an error. */
static int get_arg(const json_t *req, const char *name, size_t max, int space_ok,
		   const char **out, json_t **answer)
{
	json_t *v = req ? json_object_get(req, name) : NULL;
	const char *s;
	size_t n;

	*out = NULL;
	if (!v)
		return aerr(answer, "%s: missing", name);
	if (!json_is_string(v))
		return aerr(answer, "%s: must be a string", name);
	s = json_string_value(v);
	n = json_string_length(v);
	if (n < 1 || n > max || strlen(s) != n)
		return aerr(answer, "%s: %zu bytes, must be 1..%zu", name, n, max);
	for (size_t i = 0; i < n; i++)
		if (s[i] < (space_ok ? 0x20 : 0x21) || s[i] > 0x7e)
			return aerr(answer, "%s: must be printable ASCII%s", name,
				    space_ok ? "" : " without spaces");
	*out = s;
	return 0;
}

static int list_one(void *arg, const struct kl_naf_key_info *i)
{
	char naf[2 * KL_NAF_ID_MAX + 1], kcv[2 * KL_KCV_LEN + 1];

	kl_hex(i->naf_id, i->naf_len, naf);
	kl_hex(i->kcv, KL_KCV_LEN, kcv);
	json_array_append_new(arg, json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:b}", "b_tid", i->btid,
					     "naf_id", naf, "device_id", i->device_id, "kcv",
					     kcv, "issued", (json_int_t)i->issued, "expiry",
					     (json_int_t)i->expiry, "invalidated",
					     i->invalidated));
	return 0;
}

static int list_blocked_one(void *arg, enum kl_naf_block_kind kind, const char *value)
{
	json_t *o = arg;

	json_array_append_new(json_object_get(o, kind == KL_NAF_BLOCK_SERIAL ? "serials"
									       : "device_ids"),
			      json_string(value));
	return 0;
}

static json_t *stats_json(struct kl_naf_keys *k)
{
	struct kl_naf_keys_stats s;

	kl_naf_keys_get_stats(k, &s);
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "keys",
			 (json_int_t)s.keys, "invalidated", (json_int_t)s.invalidated,
			 "blocked_devices", (json_int_t)s.blocked_devices, "blocked_serials",
			 (json_int_t)s.blocked_serials, "issued", (json_int_t)s.issued,
			 "refused_invalidated", (json_int_t)s.refused_invalidated,
			 "refused_blocked", (json_int_t)s.refused_blocked, "refused_full",
			 (json_int_t)s.refused_full, "store_failed", (json_int_t)s.store_failed,
			 "commits", (json_int_t)s.commits, "batched_writes",
			 (json_int_t)s.batched_writes, "applied", (json_int_t)s.applied,
			 "apply_failed", (json_int_t)s.apply_failed);
}

static int admin_block(struct kl_naf_keys *k, const json_t *req, int on, json_t **answer)
{
	static const char *const allowed[] = { "device_id", "serial", NULL };
	char norm[KL_NAF_SERIAL_MAX + 1];
	const char *v, *what = on ? "naf-block" : "naf-unblock";
	int has_dev, has_ser, rc;

	if (check_fields(req, allowed, answer))
		return -EINVAL;
	has_dev = req && json_object_get(req, "device_id");
	has_ser = req && json_object_get(req, "serial");
	if (has_dev == has_ser)
		return aerr(answer, "%s: give exactly one of device_id and serial", what);
	if (has_dev) {
		if (get_arg(req, "device_id", KL_NAF_DEVICE_ID_MAX, 1, &v, answer))
			return -EINVAL;
		rc = kl_naf_keys_block(k, KL_NAF_BLOCK_DEVICE, v, on);
	} else {
		if (get_arg(req, "serial", 3 * KL_NAF_SERIAL_MAX, 0, &v, answer))
			return -EINVAL;
		if (kl_naf_serial_norm(v, norm))
			return aerr(answer,
				    "serial: must be a certificate serial in hex (1..%u digits, "
				    "':' separators allowed)",
				    KL_NAF_SERIAL_MAX);
		v = norm;
		rc = kl_naf_keys_block(k, KL_NAF_BLOCK_SERIAL, v, on);
	}
	if (rc == -ENOENT)
		return aerr(answer, "%s: %s %s is not blocklisted", what,
			    has_dev ? "device_id" : "serial", v);
	if (rc)
		return aerr(answer, "%s: not stored (%s): %s", what, strerror(-rc),
			    k->store ? kl_store_last_error(k->store) : "");
	*answer = json_pack("{s:s,s:b}", has_dev ? "device_id" : "serial", v, "blocked", on);
	return 0;
}

int kl_naf_keys_admin(struct kl_naf_keys *k, const char *cmd, const struct json_t *req,
		      struct json_t **answer)
{
	static const char *const none[] = { NULL };
	static const char *const inv[] = { "b_tid", "device_id", NULL };

	if (!cmd || !answer)
		return 1;
	if (strcmp(cmd, "naf-keys") && strcmp(cmd, "naf-invalidate") && strcmp(cmd, "naf-block") &&
	    strcmp(cmd, "naf-unblock") && strcmp(cmd, "naf-blocklist"))
		return 1;
	*answer = NULL;
	if (!k)
		return aerr(answer, "%s: the NAF Key Center is not configured", cmd);
	if (!strcmp(cmd, "naf-keys")) {
		json_t *keys = json_array();

		if (check_fields(req, none, answer)) {
			json_decref(keys);
			return -EINVAL;
		}
		kl_naf_keys_list(k, list_one, keys);
		*answer = json_pack("{s:o,s:o}", "keys", keys, "stats", stats_json(k));
		return 0;
	}
	if (!strcmp(cmd, "naf-invalidate")) {
		const char *btid, *dev;
		int rc;

		if (check_fields(req, inv, answer) ||
		    get_arg(req, "b_tid", KL_NAF_BTID_MAX, 0, &btid, answer) ||
		    get_arg(req, "device_id", KL_NAF_DEVICE_ID_MAX, 1, &dev, answer))
			return -EINVAL;
		rc = kl_naf_keys_invalidate(k, btid, dev);
		if (rc == -ENOENT)
			return aerr(answer, "naf-invalidate: no key issued to device_id %s for b_tid %s",
				    dev, btid);
		if (rc)
			return aerr(answer, "naf-invalidate: not stored (%s): %s", strerror(-rc),
				    k->store ? kl_store_last_error(k->store) : "");
		*answer = json_pack("{s:s,s:s,s:b}", "b_tid", btid, "device_id", dev,
				    "invalidated", 1);
		return 0;
	}
	if (!strcmp(cmd, "naf-blocklist")) {
		if (check_fields(req, none, answer))
			return -EINVAL;
		*answer = json_pack("{s:[],s:[]}", "device_ids", "serials");
		kl_naf_keys_list_blocked(k, list_blocked_one, *answer);
		return 0;
	}
	return admin_block(k, req, !strcmp(cmd, "naf-block"), answer);
}

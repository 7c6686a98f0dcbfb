/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NAF Key Center's issued keys and blocklists (control/http/kl_naf_keys.h) with a real store
 * (LMDB in a temporary directory): issues from 8 threads while a control thread polls, all
 * durable (closed, reopened, every key unwrapped equal), group commit batching; invalidation
 * refused forever and across a restart; blocklists by Device_ID and by serial across a restart;
 * the expiry purge (store and index); a full table; a wait that times out (nothing written); a
 * store that fails (map full: the index unchanged); memory only; the admin commands with good and
 * bad arguments, never a key in an answer. With --bench: the issue rate from 8 threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "kl_crypto.h"
#include "kl_naf_keys.h"
#include "kl_store.h"
#include "kl_test_store.h"

static char base[256], kek[300];
static unsigned seq;
static int bench_mode;

#define NOW 1800000000ull
#define NAF (const uint8_t *)"naf.example.org\x01\x00\x00\x01\x00", 20
#define THREADS 8

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct kl_store *open_store(const char *dir, uint64_t map_size)
{
	return kl_test_store(dir, kek, map_size);
}

static struct kl_naf_keys *open_keys(struct kl_store *s, unsigned max, unsigned wait_ms,
				     uint64_t keep)
{
	struct kl_naf_keys_params_ext p = { .base = { .store = s, .max_keys = max,
						      .wait_ms = wait_ms },
					    .invalidated_keep_s = keep };
	char err[512];
	struct kl_naf_keys *k = kl_naf_keys_open_ext(&p, err, sizeof(err));

	if (!k)
		fail_msg("naf keys: %s", err);
	return k;
}

static void new_dir(char *dir, size_t cap)
{
	snprintf(dir, cap, "%s/s%u", base, seq++);
}

/* A store in a new directory and the Key Center's keys on it. */
struct fx {
	char dir[300];
	struct kl_store *s;
	struct kl_naf_keys *k;
	struct kl_naf_keys_stats st;
};

static void fx_open(struct fx *f, unsigned max, unsigned wait_ms, uint64_t keep)
{
	if (!f->dir[0])
		new_dir(f->dir, sizeof(f->dir));
	f->s = open_store(f->dir, 0);
	f->k = open_keys(f->s, max, wait_ms, keep);
}

static void fx_close(struct fx *f)
{
	kl_naf_keys_close(f->k);
	kl_store_close(f->s);
}

static struct kl_naf_keys_stats *fx_stats(struct fx *f)
{
	kl_naf_keys_get_stats(f->k, &f->st);
	return &f->st;
}

/* A key of its own for each (thread, index). */
static void key_of(unsigned t, unsigned i, uint8_t key[32])
{
	for (unsigned j = 0; j < 32; j++)
		key[j] = (uint8_t)(t * 31 + i * 7 + j * 13 + (i >> 8));
}

static void btid_of(unsigned t, unsigned i, char *out, size_t cap)
{
	snprintf(out, cap, "AbCd%u-%u=@bsf.example.org", t, i);
}

/* ---- the control thread: polls the eventfd until told to stop ---------------------------------- */

struct poller {
	pthread_t th;
	struct kl_naf_keys *k;
	_Atomic int stop;
	unsigned polls;
};

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	struct pollfd pfd = { .fd = kl_naf_keys_fd(p->k), .events = POLLIN };

	while (!p->stop) {
		if (poll(&pfd, 1, 20) > 0 && (pfd.revents & POLLIN)) {
			kl_naf_keys_poll(p->k);
			p->polls++;
		}
	}
	kl_naf_keys_poll(p->k);
	return NULL;
}

static void poller_start(struct poller *p, struct kl_naf_keys *k)
{
	memset(p, 0, sizeof(*p));
	p->k = k;
	assert_int_equal(pthread_create(&p->th, NULL, poller_main, p), 0);
}

static void poller_stop(struct poller *p)
{
	p->stop = 1;
	pthread_join(p->th, NULL);
}

/* ---- issuing threads ------------------------------------------------------------------------- */

struct issuer {
	pthread_t th;
	struct kl_naf_keys *k;
	unsigned t, n;
	unsigned rc[5];
	double seconds;
	uint64_t (*expiry)(unsigned t, unsigned i); /* NULL: NOW + 3600 */
};

static void *issuer_main(void *arg)
{
	struct issuer *is = arg;
	double t0 = now_s();

	for (unsigned i = 0; i < is->n; i++) {
		char btid[64], dev[32];
		uint8_t key[32];
		enum kl_naf_issue_rc rc;

		btid_of(is->t, i, btid, sizeof(btid));
		snprintf(dev, sizeof(dev), "device-%u", is->t);
		key_of(is->t, i, key);
		rc = kl_naf_keys_issue(is->k, btid, NAF, dev, "1a2b", key,
				       is->expiry ? is->expiry(is->t, i) : NOW + 3600, NOW);
		is->rc[rc]++;
	}
	is->seconds = now_s() - t0;
	return NULL;
}

#define THREADS_MAX 64

/* n keys from each of nt threads while a control thread polls, expiring at expiry(t, i) (NULL:
 * NOW + 3600). @return the elapsed s. */
static double issue_exp(struct kl_naf_keys *k, unsigned nt, unsigned n, unsigned *issued,
			uint64_t (*expiry)(unsigned t, unsigned i))
{
	struct issuer is[THREADS_MAX];
	struct poller p;
	double t0 = now_s(), dt;

	assert_true(nt <= THREADS_MAX);
	poller_start(&p, k);
	for (unsigned t = 0; t < nt; t++) {
		is[t] = (struct issuer){ .k = k, .t = t, .n = n, .expiry = expiry };
		assert_int_equal(pthread_create(&is[t].th, NULL, issuer_main, &is[t]), 0);
	}
	*issued = 0;
	for (unsigned t = 0; t < nt; t++) {
		pthread_join(is[t].th, NULL);
		*issued += is[t].rc[KL_NAF_ISSUED];
	}
	dt = now_s() - t0;
	poller_stop(&p);
	return dt;
}

static double issue_n(struct kl_naf_keys *k, unsigned nt, unsigned n, unsigned *issued)
{
	return issue_exp(k, nt, n, issued, NULL);
}

static double issue_all(struct kl_naf_keys *k, unsigned n, unsigned *issued)
{
	return issue_n(k, THREADS, n, issued);
}

static void check_all_stored(struct kl_store *s, unsigned n)
{
	for (unsigned t = 0; t < THREADS; t++) {
		for (unsigned i = 0; i < n; i++) {
			struct kl_store_naf sn = { .naf_len = 20 };
			uint8_t want[32], got[32];

			btid_of(t, i, sn.btid, sizeof(sn.btid));
			memcpy(sn.naf_id, "naf.example.org\x01\x00\x00\x01\x00", 20);
			snprintf(sn.device_id, sizeof(sn.device_id), "device-%u", t);
			key_of(t, i, want);
			assert_int_equal(kl_store_naf_get(s, &sn, got), 0);
			assert_memory_equal(got, want, 32);
			assert_int_equal(sn.expiry, NOW + 3600);
			assert_int_equal(sn.invalidated, 0);
		}
	}
}

static void test_concurrent_issue(void **state)
{
	struct fx f = { 0 };
	const unsigned n = 300;
	struct kl_naf_key_info info;
	uint8_t key[32], kcv[3];
	unsigned issued;

	(void)state;
	fx_open(&f, 0, 0, 0);
	issue_all(f.k, n, &issued);
	assert_int_equal(issued, THREADS * n);
	fx_stats(&f);
	assert_int_equal(f.st.keys, THREADS * n);
	assert_int_equal(f.st.issued, THREADS * n);
	assert_int_equal(f.st.batched_writes, THREADS * n);
	/* group commit: fewer commits than writes */
	assert_true(f.st.commits < f.st.batched_writes);
	print_message("8 threads x %u: %" PRIu64 " writes in %" PRIu64 " commits\n", n,
		      f.st.batched_writes, f.st.commits);
	/* issuing again: the same key, no write */
	issue_all(f.k, 20, &issued);
	fx_stats(&f);
	assert_int_equal(issued, THREADS * 20);
	assert_int_equal(f.st.batched_writes, THREADS * n);
	fx_close(&f);
	/* durable: reopened, every key there */
	fx_open(&f, 0, 0, 0);
	fx_stats(&f);
	assert_int_equal(f.st.keys, THREADS * n);
	check_all_stored(f.s, n);
	key_of(3, 17, key);
	kl_kcv(key, 32, kcv);
	assert_int_equal(kl_naf_keys_lookup(f.k, "AbCd3-17=@bsf.example.org", NAF, "device-3", &info),
			 0);
	assert_memory_equal(info.kcv, kcv, 3);
	assert_int_equal(info.issued, NOW);
	assert_int_equal(kl_naf_keys_lookup(f.k, "AbCd3-17=@bsf.example.org", NAF, "device-4", &info),
			 -ENOENT);
	fx_close(&f);
}

/* Issue one key from this thread with a control thread polling. */
static enum kl_naf_issue_rc issue1(struct kl_naf_keys *k, const char *btid, const char *dev,
				   const char *serial, uint8_t kb, uint64_t expiry, uint64_t now)
{
	struct poller p;
	uint8_t key[32];
	enum kl_naf_issue_rc rc;

	memset(key, kb, sizeof(key));
	poller_start(&p, k);
	rc = kl_naf_keys_issue(k, btid, NAF, dev, serial, key, expiry, now);
	poller_stop(&p);
	return rc;
}

struct inv_arg {
	struct kl_naf_keys *k;
	const char *btid, *dev;
	int rc;
};

static void *inv_main(void *arg)
{
	struct inv_arg *a = arg;

	a->rc = kl_naf_keys_invalidate_wait(a->k, a->btid, a->dev);
	return NULL;
}

static int invalidate_from_thread(struct kl_naf_keys *k, const char *btid, const char *dev)
{
	struct inv_arg a = { .k = k, .btid = btid, .dev = dev };
	struct poller p;
	pthread_t th;

	poller_start(&p, k);
	assert_int_equal(pthread_create(&th, NULL, inv_main, &a), 0);
	pthread_join(th, NULL);
	poller_stop(&p);
	return a.rc;
}

static void test_invalidate(void **state)
{
	struct fx f = { 0 };
	struct kl_naf_key_info info;
	struct kl_store_naf sn = { .btid = "B1@bsf", .device_id = "dev-1", .naf_len = 20 };
	uint8_t key[32], kcv[3];

	(void)state;
	memcpy(sn.naf_id, "naf.example.org\x01\x00\x00\x01\x00", 20);
	fx_open(&f, 0, 0, 0);
	assert_int_equal(issue1(f.k, "B1@bsf", "dev-1", NULL, 0x11, NOW + 100, NOW), KL_NAF_ISSUED);
	assert_int_equal(issue1(f.k, "B2@bsf", "dev-1", NULL, 0x22, NOW + 100, NOW), KL_NAF_ISSUED);
	assert_int_equal(kl_naf_keys_invalidate(f.k, "B1@bsf", "dev-1"), 0);
	assert_int_equal(kl_naf_keys_invalidate(f.k, "B1@bsf", "dev-2"), -ENOENT);
	assert_int_equal(kl_naf_keys_invalidate(f.k, "B9@bsf", "dev-1"), -ENOENT);
	assert_int_equal(kl_naf_keys_invalidate(f.k, "", "dev-1"), -EINVAL);
	assert_int_equal(issue1(f.k, "B1@bsf", "dev-1", NULL, 0x11, NOW + 100, NOW + 1),
			 KL_NAF_INVALIDATED);
	/* listed as invalidated, its KCV kept; the key itself is gone from the store */
	memset(key, 0x11, 32);
	kl_kcv(key, 32, kcv);
	assert_int_equal(kl_naf_keys_lookup(f.k, "B1@bsf", NAF, "dev-1", &info), 0);
	assert_true(info.invalidated);
	assert_memory_equal(info.kcv, kcv, 3);
	assert_int_equal(kl_store_naf_get(f.s, &sn, key), 0);
	assert_true(sn.invalidated);
	for (unsigned i = 0; i < 32; i++)
		assert_int_equal(key[i], 0);
	/* the HTTPS route's invalidation, through the control thread */
	assert_int_equal(invalidate_from_thread(f.k, "B2@bsf", "dev-1"), 0);
	assert_int_equal(invalidate_from_thread(f.k, "B3@bsf", "dev-1"), -ENOENT);
	/* past its expiry, the tick keeps it: refused forever */
	kl_naf_keys_tick(f.k, NOW + 1000000);
	assert_int_equal(issue1(f.k, "B1@bsf", "dev-1", NULL, 0x11, NOW + 2000000, NOW + 1000001),
			 KL_NAF_INVALIDATED);
	fx_stats(&f);
	assert_int_equal(f.st.invalidated, 2);
	assert_int_equal(f.st.refused_invalidated, 2);
	fx_close(&f);
	/* across a restart */
	fx_open(&f, 0, 0, 50);
	assert_int_equal(issue1(f.k, "B1@bsf", "dev-1", NULL, 0x11, NOW + 100, NOW + 2),
			 KL_NAF_INVALIDATED);
	assert_int_equal(issue1(f.k, "B2@bsf", "dev-1", NULL, 0x22, NOW + 100, NOW + 2),
			 KL_NAF_INVALIDATED);
	/* with a retention set: purged that long after the expiry */
	kl_naf_keys_tick(f.k, NOW + 149);
	fx_stats(&f);
	assert_int_equal(f.st.keys, 2);
	kl_naf_keys_tick(f.k, NOW + 150);
	fx_stats(&f);
	assert_int_equal(f.st.keys, 0);
	assert_int_equal(kl_store_naf_get(f.s, &sn, key), -ENOENT);
	fx_close(&f);
}

static void test_blocklist(void **state)
{
	struct fx f = { 0 };

	(void)state;
	fx_open(&f, 0, 0, 0);
	assert_int_equal(kl_naf_keys_block(f.k, KL_NAF_BLOCK_DEVICE, "bad device", 1), 0);
	assert_int_equal(kl_naf_keys_block(f.k, KL_NAF_BLOCK_SERIAL, "00:0A:BC:01", 1), 0);
	assert_int_equal(kl_naf_keys_block(f.k, KL_NAF_BLOCK_SERIAL, "0abc01", 1), 0); /* same */
	assert_int_equal(kl_naf_keys_block(f.k, KL_NAF_BLOCK_SERIAL, "xyz", 1), -EINVAL);
	assert_int_equal(kl_naf_keys_block(f.k, KL_NAF_BLOCK_DEVICE, "", 1), -EINVAL);
	assert_int_equal(kl_naf_keys_block(f.k, KL_NAF_BLOCK_DEVICE, "tab\there", 1), -EINVAL);
	assert_int_equal(kl_naf_keys_block(f.k, (enum kl_naf_block_kind)7, "x", 1), -EINVAL);
	assert_int_equal(kl_naf_keys_block(f.k, KL_NAF_BLOCK_DEVICE, "never-blocked", 0), -ENOENT);
	fx_stats(&f);
	assert_int_equal(f.st.blocked_devices, 1);
	assert_int_equal(f.st.blocked_serials, 1);
	fx_close(&f);
	fx_open(&f, 0, 0, 0);
	assert_true(kl_naf_keys_blocked(f.k, "bad device", NULL));
	assert_true(kl_naf_keys_blocked(f.k, "good", "abc01"));
	assert_true(kl_naf_keys_blocked(f.k, "good", "0ABC01"));
	assert_false(kl_naf_keys_blocked(f.k, "good", "abc02"));
	assert_false(kl_naf_keys_blocked(f.k, "good", NULL));
	assert_int_equal(issue1(f.k, "B1@bsf", "bad device", "1", 1, NOW + 10, NOW), KL_NAF_BLOCKED);
	assert_int_equal(issue1(f.k, "B1@bsf", "good", "abc01", 1, NOW + 10, NOW), KL_NAF_BLOCKED);
	assert_int_equal(issue1(f.k, "B1@bsf", "good", "00:0A:BC:01", 1, NOW + 10, NOW),
			 KL_NAF_BLOCKED);
	assert_int_equal(issue1(f.k, "B1@bsf", "good", "abc02", 1, NOW + 10, NOW), KL_NAF_ISSUED);
	assert_int_equal(kl_naf_keys_block(f.k, KL_NAF_BLOCK_DEVICE, "bad device", 0), 0);
	assert_int_equal(kl_naf_keys_block(f.k, KL_NAF_BLOCK_DEVICE, "bad device", 0), -ENOENT);
	assert_int_equal(issue1(f.k, "B1@bsf", "bad device", "1", 1, NOW + 10, NOW), KL_NAF_ISSUED);
	/* a device blocked after its key was issued: refused on its next request */
	assert_int_equal(kl_naf_keys_block(f.k, KL_NAF_BLOCK_DEVICE, "good", 1), 0);
	assert_int_equal(issue1(f.k, "B1@bsf", "good", "abc02", 1, NOW + 10, NOW), KL_NAF_BLOCKED);
	fx_close(&f);
	fx_open(&f, 0, 0, 0);
	assert_false(kl_naf_keys_blocked(f.k, "bad device", NULL));
	assert_true(kl_naf_keys_blocked(f.k, "good", NULL));
	fx_close(&f);
}

static void test_expiry_purge(void **state)
{
	struct fx f = { 0 };
	struct kl_naf_key_info info;
	uint64_t nk = 0;

	(void)state;
	fx_open(&f, 0, 0, 0);
	assert_int_equal(issue1(f.k, "E1@bsf", "d", NULL, 1, NOW + 10, NOW), KL_NAF_ISSUED);
	assert_int_equal(issue1(f.k, "E2@bsf", "d", NULL, 2, NOW + 20, NOW), KL_NAF_ISSUED);
	kl_naf_keys_tick(f.k, NOW + 9);
	assert_int_equal(kl_store_naf_count(f.s, &nk, NULL), 0);
	assert_int_equal(nk, 2);
	kl_naf_keys_tick(f.k, NOW + 10);
	fx_stats(&f);
	assert_int_equal(f.st.keys, 1);
	assert_int_equal(kl_store_naf_count(f.s, &nk, NULL), 0);
	assert_int_equal(nk, 1);
	assert_int_equal(kl_naf_keys_lookup(f.k, "E1@bsf", NAF, "d", &info), -ENOENT);
	assert_int_equal(kl_naf_keys_lookup(f.k, "E2@bsf", NAF, "d", &info), 0);
	/* an expired key not purged yet is issued afresh */
	assert_int_equal(issue1(f.k, "E2@bsf", "d", NULL, 2, NOW + 60, NOW + 30), KL_NAF_ISSUED);
	assert_int_equal(kl_naf_keys_lookup(f.k, "E2@bsf", NAF, "d", &info), 0);
	assert_int_equal(info.expiry, NOW + 60);
	fx_close(&f);
	fx_open(&f, 0, 0, 0);
	fx_stats(&f);
	assert_int_equal(f.st.keys, 1);
	kl_naf_keys_tick(f.k, NOW + 60);
	fx_stats(&f);
	assert_int_equal(f.st.keys, 0);
	assert_int_equal(kl_store_naf_count(f.s, &nk, NULL), 0);
	assert_int_equal(nk, 0);
	fx_close(&f);
}

/* The purge follows expiry order, not the index's: PURGE_N keys expiring at NOW + 1 .. PURGE_N in
 * a scrambled order; each tick deletes due ones only, at most 4096 (PURGE_MAX) at once. */
#define PURGE_T 8u
#define PURGE_PER 600u
#define PURGE_N (PURGE_T * PURGE_PER)

static uint64_t scrambled(unsigned t, unsigned i)
{
	return NOW + 1 + ((uint64_t)(t * PURGE_PER + i) * 7919u) % PURGE_N; /* 7919 prime */
}

static unsigned live_keys(struct kl_naf_keys *k, uint64_t *max_gone, uint64_t *min_live)
{
	struct kl_naf_key_info info;
	unsigned live = 0;

	*max_gone = 0;
	*min_live = UINT64_MAX;
	for (unsigned t = 0; t < PURGE_T; t++)
		for (unsigned i = 0; i < PURGE_PER; i++) {
			char btid[64], dev[32];
			uint64_t e = scrambled(t, i);

			btid_of(t, i, btid, sizeof(btid));
			snprintf(dev, sizeof(dev), "device-%u", t);
			if (kl_naf_keys_lookup(k, btid, NAF, dev, &info) == 0) {
				live++;
				*min_live = e < *min_live ? e : *min_live;
			} else {
				*max_gone = e > *max_gone ? e : *max_gone;
			}
		}
	return live;
}

/* Memory only (the store's part of the purge is test_expiry_purge's): the order is the point. */
static void test_purge_order(void **state)
{
	struct kl_naf_keys *k = open_keys(NULL, 0, 0, 0);
	struct kl_naf_keys_stats st;
	uint64_t gone, live;
	unsigned issued, i = 0;
	char btid[64];

	(void)state;
	issue_exp(k, PURGE_T, PURGE_PER, &issued, scrambled);
	assert_int_equal(issued, PURGE_N);
	kl_naf_keys_tick(k, NOW); /* nothing due */
	kl_naf_keys_get_stats(k, &st);
	assert_int_equal(st.keys, PURGE_N);
	/* 4500 due: 4096 of them go at the first tick, the rest at the next, no other */
	kl_naf_keys_tick(k, NOW + 4500);
	kl_naf_keys_get_stats(k, &st);
	assert_int_equal(st.keys, PURGE_N - 4096);
	assert_int_equal(live_keys(k, &gone, &live), PURGE_N - 4096);
	assert_true(gone <= NOW + 4500);
	kl_naf_keys_tick(k, NOW + 4500);
	assert_int_equal(live_keys(k, &gone, &live), PURGE_N - 4500);
	assert_int_equal(gone, NOW + 4500);
	assert_int_equal(live, NOW + 4501);
	/* an invalidated key (kept for good: keep 0) is never due */
	while (scrambled(0, i) <= NOW + 4500)
		i++;
	btid_of(0, i, btid, sizeof(btid));
	assert_int_equal(kl_naf_keys_invalidate(k, btid, "device-0"), 0);
	kl_naf_keys_tick(k, NOW + PURGE_N);
	kl_naf_keys_get_stats(k, &st);
	assert_int_equal(st.keys, 1);
	assert_int_equal(st.invalidated, 1);
	kl_naf_keys_close(k);
}

static void test_full(void **state)
{
	struct fx f = { 0 };

	(void)state;
	fx_open(&f, 3, 0, 0);
	assert_int_equal(issue1(f.k, "F1@bsf", "d", NULL, 1, NOW + 10, NOW), KL_NAF_ISSUED);
	assert_int_equal(issue1(f.k, "F2@bsf", "d", NULL, 2, NOW + 10, NOW), KL_NAF_ISSUED);
	assert_int_equal(issue1(f.k, "F3@bsf", "d", NULL, 3, NOW + 10, NOW), KL_NAF_ISSUED);
	assert_int_equal(issue1(f.k, "F4@bsf", "d", NULL, 4, NOW + 10, NOW), KL_NAF_FULL);
	assert_int_equal(issue1(f.k, "F2@bsf", "d", NULL, 2, NOW + 10, NOW), KL_NAF_ISSUED);
	fx_stats(&f);
	assert_int_equal(f.st.refused_full, 1);
	assert_int_equal(f.st.keys, 3);
	/* room again once one expired and was purged */
	kl_naf_keys_tick(f.k, NOW + 10);
	assert_int_equal(issue1(f.k, "F4@bsf", "d", NULL, 4, NOW + 30, NOW + 10), KL_NAF_ISSUED);
	fx_close(&f);
}

/* A full table under concurrency: never more than max_keys. */
static void test_full_concurrent(void **state)
{
	struct kl_naf_keys_stats st;
	struct kl_naf_keys *k;
	unsigned issued;

	(void)state;
	k = open_keys(NULL, 100, 0, 0);
	issue_all(k, 50, &issued);
	kl_naf_keys_get_stats(k, &st);
	assert_int_equal(issued, 100);
	assert_int_equal(st.keys, 100);
	assert_int_equal(st.refused_full, THREADS * 50 - 100);
	kl_naf_keys_close(k);
}

static void test_timeout(void **state)
{
	struct fx f = { 0 };
	struct kl_naf_key_info info;
	uint64_t nk = 1;
	uint8_t key[32] = { 9 };
	double t0;

	(void)state;
	fx_open(&f, 0, 150, 0);
	t0 = now_s();
	/* nobody polls: the wait runs out */
	assert_int_equal(kl_naf_keys_issue(f.k, "T1@bsf", NAF, "d", NULL, key, NOW + 10, NOW),
			 KL_NAF_STORE_FAILED);
	assert_true(now_s() - t0 >= 0.14);
	assert_true(now_s() - t0 < 2);
	assert_int_equal(kl_naf_keys_invalidate_wait(f.k, "T1@bsf", "d"), -EIO);
	/* the control thread wakes up later: nothing of it is written */
	kl_naf_keys_poll(f.k);
	fx_stats(&f);
	assert_int_equal(f.st.keys, 0);
	assert_int_equal(f.st.commits, 0);
	assert_int_equal(f.st.store_failed, 1);
	assert_int_equal(kl_naf_keys_lookup(f.k, "T1@bsf", NAF, "d", &info), -ENOENT);
	assert_int_equal(kl_store_naf_count(f.s, &nk, NULL), 0);
	assert_int_equal(nk, 0);
	/* and works when it polls */
	assert_int_equal(issue1(f.k, "T1@bsf", "d", NULL, 9, NOW + 10, NOW), KL_NAF_ISSUED);
	fx_close(&f);
}

struct waiting_issue {
	struct kl_naf_keys *k;
	enum kl_naf_issue_rc rc;
};

static void *waiting_main(void *arg)
{
	struct waiting_issue *w = arg;
	uint8_t key[32] = { 3 };

	w->rc = kl_naf_keys_issue(w->k, "C1@bsf", NAF, "d", NULL, key, NOW + 10, NOW);
	return NULL;
}

/* Closing while callers wait: they get KL_NAF_STORE_FAILED at once, nothing is written. */
static void test_close_waiting(void **state)
{
	struct waiting_issue w[4];
	struct fx f = { 0 };
	pthread_t th[4];
	uint64_t nk = 1;
	double t0;

	(void)state;
	fx_open(&f, 0, 10000, 0);
	for (unsigned i = 0; i < 4; i++) {
		w[i] = (struct waiting_issue){ .k = f.k };
		assert_int_equal(pthread_create(&th[i], NULL, waiting_main, &w[i]), 0);
	}
	/* all four queued, nobody polls */
	for (unsigned i = 0; i < 10000 && fx_stats(&f)->waiting < 4; i++)
		usleep(1000);
	assert_int_equal(f.st.waiting, 4);
	t0 = now_s();
	kl_naf_keys_close(f.k);
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].rc, KL_NAF_STORE_FAILED);
	}
	assert_true(now_s() - t0 < 5);
	assert_int_equal(kl_store_naf_count(f.s, &nk, NULL), 0);
	assert_int_equal(nk, 0);
	kl_store_close(f.s);
}

/* Bad arguments: refused without a write. */
static void test_bad_args(void **state)
{
	struct kl_naf_keys *k = open_keys(NULL, 0, 100, 0);
	uint8_t key[32] = { 1 };
	char longb[300];

	(void)state;
	memset(longb, 'b', sizeof(longb));
	longb[299] = '\0';
	assert_int_equal(kl_naf_keys_issue(k, "", NAF, "d", NULL, key, NOW + 1, NOW),
			 KL_NAF_STORE_FAILED);
	assert_int_equal(kl_naf_keys_issue(k, longb, NAF, "d", NULL, key, NOW + 1, NOW),
			 KL_NAF_STORE_FAILED);
	assert_int_equal(kl_naf_keys_issue(k, "b t", NAF, "d", NULL, key, NOW + 1, NOW),
			 KL_NAF_STORE_FAILED);
	assert_int_equal(kl_naf_keys_issue(k, "b", NAF, "", NULL, key, NOW + 1, NOW),
			 KL_NAF_STORE_FAILED);
	assert_int_equal(kl_naf_keys_issue(k, "b", (const uint8_t *)"x", 0, "d", NULL, key,
					   NOW + 1, NOW),
			 KL_NAF_STORE_FAILED);
	assert_int_equal(kl_naf_keys_issue(k, "b", NAF, "d", NULL, NULL, NOW + 1, NOW),
			 KL_NAF_STORE_FAILED);
	assert_int_equal(kl_naf_keys_issue(NULL, "b", NAF, "d", NULL, key, NOW + 1, NOW),
			 KL_NAF_STORE_FAILED);
	kl_naf_keys_close(k);
}

static void test_store_failure(void **state)
{
	struct fx f = { 0 };
	struct kl_naf_key_info info;
	struct poller p;
	uint64_t nk = 0;
	char btid[160];
	uint8_t key[32] = { 5 };
	unsigned i, ok = 0;
	enum kl_naf_issue_rc rc = KL_NAF_ISSUED;

	(void)state;
	new_dir(f.dir, sizeof(f.dir));
	f.s = open_store(f.dir, 96 << 10); /* a small map: full after a few hundred keys */
	f.k = open_keys(f.s, 0, 0, 0);
	poller_start(&p, f.k);
	for (i = 0; i < 100000 && rc == KL_NAF_ISSUED; i++) {
		snprintf(btid, sizeof(btid), "M%06u-%0100u@bsf", i, i);
		rc = kl_naf_keys_issue(f.k, btid, NAF, "d", NULL, key, NOW + 10, NOW);
		ok += rc == KL_NAF_ISSUED;
	}
	poller_stop(&p);
	assert_int_equal(rc, KL_NAF_STORE_FAILED);
	assert_true(ok > 10);
	fx_stats(&f);
	assert_int_equal(f.st.keys, ok);
	assert_int_equal(f.st.store_failed, 1);
	assert_int_equal(kl_naf_keys_lookup(f.k, btid, NAF, "d", &info), -ENOENT);
	assert_int_equal(kl_store_naf_count(f.s, &nk, NULL), 0);
	assert_int_equal(nk, ok);
	/* a blocklist entry that does not fit either: the index unchanged */
	for (i = 0; i < 1000; i++) {
		char dev[64];

		snprintf(dev, sizeof(dev), "blocked-device-%030u", i);
		if (kl_naf_keys_block(f.k, KL_NAF_BLOCK_DEVICE, dev, 1)) {
			assert_false(kl_naf_keys_blocked(f.k, dev, NULL));
			break;
		}
	}
	assert_true(i < 1000);
	/* LMDB needs free pages even to delete: the purge fails too and is retried; the index
	 * keeps what the store keeps */
	kl_naf_keys_tick(f.k, NOW + 10);
	fx_stats(&f);
	assert_true(f.st.keys == ok || f.st.keys == 0);
	assert_int_equal(kl_store_naf_count(f.s, &nk, NULL), 0);
	assert_int_equal(nk, f.st.keys);
	fx_close(&f);
	/* the operator raises map_size: the purge and issues work again */
	f.s = open_store(f.dir, 8 << 20);
	f.k = open_keys(f.s, 0, 0, 0);
	fx_stats(&f);
	assert_int_equal(f.st.keys, nk);
	assert_int_equal(issue1(f.k, btid, "d", NULL, 5, NOW + 30, NOW + 10), KL_NAF_ISSUED);
	kl_naf_keys_tick(f.k, NOW + 10);
	fx_stats(&f);
	assert_int_equal(f.st.keys, 1);
	fx_close(&f);
	f.s = open_store(f.dir, 8 << 20);
	f.k = open_keys(f.s, 0, 0, 0);
	fx_stats(&f);
	assert_int_equal(f.st.keys, 1);
	fx_close(&f);
}

static void test_memory_only(void **state)
{
	struct kl_naf_keys_stats st;
	struct kl_naf_keys *k = open_keys(NULL, 0, 0, 0);

	(void)state;
	assert_int_equal(issue1(k, "N1@bsf", "d", NULL, 1, NOW + 10, NOW), KL_NAF_ISSUED);
	assert_int_equal(kl_naf_keys_invalidate(k, "N1@bsf", "d"), 0);
	assert_int_equal(issue1(k, "N1@bsf", "d", NULL, 1, NOW + 10, NOW), KL_NAF_INVALIDATED);
	assert_int_equal(kl_naf_keys_block(k, KL_NAF_BLOCK_SERIAL, "ff", 1), 0);
	assert_true(kl_naf_keys_blocked(k, "x", "FF"));
	kl_naf_keys_get_stats(k, &st);
	assert_int_equal(st.keys, 1);
	assert_int_equal(st.commits, 0);
	kl_naf_keys_close(k);
}

/* ---- admin ------------------------------------------------------------------------------------- */

static char *admin(struct kl_naf_keys *k, const char *cmd, const char *req_json, int want)
{
	json_error_t je;
	json_t *req = req_json ? json_loads(req_json, 0, &je) : NULL, *ans = NULL;
	char *txt;
	int rc;

	if (req_json && !req)
		fail_msg("bad test JSON %s", req_json);
	rc = kl_naf_keys_admin(k, cmd, req, &ans);
	json_decref(req);
	if (rc != want)
		fail_msg("%s %s: rc %d, want %d", cmd, req_json ? req_json : "", rc, want);
	if (rc == 1) {
		assert_null(ans);
		return NULL;
	}
	assert_non_null(ans);
	txt = json_dumps(ans, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(ans);
	if (rc == -EINVAL && !strstr(txt, "\"error\""))
		fail_msg("%s: no error text: %s", cmd, txt);
	return txt;
}

static void expect(struct kl_naf_keys *k, const char *cmd, const char *req, int want,
		   const char *sub)
{
	char *t = admin(k, cmd, req, want);

	if (sub && (!t || !strstr(t, sub)))
		fail_msg("%s %s: \"%s\" not in %s", cmd, req ? req : "", sub, t ? t : "(none)");
	free(t);
}

static void test_admin(void **state)
{
	struct fx f = { 0 };
	char *t, hex[65], kcv_hex[7];
	uint8_t key[32], kcv[3];

	(void)state;
	fx_open(&f, 0, 0, 0);
	assert_int_equal(issue1(f.k, "A1@bsf", "dev 1", NULL, 0xa7, NOW + 10, NOW), KL_NAF_ISSUED);
	assert_int_equal(issue1(f.k, "A2@bsf", "dev 1", NULL, 0x3c, NOW + 10, NOW), KL_NAF_ISSUED);
	memset(key, 0xa7, 32);
	kl_kcv(key, 32, kcv);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	snprintf(kcv_hex, sizeof(kcv_hex), "%02x%02x%02x", kcv[0], kcv[1], kcv[2]);

	t = admin(f.k, "naf-keys", "{\"cmd\":\"naf-keys\"}", 0);
	assert_non_null(strstr(t, "\"b_tid\":\"A1@bsf\""));
	assert_non_null(strstr(t, "\"device_id\":\"dev 1\""));
	assert_non_null(strstr(t, "\"naf_id\":\"6e61662e6578616d706c652e6f72670100000100\""));
	assert_non_null(strstr(t, kcv_hex));
	assert_null(strstr(t, hex));
	assert_null(strstr(t, "a7a7a7a7"));
	assert_null(strstr(t, "p6en")); /* base64 of a7 a7 a7 */
	assert_non_null(strstr(t, "\"keys\":2"));
	free(t);
	expect(f.k, "naf-keys", NULL, 0, "\"issued\":2");
	expect(f.k, "naf-keys", "{\"x\":1}", -EINVAL, "unknown field \\\"x\\\"");
	expect(f.k, "naf-keys", "[1]", -EINVAL, "JSON object");
	expect(f.k, "naf-other", "{}", 1, NULL);

	expect(f.k, "naf-invalidate", "{\"b_tid\":\"A1@bsf\",\"device_id\":\"dev 1\"}", 0,
	       "\"invalidated\":true");
	expect(f.k, "naf-invalidate", "{\"b_tid\":\"A1@bsf\",\"device_id\":\"dev 1\"}", 0, NULL);
	expect(f.k, "naf-invalidate", "{\"b_tid\":\"A9@bsf\",\"device_id\":\"dev 1\"}", -EINVAL,
	       "no key issued");
	expect(f.k, "naf-invalidate", "{\"device_id\":\"dev 1\"}", -EINVAL, "b_tid: missing");
	expect(f.k, "naf-invalidate", "{\"b_tid\":7,\"device_id\":\"dev 1\"}", -EINVAL,
	       "b_tid: must be a string");
	expect(f.k, "naf-invalidate", "{\"b_tid\":\"a b\",\"device_id\":\"dev 1\"}", -EINVAL,
	       "without spaces");
	expect(f.k, "naf-invalidate", "{\"b_tid\":\"\",\"device_id\":\"dev 1\"}", -EINVAL,
	       "must be 1..255");
	expect(f.k, "naf-invalidate", "{\"b_tid\":\"A1@bsf\"}", -EINVAL, "device_id: missing");
	expect(f.k, "naf-invalidate", "{\"b_tid\":\"A1@bsf\",\"device_id\":\"d\",\"k\":1}", -EINVAL,
	       "unknown field");
	expect(f.k, "naf-invalidate", "{\"b_tid\":\"A1@bsf\",\"device_id\":\"d\",\"K\\u0001\":1}",
	       -EINVAL, "name not shown");
	t = admin(f.k, "naf-keys", NULL, 0);
	assert_non_null(strstr(t, "\"invalidated\":true"));
	assert_non_null(strstr(t, "\"invalidated\":false"));
	free(t);

	expect(f.k, "naf-block", "{\"device_id\":\"dev 1\"}", 0, "\"blocked\":true");
	expect(f.k, "naf-block", "{\"serial\":\"00:AB:cd\"}", 0, "\"serial\":\"abcd\"");
	expect(f.k, "naf-block", "{\"serial\":\"xyz\"}", -EINVAL, "serial: must be");
	expect(f.k, "naf-block", "{\"serial\":\"\"}", -EINVAL, "serial:");
	expect(f.k, "naf-block", "{\"serial\":\"1111111111111111111111111111111111111111f\"}",
	       -EINVAL, "serial: must be");
	expect(f.k, "naf-block", "{}", -EINVAL, "exactly one");
	expect(f.k, "naf-block", NULL, -EINVAL, "exactly one");
	expect(f.k, "naf-block", "{\"device_id\":\"a\",\"serial\":\"1\"}", -EINVAL, "exactly one");
	expect(f.k, "naf-block", "{\"device_id\":\"\\n\"}", -EINVAL, "printable");
	expect(f.k, "naf-block", "{\"device_id\":[]}", -EINVAL, "must be a string");
	expect(f.k, "naf-block",
	       "{\"device_id\":\"0123456789012345678901234567890123456789012345678901234567890123X\"}",
	       -EINVAL, "must be 1..64");
	expect(f.k, "naf-blocklist", "{}", 0, "\"device_ids\":[\"dev 1\"]");
	expect(f.k, "naf-blocklist", NULL, 0, "\"serials\":[\"abcd\"]");
	expect(f.k, "naf-unblock", "{\"serial\":\"ABCD\"}", 0, "\"blocked\":false");
	expect(f.k, "naf-unblock", "{\"serial\":\"abcd\"}", -EINVAL, "is not blocklisted");
	expect(f.k, "naf-blocklist", NULL, 0, "\"serials\":[]");
	expect(f.k, "naf-keys", NULL, 0, "\"blocked_devices\":1");
	expect(NULL, "naf-keys", NULL, -EINVAL, "not configured");
	fx_close(&f);
}

/* ---- the figure: issue rate from 8 threads with group commit ----------------------------------- */

/* One rate: nt threads, n keys each, on a new store. */
static void bench_one(unsigned nt, unsigned n)
{
	struct fx f = { 0 };
	unsigned issued;
	double dt;

	fx_open(&f, 0, 10000, 0);
	dt = issue_n(f.k, nt, n, &issued);
	fx_stats(&f);
	assert_int_equal(issued, nt * n);
	assert_int_equal(f.st.batched_writes, nt * n);
	print_message("naf-keys issue rate: %u keys from %u thread%s in %.3f s = %.0f keys/s, "
		      "%" PRIu64 " commits (%.1f writes per commit, %.2f ms per commit)\n",
		      issued, nt, nt > 1 ? "s" : "", dt, issued / dt, f.st.commits,
		      (double)f.st.batched_writes / (double)(f.st.commits ? f.st.commits : 1),
		      dt * 1e3 / (double)(f.st.commits ? f.st.commits : 1));
	fx_close(&f);
}

/* The figure: 8 threads (the brief's), against 1 (no batching possible) and 64. */
static void test_bench(void **state)
{
	(void)state;
	if (!bench_mode) {
		bench_one(THREADS, 250);
		return;
	}
	bench_one(1, 1000);
	bench_one(THREADS, 2000);
	bench_one(THREADS_MAX, 250);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_issue), cmocka_unit_test(test_invalidate),
		cmocka_unit_test(test_blocklist),	  cmocka_unit_test(test_expiry_purge),
		cmocka_unit_test(test_purge_order),
		cmocka_unit_test(test_full),		  cmocka_unit_test(test_full_concurrent),
		cmocka_unit_test(test_timeout),	  cmocka_unit_test(test_close_waiting),	  cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_store_failure),	  cmocka_unit_test(test_memory_only),
		cmocka_unit_test(test_admin),		  cmocka_unit_test(test_bench),
	};
	const struct CMUnitTest bench[] = { cmocka_unit_test(test_bench) };
	const char *tmp = getenv("TMPDIR");
	uint8_t k[32];
	int rc, fd;

	bench_mode = argc > 1 && !strcmp(argv[1], "--bench");
	if (!tmp || !tmp[0] || strlen(tmp) > 200)
		tmp = "/tmp";
	snprintf(base, sizeof(base), "%s/kl_naf_keys_test.XXXXXX", tmp);
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(kek, sizeof(kek), "%s/kek", base);
	for (unsigned i = 0; i < sizeof(k); i++)
		k[i] = (uint8_t)(0x3c ^ i);
	fd = open(kek, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, k, sizeof(k)) != (ssize_t)sizeof(k)) {
		perror("KEK file");
		return 1;
	}
	close(fd);
	rc = bench_mode ? cmocka_run_group_tests_name("naf-keys-bench", bench, NULL, NULL)
			: cmocka_run_group_tests_name("naf-keys", tests, NULL, NULL);
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}

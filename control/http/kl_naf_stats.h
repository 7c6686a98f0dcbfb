/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NAF Key Center's counters for /metrics (kl_metrics.c renders them, kl_naf.c counts): the
 * routes and HTTP result codes are X-macro lists defined here once, the enum, the label names and
 * the families all come from them. Header only; keylined owns the struct (it outlives the
 * service) and puts it in its stats view (struct kl_stats_view.naf).
 *
 * The Zn client's and the issued keys' own counters are not copied: while the Key Center runs it
 * registers pull (under lock), which fills them from kl_zn_get_stats / kl_naf_keys_get_stats on
 * each scrape; it unregisters before stopping either.
 */
#ifndef KL_NAF_STATS_H
#define KL_NAF_STATS_H

#include <pthread.h>
#include <stdint.h>

#include "kl_naf_keys.h"
#include "kl_zn.h"

/* X(ENUM, label, path): what a request was for. */
#define KL_NAF_ROUTE_LIST(X)                                   \
	X(ISSUE, "issue", "POST /v1/ks-local-mt")              \
	X(INVALIDATE, "invalidate", "DELETE /v1/ks-local-mt/") \
	X(OTHER, "other", "any other method or path")

/* X(code): the HTTP statuses the Key Center answers with. */
#define KL_NAF_CODE_LIST(X) X(200) X(400) X(403) X(404) X(405) X(413) X(429) X(500) X(503)

enum kl_naf_route {
#define KL_X(e, l, p) KL_NAF_ROUTE_##e,
	KL_NAF_ROUTE_LIST(KL_X)
#undef KL_X
	KL_NAF_ROUTE__COUNT
};

enum kl_naf_code {
#define KL_X(c) KL_NAF_CODE_##c,
	KL_NAF_CODE_LIST(KL_X)
#undef KL_X
	KL_NAF_CODE__COUNT
};

static inline const char *kl_naf_route_label(unsigned r)
{
	static const char *const t[] = {
#define KL_X(e, l, p) l,
		KL_NAF_ROUTE_LIST(KL_X)
#undef KL_X
		"?"
	};
	return t[r < KL_NAF_ROUTE__COUNT ? r : KL_NAF_ROUTE__COUNT];
}

static inline unsigned kl_naf_code_value(unsigned c)
{
	static const unsigned t[] = {
#define KL_X(c) c,
		KL_NAF_CODE_LIST(KL_X)
#undef KL_X
		0
	};
	return t[c < KL_NAF_CODE__COUNT ? c : KL_NAF_CODE__COUNT];
}

/* The code's index, or KL_NAF_CODE__COUNT for one not in the list. */
static inline unsigned kl_naf_code_index(unsigned status)
{
	for (unsigned i = 0; i < KL_NAF_CODE__COUNT; i++)
		if (kl_naf_code_value(i) == status)
			return i;
	return KL_NAF_CODE__COUNT;
}

/* Upper bounds of the Zn latency buckets (kl_zn_stats.latency; the last one is +Inf), in µs. */
static const uint64_t kl_naf_zn_lat_bound_us[KL_ZN_LAT_BUCKETS - 1] = {
	500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000
};

/* The Zn results' labels (= kl_zn_status_name, which would tie /metrics to the Zn client). */
static inline const char *kl_naf_zn_status_label(unsigned st)
{
	static const char *const t[KL_ZN__COUNT + 1] = {
		[KL_ZN_OK] = "ok",
		[KL_ZN_UNKNOWN] = "unknown",
		[KL_ZN_NOT_AUTHORISED] = "not_authorised",
		[KL_ZN_EXPIRED] = "expired",
		[KL_ZN_UNREACHABLE] = "unreachable",
		[KL_ZN_BAD_ANSWER] = "bad_answer",
		[KL_ZN__COUNT] = "?",
	};
	return t[st < KL_ZN__COUNT ? st : KL_ZN__COUNT];
}

struct kl_naf_stats {
	uint64_t requests[KL_NAF_ROUTE__COUNT][KL_NAF_CODE__COUNT]; /* relaxed atomics */
	uint64_t handshakes;	   /* TLS handshakes completed (connections that sent a request) */
	uint64_t conn_no_request;  /* connections closed before a request: failed handshakes
				    * (plain HTTP, TLS 1.1, no common cipher), silent clients */
	uint64_t conn_timed_out;   /* closed for a request not completed in time */
	uint64_t connections;	   /* gauge: open now */
	pthread_mutex_t lock;	   /* guards pull, pull_arg */
	void (*pull)(void *arg, struct kl_zn_stats *zn, struct kl_naf_keys_stats *keys);
	void *pull_arg;
	uint64_t tls_failed;	   /* TLS handshakes that failed (GnuTLS error in the handshake:
				    * plain HTTP, TLS 1.1, no common cipher or group, a client
				    * that aborts it) */
	uint64_t cert_missing;	   /* requests refused (403): no client certificate */
	uint64_t cert_refused;	   /* requests refused (403): a certificate the route's CA does not
				    * verify (another CA, revoked, expired, unparseable) */
};

#define KL_NAF_STATS_INIT { .lock = PTHREAD_MUTEX_INITIALIZER }

static inline void kl_naf_stats_count(struct kl_naf_stats *s, enum kl_naf_route r,
				      unsigned status)
{
	unsigned c = kl_naf_code_index(status);

	if (s && c < KL_NAF_CODE__COUNT)
		__atomic_fetch_add(&s->requests[r][c], 1, __ATOMIC_RELAXED);
}

static inline void kl_naf_stats_add(uint64_t *v, int64_t n)
{
	__atomic_fetch_add(v, (uint64_t)n, __ATOMIC_RELAXED);
}

/** Any thread: the Zn and key counters while the Key Center runs. @return 1, or 0 (not running). */
static inline int kl_naf_stats_pull(struct kl_naf_stats *s, struct kl_zn_stats *zn,
				    struct kl_naf_keys_stats *keys)
{
	int got = 0;

	pthread_mutex_lock(&s->lock);
	if (s->pull) {
		s->pull(s->pull_arg, zn, keys);
		got = 1;
	}
	pthread_mutex_unlock(&s->lock);
	return got;
}

#endif

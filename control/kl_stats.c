/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "kl_stats.h"

static void add(uint64_t *dst, const uint64_t *src, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

int kl_stats_sum(const struct kl_stats_view *v, int worker, struct kl_stats_total *out)
{
	unsigned lo, hi;

	if (!v || !out || v->n_workers > KL_STATS_MAX_WORKERS ||
	    (worker >= 0 && (unsigned)worker >= v->n_workers))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	lo = worker < 0 ? 0 : (unsigned)worker;
	hi = worker < 0 ? v->n_workers : (unsigned)worker + 1;
	for (unsigned w = lo; w < hi; w++) {
		if (v->engine[w]) {
			add(out->engine.counter, v->engine[w]->counter, KL_CNT__COUNT);
			add(out->engine.drop, v->engine[w]->drop, KL_DROP__COUNT);
		}
		if (v->io[w]) {
			add(out->io.counter, v->io[w]->counter, KL_IO_CNT__COUNT);
			add(out->io.net_drop, v->io[w]->net_drop, KL_NET_DROP__COUNT);
			add(out->io.svc_hist, v->io[w]->svc_hist, KL_IO_HIST_N + 1);
			add(&out->io.svc_sum_ns, &v->io[w]->svc_sum_ns, 1);
		}
	}
	return 0;
}

/* kl_s2s_stats scans the tables: /metrics, the admin socket and telemetry share one scan per
 * second (control-plane threads; the workers never wait for this lock). */
static pthread_mutex_t s2s_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	const struct kl_s2s *of;
	struct timespec at;
	struct kl_s2s_stats st;
} s2s_cache;

int kl_stats_s2s(const struct kl_stats_view *v, struct kl_s2s_stats *out)
{
	const struct kl_s2s *s2s = v ? __atomic_load_n(&v->s2s, __ATOMIC_ACQUIRE) : NULL;
	struct timespec now;

	if (!s2s || !out)
		return -ENOENT;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&s2s_mu);
	if (s2s_cache.of != s2s || now.tv_sec - s2s_cache.at.tv_sec > 1 ||
	    (now.tv_sec - s2s_cache.at.tv_sec) * 1000000000L + now.tv_nsec - s2s_cache.at.tv_nsec >=
		    1000000000L) {
		kl_s2s_stats(s2s, &s2s_cache.st);
		s2s_cache.of = s2s;
		s2s_cache.at = now;
	}
	*out = s2s_cache.st;
	pthread_mutex_unlock(&s2s_mu);
	return 0;
}

void kl_stats_s2s_forget(const struct kl_s2s *s2s)
{
	pthread_mutex_lock(&s2s_mu);
	if (s2s_cache.of == s2s)
		memset(&s2s_cache, 0, sizeof(s2s_cache));
	pthread_mutex_unlock(&s2s_mu);
}

const char *kl_stats_table_kind_name(unsigned kind)
{
	return kl_table_kind_plural(kind);
}

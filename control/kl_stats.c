/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

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

const char *kl_stats_table_kind_name(unsigned kind)
{
	return kl_table_kind_plural(kind);
}

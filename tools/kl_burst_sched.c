/* SPDX-License-Identifier: BSD-3-Clause */
/* keyline-burst: latency histogram, start schedules and the back-off of retransmissions. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kl_burst.h"

/* ---- histogram ------------------------------------------------------------------------------ */

void kl_hist_reset(struct kl_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned kl_hist_index(uint64_t v)
{
	unsigned e, shift;

	if (v < KL_HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* >= KL_HIST_SUB_BITS */
	shift = e - KL_HIST_SUB_BITS;
	return KL_HIST_SUB + shift * KL_HIST_SUB + (unsigned)((v >> shift) - KL_HIST_SUB);
}

void kl_hist_bounds(unsigned i, uint64_t *lo, uint64_t *hi)
{
	unsigned shift, sub;
	uint64_t l, w;

	if (i >= KL_HIST_BUCKETS)
		i = KL_HIST_BUCKETS - 1;
	if (i < KL_HIST_SUB) {
		*lo = i;
		*hi = (uint64_t)i + 1;
		return;
	}
	shift = (i - KL_HIST_SUB) / KL_HIST_SUB;
	sub = (i - KL_HIST_SUB) % KL_HIST_SUB;
	l = (uint64_t)(KL_HIST_SUB + sub) << shift;
	w = 1ull << shift;
	*lo = l;
	*hi = l > UINT64_MAX - w ? UINT64_MAX : l + w;
}

void kl_hist_add(struct kl_hist *h, uint64_t v)
{
	h->b[kl_hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

uint64_t kl_hist_quantile(const struct kl_hist *h, double q)
{
	uint64_t rank, cum = 0, lo, hi, v;

	if (!h->count)
		return 0;
	if (!(q > 0))
		q = 0;
	if (q >= 1)
		return h->max;
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (unsigned i = 0; i < KL_HIST_BUCKETS; i++) {
		cum += h->b[i];
		if (cum >= rank) {
			kl_hist_bounds(i, &lo, &hi);
			v = hi == UINT64_MAX ? UINT64_MAX : hi - 1; /* the last bucket holds 2^64-1 */
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

json_t *kl_hist_json(const struct kl_hist *h, int buckets)
{
	static const struct {
		const char *name;
		double q;
	} qs[] = { { "p50", 0.5 }, { "p90", 0.9 }, { "p99", 0.99 }, { "p99.9", 0.999 } };
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "n", json_integer((json_int_t)h->count));
	json_object_set_new(o, "min", json_real(h->count ? us(h->min) : 0));
	json_object_set_new(o, "mean", json_real(h->count ? us(h->sum) / (double)h->count : 0));
	for (unsigned i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		json_object_set_new(o, qs[i].name, json_real(us(kl_hist_quantile(h, qs[i].q))));
	json_object_set_new(o, "max", json_real(us(h->max)));
	if (buckets) {
		/* [lower bound, upper bound (exclusive), count] of every nonzero bucket, µs */
		json_t *a = json_array();

		for (unsigned i = 0; a && i < KL_HIST_BUCKETS; i++) {
			uint64_t lo, hi;

			if (!h->b[i])
				continue;
			kl_hist_bounds(i, &lo, &hi);
			json_array_append_new(a, json_pack("[f,f,I]", us(lo), us(hi), (json_int_t)h->b[i]));
		}
		json_object_set_new(o, "buckets", a ? a : json_null());
		json_object_set_new(o, "bucket_unit", json_string("us"));
	}
	return o;
}

/* ---- schedule ------------------------------------------------------------------------------- */

const char *kl_burst_mode_name(enum kl_burst_mode m)
{
	switch (m) {
	case KL_BURST_MODE_BURST: return "burst";
	case KL_BURST_MODE_RATE: return "rate";
	case KL_BURST_MODE_POISSON: return "poisson";
	case KL_BURST_MODE_MAX: return "max";
	}
	return "unknown";
}

/* splitmix64: a fast, well-mixed deterministic stream; schedules need no CSPRNG. */
static uint64_t mix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double unit(uint64_t *s)
{
	return (double)(mix64(s) >> 11) * 0x1.0p-53; /* [0, 1) */
}

struct start {
	uint64_t t;
	uint32_t ue;
};

static int cmp_start(const void *a, const void *b)
{
	const struct start *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->ue < y->ue ? -1 : x->ue > y->ue;
}

int kl_burst_schedule(enum kl_burst_mode m, uint32_t n, double window_s, double rate,
		      uint64_t seed, uint64_t *start_ns, uint32_t *order)
{
	uint64_t s = seed;
	double t = 0;

	if ((n && (!start_ns || !order)) ||
	    (m == KL_BURST_MODE_BURST && !(window_s > 0 && window_s < 1e6)) ||
	    ((m == KL_BURST_MODE_RATE || m == KL_BURST_MODE_POISSON) && !(rate > 0 && rate < 1e10)))
		return -EINVAL;
	switch (m) {
	case KL_BURST_MODE_BURST: {
		struct start *v = malloc((n ? n : 1) * sizeof(*v));

		if (!v)
			return -ENOMEM;
		for (uint32_t i = 0; i < n; i++) {
			v[i].t = (uint64_t)(unit(&s) * window_s * 1e9);
			v[i].ue = i;
		}
		qsort(v, n, sizeof(*v), cmp_start);
		for (uint32_t i = 0; i < n; i++) {
			start_ns[i] = v[i].t;
			order[i] = v[i].ue;
		}
		free(v);
		return 0;
	}
	case KL_BURST_MODE_RATE:
		for (uint32_t i = 0; i < n; i++) {
			start_ns[i] = (uint64_t)llround((double)i * 1e9 / rate);
			order[i] = i;
		}
		return 0;
	case KL_BURST_MODE_POISSON:
		for (uint32_t i = 0; i < n; i++) {
			start_ns[i] = (uint64_t)(t * 1e9);
			order[i] = i;
			t += -log1p(-unit(&s)) / rate; /* exponential gap, mean 1 / rate */
		}
		return 0;
	case KL_BURST_MODE_MAX:
		for (uint32_t i = 0; i < n; i++) {
			start_ns[i] = 0;
			order[i] = i;
		}
		return 0;
	}
	return -EINVAL;
}

uint64_t kl_burst_backoff_ns(uint32_t timeout_ms, unsigned t)
{
	uint64_t ms = timeout_ms;

	if (t > 40 || (timeout_ms && ms << t > KL_BURST_BACKOFF_CAP_MS))
		ms = timeout_ms ? KL_BURST_BACKOFF_CAP_MS : 0;
	else
		ms <<= t;
	return ms * 1000000ull;
}

uint64_t kl_burst_jitter_ns(uint64_t *state, uint64_t max_ns)
{
	if (!max_ns)
		return 0;
	/* 64 x 64 -> high 64 bits: uniform enough, no modulo bias worth a loop at these ranges */
	return (uint64_t)(((unsigned __int128)mix64(state) * max_ns) >> 64);
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Observability end to end: real requests served by two real workers against a real key table,
 * then read back through Prometheus /metrics (over HTTP on 127.0.0.1 and [::1], checked by a
 * strict exposition-format parser) and through the DPDK telemetry socket (JSON). I/O counters
 * come from kl_io_stats filled with known values, as the I/O loops are not part of this test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <rte_eal.h>

#include "kl_engine.h"
#include "kl_metrics.h"
#include "kl_telemetry.h"

#define SEC(s) ((uint64_t)(s) << 32)
#define NW 2

static struct kl_table *tab;
static struct kl_worker *wk[NW];
static struct kl_crypto *cli;
static uint64_t now;
static struct kl_io_stats io[NW];
static struct kl_stats_view view;
static struct kl_ctl_stats ctl; /* the control plane's counters, known values from setup */
/* What the traffic below must have produced, kept by intent (not read back from the engine). */
static uint64_t want_cnt[NW][KL_CNT__COUNT];
static uint64_t want_drop[NW][KL_DROP__COUNT];

static const uint8_t MUK[32] = { 0x4d, 0x55, 0x4b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
				 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29 };
static const uint8_t EMSE_PSK[16] = { 0xE5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
static const char *UE_ID = "ue1@ims.mnc001.mcc001.3gppnetwork.org";
static const char *UE2_ID = "ue2@ims.mnc001.mcc001.3gppnetwork.org";
static const char *EMSE_ID = "emse-7.corp.example";
static const char *IMSI = "001010000000001";
static const char *IMSI_OLD = "001010000000002";
static const char *APPID = "alice@factory.example";
static const uint8_t DOMAIN[3] = { 0x00, 0xF1, 0x10 };
static const char *VERSION = "0.1.0 \"test\"\\x"; /* exercises label escaping */
static uint32_t rand_ctr;

/* ---- traffic ------------------------------------------------------------------------------- */

struct creq {
	struct kl_client_req r;
	uint8_t rand[16];
	uint8_t buf[600];
};

/* RANDs as a client's CSPRNG would make them (splitmix64 of a counter): the replay cache
 * spreads entries by RAND bits, and a counter-like RAND would crowd one bucket into evictions. */
static void fresh_rand(uint8_t r[16])
{
	for (int h = 0; h < 2; h++) {
		uint64_t z = (uint64_t)(++rand_ctr) * 0x9E3779B97F4A7C15ull;

		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
		z ^= z >> 31;
		memcpy(r + 8 * h, &z, 8);
	}
}

static void mbms(struct creq *q, const char *id, uint16_t group, uint8_t prf)
{
	memset(q, 0, sizeof(*q));
	fresh_rand(q->rand);
	q->r.spec = (struct kl_mikey_req_spec){ .rand = q->rand, .id = (const uint8_t *)id,
						.id_len = (uint16_t)strlen(id), .ts = now,
						.csb_id = 0x2000 + rand_ctr, .group = group,
						.prf = prf, .kind = KL_KIND_MBMS };
	memcpy(q->r.spec.domain, DOMAIN, 3);
	q->r.psk = MUK;
	q->r.psk_len = sizeof(MUK);
	q->r.buf = q->buf;
	q->r.cap = sizeof(q->buf);
	assert_int_equal(kl_client_sign(cli, &q->r, 1), 1);
}

static void e2m(struct creq *q, const char *ue, uint8_t prf)
{
	memset(q, 0, sizeof(*q));
	fresh_rand(q->rand);
	q->r.spec = (struct kl_mikey_req_spec){ .rand = q->rand, .id = (const uint8_t *)EMSE_ID,
						.id_len = (uint16_t)strlen(EMSE_ID),
						.ue = (const uint8_t *)ue, .ue_len = (uint16_t)strlen(ue),
						.ts = now, .csb_id = 91, .prf = prf, .id_type = 1,
						.kind = KL_KIND_E2M };
	q->r.psk = EMSE_PSK;
	q->r.psk_len = sizeof(EMSE_PSK);
	q->r.buf = q->buf;
	q->r.cap = sizeof(q->buf);
	assert_int_equal(kl_client_sign(cli, &q->r, 1), 1);
}

/* Serve one datagram on worker w, expecting an answer (drop KL_DROP_NONE; error: an error
 * message, else keys), checked by the client, or that silent drop. */
static void serve(int w, struct creq *q, uint16_t len, enum kl_drop drop, bool error)
{
	static uint8_t out[1600];
	struct kl_pkt p = { .in = q->buf, .out = out, .in_len = len, .out_cap = sizeof(out) };
	struct kl_client_result res;

	kl_engine_serve(wk[w], now, &p, 1);
	kl_table_quiescent(tab, (unsigned)w);
	assert_int_equal(p.drop, drop);
	if (drop != KL_DROP_NONE) {
		assert_int_equal(p.out_len, 0);
		want_drop[w][drop]++;
		return;
	}
	assert_true(p.out_len > 0);
	assert_int_equal(kl_client_verify(cli, &q->r, out, p.out_len, now, 1u << 30, &res), 0);
	assert_int_equal(res.is_error, error);
}

/* One datagram on worker w: RX, its request kind and its answer (KL_CNT__COUNT: none). */
static void want(int w, unsigned req, unsigned result)
{
	want_cnt[w][KL_CNT_RX]++;
	if (req < KL_CNT__COUNT)
		want_cnt[w][req]++;
	if (result < KL_CNT__COUNT)
		want_cnt[w][result]++;
}

/* A mixed load on both workers; run as many times as the tests need. */
static void traffic(void)
{
	struct creq q;

	/* worker 0: MBMS */
	for (uint8_t prf = 0; prf < 2; prf++) {
		mbms(&q, UE_ID, 7, prf);
		serve(0, &q, q.r.len, KL_DROP_NONE, false);
		want(0, KL_CNT_REQ_MBMS, KL_CNT_ANSWERED_MBMS);
	}
	mbms(&q, UE_ID, 7, 0);
	q.r.spec.ts = now - SEC(600);
	assert_int_equal(kl_client_sign(cli, &q.r, 1), 1);
	serve(0, &q, q.r.len, KL_DROP_NONE, true);
	want(0, KL_CNT_REQ_MBMS, KL_CNT_ERR_INVALID_TS);
	mbms(&q, UE_ID, 9, 0); /* not one of the UE's groups */
	serve(0, &q, q.r.len, KL_DROP_NONE, true);
	want(0, KL_CNT_REQ_MBMS, KL_CNT_ERR_NOT_AUTHORISED);
	mbms(&q, UE_ID, 7, 1);
	q.buf[q.r.len - 1] ^= 0x40;
	serve(0, &q, q.r.len, KL_DROP_BAD_MAC, false);
	want(0, KL_CNT_REQ_MBMS, KL_CNT__COUNT);
	mbms(&q, UE_ID, 7, 0);
	serve(0, &q, (uint16_t)(q.r.len - 3), KL_DROP_MALFORMED, false); /* truncated */
	want(0, KL_CNT__COUNT, KL_CNT__COUNT);
	mbms(&q, "stranger@ims.example", 7, 0);
	serve(0, &q, q.r.len, KL_DROP_UNKNOWN_IDENTITY, false);
	want(0, KL_CNT_REQ_MBMS, KL_CNT__COUNT);

	/* worker 1: E2M and a replay */
	for (uint8_t prf = 0; prf < 2; prf++) {
		e2m(&q, prf ? APPID : IMSI, prf);
		serve(1, &q, q.r.len, KL_DROP_NONE, false);
		want(1, KL_CNT_REQ_E2M, KL_CNT_ANSWERED_E2M);
	}
	e2m(&q, "001010000000099", 0);
	serve(1, &q, q.r.len, KL_DROP_NONE, true);
	want(1, KL_CNT_REQ_E2M, KL_CNT_ERR_NO_SUCH_KEY);
	e2m(&q, IMSI_OLD, 1); /* its only key expired */
	serve(1, &q, q.r.len, KL_DROP_NONE, true);
	want(1, KL_CNT_REQ_E2M, KL_CNT_ERR_KEY_NOT_VALID);
	mbms(&q, UE2_ID, 8, 0);
	serve(1, &q, q.r.len, KL_DROP_NONE, false);
	want(1, KL_CNT_REQ_MBMS, KL_CNT_ANSWERED_MBMS);
	serve(1, &q, q.r.len, KL_DROP_REPLAY, false);
	want(1, KL_CNT_REQ_MBMS, KL_CNT__COUNT);
}

static uint64_t want_total_cnt(unsigned c)
{
	return want_cnt[0][c] + want_cnt[1][c];
}

static uint64_t want_total_drop(unsigned d)
{
	return want_drop[0][d] + want_drop[1][d];
}

/* ---- strict exposition-format parser --------------------------------------------------------- */

#define MAX_SAMPLES 4096
#define MAX_FAMILIES 128

struct sample {
	char name[96];
	char labels[256]; /* canonical: name=value pairs sorted by name, ',' separated, unescaped */
	char le[32];
	double value;
	char raw[32];
};

struct family {
	char name[96];
	char type[16];
	char help[256];
};

struct expo {
	struct sample s[MAX_SAMPLES];
	unsigned ns;
	struct family f[MAX_FAMILIES];
	unsigned nf;
};

static bool name_ok(const char *s, size_t n, bool metric)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			     (metric && c == ':');

		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return metric || n < 2 || s[0] != '_' || s[1] != '_';
}

static struct family *find_family(struct expo *e, const char *name)
{
	for (unsigned i = 0; i < e->nf; i++)
		if (strcmp(e->f[i].name, name) == 0)
			return &e->f[i];
	return NULL;
}

struct lpair {
	char k[64];
	char v[128];
};

static int lpair_cmp(const void *a, const void *b)
{
	return strcmp(((const struct lpair *)a)->k, ((const struct lpair *)b)->k);
}

/* Parses "{k="v",...}" at *p; fills the canonical label string and le. @return 0 or -1. */
static int parse_labels(const char **pp, struct sample *s)
{
	struct lpair lp[8];
	unsigned n = 0;
	const char *p = *pp + 1;

	if (*p == '}') /* "{}" is legal, but we never emit it */
		return -1;
	for (;;) {
		const char *k = p;
		size_t vl = 0;

		if (n == 8)
			return -1;
		while (*p && *p != '=')
			p++;
		if (*p != '=' || !name_ok(k, (size_t)(p - k), false) || (size_t)(p - k) >= 64)
			return -1;
		memcpy(lp[n].k, k, (size_t)(p - k));
		lp[n].k[p - k] = '\0';
		if (*++p != '"')
			return -1;
		for (p++; *p != '"'; p++) {
			char c = *p;

			if (c == '\0' || c == '\n')
				return -1;
			if (c == '\\') {
				p++;
				c = *p == 'n' ? '\n' : *p == '\\' ? '\\' : *p == '"' ? '"' : 0;
				if (!c)
					return -1;
			}
			if (vl + 1 >= sizeof(lp[n].v))
				return -1;
			lp[n].v[vl++] = c;
		}
		lp[n].v[vl] = '\0';
		for (unsigned i = 0; i < n; i++)
			if (strcmp(lp[i].k, lp[n].k) == 0)
				return -1;
		n++;
		p++;
		if (*p == '}')
			break;
		if (*p != ',')
			return -1;
		p++;
	}
	*pp = p + 1;
	qsort(lp, n, sizeof(lp[0]), lpair_cmp);
	s->labels[0] = '\0';
	for (unsigned i = 0; i < n; i++) {
		size_t used = strlen(s->labels);
		int w;

		if (strcmp(lp[i].k, "le") == 0) {
			if (strlen(lp[i].v) >= sizeof(s->le))
				return -1;
			memcpy(s->le, lp[i].v, strlen(lp[i].v) + 1);
			continue;
		}
		w = snprintf(s->labels + used, sizeof(s->labels) - used, "%s%.63s=%.127s",
			     used ? "," : "", lp[i].k, lp[i].v);
		if (w < 0 || (size_t)w >= sizeof(s->labels) - used)
			return -1;
	}
	return 0;
}

static bool value_ok(const char *v, double *out)
{
	char *end;

	if (strcmp(v, "+Inf") == 0 || strcmp(v, "-Inf") == 0 || strcmp(v, "NaN") == 0) {
		*out = strtod(v[0] == '+' ? v + 1 : v, NULL);
		return true;
	}
	if (!*v || (*v != '-' && *v != '.' && (*v < '0' || *v > '9')))
		return false;
	errno = 0;
	*out = strtod(v, &end);
	return errno == 0 && *end == '\0';
}

/* Does a sample name belong to the family last declared? */
static bool in_family(const struct family *f, const char *name)
{
	size_t l = strlen(f->name);

	if (strcmp(f->type, "histogram") != 0)
		return strcmp(name, f->name) == 0;
	return strncmp(name, f->name, l) == 0 &&
	       (strcmp(name + l, "_bucket") == 0 || strcmp(name + l, "_sum") == 0 ||
		strcmp(name + l, "_count") == 0);
}

/* Parse a whole body, failing the test on the first violation (line shown). */
static void parse_expo(const char *body, struct expo *e)
{
	const char *line = body;
	struct family *cur = NULL;

	memset(e, 0, sizeof(*e));
	assert_true(*body != '\0');
	assert_int_equal(body[strlen(body) - 1], '\n');
	while (*line) {
		const char *nl = strchr(line, '\n');
		char buf[512];
		size_t len = (size_t)(nl - line);

		if (len >= sizeof(buf)) {
			fail_msg("line too long");
			return;
		}
		memcpy(buf, line, len);
		buf[len] = '\0';
		line = nl + 1;
		if (len == 0)
			fail_msg("empty line");
		if (strncmp(buf, "# HELP ", 7) == 0) {
			char *name = buf + 7, *sp = strchr(name, ' ');

			if (!sp || !name_ok(name, (size_t)(sp - name), true))
				fail_msg("bad HELP: %s", buf);
			*sp = '\0';
			if (find_family(e, name))
				fail_msg("HELP after the family started: %s", name);
			for (const char *h = sp + 1; *h; h++)
				if (*h == '\\' && h[1] != '\\' && h[1] != 'n')
					fail_msg("bad escape in HELP of %s", name);
			if (!sp[1])
				fail_msg("empty HELP for %s", name);
			assert_true(e->nf < MAX_FAMILIES);
			cur = &e->f[e->nf++];
			snprintf(cur->name, sizeof(cur->name), "%s", name);
			snprintf(cur->help, sizeof(cur->help), "%s", sp + 1);
			continue;
		}
		if (strncmp(buf, "# TYPE ", 7) == 0) {
			char *name = buf + 7, *sp = strchr(name, ' ');

			if (!sp)
				fail_msg("bad TYPE: %s", buf);
			*sp = '\0';
			if (!cur || strcmp(cur->name, name) != 0 || cur->type[0])
				fail_msg("TYPE %s: not right after its HELP, or twice", name);
			if (strcmp(sp + 1, "counter") && strcmp(sp + 1, "gauge") &&
			    strcmp(sp + 1, "histogram"))
				fail_msg("TYPE %s: unexpected type %s", name, sp + 1);
			snprintf(cur->type, sizeof(cur->type), "%s", sp + 1);
			if (!strcmp(cur->type, "counter") &&
			    (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total") != 0))
				fail_msg("counter %s does not end in _total", name);
			continue;
		}
		if (buf[0] == '#')
			fail_msg("unexpected comment: %s", buf);
		{
			struct sample *s;
			const char *p = buf;
			char *sp;

			assert_true(e->ns < MAX_SAMPLES);
			s = &e->s[e->ns++];
			while (*p && *p != '{' && *p != ' ')
				p++;
			if (!name_ok(buf, (size_t)(p - buf), true) || (size_t)(p - buf) >= sizeof(s->name))
				fail_msg("bad metric name: %s", buf);
			memcpy(s->name, buf, (size_t)(p - buf));
			if (!cur || !cur->type[0] || !in_family(cur, s->name))
				fail_msg("sample outside its family (or before its TYPE): %s", buf);
			if (*p == '{' && parse_labels(&p, s) < 0)
				fail_msg("bad labels: %s", buf);
			if (*p != ' ')
				fail_msg("no value: %s", buf);
			p++;
			sp = strchr(p, ' ');
			if (sp) /* no timestamps: Prometheus stamps scrapes itself */
				fail_msg("unexpected timestamp or trailing text: %s", buf);
			snprintf(s->raw, sizeof(s->raw), "%s", p);
			if (!value_ok(p, &s->value))
				fail_msg("bad value: %s", buf);
			if (!strcmp(cur->type, "counter") && !(s->value >= 0))
				fail_msg("negative counter: %s", buf);
			if (!strcmp(cur->type, "histogram") && (strstr(s->name, "_bucket") != NULL) != !!s->le[0])
				fail_msg("le on a non-bucket or missing on a bucket: %s", buf);
			for (unsigned i = 0; i + 1 < e->ns; i++)
				if (!strcmp(e->s[i].name, s->name) && !strcmp(e->s[i].labels, s->labels) &&
				    !strcmp(e->s[i].le, s->le))
					fail_msg("duplicate series: %s", buf);
		}
	}
	for (unsigned i = 0; i < e->nf; i++)
		if (!e->f[i].type[0])
			fail_msg("family %s has no TYPE", e->f[i].name);
}

static const struct sample *find(const struct expo *e, const char *name, const char *labels)
{
	for (unsigned i = 0; i < e->ns; i++)
		if (!strcmp(e->s[i].name, name) && !strcmp(e->s[i].labels, labels) && !e->s[i].le[0])
			return &e->s[i];
	return NULL;
}

/* The value of a series that must exist, as an exact integer. */
static uint64_t val(const struct expo *e, const char *name, const char *fmt, ...)
{
	char labels[256];
	const struct sample *s;
	char *end;
	uint64_t v;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(labels, sizeof(labels), fmt, ap);
	va_end(ap);
	s = find(e, name, labels);
	if (!s)
		fail_msg("missing series %s{%s}", name, labels);
	v = strtoull(s->raw, &end, 10);
	if (*end)
		fail_msg("%s{%s} is not an integer: %s", name, labels, s->raw);
	return v;
}

static unsigned count_series(const struct expo *e, const char *name)
{
	unsigned n = 0;

	for (unsigned i = 0; i < e->ns; i++)
		n += !strcmp(e->s[i].name, name);
	return n;
}

/* Check every series of a scrape against the traffic and the known I/O values. */
static void check_expo(const struct expo *e, const char *body)
{
	uint64_t io_hist_total = 0, cum = 0, sum_ns = 0;
	double prev_le = -1;
	unsigned nb = 0;

	assert_int_equal(val(e, "keyline_received_total", ""), want_total_cnt(KL_CNT_RX));
	assert_int_equal(val(e, "keyline_requests_total", "kind=mbms"), want_total_cnt(KL_CNT_REQ_MBMS));
	assert_int_equal(val(e, "keyline_requests_total", "kind=e2m"), want_total_cnt(KL_CNT_REQ_E2M));
	assert_int_equal(count_series(e, "keyline_requests_total"), KL_KIND__COUNT);
	assert_int_equal(val(e, "keyline_answers_total", "kind=mbms,result=key"),
			 want_total_cnt(KL_CNT_ANSWERED_MBMS));
	assert_int_equal(val(e, "keyline_answers_total", "kind=e2m,result=key"),
			 want_total_cnt(KL_CNT_ANSWERED_E2M));
	assert_int_equal(val(e, "keyline_answers_total", "result=error_invalid_ts"),
			 want_total_cnt(KL_CNT_ERR_INVALID_TS));
	assert_int_equal(val(e, "keyline_answers_total", "result=error_not_authorised"),
			 want_total_cnt(KL_CNT_ERR_NOT_AUTHORISED));
	assert_int_equal(val(e, "keyline_answers_total", "result=error_no_such_key"),
			 want_total_cnt(KL_CNT_ERR_NO_SUCH_KEY));
	assert_int_equal(val(e, "keyline_answers_total", "result=error_key_not_valid"),
			 want_total_cnt(KL_CNT_ERR_KEY_NOT_VALID));
	assert_int_equal(val(e, "keyline_answers_total", "result=error_not_ready"),
			 want_total_cnt(KL_CNT_ERR_NOT_READY));
	/* a key answer per kind, and the five error results */
	assert_int_equal(count_series(e, "keyline_answers_total"), KL_KIND__COUNT + 5);
	assert_int_equal(val(e, "keyline_replay_cache_evictions_total", ""), 0);
	for (int w = 0; w < NW; w++) {
		assert_int_equal(val(e, "keyline_worker_requests_total", "kind=mbms,worker=%d", w),
				 want_cnt[w][KL_CNT_REQ_MBMS]);
		assert_int_equal(val(e, "keyline_worker_requests_total", "kind=e2m,worker=%d", w),
				 want_cnt[w][KL_CNT_REQ_E2M]);
		assert_int_equal(val(e, "keyline_worker_answers_total", "kind=mbms,result=key,worker=%d", w),
				 want_cnt[w][KL_CNT_ANSWERED_MBMS]);
		assert_int_equal(val(e, "keyline_worker_answers_total", "result=error_no_such_key,worker=%d", w),
				 want_cnt[w][KL_CNT_ERR_NO_SUCH_KEY]);
	}
	/* every drop reason, and only those */
	for (unsigned d = 1; d < KL_DROP__COUNT; d++)
		assert_int_equal(val(e, "keyline_drops_total", "layer=mikey,reason=%s", kl_drop_name(d)),
				 want_total_drop(d));
	for (unsigned d = 1; d < KL_NET_DROP__COUNT; d++)
		assert_int_equal(val(e, "keyline_drops_total", "layer=net,reason=%s", kl_net_drop_name(d)),
				 io[0].net_drop[d] + io[1].net_drop[d]);
	assert_null(find(e, "keyline_drops_total", "layer=mikey,reason=none"));
	assert_int_equal(count_series(e, "keyline_drops_total"), KL_DROP__COUNT - 1 + KL_NET_DROP__COUNT - 1);
	for (unsigned c = 0; c < KL_IO_CNT__COUNT; c++) {
		char name[96];

		snprintf(name, sizeof(name), "keyline_io_%s_total", kl_io_counter_name(c));
		assert_int_equal(val(e, name, ""), io[0].counter[c] + io[1].counter[c]);
	}
	/* histogram: cumulative, monotone, bounds increasing, +Inf last and equal to _count */
	for (unsigned i = 0; i < e->ns; i++) {
		const struct sample *s = &e->s[i];
		double le;

		if (strcmp(s->name, "keyline_service_seconds_bucket") != 0)
			continue;
		assert_true(value_ok(s->le, &le));
		assert_true(le > prev_le);
		assert_true(s->value >= (double)cum);
		if (nb < KL_IO_HIST_N)
			assert_true(le == kl_io_hist_bound_ns[nb] / 1e9);
		else
			assert_string_equal(s->le, "+Inf");
		io_hist_total += io[0].svc_hist[nb] + io[1].svc_hist[nb];
		assert_true(s->value == (double)io_hist_total);
		cum = (uint64_t)s->value;
		prev_le = le;
		nb++;
	}
	assert_int_equal(nb, KL_IO_HIST_N + 1);
	assert_int_equal(val(e, "keyline_service_seconds_count", ""), cum);
	{
		const struct sample *s = find(e, "keyline_service_seconds_sum", "");
		unsigned long long whole, frac;

		assert_non_null(s);
		sum_ns = io[0].svc_sum_ns + io[1].svc_sum_ns;
		/* exact decimal seconds: 123.456789012 + 0.5 */
		assert_int_equal(sscanf(s->raw, "%llu.%llu", &whole, &frac), 2);
		assert_int_equal(whole * 1000000000ull + frac, sum_ns);
	}
	/* table, workers, start time, build info */
	assert_int_equal(val(e, "keyline_table_entries", "kind=ues"), 2);
	assert_int_equal(val(e, "keyline_table_entries", "kind=groups"), 3);
	assert_int_equal(val(e, "keyline_table_entries", "kind=emses"), 1);
	assert_int_equal(val(e, "keyline_table_entries", "kind=imsis"), 2);
	assert_int_equal(val(e, "keyline_table_entries", "kind=appids"), 1);
	assert_int_equal(val(e, "keyline_table_memory_bytes", ""), kl_table_memory(tab));
	assert_true(kl_table_memory(tab) > 0);
	assert_int_equal(val(e, "keyline_workers", ""), NW);
	assert_non_null(find(e, "keyline_start_time_seconds", ""));
	assert_string_equal(find(e, "keyline_start_time_seconds", "")->raw, "1700000000.123");
	{
		char labels[256];

		snprintf(labels, sizeof(labels), "crypto=ipsec-mb,io=socket,version=%s", VERSION);
		assert_int_equal(val(e, "keyline_build_info", "%s", labels), 1);
	}
	/* no identity, IMSI or application id anywhere */
	assert_null(strstr(body, UE_ID));
	assert_null(strstr(body, UE2_ID));
	assert_null(strstr(body, EMSE_ID));
	assert_null(strstr(body, IMSI));
	assert_null(strstr(body, IMSI_OLD));
	assert_null(strstr(body, APPID));
	assert_null(strstr(body, "stranger"));
}

/* The engine agrees with what the traffic intended (else the checks above prove nothing). */
static void check_engine_matches_intent(void)
{
	for (int w = 0; w < NW; w++) {
		const struct kl_worker_stats *st = kl_worker_stats(wk[w]);

		for (unsigned c = 0; c < KL_CNT__COUNT; c++)
			if (st->counter[c] != want_cnt[w][c])
				fail_msg("worker %d %s: %" PRIu64 ", want %" PRIu64, w, kl_counter_name(c),
					 st->counter[c], want_cnt[w][c]);
		for (unsigned d = 0; d < KL_DROP__COUNT; d++)
			if (st->drop[d] != want_drop[w][d])
				fail_msg("worker %d drop %s: %" PRIu64 ", want %" PRIu64, w, kl_drop_name(d),
					 st->drop[d], want_drop[w][d]);
	}
}

/* ---- HTTP client --------------------------------------------------------------------------- */

static int connect_to(int family, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss = { 0 };
	struct timeval tv = { .tv_sec = 5 };
	socklen_t sl;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, addr, &a->sin6_addr), 1);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, addr, &a->sin_addr), 1);
		sl = sizeof(*a);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n <= 0)
			return; /* the server may close early on garbage; the read side tells */
		buf += n;
		len -= (size_t)n;
	}
}

struct http_resp {
	int status;
	char headers[2048];
	char *body;
	size_t body_len;
	char raw[KL_METRICS_BODY_MAX + 4096];
	size_t raw_len;
};

/* Send req and read until the server closes; parse status, headers and body. */
static int http_raw(int family, const char *addr, uint16_t port, const char *req, size_t reqlen,
		    struct http_resp *r)
{
	int fd = connect_to(family, addr, port);
	char *hend;
	const char *cl;

	memset(r, 0, offsetof(struct http_resp, raw));
	r->raw_len = 0;
	assert_true(fd >= 0);
	send_all(fd, req, reqlen);
	for (;;) {
		ssize_t n = recv(fd, r->raw + r->raw_len, sizeof(r->raw) - 1 - r->raw_len, 0);

		if (n < 0 && errno == ECONNRESET)
			break; /* refused mid-request: what was read so far is the answer */
		if (n < 0)
			fail_msg("recv: %s", strerror(errno));
		if (n == 0)
			break;
		r->raw_len += (size_t)n;
		assert_true(r->raw_len < sizeof(r->raw) - 1);
	}
	close(fd);
	r->raw[r->raw_len] = '\0';
	if (r->raw_len == 0)
		return -1; /* closed without an answer */
	if (sscanf(r->raw, "HTTP/1.%*1[01] %d ", &r->status) != 1)
		fail_msg("no status line: %.60s", r->raw);
	hend = strstr(r->raw, "\r\n\r\n");
	assert_non_null(hend);
	assert_true((size_t)(hend - r->raw) < sizeof(r->headers));
	memcpy(r->headers, r->raw, (size_t)(hend - r->raw));
	r->body = hend + 4;
	r->body_len = r->raw_len - (size_t)(r->body - r->raw);
	cl = strcasestr(r->headers, "\r\nContent-Length: ");
	if (cl && strncmp(req, "HEAD ", 5) != 0) /* HEAD: the length of the GET body, no body */
		assert_int_equal(strtoul(cl + 18, NULL, 10), r->body_len);
	return r->status;
}

static struct http_resp resp;

static int http(int family, const char *addr, uint16_t port, const char *method, const char *path)
{
	char req[256];
	int n = snprintf(req, sizeof(req),
			 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", method, path);

	return http_raw(family, addr, port, req, (size_t)n, &resp);
}

static struct expo ex;

static void scrape_and_check(int family, const char *addr, uint16_t port)
{
	assert_int_equal(http(family, addr, port, "GET", "/metrics"), 200);
	assert_non_null(strcasestr(resp.headers, "\r\nContent-Type: text/plain; version=0.0.4"));
	assert_int_equal(strlen(resp.body), resp.body_len); /* no NUL inside */
	parse_expo(resp.body, &ex);
	check_expo(&ex, resp.body);
}

/* Every entry of KL_CTL_COUNTER_LIST is a family of its own, typed and helped by the list, with
 * the value the counters hold now. */
static void check_ctl(struct expo *e)
{
	for (unsigned c = 0; c < KL_CTL__COUNT; c++) {
		bool gauge = kl_ctl_counter_is_gauge(c);
		char name[96];
		const struct family *f;

		snprintf(name, sizeof(name), "keyline_%s%s", kl_ctl_counter_name(c),
			 gauge ? "" : "_total");
		f = find_family(e, name);
		if (!f)
			fail_msg("no family %s", name);
		assert_string_equal(f->type, gauge ? "gauge" : "counter");
		assert_string_equal(f->help, kl_ctl_counter_help(c));
		assert_int_equal(count_series(e, name), 1);
		assert_int_equal(val(e, name, ""), kl_ctl_get(&ctl, c));
	}
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_render(void **state)
{
	static char buf[KL_METRICS_BODY_MAX];
	ssize_t n;

	(void)state;
	check_engine_matches_intent();
	n = kl_metrics_render(&view, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	parse_expo(buf, &ex);
	check_expo(&ex, buf);
	check_ctl(&ex);
	/* families named by the lists, one HELP/TYPE each (the parser refuses repeats) */
	assert_non_null(find_family(&ex, "keyline_service_seconds"));
	assert_string_equal(find_family(&ex, "keyline_service_seconds")->type, "histogram");
	assert_string_equal(find_family(&ex, "keyline_table_entries")->type, "gauge");
	assert_string_equal(find_family(&ex, "keyline_io_rx_frames_total")->help,
			    kl_io_counter_desc(KL_IO_CNT_RX_FRAMES));
	/* a stopping daemon clears the table: its families go, the rest stays valid */
	{
		struct kl_stats_view nt = view;

		nt.table = NULL;
		assert_true(kl_metrics_render(&nt, buf, sizeof(buf)) > 0);
		parse_expo(buf, &ex);
		assert_null(find_family(&ex, "keyline_table_entries"));
		assert_null(find_family(&ex, "keyline_table_memory_bytes"));
		assert_int_equal(val(&ex, "keyline_received_total", ""), want_total_cnt(KL_CNT_RX));
		/* without control-plane counters their families are left out */
		nt.ctl = NULL;
		assert_true(kl_metrics_render(&nt, buf, sizeof(buf)) > 0);
		parse_expo(buf, &ex);
		assert_null(find_family(&ex, "keyline_admin_requests_total"));
		assert_null(find_family(&ex, "keyline_diameter_queued"));
	}
	/* too small a buffer is refused, not overrun */
	memset(buf, 'Z', sizeof(buf));
	assert_int_equal(kl_metrics_render(&view, buf, (size_t)n), -ENOSPC);
	assert_int_equal(buf[n], 'Z');
	assert_int_equal(kl_metrics_render(&view, buf, 1), -ENOSPC);
	assert_int_equal(kl_metrics_render(NULL, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(kl_metrics_render(&view, NULL, 10), -EINVAL);
}

/* Peers and the server-to-server state: per-peer counters labelled with the identity (escaped),
 * the unconfigured refusals, the tables' sizes; none of these families without them. */
static void test_render_s2s(void **state)
{
	static char buf[KL_METRICS_BODY_MAX];
	static struct kl_peers ps;
	struct kl_stats_view v = view;
	struct kl_s2s_stats st;
	struct kl_s2s *s2s = kl_s2s_create(64, 128, 16, 30, 300);

	(void)state;
	assert_non_null(s2s);
	memset(&ps, 0, sizeof(ps));
	ps.n = 2;
	memcpy(ps.p[0].id, "vlr-b.example", 13);
	ps.p[0].id_len = 13;
	memcpy(ps.p[1].id, "mme \"2\"\\x", 10);
	ps.p[1].id_len = 10;
	for (unsigned c = 0; c < KL_PEER_CNT__COUNT; c++)
		for (unsigned k = 0; k <= c; k++)
			kl_peer_count(&ps, 1, (enum kl_peer_counter)c);
	kl_peer_count(&ps, 0, KL_PEER_CNT_SENT);
	for (unsigned k = 0; k < 7; k++)
		kl_peer_count(&ps, KL_PEER_UNCONFIGURED, KL_PEER_CNT_REFUSED);
	v.peers = &ps;
	v.s2s = s2s;
	assert_true(kl_metrics_render(&v, buf, sizeof(buf)) > 0);
	parse_expo(buf, &ex);
	for (unsigned c = 0; c < KL_PEER_CNT__COUNT; c++) {
		char name[96];

		snprintf(name, sizeof(name), "keyline_peer_%s_total", kl_peer_counter_name(c));
		assert_non_null(find_family(&ex, name));
		assert_string_equal(find_family(&ex, name)->type, "counter");
		assert_string_equal(find_family(&ex, name)->help, kl_peer_counter_desc(c));
		assert_int_equal(count_series(&ex, name), 2);
		assert_int_equal(val(&ex, name, "peer=mme \"2\"\\x"), c + 1);
		assert_int_equal(val(&ex, name, "peer=vlr-b.example"), c == KL_PEER_CNT_SENT);
	}
	assert_int_equal(val(&ex, "keyline_peer_unconfigured_refused_total", ""), 7);
	assert_int_equal(kl_stats_s2s(&v, &st), 0);
	assert_int_equal(val(&ex, "keyline_s2s_capacity", "table=rendezvous"), st.rendezvous_cap);
	assert_int_equal(val(&ex, "keyline_s2s_capacity", "table=cache"), st.cache_cap);
	assert_int_equal(val(&ex, "keyline_s2s_capacity", "table=pending"), 16);
	assert_true(st.rendezvous_cap >= 64 && st.cache_cap >= 128);
	assert_int_equal(val(&ex, "keyline_s2s_entries", "table=rendezvous"), 0);
	assert_int_equal(val(&ex, "keyline_s2s_full_total", "table=cache"), 0);
	assert_int_equal(val(&ex, "keyline_s2s_contended_total", ""), 0);
	/* the plain view has none of them */
	assert_true(kl_metrics_render(&view, buf, sizeof(buf)) > 0);
	parse_expo(buf, &ex);
	assert_null(find_family(&ex, "keyline_peer_sent_total"));
	assert_null(find_family(&ex, "keyline_s2s_entries"));
	kl_stats_s2s_forget(s2s);
	kl_s2s_destroy(s2s);
}

static void test_render_64_workers(void **state)
{
	static char buf[KL_METRICS_BODY_MAX];
	struct kl_stats_view big = view;
	ssize_t n;

	(void)state;
	big.n_workers = KL_STATS_MAX_WORKERS;
	for (unsigned w = 0; w < KL_STATS_MAX_WORKERS; w++) {
		big.engine[w] = kl_worker_stats(wk[w % NW]);
		big.io[w] = &io[w % NW];
	}
	n = kl_metrics_render(&big, buf, sizeof(buf));
	assert_true(n > 0);
	parse_expo(buf, &ex);
	assert_int_equal(count_series(&ex, "keyline_worker_requests_total"),
			 KL_KIND__COUNT * KL_STATS_MAX_WORKERS);
	assert_int_equal(count_series(&ex, "keyline_worker_answers_total"),
			 (KL_KIND__COUNT + 5) * KL_STATS_MAX_WORKERS);
	assert_int_equal(val(&ex, "keyline_requests_total", "kind=mbms"),
			 KL_STATS_MAX_WORKERS / NW * want_total_cnt(KL_CNT_REQ_MBMS));
	assert_int_equal(val(&ex, "keyline_worker_requests_total", "kind=e2m,worker=63"),
			 want_cnt[1][KL_CNT_REQ_E2M]);
	big.n_workers = KL_STATS_MAX_WORKERS + 1;
	assert_int_equal(kl_metrics_render(&big, buf, sizeof(buf)), -EINVAL);
}

static struct kl_config_endpoint ep4(const char *addr, uint16_t port)
{
	struct kl_config_endpoint ep = { .enabled = true, .family = AF_INET, .port = port };

	assert_int_equal(inet_pton(AF_INET, addr, &ep.v4), 1);
	return ep;
}

static void test_http_v4(void **state)
{
	struct kl_config_endpoint ep = ep4("127.0.0.1", 0);
	char err[256] = "";
	struct kl_metrics *m = kl_metrics_start(&ep, &view, err, sizeof(err));
	struct kl_metrics *m2;
	uint16_t port;
	int idle, fd;

	(void)state;
	if (!m)
		fail_msg("kl_metrics_start: %s", err);
	port = kl_metrics_port(m);
	assert_true(port > 0);
	scrape_and_check(AF_INET, "127.0.0.1", port);
	/* a live view: more traffic shows in the next scrape */
	traffic();
	check_engine_matches_intent();
	scrape_and_check(AF_INET, "127.0.0.1", port);
	/* a query string does not matter; other paths and methods do */
	assert_int_equal(http(AF_INET, "127.0.0.1", port, "GET", "/metrics?name[]=x"), 200);
	assert_int_equal(http(AF_INET, "127.0.0.1", port, "GET", "/"), 404);
	assert_int_equal(http(AF_INET, "127.0.0.1", port, "GET", "/metricsx"), 404);
	assert_int_equal(http(AF_INET, "127.0.0.1", port, "GET", "/metrics/"), 404);
	assert_int_equal(http(AF_INET, "127.0.0.1", port, "DELETE", "/metrics"), 405);
	assert_non_null(strcasestr(resp.headers, "\r\nAllow: GET, HEAD"));
	assert_int_equal(http(AF_INET, "127.0.0.1", port, "HEAD", "/metrics"), 200);
	assert_int_equal(resp.body_len, 0);
	assert_non_null(strcasestr(resp.headers, "\r\nContent-Type: text/plain; version=0.0.4"));
	{
		static const char post[] = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
					   "Connection: close\r\n\r\nhello world";

		assert_int_equal(http_raw(AF_INET, "127.0.0.1", port, post, sizeof(post) - 1, &resp), 405);
	}
	/* garbage, an oversized header and a stalled half request do not stop the server */
	{
		static const char junk[] = "\x16\x03\x01\x02\x00garbage\r\n\r\n";
		static char huge[100000];
		int rc;

		rc = http_raw(AF_INET, "127.0.0.1", port, junk, sizeof(junk) - 1, &resp);
		assert_true(rc == -1 || (rc >= 400 && rc < 500));
		memset(huge, 'a', sizeof(huge));
		memcpy(huge, "GET /metrics HTTP/1.1\r\nX: ", 26);
		rc = http_raw(AF_INET, "127.0.0.1", port, huge, sizeof(huge), &resp);
		assert_true(rc == -1 || (rc >= 400 && rc < 500));
	}
	idle = connect_to(AF_INET, "127.0.0.1", port);
	assert_true(idle >= 0);
	send_all(idle, "GET /metr", 9);
	scrape_and_check(AF_INET, "127.0.0.1", port);
	close(idle);
	/* bound to exactly 127.0.0.1: the rest of 127/8 and ::1 are refused */
	fd = connect_to(AF_INET, "127.0.0.2", port);
	assert_true(fd < 0 && errno == ECONNREFUSED);
	fd = connect_to(AF_INET6, "::1", port);
	assert_true(fd < 0 && errno == ECONNREFUSED);
	/* a second server on the same port fails, and says why */
	ep.port = port;
	m2 = kl_metrics_start(&ep, &view, err, sizeof(err));
	assert_null(m2);
	assert_int_equal(errno, EADDRINUSE);
	assert_non_null(strstr(err, "Address already in use"));
	assert_non_null(strstr(err, "127.0.0.1:"));
	kl_metrics_stop(m);
	/* stopped: the port is closed, and free to bind again */
	fd = connect_to(AF_INET, "127.0.0.1", port);
	assert_true(fd < 0 && errno == ECONNREFUSED);
	m = kl_metrics_start(&ep, &view, err, sizeof(err));
	if (!m)
		fail_msg("restart on port %u: %s", port, err);
	assert_int_equal(kl_metrics_port(m), port);
	scrape_and_check(AF_INET, "127.0.0.1", port);
	kl_metrics_stop(m);
	kl_metrics_stop(NULL);
}

/* Slow clients (a header line now and then) beyond the connection limit neither keep a scrape out
 * nor keep their connections past the request deadline. */
static void test_http_slow_clients(void **state)
{
	enum { N = KL_METRICS_MAX_CONNECTIONS + 8 };
	static const char head[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n", more[] = "X-Slow: 1\r\n";
	struct kl_config_endpoint ep = ep4("127.0.0.1", 0);
	char err[256] = "";
	struct kl_metrics *m = kl_metrics_start(&ep, &view, err, sizeof(err));
	uint64_t closed0 = kl_ctl_get(&ctl, KL_CTL_METRICS_CLOSED);
	int slow[N];
	unsigned gone = 0;
	uint16_t port;
	struct timespec t0, t1;

	(void)state;
	if (!m)
		fail_msg("kl_metrics_start: %s", err);
	port = kl_metrics_port(m);
	for (int i = 0; i < N; i++) {
		slow[i] = connect_to(AF_INET, "127.0.0.1", port);
		assert_true(slow[i] >= 0);
		send_all(slow[i], head, sizeof(head) - 1);
	}
	usleep(300000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	scrape_and_check(AF_INET, "127.0.0.1", port);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 2);
	/* a header line every 500 ms does not extend a request past its deadline */
	for (int k = 0; k < 2 * (KL_METRICS_REQUEST_TIMEOUT_S + 2) && gone < N; k++) {
		usleep(500000);
		for (int i = 0; i < N; i++) {
			char b[64];
			ssize_t r;

			if (slow[i] < 0)
				continue;
			/* still open: nothing to read, and it takes the next line */
			r = recv(slow[i], b, sizeof(b), MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
			    send(slow[i], more, sizeof(more) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) ==
				    (ssize_t)sizeof(more) - 1)
				continue;
			close(slow[i]);
			slow[i] = -1;
			gone++;
		}
	}
	assert_int_equal(gone, N);
	assert_true(kl_ctl_get(&ctl, KL_CTL_METRICS_CLOSED) - closed0 >= N);
	scrape_and_check(AF_INET, "127.0.0.1", port);
	kl_metrics_stop(m);
}

static void test_http_v6(void **state)
{
	struct kl_config_endpoint ep = { .enabled = true, .family = AF_INET6 };
	char err[256] = "";
	struct kl_metrics *m;
	uint16_t port;
	int fd;

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "::1", &ep.v6), 1);
	m = kl_metrics_start(&ep, &view, err, sizeof(err));
	if (!m)
		fail_msg("kl_metrics_start [::1]: %s", err);
	port = kl_metrics_port(m);
	scrape_and_check(AF_INET6, "::1", port);
	assert_int_equal(http(AF_INET6, "::1", port, "PUT", "/metrics"), 405);
	fd = connect_to(AF_INET, "127.0.0.1", port); /* IPV6_V6ONLY */
	assert_true(fd < 0 && errno == ECONNREFUSED);
	ep.port = port;
	assert_null(kl_metrics_start(&ep, &view, err, sizeof(err)));
	assert_non_null(strstr(err, "[::1]:"));
	assert_non_null(strstr(err, "Address already in use"));
	kl_metrics_stop(m);
}

static void test_start_errors(void **state)
{
	struct kl_config_endpoint ep = ep4("127.0.0.1", 0);
	struct kl_stats_view bad = view;
	char err[256];

	(void)state;
	ep.enabled = false;
	err[0] = '\0';
	assert_null(kl_metrics_start(&ep, &view, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "endpoint"));
	ep.enabled = true;
	ep.family = AF_UNIX;
	assert_null(kl_metrics_start(&ep, &view, err, sizeof(err)));
	assert_non_null(strstr(err, "family"));
	ep.family = AF_INET;
	assert_null(kl_metrics_start(&ep, NULL, err, sizeof(err)));
	bad.n_workers = KL_STATS_MAX_WORKERS + 1;
	assert_null(kl_metrics_start(&ep, &bad, err, sizeof(err)));
	assert_non_null(strstr(err, "workers"));
	/* an address not on this host */
	ep = ep4("192.0.2.1", 0);
	assert_null(kl_metrics_start(&ep, &view, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot bind 192.0.2.1:0"));
}

/* ---- telemetry ----------------------------------------------------------------------------- */

static int tel_fd = -1;

static json_t *tel(const char *cmd)
{
	static char buf[20000];
	json_error_t jerr;
	json_t *j, *v;
	ssize_t n;

	assert_int_equal(send(tel_fd, cmd, strlen(cmd), 0), (ssize_t)strlen(cmd));
	n = recv(tel_fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	j = json_loads(buf, 0, &jerr);
	if (!j)
		fail_msg("telemetry reply to %s is not JSON: %s", cmd, buf);
	{
		char key[64];

		snprintf(key, sizeof(key), "%s", cmd);
		if (strchr(key, ','))
			*strchr(key, ',') = '\0';
		v = json_object_get(j, key);
		assert_non_null(v);
	}
	json_incref(v);
	json_decref(j);
	return v;
}

static uint64_t jint(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);

	if (v && b)
		v = json_object_get(v, b);
	if (!v || !json_is_integer(v))
		fail_msg("telemetry: no integer %s%s%s", a, b ? "." : "", b ? b : "");
	return (uint64_t)json_integer_value(v);
}

static void check_tel_stats(json_t *s, int worker)
{
	uint64_t count = 0, sum = 0;
	json_t *b, *h;

	for (unsigned c = 0; c < KL_CNT__COUNT; c++)
		assert_int_equal(jint(s, "counters", kl_counter_name(c)),
				 worker < 0 ? want_total_cnt(c) : want_cnt[worker][c]);
	assert_int_equal(json_object_size(json_object_get(s, "counters")), KL_CNT__COUNT);
	for (unsigned d = 1; d < KL_DROP__COUNT; d++)
		assert_int_equal(jint(s, "drops", kl_drop_name(d)),
				 worker < 0 ? want_total_drop(d) : want_drop[worker][d]);
	assert_int_equal(json_object_size(json_object_get(s, "drops")), KL_DROP__COUNT - 1);
	for (unsigned d = 1; d < KL_NET_DROP__COUNT; d++)
		assert_int_equal(jint(s, "net_drops", kl_net_drop_name(d)),
				 worker < 0 ? io[0].net_drop[d] + io[1].net_drop[d] : io[worker].net_drop[d]);
	assert_int_equal(json_object_size(json_object_get(s, "net_drops")), KL_NET_DROP__COUNT - 1);
	for (unsigned c = 0; c < KL_IO_CNT__COUNT; c++)
		assert_int_equal(jint(s, "io", kl_io_counter_name(c)),
				 worker < 0 ? io[0].counter[c] + io[1].counter[c] : io[worker].counter[c]);
	b = json_object_get(s, "service_bounds_ns");
	h = json_object_get(s, "service_hist");
	assert_true(json_is_array(b) && json_array_size(b) == KL_IO_HIST_N);
	assert_true(json_is_array(h) && json_array_size(h) == KL_IO_HIST_N + 1);
	for (unsigned i = 0; i <= KL_IO_HIST_N; i++) {
		uint64_t want = worker < 0 ? io[0].svc_hist[i] + io[1].svc_hist[i] : io[worker].svc_hist[i];

		if (i < KL_IO_HIST_N)
			assert_int_equal(json_integer_value(json_array_get(b, i)), kl_io_hist_bound_ns[i]);
		assert_int_equal(json_integer_value(json_array_get(h, i)), want);
		count += want;
	}
	sum = worker < 0 ? io[0].svc_sum_ns + io[1].svc_sum_ns : io[worker].svc_sum_ns;
	assert_int_equal(jint(s, "service_count", NULL), count);
	assert_int_equal(jint(s, "service_sum_ns", NULL), sum);
	if (worker < 0) {
		assert_int_equal(jint(s, "workers", NULL), NW);
		assert_null(json_object_get(s, "worker"));
	} else {
		assert_int_equal(jint(s, "worker", NULL), (uint64_t)worker);
	}
}

static void test_telemetry(void **state)
{
	static const char *const bad[] = { "/keyline/stats,2",	 "/keyline/stats,99",
					   "/keyline/stats,-1",	 "/keyline/stats,abc",
					   "/keyline/stats,0x1", "/keyline/stats,1 ",
					   "/keyline/stats, 1",	 "/keyline/stats,00001",
					   "/keyline/table,1",	 "/keyline/info,x",
					   "/keyline/control,1" };
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char info[1024];
	json_t *j, *list;
	ssize_t n;
	unsigned hits = 0;

	(void)state;
	assert_int_equal(kl_telemetry_register(NULL), -EINVAL);
	assert_int_equal(kl_telemetry_register(&view), 0);
	assert_int_equal(kl_telemetry_register(&view), 0); /* again: no second registration */
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/dpdk_telemetry.v2", rte_eal_get_runtime_dir());
	tel_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(tel_fd >= 0);
	if (connect(tel_fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		fail_msg("connect %s: %s", a.sun_path, strerror(errno));
	{
		struct timeval tv = { .tv_sec = 5 };

		setsockopt(tel_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	n = recv(tel_fd, info, sizeof(info) - 1, 0); /* the server greets with its info */
	assert_true(n > 0);
	info[n] = '\0';
	assert_non_null(strstr(info, "\"max_output_len\""));

	j = tel("/keyline/stats");
	check_tel_stats(j, -1);
	json_decref(j);
	for (int w = 0; w < NW; w++) {
		char cmd[32];

		snprintf(cmd, sizeof(cmd), "/keyline/stats,%d", w);
		j = tel(cmd);
		check_tel_stats(j, w);
		json_decref(j);
	}
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = tel(bad[i]);
		if (!json_is_null(j))
			fail_msg("%s was not refused", bad[i]);
		json_decref(j);
	}
	j = tel("/keyline/table");
	assert_int_equal(jint(j, "ues", NULL), 2);
	assert_int_equal(jint(j, "groups", NULL), 3);
	assert_int_equal(jint(j, "emses", NULL), 1);
	assert_int_equal(jint(j, "imsis", NULL), 2);
	assert_int_equal(jint(j, "appids", NULL), 1);
	assert_int_equal(jint(j, "memory_bytes", NULL), kl_table_memory(tab));
	json_decref(j);
	j = tel("/keyline/info");
	assert_string_equal(json_string_value(json_object_get(j, "version")), VERSION);
	assert_string_equal(json_string_value(json_object_get(j, "io")), "socket");
	assert_string_equal(json_string_value(json_object_get(j, "crypto")), "ipsec-mb");
	assert_int_equal(jint(j, "workers", NULL), NW);
	assert_int_equal(jint(j, "start_time_ns", NULL), view.start_ns);
	json_decref(j);
	/* the control-plane counters: every list entry, the values /metrics renders */
	j = tel("/keyline/control");
	assert_int_equal(json_object_size(j), KL_CTL__COUNT);
	{
		static char buf[KL_METRICS_BODY_MAX];

		assert_true(kl_metrics_render(&view, buf, sizeof(buf)) > 0);
		parse_expo(buf, &ex);
		check_ctl(&ex);
		for (unsigned c = 0; c < KL_CTL__COUNT; c++)
			assert_int_equal(jint(j, kl_ctl_counter_name(c), NULL), kl_ctl_get(&ctl, c));
	}
	json_decref(j);
	/* peers: null without them; with them every counter by index, and the s2s sizes */
	j = tel("/keyline/peers");
	assert_true(json_is_null(j));
	json_decref(j);
	{
		static struct kl_peers ps;
		struct kl_s2s *s2s = kl_s2s_create(64, 64, 16, 30, 300);
		json_t *p0;

		assert_non_null(s2s);
		ps.n = 1;
		memcpy(ps.p[0].id, "vlr-b", 5);
		ps.p[0].id_len = 5;
		kl_peer_count(&ps, 0, KL_PEER_CNT_RETRIED);
		kl_peer_count(&ps, KL_PEER_UNCONFIGURED, KL_PEER_CNT_REFUSED);
		kl_peer_count(&ps, KL_PEER_UNCONFIGURED, KL_PEER_CNT_REFUSED);
		view.peers = &ps;
		view.s2s = s2s;
		j = tel("/keyline/peers");
		p0 = json_object_get(json_object_get(j, "peers"), "0");
		assert_string_equal(json_string_value(json_object_get(p0, "identity")), "vlr-b");
		for (unsigned c = 0; c < KL_PEER_CNT__COUNT; c++)
			assert_int_equal(jint(p0, kl_peer_counter_name(c), NULL),
					 c == KL_PEER_CNT_RETRIED);
		assert_int_equal(jint(j, "unconfigured_refused", NULL), 2);
		assert_int_equal(jint(j, "s2s", "pending_cap"), 16);
		assert_true(jint(j, "s2s", "rendezvous_cap") >= 64);
		assert_int_equal(jint(j, "s2s", "cache_used"), 0);
		json_decref(j);
		j = tel("/keyline/peers,0");
		assert_true(json_is_null(j));
		json_decref(j);
		view.peers = NULL;
		view.s2s = NULL;
		kl_stats_s2s_forget(s2s);
		kl_s2s_destroy(s2s);
	}
	/* registered once each, with help */
	list = tel("/");
	for (size_t i = 0; i < json_array_size(list); i++)
		hits += strcmp(json_string_value(json_array_get(list, i)), "/keyline/stats") == 0;
	assert_int_equal(hits, 1);
	json_decref(list);
	j = tel("/help,/keyline/stats");
	assert_non_null(strstr(json_string_value(json_object_get(j, "/keyline/stats")), "worker"));
	json_decref(j);
	/* no identity in any answer */
	j = tel("/keyline/stats");
	{
		char *s = json_dumps(j, 0);

		assert_null(strstr(s, "ue1@"));
		assert_null(strstr(s, IMSI));
		free(s);
	}
	json_decref(j);
	/* detached: null; registered again: served again */
	kl_telemetry_detach();
	j = tel("/keyline/table");
	assert_true(json_is_null(j));
	json_decref(j);
	assert_int_equal(kl_telemetry_register(&view), 0);
	j = tel("/keyline/stats,1");
	check_tel_stats(j, 1);
	json_decref(j);
	kl_telemetry_detach();
	close(tel_fd);
}

/* ---- setup --------------------------------------------------------------------------------- */

static int setup(void **state)
{
	struct kl_table_params tp = { .name = "metrics_test", .max_ues = 256, .max_groups = 16,
				      .max_emses = 16, .max_imsis = 16, .max_appids = 16,
				      .e2m_ring = 4, .max_readers = NW, .socket_id = -1 };
	struct kl_group_ref g7 = { .group = 7 }, g8 = { .group = 8 }, g6 = { .group = 6 };
	struct kl_group_ref ue2g[2];
	struct kl_group grp = { 0 };
	uint8_t e2m_key[32];
	struct kl_engine_config ec = { .idr = (const uint8_t *)"keyline.test", .idr_len = 12,
				       .skew_s = 60, .predelivery_s = 60, .replay_entries = 4096 };

	(void)state;
	now = kl_ntp_now();
	memcpy(g7.domain, DOMAIN, 3);
	memcpy(g8.domain, DOMAIN, 3);
	memcpy(g6.domain, DOMAIN, 3);
	ue2g[0] = g8;
	ue2g[1] = g6;
	tab = kl_table_create(&tp);
	assert_non_null(tab);
	assert_int_equal(kl_table_put_ue(tab, (const uint8_t *)UE_ID, (uint16_t)strlen(UE_ID), MUK, 32, &g7, 1), 0);
	assert_int_equal(kl_table_put_ue(tab, (const uint8_t *)UE2_ID, (uint16_t)strlen(UE2_ID), MUK, 32, ue2g, 2), 0);
	memset(grp.current.key, 0xC1, 16);
	grp.current.valid_from = now - SEC(100);
	grp.current.valid_to = now + SEC(3600);
	grp.current.msk_id = 7u << 16 | 1;
	assert_int_equal(kl_table_put_group(tab, &g7, &grp), 0);
	grp.current.msk_id = 8u << 16 | 1;
	assert_int_equal(kl_table_put_group(tab, &g8, &grp), 0);
	grp.current.valid_to = now - SEC(10);
	grp.current.msk_id = 6u << 16 | 1;
	assert_int_equal(kl_table_put_group(tab, &g6, &grp), 0);
	assert_int_equal(kl_table_put_emse(tab, (const uint8_t *)EMSE_ID, (uint16_t)strlen(EMSE_ID), EMSE_PSK, 16), 0);
	memset(e2m_key, 0xE7, sizeof(e2m_key));
	assert_true(kl_table_push_e2m(tab, IMSI, e2m_key, 0xA0000001u, 0) >= 0);
	assert_true(kl_table_push_e2m(tab, IMSI_OLD, e2m_key, 2, now - SEC(5)) >= 0);
	assert_int_equal(kl_table_put_appid(tab, (const uint8_t *)APPID, (uint16_t)strlen(APPID), IMSI), 0);
	for (unsigned w = 0; w < NW; w++)
		assert_int_equal(kl_table_reader_register(tab, w), 0);
	ec.backend = KL_CRYPTO_IPSECMB;
	wk[0] = kl_worker_create(&ec, tab, 0);
	ec.backend = KL_CRYPTO_OPENSSL;
	wk[1] = kl_worker_create(&ec, tab, 1);
	cli = kl_crypto_create(KL_CRYPTO_OPENSSL);
	assert_non_null(wk[0]);
	assert_non_null(wk[1]);
	assert_non_null(cli);

	/* I/O counters with distinct known values; some histogram buckets empty */
	for (unsigned w = 0; w < NW; w++) {
		for (unsigned c = 0; c < KL_IO_CNT__COUNT; c++)
			io[w].counter[c] = 1000 * (w + 1) + c;
		for (unsigned d = 0; d < KL_NET_DROP__COUNT; d++)
			io[w].net_drop[d] = d == KL_NET_DROP_NONE ? 0 : 10 * (w + 1) + d;
		for (unsigned b = 0; b <= KL_IO_HIST_N; b++)
			io[w].svc_hist[b] = (b * 7 + w) % 5;
	}
	io[0].svc_sum_ns = 123456789012ull; /* 123.456789012 s */
	io[1].svc_sum_ns = 500000000ull;
	view = (struct kl_stats_view){ .n_workers = NW, .table = tab,
				       .start_ns = 1700000000123000000ull, .io_name = "socket",
				       .crypto_name = "ipsec-mb", .version = VERSION, .ctl = &ctl };
	for (unsigned c = 0; c < KL_CTL__COUNT; c++)
		ctl.v[c] = 1000003ull * (c + 1);
	for (unsigned w = 0; w < NW; w++) {
		view.engine[w] = kl_worker_stats(wk[w]);
		view.io[w] = &io[w];
	}
	traffic();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (unsigned w = 0; w < NW; w++) {
		kl_worker_destroy(wk[w]);
		kl_table_reader_unregister(tab, w);
	}
	kl_crypto_destroy(cli);
	kl_table_free(tab);
	return 0;
}

static char rundir[256];

/* EAL leaves the per-prefix directory behind, and telemetry unlinks its socket from an atexit
 * handler: registered before rte_eal_init, this one runs after it and finds the directory empty. */
static void remove_rundir(void)
{
	if (rundir[0])
		rmdir(rundir);
}

int main(void)
{
	char prefix[64];
	/* Telemetry on (the socket is the thing under test); --no-shconf keeps it working. */
	char *eal[] = { "test_metrics", "--no-huge", "--no-shconf", "-m", "256", "--no-pci",
			"-l", "0", "--log-level=error", "--file-prefix", prefix };
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),	  cmocka_unit_test(test_render_64_workers),
		cmocka_unit_test(test_render_s2s),
		cmocka_unit_test(test_http_v4),	  cmocka_unit_test(test_http_slow_clients),
		cmocka_unit_test(test_http_v6),
		cmocka_unit_test(test_start_errors), cmocka_unit_test(test_telemetry),
	};
	int rc;

	snprintf(prefix, sizeof(prefix), "kl_metrics_test_%d", (int)getpid());
	kl_crypto_set_log(NULL);
	atexit(remove_rundir);
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 1;
	}
	snprintf(rundir, sizeof(rundir), "%s", rte_eal_get_runtime_dir());
	rc = cmocka_run_group_tests_name("metrics", tests, setup, teardown);
	rte_eal_cleanup();
	return rc;
}

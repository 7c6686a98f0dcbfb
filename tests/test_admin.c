/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Admin socket tests: a real key table (EAL without hugepages), a counter view over two workers'
 * stats, kl_admin on a socket in a fresh temporary directory, and clients made of plain socket
 * calls. The server runs in the test thread: every client step polls it until the answer is there.
 * Every answer and every log line is checked for the hex of each key the test sent.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include "kl_admin.h"
#include "kl_eal_rundir.h"
#include "kl_population.h"
#include "kl_rotate.h"
#include "kl_store.h"

#define NTP_UNIX_OFFSET 2208988800ull
#define CAP 8 /* entries per kind */

/* ---- fixture ----------------------------------------------------------------------------------- */

struct fx {
	char dir[64], path[128];
	struct kl_table *t;
	struct kl_admin *a;
	struct kl_rotate *rot;	 /* test_rotate_status only */
	struct kl_store *store;	 /* test_rotate_status only */
	struct kl_stats_view view;
	struct kl_worker_stats ws[2];
	struct kl_io_stats io[2];
	struct kl_ctl_stats ctl;
	uint32_t line_ms; /* line_timeout_ms of the next mk_admin (0: the default) */
};

static unsigned seq;
static char logbuf[1 << 20];
static size_t loglen;
static char secrets[64][256]; /* hex of every key sent, as typed */
static unsigned nsecrets;

static void log_cb(void *arg, enum kl_admin_log_level level, const char *msg)
{
	int n;

	(void)arg;
	n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%d %s\n", (int)level, msg);
	if (n > 0 && (size_t)n < sizeof(logbuf) - loglen)
		loglen += (size_t)n;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = 0;
}

/* Key bytes from a tag, and their hex registered as a secret. */
static void mk_key(uint8_t *k, size_t n, uint8_t tag, char *hexout)
{
	for (size_t i = 0; i < n; i++)
		k[i] = (uint8_t)(tag * 31 + i * 7 + 1);
	hex(k, n, hexout);
	if (nsecrets < RTE_DIM(secrets))
		snprintf(secrets[nsecrets++], sizeof(secrets[0]), "%s", hexout);
}

static char *strcasestr_n(const char *hay, size_t hlen, const char *needle)
{
	size_t nl = strlen(needle);

	for (size_t i = 0; nl && i + nl <= hlen; i++)
		if (!strncasecmp(hay + i, needle, nl))
			return (char *)(uintptr_t)(hay + i);
	return NULL;
}

/* No key (nor its first 16 hex digits) in text. */
static void assert_no_secret(const char *text, size_t len)
{
	for (unsigned i = 0; i < nsecrets; i++) {
		char head[17];

		memcpy(head, secrets[i], 16);
		head[16] = 0;
		if (strcasestr_n(text, len, head)) {
			fprintf(stderr, "key hex %s found in: %.300s\n", head, text);
			fail();
		}
	}
}

static void kcv_str(const uint8_t *key, size_t n, char out[7])
{
	uint8_t k[KL_KCV_LEN];

	assert_int_equal(kl_kcv(key, n, k), 0);
	snprintf(out, 7, "%02X%02X%02X", k[0], k[1], k[2]);
}

static struct kl_admin *mk_admin(struct fx *f, unsigned max_clients, uint32_t idle_ms,
				 char *err, size_t errlen)
{
	struct kl_admin_params p = {
		.path = f->path,
		.table = f->t,
		.stats = &f->view,
		.max_clients = max_clients,
		.idle_timeout_ms = idle_ms,
		.line_timeout_ms = f->line_ms,
		.ctl = &f->ctl,
		.log = log_cb,
	};

	return kl_admin_create(&p, err, errlen);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kl_table_params tp = {
		.max_ues = CAP, .max_groups = CAP, .max_emses = CAP, .max_imsis = CAP,
		.max_appids = CAP, .e2m_ring = 4, .max_readers = 1, .socket_id = -1,
	};
	char name[16], err[256];
	struct timespec ts;

	assert_non_null(f);
	snprintf(name, sizeof(name), "adm%u", seq);
	tp.name = name;
	f->t = kl_table_create(&tp);
	assert_non_null(f->t);
	snprintf(f->dir, sizeof(f->dir), "/tmp/kl_admin_test_%d_%u", (int)getpid(), seq++);
	snprintf(f->path, sizeof(f->path), "%s/run/admin.sock", f->dir);
	clock_gettime(CLOCK_REALTIME, &ts);
	f->view = (struct kl_stats_view){
		.n_workers = 2,
		.engine = { &f->ws[0], &f->ws[1] },
		.io = { &f->io[0], &f->io[1] },
		.table = f->t,
		.start_ns = ((uint64_t)ts.tv_sec - 5) * 1000000000u,
		.io_name = "socket",
		.crypto_name = "openssl",
		.version = "0.1.0-test",
	};
	loglen = 0;
	logbuf[0] = 0;
	f->a = mk_admin(f, 0, 0, err, sizeof(err));
	if (!f->a)
		fprintf(stderr, "kl_admin_create: %s\n", err);
	assert_non_null(f->a);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	kl_admin_destroy(f->a);
	kl_rotate_free(f->rot);
	kl_store_close(f->store);
	kl_table_free(f->t);
	assert_no_secret(logbuf, loglen);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", f->dir);
	free(f);
	return 0;
}

/* ---- client ------------------------------------------------------------------------------------ */

struct cl {
	int fd;
	size_t len;
	char buf[256 * 1024];
};

static struct cl *cl_open(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct cl *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return c;
}

static void cl_close(struct cl *c)
{
	close(c->fd);
	free(c);
}

/* Send everything, polling the server while the socket is full. */
static void cl_send(struct fx *f, struct cl *c, const char *s, size_t n)
{
	double end = now_s() + 5;

	while (n) {
		ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (k > 0) {
			s += k;
			n -= (size_t)k;
			continue;
		}
		assert_true(k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
		assert_true(kl_admin_poll(f->a, 5) >= 0);
		assert_true(now_s() < end);
	}
}

/* Read one answer line (without the newline) into out; 0, or -1 on EOF / error / 5 s timeout. */
static int cl_line(struct fx *f, struct cl *c, char *out, size_t cap)
{
	double end = now_s() + 5;

	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);

		if (nl) {
			size_t n = (size_t)(nl - c->buf);

			assert_true(n < cap);
			memcpy(out, c->buf, n);
			out[n] = 0;
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			assert_no_secret(out, n);
			return 0;
		}
		ssize_t k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);

		if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			return -1;
		if (k > 0) {
			c->len += (size_t)k;
			continue;
		}
		if (now_s() > end)
			return -1;
		assert_true(kl_admin_poll(f->a, 5) >= 0);
	}
}

/* The peer closed (after any answers already read). */
static int cl_eof(struct fx *f, struct cl *c)
{
	double end = now_s() + 5;

	while (now_s() < end) {
		char b[4096];
		ssize_t k = recv(c->fd, b, sizeof(b), MSG_DONTWAIT);

		if (k == 0 || (k < 0 && errno == ECONNRESET))
			return 1;
		if (k < 0 && errno != EAGAIN)
			return 0;
		kl_admin_poll(f->a, 5);
	}
	return 0;
}

static json_t *cl_rpc(struct fx *f, struct cl *c, const char *req)
{
	static char line[256 * 1024];
	json_error_t je;
	json_t *j;

	cl_send(f, c, req, strlen(req));
	cl_send(f, c, "\n", 1);
	assert_int_equal(cl_line(f, c, line, sizeof(line)), 0);
	j = json_loads(line, 0, &je);
	if (!j)
		fprintf(stderr, "not JSON: %s\n", line);
	assert_non_null(j);
	assert_true(json_is_boolean(json_object_get(j, "ok")));
	return j;
}

__attribute__((format(printf, 3, 4)))
static json_t *rpcf(struct fx *f, struct cl *c, const char *fmt, ...)
{
	char req[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(req, sizeof(req), fmt, ap);
	va_end(ap);
	return cl_rpc(f, c, req);
}

static void expect_ok(json_t *j)
{
	if (!json_is_true(json_object_get(j, "ok")))
		fprintf(stderr, "unexpected error: %s\n",
			json_string_value(json_object_get(j, "error")));
	assert_true(json_is_true(json_object_get(j, "ok")));
}

/* An error answer whose message contains want. Consumes j. */
static void expect_err(json_t *j, const char *want)
{
	const char *e = json_string_value(json_object_get(j, "error"));

	assert_true(json_is_false(json_object_get(j, "ok")));
	assert_non_null(e);
	if (!strstr(e, want))
		fprintf(stderr, "error \"%s\" lacks \"%s\"\n", e, want);
	assert_non_null(strstr(e, want));
	json_decref(j);
}

static const char *sget(json_t *j, const char *k)
{
	const char *s = json_string_value(json_object_get(j, k));

	assert_non_null(s);
	return s;
}

static json_int_t iget(json_t *j, const char *k)
{
	json_t *v = json_object_get(j, k);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static void ping_ok(struct fx *f, struct cl *c)
{
	json_t *j = cl_rpc(f, c, "{\"cmd\":\"ping\"}");

	expect_ok(j);
	assert_true(json_is_true(json_object_get(j, "pong")));
	json_decref(j);
}

static const void *lookup(struct kl_table *t, enum kl_table_kind kind, const void *id,
			  uint16_t len)
{
	struct kl_table_key k = { .id = id, .len = len };
	const void *out = NULL;

	kl_table_lookup_bulk(t, kind, &k, 1, &out);
	return out;
}

/* ---- tests ------------------------------------------------------------------------------------- */

static void test_ping_version(void **state)
{
	struct fx *f = *state;
	struct cl *c = cl_open(f->path);
	json_t *j;

	ping_ok(f, c);
	j = cl_rpc(f, c, "{\"cmd\":\"version\"}");
	expect_ok(j);
	assert_string_equal(sget(j, "version"), "0.1.0-test");
	assert_string_equal(sget(j, "io_backend"), "socket");
	assert_string_equal(sget(j, "crypto_backend"), "openssl");
	json_decref(j);
	assert_int_equal(kl_admin_clients(f->a), 1);
	/* the fd tells an outer loop when there is work */
	{
		struct pollfd p = { .fd = kl_admin_fd(f->a), .events = POLLIN };

		assert_true(p.fd >= 0);
		assert_int_equal(poll(&p, 1, 0), 0);
		cl_send(f, c, "{\"cmd\":\"ping\"}\n", 15);
		assert_int_equal(poll(&p, 1, 2000), 1);
		assert_int_equal(kl_admin_poll(f->a, 0), 1);
	}
	cl_close(c);
}

static void test_ue(void **state)
{
	struct fx *f = *state;
	struct cl *c = cl_open(f->path);
	const char *id = "ue1@ims.mnc001.mcc001.3gppnetwork.org";
	uint8_t muk[32], muk2[40];
	char h[160], h2[160], kcv[7];
	const struct kl_ue *u;
	json_t *j, *g;

	mk_key(muk, sizeof(muk), 1, h);
	mk_key(muk2, sizeof(muk2), 2, h2);
	j = rpcf(f, c, "{\"cmd\":\"put-ue\",\"id\":\"%s\",\"muk\":\"%s\",\"groups\":[\"00F110:1\","
		       "\"00f110:65535\"]}", id, h);
	expect_ok(j);
	assert_string_equal(sget(j, "result"), "added");
	kcv_str(muk, sizeof(muk), kcv);
	assert_string_equal(sget(j, "kcv"), kcv);
	json_decref(j);
	assert_int_equal(kl_table_count(f->t, KL_TK_UE), 1);
	u = lookup(f->t, KL_TK_UE, id, (uint16_t)strlen(id));
	assert_non_null(u);
	assert_int_equal(u->ngroups, 2);
	assert_int_equal(u->groups[1].group, 65535);
	assert_memory_equal(u->groups[1].domain, "\x00\xF1\x10", 3);

	j = rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"ue\",\"id\":\"%s\"}", id);
	expect_ok(j);
	assert_string_equal(sget(j, "kcv"), kcv);
	assert_int_equal(iget(j, "muk_chunks"), 1);
	g = json_object_get(j, "groups");
	assert_int_equal(json_array_size(g), 2);
	assert_string_equal(json_string_value(json_array_get(g, 0)), "00f110:1");
	assert_string_equal(json_string_value(json_array_get(g, 1)), "00f110:65535");
	json_decref(j);

	/* replace with a two-chunk MUK and no groups */
	j = rpcf(f, c, "{\"cmd\":\"put-ue\",\"id\":\"%s\",\"muk\":\"%s\"}", id, h2);
	expect_ok(j);
	assert_string_equal(sget(j, "result"), "replaced");
	json_decref(j);
	kcv_str(muk2, sizeof(muk2), kcv);
	j = rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"ues\",\"id\":\"%s\"}", id);
	expect_ok(j);
	assert_string_equal(sget(j, "kcv"), kcv);
	assert_int_equal(iget(j, "muk_chunks"), 2);
	assert_int_equal(json_array_size(json_object_get(j, "groups")), 0);
	json_decref(j);
	assert_int_equal(kl_table_count(f->t, KL_TK_UE), 1);

	j = rpcf(f, c, "{\"cmd\":\"del\",\"kind\":\"ue\",\"id\":\"%s\"}", id);
	expect_ok(j);
	assert_string_equal(sget(j, "result"), "deleted");
	json_decref(j);
	assert_int_equal(kl_table_count(f->t, KL_TK_UE), 0);
	assert_null(lookup(f->t, KL_TK_UE, id, (uint16_t)strlen(id)));
	expect_err(rpcf(f, c, "{\"cmd\":\"del\",\"kind\":\"ue\",\"id\":\"%s\"}", id),
		   "no such ue entry");
	expect_err(rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"ue\",\"id\":\"%s\"}", id),
		   "no such ue entry");
	/* the write was logged with its KCV, not its key */
	assert_non_null(strstr(logbuf, "put-ue ue \"ue1@ims"));
	cl_close(c);
}

static void test_group(void **state)
{
	struct fx *f = *state;
	struct cl *c = cl_open(f->path);
	uint8_t k1[16], k2[16], gkey[5] = { 0x00, 0xF1, 0x10, 0x00, 0x07 };
	char h1[40], h2[40], kcv1[7], kcv2[7];
	const struct kl_group *g;
	json_t *j, *cur, *nxt;

	mk_key(k1, 16, 3, h1);
	mk_key(k2, 16, 4, h2);
	kcv_str(k1, 16, kcv1);
	kcv_str(k2, 16, kcv2);
	j = rpcf(f, c, "{\"cmd\":\"put-group\",\"group\":\"00F110:7\",\"current\":{\"key\":\"%s\","
		       "\"msk_id\":1,\"valid_from\":1700000000,\"valid_to\":1700003600},\"next\":"
		       "{\"key\":\"%s\",\"msk_id\":%u,\"valid_from\":1700003600,\"valid_to\":"
		       "1700007200}}", h1, h2, 7u << 16 | 2u);
	expect_ok(j);
	assert_string_equal(sget(j, "result"), "added");
	assert_string_equal(sget(j, "current_kcv"), kcv1);
	assert_string_equal(sget(j, "next_kcv"), kcv2);
	json_decref(j);
	g = lookup(f->t, KL_TK_GROUP, gkey, 5);
	assert_non_null(g);
	assert_int_equal(g->current.msk_id, 7u << 16 | 1u);
	assert_int_equal(g->next.msk_id, 7u << 16 | 2u);
	assert_true(g->has_next);
	assert_memory_equal(g->current.key, k1, 16);
	assert_true(g->current.valid_from == (1700000000ull + NTP_UNIX_OFFSET) << 32);
	assert_true(g->next.valid_to == (1700007200ull + NTP_UNIX_OFFSET) << 32);

	j = rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"group\",\"id\":\"00f110:7\"}");
	expect_ok(j);
	cur = json_object_get(j, "current");
	nxt = json_object_get(j, "next");
	assert_int_equal(iget(cur, "msk_id"), 7 << 16 | 1);
	assert_int_equal(iget(cur, "key_number"), 1);
	assert_int_equal(iget(cur, "valid_from"), 1700000000);
	assert_int_equal(iget(cur, "valid_to"), 1700003600);
	assert_string_equal(sget(cur, "kcv"), kcv1);
	assert_string_equal(sget(nxt, "kcv"), kcv2);
	assert_int_equal(iget(nxt, "key_number"), 2);
	json_decref(j);

	/* replace without next */
	j = rpcf(f, c, "{\"cmd\":\"put-group\",\"group\":\"00F110:7\",\"current\":{\"key\":\"%s\","
		       "\"msk_id\":2,\"valid_from\":1700003600,\"valid_to\":1700007200}}", h2);
	expect_ok(j);
	assert_string_equal(sget(j, "result"), "replaced");
	json_decref(j);
	j = rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"groups\",\"id\":\"00F110:7\"}");
	expect_ok(j);
	assert_true(json_is_null(json_object_get(j, "next")));
	json_decref(j);

	/* what is wrong is said */
	expect_err(rpcf(f, c, "{\"cmd\":\"put-group\",\"group\":\"00F110:7\",\"current\":{\"key\":"
			      "\"%s\",\"msk_id\":%u,\"valid_from\":1,\"valid_to\":2}}", h1,
			5u << 16 | 1u), "is not the group's (7)");
	expect_err(rpcf(f, c, "{\"cmd\":\"put-group\",\"group\":\"00F110:7\",\"current\":{\"key\":"
			      "\"%s\",\"msk_id\":0,\"valid_from\":1,\"valid_to\":2}}", h1),
		   "key number 0 is reserved");
	expect_err(rpcf(f, c, "{\"cmd\":\"put-group\",\"group\":\"00F110:7\",\"current\":{\"key\":"
			      "\"%s\",\"msk_id\":1,\"valid_from\":5,\"valid_to\":5}}", h1),
		   "current.valid_to must be after valid_from");
	expect_err(rpcf(f, c, "{\"cmd\":\"put-group\",\"group\":\"00F110:7\",\"current\":{\"key\":"
			      "\"%.30s\",\"msk_id\":1,\"valid_from\":1,\"valid_to\":2}}", h1),
		   "current.key: 15 bytes, must be 16");
	expect_err(rpcf(f, c, "{\"cmd\":\"put-group\",\"group\":\"00F110:7\",\"current\":{\"key\":"
			      "\"%s\",\"msk_id\":1,\"valid_from\":1,\"valid_to\":2},\"next\":{\"key\":"
			      "\"%s\",\"msk_id\":1,\"valid_from\":2,\"valid_to\":3}}", h1, h2),
		   "next.msk_id: same key number as current");
	expect_err(rpcf(f, c, "{\"cmd\":\"put-group\",\"group\":\"00F110:7\",\"current\":{\"key\":"
			      "\"%s\",\"msk_id\":1,\"valid_from\":1,\"valid_to\":2085978496}}", h1),
		   "current.valid_to: must be an integer 0..2085978495");
	expect_err(rpcf(f, c, "{\"cmd\":\"put-group\",\"group\":\"00F110:7\",\"current\":{\"key\":"
			      "\"%s\",\"msk_id\":1,\"valid_from\":1,\"valid_to\":2,\"extra\":1}}", h1),
		   "unknown field \"current.extra\"");
	expect_err(rpcf(f, c, "{\"cmd\":\"put-group\",\"group\":\"00F110\",\"current\":{}}"),
		   "group: not a key group");
	expect_err(rpcf(f, c, "{\"cmd\":\"put-group\",\"group\":\"00F110:1\"}"), "current: missing");

	j = rpcf(f, c, "{\"cmd\":\"del\",\"kind\":\"group\",\"id\":\"00F110:7\"}");
	expect_ok(j);
	json_decref(j);
	assert_int_equal(kl_table_count(f->t, KL_TK_GROUP), 0);
	cl_close(c);
}

static void test_emse_e2m_appid(void **state)
{
	struct fx *f = *state;
	struct cl *c = cl_open(f->path);
	uint8_t psk[64], k[3][32];
	char hp[160], hk[3][80], kcv[7];
	const struct kl_e2m *e2m;
	json_t *j, *keys;

	mk_key(psk, sizeof(psk), 5, hp);
	for (unsigned i = 0; i < 3; i++)
		mk_key(k[i], 32, (uint8_t)(6 + i), hk[i]);

	j = rpcf(f, c, "{\"cmd\":\"put-emse\",\"id\":\"emse1.corp.example\",\"psk\":\"%s\"}", hp);
	expect_ok(j);
	kcv_str(psk, sizeof(psk), kcv);
	assert_string_equal(sget(j, "kcv"), kcv);
	json_decref(j);
	j = rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"emse\",\"id\":\"emse1.corp.example\"}");
	expect_ok(j);
	assert_string_equal(sget(j, "kcv"), kcv);
	assert_int_equal(iget(j, "psk_chunks"), 2);
	json_decref(j);

	for (unsigned i = 0; i < 3; i++) {
		j = rpcf(f, c, "{\"cmd\":\"push-e2m\",\"imsi\":\"001010000000001\",\"key\":\"%s\","
			       "\"key_id\":%u,\"expires\":%u}", hk[i], 10 + i, i ? 1800000000u : 0u);
		expect_ok(j);
		assert_string_equal(sget(j, "result"), "added");
		json_decref(j);
	}
	j = rpcf(f, c, "{\"cmd\":\"push-e2m\",\"imsi\":\"001010000000001\",\"key\":\"%s\","
		       "\"key_id\":11}", hk[1]);
	expect_ok(j);
	assert_string_equal(sget(j, "result"), "replaced");
	json_decref(j);
	e2m = lookup(f->t, KL_TK_E2M, "001010000000001", 15);
	assert_non_null(e2m);
	assert_int_equal(e2m->n, 3);
	j = rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"imsi\",\"id\":\"001010000000001\"}");
	expect_ok(j);
	keys = json_object_get(j, "keys");
	assert_int_equal(json_array_size(keys), 3);
	for (unsigned i = 0; i < 3; i++) {
		json_t *e = json_array_get(keys, i);

		assert_int_equal(iget(e, "key_id"), 12 - i); /* newest first */
		kcv_str(k[2 - i], 32, kcv);
		assert_string_equal(sget(e, "kcv"), kcv);
	}
	assert_int_equal(iget(json_array_get(keys, 0), "expires"), 1800000000);
	assert_int_equal(iget(json_array_get(keys, 1), "expires"), 0); /* replaced: never */
	assert_int_equal(iget(json_array_get(keys, 2), "expires"), 0);
	json_decref(j);

	j = rpcf(f, c, "{\"cmd\":\"put-appid\",\"appid\":\"app1@factory.example\","
		       "\"imsi\":\"001010000000001\"}");
	expect_ok(j);
	assert_string_equal(sget(j, "result"), "added");
	json_decref(j);
	j = rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"appid\",\"id\":\"app1@factory.example\"}");
	expect_ok(j);
	assert_string_equal(sget(j, "imsi"), "001010000000001");
	json_decref(j);

	j = rpcf(f, c, "{\"cmd\":\"count\"}");
	expect_ok(j);
	assert_int_equal(iget(json_object_get(j, "counts"), "emses"), 1);
	assert_int_equal(iget(json_object_get(j, "counts"), "imsis"), 1);
	assert_int_equal(iget(json_object_get(j, "counts"), "appids"), 1);
	assert_int_equal(iget(json_object_get(j, "counts"), "ues"), 0);
	assert_int_equal(iget(j, "memory_bytes"), (json_int_t)kl_table_memory(f->t));
	json_decref(j);

	j = rpcf(f, c, "{\"cmd\":\"del\",\"kind\":\"e2m\",\"id\":\"001010000000001\"}");
	expect_ok(j);
	json_decref(j);
	j = rpcf(f, c, "{\"cmd\":\"del\",\"kind\":\"appids\",\"id\":\"app1@factory.example\"}");
	expect_ok(j);
	json_decref(j);
	j = rpcf(f, c, "{\"cmd\":\"del\",\"kind\":\"emse\",\"id\":\"emse1.corp.example\"}");
	expect_ok(j);
	json_decref(j);
	for (unsigned k2 = 0; k2 < KL_TK__COUNT; k2++)
		assert_int_equal(kl_table_count(f->t, (enum kl_table_kind)k2), 0);
	expect_err(rpcf(f, c, "{\"cmd\":\"del\",\"kind\":\"imsi\",\"id\":\"001010000000001\"}"),
		   "no such imsi entry");
	expect_err(rpcf(f, c, "{\"cmd\":\"del\",\"kind\":\"appid\",\"id\":\"app1\"}"),
		   "no such appid entry");
	expect_err(rpcf(f, c, "{\"cmd\":\"del\",\"kind\":\"group\",\"id\":\"00F110:9\"}"),
		   "no such group entry");
	cl_close(c);
}

static void test_import(void **state)
{
	struct fx *f = *state;
	struct cl *c = cl_open(f->path);
	struct kl_pop_params p = {
		.seed = 42, .ues = 5, .groups = 2, .emses = 2, .imsis = 2, .appids = 2,
		.e2m_keys_per_imsi = 2, .now_ntp = 3900000000ull << 32, .msk_period_s = 3600,
	};
	struct kl_pop_ue ue;
	char path[192], kcv[7];
	json_t *j;

	j = rpcf(f, c, "{\"cmd\":\"import-population\",\"params\":{\"seed\":\"42\",\"ues\":5,"
		       "\"groups\":2,\"emses\":2,\"imsis\":2,\"appids\":2,\"e2m-keys\":2,"
		       "\"now\":3900000000,\"msk-period\":3600}}");
	expect_ok(j);
	assert_int_equal(iget(j, "ues"), 5);
	assert_int_equal(iget(j, "groups"), 2);
	assert_int_equal(iget(j, "e2m_keys"), 4);
	assert_true(json_is_real(json_object_get(j, "elapsed_ms")));
	json_decref(j);
	assert_int_equal(kl_table_count(f->t, KL_TK_UE), 5);
	assert_int_equal(kl_table_count(f->t, KL_TK_GROUP), 2);
	assert_int_equal(kl_table_count(f->t, KL_TK_EMSE), 2);
	assert_int_equal(kl_table_count(f->t, KL_TK_E2M), 2);
	assert_int_equal(kl_table_count(f->t, KL_TK_APPID), 2);

	assert_int_equal(kl_pop_ue(&p, 3, &ue), 0);
	kcv_str(ue.muk, 32, kcv);
	j = rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"ue\",\"id\":\"%.*s\"}", ue.impi_len, ue.impi);
	expect_ok(j);
	assert_string_equal(sget(j, "kcv"), kcv);
	json_decref(j);
	kl_memzero(&ue, sizeof(ue));

	/* the daemon reads the file itself */
	snprintf(path, sizeof(path), "%s/pop.txt", f->dir);
	p.ues = 7;
	assert_int_equal(kl_pop_write_file(path, &p), 0);
	j = rpcf(f, c, "{\"cmd\":\"import-population\",\"path\":\"%s\"}", path);
	expect_ok(j);
	assert_int_equal(iget(j, "ues"), 7);
	json_decref(j);
	assert_int_equal(kl_table_count(f->t, KL_TK_UE), 7);
	assert_non_null(strstr(logbuf, "TEST population"));

	/* too many for the table: stops, says where */
	expect_err(rpcf(f, c, "{\"cmd\":\"import-population\",\"params\":{\"seed\":1,\"ues\":20,"
			      "\"groups\":0,\"emses\":0,\"imsis\":0,\"appids\":0,\"e2m-keys\":1,"
			      "\"now\":3900000000,\"msk-period\":3600}}"),
		   "table full for ues (imported 8 of 20");
	expect_err(rpcf(f, c, "{\"cmd\":\"import-population\",\"params\":{\"seed\":1,\"ues\":2,"
			      "\"groups\":0,\"emses\":0,\"imsis\":0,\"appids\":0,\"e2m-keys\":0,"
			      "\"now\":3900000000,\"msk-period\":3600}}"),
		   "params: e2m-keys out of range (1..8)");
	expect_err(rpcf(f, c, "{\"cmd\":\"import-population\",\"params\":{\"seed\":1,\"ues\":2,"
			      "\"groups\":0,\"emses\":0,\"imsis\":0,\"appids\":3,\"e2m-keys\":1,"
			      "\"now\":3900000000,\"msk-period\":3600}}"),
		   "appids need imsis");
	expect_err(rpcf(f, c, "{\"cmd\":\"import-population\",\"params\":{\"seed\":\"-1\"}}"),
		   "params.seed: not a decimal number");
	expect_err(rpcf(f, c, "{\"cmd\":\"import-population\",\"params\":{\"seed\":1}}"),
		   "params.ues: missing");
	expect_err(rpcf(f, c, "{\"cmd\":\"import-population\",\"path\":\"pop.txt\"}"),
		   "path: must be absolute");
	expect_err(rpcf(f, c, "{\"cmd\":\"import-population\",\"path\":\"%s/none\"}", f->dir),
		   "No such file");
	expect_err(rpcf(f, c, "{\"cmd\":\"import-population\"}"), "give either params");
	cl_close(c);
}

static void test_stats(void **state)
{
	struct fx *f = *state;
	struct cl *c = cl_open(f->path);
	json_t *j, *svc;

	f->ws[0].counter[KL_CNT_RX] = 5;
	f->ws[1].counter[KL_CNT_RX] = 7;
	f->ws[0].counter[KL_CNT_ANSWERED_MBMS] = 3;
	f->ws[1].counter[KL_CNT_ANSWERED_E2M] = 4;
	f->ws[1].counter[KL_CNT_ERR_INVALID_TS] = 2;
	f->ws[0].drop[KL_DROP_BAD_MAC] = 1;
	f->io[1].counter[KL_IO_CNT_RX_FRAMES] = 9;
	f->io[0].net_drop[KL_NET_DROP_WRONG_PORT] = 6;
	f->io[0].svc_hist[0] = 2;
	f->io[1].svc_hist[KL_IO_HIST_N] = 1;
	f->io[0].svc_sum_ns = 1000;
	f->io[1].svc_sum_ns = 8000000;

	j = rpcf(f, c, "{\"cmd\":\"stats\"}");
	expect_ok(j);
	assert_int_equal(iget(j, "workers"), 2);
	assert_true(iget(j, "uptime_s") >= 5);
	assert_string_equal(sget(j, "io_backend"), "socket");
	assert_int_equal(iget(json_object_get(j, "engine"), "requests_received"), 12);
	assert_int_equal(iget(json_object_get(j, "engine"), "error_invalid_ts"), 2);
	assert_int_equal(json_object_size(json_object_get(j, "engine")), KL_CNT__COUNT);
	assert_int_equal(iget(json_object_get(j, "engine_drops"), "bad_mac"), 1);
	assert_int_equal(json_object_size(json_object_get(j, "engine_drops")), KL_DROP__COUNT - 1);
	assert_int_equal(iget(json_object_get(j, "io"), "rx_frames"), 9);
	assert_int_equal(json_object_size(json_object_get(j, "io")), KL_IO_CNT__COUNT);
	assert_int_equal(iget(json_object_get(j, "net_drops"), "wrong_port"), 6);
	svc = json_object_get(j, "service_time");
	assert_int_equal(json_array_size(json_object_get(svc, "bounds_ns")), KL_IO_HIST_N);
	assert_int_equal(json_array_size(json_object_get(svc, "counts")), KL_IO_HIST_N + 1);
	assert_int_equal(iget(svc, "count"), 3);
	assert_int_equal(iget(svc, "sum_ns"), 8001000);
	assert_int_equal(iget(svc, "mean_ns"), 8001000 / 3);
	assert_int_equal(iget(json_object_get(j, "totals"), "requests"), 12);
	assert_int_equal(iget(json_object_get(j, "totals"), "key_responses"), 7);
	assert_int_equal(iget(json_object_get(j, "totals"), "error_responses"), 2);
	assert_int_equal(iget(json_object_get(j, "totals"), "engine_drops"), 1);
	assert_int_equal(iget(json_object_get(j, "totals"), "net_drops"), 6);
	json_decref(j);

	j = rpcf(f, c, "{\"cmd\":\"stats\",\"worker\":1}");
	expect_ok(j);
	assert_int_equal(iget(j, "worker"), 1);
	assert_int_equal(iget(json_object_get(j, "engine"), "requests_received"), 7);
	assert_int_equal(iget(json_object_get(j, "io"), "rx_frames"), 9);
	assert_int_equal(iget(json_object_get(j, "net_drops"), "wrong_port"), 0);
	json_decref(j);
	expect_err(rpcf(f, c, "{\"cmd\":\"stats\",\"worker\":2}"), "worker: 2 out of range");
	expect_err(rpcf(f, c, "{\"cmd\":\"stats\",\"worker\":\"x\"}"), "worker: must be an integer");
	cl_close(c);
}

static void test_bad_input(void **state)
{
	struct fx *f = *state;
	struct cl *c = cl_open(f->path);
	uint8_t k[80];
	char h[200], req[1024];
	static const struct {
		const char *req, *want;
	} cases[] = {
		{ "not json", "invalid JSON at byte" },
		{ "[1,2]", "must be a JSON object" },
		{ "{}", "cmd: missing" },
		{ "{\"cmd\":5}", "cmd: missing or not a string" },
		{ "{\"cmd\":\"fly\"}", "unknown command \"fly\"" },
		{ "{\"cmd\":\"X1\"}", "unknown command" },
		{ "{\"cmd\":\"ping\",\"cmd\":\"count\"}", "invalid JSON" },
		{ "{\"cmd\":\"ping\",\"x\":1}", "unknown field \"x\"" },
		{ "{\"cmd\":\"ping\",\"AB12\":1}", "unknown field in request (name not shown)" },
		{ "{\"cmd\":\"put-ue\",\"id\":\"u\",\"muk\":\"abc\"}", "muk: odd number of hex digits" },
		{ "{\"cmd\":\"put-ue\",\"id\":\"u\",\"muk\":\"00zz\"}", "muk: not hex (bad digit at position 3)" },
		{ "{\"cmd\":\"put-ue\",\"id\":\"u\",\"muk\":\"\"}", "muk: empty" },
		{ "{\"cmd\":\"put-ue\",\"id\":\"u\",\"muk\":7}", "muk: must be a hex string" },
		{ "{\"cmd\":\"put-ue\",\"id\":\"u\"}", "muk: missing" },
		{ "{\"cmd\":\"put-ue\",\"id\":\"\",\"muk\":\"00\"}", "id: 0 bytes, must be 1..128" },
		{ "{\"cmd\":\"put-ue\",\"muk\":\"00\"}", "id: missing" },
		{ "{\"cmd\":\"put-ue\",\"id\":\"u\",\"muk\":\"00\",\"groups\":\"00F110:1\"}", "groups: must be a list" },
		{ "{\"cmd\":\"put-ue\",\"id\":\"u\",\"muk\":\"00\",\"groups\":[\"0F110:1\"]}", "groups[0]: not a key group" },
		{ "{\"cmd\":\"put-ue\",\"id\":\"u\",\"muk\":\"00\",\"groups\":[\"00F110:65536\"]}", "groups[0]: not a key group" },
		{ "{\"cmd\":\"put-ue\",\"id\":\"u\",\"muk\":\"00\",\"groups\":[\"00F110:1\",\"00F110:1\"]}", "groups[1]: listed twice" },
		{ "{\"cmd\":\"put-ue\",\"id\":\"u\",\"muk\":\"00\",\"groups\":[\"00F110:1\",\"00F110:2\",\"00F110:3\",\"00F110:4\",\"00F110:5\"]}", "groups: 5 listed, at most 4" },
		{ "{\"cmd\":\"push-e2m\",\"imsi\":\"00101x\",\"key\":\"00\",\"key_id\":1}", "imsi: must be 1..15 decimal digits" },
		{ "{\"cmd\":\"push-e2m\",\"imsi\":\"0010100000000011\",\"key\":\"00\",\"key_id\":1}", "imsi: must be 1..15 decimal digits" },
		{ "{\"cmd\":\"push-e2m\",\"imsi\":\"1\",\"key\":\"00\",\"key_id\":-1}", "key_id: must be an integer 0..4294967295" },
		{ "{\"cmd\":\"push-e2m\",\"imsi\":\"1\",\"key\":\"00\",\"key_id\":1.5}", "key_id: must be an integer" },
		{ "{\"cmd\":\"push-e2m\",\"imsi\":\"1\",\"key\":\"00\",\"key_id\":4294967296}", "key_id: must be an integer" },
		{ "{\"cmd\":\"push-e2m\",\"imsi\":\"1\",\"key\":\"00\",\"key_id\":1}", "key: 1 bytes, must be 32" },
		{ "{\"cmd\":\"push-e2m\",\"imsi\":\"1\",\"key\":\"00\"}", "key_id: missing" },
		{ "{\"cmd\":\"put-appid\",\"appid\":\"a\",\"imsi\":\"\"}", "imsi: must be 1..15 decimal digits" },
		{ "{\"cmd\":\"del\",\"kind\":\"cat\",\"id\":\"a\"}", "kind: unknown (one of ue, group, emse, imsi, appid, pair)" },
		{ "{\"cmd\":\"del\",\"id\":\"a\"}", "kind: missing" },
		{ "{\"cmd\":\"del\",\"kind\":\"ue\"}", "id: missing" },
		{ "{\"cmd\":\"show\",\"kind\":\"imsi\",\"id\":\"12a\"}", "id: must be 1..15 decimal digits" },
		{ "{\"cmd\":\"show\",\"kind\":\"group\",\"id\":\"1\"}", "id: not a key group" },
		{ "{\"cmd\":\"count\",\"kind\":\"ue\"}", "unknown field \"kind\"" },
		{ "\x01\x02\xff\xfe garbage", "invalid JSON" },
	};

	for (unsigned i = 0; i < RTE_DIM(cases); i++) {
		expect_err(cl_rpc(f, c, cases[i].req), cases[i].want);
		ping_ok(f, c);
	}
	/* keys in bad requests are not echoed: not by our messages, not by the JSON parser's */
	mk_key(k, 65, 20, h);
	expect_err(rpcf(f, c, "{\"cmd\":\"put-ue\",\"id\":\"u\",\"muk\":\"%s\"}", h),
		   "muk: 65 bytes, must be 1..64");
	mk_key(k, 32, 21, h);
	expect_err(rpcf(f, c, "{\"cmd\":\"put-ue\",\"id\":\"u\",\"muk\":\"%s", h), "invalid JSON");
	expect_err(rpcf(f, c, "{\"cmd\":\"put-ue\",\"id\":\"u\",\"muk\":%s}", h), "invalid JSON");
	snprintf(req, sizeof(req), "{\"cmd\":\"ping\",\"%s\":1}", h);
	expect_err(cl_rpc(f, c, req), "name not shown");
	mk_key(k, 32, 22, h);
	h[10] = 'g';
	expect_err(rpcf(f, c, "{\"cmd\":\"put-emse\",\"id\":\"e\",\"psk\":\"%s\"}", h),
		   "psk: not hex (bad digit at position 11)");
	/* a blank line gets no answer; the next request does */
	cl_send(f, c, "\n  \r\n", 5);
	ping_ok(f, c);
	/* CRLF is fine */
	cl_send(f, c, "{\"cmd\":\"ping\"}\r\n", 16);
	{
		char line[256];

		assert_int_equal(cl_line(f, c, line, sizeof(line)), 0);
		assert_non_null(strstr(line, "\"pong\":true"));
	}
	assert_int_equal(kl_table_count(f->t, KL_TK_UE), 0);
	assert_int_equal(kl_table_count(f->t, KL_TK_EMSE), 0);
	cl_close(c);
}

/* Random lines (bytes, and mutated requests): each gets an error or a valid answer. */
static void test_random_lines(void **state)
{
	static const char *const seeds[] = {
		"{\"cmd\":\"put-ue\",\"id\":\"u\",\"muk\":\"0011\",\"groups\":[\"00F110:1\"]}",
		"{\"cmd\":\"put-group\",\"group\":\"00F110:1\",\"current\":{\"key\":"
		"\"00112233445566778899aabbccddeeff\",\"msk_id\":1,\"valid_from\":1,\"valid_to\":2}}",
		"{\"cmd\":\"show\",\"kind\":\"group\",\"id\":\"00F110:1\"}",
		"{\"cmd\":\"stats\",\"worker\":1}",
		"{\"cmd\":\"del\",\"kind\":\"ue\",\"id\":\"u\"}",
	};
	struct fx *f = *state;
	struct cl *c = cl_open(f->path);
	uint64_t x = 0x9E3779B97F4A7C15ull;
	char req[512], line[16384];

	for (unsigned i = 0; i < 600; i++) {
		size_t n;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (i % 3 == 0) { /* raw bytes, no newline inside */
			n = 1 + x % 200;
			for (size_t k = 0; k < n; k++) {
				x = x * 6364136223846793005ull + 1442695040888963407ull;
				req[k] = (char)(x >> 56);
				if (req[k] == '\n' || req[k] == '\r' || req[k] == ' ' || req[k] == '\t' ||
				    !req[k])
					req[k] = '#';
			}
		} else { /* a request with a few bytes changed */
			const char *s = seeds[x % RTE_DIM(seeds)];

			n = strlen(s);
			memcpy(req, s, n);
			for (unsigned m = 0; m < 1 + (x >> 8) % 3; m++) {
				x = x * 6364136223846793005ull + 1442695040888963407ull;
				req[(x >> 20) % n] = (char)(0x20 + (x >> 40) % 95);
			}
		}
		req[n] = 0;
		cl_send(f, c, req, n);
		cl_send(f, c, "\n", 1);
		assert_int_equal(cl_line(f, c, line, sizeof(line)), 0);
		assert_true(!strncmp(line, "{\"ok\":true", 10) ||
			    !strncmp(line, "{\"ok\":false,\"error\":\"", 21));
	}
	ping_ok(f, c);
	cl_close(c);
}

static void test_long_line(void **state)
{
	struct fx *f = *state;
	size_t n = KL_ADMIN_DEFAULT_MAX_LINE + 5000;
	char *big = malloc(n + 1), line[512];
	struct cl *c = cl_open(f->path), *c2;

	assert_non_null(big);
	/* a request of exactly the maximum length is fine */
	memset(big, ' ', n);
	memcpy(big, "{\"cmd\":\"ping\"}", 14);
	big[KL_ADMIN_DEFAULT_MAX_LINE] = '\n';
	cl_send(f, c, big, KL_ADMIN_DEFAULT_MAX_LINE + 1);
	assert_int_equal(cl_line(f, c, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "\"ok\":true"));
	/* one byte more: error and close */
	memset(big, 'a', n);
	big[n] = '\n';
	cl_send(f, c, big, n + 1);
	assert_int_equal(cl_line(f, c, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "request line longer than 65536 bytes"));
	assert_true(cl_eof(f, c));
	cl_close(c);
	/* without a newline at all */
	c = cl_open(f->path);
	cl_send(f, c, big, n);
	assert_int_equal(cl_line(f, c, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "longer than"));
	assert_true(cl_eof(f, c));
	cl_close(c);
	free(big);
	/* the server goes on */
	c2 = cl_open(f->path);
	ping_ok(f, c2);
	cl_close(c2);
}

static void test_table_full(void **state)
{
	struct fx *f = *state;
	struct cl *c = cl_open(f->path);
	char h[80];
	uint8_t k[32];
	json_t *j;

	mk_key(k, 32, 30, h);
	for (unsigned i = 0; i < CAP; i++) {
		j = rpcf(f, c, "{\"cmd\":\"put-emse\",\"id\":\"e%u\",\"psk\":\"%s\"}", i, h);
		expect_ok(j);
		json_decref(j);
	}
	expect_err(rpcf(f, c, "{\"cmd\":\"put-emse\",\"id\":\"e%u\",\"psk\":\"%s\"}", CAP, h),
		   "table full for emses");
	j = rpcf(f, c, "{\"cmd\":\"put-emse\",\"id\":\"e0\",\"psk\":\"%s\"}", h);
	expect_ok(j);
	assert_string_equal(sget(j, "result"), "replaced");
	json_decref(j);
	for (unsigned i = 0; i < CAP; i++) {
		j = rpcf(f, c, "{\"cmd\":\"push-e2m\",\"imsi\":\"%u\",\"key\":\"%s\",\"key_id\":1}",
			 100 + i, h);
		expect_ok(j);
		json_decref(j);
	}
	expect_err(rpcf(f, c, "{\"cmd\":\"push-e2m\",\"imsi\":\"999\",\"key\":\"%s\",\"key_id\":1}",
			h), "table full for imsis");
	assert_int_equal(kl_table_count(f->t, KL_TK_EMSE), CAP);
	ping_ok(f, c);
	cl_close(c);
}

static void test_two_clients(void **state)
{
	struct fx *f = *state;
	struct cl *a = cl_open(f->path), *b = cl_open(f->path);
	char line[512];

	cl_send(f, a, "{\"cmd\":\"pi", 10);
	kl_admin_poll(f->a, 10);
	ping_ok(f, b);
	cl_send(f, a, "ng\"}\n{\"cmd\":\"count\"}\n{\"cmd\":\"version\"}\n", 39);
	assert_int_equal(cl_line(f, a, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "pong"));
	assert_int_equal(cl_line(f, a, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "counts"));
	assert_int_equal(cl_line(f, a, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "0.1.0-test"));
	assert_int_equal(kl_admin_clients(f->a), 2);
	/* a last request without newline is answered at EOF */
	cl_send(f, b, "{\"cmd\":\"ping\"}", 14);
	shutdown(b->fd, SHUT_WR);
	assert_int_equal(cl_line(f, b, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "pong"));
	assert_true(cl_eof(f, b));
	cl_close(b);
	cl_close(a);
	for (int i = 0; i < 20 && kl_admin_clients(f->a); i++)
		kl_admin_poll(f->a, 5);
	assert_int_equal(kl_admin_clients(f->a), 0);
}

/* A client that sends and never reads must not hold the control thread or other clients. */
static void test_stuck_client(void **state)
{
	struct fx *f = *state;
	struct cl *s = cl_open(f->path), *b;
	const char *req = "{\"cmd\":\"stats\"}\n";
	unsigned sent = 0, got = 0;
	double worst = 0, t0;
	char line[16384];

	/* fill the client's socket both ways: its answers pile up unread */
	for (int round = 0; round < 2000; round++) {
		ssize_t k = send(s->fd, req, strlen(req), MSG_NOSIGNAL | MSG_DONTWAIT);

		if (k > 0) {
			if (k < (ssize_t)strlen(req)) /* finish the request */
				cl_send(f, s, req + k, strlen(req) - (size_t)k);
			sent++;
		}
		t0 = now_s();
		assert_true(kl_admin_poll(f->a, 0) >= 0);
		if (now_s() - t0 > worst)
			worst = now_s() - t0;
	}
	assert_true(sent > 100);
	/* another client is served meanwhile */
	b = cl_open(f->path);
	t0 = now_s();
	ping_ok(f, b);
	assert_true(now_s() - t0 < 1.0);
	assert_true(worst < 0.5);
	/* the stuck client gets every answer once it reads */
	while (got < sent && cl_line(f, s, line, sizeof(line)) == 0) {
		assert_non_null(strstr(line, "\"requests_received\""));
		got++;
	}
	assert_int_equal(got, sent);
	cl_close(s);
	cl_close(b);
}

static void test_idle_and_max_clients(void **state)
{
	struct fx *f = *state;
	struct cl *c[3];
	char err[256], line[256];

	kl_admin_destroy(f->a);
	f->a = mk_admin(f, 2, 500, err, sizeof(err));
	assert_non_null(f->a);
	for (int i = 0; i < 2; i++)
		c[i] = cl_open(f->path);
	ping_ok(f, c[1]);
	ping_ok(f, c[0]);
	usleep(20000);
	ping_ok(f, c[1]);
	/* at the limit a new client is served: c[0], idle the longest, makes room */
	c[2] = cl_open(f->path);
	ping_ok(f, c[2]);
	assert_int_equal(cl_line(f, c[0], line, sizeof(line)), 0);
	assert_non_null(
		strstr(line, "too many admin clients (max 2): this connection was idle the longest"));
	assert_true(cl_eof(f, c[0]));
	assert_int_equal(kl_ctl_get(&f->ctl, KL_CTL_ADMIN_EVICTED), 1);
	/* c[2] stays busy, c[1] goes quiet and is disconnected with a reason */
	for (int i = 0; i < 12; i++) {
		usleep(60000);
		ping_ok(f, c[2]);
	}
	assert_int_equal(cl_line(f, c[1], line, sizeof(line)), 0);
	assert_non_null(strstr(line, "idle for 500 ms: closing"));
	assert_true(cl_eof(f, c[1]));
	assert_int_equal(kl_admin_clients(f->a), 1);
	assert_int_equal(kl_ctl_get(&f->ctl, KL_CTL_ADMIN_CLIENTS), 1);
	assert_int_equal(kl_ctl_get(&f->ctl, KL_CTL_ADMIN_TIMEOUTS), 1);
	ping_ok(f, c[2]);
	for (int i = 0; i < 3; i++)
		cl_close(c[i]);
}

/* Clients holding half a line, one byte now and then, neither keep their slot past the line
 * timeout nor keep an operator out meanwhile (the one idle or partial the longest makes room). */
static void test_slow_clients(void **state)
{
	struct fx *f = *state;
	struct cl *slow[KL_ADMIN_DEFAULT_MAX_CLIENTS], *op;
	char err[256], line[256];
	double t0, end;
	unsigned closed = 0;

	kl_admin_destroy(f->a);
	f->line_ms = 400;
	f->a = mk_admin(f, 0, 0, err, sizeof(err));
	assert_non_null(f->a);
	for (unsigned i = 0; i < KL_ADMIN_DEFAULT_MAX_CLIENTS; i++) {
		slow[i] = cl_open(f->path);
		cl_send(f, slow[i], "{\"cmd\":\"pi", 10);
		assert_true(kl_admin_poll(f->a, 5) >= 0);
	}
	assert_int_equal(kl_admin_clients(f->a), KL_ADMIN_DEFAULT_MAX_CLIENTS);
	/* an operator's command gets through at once: slow[0] gives up its slot */
	op = cl_open(f->path);
	t0 = now_s();
	ping_ok(f, op);
	assert_true(now_s() - t0 < 1.0);
	assert_int_equal(cl_line(f, slow[0], line, sizeof(line)), 0);
	assert_non_null(strstr(line, "this connection was idle the longest"));
	assert_true(cl_eof(f, slow[0]));
	/* the others keep sending a byte every 50 ms: closed at the line timeout all the same */
	end = now_s() + 3;
	while (closed < KL_ADMIN_DEFAULT_MAX_CLIENTS - 1 && now_s() < end) {
		for (unsigned i = 1; i < KL_ADMIN_DEFAULT_MAX_CLIENTS; i++)
			if (slow[i] && send(slow[i]->fd, " ", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
				cl_close(slow[i]);
				slow[i] = NULL;
				closed++;
			}
		for (int k = 0; k < 10; k++)
			assert_true(kl_admin_poll(f->a, 5) >= 0);
	}
	assert_int_equal(closed, KL_ADMIN_DEFAULT_MAX_CLIENTS - 1);
	assert_true(now_s() - t0 < 2.0);
	assert_non_null(strstr(logbuf, "request line not completed within 400 ms: closing"));
	assert_int_equal(kl_ctl_get(&f->ctl, KL_CTL_ADMIN_TIMEOUTS), KL_ADMIN_DEFAULT_MAX_CLIENTS - 1);
	assert_int_equal(kl_ctl_get(&f->ctl, KL_CTL_ADMIN_EVICTED), 1);
	ping_ok(f, op);
	assert_int_equal(kl_admin_clients(f->a), 1);
	cl_close(slow[0]);
	cl_close(op);
}

static void test_socket_file(void **state)
{
	struct fx *f = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char err[256], dir[160];
	struct kl_admin *b;
	struct stat st;
	int fd;

	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(dir, sizeof(dir), "%s/run", f->dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0027, 0); /* 0750 less the umask */
	assert_int_equal(st.st_mode & 0700, 0700);

	/* a live server at the path: refused */
	err[0] = 0;
	b = mk_admin(f, 0, 0, err, sizeof(err));
	assert_null(b);
	assert_non_null(strstr(err, "in use"));
	assert_non_null(strstr(err, f->path));
	{
		struct cl *c = cl_open(f->path); /* the first server is untouched */

		ping_ok(f, c);
		cl_close(c);
	}
	/* destroy removes its socket; a stale socket file is replaced */
	kl_admin_destroy(f->a);
	f->a = NULL;
	assert_int_equal(lstat(f->path, &st), -1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(strlen(f->path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	f->a = mk_admin(f, 0, 0, err, sizeof(err));
	assert_non_null(f->a);
	kl_admin_destroy(f->a);
	/* not a socket: left alone */
	fd = open(f->path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	f->a = mk_admin(f, 0, 0, err, sizeof(err));
	assert_null(f->a);
	assert_non_null(strstr(err, "exists and is not a socket"));
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(f->path);
	/* relative and over-long paths */
	{
		struct kl_admin_params p = { .path = "run/admin.sock", .table = f->t };
		char longp[200];

		assert_null(kl_admin_create(&p, err, sizeof(err)));
		assert_non_null(strstr(err, "must be an absolute file path"));
		memset(longp, 'x', sizeof(longp));
		longp[0] = '/';
		longp[sizeof(longp) - 1] = 0;
		p.path = longp;
		assert_null(kl_admin_create(&p, err, sizeof(err)));
		assert_non_null(strstr(err, "must be an absolute file path"));
	}
	f->a = mk_admin(f, 0, 0, err, sizeof(err));
	assert_non_null(f->a);
}

/* ---- MSK rotation and status -------------------------------------------------------------------- */

static uint64_t ntp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec + NTP_UNIX_OFFSET) << 32;
}

static int diam_status(void *arg, struct kl_admin_diameter_status *st)
{
	int *calls = arg;

	(*calls)++;
	memset(st, 0, sizeof(*st));
	st->enabled = 1;
	snprintf(st->identity, sizeof(st->identity), "keyline.test.example");
	st->port = 3869;
	st->vendor_id = 10415;
	st->app_id = 16777999;
	st->answered_ok = 7;
	st->rejected = 1;
	st->commits = 4;
	st->queued = 2;
	st->peers_refused = 3;
	st->npeers = 2;
	snprintf(st->peers[0].identity, sizeof(st->peers[0].identity), "hss1.test.example");
	snprintf(st->peers[0].state, sizeof(st->peers[0].state), "STATE_OPEN");
	/* an identity with bytes that are not printable ASCII (not valid UTF-8 either) */
	memset(st->peers[1].identity, 0, sizeof(st->peers[1].identity));
	memcpy(st->peers[1].identity, "bad\xff\x01peer", 10);
	snprintf(st->peers[1].state, sizeof(st->peers[1].state), "STATE_CLOSED");
	return 0;
}

/* The table's group: registers its MSK hex as secrets; KCVs out. */
static void group_kcvs(struct fx *f, unsigned grp, char cur[7], char nxt[7], uint32_t *cur_id)
{
	const struct kl_group_ref ref = { .domain = { 0x00, 0xF1, 0x10 }, .group = (uint16_t)grp };
	struct kl_group g;
	char h[40];

	assert_int_equal(kl_table_get_group(f->t, &ref, &g), 0);
	hex(g.current.key, 16, h);
	snprintf(secrets[nsecrets++], sizeof(secrets[0]), "%s", h);
	kcv_str(g.current.key, 16, cur);
	*cur_id = g.current.msk_id;
	nxt[0] = 0;
	if (g.has_next) {
		hex(g.next.key, 16, h);
		snprintf(secrets[nsecrets++], sizeof(secrets[0]), "%s", h);
		kcv_str(g.next.key, 16, nxt);
	}
	memset(&g, 0, sizeof(g));
}

/* Without rotation, store or Diameter: rotate is refused, status says so. */
static void test_status_plain(void **state)
{
	struct fx *f = *state;
	struct cl *c = cl_open(f->path);
	json_t *j, *o;

	expect_err(rpcf(f, c, "{\"cmd\":\"rotate\",\"group\":\"00F110:1\"}"),
		   "no MSK rotation is configured");
	j = rpcf(f, c, "{\"cmd\":\"status\"}");
	expect_ok(j);
	assert_string_equal(sget(j, "version"), "0.1.0-test");
	assert_true(iget(j, "uptime_s") >= 5);
	assert_int_equal(iget(j, "workers"), 2);
	o = json_object_get(j, "table");
	assert_int_equal(iget(json_object_get(o, "counts"), "groups"), 0);
	assert_int_equal(json_object_size(json_object_get(o, "counts")), KL_TK__COUNT);
	assert_true(iget(o, "memory_bytes") > 0);
	assert_true(json_is_false(json_object_get(json_object_get(j, "store"), "enabled")));
	assert_int_equal(json_object_size(json_object_get(j, "store")), 1);
	assert_true(json_is_false(json_object_get(json_object_get(j, "diameter"), "enabled")));
	o = json_object_get(j, "rotation");
	assert_true(json_is_false(json_object_get(o, "enabled")));
	assert_int_equal(json_array_size(json_object_get(o, "groups")), 0);
	json_decref(j);
	expect_err(rpcf(f, c, "{\"cmd\":\"status\",\"x\":1}"), "unknown field \"x\"");
	cl_close(c);
}

static void test_rotate_status(void **state)
{
	struct fx *f = *state;
	const struct kl_rotate_group groups[] = {
		{ .ref = { .domain = { 0x00, 0xF1, 0x10 }, .group = 1 }, .period_s = 3600,
		  .predelivery_s = 600 },
		{ .ref = { .domain = { 0x00, 0xF1, 0x10 }, .group = 2 }, .period_s = 60,
		  .predelivery_s = 59 },
	};
	struct kl_rotate_params rp = { .table = f->t, .groups = groups, .n = 2 };
	struct kl_store_params sp = { .create_if_missing = 1 };
	struct kl_admin_params ap = { .path = f->path, .table = f->t, .stats = &f->view,
				      .log = log_cb, .diameter_status = diam_status };
	char sdir[128], kek[128], err[256], cur1[7], nxt1[7], cur2[7], nxt2[7], kekkcv[7];
	uint8_t kekb[32];
	uint32_t id1, id2;
	int calls = 0, fd;
	json_int_t now = (json_int_t)time(NULL);
	struct cl *c;
	json_t *j, *o, *g, *m;

	/* a real store (0600 KEK file) and a rotation on the fixture's table */
	snprintf(sdir, sizeof(sdir), "%s/store", f->dir);
	snprintf(kek, sizeof(kek), "%s/kek", f->dir);
	for (unsigned i = 0; i < 32; i++)
		kekb[i] = (uint8_t)(0xc0 ^ (i * 13));
	fd = open(kek, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, kekb, 32), 32);
	close(fd);
	kcv_str(kekb, 32, kekkcv);
	sp.path = sdir;
	sp.kek_file = kek;
	f->store = kl_store_open(&sp, err, sizeof(err));
	if (!f->store)
		fail_msg("store: %s", err);
	rp.store = f->store;
	rp.log = NULL; /* stderr */
	f->rot = kl_rotate_create(&rp, err, sizeof(err));
	assert_non_null(f->rot);
	assert_int_equal(kl_rotate_tick(f->rot, ntp_now()), 2);
	/* two seconds on, group 2 (pre-delivery 59 of 60 s) has its next */
	assert_int_equal(kl_rotate_tick(f->rot, ntp_now() + (2ull << 32)), 1);
	kl_admin_destroy(f->a);
	ap.store = f->store;
	ap.rotate = f->rot;
	ap.diameter_arg = &calls;
	f->a = kl_admin_create(&ap, err, sizeof(err));
	assert_non_null(f->a);
	group_kcvs(f, 1, cur1, nxt1, &id1);
	group_kcvs(f, 2, cur2, nxt2, &id2);
	assert_int_equal(nxt1[0], 0);
	assert_int_not_equal(nxt2[0], 0);
	c = cl_open(f->path);

	/* status */
	j = rpcf(f, c, "{\"cmd\":\"status\"}");
	expect_ok(j);
	assert_int_equal(calls, 1);
	o = json_object_get(j, "table");
	assert_int_equal(iget(json_object_get(o, "counts"), "groups"), 2);
	o = json_object_get(j, "store");
	assert_true(json_is_true(json_object_get(o, "enabled")));
	assert_int_equal(iget(json_object_get(o, "entries"), "groups"), 2);
	assert_int_equal(iget(json_object_get(o, "entries"), "ues"), 0);
	assert_int_equal(iget(o, "schema"), KL_STORE_SCHEMA);
	assert_string_equal(sget(o, "kek_kcv"), kekkcv);
	assert_true(iget(o, "file_bytes") > 0 && iget(o, "used_bytes") > 0);
	assert_true(iget(o, "used_bytes") <= iget(o, "file_bytes"));
	assert_true(iget(o, "created") >= now - 5 && iget(o, "created") <= now + 5);
	assert_true(json_is_number(json_object_get(o, "bytes_per_ue")));
	assert_true(json_is_boolean(json_object_get(o, "kek_secure_heap")));
	o = json_object_get(j, "diameter");
	assert_true(json_is_true(json_object_get(o, "enabled")));
	assert_string_equal(sget(o, "identity"), "keyline.test.example");
	assert_int_equal(iget(o, "port"), 3869);
	assert_int_equal(iget(o, "vendor_id"), 10415);
	assert_int_equal(iget(o, "app_id"), 16777999);
	assert_int_equal(iget(json_object_get(o, "counters"), "answered_ok"), 7);
	assert_int_equal(iget(json_object_get(o, "counters"), "commits"), 4);
	assert_int_equal(iget(json_object_get(o, "counters"), "queued"), 2);
	assert_int_equal(iget(json_object_get(o, "counters"), "peers_refused"), 3);
	assert_int_equal(json_array_size(json_object_get(o, "peers")), 2);
	g = json_array_get(json_object_get(o, "peers"), 0);
	assert_string_equal(sget(g, "identity"), "hss1.test.example");
	assert_string_equal(sget(g, "state"), "STATE_OPEN");
	g = json_array_get(json_object_get(o, "peers"), 1);
	assert_string_equal(sget(g, "identity"), "bad\\xff\\x01peer");
	assert_string_equal(sget(g, "state"), "STATE_CLOSED");
	o = json_object_get(j, "rotation");
	assert_true(json_is_true(json_object_get(o, "enabled")));
	assert_int_equal(json_array_size(json_object_get(o, "groups")), 2);
	g = json_array_get(json_object_get(o, "groups"), 0);
	assert_string_equal(sget(g, "group"), "00f110:1");
	assert_int_equal(iget(g, "period_s"), 3600);
	assert_int_equal(iget(g, "predelivery_s"), 600);
	assert_int_equal(iget(g, "rotations"), 1);
	assert_int_equal(iget(g, "failures"), 0);
	m = json_object_get(g, "current");
	assert_int_equal(iget(m, "msk_id"), 0x00010001);
	assert_int_equal(iget(m, "key_number"), 1);
	assert_int_equal(iget(m, "valid_to") - iget(m, "valid_from"), 3600);
	assert_true(iget(m, "valid_from") >= now - 5 && iget(m, "valid_from") <= now + 5);
	assert_string_equal(sget(m, "kcv"), cur1);
	assert_true(json_is_null(json_object_get(g, "next")));
	g = json_array_get(json_object_get(o, "groups"), 1);
	assert_string_equal(sget(g, "group"), "00f110:2");
	assert_int_equal(iget(g, "rotations"), 2);
	assert_string_equal(sget(json_object_get(g, "current"), "kcv"), cur2);
	m = json_object_get(g, "next");
	assert_int_equal(iget(m, "key_number"), 2);
	assert_string_equal(sget(m, "kcv"), nxt2);
	json_decref(j);

	/* forced rotation */
	j = rpcf(f, c, "{\"cmd\":\"rotate\",\"group\":\"00f110:1\"}");
	expect_ok(j);
	group_kcvs(f, 1, cur1, nxt1, &id1);
	assert_string_equal(sget(j, "result"), "rotated");
	assert_string_equal(sget(j, "group"), "00f110:1");
	assert_int_equal(iget(j, "msk_id"), 0x00010002);
	assert_int_equal(id1, 0x00010002);
	assert_int_equal(iget(j, "key_number"), 2);
	assert_int_equal(iget(j, "valid_to") - iget(j, "valid_from"), 3600);
	assert_true(iget(j, "valid_from") >= now && iget(j, "valid_from") <= now + 5);
	assert_string_equal(sget(j, "kcv"), cur1);
	json_decref(j);
	/* show group: current and next with their KCVs (group 2 has a next) */
	j = rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"group\",\"id\":\"00F110:1\"}");
	expect_ok(j);
	assert_string_equal(sget(json_object_get(j, "current"), "kcv"), cur1);
	assert_true(json_is_null(json_object_get(j, "next")));
	json_decref(j);
	j = rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"group\",\"id\":\"00F110:2\"}");
	expect_ok(j);
	assert_string_equal(sget(json_object_get(j, "current"), "kcv"), cur2);
	assert_string_equal(sget(json_object_get(j, "next"), "kcv"), nxt2);
	json_decref(j);
	/* stored: the store holds the new current */
	{
		const struct kl_group_ref ref = { .domain = { 0x00, 0xF1, 0x10 }, .group = 1 };
		struct kl_group sg;
		char k[7];

		assert_int_equal(kl_store_get_group(f->store, &ref, &sg), 0);
		kcv_str(sg.current.key, 16, k);
		assert_string_equal(k, cur1);
		memset(&sg, 0, sizeof(sg));
	}
	j = rpcf(f, c, "{\"cmd\":\"status\"}");
	expect_ok(j);
	g = json_array_get(json_object_get(json_object_get(j, "rotation"), "groups"), 0);
	assert_int_equal(iget(g, "rotations"), 2);
	assert_string_equal(sget(json_object_get(g, "current"), "kcv"), cur1);
	json_decref(j);
	assert_non_null(strstr(logbuf, "rotate group 00f110:1: forced rotation, current msk_id "
				       "0x00010002 kcv "));
	assert_non_null(strstr(logbuf, cur1));

	/* errors */
	expect_err(rpcf(f, c, "{\"cmd\":\"rotate\",\"group\":\"00F110:3\"}"),
		   "group 00f110:3: not a group with MSK rotation");
	expect_err(rpcf(f, c, "{\"cmd\":\"rotate\",\"group\":\"00F11:1\"}"), "not a key group");
	expect_err(rpcf(f, c, "{\"cmd\":\"rotate\",\"group\":1}"), "group: must be a string");
	expect_err(rpcf(f, c, "{\"cmd\":\"rotate\"}"), "group: missing");
	expect_err(rpcf(f, c, "{\"cmd\":\"rotate\",\"group\":\"00F110:1\",\"key\":\"00\"}"),
		   "unknown field \"key\"");
	/* a rotated group cannot be deleted (rotation would remake it with key number 1) */
	expect_err(rpcf(f, c, "{\"cmd\":\"del\",\"kind\":\"group\",\"id\":\"00f110:1\"}"),
		   "group 00f110:1 is under MSK rotation");
	{
		struct kl_group g;
		const struct kl_group_ref ref = { { 0x00, 0xF1, 0x10 }, 1 };

		assert_int_equal(kl_table_get_group(f->t, &ref, &g), 0);
		kl_memzero(&g, sizeof(g));
	}
	ping_ok(f, c);
	cl_close(c);
}

/* put-ue "expires" (unix seconds): into store and table, shown by show ue; 0/absent = never. */
static void test_ue_expiry(void **state)
{
	struct fx *f = *state;
	struct kl_store_params sp = { .create_if_missing = 1 };
	struct kl_admin_params ap = { .path = f->path, .table = f->t, .stats = &f->view,
				      .log = log_cb, .diameter_status = diam_status };
	const char *id = "exp@ims.example", *id2 = "never@ims.example";
	const uint64_t ntp_unix = 2208988800u;
	const json_int_t when = 1900000000; /* 2030-03-17 */
	char sdir[128], kek[128], err[256], h[160];
	uint64_t e = 77;
	uint8_t kekb[32], muk[32];
	struct cl *c;
	int fd;
	json_t *j;

	snprintf(sdir, sizeof(sdir), "%s/store", f->dir);
	snprintf(kek, sizeof(kek), "%s/kek", f->dir);
	for (unsigned i = 0; i < 32; i++)
		kekb[i] = (uint8_t)(0x3c ^ (i * 7));
	fd = open(kek, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, kekb, 32), 32);
	close(fd);
	sp.path = sdir;
	sp.kek_file = kek;
	f->store = kl_store_open(&sp, err, sizeof(err));
	if (!f->store)
		fail_msg("store: %s", err);
	kl_admin_destroy(f->a);
	ap.store = f->store;
	f->a = kl_admin_create(&ap, err, sizeof(err));
	assert_non_null(f->a);
	c = cl_open(f->path);
	mk_key(muk, sizeof(muk), 5, h);

	j = rpcf(f, c, "{\"cmd\":\"put-ue\",\"id\":\"%s\",\"muk\":\"%s\",\"groups\":[\"00F110:1\"],"
		       "\"expires\":%lld}", id, h, (long long)when);
	expect_ok(j);
	assert_string_equal(sget(j, "result"), "added");
	json_decref(j);
	assert_int_equal(kl_table_get_ue_expiry(f->t, (const uint8_t *)id, (uint16_t)strlen(id), &e),
			 0);
	assert_true(e == ((uint64_t)when + ntp_unix) << 32);
	e = 77;
	assert_int_equal(kl_store_get_ue(f->store, (const uint8_t *)id, (uint16_t)strlen(id), NULL,
					 NULL, &e),
			 0);
	assert_true(e == ((uint64_t)when + ntp_unix) << 32);
	j = rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"ue\",\"id\":\"%s\"}", id);
	expect_ok(j);
	assert_int_equal(iget(j, "expires"), when);
	assert_int_equal(json_array_size(json_object_get(j, "groups")), 1);
	json_decref(j);

	/* absent and 0: never */
	j = rpcf(f, c, "{\"cmd\":\"put-ue\",\"id\":\"%s\",\"muk\":\"%s\"}", id2, h);
	expect_ok(j);
	json_decref(j);
	j = rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"ue\",\"id\":\"%s\"}", id2);
	expect_ok(j);
	assert_int_equal(iget(j, "expires"), 0);
	json_decref(j);
	j = rpcf(f, c, "{\"cmd\":\"put-ue\",\"id\":\"%s\",\"muk\":\"%s\",\"expires\":0}", id, h);
	expect_ok(j);
	assert_string_equal(sget(j, "result"), "replaced");
	json_decref(j);
	j = rpcf(f, c, "{\"cmd\":\"show\",\"kind\":\"ue\",\"id\":\"%s\"}", id);
	expect_ok(j);
	assert_int_equal(iget(j, "expires"), 0);
	json_decref(j);
	assert_int_equal(kl_store_get_ue(f->store, (const uint8_t *)id, (uint16_t)strlen(id), NULL,
					 NULL, &e),
			 0);
	assert_true(e == 0);

	/* bad expiries are refused and change nothing */
	expect_err(rpcf(f, c, "{\"cmd\":\"put-ue\",\"id\":\"%s\",\"muk\":\"%s\",\"expires\":-1}", id,
			h),
		   "expires: must be an integer 0..");
	expect_err(rpcf(f, c, "{\"cmd\":\"put-ue\",\"id\":\"%s\",\"muk\":\"%s\",\"expires\":\"soon\"}",
			id, h),
		   "expires: must be an integer 0..");
	expect_err(rpcf(f, c, "{\"cmd\":\"put-ue\",\"id\":\"%s\",\"muk\":\"%s\","
			      "\"expires\":4294967295}", id, h),
		   "expires: must be an integer 0..");
	assert_int_equal(kl_table_get_ue_expiry(f->t, (const uint8_t *)id, (uint16_t)strlen(id), &e),
			 0);
	assert_true(e == 0);
	cl_close(c);
}

int main(void)
{
	char prefix[64], *eal[] = {
		"test_admin", "--no-huge", "--no-shconf", "-m", "256", "--no-pci", "--no-telemetry",
		"-l", "0", "--log-level=error", "--file-prefix", prefix,
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ping_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emse_e2m_appid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stuck_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_and_max_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ue_expiry, setup, teardown),
	};
	int rc;

	snprintf(prefix, sizeof(prefix), "kl_admin_test_%d", (int)getpid());
	kl_eal_rundir_cleanup_at_exit(); /* no /var/run/dpdk/<prefix> left behind */
	if (rte_eal_init((int)RTE_DIM(eal), eal) < 0) {
		fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	rc = cmocka_run_group_tests_name("admin", tests, NULL, NULL);
	rte_eal_cleanup();
	return rc;
}

/* SPDX-License-Identifier: BSD-3-Clause */
/* The service registry (control/kl_registry.h): start order, a failed start stops those already
 * started in reverse order, unwanted entries are skipped, fds and revents reach their owner,
 * stop in reverse order and only once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kl_registry.h"

struct fake {
	int want[4];
	int fail[4];
	int fd[4];
	char log[128];
	short seen[4];
	int ticks[4];
	int st[4]; /* what start returns a pointer to */
};

static struct fake g;

static void note(char what, int i)
{
	size_t n = strlen(g.log);

	g.log[n] = what;
	g.log[n + 1] = (char)('0' + i);
}

#define FAKE(I)                                                                                   \
	static int wanted##I(void *ctx)                                                           \
	{                                                                                         \
		(void)ctx;                                                                        \
		return g.want[I];                                                                 \
	}                                                                                         \
	static void *start##I(void *ctx, int *status)                                             \
	{                                                                                         \
		assert_ptr_equal(ctx, &g);                                                        \
		note('s', I);                                                                     \
		if (g.fail[I]) {                                                                  \
			*status = 10 + I;                                                         \
			return NULL;                                                              \
		}                                                                                 \
		return &g.st[I];                                                                  \
	}                                                                                         \
	static int fd##I(void *svc)                                                               \
	{                                                                                         \
		assert_ptr_equal(svc, &g.st[I]);                                                  \
		return g.fd[I];                                                                   \
	}                                                                                         \
	static void poll##I(void *svc, short revents)                                             \
	{                                                                                         \
		assert_ptr_equal(svc, &g.st[I]);                                                  \
		g.seen[I] = revents;                                                              \
	}                                                                                         \
	static void tick##I(void *svc)                                                            \
	{                                                                                         \
		assert_ptr_equal(svc, &g.st[I]);                                                  \
		g.ticks[I]++;                                                                     \
	}                                                                                         \
	static void stop##I(void *svc)                                                            \
	{                                                                                         \
		assert_ptr_equal(svc, &g.st[I]);                                                  \
		note('x', I);                                                                     \
	}                                                                                         \
	static const struct kl_service_ops ops##I = {                                             \
		.name = "svc" #I,                                                                 \
		.wanted = wanted##I,                                                              \
		.start = start##I,                                                                \
		.fd = fd##I,                                                                      \
		.poll = poll##I,                                                                  \
		.tick = tick##I,                                                                  \
		.stop = stop##I,                                                                  \
	};

FAKE(0)
FAKE(1)
FAKE(2)
FAKE(3)

static const struct kl_service_ops *const all[] = { &ops0, &ops1, &ops2, &ops3 };

static void reset(void)
{
	memset(&g, 0, sizeof(g));
	for (int i = 0; i < 4; i++) {
		g.want[i] = 1;
		g.fd[i] = -1;
	}
}

static void start_stop_order(void **state)
{
	struct kl_services s;
	int status = 0;

	(void)state;
	reset();
	assert_int_equal(kl_services_start(&s, all, 4, &g, &status), 0);
	assert_string_equal(g.log, "s0s1s2s3");
	assert_ptr_equal(kl_services_get(&s, "svc2"), &g.st[2]);
	assert_null(kl_services_get(&s, "nope"));
	kl_services_stop(&s);
	assert_string_equal(g.log, "s0s1s2s3x3x2x1x0");
	kl_services_stop(&s); /* nothing more */
	assert_string_equal(g.log, "s0s1s2s3x3x2x1x0");
	assert_null(kl_services_get(&s, "svc2"));
}

static void failed_start_stops_earlier(void **state)
{
	struct kl_services s;
	int status = 0;

	(void)state;
	reset();
	g.fail[1] = 1;
	assert_int_equal(kl_services_start(&s, all, 4, &g, &status), -1);
	assert_int_equal(status, 11);
	assert_string_equal(g.log, "s0s1x0");
	kl_services_stop(&s); /* the daemon's free path: nothing more */
	assert_string_equal(g.log, "s0s1x0");

	reset();
	g.fail[3] = 1;
	g.want[1] = 0;
	assert_int_equal(kl_services_start(&s, all, 4, &g, &status), -1);
	assert_int_equal(status, 13);
	assert_string_equal(g.log, "s0s2s3x2x0");
}

static void unwanted_skipped(void **state)
{
	struct kl_services s;
	int status = 0;

	(void)state;
	reset();
	g.want[0] = g.want[2] = 0;
	assert_int_equal(kl_services_start(&s, all, 4, &g, &status), 0);
	assert_int_equal(status, 0);
	assert_null(kl_services_get(&s, "svc0"));
	assert_ptr_equal(kl_services_get(&s, "svc1"), &g.st[1]);
	kl_services_tick(&s);
	assert_int_equal(g.ticks[0] + g.ticks[2], 0);
	assert_int_equal(g.ticks[1] + g.ticks[3], 2);
	kl_services_stop(&s);
	assert_string_equal(g.log, "s1s3x3x1");
}

static void fds_and_revents(void **state)
{
	struct kl_services s;
	struct pollfd pf[KL_SERVICES_MAX];
	int status = 0;
	unsigned n;

	(void)state;
	reset();
	g.fd[0] = 7; /* svc1 has none; svc2 is not wanted */
	g.fd[2] = 8;
	g.want[2] = 0;
	g.fd[3] = 9;
	assert_int_equal(kl_services_start(&s, all, 4, &g, &status), 0);
	n = kl_services_pollfds(&s, pf, KL_SERVICES_MAX);
	assert_int_equal(n, 2);
	assert_int_equal(pf[0].fd, 7);
	assert_int_equal(pf[1].fd, 9);
	assert_int_equal(pf[0].events, POLLIN);
	pf[1].revents = POLLIN;
	kl_services_poll(&s, pf);
	assert_int_equal(g.seen[0], 0);
	assert_int_equal(g.seen[1], 0);
	assert_int_equal(g.seen[3], POLLIN);
	/* room for one fd only: the second waits, its service is still polled (revents 0) */
	g.seen[3] = 0;
	n = kl_services_pollfds(&s, pf, 1);
	assert_int_equal(n, 1);
	pf[0].revents = POLLIN;
	kl_services_poll(&s, pf);
	assert_int_equal(g.seen[0], POLLIN);
	assert_int_equal(g.seen[3], 0);
	kl_services_stop(&s);
}

/* A service with several fds of its own (pollfds) and a timer (timeout_ms), as the cluster's
 * watch: every fd it gives (as room allows), the loop sleeping at most its timeout. */
static int multi_fds(void *svc, struct pollfd *pf, int max)
{
	int n = 0;

	(void)svc;
	for (int fd = 20; fd < 23 && n < max; fd++, n++) {
		pf[n].fd = fd;
		pf[n].events = POLLIN | POLLOUT;
		pf[n].revents = 0;
	}
	return n;
}

static int multi_timeout(void *svc)
{
	return *(int *)svc;
}

static void *multi_start(void *ctx, int *status)
{
	(void)status;
	return ctx;
}

static void multi_hooks(void **state)
{
	static const struct kl_service_ops multi = { .name = "multi", .start = multi_start,
						     .pollfds = multi_fds,
						     .timeout_ms = multi_timeout };
	const struct kl_service_ops *const set[] = { &multi };
	struct kl_services s;
	struct pollfd pf[KL_SERVICES_MAX_POLLFDS];
	int status = 0, timeout = 40;

	(void)state;
	reset();
	assert_int_equal(kl_services_start(&s, set, 1, &timeout, &status), 0);
	assert_int_equal(kl_services_pollfds(&s, pf, KL_SERVICES_MAX_POLLFDS), 3);
	assert_int_equal(pf[0].fd, 20);
	assert_int_equal(pf[2].events, POLLIN | POLLOUT);
	assert_int_equal(kl_services_pollfds(&s, pf, 2), 2); /* room for two only */
	assert_int_equal(kl_services_timeout(&s, 100), 40);
	timeout = 250;
	assert_int_equal(kl_services_timeout(&s, 100), 100);
	timeout = -1;
	assert_int_equal(kl_services_timeout(&s, 100), 100);
	kl_services_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(start_stop_order),
		cmocka_unit_test(failed_start_stops_earlier),
		cmocka_unit_test(unwanted_skipped),
		cmocka_unit_test(fds_and_revents),
		cmocka_unit_test(multi_hooks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

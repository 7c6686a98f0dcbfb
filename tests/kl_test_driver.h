/* SPDX-License-Identifier: BSD-3-Clause */
/* The test drivers' failure report (etcd_driver, cluster_repl_driver): "FAIL: ..." on stdout and
 * exit 1, which the Python harness reads. */
#ifndef KL_TEST_DRIVER_H
#define KL_TEST_DRIVER_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail(__VA_ARGS__);                                                         \
	} while (0)

#endif

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Small helpers every layer uses (header only): hex digits and "err, errlen" messages.
 */
#ifndef KL_UTIL_H
#define KL_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/** Value of a hex digit, or -1. */
static inline int kl_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/** printf into an optional error buffer (NULL or 0 length: nothing). */
static inline void kl_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline void kl_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

#endif

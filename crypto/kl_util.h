/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Small helpers every layer uses (header only): hex digits and "err, errlen" messages.
 */
#ifndef KL_UTIL_H
#define KL_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

/** n bytes as 2n lowercase hex digits and a NUL in out (2n + 1 bytes). Never for keys. */
static inline void kl_hex(const uint8_t *b, size_t n, char *out)
{
	static const char h[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = h[b[i] >> 4];
		out[2 * i + 1] = h[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/**
 * Whether text could be key material typed in the wrong place, so a message must not show it:
 * a run of 16 or more hex digits, or a run of 16 or more base64 characters (A-Z a-z 0-9 + / =)
 * with upper case, lower case and digits in it that does not start with '/' (an absolute path
 * such as /dev/hugepages1G is shown).
 */
static inline int kl_maybe_key(const char *s)
{
	unsigned hex = 0, b64 = 0, cls = 0;
	int path = 0;

	for (; s && *s; s++) {
		int c = (unsigned char)*s;
		int up = c >= 'A' && c <= 'Z', lo = c >= 'a' && c <= 'z', dg = c >= '0' && c <= '9';

		hex = kl_hexval(c) >= 0 ? hex + 1 : 0;
		if (up || lo || dg || c == '+' || c == '=' || c == '/') {
			if (!b64++)
				path = c == '/';
			cls |= (unsigned)(up | lo << 1 | dg << 2);
		} else {
			b64 = cls = 0;
		}
		if (hex >= 16 || (b64 >= 16 && cls == 7 && !path))
			return 1;
	}
	return 0;
}

/** s for a message, unless it could be a key (kl_maybe_key). */
static inline const char *kl_shown(const char *s)
{
	return kl_maybe_key(s) ? "(not shown: it could be a key)" : s;
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

/** RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF (NUL allowed). */
static inline int kl_utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		uint32_t cp;
		unsigned len;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			len = 2;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (i + len > n)
			return 0;
		for (unsigned k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
			return 0;
		i += len;
	}
	return 1;
}

#endif

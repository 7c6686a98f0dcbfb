/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers shared by the kernel-UDP MIKEY test clients (e2m_fetch, muk_switch_client), header
 * only: a key read from a hex file and a connected UDP socket to SERVER_IP PORT.
 */
#ifndef KL_TEST_CLIENT_H
#define KL_TEST_CLIENT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kl_crypto.h"
#include "kl_util.h"

/* A key as hex on the first line of path (surrounding white space allowed): 1..max bytes.
 * @return the length, or -1 on anything else (odd digit count, a non-hex character, longer
 * than max, unreadable). The text buffer is wiped. */
static inline int kl_test_read_hex(const char *path, uint8_t *out, unsigned max)
{
	char text[300];
	size_t b = 0, e;
	unsigned n = 0;
	int rc = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (!fgets(text, sizeof(text), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	e = strlen(text);
	while (b < e && strchr(" \t\r\n", text[b]))
		b++;
	while (e > b && strchr(" \t\r\n", text[e - 1]))
		e--;
	if (e > b && (e - b) % 2 == 0 && (e - b) / 2 <= max) {
		for (; b < e; b += 2) {
			int hi = kl_hexval(text[b]), lo = kl_hexval(text[b + 1]);

			if (hi < 0 || lo < 0)
				break;
			out[n++] = (uint8_t)(hi << 4 | lo);
		}
		if (b == e)
			rc = (int)n;
	}
	kl_memzero(text, sizeof(text));
	return rc;
}

/* A UDP socket connected to ip (IPv4 or IPv6 literal) port (1..65535).
 * @return the fd; -2 for a bad address or port, -1 (errno set) when socket/connect failed. */
static inline int kl_test_udp_connect(const char *ip, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char *end;
	unsigned long p;
	int fd;

	p = strtoul(port, &end, 10);
	if (!*port || *end || p == 0 || p > 65535)
		return -2;
	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
			return -2;
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
			return -2;
		sl = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, sl)) {
		close(fd);
		return -1;
	}
	return fd;
}

#endif

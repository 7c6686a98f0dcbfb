/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test client: one E2M key fetch (PROTOCOL.md section 4, EXT type 250 kind 1) over kernel UDP, as
 * an EMSE, for a UE identity (an IMSI, or an application identity keyline maps to an IMSI) and
 * optionally a key identifier. The answer is verified with the EMSE's PSK (MAC, RAND echo, CSB ID,
 * server time) and printed as one JSON line:
 *   {"result":"key","key_id":"HEX8","e2m_key":"HEX","imsi_in_response":false,"bytes":N}
 *   {"result":"error","err_no":12,"detail":2,"imsi_in_response":false,"bytes":N}
 *   {"result":"timeout"}
 * imsi_in_response: whether the IMSI's digits occur anywhere in the answer datagram or in its
 * decrypted key data. TEST TOOL ONLY: it prints the fetched e2m_key so the test can compare it
 * with keyline-kdf's derivation; nothing in keyline itself ever prints a key.
 *   e2m_fetch SERVER_IP PORT EMSE_ID PSK_HEX_FILE UE_ID IMSI [KEY_ID_HEX]
 * MBMS mode (PROTOCOL.md section 3): one MSK request as a UE, signed with its MUK, for the key
 * group's current key; prints no key, only ids:
 *   e2m_fetch --mbms SERVER_IP PORT UE_ID MUK_HEX_FILE DDDDDD:G
 *   {"result":"key","nkeys":N,"key_ids":["HEX8",...],"bytes":N} or the error line above
 * Exit: 0 an answer was verified (key or error), 1 no verified answer, 2 bad arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kl_engine.h"
#include "kl_test_client.h"

static int contains(const uint8_t *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	return k && n >= k && memmem(hay, n, needle, k) != NULL;
}

int main(int argc, char **argv)
{
	uint8_t psk[64], buf[1024], ans[2048], rnd[16];
	struct kl_client_req r;
	struct kl_crypto *c;
	char *end;
	int psk_len, fd, rc = 1;
	unsigned long key_id = 0, dom = 0, grp = 0;
	int mbms = argc > 1 && !strcmp(argv[1], "--mbms");
	int has_key_id = !mbms && argc == 8;
	const char *imsi;

	if (mbms) { /* --mbms IP PORT UE_ID MUK_FILE GROUP: the E2M positions minus the IMSI */
		argv++;
		argc--;
		if (argc != 6)
			goto usage;
		errno = 0;
		dom = strtoul(argv[5], &end, 16);
		if (errno || end != argv[5] + 6 || *end != ':' || dom > 0xffffffUL)
			goto usage;
		grp = strtoul(end + 1, &end, 10);
		if (errno || *end || grp > 0xffffUL)
			goto usage;
	} else if (argc != 7 && argc != 8) {
usage:
		fprintf(stderr, "usage: e2m_fetch SERVER_IP PORT EMSE_ID PSK_HEX_FILE UE_ID IMSI "
				"[KEY_ID_HEX]\n"
				"       e2m_fetch --mbms SERVER_IP PORT UE_ID MUK_HEX_FILE DDDDDD:G\n");
		return 2;
	}
	imsi = mbms ? "" : argv[6]; /* MBMS: no IMSI to look for */
	psk_len = kl_test_read_hex(argv[4], psk, sizeof(psk));
	if (psk_len < 1) {
		fprintf(stderr, "e2m_fetch: %s: want the PSK as hex\n", argv[4]);
		return 2;
	}
	if (has_key_id) {
		errno = 0;
		key_id = strtoul(argv[7], &end, 16);
		if (errno || *end || key_id > 0xffffffffUL)
			return 2;
	}
	fd = kl_test_udp_connect(argv[1], argv[2]);
	if (fd == -2) {
		fprintf(stderr, "e2m_fetch: bad address %s port %s\n", argv[1], argv[2]);
		return 2;
	}
	if (fd < 0) {
		perror("e2m_fetch: socket");
		return 1;
	}
	c = kl_crypto_create(KL_CRYPTO_OPENSSL);
	if (!c)
		return 1;
	/* a fresh request per try (a resent datagram would be a replay) */
	for (int attempt = 0; attempt < 5 && rc; attempt++) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		struct kl_client_result res;
		ssize_t n;

		memset(&r, 0, sizeof(r));
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			break;
		r.spec.rand = rnd;
		r.spec.id = (const uint8_t *)argv[3];
		r.spec.id_len = (uint16_t)strlen(argv[3]);
		r.spec.ts = kl_ntp_now();
		r.spec.csb_id = (uint32_t)rnd[0] << 24 | (uint32_t)rnd[1] << 16 | rnd[2] << 8 | rnd[3];
		if (mbms) {
			r.spec.kind = KL_KIND_MBMS;
			r.spec.domain[0] = (uint8_t)(dom >> 16);
			r.spec.domain[1] = (uint8_t)(dom >> 8);
			r.spec.domain[2] = (uint8_t)dom;
			r.spec.group = (uint16_t)grp;
		} else {
			r.spec.ue = (const uint8_t *)argv[5];
			r.spec.ue_len = (uint16_t)strlen(argv[5]);
			r.spec.kind = KL_KIND_E2M;
			r.spec.has_key_id = (uint8_t)has_key_id;
			r.spec.key_id = (uint32_t)key_id;
		}
		r.psk = psk;
		r.psk_len = (uint16_t)psk_len;
		r.buf = buf;
		r.cap = sizeof(buf);
		if (kl_client_sign(c, &r, 1) != 1) {
			fprintf(stderr, "e2m_fetch: cannot build the request\n");
			break;
		}
		if (send(fd, buf, r.len, 0) < 0)
			continue;
		while (poll(&pf, 1, 1000) == 1) {
			n = recv(fd, ans, sizeof(ans), 0);
			if (n <= 0)
				break;
			if (kl_client_verify(c, &r, ans, (uint16_t)n, kl_ntp_now(), 60, &res))
				continue; /* not the answer to this try */
			int imsi_in = contains(ans, (size_t)n, imsi) ||
				      contains(res.plain, sizeof(res.plain), imsi);

			if (res.is_error) {
				printf("{\"result\":\"error\",\"err_no\":%u,\"detail\":%u,"
				       "\"imsi_in_response\":%s,\"bytes\":%zd}\n",
				       res.err_no, res.detail, imsi_in ? "true" : "false", n);
			} else if (mbms && res.nkeys >= 1) {
				printf("{\"result\":\"key\",\"nkeys\":%u,\"key_ids\":[", res.nkeys);
				for (unsigned i = 0; i < res.nkeys; i++)
					printf("%s\"%08x\"", i ? "," : "", res.keys[i].key_id);
				printf("],\"bytes\":%zd}\n", n);
			} else if (res.nkeys == 1) {
				printf("{\"result\":\"key\",\"key_id\":\"%08x\",\"e2m_key\":\"",
				       res.keys[0].key_id);
				for (unsigned i = 0; i < res.keys[0].key_len; i++)
					printf("%02x", res.keys[0].key[i]);
				printf("\",\"imsi_in_response\":%s,\"bytes\":%zd}\n",
				       imsi_in ? "true" : "false", n);
			} else {
				printf("{\"result\":\"bad\",\"nkeys\":%u}\n", res.nkeys);
			}
			rc = 0;
			break;
		}
	}
	if (rc)
		printf("{\"result\":\"timeout\"}\n");
	kl_memzero(psk, sizeof(psk));
	kl_memzero(&r, sizeof(r));
	kl_crypto_destroy(c);
	close(fd);
	return rc;
}

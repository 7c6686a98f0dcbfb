/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test client for "a UE's MUK changes while traffic flows": for one population UE it keeps
 * sending MBMS requests over kernel UDP, alternately signed with the UE's population MUK (old)
 * and with a new MUK, and checks every answer against both keys. Expected: every answer verifies
 * under exactly the key its request was signed with and carries the group's current MSK; answers
 * to old-key requests stop, answers to new-key requests start, and no old-key answer follows the
 * first new-key answer. Prints one JSON line; exit 0 when all of that held.
 *   muk_switch_client POP_FILE UE_INDEX NEW_MUK_HEX_FILE SERVER_IP PORT SECONDS
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
#include <time.h>
#include <unistd.h>

#include "kl_engine.h"
#include "kl_population.h"
#include "kl_test_client.h"

#define RING 65536

struct sent {
	struct kl_client_req r[2]; /* [0] old MUK, [1] new MUK: same spec, same RAND */
	uint8_t rand[16];
	uint8_t buf[2][512];
	uint8_t which; /* the key this request was signed with */
	uint8_t used;
};

static struct sent ring[RING]; /* 12 s of requests at the paced rate */

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct kl_pop_params pp;
	struct kl_pop_ue ue;
	struct kl_group_ref gref;
	struct kl_group grp;
	uint8_t newmuk[64];
	char err[256];
	int newlen, fd;
	unsigned long sent_n[2] = { 0, 0 }, ok[2] = { 0, 0 }, neither = 0, cross = 0, wrong_msk = 0,
		      after_switch_old = 0, unknown = 0, errors = 0;
	double t_end, first_new = 0, last_old = 0, t0;
	unsigned seq = 0;
	struct kl_crypto *c;

	if (argc != 7) {
		fprintf(stderr, "usage: muk_switch_client POP UE NEW_MUK_HEX_FILE IP PORT SECONDS\n");
		return 2;
	}
	if (kl_pop_read_file(argv[1], &pp, err, sizeof(err))) {
		fprintf(stderr, "population: %s\n", err);
		return 2;
	}
	if (kl_pop_ue(&pp, (uint32_t)atoi(argv[2]), &ue) || !ue.ngroups) {
		fprintf(stderr, "population: no UE %s with a key group\n", argv[2]);
		return 2;
	}
	newlen = kl_test_read_hex(argv[3], newmuk, sizeof(newmuk));
	if (newlen < 1 || kl_pop_group(&pp, ue.groups[0].group, &gref, &grp)) {
		fprintf(stderr, "bad new MUK file or group\n");
		return 2;
	}
	fd = kl_test_udp_connect(argv[4], argv[5]);
	if (fd == -2) {
		fprintf(stderr, "bad address %s port %s\n", argv[4], argv[5]);
		return 2;
	}
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	c = kl_crypto_create(KL_CRYPTO_OPENSSL);
	if (!c)
		return 1;
	t0 = mono();
	t_end = t0 + atof(argv[6]);
	while (mono() < t_end) {
		struct sent *s = &ring[seq % RING];
		uint8_t ans[2048];
		double next = mono() + 0.0002; /* 5,000 requests/s */

		memset(s, 0, sizeof(*s));
		if (getrandom(s->rand, sizeof(s->rand), 0) != sizeof(s->rand))
			return 1;
		memcpy(s->rand, &seq, sizeof(seq)); /* unique per request: the answer's key */
		for (int k = 0; k < 2; k++) {
			struct kl_client_req *r = &s->r[k];

			r->spec.rand = s->rand;
			r->spec.id = (const uint8_t *)ue.impi;
			r->spec.id_len = ue.impi_len;
			r->spec.ts = kl_ntp_now();
			r->spec.csb_id = seq;
			r->spec.kind = KL_KIND_MBMS;
			memcpy(r->spec.domain, ue.groups[0].domain, 3);
			r->spec.group = ue.groups[0].group;
			r->psk = k == 0 ? ue.muk : newmuk;
			r->psk_len = k == 0 ? sizeof(ue.muk) : (uint16_t)newlen;
			r->buf = s->buf[k];
			r->cap = sizeof(s->buf[k]);
		}
		s->r[1].spec.ts = s->r[0].spec.ts;
		if (kl_client_sign(c, s->r, 2) != 2)
			return 1;
		s->which = seq & 1;
		s->used = 1;
		if (send(fd, s->buf[s->which], s->r[s->which].len, 0) > 0)
			sent_n[s->which]++;
		seq++;
		/* collect answers until the next send is due */
		for (;;) {
			struct pollfd pf = { .fd = fd, .events = POLLIN };
			double left = next - mono();
			struct timespec ts = { 0, left > 0 ? (long)(left * 1e9) : 0 };
			ssize_t n;

			if (ppoll(&pf, 1, &ts, NULL) <= 0)
				break;
			n = recv(fd, ans, sizeof(ans), 0);
			if (n <= 0)
				break;
			/* the CSB ID is the request's sequence number; the RAND must match too */
			{
				struct kl_client_result res;
				struct kl_mikey_resp rp;
				struct sent *q;
				int v[2];

				if (kl_mikey_parse_resp(ans, (size_t)n, &rp) != KL_DROP_NONE) {
					unknown++;
					continue;
				}
				q = &ring[rp.csb_id % RING];
				if (!q->used || q->r[0].spec.csb_id != rp.csb_id) {
					unknown++;
					continue;
				}
				for (int k = 0; k < 2; k++)
					v[k] = kl_client_verify(c, &q->r[k], ans, (uint16_t)n, kl_ntp_now(),
								60, &res) == 0;
				if (!v[0] && !v[1]) {
					neither++;
					continue;
				}
				if (!v[q->which]) {
					cross++; /* verifies, but under the key the request did not use */
					continue;
				}
				kl_client_verify(c, &q->r[q->which], ans, (uint16_t)n, kl_ntp_now(), 60,
						 &res);
				if (res.is_error) {
					errors++;
					continue;
				}
				if (res.nkeys < 1 || res.keys[0].key_len != 16 ||
				    memcmp(res.keys[0].key, grp.current.key, 16) != 0)
					wrong_msk++;
				ok[q->which]++;
				if (q->which == 1 && !first_new)
					first_new = mono() - t0;
				if (q->which == 0) {
					last_old = mono() - t0;
					if (first_new)
						after_switch_old++;
				}
				q->used = 0;
			}
		}
	}
	printf("{\"sent_old\":%lu,\"sent_new\":%lu,\"ok_old\":%lu,\"ok_new\":%lu,\"neither\":%lu,"
	       "\"cross\":%lu,\"wrong_msk\":%lu,\"errors\":%lu,\"unknown\":%lu,"
	       "\"old_after_first_new\":%lu,\"last_old_s\":%.4f,\"first_new_s\":%.4f}\n",
	       sent_n[0], sent_n[1], ok[0], ok[1], neither, cross, wrong_msk, errors, unknown,
	       after_switch_old, last_old, first_new);
	kl_memzero(ring, sizeof(ring));
	kl_memzero(newmuk, sizeof(newmuk));
	kl_memzero(&ue, sizeof(ue));
	kl_crypto_destroy(c);
	return (neither || cross || wrong_msk || errors || unknown || after_switch_old || !ok[0] ||
		!ok[1]) ? 1 : 0;
}

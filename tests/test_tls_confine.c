/*
 * keylined's GnuTLS interposers (control/diameter/kl_diameter.c: gnutls_record_send, gnutls_bye) leave
 * sessions that are not freeDiameter's alone. This program links them as keylined does (the
 * executable defines both and exports them to libfdcore) and drives GnuTLS sessions of its own
 * over socketpairs: on SESSIONS sessions at once, each side sends from one thread while another
 * receives (GnuTLS's one sender + one receiver), RECORDS records each way with their content
 * checked; then the client closes with gnutls_bye(GNUTLS_SHUT_RDWR), which must really wait for the
 * server's close_notify (sent PEER_DELAY_MS after it saw the client's) and return 0, and the
 * server's gnutls_record_recv sees the client's close_notify (0). The interposers' counters show
 * every call passed through and none confined; the workaround's bye (SHUT_WR, no wait) would
 * return at once, and a serialised send would show in the confined count.
 */
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kl_diameter.h" /* kl_diameter_tls_counts */

#define SESSIONS 8
#define RECORDS 1500
#define PEER_DELAY_MS 300

static int g_fail;
#define CHECK(c, ...)                                                                    \
	do {                                                                             \
		if (!(c)) {                                                              \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);             \
			fprintf(stderr, __VA_ARGS__);                                    \
			fputc('\n', stderr);                                             \
			__atomic_store_n(&g_fail, 1, __ATOMIC_RELAXED);                  \
		}                                                                        \
	} while (0)

static const char *const PRIO = "NORMAL:+ECDHE-PSK:+PSK";
static const unsigned char PSK[16] = "keyline-test-psk";

struct side {
	gnutls_session_t s;
	int fd;
	unsigned seed;
	unsigned sent, received;
	int bye_rc;
	double bye_ms;
	int closed_seen; /* server: the client's close_notify came as 0 from record_recv */
};

struct pair {
	struct side c, v; /* client, server */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* record i of a stream: a length 1..4096 and bytes derived from (seed, i) */
static size_t record(unsigned seed, unsigned i, unsigned char *b)
{
	uint32_t x = seed * 2654435761u + i * 40503u + 1;
	size_t n = 1 + (x % 4096);

	for (size_t k = 0; k < n; k++) {
		x = x * 1103515245u + 12345u;
		b[k] = (unsigned char)(x >> 16);
	}
	return n;
}

static void *sender(void *arg)
{
	struct side *sd = arg;
	unsigned char b[4096];

	for (unsigned i = 0; i < RECORDS; i++) {
		size_t n = record(sd->seed, i, b);
		ssize_t r;

		do
			r = gnutls_record_send(sd->s, b, n);
		while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
		CHECK(r == (ssize_t)n, "send %u: %zd (%s)", i, r, r < 0 ? gnutls_strerror((int)r) : "");
		if (r != (ssize_t)n)
			return NULL;
		sd->sent++;
	}
	return NULL;
}

/* receives the peer's RECORDS records (seed: the peer's), each checked byte for byte */
struct rx {
	struct side *sd;
	unsigned peer_seed;
};

static int recv_full(gnutls_session_t s, unsigned char *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = gnutls_record_recv(s, b + got, n - got);

		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r <= 0)
			return (int)(r ? r : -1);
		got += (size_t)r;
	}
	return 0;
}

static void *receiver(void *arg)
{
	struct rx *x = arg;
	unsigned char want[4096], got[4096];

	for (unsigned i = 0; i < RECORDS; i++) {
		size_t n = record(x->peer_seed, i, want);
		int rc = recv_full(x->sd->s, got, n);

		CHECK(!rc, "recv %u: %d", i, rc);
		if (rc)
			return NULL;
		CHECK(!memcmp(want, got, n), "record %u differs", i);
		x->sd->received++;
	}
	return NULL;
}

static void *handshake(void *arg)
{
	struct side *sd = arg;
	int rc;

	do
		rc = gnutls_handshake(sd->s);
	while (rc < 0 && !gnutls_error_is_fatal(rc));
	CHECK(rc == 0, "handshake: %s", gnutls_strerror(rc));
	return NULL;
}

/* client: bye(SHUT_RDWR), timed; it returns only once the server's close_notify came */
static void *client_close(void *arg)
{
	struct side *sd = arg;
	double t0 = now_ms();

	sd->bye_rc = gnutls_bye(sd->s, GNUTLS_SHUT_RDWR);
	sd->bye_ms = now_ms() - t0;
	return NULL;
}

/* server: sees the client's close_notify, waits PEER_DELAY_MS, then sends its own */
static void *server_close(void *arg)
{
	struct side *sd = arg;
	unsigned char b[64];
	ssize_t r;

	do
		r = gnutls_record_recv(sd->s, b, sizeof(b));
	while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
	sd->closed_seen = r == 0;
	usleep(PEER_DELAY_MS * 1000);
	sd->bye_rc = gnutls_bye(sd->s, GNUTLS_SHUT_WR);
	return NULL;
}

static int psk_lookup(gnutls_session_t s, const char *user, gnutls_datum_t *k)
{
	(void)s;
	if (strcmp(user, "device"))
		return -1;
	k->data = gnutls_malloc(sizeof(PSK));
	if (!k->data)
		return -1;
	memcpy(k->data, PSK, sizeof(PSK));
	k->size = sizeof(PSK);
	return 0;
}

static void run_all(struct pair *p, void *(*fc)(void *), void *(*fv)(void *))
{
	pthread_t t[2 * SESSIONS];

	for (int i = 0; i < SESSIONS; i++) {
		pthread_create(&t[2 * i], NULL, fc, &p[i].c);
		pthread_create(&t[2 * i + 1], NULL, fv, &p[i].v);
	}
	for (int i = 0; i < 2 * SESSIONS; i++)
		pthread_join(t[i], NULL);
}

int main(void)
{
	gnutls_psk_server_credentials_t scred;
	gnutls_psk_client_credentials_t ccred;
	const gnutls_datum_t key = { (unsigned char *)PSK, sizeof(PSK) };
	static struct pair p[SESSIONS];
	pthread_t t[4 * SESSIONS];
	struct rx rx[2 * SESSIONS];
	uint64_t c0[4], c1[4];
	double slowest = 0, fastest = 1e9;

	if (gnutls_global_init() < 0 || gnutls_psk_allocate_server_credentials(&scred) < 0 ||
	    gnutls_psk_allocate_client_credentials(&ccred) < 0 ||
	    gnutls_psk_set_client_credentials(ccred, "device", &key, GNUTLS_PSK_KEY_RAW) < 0) {
		fprintf(stderr, "FAIL: GnuTLS set-up\n");
		return 1;
	}
	gnutls_psk_set_server_credentials_function(scred, psk_lookup);
	kl_diameter_tls_counts(c0);
	for (int i = 0; i < SESSIONS; i++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
			perror("socketpair");
			return 1;
		}
		gnutls_init(&p[i].c.s, GNUTLS_CLIENT);
		gnutls_init(&p[i].v.s, GNUTLS_SERVER);
		gnutls_priority_set_direct(p[i].c.s, PRIO, NULL);
		gnutls_priority_set_direct(p[i].v.s, PRIO, NULL);
		gnutls_credentials_set(p[i].c.s, GNUTLS_CRD_PSK, ccred);
		gnutls_credentials_set(p[i].v.s, GNUTLS_CRD_PSK, scred);
		p[i].c.fd = sv[0];
		p[i].v.fd = sv[1];
		gnutls_transport_set_int(p[i].c.s, sv[0]);
		gnutls_transport_set_int(p[i].v.s, sv[1]);
		p[i].c.seed = 2u * (unsigned)i + 1;
		p[i].v.seed = 2u * (unsigned)i + 2;
	}
	run_all(p, handshake, handshake);
	if (g_fail)
		return 1;

	/* full duplex on every session at once: 4 threads a session */
	for (int i = 0; i < SESSIONS; i++) {
		rx[2 * i] = (struct rx){ &p[i].c, p[i].v.seed };
		rx[2 * i + 1] = (struct rx){ &p[i].v, p[i].c.seed };
		pthread_create(&t[4 * i], NULL, sender, &p[i].c);
		pthread_create(&t[4 * i + 1], NULL, sender, &p[i].v);
		pthread_create(&t[4 * i + 2], NULL, receiver, &rx[2 * i]);
		pthread_create(&t[4 * i + 3], NULL, receiver, &rx[2 * i + 1]);
	}
	for (int i = 0; i < 4 * SESSIONS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < SESSIONS; i++)
		CHECK(p[i].c.sent == RECORDS && p[i].v.sent == RECORDS &&
			      p[i].c.received == RECORDS && p[i].v.received == RECORDS,
		      "session %d: sent %u/%u received %u/%u", i, p[i].c.sent, p[i].v.sent,
		      p[i].c.received, p[i].v.received);

	/* orderly close: the client's SHUT_RDWR waits for the server's late close_notify */
	run_all(p, client_close, server_close);
	for (int i = 0; i < SESSIONS; i++) {
		CHECK(p[i].v.closed_seen, "session %d: server did not get the close_notify", i);
		CHECK(p[i].v.bye_rc == 0, "session %d: server bye: %s", i,
		      gnutls_strerror(p[i].v.bye_rc));
		CHECK(p[i].c.bye_rc == 0, "session %d: client bye(SHUT_RDWR): %s", i,
		      gnutls_strerror(p[i].c.bye_rc));
		CHECK(p[i].c.bye_ms >= PEER_DELAY_MS - 20,
		      "session %d: bye(SHUT_RDWR) returned after %.1f ms, before the peer's "
		      "close_notify (sent after %d ms): it did not wait",
		      i, p[i].c.bye_ms, PEER_DELAY_MS);
		slowest = p[i].c.bye_ms > slowest ? p[i].c.bye_ms : slowest;
		fastest = p[i].c.bye_ms < fastest ? p[i].c.bye_ms : fastest;
	}
	kl_diameter_tls_counts(c1);
	CHECK(c1[0] == c0[0] && c1[1] == c0[1], "confined: %llu sends, %llu byes (want 0)",
	      (unsigned long long)(c1[0] - c0[0]), (unsigned long long)(c1[1] - c0[1]));
	CHECK(c1[2] - c0[2] == 2ull * SESSIONS * RECORDS,
	      "passed-through sends %llu, want %llu", (unsigned long long)(c1[2] - c0[2]),
	      2ull * SESSIONS * RECORDS);
	CHECK(c1[3] - c0[3] == 2ull * SESSIONS, "passed-through byes %llu, want %d",
	      (unsigned long long)(c1[3] - c0[3]), 2 * SESSIONS);
	for (int i = 0; i < SESSIONS; i++) {
		gnutls_deinit(p[i].c.s);
		gnutls_deinit(p[i].v.s);
		close(p[i].c.fd);
		close(p[i].v.fd);
	}
	gnutls_psk_free_server_credentials(scred);
	gnutls_psk_free_client_credentials(ccred);
	gnutls_global_deinit();
	printf("tls-confine: %d sessions x %d records each way from %d threads, %llu sends and "
	       "%llu byes passed through, 0 confined; bye(SHUT_RDWR) waited %.0f-%.0f ms for the "
	       "peer's close_notify (sent after %d ms)\n",
	       SESSIONS, RECORDS, 4 * SESSIONS, (unsigned long long)(c1[2] - c0[2]),
	       (unsigned long long)(c1[3] - c0[3]), fastest, slowest, PEER_DELAY_MS);
	return g_fail;
}

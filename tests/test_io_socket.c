/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kernel-socket worker loop's server-to-server side, against a scripted engine
 * (kl_fake_engine.h: the real engine is not linked): every datagram is handed over with pkt.peer = 1 + the configured peer whose address
 * AND port sent it (IPv4, IPv6, IPv4 on a dual-stack socket), 0 otherwise; the outbox after a
 * serve and after a tick reaches each peer's address and port from the server's own port, over
 * the socket of the peer's family; a message for no peer is counted as not sent; the idle loop
 * keeps ticking (retransmissions) while nothing arrives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kl_io.h"

#include "kl_fake_engine.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

static int bound_udp(int family, const char *addr, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &s4->sin_addr);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		int one = 1;

		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		sl = sizeof(*s6);
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, sl), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* A port the kernel just gave a dual-stack [::] socket (free on IPv4 and IPv6 alike). Another
 * process may still take it before the loop binds it: start_loop then picks another. */
static uint16_t free_port(void)
{
	struct sockaddr_in6 s6;
	socklen_t sl = sizeof(s6);
	int zero = 0, fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	assert_int_equal(bind(fd, (struct sockaddr *)&s6, sizeof(s6)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&s6, &sl), 0);
	close(fd);
	return ntohs(s6.sin6_port);
}

static void send_to(int fd, int family, const char *addr, uint16_t port, const char *msg)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, addr, &s4->sin_addr);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		sl = sizeof(*s6);
	}
	assert_int_equal(sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&ss, sl),
			 (ssize_t)strlen(msg));
}

/* One datagram within ms, as text; *from_port its source port, from its source address. */
static int recv_text(int fd, int ms, char *buf, size_t cap, uint16_t *from_port, char *from,
		     size_t fl)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	ssize_t n;

	if (poll(&p, 1, ms) != 1)
		return -1;
	n = recvfrom(fd, buf, cap - 1, 0, (struct sockaddr *)&ss, &sl);
	if (n < 0)
		return -1;
	buf[n] = 0;
	if (ss.ss_family == AF_INET) {
		*from_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, from, (socklen_t)fl);
	} else {
		*from_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, from, (socklen_t)fl);
	}
	return (int)n;
}

static void add_peer(struct kl_peers *ps, const char *id, int family, const char *addr,
		     uint16_t port)
{
	struct kl_peer *p = &ps->p[ps->n++];

	memset(p, 0, sizeof(*p));
	p->id_len = (uint16_t)strlen(id);
	memcpy(p->id, id, p->id_len);
	p->family = family == AF_INET ? 4 : 6;
	inet_pton(family, addr, p->ip);
	p->port = port;
}

struct loop_ctx {
	struct kl_io_worker *w;
	pthread_t th;
	volatile int stop;
	struct kl_io_clock clock;
};

static void *loop_thread(void *arg)
{
	struct loop_ctx *c = arg;

	kl_io_socket_loop(c->w);
	return NULL;
}

/* Opens the loop's sockets on a->udp_port; when another process took that port since
 * free_port() gave it, on a fresh one (a->udp_port updated), up to 20 times. */
static void start_loop(struct loop_ctx *c, struct kl_io_worker *w, struct kl_net_addrs *a,
		       const struct kl_peers *ps)
{
	char err[256];
	int tries = 0;

	memset(w, 0, sizeof(*w));
	memset(&fake, 0, sizeof(fake));
	fake.tick_msg = -1;
	c->stop = 0;
	kl_io_clock_init(&c->clock, 1000000000ull);
	w->engine = &fake;
	w->clock = &c->clock;
	w->stop = &c->stop;
	w->peers = ps;
	while (kl_io_socket_open(w, a, err, sizeof(err))) {
		if (!strstr(err, "in use") || ++tries == 20)
			fail_msg("kl_io_socket_open: %s", err);
		a->udp_port = free_port();
	}
	c->w = w;
	assert_int_equal(pthread_create(&c->th, NULL, loop_thread, c), 0);
}

static void stop_loop(struct loop_ctx *c)
{
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED);
	pthread_join(c->th, NULL);
	kl_io_socket_close(c->w);
}

static void expect_msg(int fd, const char *want, uint16_t want_port, const char *want_from)
{
	char buf[600], from[64];
	uint16_t port = 0;

	if (recv_text(fd, 2000, buf, sizeof(buf), &port, from, sizeof(from)) < 0)
		fail_msg("no datagram \"%s\" within 2 s", want);
	assert_string_equal(buf, want);
	assert_int_equal(port, want_port);
	assert_string_equal(from, want_from);
}

/* ---- tests ------------------------------------------------------------------------------------ */

/* One dual-stack socket ([::]): an IPv4 peer arrives v4-mapped and must still be found; the
 * outbox goes to it v4-mapped through the same socket. */
static void test_dual_stack(void **state)
{
	struct kl_net_addrs a = { .udp_port = free_port() };
	struct kl_peers ps;
	struct kl_io_worker *w = aligned_alloc(64, sizeof(*w));
	struct loop_ctx c;
	uint16_t p4, p6, pu, pother;
	int f4, f6, fu, fother;
	uint8_t seen[16];
	char buf[64], from[64];
	uint16_t port;

	(void)state;
	memset(&ps, 0, sizeof(ps));
	f4 = bound_udp(AF_INET, "127.0.0.1", &p4);
	f6 = bound_udp(AF_INET6, "::1", &p6);
	fu = bound_udp(AF_INET, "127.0.0.1", &pu);	 /* an unconfigured source */
	fother = bound_udp(AF_INET, "127.0.0.1", &pother); /* a peer's address, another port */
	add_peer(&ps, "vlr-b", AF_INET, "127.0.0.1", p4);
	add_peer(&ps, "vlr-c", AF_INET6, "::1", p6);
	start_loop(&c, w, &a, &ps);

	send_to(f4, AF_INET, "127.0.0.1", a.udp_port, "S01");
	expect_msg(f4, "to0", a.udp_port, "127.0.0.1");
	expect_msg(f6, "to1", a.udp_port, "::1");
	send_to(fu, AF_INET, "127.0.0.1", a.udp_port, "x");
	send_to(f6, AF_INET6, "::1", a.udp_port, "y");
	send_to(fother, AF_INET, "127.0.0.1", a.udp_port, "z");
	assert_int_equal(fake_wait_seen(4, seen), 4);
	assert_int_equal(seen[0], 1); /* vlr-b over IPv4, v4-mapped on the dual-stack socket */
	assert_int_equal(seen[1], 0); /* unconfigured */
	assert_int_equal(seen[2], 2); /* vlr-c over IPv6 */
	assert_int_equal(seen[3], 0); /* vlr-b's address, another port: no peer */

	/* a message to a peer index beyond the list is not sent, and counted */
	send_to(fu, AF_INET, "127.0.0.1", a.udp_port, "S9");
	assert_int_equal(fake_wait_seen(5, seen), 5);
	usleep(50000);
	assert_int_equal(recv_text(f4, 100, buf, sizeof(buf), &port, from, sizeof(from)), -1);

	/* nothing arrives, the loop still ticks, and the tick's outbox goes out */
	fake_tick_msg(0);
	expect_msg(f4, "tick0", a.udp_port, "127.0.0.1");
	{
		uint64_t t0 = fake_ticks(), t1;

		usleep(500000);
		t1 = fake_ticks();
		/* with peers the idle poll is KL_IO_S2S_POLL_MS (about 50 turns in 500 ms); the
		 * KL_IO_IDLE_POLL_MS of a server without peers would give 10 */
		print_message("idle ticks in 500 ms: %llu\n", (unsigned long long)(t1 - t0));
		assert_true(t1 - t0 >= 20);
	}
	stop_loop(&c);
	assert_int_equal(w->st.counter[KL_IO_CNT_S2S_TX], 3);
	assert_int_equal(w->st.counter[KL_IO_CNT_S2S_TX_FAILED], 1);
	assert_int_equal(w->st.counter[KL_IO_CNT_RX_FRAMES], 5);
	close(f4);
	close(f6);
	close(fu);
	close(fother);
	free(w);
}

/* One socket per address: each peer is reached over the socket of its family, from that
 * socket's address and our port; a family without a socket is counted as not sent. */
static void test_per_address(void **state)
{
	struct kl_net_addrs a = { .udp_port = free_port(), .n4 = 1, .n6 = 1 };
	struct kl_net_addrs a4only = { .udp_port = free_port(), .n4 = 1 };
	struct kl_peers ps;
	struct kl_io_worker *w = aligned_alloc(64, sizeof(*w));
	struct loop_ctx c;
	uint16_t p4, p6;
	int f4, f6;
	uint8_t seen[16];

	(void)state;
	inet_pton(AF_INET, "127.0.0.1", a.ip4[0]);
	inet_pton(AF_INET6, "::1", a.ip6[0]);
	memset(&ps, 0, sizeof(ps));
	f4 = bound_udp(AF_INET, "127.0.0.1", &p4);
	f6 = bound_udp(AF_INET6, "::1", &p6);
	add_peer(&ps, "vlr-b", AF_INET, "127.0.0.1", p4);
	add_peer(&ps, "vlr-c", AF_INET6, "::1", p6);
	start_loop(&c, w, &a, &ps);
	send_to(f6, AF_INET6, "::1", a.udp_port, "S10");
	expect_msg(f6, "to1", a.udp_port, "::1");
	expect_msg(f4, "to0", a.udp_port, "127.0.0.1");
	send_to(f4, AF_INET, "127.0.0.1", a.udp_port, "q");
	assert_int_equal(fake_wait_seen(2, seen), 2);
	assert_int_equal(seen[0], 2);
	assert_int_equal(seen[1], 1);
	stop_loop(&c);
	assert_int_equal(w->st.counter[KL_IO_CNT_S2S_TX], 2);
	assert_int_equal(w->st.counter[KL_IO_CNT_S2S_TX_FAILED], 0);

	/* IPv4 sockets only: the IPv6 peer cannot be reached (config validation refuses that
	 * setup; the loop must still not send it anywhere) */
	inet_pton(AF_INET, "127.0.0.1", a4only.ip4[0]);
	start_loop(&c, w, &a4only, &ps);
	send_to(f4, AF_INET, "127.0.0.1", a4only.udp_port, "S10");
	expect_msg(f4, "to0", a4only.udp_port, "127.0.0.1");
	assert_int_equal(fake_wait_seen(1, seen), 1);
	assert_int_equal(seen[0], 1);
	stop_loop(&c);
	assert_int_equal(w->st.counter[KL_IO_CNT_S2S_TX], 1);
	assert_int_equal(w->st.counter[KL_IO_CNT_S2S_TX_FAILED], 1);
	close(f4);
	close(f6);
	free(w);
}

/* Without peers every datagram is peer 0 and nothing breaks. */
static void test_no_peers(void **state)
{
	struct kl_net_addrs a = { .udp_port = free_port() };
	struct kl_io_worker *w = aligned_alloc(64, sizeof(*w));
	struct loop_ctx c;
	uint16_t p4;
	int f4 = bound_udp(AF_INET, "127.0.0.1", &p4);
	uint8_t seen[4];

	(void)state;
	start_loop(&c, w, &a, NULL);
	send_to(f4, AF_INET, "127.0.0.1", a.udp_port, "S0");
	assert_int_equal(fake_wait_seen(1, seen), 1);
	assert_int_equal(seen[0], 0);
	usleep(50000);
	stop_loop(&c);
	assert_int_equal(w->st.counter[KL_IO_CNT_S2S_TX], 0);
	assert_int_equal(w->st.counter[KL_IO_CNT_S2S_TX_FAILED], 1);
	close(f4);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dual_stack),
		cmocka_unit_test(test_per_address),
		cmocka_unit_test(test_no_peers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

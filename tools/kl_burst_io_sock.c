/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-burst kernel-socket front end: one non-blocking UDP socket per source address,
 * recvmmsg/sendmmsg in batches, the same core as the DPDK front end. The loop only blocks (ppoll)
 * when the core has nothing due, for at most the time until its next event.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "kl_burst_io.h"

#define RX_BATCH 32
#define RX_ROUNDS 4
#define RX_BUF 2048
#define SOCK_BUF (4 << 20)
#define MAX_SOCKETS 1024
#define MAX_WAIT_NS 5000000ull

#define SOCK_COUNTER_LIST(X)                                                          \
	X(RX_DATAGRAMS, "rx_datagrams")                                               \
	X(RX_OTHER, "rx_other")                                                       \
	X(RX_ERRORS, "rx_errors")                                                     \
	X(TX_DATAGRAMS, "tx_datagrams")                                               \
	X(TX_ERRORS, "tx_errors")                                                     \
	X(WAITS, "idle_waits")

enum {
#define KL_X(e, n) SC_##e,
	SOCK_COUNTER_LIST(KL_X)
#undef KL_X
	SC__COUNT
};

static const char *const sc_names[] = {
#define KL_X(e, n) n,
	SOCK_COUNTER_LIST(KL_X)
#undef KL_X
};

struct sock_io {
	struct kl_burst_net net;
	int *fd;
	struct pollfd *pfd;
	uint32_t n;
	/* the server and the peer server (hm, dh, prose), or the servers of a several-server run,
	 * by kl_burst_dgram.server */
	struct sockaddr_storage server[KL_BURST_SERVERS_MAX];
	socklen_t server_len[KL_BURST_SERVERS_MAX];
	uint32_t naddr;
	uint64_t cnt[SC__COUNT];
	/* receive batch */
	struct mmsghdr rmsg[RX_BATCH];
	struct iovec riov[RX_BATCH];
	struct sockaddr_storage rfrom[RX_BATCH];
	uint8_t rbuf[RX_BATCH][RX_BUF];
	/* send batch */
	struct mmsghdr smsg[KL_BURST_TX_MAX];
	struct iovec siov[KL_BURST_TX_MAX];
	uint32_t sidx[KL_BURST_TX_MAX];
};

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static socklen_t sockaddr_of(const struct kl_burst_net *n, const uint8_t *ip, uint16_t port,
			     struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (n->v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		memcpy(&a->sin6_addr, ip, 16);
		return sizeof(*a);
	}
	{
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		memcpy(&a->sin_addr, ip, 4);
		return sizeof(*a);
	}
}

static int from_addr(const struct sock_io *io, const struct sockaddr_storage *ss, socklen_t len,
		     const struct sockaddr_storage *srv)
{
	if (io->net.v6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss, *s =
			(const struct sockaddr_in6 *)srv;

		return len >= sizeof(*a) && a->sin6_family == AF_INET6 && a->sin6_port == s->sin6_port &&
		       !memcmp(&a->sin6_addr, &s->sin6_addr, 16);
	}
	{
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss, *s =
			(const struct sockaddr_in *)srv;

		return len >= sizeof(*a) && a->sin_family == AF_INET && a->sin_port == s->sin_port &&
		       a->sin_addr.s_addr == s->sin_addr.s_addr;
	}
}

/* From one of the servers (or the peer server). */
static int from_server(const struct sock_io *io, const struct sockaddr_storage *ss, socklen_t len)
{
	for (uint32_t i = 0; i < io->naddr; i++)
		if (from_addr(io, ss, len, &io->server[i]))
			return 1;
	return 0;
}

static int open_sockets(struct sock_io *io, char *err, size_t errlen)
{
	const struct kl_burst_net *n = &io->net;
	char ip[INET6_ADDRSTRLEN];

	if (n->sources > MAX_SOCKETS)
		return fail(err, errlen, "--sources %u: at most %u sockets", n->sources, MAX_SOCKETS);
	if (n->sources > 1 && !n->have_client_ip)
		return fail(err, errlen, "--sources %u needs --client-ip with socket io", n->sources);
	io->fd = calloc(n->sources, sizeof(*io->fd));
	io->pfd = calloc(n->sources, sizeof(*io->pfd));
	if (!io->fd || !io->pfd)
		return fail(err, errlen, "out of memory");
	for (uint32_t k = 0; k < n->sources; k++)
		io->fd[k] = -1;
	for (uint32_t k = 0; k < n->sources; k++) {
		int fd = socket(n->v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int sz = SOCK_BUF;

		if (fd < 0)
			return fail(err, errlen, "socket: %s", strerror(errno));
		io->fd[k] = fd;
		io->n = k + 1;
		/* a rekey burst arrives faster than one loop drains it: deep buffers, best effort */
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		if (n->have_client_ip || n->client_port) {
			struct sockaddr_storage ss;
			uint8_t src[16] = { 0 };
			socklen_t sl;

			if (n->have_client_ip)
				kl_burst_source_ip(n, k, src);
			sl = sockaddr_of(n, src, n->client_port, &ss);
			if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
				if (!inet_ntop(n->v6 ? AF_INET6 : AF_INET, src, ip, sizeof(ip)))
					snprintf(ip, sizeof(ip), "?");
				return fail(err, errlen, "bind %s port %u: %s", ip, n->client_port,
					    strerror(errno));
			}
		}
		io->pfd[k] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	if (n->nservers > KL_BURST_SERVERS_MAX)
		return fail(err, errlen, "%u servers: at most %u", n->nservers, KL_BURST_SERVERS_MAX);
	if (n->nservers > 1) {
		for (uint32_t i = 0; i < n->nservers; i++)
			io->server_len[i] = sockaddr_of(n, n->servers_ip[i], n->servers_port[i],
							&io->server[i]);
		io->naddr = n->nservers;
	} else {
		io->server_len[0] = sockaddr_of(n, n->server_ip, n->server_port, &io->server[0]);
		if (n->have_peer)
			io->server_len[1] = sockaddr_of(n, n->peer_server_ip, n->peer_server_port,
							&io->server[1]);
		else
			io->server_len[1] = sockaddr_of(n, n->server_ip, n->server_port, &io->server[1]);
		io->naddr = 2; /* without a peer, the server plays both roles */
	}
	for (unsigned i = 0; i < RX_BATCH; i++) {
		io->riov[i] = (struct iovec){ .iov_base = io->rbuf[i], .iov_len = RX_BUF };
		io->rmsg[i].msg_hdr = (struct msghdr){ .msg_iov = &io->riov[i], .msg_iovlen = 1 };
	}
	return 0;
}

static unsigned rx_socket(struct sock_io *io, struct kl_burst *b, int fd, uint64_t now)
{
	unsigned total = 0;

	for (unsigned round = 0; round < RX_ROUNDS; round++) {
		const uint8_t *ans[RX_BATCH];
		uint16_t alen[RX_BATCH];
		unsigned na = 0;
		int n;

		for (unsigned i = 0; i < RX_BATCH; i++) {
			io->rmsg[i].msg_hdr.msg_name = &io->rfrom[i];
			io->rmsg[i].msg_hdr.msg_namelen = sizeof(io->rfrom[i]);
			io->rmsg[i].msg_hdr.msg_flags = 0;
		}
		n = recvmmsg(fd, io->rmsg, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				io->cnt[SC_RX_ERRORS]++; /* e.g. ICMP port unreachable reported late */
			break;
		}
		io->cnt[SC_RX_DATAGRAMS] += (unsigned)n;
		total += (unsigned)n;
		for (int i = 0; i < n; i++) {
			struct msghdr *h = &io->rmsg[i].msg_hdr;

			if (!from_server(io, &io->rfrom[i], h->msg_namelen) || (h->msg_flags & MSG_TRUNC) ||
			    io->rmsg[i].msg_len > UINT16_MAX) {
				io->cnt[SC_RX_OTHER]++;
				kl_burst_count(b, KL_BC_RX_OTHER, 1);
				continue;
			}
			ans[na] = io->rbuf[i];
			alen[na++] = (uint16_t)io->rmsg[i].msg_len;
		}
		/* together, so their verification is one crypto batch */
		kl_burst_answers(b, ans, alen, na, now);
		if (n < RX_BATCH)
			break;
	}
	return total;
}

static unsigned rx_all(struct sock_io *io, struct kl_burst *b, uint64_t now)
{
	unsigned total = 0;

	if (io->n == 1)
		return rx_socket(io, b, io->fd[0], now);
	/* one ppoll finds the sockets with data, instead of a recvmmsg per socket */
	if (ppoll(io->pfd, io->n, &(struct timespec){ 0, 0 }, NULL) <= 0)
		return 0;
	for (uint32_t k = 0; k < io->n; k++)
		if (io->pfd[k].revents & (POLLIN | POLLERR))
			total += rx_socket(io, b, io->fd[k], now);
	return total;
}

static uint32_t sock_of(const struct sock_io *io, const struct kl_burst_dgram *d)
{
	return d->source < io->n ? d->source : 0;
}

static uint32_t addr_of(const struct sock_io *io, const struct kl_burst_dgram *d)
{
	return d->server < io->naddr ? d->server : 0;
}

/* One sendmmsg per source socket with the requests that share it (to either server). */
static void tx_all(struct sock_io *io, struct kl_burst_dgram *dg, unsigned n)
{
	uint8_t taken[KL_BURST_TX_MAX] = { 0 };

	for (unsigned i = 0; i < n; i++)
		dg[i].sent = 0;
	for (unsigned i = 0; i < n; i++) {
		uint32_t src = sock_of(io, &dg[i]);
		unsigned m = 0;
		int r;

		if (taken[i])
			continue;
		for (unsigned k = i; k < n; k++) {
			if (taken[k] || sock_of(io, &dg[k]) != src)
				continue;
			taken[k] = 1;
			io->siov[m] = (struct iovec){ .iov_base = (void *)dg[k].data, .iov_len = dg[k].len };
			io->smsg[m].msg_hdr = (struct msghdr){ .msg_name = &io->server[addr_of(io, &dg[k])],
							       .msg_namelen = io->server_len[addr_of(io, &dg[k])],
							       .msg_iov = &io->siov[m], .msg_iovlen = 1 };
			io->sidx[m++] = k;
		}
		r = sendmmsg(io->fd[src], io->smsg, m, MSG_DONTWAIT);
		if (r >= 0 && (unsigned)r < m) { /* once more for the rest (a full send buffer) */
			int r2 = sendmmsg(io->fd[src], io->smsg + r, m - (unsigned)r, MSG_DONTWAIT);

			if (r2 > 0)
				r += r2;
		}
		if (r < 0) {
			io->cnt[SC_TX_ERRORS]++;
			r = 0;
		}
		io->cnt[SC_TX_DATAGRAMS] += (unsigned)r;
		for (int k = 0; k < r; k++)
			dg[io->sidx[k]].sent = 1;
	}
}

static json_t *io_json(const struct sock_io *io)
{
	json_t *o = json_object();
	char ip[INET6_ADDRSTRLEN];

	if (!o)
		return NULL;
	json_object_set_new(o, "io", json_string("socket"));
	if (!inet_ntop(io->net.v6 ? AF_INET6 : AF_INET, io->net.server_ip, ip, sizeof(ip)))
		snprintf(ip, sizeof(ip), "?");
	json_object_set_new(o, "server", json_string(ip));
	json_object_set_new(o, "server_port", json_integer(io->net.server_port));
	if (io->net.have_peer) {
		if (!inet_ntop(io->net.v6 ? AF_INET6 : AF_INET, io->net.peer_server_ip, ip, sizeof(ip)))
			snprintf(ip, sizeof(ip), "?");
		json_object_set_new(o, "peer_server", json_string(ip));
		json_object_set_new(o, "peer_server_port", json_integer(io->net.peer_server_port));
	}
	if (io->net.nservers > 1) {
		json_t *a = json_array();

		for (uint32_t i = 0; a && i < io->net.nservers; i++) {
			char s[INET6_ADDRSTRLEN + 8];

			if (!inet_ntop(io->net.v6 ? AF_INET6 : AF_INET, io->net.servers_ip[i], ip,
				       sizeof(ip)))
				snprintf(ip, sizeof(ip), "?");
			snprintf(s, sizeof(s), io->net.v6 ? "[%s]:%u" : "%s:%u", ip,
				 io->net.servers_port[i]);
			json_array_append_new(a, json_string(s));
		}
		json_object_set_new(o, "servers", a ? a : json_null());
	}
	json_object_set_new(o, "sockets", json_integer(io->n));
	for (unsigned c = 0; c < SC__COUNT; c++)
		json_object_set_new(o, sc_names[c], json_integer((json_int_t)io->cnt[c]));
	return o;
}

int kl_burst_run_socket(struct kl_burst *b, const struct kl_burst_net *net,
			struct kl_burst_run *run, char *err, size_t errlen)
{
	struct sock_io *io = calloc(1, sizeof(*io));
	struct kl_burst_dgram dg[KL_BURST_TX_MAX];
	uint64_t now;
	int rc = -1;

	if (!io)
		return fail(err, errlen, "out of memory");
	io->net = *net;
	if (open_sockets(io, err, errlen))
		goto out;
	now = clock_ns();
	kl_burst_start(b, now);
	for (;;) {
		unsigned nrx, ntx;

		if (run->stop && *run->stop) {
			kl_burst_interrupt(b, now);
			kl_burst_tick(b, now, run->out);
			break;
		}
		now = clock_ns();
		nrx = rx_all(io, b, now);
		if (!kl_burst_tick(b, now, run->out))
			break;
		ntx = kl_burst_next(b, now, dg, KL_BURST_TX_MAX);
		if (ntx) {
			/* stamped before the send call: an answer can come back before it returns */
			uint64_t t_tx = clock_ns();

			tx_all(io, dg, ntx);
			kl_burst_sent(b, dg, ntx, t_tx);
		}
		if (!nrx && !ntx) {
			uint64_t ev = kl_burst_next_event(b), t = clock_ns(), wait;

			if (ev > t) {
				wait = ev - t < MAX_WAIT_NS ? ev - t : MAX_WAIT_NS;
				io->cnt[SC_WAITS]++;
				ppoll(io->pfd, io->n,
				      &(struct timespec){ (time_t)(wait / 1000000000ull),
							  (long)(wait % 1000000000ull) },
				      NULL);
			}
		}
	}
	run->end_ns = now;
	rc = 0;
out:
	run->io = io_json(io);
	for (uint32_t k = 0; k < io->n; k++)
		if (io->fd[k] >= 0)
			close(io->fd[k]);
	free(io->fd);
	free(io->pfd);
	free(io);
	return rc;
}

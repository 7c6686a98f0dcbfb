/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kernel-socket worker loop: the same engine over UDP sockets, for hosts without a DPDK port
 * and as the measured baseline. Each worker has its own SO_REUSEPORT socket per address, so the
 * kernel spreads sources over workers by their 4-tuple hash (a source stays on one worker, which
 * keeps its rate-limit bucket in one place). Batches in and out with recvmmsg/sendmmsg; when
 * every socket is idle the worker sleeps in poll() with its RCU reader offline.
 *
 * Server-to-server (PROTOCOL.md section 10): every datagram gets pkt.peer from its source address
 * and port (an IPv4 peer's datagrams reach a dual-stack socket v4-mapped); the engine's outbox is
 * sent from the socket bound to our port, so the peer sees it come from our configured address
 * and port, and its answer comes back to the server port (to whichever worker's socket the kernel
 * picks: the engine's state for requests in flight is shared).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kl_io.h"

#define RX_BUF 2048  /* a request is at most 512 bytes; a larger datagram is dropped oversized */
#define TX_BUF 1600

_Static_assert(KL_IO_BURST <= KL_ENGINE_BURST, "one receive burst must fit one engine burst");
_Static_assert(RX_BUF > KL_MIKEY_REQ_MAX, "a cut datagram must still parse as oversized");

struct sock_scratch {
	uint8_t rx[KL_IO_BURST][RX_BUF];
	uint8_t txb[KL_IO_BURST][TX_BUF];
	struct mmsghdr rmsg[KL_IO_BURST], smsg[KL_IO_BURST];
	struct iovec riov[KL_IO_BURST], siov[KL_IO_BURST];
	struct sockaddr_storage src[KL_IO_BURST];
	struct kl_pkt pkt[KL_IO_BURST];
	unsigned idx[KL_IO_BURST];
	uint8_t keys[KL_IO_BURST][16];
	uint8_t allow[KL_IO_BURST];
	struct pollfd pfd[KL_IO_MAX_SOCKETS];
	int fam[KL_IO_MAX_SOCKETS];	 /* each socket's family */
	uint8_t dual[KL_IO_MAX_SOCKETS]; /* an IPv6 socket that also takes IPv4 (v4-mapped) */
	/* the outbox: each peer's socket (-1: none of its family) and address as that socket
	 * needs it */
	int peer_fd[KL_PEERS_MAX];
	struct sockaddr_storage peer_sa[KL_PEERS_MAX];
	socklen_t peer_sl[KL_PEERS_MAX];
	struct mmsghdr omsg[KL_ENGINE_OUTBOX];
	struct iovec oiov[KL_ENGINE_OUTBOX];
};

/* The first of w's sockets that can send to a peer of this family, and the peer's address in
 * that socket's form (an IPv4 peer through a dual-stack socket: v4-mapped). */
static void peer_route(const struct kl_io_worker *w, struct sock_scratch *s, unsigned i)
{
	const struct kl_peer *p = &w->peers->p[i];
	struct sockaddr_storage *ss = &s->peer_sa[i];

	s->peer_fd[i] = -1;
	memset(ss, 0, sizeof(*ss));
	for (unsigned k = 0; k < w->nfd && s->peer_fd[i] < 0; k++) {
		if (p->family == 4 && s->fam[k] == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

			s4->sin_family = AF_INET;
			s4->sin_port = htons(p->port);
			memcpy(&s4->sin_addr, p->ip, 4);
			s->peer_sl[i] = sizeof(*s4);
		} else if (s->fam[k] == AF_INET6 && (p->family == 6 || s->dual[k])) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(p->port);
			if (p->family == 6) {
				memcpy(&s6->sin6_addr, p->ip, 16);
			} else {
				s6->sin6_addr.s6_addr[10] = 0xff;
				s6->sin6_addr.s6_addr[11] = 0xff;
				memcpy(s6->sin6_addr.s6_addr + 12, p->ip, 4);
			}
			s->peer_sl[i] = sizeof(*s6);
		} else {
			continue;
		}
		s->peer_fd[i] = w->fd[k];
	}
}

static int open_one(int family, const void *addr, uint16_t port, char *err, unsigned errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, buf = 4 << 20, fd, v6only = addr != NULL;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, addr, 4);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (addr)
			memcpy(&s6->sin6_addr, addr, 16);
		else
			s6->sin6_addr = in6addr_any;
		sl = sizeof(*s6);
	}
	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    (family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)))) {
		int e = errno;

		snprintf(err, errlen, "setsockopt: %s", strerror(e));
		close(fd);
		return -e;
	}
	/* best effort: a small default buffer only costs drops under bursts */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (bind(fd, (struct sockaddr *)&ss, sl)) {
		int e = errno;

		snprintf(err, errlen, "bind to UDP port %u: %s", port, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

int kl_io_socket_open(struct kl_io_worker *w, const struct kl_net_addrs *a, char *err,
		      unsigned errlen)
{
	struct sock_scratch *s;
	int fd;

	w->nfd = 0;
	s = aligned_alloc(64, (sizeof(*s) + 63) & ~(size_t)63);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	w->scratch = s;
	if (a->n4 + a->n6 == 0) {
		fd = open_one(AF_INET6, NULL, a->udp_port, err, errlen);
		if (fd < 0)
			goto fail;
		s->fam[w->nfd] = AF_INET6;
		s->dual[w->nfd] = 1;
		w->fd[w->nfd++] = fd;
	}
	for (unsigned i = 0; i < a->n4 && w->nfd < KL_IO_MAX_SOCKETS; i++) {
		fd = open_one(AF_INET, a->ip4[i], a->udp_port, err, errlen);
		if (fd < 0)
			goto fail;
		s->fam[w->nfd] = AF_INET;
		w->fd[w->nfd++] = fd;
	}
	for (unsigned i = 0; i < a->n6 && w->nfd < KL_IO_MAX_SOCKETS; i++) {
		fd = open_one(AF_INET6, a->ip6[i], a->udp_port, err, errlen);
		if (fd < 0)
			goto fail;
		s->fam[w->nfd] = AF_INET6;
		w->fd[w->nfd++] = fd;
	}
	return 0;
fail:
	kl_io_socket_close(w);
	return fd;
}

void kl_io_socket_close(struct kl_io_worker *w)
{
	for (unsigned i = 0; i < w->nfd; i++)
		close(w->fd[i]);
	w->nfd = 0;
	free(w->scratch);
	w->scratch = NULL;
}

static void src_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
	if (ss->ss_family == AF_INET) {
		kl_rl_key_v4((const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr, key);
	} else {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a))
			kl_rl_key_v4(a->s6_addr + 12, key);
		else
			kl_rl_key_v6(a->s6_addr, key);
	}
}

static inline uint64_t rdtsc(void)
{
	return __builtin_ia32_rdtsc();
}

/* 1 + the index of the configured peer that sent from ss, 0 for none. */
static uint8_t peer_of(const struct kl_peers *ps, const struct sockaddr_storage *ss)
{
	int i;

	if (!ps || !ps->n)
		return 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		i = kl_peers_find_addr(ps, 4, (const uint8_t *)&s4->sin_addr, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			i = kl_peers_find_addr(ps, 4, s6->sin6_addr.s6_addr + 12,
					       ntohs(s6->sin6_port));
		else
			i = kl_peers_find_addr(ps, 6, s6->sin6_addr.s6_addr, ntohs(s6->sin6_port));
	} else {
		return 0;
	}
	return (uint8_t)(i + 1);
}

/* sendmmsg all n, counting what the socket took in *sent; what it refused is lost. */
static unsigned send_all(int fd, struct mmsghdr *m, unsigned n, unsigned *sent)
{
	unsigned done = 0, lost = 0;

	while (done < n) {
		int k = sendmmsg(fd, m + done, n - done, MSG_DONTWAIT);

		if (k <= 0) {
			if (k < 0 && errno == EINTR)
				continue;
			/* send buffer full or an unreachable peer: this datagram is lost */
			lost++;
			done++;
			continue;
		}
		done += (unsigned)k;
		*sent += (unsigned)k;
	}
	return lost;
}

/*
 * The engine's server-to-server messages of its last serve or tick, each to its peer from the
 * socket of the peer's family (one sendmmsg per socket). A message that cannot go is counted;
 * the engine retransmits it like a lost one.
 */
static void send_outbox(struct kl_io_worker *w, struct sock_scratch *s)
{
	const struct kl_s2s_msg *m;
	unsigned n = kl_engine_outbox(w->engine, &m), sent = 0;

	if (!n)
		return;
	if (n > KL_ENGINE_OUTBOX)
		n = KL_ENGINE_OUTBOX;
	for (unsigned k = 0; k < w->nfd; k++) {
		unsigned nb = 0;

		for (unsigned i = 0; i < n; i++) {
			unsigned p = m[i].peer;

			if (p >= KL_PEERS_MAX || !w->peers || p >= w->peers->n ||
			    s->peer_fd[p] != w->fd[k])
				continue;
			s->oiov[nb].iov_base = (void *)m[i].buf;
			s->oiov[nb].iov_len = m[i].len;
			memset(&s->omsg[nb].msg_hdr, 0, sizeof(s->omsg[nb].msg_hdr));
			s->omsg[nb].msg_hdr.msg_iov = &s->oiov[nb];
			s->omsg[nb].msg_hdr.msg_iovlen = 1;
			s->omsg[nb].msg_hdr.msg_name = &s->peer_sa[p];
			s->omsg[nb].msg_hdr.msg_namelen = s->peer_sl[p];
			nb++;
		}
		if (nb)
			(void)send_all(w->fd[k], s->omsg, nb, &sent);
	}
	/* refused by the socket, or for no peer / a peer without a socket of its family */
	w->st.counter[KL_IO_CNT_S2S_TX] += sent;
	w->st.counter[KL_IO_CNT_TX_FRAMES] += sent;
	w->st.counter[KL_IO_CNT_S2S_TX_FAILED] += n - sent;
}

/* One recvmmsg batch from fd: serve it and send the answers. @return datagrams received. */
static int serve_fd(struct kl_io_worker *w, struct sock_scratch *s, int fd)
{
	unsigned k = 0, nsend = 0;
	uint64_t t_rx;
	int n;

	for (unsigned i = 0; i < KL_IO_BURST; i++) {
		s->riov[i].iov_base = s->rx[i];
		s->riov[i].iov_len = RX_BUF;
		memset(&s->rmsg[i].msg_hdr, 0, sizeof(s->rmsg[i].msg_hdr));
		s->rmsg[i].msg_hdr.msg_iov = &s->riov[i];
		s->rmsg[i].msg_hdr.msg_iovlen = 1;
		s->rmsg[i].msg_hdr.msg_name = &s->src[i];
		s->rmsg[i].msg_hdr.msg_namelen = sizeof(s->src[i]);
	}
	n = recvmmsg(fd, s->rmsg, KL_IO_BURST, MSG_DONTWAIT, NULL);
	if (n <= 0) {
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			w->st.counter[KL_IO_CNT_RX_ERRORS]++;
		return 0;
	}
	t_rx = rdtsc();
	w->st.counter[KL_IO_CNT_RX_FRAMES] += (unsigned)n;
	for (int i = 0; i < n; i++) {
		/* Cut at RX_BUF (> KL_MIKEY_REQ_MAX): the engine counts it oversized, as on DPDK. */
		if (s->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC)
			s->rmsg[i].msg_len = RX_BUF;
		s->idx[k] = (unsigned)i;
		src_key(&s->src[i], s->keys[k]);
		k++;
	}
	if (w->rl && k) {
		const struct kl_rl_stats *rs = kl_rl_stats(w->rl);
		uint64_t lim0 = rs->limited, ref0 = rs->refused;
		unsigned j = 0;

		if (kl_rl_take_bulk(w->rl, (const uint8_t(*)[16])s->keys, k, t_rx, s->allow) != k) {
			w->st.counter[KL_IO_CNT_RATE_LIMITED] += rs->limited - lim0;
			w->st.counter[KL_IO_CNT_RATE_REFUSED] += rs->refused - ref0;
			for (unsigned i = 0; i < k; i++)
				if (s->allow[i])
					s->idx[j++] = s->idx[i];
			k = j;
		}
	}
	if (!k)
		return n;
	for (unsigned i = 0; i < k; i++) {
		unsigned r = s->idx[i];

		s->pkt[i].in = s->rx[r];
		s->pkt[i].in_len = (uint16_t)s->rmsg[r].msg_len;
		s->pkt[i].out = s->txb[i];
		s->pkt[i].out_cap = TX_BUF;
		s->pkt[i].peer = peer_of(w->peers, &s->src[r]);
	}
	kl_engine_serve(w->engine, kl_io_clock_ntp(w->clock, t_rx), s->pkt, k);
	for (unsigned i = 0; i < k; i++) {
		unsigned r = s->idx[i];

		if (!s->pkt[i].out_len)
			continue;
		s->siov[nsend].iov_base = s->txb[i];
		s->siov[nsend].iov_len = s->pkt[i].out_len;
		memset(&s->smsg[nsend].msg_hdr, 0, sizeof(s->smsg[nsend].msg_hdr));
		s->smsg[nsend].msg_hdr.msg_iov = &s->siov[nsend];
		s->smsg[nsend].msg_hdr.msg_iovlen = 1;
		s->smsg[nsend].msg_hdr.msg_name = &s->src[r];
		s->smsg[nsend].msg_hdr.msg_namelen = s->rmsg[r].msg_hdr.msg_namelen;
		nsend++;
	}
	if (nsend) {
		unsigned sent = 0;

		kl_io_hist_add(&w->st, (rdtsc() - t_rx) * 1000000000ull / w->clock->hz, nsend);
		w->st.counter[KL_IO_CNT_TX_DROPPED] += send_all(fd, s->smsg, nsend, &sent);
		w->st.counter[KL_IO_CNT_TX_FRAMES] += sent;
	}
	send_outbox(w, s);
	return n;
}

int kl_io_socket_loop(void *arg)
{
	struct kl_io_worker *w = arg;
	struct sock_scratch *s = w->scratch;
	int idle_ms;

	if (!s || kl_table_reader_register(w->table, w->id))
		return -1;
	for (unsigned i = 0; i < w->nfd; i++) {
		s->pfd[i].fd = w->fd[i];
		s->pfd[i].events = POLLIN;
	}
	for (unsigned i = 0; i < KL_PEERS_MAX; i++)
		s->peer_fd[i] = -1;
	for (unsigned i = 0; w->peers && i < w->peers->n && i < KL_PEERS_MAX; i++)
		peer_route(w, s, i);
	/* with peers, requests to them may be in flight: their retransmissions (100 ms, doubling)
	 * must not wait for a long sleep */
	idle_ms = w->peers && w->peers->n ? KL_IO_S2S_POLL_MS : KL_IO_IDLE_POLL_MS;
	while (!__atomic_load_n(w->stop, __ATOMIC_RELAXED)) {
		int got = 0;

		kl_table_quiescent(w->table, w->id);
		for (unsigned i = 0; i < w->nfd; i++)
			got += serve_fd(w, s, w->fd[i]);
		kl_engine_tick(w->engine, kl_io_clock_ntp(w->clock, rdtsc()));
		send_outbox(w, s);
		if (!got) {
			/* Idle: let the key-table writer reclaim without waiting for us. */
			kl_table_reader_offline(w->table, w->id);
			(void)poll(s->pfd, w->nfd, idle_ms);
			kl_table_reader_online(w->table, w->id);
		}
	}
	kl_table_reader_unregister(w->table, w->id);
	return 0;
}

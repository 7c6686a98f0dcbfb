/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DPDK worker loop. One worker = one lcore = one RX/TX queue pair on every port. Per burst:
 * classify every frame (ARP/ICMP/NDP answered in place, the rest counted and freed), take a
 * token per MIKEY request from the source's bucket, give the survivors to the engine as one
 * burst with each answer built in its request's own mbuf (behind the request, which the engine
 * reads while it writes the answer; a fresh mbuf only when that does not fit), wrap the answers
 * in Ethernet/IP/UDP and queue them. No locks, allocation (mbufs come from the pool), logging or
 * syscalls.
 *
 * Server-to-server (PROTOCOL.md section 10): each datagram gets pkt.peer from its source address
 * and UDP port. The engine's outbox (after each burst and each kl_engine_tick, which runs every
 * loop turn that is KL_IO_TICK_US or more after the last: the engine's timers are 100 ms and
 * more, and an idle turn should not pay for a TSC-to-NTP division) becomes frames from our port's address of the peer's family and our UDP port to the
 * peer, sent to the peer's configured MAC or the one learned (by any worker, kl_io_neigh) from an
 * ARP packet, a neighbour solicitation/advertisement or the peer's own datagrams; with
 * none known yet, an ARP request / neighbour solicitation goes out on every port (at most one per
 * peer per KL_IO_NEIGH_ASK_MS) and the message counts as not sent: the engine retransmits it.
 */
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include "kl_io.h"

/* The engine serves at most KL_ENGINE_BURST per call and leaves the rest untouched. */
_Static_assert(KL_IO_BURST <= KL_ENGINE_BURST, "one receive burst must fit one engine burst");

struct burst_ctx {
	struct kl_pkt pkt[KL_IO_BURST];
	struct kl_net_info info[KL_IO_BURST];
	struct rte_mbuf *req[KL_IO_BURST];
	struct rte_mbuf *ans[KL_IO_BURST]; /* req[i] itself (answer in place) or a fresh mbuf */
	uint16_t ans_off[KL_IO_BURST];	   /* where the answer frame starts in ans[i]'s buffer */
	struct rte_mbuf *gone[2 * KL_IO_BURST]; /* freed together at the end of the burst */
	unsigned ngone;
	uint8_t keys[KL_IO_BURST][16];
	uint8_t allow[KL_IO_BURST];
	uint64_t ask_ticks; /* KL_IO_NEIGH_ASK_MS in TSC ticks */
};

static inline void tx(struct kl_io_worker *w, struct kl_io_dpdk_queue *q, struct rte_mbuf *m);

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Peer i's next hop is mac, seen on port index qi (unless configured). */
static void learn(struct kl_io_worker *w, unsigned i, unsigned qi, const uint8_t mac[6])
{
	uint64_t want = kl_io_neigh_word(mac, qi, 0);
	uint64_t cur = __atomic_load_n(&w->neigh->e[i], __ATOMIC_RELAXED);

	/* written only on a change: the shared line stays clean in every worker's cache */
	if (cur == want || (cur & KL_IO_NEIGH_STATIC))
		return;
	__atomic_store_n(&w->neigh->e[i], want, __ATOMIC_RELAXED);
	w->st.counter[KL_IO_CNT_NEIGH_LEARNED]++;
}

/* Every peer at address ip (family 4/6) is behind mac: learn it for them all. */
static void learn_ip(struct kl_io_worker *w, unsigned qi, uint8_t family, const uint8_t *ip,
		     const uint8_t mac[6])
{
	const struct kl_peers *ps = w->peers;

	for (unsigned i = 0; i < ps->n; i++)
		if (ps->p[i].family == family && !memcmp(ps->p[i].ip, ip, family == 4 ? 4 : 16))
			learn(w, i, qi, mac);
}

/* 1 + the peer that sent this datagram (source address and UDP port), 0 for none; the peer's
 * own datagram also tells its next hop (one scan of the peers per datagram). */
static uint8_t frame_peer(struct kl_io_worker *w, unsigned qi, const uint8_t *f,
			  const struct kl_net_info *in)
{
	uint8_t family = in->kind == KL_NET_UDP6 ? 6 : 4;
	const uint8_t *ip = f + in->l3_off + (family == 6 ? 8 : 12);
	int i = kl_peers_find_addr(w->peers, family, ip, be16(f + in->l4_off));

	if (i >= 0 && w->neigh)
		learn(w, (unsigned)i, qi, f + 6);
	return (uint8_t)(i + 1);
}

/* Ask every port with an address of peer i's family for its MAC (at most once per ask_ticks). */
static void solicit(struct kl_io_worker *w, struct burst_ctx *c, unsigned i, uint64_t tsc)
{
	const struct kl_peer *p = &w->peers->p[i];
	uint64_t last = __atomic_load_n(&w->neigh->asked[i], __ATOMIC_RELAXED);

	if (last && tsc - last < c->ask_ticks)
		return;
	__atomic_store_n(&w->neigh->asked[i], tsc, __ATOMIC_RELAXED);
	for (unsigned k = 0; k < w->nq; k++) {
		struct kl_io_dpdk_queue *q = &w->q[k];
		struct kl_net_flow fl = { .v6 = p->family == 6 };
		struct rte_mbuf *m;
		uint16_t len;

		if (!(fl.v6 ? q->addrs->n6 : q->addrs->n4))
			continue;
		m = rte_pktmbuf_alloc(q->pool);
		if (!m) {
			w->st.counter[KL_IO_CNT_NO_MBUF]++;
			continue;
		}
		memcpy(fl.src_mac, q->addrs->mac, 6);
		memcpy(fl.src_ip, fl.v6 ? q->addrs->ip6[0] : q->addrs->ip4[0], fl.v6 ? 16 : 4);
		memcpy(fl.dst_ip, p->ip, fl.v6 ? 16 : 4);
		len = kl_net_build_solicit(&fl, rte_pktmbuf_mtod(m, uint8_t *),
					   rte_pktmbuf_tailroom(m));
		if (!len) {
			rte_pktmbuf_free(m);
			continue;
		}
		m->data_len = len;
		m->pkt_len = len;
		tx(w, q, m);
	}
}

/* One outbox message as a frame to its peer, or counted as not sent. */
static void send_one(struct kl_io_worker *w, struct burst_ctx *c, const struct kl_s2s_msg *msg,
		     uint64_t tsc)
{
	const struct kl_peer *p;
	struct kl_io_dpdk_queue *q;
	struct kl_net_flow fl;
	struct rte_mbuf *m;
	uint64_t word;
	uint16_t hr, len;
	unsigned qi;

	if (!w->peers || msg->peer >= w->peers->n || !w->neigh || !w->nq) {
		w->st.counter[KL_IO_CNT_S2S_TX_FAILED]++;
		return;
	}
	p = &w->peers->p[msg->peer];
	word = __atomic_load_n(&w->neigh->e[msg->peer], __ATOMIC_RELAXED);
	if (!(word & KL_IO_NEIGH_VALID)) {
		w->st.counter[KL_IO_CNT_S2S_NO_NEIGH]++;
		solicit(w, c, msg->peer, tsc);
		return;
	}
	qi = (unsigned)(word >> 48) & 0xff;
	q = &w->q[qi < w->nq ? qi : 0];
	fl.v6 = p->family == 6;
	if (!(fl.v6 ? q->addrs->n6 : q->addrs->n4)) {
		w->st.counter[KL_IO_CNT_S2S_TX_FAILED]++;
		return;
	}
	m = rte_pktmbuf_alloc(q->pool);
	if (!m) {
		w->st.counter[KL_IO_CNT_NO_MBUF]++;
		w->st.counter[KL_IO_CNT_S2S_TX_FAILED]++;
		return;
	}
	for (unsigned k = 0; k < 6; k++)
		fl.dst_mac[k] = (uint8_t)(word >> (40 - 8 * k));
	memcpy(fl.src_mac, q->addrs->mac, 6);
	memcpy(fl.src_ip, fl.v6 ? q->addrs->ip6[0] : q->addrs->ip4[0], fl.v6 ? 16 : 4);
	memcpy(fl.dst_ip, p->ip, fl.v6 ? 16 : 4);
	fl.sport = q->addrs->udp_port;
	fl.dport = p->port;
	hr = kl_net_udp_headroom(fl.v6);
	len = 0;
	if ((uint32_t)hr + msg->len <= rte_pktmbuf_tailroom(m)) {
		memcpy(rte_pktmbuf_mtod(m, uint8_t *) + hr, msg->buf, msg->len);
		len = kl_net_build_udp(&fl, rte_pktmbuf_mtod(m, uint8_t *),
				       rte_pktmbuf_tailroom(m), msg->len);
	}
	if (!len) {
		rte_pktmbuf_free(m);
		w->st.counter[KL_IO_CNT_S2S_TX_FAILED]++;
		return;
	}
	m->data_len = len;
	m->pkt_len = len;
	tx(w, q, m);
	w->st.counter[KL_IO_CNT_S2S_TX]++;
}

/* The engine's server-to-server messages of its last serve or tick. */
static void send_outbox(struct kl_io_worker *w, struct burst_ctx *c, uint64_t tsc)
{
	const struct kl_s2s_msg *m;
	unsigned n = kl_engine_outbox(w->engine, &m);

	for (unsigned i = 0; i < n && i < KL_ENGINE_OUTBOX; i++)
		send_one(w, c, &m[i], tsc);
}

static void count_reply(struct kl_io_stats *st, uint8_t kind)
{
	switch (kind) {
	case KL_NET_ARP:
		st->counter[KL_IO_CNT_ARP_REPLIES]++;
		break;
	case KL_NET_NDP:
		st->counter[KL_IO_CNT_NDP_ADVERTS]++;
		break;
	case KL_NET_ICMP4_ECHO:
		st->counter[KL_IO_CNT_ICMP4_ECHO]++;
		break;
	case KL_NET_ICMP6_ECHO:
		st->counter[KL_IO_CNT_ICMP6_ECHO]++;
		break;
	default:
		break;
	}
}

static void tx_error_cb(struct rte_mbuf **unsent, uint16_t count, void *userdata)
{
	struct kl_io_stats *st = userdata;

	st->counter[KL_IO_CNT_TX_DROPPED] += count;
	st->counter[KL_IO_CNT_TX_FRAMES] -= count;
	rte_pktmbuf_free_bulk(unsent, count);
}

static inline void tx(struct kl_io_worker *w, struct kl_io_dpdk_queue *q, struct rte_mbuf *m)
{
	w->st.counter[KL_IO_CNT_TX_FRAMES]++;
	rte_eth_tx_buffer(q->port_id, q->queue_id, q->txb, m);
}

/* Rate-limit the k MIKEY requests in c (compacting them) and count what the limiter refused. */
static unsigned rate_limit(struct kl_io_worker *w, struct burst_ctx *c, unsigned k, uint64_t tsc)
{
	const struct kl_rl_stats *rs = kl_rl_stats(w->rl);
	uint64_t lim0 = rs->limited, ref0 = rs->refused;
	unsigned j = 0;

	for (unsigned i = 0; i < k; i++)
		memcpy(c->keys[i], c->info[i].src_key, 16);
	if (kl_rl_take_bulk(w->rl, (const uint8_t(*)[16])c->keys, k, tsc, c->allow) == k)
		return k;
	w->st.counter[KL_IO_CNT_RATE_LIMITED] += rs->limited - lim0;
	w->st.counter[KL_IO_CNT_RATE_REFUSED] += rs->refused - ref0;
	for (unsigned i = 0; i < k; i++) {
		if (!c->allow[i]) {
			c->gone[c->ngone++] = c->req[i];
			continue;
		}
		c->req[j] = c->req[i];
		c->info[j] = c->info[i];
		j++;
	}
	return j;
}

static void serve_burst(struct kl_io_worker *w, unsigned qi, struct burst_ctx *c,
			struct rte_mbuf **rx, unsigned n, uint64_t t_rx)
{
	struct kl_io_dpdk_queue *q = &w->q[qi];
	int s2s = w->peers && w->peers->n;
	unsigned k = 0, answered = 0;
	uint64_t now;

	c->ngone = 0;
	w->st.counter[KL_IO_CNT_RX_FRAMES] += n;
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = rx[i];
		uint16_t len = rte_pktmbuf_data_len(m);
		enum kl_net_verdict v;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(rx[i + 1], void *));
		if (w->neigh) {
			/* before classifying: an ARP request for us is answered in place */
			struct kl_net_neigh nb;

			if (kl_net_neigh_hint(rte_pktmbuf_mtod(m, uint8_t *), len, &nb))
				learn_ip(w, qi, nb.v6 ? 6 : 4, nb.ip, nb.mac);
		}
		v = kl_net_classify_cap(rte_pktmbuf_mtod(m, uint8_t *), &len,
					(uint16_t)RTE_MIN(65535u, (unsigned)len + rte_pktmbuf_tailroom(m)),
					q->addrs, &c->info[k]);
		if (v == KL_NET_VERDICT_MIKEY) {
			c->req[k++] = m;
		} else if (v == KL_NET_VERDICT_REPLY) {
			/* Answered in place in the first segment (growing at most into its tailroom);
			 * further segments (a jumbo frame's trailer) are not part of the answer. */
			if (unlikely(m->nb_segs != 1)) {
				rte_pktmbuf_free(m->next);
				m->next = NULL;
				m->nb_segs = 1;
			}
			m->data_len = len;
			m->pkt_len = len;
			count_reply(&w->st, c->info[k].kind);
			tx(w, q, m);
		} else {
			w->st.net_drop[c->info[k].drop < KL_NET_DROP__COUNT ? c->info[k].drop : 0]++;
			c->gone[c->ngone++] = m;
		}
	}
	if (k && w->rl)
		k = rate_limit(w, c, k, t_rx);
	if (!k)
		goto out;
	for (unsigned i = 0; i < k; i++) {
		struct rte_mbuf *m = c->req[i], *a = m;
		uint16_t hr = kl_net_reply_headroom(&c->info[i]);
		/* In place: the answer frame starts on the first cache line after the request frame
		 * (the engine reads the request while it writes the answer, and the headers are
		 * written from the request's), and runs to the end of the buffer. A chained, shared
		 * or external buffer, or one without room for the engine's bound, gets a fresh mbuf. */
		uint32_t start = RTE_ALIGN_CEIL((uint32_t)m->data_off + rte_pktmbuf_data_len(m),
						RTE_CACHE_LINE_SIZE);
		uint32_t need = (uint32_t)hr + 3u * c->info[i].payload_len; /* the engine's bound */

		if (m->nb_segs != 1 || !RTE_MBUF_DIRECT(m) || rte_mbuf_refcnt_read(m) != 1 ||
		    start + need > m->buf_len) {
			a = rte_pktmbuf_alloc(q->pool);
			if (!a) {
				w->st.counter[KL_IO_CNT_NO_MBUF]++;
				a = m; /* no room for an answer: out_cap 0, the engine drops it */
				start = m->buf_len;
			} else {
				start = a->data_off;
			}
		}
		c->ans[i] = a;
		c->ans_off[i] = (uint16_t)start;
		c->pkt[i].in = rte_pktmbuf_mtod(m, uint8_t *) + c->info[i].payload_off;
		c->pkt[i].in_len = c->info[i].payload_len;
		c->pkt[i].out_cap = start + hr < a->buf_len ? (uint16_t)(a->buf_len - start - hr) : 0;
		c->pkt[i].out = c->pkt[i].out_cap ? (uint8_t *)a->buf_addr + start + hr : NULL;
		c->pkt[i].peer = s2s ? frame_peer(w, qi, rte_pktmbuf_mtod(m, uint8_t *), &c->info[i])
				     : 0;
	}
	now = kl_io_clock_ntp(w->clock, t_rx);
	kl_engine_serve(w->engine, now, c->pkt, k);
	for (unsigned i = 0; i < k; i++) {
		struct rte_mbuf *m = c->req[i], *a = c->ans[i];
		uint16_t flen = 0;

		if (c->pkt[i].out_len)
			flen = kl_net_finish_udp_reply(rte_pktmbuf_mtod(m, uint8_t *), &c->info[i],
						       (uint8_t *)a->buf_addr + c->ans_off[i],
						       (uint16_t)(a->buf_len - c->ans_off[i]),
						       c->pkt[i].out_len);
		if (a != m)
			c->gone[c->ngone++] = m; /* the request's own mbuf was not needed */
		if (!flen) {
			c->gone[c->ngone++] = a; /* dropped by the engine: no answer */
			continue;
		}
		a->data_off = c->ans_off[i];
		a->data_len = flen;
		a->pkt_len = flen;
		a->ol_flags = 0;
		tx(w, q, a);
		answered++;
	}
	if (answered)
		kl_io_hist_add(&w->st, (rte_rdtsc() - t_rx) * 1000000000ull / w->clock->hz, answered);
	send_outbox(w, c, t_rx);
out:
	if (c->ngone)
		rte_pktmbuf_free_bulk(c->gone, c->ngone);
}

int kl_io_dpdk_loop(void *arg)
{
	struct kl_io_worker *w = arg;
	struct rte_mbuf *rx[KL_IO_BURST];
	struct burst_ctx c;
	uint64_t drain = (rte_get_tsc_hz() + 1000000 - 1) / 1000000 * KL_IO_DRAIN_US, last;
	uint64_t tick = (rte_get_tsc_hz() + 1000000 - 1) / 1000000 * KL_IO_TICK_US, last_tick = 0;

	memset(&c, 0, sizeof(c));
	c.ask_ticks = rte_get_tsc_hz() / 1000 * KL_IO_NEIGH_ASK_MS;
	for (unsigned i = 0; i < w->nq; i++)
		rte_eth_tx_buffer_set_err_callback(w->q[i].txb, tx_error_cb, &w->st);
	if (kl_table_reader_register(w->table, w->id))
		return -1;
	last = rte_rdtsc();
	while (!__atomic_load_n(w->stop, __ATOMIC_RELAXED)) {
		uint64_t t;

		kl_table_quiescent(w->table, w->id);
		for (unsigned i = 0; i < w->nq; i++) {
			struct kl_io_dpdk_queue *q = &w->q[i];
			uint16_t n = rte_eth_rx_burst(q->port_id, q->queue_id, rx, KL_IO_BURST);

			if (n) {
				serve_burst(w, i, &c, rx, n, rte_rdtsc());
				/* A short burst means no queue to amortise the send over. */
				if (n < KL_IO_BURST)
					rte_eth_tx_buffer_flush(q->port_id, q->queue_id, q->txb);
			}
		}
		t = rte_rdtsc();
		/* retransmissions due now (section 10), queued behind this turn's answers */
		if (t - last_tick >= tick) {
			kl_engine_tick(w->engine, kl_io_clock_ntp(w->clock, t));
			send_outbox(w, &c, t);
			last_tick = t;
		}
		if (t - last >= drain) {
			for (unsigned i = 0; i < w->nq; i++)
				rte_eth_tx_buffer_flush(w->q[i].port_id, w->q[i].queue_id, w->q[i].txb);
			last = t;
		}
	}
	/* stop: nothing more is taken from the queues; what was answered goes out */
	for (unsigned i = 0; i < w->nq; i++)
		rte_eth_tx_buffer_flush(w->q[i].port_id, w->q[i].queue_id, w->q[i].txb);
	kl_table_reader_unregister(w->table, w->id);
	return 0;
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DPDK worker loop. One worker = one lcore = one RX/TX queue pair on every port. Per burst:
 * classify every frame (ARP/ICMP/NDP answered in place, the rest counted and freed), take a
 * token per MIKEY request from the source's bucket, give the survivors to the engine as one
 * burst with answers built into fresh mbufs, wrap the answers in Ethernet/IP/UDP and queue them.
 * No locks, allocation (mbufs come from the pool), logging or syscalls.
 */
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include "kl_io.h"

struct burst_ctx {
	struct kl_pkt pkt[KL_IO_BURST];
	struct kl_net_info info[KL_IO_BURST];
	struct rte_mbuf *req[KL_IO_BURST];
	struct rte_mbuf *ans[KL_IO_BURST];
	struct rte_mbuf *gone[2 * KL_IO_BURST]; /* freed together at the end of the burst */
	unsigned ngone;
	uint8_t keys[KL_IO_BURST][16];
	uint8_t allow[KL_IO_BURST];
};

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

static void serve_burst(struct kl_io_worker *w, struct kl_io_dpdk_queue *q, struct burst_ctx *c,
			struct rte_mbuf **rx, unsigned n, uint64_t t_rx)
{
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
		v = kl_net_classify_cap(rte_pktmbuf_mtod(m, uint8_t *), &len,
					(uint16_t)RTE_MIN(65535u, (unsigned)len + rte_pktmbuf_tailroom(m)),
					q->addrs, &c->info[k]);
		if (v == KL_NET_VERDICT_MIKEY) {
			c->req[k++] = m;
		} else if (v == KL_NET_VERDICT_REPLY) {
			/* single-segment answer in place: the frame never grows */
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
	if (rte_pktmbuf_alloc_bulk(q->pool, c->ans, k)) {
		w->st.counter[KL_IO_CNT_NO_MBUF] += k;
		rte_pktmbuf_free_bulk(c->req, k);
		goto out;
	}
	for (unsigned i = 0; i < k; i++) {
		uint16_t hr = kl_net_reply_headroom(&c->info[i]);
		uint16_t room = rte_pktmbuf_tailroom(c->ans[i]);

		c->pkt[i].in = rte_pktmbuf_mtod(c->req[i], uint8_t *) + c->info[i].payload_off;
		c->pkt[i].in_len = c->info[i].payload_len;
		c->pkt[i].out = rte_pktmbuf_mtod(c->ans[i], uint8_t *) + hr;
		c->pkt[i].out_cap = room > hr ? room - hr : 0;
	}
	now = kl_io_clock_ntp(w->clock, t_rx);
	kl_engine_serve(w->engine, now, c->pkt, k);
	for (unsigned i = 0; i < k; i++) {
		struct rte_mbuf *a = c->ans[i];
		uint16_t flen = 0;

		if (c->pkt[i].out_len)
			flen = kl_net_finish_udp_reply(rte_pktmbuf_mtod(c->req[i], uint8_t *),
						       &c->info[i], rte_pktmbuf_mtod(a, uint8_t *),
						       rte_pktmbuf_tailroom(a), c->pkt[i].out_len);
		if (!flen) {
			c->gone[c->ngone++] = a; /* dropped by the engine: no answer */
			continue;
		}
		a->data_len = flen;
		a->pkt_len = flen;
		tx(w, q, a);
		answered++;
	}
	rte_pktmbuf_free_bulk(c->req, k);
	if (answered)
		kl_io_hist_add(&w->st, (rte_rdtsc() - t_rx) * 1000000000ull / w->clock->hz, answered);
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

	memset(&c, 0, sizeof(c));
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
				serve_burst(w, q, &c, rx, n, rte_rdtsc());
				/* A short burst means no queue to amortise the send over. */
				if (n < KL_IO_BURST)
					rte_eth_tx_buffer_flush(q->port_id, q->queue_id, q->txb);
			}
		}
		t = rte_rdtsc();
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

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A scripted engine for the I/O loops' tests (test_io_socket.c, test_io_dpdk.c): it defines
 * kl_engine_serve/_outbox/_tick and the key table's reader calls, so a test that includes it
 * (once) links the real I/O loop without the real engine. serve records every datagram's
 * pkt.peer and answers none; a datagram "S<i><j>..." puts one outbox message "to<i>" for peer
 * index i (and j...; '-' for none); fake.tick_msg >= 0 makes the next tick put "tick<i>".
 */
#ifndef KL_FAKE_ENGINE_H
#define KL_FAKE_ENGINE_H

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kl_engine.h"
#include "kl_table.h"

struct kl_worker {
	struct kl_s2s_msg out[KL_ENGINE_OUTBOX];
	unsigned nout;
	/* what serve saw, in order */
	uint8_t seen_peer[256];
	unsigned nseen;
	uint64_t ticks;
	int tick_msg; /* >= 0: the next tick puts one message to this peer index */
};

static struct kl_worker fake;
static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER; /* test thread vs loop thread */

/* A datagram "S<i><j>..." asks for one outbox message to peer index i and one to j ('-': none);
 * each message's payload is "to<i>". Nothing is answered. */
unsigned kl_engine_serve(struct kl_worker *w, uint64_t now, struct kl_pkt *pkts, unsigned n)
{
	(void)now;
	pthread_mutex_lock(&fake_mu);
	w->nout = 0;
	for (unsigned i = 0; i < n; i++) {
		pkts[i].out_len = 0;
		if (w->nseen < sizeof(w->seen_peer))
			w->seen_peer[w->nseen++] = pkts[i].peer;
		if (pkts[i].in_len < 1 || pkts[i].in[0] != 'S')
			continue;
		for (unsigned k = 1; k < pkts[i].in_len && w->nout < KL_ENGINE_OUTBOX; k++) {
			struct kl_s2s_msg *m = &w->out[w->nout];

			if (pkts[i].in[k] == '-')
				continue;
			m->peer = (uint16_t)(pkts[i].in[k] - '0');
			m->len = (uint16_t)snprintf((char *)m->buf, sizeof(m->buf), "to%u", m->peer);
			w->nout++;
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return 0;
}

unsigned kl_engine_outbox(struct kl_worker *w, const struct kl_s2s_msg **msgs)
{
	*msgs = w->out;
	return w->nout;
}

void kl_engine_tick(struct kl_worker *w, uint64_t now)
{
	(void)now;
	pthread_mutex_lock(&fake_mu);
	w->ticks++;
	w->nout = 0;
	if (w->tick_msg >= 0) {
		w->out[0].peer = (uint16_t)w->tick_msg;
		w->out[0].len = (uint16_t)snprintf((char *)w->out[0].buf, sizeof(w->out[0].buf),
						   "tick%d", w->tick_msg);
		w->nout = 1;
		w->tick_msg = -1;
	}
	pthread_mutex_unlock(&fake_mu);
}

/* the key table's reader side: nothing to read here */
int kl_table_reader_register(struct kl_table *t, unsigned reader)
{
	(void)t;
	(void)reader;
	return 0;
}
#define NOOP_READER_CALL(name)                                                                 \
	void name(struct kl_table *t, unsigned reader)                                          \
	{                                                                                       \
		(void)t;                                                                        \
		(void)reader;                                                                   \
	}
NOOP_READER_CALL(kl_table_quiescent)
NOOP_READER_CALL(kl_table_reader_offline)
NOOP_READER_CALL(kl_table_reader_online)
NOOP_READER_CALL(kl_table_reader_unregister)

/* The peers serve recorded, in order, once n have been seen (or after 2 s). */
static inline unsigned fake_wait_seen(unsigned n, uint8_t *out)
{
	unsigned got = 0;

	for (int i = 0; i < 200; i++) {
		pthread_mutex_lock(&fake_mu);
		got = fake.nseen;
		memcpy(out, fake.seen_peer, got);
		pthread_mutex_unlock(&fake_mu);
		if (got >= n)
			break;
		usleep(10000);
	}
	return got;
}

/* The next tick puts one message to peer index i. */
static inline void fake_tick_msg(int i)
{
	pthread_mutex_lock(&fake_mu);
	fake.tick_msg = i;
	pthread_mutex_unlock(&fake_mu);
}

static inline uint64_t fake_ticks(void)
{
	uint64_t t;

	pthread_mutex_lock(&fake_mu);
	t = fake.ticks;
	pthread_mutex_unlock(&fake_mu);
	return t;
}

#endif

/* SPDX-License-Identifier: BSD-3-Clause */
/* The configured peer servers (kl_peer.h). */
#include <string.h>

#include "kl_peer.h"

static const char *const cnt_names[] = {
#define KL_X(e, n, d) n,
	KL_PEER_COUNTER_LIST(KL_X)
#undef KL_X
};
static const char *const cnt_descs[] = {
#define KL_X(e, n, d) d,
	KL_PEER_COUNTER_LIST(KL_X)
#undef KL_X
};

const char *kl_peer_counter_name(unsigned c)
{
	return c < KL_PEER_CNT__COUNT ? cnt_names[c] : "unknown";
}

const char *kl_peer_counter_desc(unsigned c)
{
	return c < KL_PEER_CNT__COUNT ? cnt_descs[c] : "unknown";
}

int kl_peers_find_id(const struct kl_peers *ps, const uint8_t *id, uint16_t len)
{
	if (!ps || !id)
		return -1;
	for (unsigned i = 0; i < ps->n; i++)
		if (ps->p[i].id_len == len && !memcmp(ps->p[i].id, id, len))
			return (int)i;
	return -1;
}

int kl_peers_find_addr(const struct kl_peers *ps, uint8_t family, const uint8_t *ip,
		       uint16_t port)
{
	if (!ps || !ip)
		return -1;
	for (unsigned i = 0; i < ps->n; i++) {
		const struct kl_peer *p = &ps->p[i];

		if (p->family == family && p->port == port &&
		    !memcmp(p->ip, ip, family == 4 ? 4 : 16))
			return (int)i;
	}
	return -1;
}

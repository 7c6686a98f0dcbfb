/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "kl_registry.h"

void kl_services_stop(struct kl_services *s)
{
	while (s->started) {
		unsigned i = --s->started;

		if (s->svc[i] && s->ops[i]->stop)
			s->ops[i]->stop(s->svc[i]);
		s->svc[i] = NULL;
	}
}

int kl_services_start(struct kl_services *s, const struct kl_service_ops *const *ops, unsigned n,
		      void *ctx, int *status)
{
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	s->n = n < KL_SERVICES_MAX ? n : KL_SERVICES_MAX;
	for (unsigned i = 0; i < s->n; i++) {
		s->pfd[i] = -1;
		if (ops[i]->wanted && !ops[i]->wanted(ctx)) {
			s->started = i + 1;
			continue;
		}
		s->svc[i] = ops[i]->start(ctx, status);
		if (!s->svc[i]) {
			kl_services_stop(s);
			return -1;
		}
		s->started = i + 1;
	}
	return 0;
}

unsigned kl_services_pollfds(struct kl_services *s, struct pollfd *pf, unsigned max)
{
	unsigned k = 0;

	for (unsigned i = 0; i < s->started; i++) {
		int fd = s->svc[i] && s->ops[i]->fd ? s->ops[i]->fd(s->svc[i]) : -1;

		s->pfd[i] = -1;
		if (fd < 0 || k == max)
			continue;
		pf[k].fd = fd;
		pf[k].events = POLLIN;
		pf[k].revents = 0;
		s->pfd[i] = (int)k++;
	}
	for (unsigned i = 0; i < s->started; i++) {
		unsigned room = max - k < KL_SERVICES_MAX_FDS ? max - k : KL_SERVICES_MAX_FDS;
		int n;

		if (!s->svc[i] || !s->ops[i]->pollfds || !room)
			continue;
		n = s->ops[i]->pollfds(s->svc[i], pf + k, (int)room);
		k += n > 0 ? (unsigned)n : 0;
	}
	return k;
}

int kl_services_timeout(struct kl_services *s, int max_ms)
{
	int t = max_ms;

	for (unsigned i = 0; i < s->started; i++) {
		int v;

		if (!s->svc[i] || !s->ops[i]->timeout_ms)
			continue;
		v = s->ops[i]->timeout_ms(s->svc[i]);
		if (v >= 0 && v < t)
			t = v;
	}
	return t;
}

void kl_services_poll(struct kl_services *s, const struct pollfd *pf)
{
	for (unsigned i = 0; i < s->started; i++)
		if (s->svc[i] && s->ops[i]->poll)
			s->ops[i]->poll(s->svc[i], s->pfd[i] >= 0 ? pf[s->pfd[i]].revents : 0);
}

void kl_services_tick(struct kl_services *s)
{
	for (unsigned i = 0; i < s->started; i++)
		if (s->svc[i] && s->ops[i]->tick)
			s->ops[i]->tick(s->svc[i]);
}

void *kl_services_get(const struct kl_services *s, const char *name)
{
	for (unsigned i = 0; i < s->started; i++)
		if (!strcmp(s->ops[i]->name, name))
			return s->svc[i];
	return NULL;
}

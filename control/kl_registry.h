/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A service of keylined (admin socket, /metrics, the Diameter feed, MSK rotation, ...) is one entry
 * of a registry (DESIGN.md "Shape of the code", STYLE.md 13): the control thread starts the entries
 * in order, polls every fd they hand it, ticks them once a second and stops them in reverse order.
 * The loop knows no service by name. keylined's own entries are in kl_services.c.
 * Everything here runs on the control thread.
 */
#ifndef KL_REGISTRY_H
#define KL_REGISTRY_H

#include <poll.h>

#define KL_SERVICES_MAX 16

struct kl_service_ops {
	const char *name;
	/* 0: not configured, not started (NULL: always started). */
	int (*wanted)(void *ctx);
	/* The service's state, or NULL after logging one message and setting *status
	 * (KL_EXIT_CONFIG or KL_EXIT_FAIL). ctx is what kl_services_start was given. */
	void *(*start)(void *ctx, int *status);
	/* An fd to poll for POLLIN, or -1 (NULL: none). */
	int (*fd)(void *svc);
	/* Every pass of the control loop; revents: its fd's (0 when it has none or nothing came). */
	void (*poll)(void *svc, short revents);
	/* About once a second. */
	void (*tick)(void *svc);
	/* Undo start (also after a later service failed to start). */
	void (*stop)(void *svc);
	/* Several fds (with their events), for a service whose sockets come and go (an HTTP
	 * client's): up to max written, returns how many (NULL: none). Its poll is then called on
	 * every pass (revents: 0; the service asks its own sockets). */
	int (*pollfds)(void *svc, struct pollfd *pf, int max);
	/* How long the control loop may sleep before the service's poll is due (ms, -1: no
	 * limit; NULL: none). */
	int (*timeout_ms)(void *svc);
};

/* Most fds one service's pollfds may add. */
#define KL_SERVICES_MAX_FDS 8
/* The pollfd array a control loop needs. */
#define KL_SERVICES_MAX_POLLFDS (KL_SERVICES_MAX + KL_SERVICES_MAX_FDS * 2)

struct kl_services {
	const struct kl_service_ops *const *ops;
	unsigned n;
	unsigned started;		 /* ops[0..started) ran start: their svc is theirs */
	void *svc[KL_SERVICES_MAX];	 /* NULL: not wanted */
	int pfd[KL_SERVICES_MAX];	 /* index in the last kl_services_pollfds, or -1 */
};

/**
 * Start ops[0..n) in order (n <= KL_SERVICES_MAX), skipping the unwanted. If one fails, those
 * already started are stopped in reverse order. @return 0, or -1 (*status set by the failed one).
 */
int kl_services_start(struct kl_services *s, const struct kl_service_ops *const *ops, unsigned n,
		      void *ctx, int *status);

/** Fill pf with the started services' fds (POLLIN, and those of pollfds). @return how many. */
unsigned kl_services_pollfds(struct kl_services *s, struct pollfd *pf, unsigned max);

/** The shortest of the started services' timeout_ms, at most max_ms. */
int kl_services_timeout(struct kl_services *s, int max_ms);

/** After poll(pf, ...): call every started service's poll with its fd's revents. */
void kl_services_poll(struct kl_services *s, const struct pollfd *pf);

/** Call every started service's tick. */
void kl_services_tick(struct kl_services *s);

/** A started service's state by name, or NULL (not wanted, not started, unknown). */
void *kl_services_get(const struct kl_services *s, const char *name);

/** Stop the started services in reverse order; a second call does nothing. */
void kl_services_stop(struct kl_services *s);

#endif

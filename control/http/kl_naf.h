/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NAF Key Center (PROTOCOL.md section 11): HTTPS with mutual TLS (libmicrohttpd + GnuTLS,
 * TLS 1.3 or TLS 1.2 with ECDHE only) for external devices that need the Ks_local_MT their MT
 * derives. keylined runs it as one entry of its service registry (kl_services.c), after the
 * Diameter feed whose freeDiameter stack carries the Zn client (kl_zn.h).
 *
 *   POST /v1/ks-local-mt  {"b_tid", "device_id", "naf_id"?}   device certificate (device CA)
 *     -> 200 {"b_tid","naf_id","device_id","ks_local_mt","expires","lifetime_s"}, no-store
 *   DELETE /v1/ks-local-mt/{b_tid}/{device_id} (percent-encoded)  operator certificate
 *     -> 200 {"b_tid","device_id","invalidated":true}
 *   errors: JSON {"error","detail"}, never a key: 400 malformed, 403 certificate / Device_ID /
 *   blocklist / invalidated key / BSF refusal, 404 B-TID unknown or its Ks expired, 404/405 other
 *   paths and methods, 413 body too large, 429 rate limited (per client certificate), 503 BSF
 *   unreachable or its answer unusable, the store not answering.
 *
 * Threads: MHD's pool (threads, pinned to the configured CPUs or to every CPU but the workers'
 * lcores: the creating thread's affinity is set to that set around MHD_start_daemon, as threads
 * inherit it, then restored) serves the requests; the Zn client's threads are freeDiameter's,
 * which inherit the control thread's set, from which kl_daemon took the workers' CPUs before
 * any service started; a watchdog thread closes connections whose request is not
 * complete connection_timeout_s after the connection opened or its previous answer. The
 * issued keys' writes go to the control thread through kl_naf_keys (fd / poll / tick below).
 * The data plane is never touched: no key table access.
 */
#ifndef KL_NAF_H
#define KL_NAF_H

#include <stddef.h>
#include <stdint.h>

#include "kl_config.h"

struct kl_diameter;
struct kl_store;
struct kl_naf_stats;
struct kl_naf_keys;
struct kl_naf_keys_stats;
struct kl_zn_stats;

struct kl_naf_params {
	const struct kl_config_naf *cfg;
	struct kl_diameter *dia;     /* keylined's running Diameter stack (the Zn client's) */
	struct kl_store *store;	     /* issued keys kept durably; NULL: memory only */
	struct kl_naf_stats *stats;  /* counters (/metrics); NULL: not counted */
	const uint64_t *worker_cpus; /* KL_CONFIG_MAX_CPUS bits: the workers' CPUs; NULL: none */
	/* levels as enum kl_config_log_level; any thread */
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
};

struct kl_naf;

/**
 * Read the certificate files, open the issued keys, start the Zn client and the HTTPS server
 * (listening on return). @return the Key Center, or NULL with err (one line) and *config set
 * when the cause is the configuration (a file that cannot be read or used, an address or port
 * that cannot be bound, CPUs that are the workers').
 */
struct kl_naf *kl_naf_start(const struct kl_naf_params *p, int *config, char *err,
			    size_t errlen);

/** The issued keys' fd (control thread polls it), its poll and the once-a-second tick. */
int kl_naf_fd(struct kl_naf *n);
void kl_naf_poll(struct kl_naf *n);
void kl_naf_tick(struct kl_naf *n);

/** The issued keys (admin commands, control thread). */
struct kl_naf_keys *kl_naf_keys_of(struct kl_naf *n);

/** The port listened on. */
uint16_t kl_naf_port(const struct kl_naf *n);

/** The Zn client's and the issued keys' counters now (admin "status"; any thread). */
void kl_naf_get_stats(struct kl_naf *n, struct kl_zn_stats *zn, struct kl_naf_keys_stats *keys);

/** Stop serving (requests in flight are finished or refused), stop Zn, close the keys, free. */
void kl_naf_stop(struct kl_naf *n);

#endif

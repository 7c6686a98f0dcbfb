/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to kl_diameter.c (core, dictionary, server) and kl_diameter_client.c: the state both
 * sides share. Not installed; besides them only the Zn client (kl_zn.c) and keyline-hss-sim's BSF
 * role use it, for the dictionary lookup and the AVP helpers below.
 */
#ifndef KL_DIAMETER_PRIV_H
#define KL_DIAMETER_PRIV_H

#include <pthread.h>
#include <stdint.h>

#include <freeDiameter/freeDiameter-host.h>
#include <freeDiameter/libfdcore.h>

#include "kl_diameter.h"

/* Our AVPs as dense indices (the X-macro order). */
enum kl_dia_idx {
#define KL_DIA_IDX(n, code, name, type) KL_DIA_I_##n,
	KL_DIAMETER_AVPS(KL_DIA_IDX)
#undef KL_DIA_IDX
	KL_DIA_I__COUNT
};

struct kl_dia_dict {
	struct dict_object *vendor, *app;
	struct dict_object *kpr, *kpa, *krr, *kra;
	struct dict_object *avp[KL_DIA_I__COUNT];
	struct dict_object *session_id, *vsai, *vendor_id, *auth_app_id, *auth_session_state,
		*origin_host, *origin_realm, *dest_host, *dest_realm, *result_code, *error_message,
		*failed_avp, *proxy_info, *route_record;
};

struct kl_dia_item;

struct kl_diameter {
	int client;
	uint32_t vendor_id, app_id;
	struct kl_dia_dict dict;
	struct fd_hook_hdl *hook;

	/* server */
	struct kl_diameter_handlers h;
	char **allowed; /* NULL-terminated copy of allowed_peers, or NULL */
	pthread_mutex_t lock;
	struct kl_dia_item *head, *tail;
	unsigned queued, max_queue;
	int stopping;
	int efd;
	struct disp_hdl *disp[2];
	struct kl_diameter_stats st; /* under lock */
	struct kl_ctl_stats *ctl;    /* the same counters for /metrics and telemetry; NULL: none */

	/* client */
	char peer[256];
};

/** Log through the configured sink (any thread). */
void kl_dia_log(enum kl_diameter_log_level l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/**
 * Start freeDiameter's core for d (server or client): log sink, configuration (generated or
 * given), dictionary, application support, hooks, peer check; then fd_core_start.
 * @return 0 or -errno with err set.
 */
int kl_dia_core_start(struct kl_diameter *d, const struct kl_diameter_params *p, char *err,
		      size_t errlen);

/** Shut freeDiameter down (blocking until its threads are gone). */
void kl_dia_core_stop(void);

/** 1 when s is a Diameter identity we accept (FQDN characters, 1..255 bytes). */
int kl_dia_diamid_ok(const char *s);

/** A base-protocol AVP's dictionary object by name. @return 0, or -EINVAL with err set. */
int kl_dia_dict_avp(const char *name, struct dict_object **o, char *err, size_t errlen);

/** Add an OctetString-based (data, len) or Unsigned32 AVP of model to a message or grouped AVP.
 * @return 0 or freeDiameter's error (nothing added). */
int kl_dia_add_os(msg_or_avp *parent, struct dict_object *model, const void *data, size_t len);
int kl_dia_add_u32(msg_or_avp *parent, struct dict_object *model, uint32_t x);

/** Dictionary object of a Result-Code name used by fd_msg_rescode_set, or NULL. */
const char *kl_dia_rc_name(uint32_t code);

#endif

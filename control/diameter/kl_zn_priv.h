/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Zn dictionary (TS 29.109) on freeDiameter, shared by the client (kl_zn.c, keylined) and
 * the BSF role of tools/keyline-hss-sim: one registration, not two copies.
 */
#ifndef KL_ZN_PRIV_H
#define KL_ZN_PRIV_H

#include <stddef.h>

#include <freeDiameter/freeDiameter-host.h>
#include <freeDiameter/libfdcore.h>

#include "kl_zn.h"

struct kl_zn_dict {
	struct dict_object *vendor, *app, *bir, *bia;
	/* TS 29.109 (vendor 10415) */
	struct dict_object *tid, *naf_id, *expiry, *me_key, *created, *gba_type;
	/* base protocol */
	struct dict_object *session_id, *vsai, *vendor_id, *auth_app_id, *auth_session_state,
		*origin_host, *origin_realm, *dest_host, *dest_realm, *result_code, *exp_result,
		*exp_result_code, *user_name;
};

/**
 * Find or define, in the running (or initialised) freeDiameter's dictionary: vendor 10415, the
 * Zn application 16777220, the AVPs 401, 402, 404, 405, 408, 410 (as freeDiameter's
 * dict_dcca_3gpp defines them, reused when that extension is loaded), and the
 * Bootstrapping-Info-Request/Answer commands (310) with their rules. Idempotent.
 * @return 0, or -EINVAL with err set.
 */
int kl_zn_dict_init(struct kl_zn_dict *zd, char *err, size_t errlen);

#endif

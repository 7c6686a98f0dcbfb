/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client side of keyline's Diameter feed (the HSS/BSF end): connect to one server peer,
 * build Key-Push/Key-Remove requests from entries, hand each answer's Result-Code back.
 * Used by tools/keyline-hss-sim and the tests. See kl_diameter.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kl_crypto.h"
#include "kl_diameter_priv.h"
#include "kl_util.h"

struct kl_dia_pending {
	struct kl_diameter *c;
	void (*done)(void *arg, uint32_t result_code);
	void *arg;
};

static int peer_open(struct kl_diameter *c, char *realm, size_t rlen)
{
	struct peer_hdr *p = NULL;

	if (fd_peer_getbyid((DiamId_t)c->peer, strlen(c->peer), 0, &p) || !p)
		return 0;
	if (fd_peer_get_state(p) != STATE_OPEN)
		return 0;
	if (realm) {
		size_t n = p->info.runtime.pir_realmlen;

		if (!p->info.runtime.pir_realm || !n || n >= rlen)
			return 0;
		memcpy(realm, p->info.runtime.pir_realm, n);
		realm[n] = 0;
	}
	return 1;
}

int kl_diameter_client_connected(struct kl_diameter *c)
{
	return c && c->client && peer_open(c, NULL, 0);
}

struct kl_diameter *kl_diameter_client_start(const struct kl_diameter_params *p,
					     unsigned timeout_ms, char *err, size_t errlen)
{
	struct kl_diameter *c;
	struct timespec t0, now;
	int rc;

	if (!p || !p->peer_identity) {
		kl_errf(err, errlen, "no parameters or no peer identity");
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		kl_errf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	c->client = 1;
	c->efd = -1;
	c->vendor_id = p->vendor_id ? p->vendor_id : KL_DIAMETER_DEFAULT_VENDOR;
	c->app_id = p->app_id ? p->app_id : KL_DIAMETER_DEFAULT_APP;
	snprintf(c->peer, sizeof(c->peer), "%s", p->peer_identity);
	pthread_mutex_init(&c->lock, NULL);
	if ((rc = kl_dia_core_start(c, p, err, errlen)))
		goto fail;
	if ((rc = fd_core_start()) || (rc = fd_core_waitstartcomplete())) {
		kl_errf(err, errlen, "freeDiameter did not start: %s", strerror(rc));
		kl_dia_core_stop();
		rc = -EIO;
		goto fail;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		uint64_t ms;

		if (peer_open(c, NULL, 0))
			return c;
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (uint64_t)(now.tv_sec - t0.tv_sec) * 1000 +
		     (uint64_t)((now.tv_nsec - t0.tv_nsec) / 1000000);
		if (ms >= timeout_ms)
			break;
		usleep(10000);
	}
	kl_errf(err, errlen,
		"peer %s did not open within %u ms (unreachable, or it refused our certificate; "
		"see the log lines)",
		c->peer, timeout_ms);
	kl_dia_core_stop();
	rc = -ETIMEDOUT;
fail:
	pthread_mutex_destroy(&c->lock);
	free(c);
	errno = -rc;
	return NULL;
}

/* ---- building requests --------------------------------------------------------------------- */

static int add_value(msg_or_avp *parent, struct dict_object *model, const union avp_value *v)
{
	struct avp *a = NULL;
	int rc;

	if ((rc = fd_msg_avp_new(model, 0, &a)))
		return rc;
	if ((rc = fd_msg_avp_setvalue(a, (union avp_value *)v)) ||
	    (rc = fd_msg_avp_add(parent, MSG_BRW_LAST_CHILD, a))) {
		fd_msg_free((struct msg *)a);
		return rc;
	}
	return 0;
}

int kl_dia_add_os(msg_or_avp *parent, struct dict_object *model, const void *data, size_t len)
{
	union avp_value v;

	memset(&v, 0, sizeof(v));
	v.os.data = (uint8_t *)data;
	v.os.len = len;
	return add_value(parent, model, &v);
}

int kl_dia_add_u32(msg_or_avp *parent, struct dict_object *model, uint32_t x)
{
	union avp_value v;

	memset(&v, 0, sizeof(v));
	v.u32 = x;
	return add_value(parent, model, &v);
}

static int add_i32(msg_or_avp *parent, struct dict_object *model, int32_t x)
{
	union avp_value v;

	memset(&v, 0, sizeof(v));
	v.i32 = x;
	return add_value(parent, model, &v);
}

static int add_group(struct kl_diameter *c, struct msg *m, const struct kl_diameter_group *g)
{
	struct avp *a = NULL;
	int rc;

	if ((rc = fd_msg_avp_new(c->dict.avp[KL_DIA_I_KEY_GROUP], 0, &a)))
		return rc;
	if ((rc = kl_dia_add_os(a, c->dict.avp[KL_DIA_I_KEY_DOMAIN_ID], g->domain, 3)) ||
	    (rc = kl_dia_add_u32(a, c->dict.avp[KL_DIA_I_KEY_GROUP_ID], g->group)) ||
	    (rc = fd_msg_avp_add(m, MSG_BRW_LAST_CHILD, a))) {
		fd_msg_free((struct msg *)a);
		return rc;
	}
	return 0;
}

static int build(struct kl_diameter *c, const struct kl_diameter_entry *e, const char *realm,
		 struct msg **out)
{
	struct dict_object *cmd = e->op == KL_DIAMETER_PUSH ? c->dict.kpr : c->dict.krr;
	struct kl_dia_dict *k = &c->dict;
	struct msg *m = NULL;
	struct avp *vsai = NULL;
	int rc;

	if ((rc = fd_msg_new(cmd, MSGFL_ALLOC_ETEID, &m)))
		return rc;
	if ((rc = fd_msg_new_session(m, (os0_t) "keyline", 7)))
		goto fail;
	if ((rc = fd_msg_avp_new(k->vsai, 0, &vsai)) ||
	    (rc = kl_dia_add_u32(vsai, k->vendor_id, c->vendor_id)) ||
	    (rc = kl_dia_add_u32(vsai, k->auth_app_id, c->app_id)) ||
	    (rc = fd_msg_avp_add(m, MSG_BRW_LAST_CHILD, vsai))) {
		if (vsai)
			fd_msg_free((struct msg *)vsai);
		goto fail;
	}
	if ((rc = add_i32(m, k->auth_session_state, 1)) || /* NO_STATE_MAINTAINED */
	    (rc = fd_msg_add_origin(m, 0)) ||
	    (rc = kl_dia_add_os(m, k->dest_host, c->peer, strlen(c->peer))) ||
	    (rc = kl_dia_add_os(m, k->dest_realm, realm, strlen(realm))) ||
	    (rc = add_i32(m, k->avp[KL_DIA_I_ENTRY_TYPE], (int32_t)e->type)))
		goto fail;
	if (e->id_len) {
		int idx = e->type == KL_DIAMETER_APPID	? KL_DIA_I_APP_IDENTITY
			  : e->type == KL_DIAMETER_EMSE ? KL_DIA_I_EMSE_ID
			  : e->type == KL_DIAMETER_PAIR ? KL_DIA_I_PEER_IDENTITY
							: KL_DIA_I_USER_IDENTITY;

		if (e->id_len > KL_DIAMETER_ID_MAX) {
			rc = EINVAL;
			goto fail;
		}
		if ((rc = kl_dia_add_os(m, k->avp[idx], e->id, e->id_len)))
			goto fail;
	}
	if (e->imsi[0] && (rc = kl_dia_add_os(m, k->avp[KL_DIA_I_IMSI], e->imsi,
				       strnlen(e->imsi, sizeof(e->imsi)))))
		goto fail;
	if (e->key_len) {
		if (e->key_len > KL_DIAMETER_KEY_MAX) {
			rc = EINVAL;
			goto fail;
		}
		if ((rc = kl_dia_add_os(m, k->avp[KL_DIA_I_KEY], e->key, e->key_len)))
			goto fail;
	}
	if (e->has_key_id && (rc = kl_dia_add_u32(m, k->avp[KL_DIA_I_KEY_ID], e->key_id)))
		goto fail;
	if (e->services && (rc = kl_dia_add_u32(m, k->avp[KL_DIA_I_SERVICES], e->services)))
		goto fail;
	if (e->expires) {
		uint32_t s = (uint32_t)(e->expires >> 32);
		uint8_t b[4] = { (uint8_t)(s >> 24), (uint8_t)(s >> 16), (uint8_t)(s >> 8),
				 (uint8_t)s };

		if ((rc = kl_dia_add_os(m, k->avp[KL_DIA_I_EXPIRY], b, 4)))
			goto fail;
	}
	if (e->ngroups > KL_DIAMETER_MAX_GROUPS) {
		rc = EINVAL;
		goto fail;
	}
	for (unsigned g = 0; g < e->ngroups; g++)
		if ((rc = add_group(c, m, &e->groups[g])))
			goto fail;
	*out = m;
	return 0;
fail:
	fd_msg_free(m);
	return rc;
}

/* freeDiameter copied the key into the message: wipe that copy once it is no longer needed. */
static void wipe_key(struct kl_diameter *c, struct msg *req)
{
	struct avp *a = NULL;
	struct avp_hdr *h;

	if (req && !fd_msg_search_avp(req, c->dict.avp[KL_DIA_I_KEY], &a) && a &&
	    !fd_msg_avp_hdr(a, &h) && h->avp_value && h->avp_value->os.data)
		kl_memzero(h->avp_value->os.data, h->avp_value->os.len);
}

static void on_answer(void *data, struct msg **ans)
{
	struct kl_dia_pending *p = data;
	struct msg *q = NULL;
	struct avp *a = NULL;
	struct avp_hdr *h;
	uint32_t rc = 0;

	if (!fd_msg_search_avp(*ans, p->c->dict.result_code, &a) && a && !fd_msg_avp_hdr(a, &h) &&
	    h->avp_value)
		rc = h->avp_value->u32;
	if (!fd_msg_answ_getq(*ans, &q))
		wipe_key(p->c, q);
	fd_msg_free(*ans);
	*ans = NULL;
	p->done(p->arg, rc);
	free(p);
}

static void on_expire(void *data, DiamId_t sentto, size_t len, struct msg **req)
{
	struct kl_dia_pending *p = data;

	(void)sentto;
	(void)len;
	wipe_key(p->c, *req);
	fd_msg_free(*req);
	*req = NULL;
	p->done(p->arg, 0);
	free(p);
}

int kl_diameter_client_send(struct kl_diameter *c, const struct kl_diameter_entry *e,
			    unsigned timeout_ms, void (*done)(void *arg, uint32_t result_code),
			    void *arg)
{
	struct kl_dia_pending *p;
	struct timespec ts;
	struct msg *m = NULL;
	char realm[256];
	int rc;

	if (!c || !c->client || !e || !done ||
	    (e->op != KL_DIAMETER_PUSH && e->op != KL_DIAMETER_REMOVE))
		return -EINVAL;
	if (!peer_open(c, realm, sizeof(realm)))
		return -ENOTCONN;
	if ((rc = build(c, e, realm, &m)))
		return -rc;
	p = malloc(sizeof(*p));
	if (!p) {
		wipe_key(c, m);
		fd_msg_free(m);
		return -ENOMEM;
	}
	p->c = c;
	p->done = done;
	p->arg = arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	if ((rc = fd_msg_send_timeout(&m, on_answer, p, on_expire, &ts))) {
		if (m) {
			wipe_key(c, m);
			fd_msg_free(m);
		}
		free(p);
		return -rc;
	}
	return 0;
}

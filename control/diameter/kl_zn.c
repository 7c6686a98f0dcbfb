/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Zn client (TS 29.109) on keylined's running freeDiameter stack: the Zn dictionary (shared with
 * keyline-hss-sim's BSF role), the BSF peer, Bootstrapping-Info-Request/Answer round trips, and a
 * bounded cache of answers with Ks_(ext)_NAF wrapped under a per-process random KEK. See kl_zn.h.
 *
 * Threads: kl_zn_get runs on the caller's thread (the Key Center's HTTPS threads) and waits on a
 * condition variable; freeDiameter's threads run the answer and expiry callbacks, which parse the
 * answer (kl_zn_parse_bia over its wire form), wipe the key from freeDiameter's message and wake
 * the caller. One mutex guards the cache, the statistics and the waiting calls.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_crypto.h"
#include "kl_diameter_priv.h"
#include "kl_kwp.h"
#include "kl_util.h"
#include "kl_zn_priv.h"

#define WRAPPED_LEN KL_KWP_WRAP_LEN(KL_ZN_KEY_LEN)

/* ---- dictionary ---------------------------------------------------------------------------- */

static int zd_find_or_new(enum dict_object_type t, int crit, const void *what, void *data,
			  struct dict_object *parent, struct dict_object **o, const char *name,
			  char *err, size_t errlen)
{
	struct dictionary *dict = fd_g_config->cnf_dict;
	int rc;

	*o = NULL;
	if (!fd_dict_search(dict, t, crit, what, o, ENOENT) && *o)
		return 0;
	rc = fd_dict_new(dict, t, data, parent, o);
	if (rc && !(rc == EEXIST && *o)) {
		kl_errf(err, errlen, "Zn dictionary: cannot define %s: %s", name, strerror(rc));
		return -EINVAL;
	}
	return 0;
}

static int zd_rule(struct dict_object *cmd, struct dict_object *avp, enum rule_position pos,
		   int min, int max, char *err, size_t errlen)
{
	struct dict_rule_data r = { avp, pos, pos == RULE_FIXED_HEAD ? 1 : 0, min, max };
	int rc = fd_dict_new(fd_g_config->cnf_dict, DICT_RULE, &r, cmd, NULL);

	if (rc && rc != EEXIST) {
		kl_errf(err, errlen, "Zn dictionary: cannot add a command rule: %s", strerror(rc));
		return -EINVAL;
	}
	return 0;
}

int kl_zn_dict_init(struct kl_zn_dict *zd, char *err, size_t errlen)
{
	struct dictionary *dict;
	struct dict_vendor_data vd = { KL_ZN_VENDOR_ID, "3GPP" };
	struct dict_application_data ad = { KL_ZN_APP_ID, "3GPP Zn" };
	struct dict_type_data et = { AVP_TYPE_INTEGER32, "Enumerated(3GPP/GBA-Type)", NULL, NULL,
				     NULL, NULL, NULL };
	struct dict_object *t_time = NULL, *t_gba = NULL;
	vendor_id_t vid = KL_ZN_VENDOR_ID;
	application_id_t aid = KL_ZN_APP_ID;
	command_code_t cc = KL_ZN_CMD_BOOTSTRAPPING_INFO;
	int rc, new_cmds;
	static const struct {
		uint32_t code;
		const char *name;
		int type; /* 0 OctetString, 1 Time, 2 Enumerated */
		size_t off;
	} avps[] = {
		{ KL_ZN_AVP_TRANSACTION_ID, "Transaction-Identifier", 0,
		  offsetof(struct kl_zn_dict, tid) },
		{ KL_ZN_AVP_NAF_ID, "NAF-Id", 0, offsetof(struct kl_zn_dict, naf_id) },
		{ KL_ZN_AVP_KEY_EXPIRY, "Key-ExpiryTime", 1, offsetof(struct kl_zn_dict, expiry) },
		{ KL_ZN_AVP_ME_KEY, "ME-Key-Material", 0, offsetof(struct kl_zn_dict, me_key) },
		{ KL_ZN_AVP_CREATION_TIME, "BootstrapInfoCreationTime", 1,
		  offsetof(struct kl_zn_dict, created) },
		{ KL_ZN_AVP_GBA_TYPE, "GBA-Type", 2, offsetof(struct kl_zn_dict, gba_type) },
	};

	if (!zd || !fd_g_config || !fd_g_config->cnf_dict) {
		kl_errf(err, errlen, "Zn dictionary: freeDiameter is not initialised");
		return -EINVAL;
	}
	dict = fd_g_config->cnf_dict;
	memset(zd, 0, sizeof(*zd));
	if ((rc = zd_find_or_new(DICT_VENDOR, VENDOR_BY_ID, &vid, &vd, NULL, &zd->vendor, "3GPP",
				 err, errlen)) ||
	    (rc = zd_find_or_new(DICT_APPLICATION, APPLICATION_BY_ID, &aid, &ad, zd->vendor,
				 &zd->app, "the Zn application", err, errlen)))
		return rc;
	if (fd_dict_search(dict, DICT_TYPE, TYPE_BY_NAME, "Time", &t_time, ENOENT) || !t_time) {
		kl_errf(err, errlen, "Zn dictionary: base type Time missing");
		return -EINVAL;
	}
	if ((rc = zd_find_or_new(DICT_TYPE, TYPE_BY_NAME, et.type_name, &et, NULL, &t_gba,
				 "GBA-Type's type", err, errlen)))
		return rc;
	{
		struct dict_enumval_data ev[2] = { { "3G-GBA", { .i32 = 0 } },
						   { "2G-GBA", { .i32 = 1 } } };

		for (unsigned i = 0; i < 2; i++) {
			rc = fd_dict_new(dict, DICT_ENUMVAL, &ev[i], t_gba, NULL);
			if (rc && rc != EEXIST) {
				kl_errf(err, errlen, "Zn dictionary: GBA-Type value: %s", strerror(rc));
				return -EINVAL;
			}
		}
	}
	for (unsigned i = 0; i < sizeof(avps) / sizeof(avps[0]); i++) {
		struct dict_avp_request q = { KL_ZN_VENDOR_ID, avps[i].code, NULL };
		/* V must, M set when we send; a peer's M bit is not held against it */
		struct dict_avp_data a = { avps[i].code, KL_ZN_VENDOR_ID, (char *)avps[i].name,
					   AVP_FLAG_VENDOR, AVP_FLAG_VENDOR | AVP_FLAG_MANDATORY,
					   avps[i].type == 2 ? AVP_TYPE_INTEGER32 : AVP_TYPE_OCTETSTRING };

		if ((rc = zd_find_or_new(DICT_AVP, AVP_BY_CODE_AND_VENDOR, &q, &a,
					 avps[i].type == 1 ? t_time : avps[i].type == 2 ? t_gba : NULL,
					 (struct dict_object **)((char *)zd + avps[i].off),
					 avps[i].name, err, errlen)))
			return rc;
	}
	if ((rc = kl_dia_dict_avp("Session-Id", &zd->session_id, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Vendor-Specific-Application-Id", &zd->vsai, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Vendor-Id", &zd->vendor_id, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Auth-Application-Id", &zd->auth_app_id, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Auth-Session-State", &zd->auth_session_state, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Origin-Host", &zd->origin_host, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Origin-Realm", &zd->origin_realm, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Destination-Host", &zd->dest_host, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Destination-Realm", &zd->dest_realm, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Result-Code", &zd->result_code, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Experimental-Result", &zd->exp_result, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Experimental-Result-Code", &zd->exp_result_code, err, errlen)) ||
	    (rc = kl_dia_dict_avp("User-Name", &zd->user_name, err, errlen)))
		return rc;

	new_cmds = fd_dict_search(dict, DICT_COMMAND, CMD_BY_CODE_R, &cc, &zd->bir, ENOENT) ||
		   !zd->bir;
	{
		struct dict_cmd_data q = { KL_ZN_CMD_BOOTSTRAPPING_INFO, "Bootstrapping-Info-Request",
					   CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE | CMD_FLAG_ERROR,
					   CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE };
		struct dict_cmd_data a = { KL_ZN_CMD_BOOTSTRAPPING_INFO, "Bootstrapping-Info-Answer",
					   CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE, CMD_FLAG_PROXIABLE };

		if ((rc = zd_find_or_new(DICT_COMMAND, CMD_BY_CODE_R, &cc, &q, zd->app, &zd->bir,
					 q.cmd_name, err, errlen)) ||
		    (rc = zd_find_or_new(DICT_COMMAND, CMD_BY_CODE_A, &cc, &a, zd->app, &zd->bia,
					 a.cmd_name, err, errlen)))
			return rc;
	}
	if (!new_cmds)
		return 0; /* an operator's extension defined them, with its rules */
	/* TS 29.109 6.1: the request's mandatory AVPs; the answer's content is checked by
	 * kl_zn_parse_bia (a rule failure here would drop the answer unseen) */
	if ((rc = zd_rule(zd->bir, zd->session_id, RULE_FIXED_HEAD, -1, 1, err, errlen)) ||
	    (rc = zd_rule(zd->bir, zd->vsai, RULE_OPTIONAL, -1, 1, err, errlen)) ||
	    (rc = zd_rule(zd->bir, zd->auth_session_state, RULE_OPTIONAL, -1, 1, err, errlen)) ||
	    (rc = zd_rule(zd->bir, zd->origin_host, RULE_REQUIRED, -1, 1, err, errlen)) ||
	    (rc = zd_rule(zd->bir, zd->origin_realm, RULE_REQUIRED, -1, 1, err, errlen)) ||
	    (rc = zd_rule(zd->bir, zd->dest_realm, RULE_REQUIRED, -1, 1, err, errlen)) ||
	    (rc = zd_rule(zd->bir, zd->dest_host, RULE_OPTIONAL, -1, 1, err, errlen)) ||
	    (rc = zd_rule(zd->bir, zd->tid, RULE_REQUIRED, -1, 1, err, errlen)) ||
	    (rc = zd_rule(zd->bir, zd->naf_id, RULE_REQUIRED, -1, 1, err, errlen)) ||
	    (rc = zd_rule(zd->bia, zd->session_id, RULE_FIXED_HEAD, -1, 1, err, errlen)) ||
	    (rc = zd_rule(zd->bia, zd->origin_host, RULE_REQUIRED, -1, 1, err, errlen)) ||
	    (rc = zd_rule(zd->bia, zd->origin_realm, RULE_REQUIRED, -1, 1, err, errlen)))
		return rc;
	return 0;
}

/* ---- the client ---------------------------------------------------------------------------- */

struct zn_entry {
	struct zn_entry *next; /* hash chain */
	size_t heap;	       /* index in the expiry heap */
	uint64_t seq;	       /* insertion order: among equal expiries the oldest goes first */
	uint32_t hash;
	uint64_t expiry, created;
	uint32_t gba_type, result_code;
	uint8_t wrapped[WRAPPED_LEN];
	uint16_t btid_len, naf_len, impi_len;
	uint8_t id[]; /* B-TID || NAF_Id || IMPI (only as long as they are) */
};

/* One BIR in flight: its sender (the leader), its callback and the callers that asked for the
 * same (B-TID, NAF_Id) meanwhile (followers) each hold a reference. */
struct zn_pending {
	struct zn_pending *prev, *next; /* BIRs in flight (z->waiting), until the leader returns */
	struct kl_zn *z;
	pthread_cond_t cv; /* broadcast when done */
	int done, refs;
	uint64_t t0_us;
	struct kl_zn_answer ans;
	uint32_t hash;
	uint16_t btid_len, naf_len;
	uint8_t id[KL_ZN_BTID_MAX + KL_ZN_NAF_ID_MAX]; /* B-TID || NAF_Id */
};

struct kl_zn {
	struct kl_diameter *d;
	struct kl_zn_dict dict;
	char bsf[256], realm[256];
	unsigned timeout_ms, cap;
	pthread_mutex_t lock;
	pthread_cond_t idle; /* inflight reached 0 */
	struct zn_entry **buckets;
	size_t nbuckets; /* a power of 2 */
	struct zn_entry **heap;
	size_t n;
	uint32_t seed;
	uint64_t seq; /* cache insertions */
	struct kl_kwp_key *kek;
	struct kl_zn_stats st;
	struct zn_pending *waiting;
	unsigned inflight;  /* BIRs whose callback has not run yet */
	unsigned followers; /* callers waiting on another caller's BIR */
	int stopping;
	struct fd_hook_hdl *dropped; /* BIAs freeDiameter's parser refused */
};

static const uint64_t lat_bounds_us[KL_ZN_LAT_BUCKETS - 1] = {
	500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000
};

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t unix_now(void)
{
	return (uint64_t)time(NULL);
}

/* -- cache: a hash table of chains and a binary min-heap on expiry (the first to go) -- */

static uint32_t id_hash(uint32_t seed, const char *btid, size_t bl, const uint8_t *naf, size_t nl)
{
	uint32_t h = 2166136261u ^ seed;

	for (size_t i = 0; i < bl; i++)
		h = (h ^ (uint8_t)btid[i]) * 16777619u;
	h = (h ^ 0xFFu) * 16777619u; /* separator: no (B-TID, NAF_Id) split collides by design */
	for (size_t i = 0; i < nl; i++)
		h = (h ^ naf[i]) * 16777619u;
	return h ^ (h >> 15);
}

static int heap_less(const struct zn_entry *a, const struct zn_entry *b)
{
	return a->expiry < b->expiry || (a->expiry == b->expiry && a->seq < b->seq);
}

static void heap_swap(struct kl_zn *z, size_t a, size_t b)
{
	struct zn_entry *t = z->heap[a];

	z->heap[a] = z->heap[b];
	z->heap[b] = t;
	z->heap[a]->heap = a;
	z->heap[b]->heap = b;
}

static void heap_fix(struct kl_zn *z, size_t i)
{
	while (i && heap_less(z->heap[i], z->heap[(i - 1) / 2])) {
		heap_swap(z, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < z->n && heap_less(z->heap[l], z->heap[m]))
			m = l;
		if (r < z->n && heap_less(z->heap[r], z->heap[m]))
			m = r;
		if (m == i)
			return;
		heap_swap(z, i, m);
		i = m;
	}
}

static void entry_drop(struct kl_zn *z, struct zn_entry *e)
{
	struct zn_entry **pp = &z->buckets[e->hash & (z->nbuckets - 1)];
	size_t i = e->heap;

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	z->n--;
	if (i != z->n) {
		z->heap[i] = z->heap[z->n];
		z->heap[i]->heap = i;
		heap_fix(z, i);
	}
	kl_memzero(e, sizeof(*e) + e->btid_len + e->naf_len + e->impi_len);
	free(e);
	z->st.cache_size = z->n;
}

static struct zn_entry *entry_find(struct kl_zn *z, uint32_t h, const char *btid, size_t bl,
				   const uint8_t *naf, size_t nl)
{
	for (struct zn_entry *e = z->buckets[h & (z->nbuckets - 1)]; e; e = e->next)
		if (e->hash == h && e->btid_len == bl && e->naf_len == nl &&
		    !memcmp(e->id, btid, bl) && !memcmp(e->id + bl, naf, nl))
			return e;
	return NULL;
}

/* Under z->lock: cache an OK answer (replacing an older one for the same pair). */
static void cache_put(struct kl_zn *z, uint32_t h, const char *btid, size_t bl, const uint8_t *naf,
		      size_t nl, const struct kl_zn_answer *a)
{
	struct zn_entry *e = entry_find(z, h, btid, bl, naf, nl);
	size_t il;

	if (e)
		entry_drop(z, e);
	while (z->n && z->n >= z->cap)
		entry_drop(z, z->heap[0]);
	il = strnlen(a->impi, KL_ZN_IMPI_MAX);
	if (!z->cap || !(e = calloc(1, sizeof(*e) + bl + nl + il)))
		return;
	if (kl_kwp_wrap(z->kek, a->ks_naf, KL_ZN_KEY_LEN, e->wrapped, sizeof(e->wrapped)) !=
	    (long)WRAPPED_LEN) {
		free(e);
		return;
	}
	e->hash = h;
	e->seq = z->seq++;
	e->expiry = a->expiry;
	e->created = a->created;
	e->gba_type = a->gba_type;
	e->result_code = a->result_code;
	e->impi_len = (uint16_t)il;
	memcpy(e->id + bl + nl, a->impi, il);
	e->btid_len = (uint16_t)bl;
	e->naf_len = (uint16_t)nl;
	memcpy(e->id, btid, bl);
	memcpy(e->id + bl, naf, nl);
	e->next = z->buckets[h & (z->nbuckets - 1)];
	z->buckets[h & (z->nbuckets - 1)] = e;
	e->heap = z->n;
	z->heap[z->n++] = e;
	heap_fix(z, e->heap);
	z->st.cache_size = z->n;
}

/* -- the BSF peer -- */

static int bsf_open(struct kl_zn *z)
{
	struct peer_hdr *p = NULL;

	return !fd_peer_getbyid((DiamId_t)z->bsf, strlen(z->bsf), 0, &p) && p &&
	       fd_peer_get_state(p) == STATE_OPEN;
}

static int add_peer(struct kl_zn *z, const struct kl_zn_params *prm, char *err, size_t errlen)
{
	struct peer_info pi;
	struct addrinfo hints, *ai = NULL;
	int rc;

	memset(&pi, 0, sizeof(pi));
	fd_list_init(&pi.pi_endpoints, NULL);
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST;
	if ((rc = getaddrinfo(prm->bsf_address, NULL, &hints, &ai)) || !ai) {
		kl_errf(err, errlen, "Zn: BSF address '%s' is not an IP address",
			kl_shown(prm->bsf_address));
		return -EINVAL;
	}
	rc = fd_ep_add_merge(&pi.pi_endpoints, ai->ai_addr, ai->ai_addrlen,
			     EP_FL_CONF | EP_ACCEPTALL); /* loopback too */
	freeaddrinfo(ai);
	if (rc) {
		kl_errf(err, errlen, "Zn: BSF address: %s", strerror(rc));
		return -EINVAL;
	}
	pi.pi_diamid = z->bsf;
	pi.config.pic_flags.pro4 = PI_P4_TCP;
	pi.config.pic_flags.sec = PI_SEC_DEFAULT; /* TLS at connection start */
	pi.config.pic_flags.persist = PI_PRST_ALWAYS;
	pi.config.pic_port = prm->bsf_port ? prm->bsf_port : 3868;
	pi.config.pic_tctimer = 2; /* reconnect soon after the BSF went away */
	rc = fd_peer_add(&pi, "kl_zn", NULL, NULL);
	while (!FD_IS_LIST_EMPTY(&pi.pi_endpoints)) {
		struct fd_list *l = pi.pi_endpoints.next;

		fd_list_unlink(l);
		free(l);
	}
	if (rc && rc != EEXIST) {
		kl_errf(err, errlen, "Zn: cannot add the BSF peer %s: %s", z->bsf, strerror(rc));
		return -EINVAL;
	}
	return 0;
}

static void on_dropped(enum fd_hook_type type, struct msg *msg, struct peer_hdr *peer,
		       void *other, struct fd_hook_permsgdata *pmd, void *regdata);

struct kl_zn *kl_zn_start(struct kl_diameter *d, const struct kl_zn_params *p, char *err,
			  size_t errlen)
{
	uint8_t kek[32];
	struct kl_zn *z;
	pthread_condattr_t ca;
	int rc;

	if (!d || !p || !kl_dia_diamid_ok(p->bsf_identity) || !p->bsf_address) {
		kl_errf(err, errlen, "Zn: no stack, or no valid BSF identity and address");
		return NULL;
	}
	if (p->bsf_realm && !kl_dia_diamid_ok(p->bsf_realm)) {
		kl_errf(err, errlen, "Zn: BSF realm '%s' is not a domain name", kl_shown(p->bsf_realm));
		return NULL;
	}
	if (!p->bsf_realm && (!strchr(p->bsf_identity, '.') || !strchr(p->bsf_identity, '.')[1])) {
		kl_errf(err, errlen, "Zn: no BSF realm, and identity '%s' has no domain part",
			p->bsf_identity);
		return NULL;
	}
	if (!(z = calloc(1, sizeof(*z)))) {
		kl_errf(err, errlen, "Zn: out of memory");
		return NULL;
	}
	z->d = d;
	snprintf(z->bsf, sizeof(z->bsf), "%s", p->bsf_identity);
	snprintf(z->realm, sizeof(z->realm), "%s",
		 p->bsf_realm ? p->bsf_realm : strchr(p->bsf_identity, '.') + 1);
	z->timeout_ms = p->timeout_ms ? p->timeout_ms : 2000;
	z->cap = p->cache_entries ? p->cache_entries : 65536;
	for (z->nbuckets = 64; z->nbuckets < z->cap && z->nbuckets < (1u << 24); z->nbuckets <<= 1)
		;
	z->buckets = calloc(z->nbuckets, sizeof(*z->buckets));
	z->heap = calloc(z->cap, sizeof(*z->heap));
	z->kek = aligned_alloc(16, sizeof(*z->kek));
	if (!z->buckets || !z->heap || !z->kek) {
		kl_errf(err, errlen, "Zn: out of memory for a cache of %u entries", z->cap);
		goto fail;
	}
	memset(z->kek, 0, sizeof(*z->kek));
	if (kl_random(kek, sizeof(kek)) || kl_random((uint8_t *)&z->seed, sizeof(z->seed)) ||
	    kl_kwp_init(z->kek, kek, sizeof(kek))) {
		kl_memzero(kek, sizeof(kek));
		kl_errf(err, errlen, "Zn: cannot set up the cache's key wrapping");
		goto fail;
	}
	kl_memzero(kek, sizeof(kek));
	pthread_mutex_init(&z->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&z->idle, &ca);
	pthread_condattr_destroy(&ca);
	if ((rc = kl_zn_dict_init(&z->dict, err, errlen)))
		goto fail_lock;
	if ((rc = fd_disp_app_support(z->dict.app, z->dict.vendor, 1, 0)) && rc != EEXIST) {
		kl_errf(err, errlen, "Zn: cannot advertise the application: %s", strerror(rc));
		goto fail_lock;
	}
	if ((rc = fd_hook_register(HOOK_MASK(HOOK_MESSAGE_DROPPED), on_dropped, z, NULL,
				   &z->dropped))) {
		kl_errf(err, errlen, "Zn: cannot register the dropped-answer hook: %s",
			strerror(rc));
		goto fail_lock;
	}
	if (add_peer(z, p, err, errlen))
		goto fail_hook;
	kl_dia_log(KL_DIAMETER_LOG_INFO, "Zn: BSF %s (realm %s) at %s port %u, timeout %u ms",
		   z->bsf, z->realm, p->bsf_address, (unsigned)(p->bsf_port ? p->bsf_port : 3868),
		   z->timeout_ms);
	return z;
fail_hook:
	fd_hook_unregister(z->dropped);
fail_lock:
	pthread_cond_destroy(&z->idle);
	pthread_mutex_destroy(&z->lock);
fail:
	if (z->kek) {
		kl_kwp_free(z->kek);
		free(z->kek);
	}
	free(z->buckets);
	free(z->heap);
	free(z);
	return NULL;
}

/* -- one round trip -- */

static int build_bir(struct kl_zn *z, const char *btid, const uint8_t *naf, size_t nl,
		     struct msg **out)
{
	struct kl_zn_dict *k = &z->dict;
	struct msg *m = NULL;
	struct avp *vsai = NULL;
	int rc;

	if ((rc = fd_msg_new(k->bir, MSGFL_ALLOC_ETEID, &m)))
		return rc;
	if ((rc = fd_msg_new_session(m, (os0_t) "keyline-zn", 10)))
		goto fail;
	if ((rc = fd_msg_avp_new(k->vsai, 0, &vsai)) ||
	    (rc = kl_dia_add_u32(vsai, k->vendor_id, KL_ZN_VENDOR_ID)) ||
	    (rc = kl_dia_add_u32(vsai, k->auth_app_id, KL_ZN_APP_ID)) ||
	    (rc = fd_msg_avp_add(m, MSG_BRW_LAST_CHILD, vsai))) {
		if (vsai)
			fd_msg_free((struct msg *)vsai);
		goto fail;
	}
	if ((rc = kl_dia_add_u32(m, k->auth_session_state, 1)) || /* NO_STATE_MAINTAINED */
	    (rc = fd_msg_add_origin(m, 0)) ||
	    (rc = kl_dia_add_os(m, k->dest_host, z->bsf, strlen(z->bsf))) ||
	    (rc = kl_dia_add_os(m, k->dest_realm, z->realm, strlen(z->realm))) ||
	    (rc = kl_dia_add_os(m, k->tid, btid, strlen(btid))) ||
	    (rc = kl_dia_add_os(m, k->naf_id, naf, nl)))
		goto fail;
	*out = m;
	return 0;
fail:
	fd_msg_free(m);
	return rc;
}

/* Wipe the key from freeDiameter's parsed answer and free it. */
static void free_answer(struct kl_zn *z, struct msg *ans)
{
	struct avp *a = NULL;
	struct avp_hdr *h;

	if (!fd_msg_search_avp(ans, z->dict.me_key, &a) && a && !fd_msg_avp_hdr(a, &h) &&
	    h->avp_value && h->avp_value->os.data)
		kl_memzero(h->avp_value->os.data, h->avp_value->os.len);
	fd_msg_free(ans);
}

/* Under z->lock: one of the two holders (caller, callback) is done with p. */
static void pending_release(struct zn_pending *p)
{
	if (--p->refs == 0) {
		pthread_cond_destroy(&p->cv);
		kl_memzero(p, sizeof(*p));
		free(p);
	}
}

static void pending_finish(struct zn_pending *p, const struct kl_zn_answer *a, int answered)
{
	struct kl_zn *z = p->z;
	uint64_t us = mono_us() - p->t0_us;

	pthread_mutex_lock(&z->lock);
	if (answered) {
		unsigned b = 0;

		z->st.answered++;
		while (b < KL_ZN_LAT_BUCKETS - 1 && us > lat_bounds_us[b])
			b++;
		z->st.latency[b]++;
		z->st.latency_sum_us += us;
	}
	if (!p->done) {
		p->ans = *a;
		p->done = 1;
		pthread_cond_broadcast(&p->cv);
	}
	z->inflight--;
	if (!z->inflight)
		pthread_cond_broadcast(&z->idle);
	pending_release(p);
	pthread_mutex_unlock(&z->lock);
}

static void on_answer(void *data, struct msg **ans)
{
	struct zn_pending *p = data;
	struct kl_zn_answer a;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (fd_msg_bufferize(*ans, &buf, &len)) {
		memset(&a, 0, sizeof(a));
		a.status = KL_ZN_BAD_ANSWER;
	} else {
		kl_zn_parse_bia(buf, len, unix_now(), &a);
		kl_memzero(buf, len);
		free(buf);
	}
	free_answer(p->z, *ans);
	*ans = NULL;
	pending_finish(p, &a, 1);
	kl_memzero(&a, sizeof(a));
}

static void on_expire(void *data, DiamId_t sentto, size_t len, struct msg **req)
{
	struct zn_pending *p = data;
	struct kl_zn_answer a;

	(void)sentto;
	(void)len;
	fd_msg_free(*req);
	*req = NULL;
	memset(&a, 0, sizeof(a));
	a.status = KL_ZN_UNREACHABLE;
	pending_finish(p, &a, 0);
}

/*
 * freeDiameter parses every answer against the dictionary before its callback; one that fails
 * (an AVP whose length does not fit its type, a rule of the command such as one Origin-Host
 * broken, an unknown mandatory AVP) is dropped with HOOK_MESSAGE_DROPPED, still associated with
 * our request, and neither of the request's callbacks runs (the request is freed with it). The
 * BIR's caller gets BAD_ANSWER now instead of UNREACHABLE at its timeout; both callbacks are
 * cleared first, so that nothing completes the request twice.
 */
static void on_dropped(enum fd_hook_type type, struct msg *msg, struct peer_hdr *peer,
		       void *other, struct fd_hook_permsgdata *pmd, void *regdata)
{
	void (*anscb)(void *, struct msg **) = NULL;
	void (*expcb)(void *, DiamId_t, size_t, struct msg **) = NULL;
	struct msg *q = NULL;
	struct msg_hdr *h = NULL;
	struct kl_zn_answer a;
	void *data = NULL;

	(void)type;
	(void)peer;
	(void)other;
	(void)pmd;
	(void)regdata;
	if (!msg || fd_msg_hdr(msg, &h) || (h->msg_flags & CMD_FLAG_REQUEST) ||
	    h->msg_appl != KL_ZN_APP_ID || h->msg_code != KL_ZN_CMD_BOOTSTRAPPING_INFO)
		return;
	if (fd_msg_answ_getq(msg, &q) || !q || fd_msg_anscb_get(q, &anscb, &expcb, &data) ||
	    anscb != on_answer || !data)
		return;
	fd_msg_anscb_reset(q, 1, 1);
	memset(&a, 0, sizeof(a));
	a.status = KL_ZN_BAD_ANSWER;
	pending_finish(data, &a, 1);
}

static void list_remove(struct kl_zn *z, struct zn_pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		z->waiting = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
}

/* now + ms on clock c */
static void deadline(clockid_t c, unsigned ms, struct timespec *ts)
{
	clock_gettime(c, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static enum kl_zn_status finish(struct kl_zn *z, struct kl_zn_answer *out, enum kl_zn_status st)
{
	out->status = st;
	if (st != KL_ZN_OK)
		kl_memzero(out->ks_naf, sizeof(out->ks_naf));
	z->st.by_status[st]++;
	return st;
}

/* Under z->lock: the unexpired cache entry of the pair copied to out (1), else 0 (an expired
 * one dropped). */
static int cache_get(struct kl_zn *z, uint32_t h, const char *btid, size_t bl, const uint8_t *naf,
		     size_t nl, struct kl_zn_answer *out)
{
	struct zn_entry *e = entry_find(z, h, btid, bl, naf, nl);

	if (!e)
		return 0;
	if (e->expiry > unix_now() &&
	    kl_kwp_unwrap(z->kek, e->wrapped, sizeof(e->wrapped), out->ks_naf,
			  sizeof(out->ks_naf)) == KL_ZN_KEY_LEN) {
		out->result_code = e->result_code;
		out->expiry = e->expiry;
		out->created = e->created;
		out->gba_type = e->gba_type;
		memcpy(out->impi, e->id + bl + nl, e->impi_len);
		out->impi[e->impi_len] = 0;
		out->cached = 1;
		z->st.cache_hits++;
		finish(z, out, KL_ZN_OK);
		return 1;
	}
	entry_drop(z, e);
	return 0;
}

/* Under z->lock: the BIR in flight for the pair, if any. */
static struct zn_pending *pending_find(struct kl_zn *z, uint32_t h, const char *btid, size_t bl,
				       const uint8_t *naf, size_t nl)
{
	for (struct zn_pending *p = z->waiting; p; p = p->next)
		if (!p->done && p->hash == h && p->btid_len == bl && p->naf_len == nl &&
		    !memcmp(p->id, btid, bl) && !memcmp(p->id + bl, naf, nl))
			return p;
	return NULL;
}

/* Under z->lock: wait for the BIR p another caller sent (its leader ends it within timeout_ms:
 * answer, expiry, its own deadline, or stop) and take its answer. */
static enum kl_zn_status follow(struct kl_zn *z, struct zn_pending *p, struct kl_zn_answer *out)
{
	struct timespec dl;

	p->refs++;
	z->followers++;
	z->st.coalesced++;
	deadline(CLOCK_MONOTONIC, z->timeout_ms + 1000, &dl); /* a bound: the leader ends first */
	while (!p->done && !z->stopping)
		if (pthread_cond_timedwait(&p->cv, &z->lock, &dl) == ETIMEDOUT)
			break;
	if (p->done) {
		*out = p->ans;
	} else {
		memset(out, 0, sizeof(*out));
		out->status = KL_ZN_UNREACHABLE;
	}
	out->cached = 0;
	z->followers--;
	if (z->stopping)
		pthread_cond_broadcast(&z->idle);
	finish(z, out, out->status);
	pending_release(p);
	return out->status;
}

enum kl_zn_status kl_zn_get(struct kl_zn *z, const char *btid, const uint8_t *naf_id,
			    size_t naf_len, struct kl_zn_answer *out)
{
	struct zn_pending *p, *q = NULL;
	struct timespec dl;
	pthread_condattr_t ca;
	struct msg *m = NULL;
	size_t bl;
	uint32_t h;
	int rc;

	if (!out)
		return KL_ZN_BAD_ANSWER;
	memset(out, 0, sizeof(*out));
	if (!z) {
		out->status = KL_ZN_UNREACHABLE;
		return out->status;
	}
	bl = btid ? strnlen(btid, KL_ZN_BTID_MAX + 1) : 0;
	pthread_mutex_lock(&z->lock);
	z->st.requests++;
	/* no such B-TID or NAF_Id can exist at the BSF */
	if (!bl || bl > KL_ZN_BTID_MAX || !naf_id || !naf_len || naf_len > KL_ZN_NAF_ID_MAX) {
		finish(z, out, KL_ZN_UNKNOWN);
		pthread_mutex_unlock(&z->lock);
		return KL_ZN_UNKNOWN;
	}
	h = id_hash(z->seed, btid, bl, naf_id, naf_len);
	if (cache_get(z, h, btid, bl, naf_id, naf_len, out)) {
		pthread_mutex_unlock(&z->lock);
		return KL_ZN_OK;
	}
	if ((p = pending_find(z, h, btid, bl, naf_id, naf_len))) {
		follow(z, p, out);
		pthread_mutex_unlock(&z->lock);
		return out->status;
	}
	pthread_mutex_unlock(&z->lock);

	/* freeDiameter's peer lookup outside our lock: its threads call ours with theirs */
	if (!bsf_open(z) || build_bir(z, btid, naf_id, naf_len, &m) ||
	    !(p = calloc(1, sizeof(*p)))) {
		if (m)
			fd_msg_free(m);
		pthread_mutex_lock(&z->lock);
		finish(z, out, KL_ZN_UNREACHABLE);
		pthread_mutex_unlock(&z->lock);
		return KL_ZN_UNREACHABLE;
	}
	p->z = z;
	p->refs = 2;
	p->hash = h;
	p->btid_len = (uint16_t)bl;
	p->naf_len = (uint16_t)naf_len;
	memcpy(p->id, btid, bl);
	memcpy(p->id + bl, naf_id, naf_len);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->t0_us = mono_us();
	pthread_mutex_lock(&z->lock);
	if (z->stopping) {
		/* kl_zn_stop began after the check above: nothing may be in flight it does not
		 * wait for */
		finish(z, out, KL_ZN_UNREACHABLE);
		pthread_mutex_unlock(&z->lock);
		fd_msg_free(m);
		pthread_cond_destroy(&p->cv);
		free(p);
		return KL_ZN_UNREACHABLE;
	}
	/* another caller's BIR for the pair went out or came back while the lock was free */
	if (cache_get(z, h, btid, bl, naf_id, naf_len, out) ||
	    (q = pending_find(z, h, btid, bl, naf_id, naf_len))) {
		if (q)
			follow(z, q, out);
		pthread_mutex_unlock(&z->lock);
		fd_msg_free(m);
		pthread_cond_destroy(&p->cv);
		kl_memzero(p, sizeof(*p));
		free(p);
		return out->status;
	}
	p->next = z->waiting;
	if (p->next)
		p->next->prev = p;
	z->waiting = p;
	z->inflight++;
	z->st.sent++;
	pthread_mutex_unlock(&z->lock);

	deadline(CLOCK_REALTIME, z->timeout_ms, &dl);
	rc = fd_msg_send_timeout(&m, on_answer, p, on_expire, &dl);
	pthread_mutex_lock(&z->lock);
	if (rc) {
		/* not queued: no callback will come */
		if (m)
			fd_msg_free(m);
		z->inflight--;
		if (!z->inflight)
			pthread_cond_broadcast(&z->idle);
		p->refs--;
		p->done = 1;
		p->ans.status = KL_ZN_UNREACHABLE;
	}
	deadline(CLOCK_MONOTONIC, z->timeout_ms, &dl);
	while (!p->done && !z->stopping)
		if (pthread_cond_timedwait(&p->cv, &z->lock, &dl) == ETIMEDOUT)
			break;
	list_remove(z, p);
	if (z->stopping)
		pthread_cond_broadcast(&z->idle);
	if (p->done) {
		*out = p->ans;
	} else {
		/* no answer in time (or stopping): the callback still comes, and is ignored; the
		 * followers get the same */
		p->done = 1;
		memset(&p->ans, 0, sizeof(p->ans));
		p->ans.status = KL_ZN_UNREACHABLE;
		pthread_cond_broadcast(&p->cv);
		memset(out, 0, sizeof(*out));
		out->status = KL_ZN_UNREACHABLE;
	}
	if (out->status == KL_ZN_OK)
		cache_put(z, h, btid, bl, naf_id, naf_len, out);
	finish(z, out, out->status);
	pending_release(p);
	pthread_mutex_unlock(&z->lock);
	return out->status;
}

static int of_btid(const struct zn_entry *e, const char *btid, size_t bl)
{
	return e->btid_len == bl && !memcmp(e->id, btid, bl);
}

void kl_zn_forget(struct kl_zn *z, const char *btid)
{
	struct zn_entry **m = NULL;
	size_t bl, n = 0;

	if (!z || !btid)
		return;
	bl = strnlen(btid, KL_ZN_BTID_MAX + 1);
	pthread_mutex_lock(&z->lock);
	/* find the matches first (dropping one reorders the heap), then drop them */
	for (size_t i = 0; i < z->n; i++)
		if (of_btid(z->heap[i], btid, bl))
			n++;
	if (n && (m = malloc(n * sizeof(*m)))) {
		n = 0;
		for (size_t i = 0; i < z->n; i++)
			if (of_btid(z->heap[i], btid, bl))
				m[n++] = z->heap[i];
		for (size_t i = 0; i < n; i++)
			entry_drop(z, m[i]);
		free(m);
	} else if (n) {
		/* no memory for the list: one scan per match */
		for (int found = 1; found;) {
			found = 0;
			for (size_t i = 0; i < z->n && !found; i++)
				if (of_btid(z->heap[i], btid, bl)) {
					entry_drop(z, z->heap[i]);
					found = 1;
				}
		}
	}
	pthread_mutex_unlock(&z->lock);
}

void kl_zn_get_stats(struct kl_zn *z, struct kl_zn_stats *s)
{
	if (!s)
		return;
	memset(s, 0, sizeof(*s));
	if (!z)
		return;
	pthread_mutex_lock(&z->lock);
	*s = z->st;
	s->cache_size = z->n;
	pthread_mutex_unlock(&z->lock);
	s->bsf_open = bsf_open(z);
}

void kl_zn_stop(struct kl_zn *z)
{
	struct timespec dl;
	int leak = 0;

	if (!z)
		return;
	pthread_mutex_lock(&z->lock);
	z->stopping = 1;
	for (struct zn_pending *p = z->waiting; p; p = p->next)
		pthread_cond_broadcast(&p->cv);
	/* the callbacks of BIRs in flight use z: wait for them (freeDiameter expires each within
	 * timeout_ms), and never free z under a callback still to come */
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += z->timeout_ms / 1000 + 2;
	while (z->inflight || z->waiting || z->followers)
		if (pthread_cond_timedwait(&z->idle, &z->lock, &dl) == ETIMEDOUT) {
			leak = 1;
			break;
		}
	while (z->n)
		entry_drop(z, z->heap[0]);
	pthread_mutex_unlock(&z->lock);
	if (leak) {
		kl_dia_log(KL_DIAMETER_LOG_WARNING,
			   "Zn: %u requests still in flight at stop: their state is kept",
			   z->inflight);
		return;
	}
	fd_hook_unregister(z->dropped); /* waits for a callback running in it */
	kl_kwp_free(z->kek);
	free(z->kek);
	free(z->buckets);
	free(z->heap);
	pthread_cond_destroy(&z->idle);
	pthread_mutex_destroy(&z->lock);
	free(z);
}

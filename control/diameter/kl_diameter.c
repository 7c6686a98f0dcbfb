/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline's Diameter feed: freeDiameter's core (configuration, logging, hooks, peer check), the
 * application's dictionary, and the server side (validation on freeDiameter's dispatch threads,
 * a queue to the control thread, answers after the handlers). See kl_diameter.h.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "kl_crypto.h"
#include "kl_ctl_stats.h"
#include "kl_diameter_priv.h"
#include "kl_util.h"

#define NTP_UNIX_OFFSET 2208988800u

/* ---- logging ------------------------------------------------------------------------------- */

static struct {
	void (*fn)(void *arg, enum kl_diameter_log_level level, const char *msg);
	void *arg;
	enum kl_diameter_log_level level;
} g_log = { NULL, NULL, KL_DIAMETER_LOG_INFO };

/* freeDiameter is process-global: one instance, started once. */
static int g_started;
static struct kl_diameter *g_d;
static int g_stopping; /* freeDiameter's shutdown lines are not errors */

void kl_dia_log(enum kl_diameter_log_level l, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (l > g_log.level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (g_log.fn)
		g_log.fn(g_log.arg, l, buf);
	else
		fprintf(stderr, "keyline diameter: %s\n", buf);
}

/* freeDiameter's own lines. Its DEBUG traces are never passed on: some of them dump whole
 * messages, keys included. */
static void fd_logger(int fdlevel, const char *format, va_list args)
{
	enum kl_diameter_log_level l;
	char buf[1024];

	if (fdlevel < FD_LOG_NOTICE)
		return;
	/* its notices (configuration dump, state changes) are detail: our own lines say what
	 * matters at INFO */
	l = fdlevel >= FD_LOG_ERROR ? KL_DIAMETER_LOG_ERROR : KL_DIAMETER_LOG_DEBUG;
	vsnprintf(buf, sizeof(buf), format, args);
	/* A peer closing its connection, and our own shutdown, are reported as errors; so are
	 * the call-site traces of its CHECK macros ("ERROR: in '<call>'") that follow every
	 * refused request, whose cause the hooks report. */
	if (l == KL_DIAMETER_LOG_ERROR) {
		if (!strncmp(buf, "ERROR: in '", 11))
			l = KL_DIAMETER_LOG_DEBUG;
		else if (__atomic_load_n(&g_stopping, __ATOMIC_RELAXED) ||
			 strstr(buf, "fd_tls_rcvthr_core") || strstr(buf, "non-properly terminated"))
			l = KL_DIAMETER_LOG_INFO;
	}
	if (l > g_log.level)
		return;
	kl_dia_log(l, "freeDiameter: %s", buf);
}

/* ---- Result-Codes -------------------------------------------------------------------------- */

static const struct {
	uint32_t code;
	const char *name;
} rc_names[] = {
	{ 2001, "DIAMETER_SUCCESS" },
	{ 3001, "DIAMETER_COMMAND_UNSUPPORTED" },
	{ 3002, "DIAMETER_UNABLE_TO_DELIVER" },
	{ 3003, "DIAMETER_REALM_NOT_SERVED" },
	{ 3004, "DIAMETER_TOO_BUSY" },
	{ 3005, "DIAMETER_LOOP_DETECTED" },
	{ 3006, "DIAMETER_REDIRECT_INDICATION" },
	{ 3007, "DIAMETER_APPLICATION_UNSUPPORTED" },
	{ 3008, "DIAMETER_INVALID_HDR_BITS" },
	{ 3009, "DIAMETER_INVALID_AVP_BITS" },
	{ 3010, "DIAMETER_UNKNOWN_PEER" },
	{ 5001, "DIAMETER_AVP_UNSUPPORTED" },
	{ 5002, "DIAMETER_UNKNOWN_SESSION_ID" },
	{ 5003, "DIAMETER_AUTHORIZATION_REJECTED" },
	{ 5004, "DIAMETER_INVALID_AVP_VALUE" },
	{ 5005, "DIAMETER_MISSING_AVP" },
	{ 5006, "DIAMETER_RESOURCES_EXCEEDED" },
	{ 5007, "DIAMETER_CONTRADICTING_AVPS" },
	{ 5008, "DIAMETER_AVP_NOT_ALLOWED" },
	{ 5009, "DIAMETER_AVP_OCCURS_TOO_MANY_TIMES" },
	{ 5010, "DIAMETER_NO_COMMON_APPLICATION" },
	{ 5011, "DIAMETER_UNSUPPORTED_VERSION" },
	{ 5012, "DIAMETER_UNABLE_TO_COMPLY" },
	{ 5013, "DIAMETER_INVALID_BIT_IN_HEADER" },
	{ 5014, "DIAMETER_INVALID_AVP_LENGTH" },
	{ 5015, "DIAMETER_INVALID_MESSAGE_LENGTH" },
	{ 5016, "DIAMETER_INVALID_AVP_BIT_COMBO" },
	{ 5017, "DIAMETER_NO_COMMON_SECURITY" },
};

const char *kl_dia_rc_name(uint32_t code)
{
	for (size_t i = 0; i < sizeof(rc_names) / sizeof(rc_names[0]); i++)
		if (rc_names[i].code == code)
			return rc_names[i].name;
	return NULL;
}

const char *kl_diameter_result_name(uint32_t code)
{
	const char *n = kl_dia_rc_name(code);

	return n ? n : "unknown";
}

const char *kl_diameter_type_name(enum kl_diameter_type t)
{
	switch (t) {
	case KL_DIAMETER_MUK:
		return "muk";
	case KL_DIAMETER_E2M:
		return "e2m";
	case KL_DIAMETER_APPID:
		return "appid";
	case KL_DIAMETER_EMSE:
		return "emse";
	case KL_DIAMETER_UE_GROUPS:
		return "ue-groups";
	case KL_DIAMETER_PAIR:
		return "pair";
	}
	return NULL;
}

/* ---- configuration ------------------------------------------------------------------------- */

/* A value written inside "..." of freeDiameter's configuration: no quote, no control byte. */
static int conf_str_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 1024)
		return 0;
	for (; *s; s++)
		if (*s == '"' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

int kl_dia_diamid_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n > 255)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

static int file_ok(const char *what, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (!conf_str_ok(path)) {
		kl_errf(err, errlen, "%s: missing, or holds a quote or control character", what);
		return -EINVAL;
	}
	if (access(path, R_OK) < 0) {
		kl_errf(err, errlen, "%s %s: %s", what, kl_shown(path), strerror(errno));
		return -EINVAL;
	}
	/* GnuTLS would block on a FIFO nobody writes */
	if (stat(path, &st) || !S_ISREG(st.st_mode)) {
		kl_errf(err, errlen, "%s %s: not a regular file", what, kl_shown(path));
		return -EINVAL;
	}
	return 0;
}

/* Write freeDiameter's configuration for p into a fresh temporary file (path). */
static int conf_write(const struct kl_diameter_params *p, int client, char *path, size_t cap,
		      char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	char realm[256];
	FILE *f;
	int fd, rc;

	if (!kl_dia_diamid_ok(p->identity)) {
		kl_errf(err, errlen, "identity: want an FQDN (letters, digits, '.', '-', '_'), got '%s'",
			p->identity ? kl_shown(p->identity) : "");
		return -EINVAL;
	}
	if (p->realm) {
		if (!kl_dia_diamid_ok(p->realm)) {
			kl_errf(err, errlen, "realm: want a domain name, got '%s'", kl_shown(p->realm));
			return -EINVAL;
		}
		snprintf(realm, sizeof(realm), "%s", p->realm);
	} else {
		const char *dot = strchr(p->identity, '.');

		if (!dot || !dot[1]) {
			kl_errf(err, errlen, "realm: not given, and identity '%s' has no domain part",
				kl_shown(p->identity));
			return -EINVAL;
		}
		snprintf(realm, sizeof(realm), "%s", dot + 1);
	}
	if ((rc = file_ok("tls_cert", p->tls_cert, err, errlen)) ||
	    (rc = file_ok("tls_key", p->tls_key, err, errlen)) ||
	    (rc = file_ok("tls_ca", p->tls_ca, err, errlen)) ||
	    (p->tls_crl && (rc = file_ok("tls_crl", p->tls_crl, err, errlen))))
		return rc;
	if (client) {
		if (!kl_dia_diamid_ok(p->peer_identity)) {
			kl_errf(err, errlen, "peer identity: want an FQDN, got '%s'",
				p->peer_identity ? kl_shown(p->peer_identity) : "");
			return -EINVAL;
		}
		if (!conf_str_ok(p->peer_address)) {
			kl_errf(err, errlen, "peer address: missing or invalid");
			return -EINVAL;
		}
	}
	snprintf(path, cap, "%s/kl-diameter-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		rc = -errno;
		kl_errf(err, errlen, "cannot create the freeDiameter configuration file %s: %s", path,
			strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		return rc;
	}
	fprintf(f,
		"# generated by keyline (kl_diameter)\n"
		"Identity = \"%s\";\n"
		"Realm = \"%s\";\n"
		"Port = 0;\n"	/* no Diameter without TLS */
		"SecPort = %u;\n"
		"No_SCTP;\n"
		"NoRelay;\n"
		"TLS_Cred = \"%s\", \"%s\";\n"
		"TLS_CA = \"%s\";\n",
		p->identity, realm, client ? 0u : (unsigned)(p->port ? p->port : KL_DIAMETER_DEFAULT_PORT),
		p->tls_cert, p->tls_key, p->tls_ca);
	if (p->tls_crl)
		fprintf(f, "TLS_CRL = \"%s\";\n", p->tls_crl);
	/* listen: not "ListenOn", whose parser drops loopback addresses; see add_listen */
	if (client)
		/* a short Tc: a refused or dropped connection is retried soon */
		fprintf(f,
			"TcTimer = 3;\n"
			"ConnectPeer = \"%s\" { ConnectTo = \"%s\"; Port = %u; No_SCTP; };\n",
			p->peer_identity, p->peer_address,
			(unsigned)(p->peer_port ? p->peer_port : KL_DIAMETER_DEFAULT_PORT));
	if (fclose(f)) {
		rc = -errno;
		kl_errf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		unlink(path);
		return rc;
	}
	return 0;
}

/* ---- dictionary ---------------------------------------------------------------------------- */

static const struct {
	uint32_t code;
	const char *name;
	const char *type;
} avp_defs[KL_DIA_I__COUNT] = {
#define KL_DIA_DEF(n, c, nm, t) [KL_DIA_I_##n] = { c, nm, t },
	KL_DIAMETER_AVPS(KL_DIA_DEF)
#undef KL_DIA_DEF
};

static int avp_index(uint32_t code)
{
	for (unsigned i = 0; i < KL_DIA_I__COUNT; i++)
		if (avp_defs[i].code == code)
			return (int)i;
	return -1;
}

static int dict_new(enum dict_object_type t, void *data, struct dict_object *parent,
		    struct dict_object **ref, const char *what, char *err, size_t errlen)
{
	int rc = fd_dict_new(fd_g_config->cnf_dict, t, data, parent, ref);

	/* EEXIST: already defined (an operator's dictionary extension); ref points at it */
	if (rc && !(rc == EEXIST && ref && *ref)) {
		kl_errf(err, errlen, "dictionary: cannot define %s: %s", what, strerror(rc));
		return -EINVAL;
	}
	return 0;
}

int kl_dia_dict_avp(const char *name, struct dict_object **o, char *err, size_t errlen)
{
	if (fd_dict_search(fd_g_config->cnf_dict, DICT_AVP, AVP_BY_NAME, name, o, ENOENT) || !*o) {
		kl_errf(err, errlen, "dictionary: base AVP %s missing", name);
		return -EINVAL;
	}
	return 0;
}

static int dict_rule(struct dict_object *parent, struct dict_object *avp, enum rule_position pos,
		     unsigned order, int min, int max, char *err, size_t errlen)
{
	struct dict_rule_data r = { avp, pos, order, min, max };

	return dict_new(DICT_RULE, &r, parent, NULL, "a rule", err, errlen);
}

static int dict_init(struct kl_diameter *d, char *err, size_t errlen)
{
	struct dictionary *dict = fd_g_config->cnf_dict;
	struct kl_dia_dict *k = &d->dict;
	struct dict_vendor_data vd = { d->vendor_id, "keyline" };
	struct dict_application_data ad = { d->app_id, "keyline key feed" };
	struct dict_type_data et = { AVP_TYPE_INTEGER32, "Enumerated(KL-Entry-Type)", NULL, NULL,
				     NULL, NULL, NULL };
	static const char *const enum_names[] = { NULL,	       "MUK",	    "E2M", "APPID",
						  "EMSE", "UE-GROUPS", "PAIR" };
	struct dict_object *t_utf8 = NULL, *t_time = NULL, *t_enum = NULL;
	struct dict_object *cmds[4];
	int rc;

	if ((rc = dict_new(DICT_VENDOR, &vd, NULL, &k->vendor, "the vendor", err, errlen)) ||
	    (rc = dict_new(DICT_APPLICATION, &ad, k->vendor, &k->app, "the application", err,
			   errlen)))
		return rc;
	if (fd_dict_search(dict, DICT_TYPE, TYPE_BY_NAME, "UTF8String", &t_utf8, ENOENT) ||
	    fd_dict_search(dict, DICT_TYPE, TYPE_BY_NAME, "Time", &t_time, ENOENT) || !t_utf8 ||
	    !t_time) {
		kl_errf(err, errlen, "dictionary: base types UTF8String/Time missing");
		return -EINVAL;
	}
	if ((rc = dict_new(DICT_TYPE, &et, k->app, &t_enum, "KL-Entry-Type's type", err, errlen)))
		return rc;
	for (int v = KL_DIAMETER_MUK; v <= KL_DIAMETER_TYPE_LAST; v++) {
		struct dict_enumval_data ev = { (char *)enum_names[v], { .i32 = v } };

		if ((rc = dict_new(DICT_ENUMVAL, &ev, t_enum, NULL, "an entry type", err, errlen)))
			return rc;
	}
	for (unsigned i = 0; i < KL_DIA_I__COUNT; i++) {
		struct dict_avp_data a = { avp_defs[i].code, d->vendor_id, (char *)avp_defs[i].name,
					   AVP_FLAG_VENDOR | AVP_FLAG_MANDATORY,
					   AVP_FLAG_VENDOR | AVP_FLAG_MANDATORY, AVP_TYPE_OCTETSTRING };
		struct dict_object *parent = NULL;
		const char *t = avp_defs[i].type;

		if (!strcmp(t, "UTF8String")) {
			parent = t_utf8;
		} else if (!strcmp(t, "Time")) {
			parent = t_time;
		} else if (!strcmp(t, "Enumerated")) {
			parent = t_enum;
			a.avp_basetype = AVP_TYPE_INTEGER32;
		} else if (!strcmp(t, "Unsigned32")) {
			a.avp_basetype = AVP_TYPE_UNSIGNED32;
		} else if (!strcmp(t, "Grouped")) {
			a.avp_basetype = AVP_TYPE_GROUPED;
		}
		if ((rc = dict_new(DICT_AVP, &a, parent, &k->avp[i], avp_defs[i].name, err, errlen)))
			return rc;
	}
	if ((rc = dict_rule(k->avp[KL_DIA_I_KEY_GROUP], k->avp[KL_DIA_I_KEY_DOMAIN_ID],
			    RULE_REQUIRED, 0, -1, 1, err, errlen)) ||
	    (rc = dict_rule(k->avp[KL_DIA_I_KEY_GROUP], k->avp[KL_DIA_I_KEY_GROUP_ID],
			    RULE_REQUIRED, 0, -1, 1, err, errlen)))
		return rc;

	if ((rc = kl_dia_dict_avp("Session-Id", &k->session_id, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Vendor-Specific-Application-Id", &k->vsai, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Vendor-Id", &k->vendor_id, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Auth-Application-Id", &k->auth_app_id, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Auth-Session-State", &k->auth_session_state, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Origin-Host", &k->origin_host, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Origin-Realm", &k->origin_realm, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Destination-Host", &k->dest_host, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Destination-Realm", &k->dest_realm, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Result-Code", &k->result_code, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Error-Message", &k->error_message, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Failed-AVP", &k->failed_avp, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Proxy-Info", &k->proxy_info, err, errlen)) ||
	    (rc = kl_dia_dict_avp("Route-Record", &k->route_record, err, errlen)))
		return rc;

	{
		struct dict_cmd_data c[4] = {
			{ KL_DIAMETER_CMD_PUSH, "Key-Push-Request",
			  CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE | CMD_FLAG_ERROR,
			  CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE },
			{ KL_DIAMETER_CMD_PUSH, "Key-Push-Answer",
			  CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE, CMD_FLAG_PROXIABLE },
			{ KL_DIAMETER_CMD_REMOVE, "Key-Remove-Request",
			  CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE | CMD_FLAG_ERROR,
			  CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE },
			{ KL_DIAMETER_CMD_REMOVE, "Key-Remove-Answer",
			  CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE, CMD_FLAG_PROXIABLE },
		};

		for (unsigned i = 0; i < 4; i++)
			if ((rc = dict_new(DICT_COMMAND, &c[i], k->app, &cmds[i], c[i].cmd_name, err,
					   errlen)))
				return rc;
		k->kpr = cmds[0];
		k->kpa = cmds[1];
		k->krr = cmds[2];
		k->kra = cmds[3];
	}
	for (unsigned r = 0; r < 4; r += 2) {
		struct dict_object *q = cmds[r], *a = cmds[r + 1];

		if ((rc = dict_rule(q, k->session_id, RULE_FIXED_HEAD, 1, 1, 1, err, errlen)) ||
		    (rc = dict_rule(q, k->vsai, RULE_REQUIRED, 0, -1, 1, err, errlen)) ||
		    (rc = dict_rule(q, k->auth_session_state, RULE_REQUIRED, 0, -1, 1, err, errlen)) ||
		    (rc = dict_rule(q, k->origin_host, RULE_REQUIRED, 0, -1, 1, err, errlen)) ||
		    (rc = dict_rule(q, k->origin_realm, RULE_REQUIRED, 0, -1, 1, err, errlen)) ||
		    (rc = dict_rule(q, k->dest_host, RULE_OPTIONAL, 0, -1, 1, err, errlen)) ||
		    (rc = dict_rule(q, k->dest_realm, RULE_REQUIRED, 0, -1, 1, err, errlen)) ||
		    (rc = dict_rule(q, k->avp[KL_DIA_I_ENTRY_TYPE], RULE_REQUIRED, 0, -1, 1, err,
				    errlen)) ||
		    (rc = dict_rule(q, k->proxy_info, RULE_OPTIONAL, 0, -1, -1, err, errlen)) ||
		    (rc = dict_rule(q, k->route_record, RULE_OPTIONAL, 0, -1, -1, err, errlen)))
			return rc;
		for (unsigned i = KL_DIA_I_USER_IDENTITY; i < KL_DIA_I__COUNT; i++)
			if (i != KL_DIA_I_KEY_DOMAIN_ID && i != KL_DIA_I_KEY_GROUP_ID &&
			    (rc = dict_rule(q, k->avp[i], RULE_OPTIONAL, 0, -1,
					    i == KL_DIA_I_KEY_GROUP ? KL_DIAMETER_MAX_GROUPS : 1,
					    err, errlen)))
				return rc;
		if ((rc = dict_rule(a, k->session_id, RULE_FIXED_HEAD, 1, 1, 1, err, errlen)) ||
		    (rc = dict_rule(a, k->vsai, RULE_OPTIONAL, 0, -1, 1, err, errlen)) ||
		    (rc = dict_rule(a, k->auth_session_state, RULE_OPTIONAL, 0, -1, 1, err, errlen)) ||
		    (rc = dict_rule(a, k->result_code, RULE_REQUIRED, 0, -1, 1, err, errlen)) ||
		    (rc = dict_rule(a, k->origin_host, RULE_REQUIRED, 0, -1, 1, err, errlen)) ||
		    (rc = dict_rule(a, k->origin_realm, RULE_REQUIRED, 0, -1, 1, err, errlen)) ||
		    (rc = dict_rule(a, k->error_message, RULE_OPTIONAL, 0, -1, 1, err, errlen)) ||
		    (rc = dict_rule(a, k->failed_avp, RULE_OPTIONAL, 0, -1, 1, err, errlen)) ||
		    (rc = dict_rule(a, k->proxy_info, RULE_OPTIONAL, 0, -1, -1, err, errlen)))
			return rc;
	}
	return 0;
}

/* ---- hooks: freeDiameter's default hooks dump whole messages; ours log a line ------------- */

static const char *peer_name(struct peer_hdr *peer)
{
	return peer && peer->info.pi_diamid ? (const char *)peer->info.pi_diamid : "<unknown peer>";
}

static const char *msg_source(struct msg *m)
{
	DiamId_t id = NULL;

	if (!m || fd_msg_source_get(m, &id, NULL) || !id)
		return "<local>";
	return (const char *)id;
}

/* Result-Code and the first AVP code inside Failed-AVP of an answer. */
static void answer_summary(struct kl_diameter *d, struct msg *ans, uint32_t *rc, uint32_t *avp)
{
	struct avp *a = NULL, *c = NULL;
	struct avp_hdr *h;

	*rc = 0;
	*avp = 0;
	if (!d)
		return;
	if (!fd_msg_search_avp(ans, d->dict.result_code, &a) && a && !fd_msg_avp_hdr(a, &h) &&
	    h->avp_value)
		*rc = h->avp_value->u32;
	a = NULL;
	if (!fd_msg_search_avp(ans, d->dict.failed_avp, &a) && a &&
	    !fd_msg_browse(a, MSG_BRW_FIRST_CHILD, &c, NULL) && c && !fd_msg_avp_hdr(c, &h))
		*avp = h->avp_code;
}

static void on_hook(enum fd_hook_type type, struct msg *msg, struct peer_hdr *peer, void *other,
		    struct fd_hook_permsgdata *pmd, void *regdata)
{
	struct kl_diameter *d = regdata;
	struct msg_hdr *mh = NULL;
	uint32_t rc, avp;

	(void)pmd;
	switch (type) {
	case HOOK_MESSAGE_PARSING_ERROR:
		if (msg) {
			fd_msg_hdr(msg, &mh);
			kl_dia_log(KL_DIAMETER_LOG_WARNING,
				   "rejected command %u from %s: %s", mh ? mh->msg_code : 0,
				   peer ? peer_name(peer) : msg_source(msg),
				   other ? (const char *)other : "parse error");
		} else {
			const struct fd_cnx_rcvdata *r = other;

			kl_dia_log(KL_DIAMETER_LOG_WARNING,
				   "cannot parse %zu bytes from %s (not a Diameter message)",
				   r ? r->length : 0, peer_name(peer));
		}
		break;
	case HOOK_MESSAGE_PARSING_ERROR2: {
		struct msg *q = NULL;

		answer_summary(d, msg, &rc, &avp);
		fd_msg_answ_getq(msg, &q);
		kl_dia_log(KL_DIAMETER_LOG_WARNING, "answered %s to %s, AVP %u",
			   kl_diameter_result_name(rc), msg_source(q), avp);
		break;
	}
	case HOOK_MESSAGE_ROUTING_ERROR:
		kl_dia_log(KL_DIAMETER_LOG_WARNING, "routing error: %s",
			   other ? (const char *)other : "?");
		break;
	case HOOK_MESSAGE_DROPPED:
		kl_dia_log(KL_DIAMETER_LOG_WARNING, "message dropped: %s",
			   other ? (const char *)other : "?");
		break;
	case HOOK_PEER_CONNECT_FAILED:
		kl_dia_log(KL_DIAMETER_LOG_WARNING, "connection with %s failed: %s", peer_name(peer),
			   other ? (const char *)other : "?");
		break;
	case HOOK_PEER_CONNECT_SUCCESS: {
		char proto[64] = "?";

		if (peer)
			fd_peer_cnx_proto_info(peer, proto, sizeof(proto));
		kl_dia_log(KL_DIAMETER_LOG_INFO, "peer %s connected (%s)", peer_name(peer), proto);
		break;
	}
	default:
		break;
	}
}

/* ---- peer check (server): TLS certificate names the peer; optional allow list ------------ */

static int cert_names(const gnutls_datum_t *der, const char *id)
{
	gnutls_x509_crt_t c;
	int ok = 0;

	if (gnutls_x509_crt_init(&c) < 0)
		return 0;
	if (gnutls_x509_crt_import(c, der, GNUTLS_X509_FMT_DER) >= 0)
		ok = gnutls_x509_crt_check_hostname(c, id) != 0;
	gnutls_x509_crt_deinit(c);
	return ok;
}

static int validate_peer(struct peer_info *info, int *auth, int (**cb2)(struct peer_info *))
{
	struct kl_diameter *d = g_d;
	const char *id = info && info->pi_diamid ? (const char *)info->pi_diamid : "";

	(void)cb2;
	if (!d || d->client || !auth)
		return 0; /* no decision: freeDiameter refuses unknown peers */
	*auth = -1;
	if (!info->runtime.pir_cert_list || !info->runtime.pir_cert_list_size) {
		kl_dia_log(KL_DIAMETER_LOG_WARNING, "refused peer %s: no TLS certificate", id);
	} else if (!cert_names(&info->runtime.pir_cert_list[0], id)) {
		kl_dia_log(KL_DIAMETER_LOG_WARNING,
			   "refused peer %s: its certificate does not name that identity", id);
	} else if (d->allowed) {
		for (char **a = d->allowed; *a; a++)
			if (!strcasecmp(*a, id))
				*auth = 1;
		if (*auth < 0)
			kl_dia_log(KL_DIAMETER_LOG_WARNING,
				   "refused peer %s: not in the allowed peers", id);
	} else {
		*auth = 1;
	}
	if (*auth < 0) {
		pthread_mutex_lock(&d->lock);
		d->st.peers_refused++;
		kl_ctl_add(d->ctl, KL_CTL_DIAMETER_PEERS_REFUSED, 1);
		pthread_mutex_unlock(&d->lock);
	}
	return 0;
}

/* The local address to listen on (server) or to name in CER (client). freeDiameter's ListenOn
 * discards loopback addresses, which tests and a co-located HSS use; EP_ACCEPTALL keeps them. */
static int add_listen(const char *addr, char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	if ((rc = getaddrinfo(addr, NULL, &hints, &ai)) || !ai) {
		kl_errf(err, errlen, "listen: '%s' is not an IP address (%s)", kl_shown(addr),
			rc ? gai_strerror(rc) : "no result");
		return -EINVAL;
	}
	rc = fd_ep_add_merge(&fd_g_config->cnf_endpoints, ai->ai_addr, ai->ai_addrlen,
			     EP_FL_CONF | EP_ACCEPTALL);
	freeaddrinfo(ai);
	if (rc) {
		kl_errf(err, errlen, "listen: cannot use '%s': %s", kl_shown(addr), strerror(rc));
		return -EINVAL;
	}
	return 0;
}

/* ---- freeDiameter 1.2.1 TLS races, worked around ------------------------------------------- */

/*
 * GnuTLS allows one thread to receive while another sends on a session, never two senders.
 * freeDiameter breaks that: when the peer's close_notify arrives, its receiver thread calls
 * gnutls_bye(GNUTLS_SHUT_RDWR) (fd_tls_recv_handle_error), while the peer's state machine thread
 * sends a DPA (gnutls_record_send) or closes the session itself (fd_cnx_destroy's gnutls_bye);
 * one call frees the send buffer the other is writing. Under ASan that is a heap use after free
 * in about half of orderly Diameter/TLS closes (tests/diameter/fd_race_repro.py: 13 of 24);
 * without it, a read of freed memory or a double free (README "freeDiameter 1.2.1's TLS race").
 * These definitions interpose on GnuTLS's for the whole process (the executable's symbols come
 * first; libfdcore imports both), so they confine themselves to libfdcore's calls: a call whose
 * return address lies in libfdcore's code (its executable segments, found once with
 * dl_iterate_phdr) is serialised per session (16 stripes); any other caller - libmicrohttpd's
 * sessions of the NAF Key Center, libcurl, a test - goes straight to GnuTLS's function, with its
 * own `how`, no lock and no stripe. Return addresses rather than a registry of freeDiameter's
 * sessions: two compares per call and no state to keep (a registry needs gnutls_init and
 * gnutls_deinit interposed too, a lookup on every send, and a freed session's address reused by
 * another library's session would be misfiled). It relies on libfdcore calling both functions
 * with `call`, never a tail jump (true of 1.2.1: objdump -d shows five calls); tests check that
 * freeDiameter's sends do take the confined path (kl_diameter_tls_counts).
 * For freeDiameter's sessions only sends are serialised: gnutls_record_recv, which blocks, stays
 * concurrent as GnuTLS allows, and a bye only sends our close_notify (GNUTLS_SHUT_WR). A session
 * closed twice gets GnuTLS's own answer. KL_DIAMETER_NO_TLS_WORKAROUND=1 in the environment turns
 * the workaround off (every call passes through), to reproduce the race.
 */
#define TLS_STRIPES 16
#define TLS_FD_RANGES 4
static pthread_mutex_t tls_lock[TLS_STRIPES];
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int (*bye_real)(gnutls_session_t, gnutls_close_request_t);
static ssize_t (*send_real)(gnutls_session_t, const void *, size_t);
static struct {
	uintptr_t lo, hi;
} tls_fd_code[TLS_FD_RANGES]; /* libfdcore's executable segments, [lo, hi) */
static unsigned tls_fd_n;
static int tls_off; /* KL_DIAMETER_NO_TLS_WORKAROUND */
/* sends confined, byes confined, sends passed through, byes passed through; one cache line each
 * so GnuTLS users on other threads do not share one with freeDiameter's */
static struct {
	_Alignas(64) uint64_t n;
} tls_count[4];

static int tls_fd_segments(struct dl_phdr_info *info, size_t size, void *arg)
{
	const char *name = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;

	(void)size;
	(void)arg;
	name = name ? name + 1 : info->dlpi_name;
	if (!name || strncmp(name, "libfdcore.so", 12))
		return 0;
	for (unsigned i = 0; i < info->dlpi_phnum && tls_fd_n < TLS_FD_RANGES; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		tls_fd_code[tls_fd_n].lo = info->dlpi_addr + ph->p_vaddr;
		tls_fd_code[tls_fd_n].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
		tls_fd_n++;
	}
	return 1;
}

static void tls_init(void)
{
	const char *off = getenv("KL_DIAMETER_NO_TLS_WORKAROUND");

	for (unsigned i = 0; i < TLS_STRIPES; i++)
		pthread_mutex_init(&tls_lock[i], NULL);
	bye_real = (int (*)(gnutls_session_t, gnutls_close_request_t))dlsym(RTLD_NEXT,
									     "gnutls_bye");
	send_real = (ssize_t(*)(gnutls_session_t, const void *, size_t))dlsym(
		RTLD_NEXT, "gnutls_record_send");
	tls_off = off && *off && strcmp(off, "0");
	/* libfdcore is a DT_NEEDED library of every program linking this file: loaded before
	 * any call can come; a process without it confines nothing */
	dl_iterate_phdr(tls_fd_segments, NULL);
}

/* Is the caller (a return address) freeDiameter, and the workaround on? */
static int tls_confined(const void *ret)
{
	uintptr_t a = (uintptr_t)ret;

	pthread_once(&tls_once, tls_init);
	if (tls_off)
		return 0;
	for (unsigned i = 0; i < tls_fd_n; i++)
		if (a >= tls_fd_code[i].lo && a < tls_fd_code[i].hi)
			return 1;
	return 0;
}

static pthread_mutex_t *tls_stripe(gnutls_session_t session)
{
	return &tls_lock[((uintptr_t)session >> 4) % TLS_STRIPES];
}

/* freeDiameter ends its threads with pthread_cancel, and a send is a cancellation point: the
 * lock must not stay taken by a cancelled thread. */
static void tls_unlock(void *m)
{
	pthread_mutex_unlock(m);
}

void kl_diameter_tls_counts(uint64_t counts[4])
{
	for (unsigned i = 0; i < 4; i++)
		counts[i] = __atomic_load_n(&tls_count[i].n, __ATOMIC_RELAXED);
}

int gnutls_bye(gnutls_session_t session, gnutls_close_request_t how)
{
	pthread_mutex_t *m;
	int rc;

	if (!tls_confined(__builtin_return_address(0))) {
		__atomic_add_fetch(&tls_count[3].n, 1, __ATOMIC_RELAXED);
		return bye_real ? bye_real(session, how) : GNUTLS_E_INTERNAL_ERROR;
	}
	__atomic_add_fetch(&tls_count[1].n, 1, __ATOMIC_RELAXED);
	if (!bye_real)
		return GNUTLS_E_INTERNAL_ERROR;
	m = tls_stripe(session);
	pthread_mutex_lock(m);
	pthread_cleanup_push(tls_unlock, m);
	/* SHUT_RDWR would wait, holding the lock, for a close_notify the peer may never send
	 * (freeDiameter's receiver asks for it after it already got one): send ours and go */
	rc = bye_real(session, GNUTLS_SHUT_WR);
	pthread_cleanup_pop(1);
	return rc;
}

ssize_t gnutls_record_send(gnutls_session_t session, const void *data, size_t len)
{
	pthread_mutex_t *m;
	ssize_t rc;

	if (!tls_confined(__builtin_return_address(0))) {
		__atomic_add_fetch(&tls_count[2].n, 1, __ATOMIC_RELAXED);
		return send_real ? send_real(session, data, len) : GNUTLS_E_INTERNAL_ERROR;
	}
	__atomic_add_fetch(&tls_count[0].n, 1, __ATOMIC_RELAXED);
	if (!send_real)
		return GNUTLS_E_INTERNAL_ERROR;
	m = tls_stripe(session);
	pthread_mutex_lock(m);
	pthread_cleanup_push(tls_unlock, m);
	rc = send_real(session, data, len);
	pthread_cleanup_pop(1);
	return rc;
}

static void tls_log_counts(void)
{
	uint64_t c[4];

	kl_diameter_tls_counts(c);
	kl_dia_log(KL_DIAMETER_LOG_INFO,
		   "TLS workaround%s: freeDiameter's sessions %llu sends, %llu byes serialised; "
		   "other callers' %llu sends, %llu byes passed through",
		   tls_off ? " (off: KL_DIAMETER_NO_TLS_WORKAROUND)" : "", (unsigned long long)c[0],
		   (unsigned long long)c[1], (unsigned long long)c[2], (unsigned long long)c[3]);
}

/* ---- core start / stop --------------------------------------------------------------------- */

int kl_dia_core_start(struct kl_diameter *d, const struct kl_diameter_params *p, char *err,
		      size_t errlen)
{
	char path[4096];
	struct sigaction sa;
	int rc, generated = 0;

	if (__atomic_exchange_n(&g_started, 1, __ATOMIC_ACQ_REL)) {
		kl_errf(err, errlen, "freeDiameter was already started in this process");
		return -EALREADY;
	}
	g_log.fn = p->log;
	g_log.arg = p->log_arg;
	g_log.level = p->log_level <= KL_DIAMETER_LOG_DEBUG ? p->log_level : KL_DIAMETER_LOG_DEBUG;
	if (p->fd_conf) {
		rc = file_ok("fd_conf", p->fd_conf, err, errlen);
		snprintf(path, sizeof(path), "%s", p->fd_conf);
	} else {
		rc = conf_write(p, d->client, path, sizeof(path), err, errlen);
		generated = !rc;
	}
	if (rc) {
		/* freeDiameter was not touched: a corrected retry may start it */
		__atomic_store_n(&g_started, 0, __ATOMIC_RELEASE);
		return rc;
	}
	/* A peer closing its TLS connection must not kill the process on the next write. */
	if (!sigaction(SIGPIPE, NULL, &sa) && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	fd_g_debug_lvl = FD_LOG_NOTICE;
	fd_log_handler_register(fd_logger);
	g_d = d;
	if ((rc = fd_core_initialize())) {
		kl_errf(err, errlen, "freeDiameter initialisation failed: %s", strerror(rc));
		goto fail;
	}
	if ((rc = fd_core_parseconf(path))) {
		kl_errf(err, errlen,
			"freeDiameter refused its configuration (%s): %s; see its log lines",
			p->fd_conf ? p->fd_conf : "generated", strerror(rc));
		goto fail_core;
	}
	if (generated)
		unlink(path);
	generated = 0;
	if (p->listen && !p->fd_conf && (rc = -add_listen(p->listen, err, errlen)))
		goto fail_core;
	if ((rc = -dict_init(d, err, errlen)))
		goto fail_core;
	if ((rc = fd_disp_app_support(d->dict.app, d->dict.vendor, 1, 0))) {
		kl_errf(err, errlen, "cannot register the application: %s", strerror(rc));
		goto fail_core;
	}
	if ((rc = fd_hook_register(fd_hook_mask_helper(0, HOOK_DATA_RECEIVED, HOOK_MESSAGE_RECEIVED,
						       HOOK_MESSAGE_LOCAL, HOOK_MESSAGE_SENDING,
						       HOOK_MESSAGE_SENT, HOOK_MESSAGE_FAILOVER,
						       HOOK_MESSAGE_PARSING_ERROR,
						       HOOK_MESSAGE_ROUTING_ERROR,
						       HOOK_MESSAGE_ROUTING_FORWARD,
						       HOOK_MESSAGE_ROUTING_LOCAL, HOOK_MESSAGE_DROPPED,
						       HOOK_PEER_CONNECT_FAILED,
						       HOOK_PEER_CONNECT_SUCCESS,
						       HOOK_MESSAGE_PARSING_ERROR2, -1),
				   on_hook, d, NULL, &d->hook))) {
		kl_errf(err, errlen, "cannot register the hooks: %s", strerror(rc));
		goto fail_core;
	}
	if (!d->client && (rc = fd_peer_validate_register(validate_peer))) {
		kl_errf(err, errlen, "cannot register the peer check: %s", strerror(rc));
		goto fail_core;
	}
	return 0;

fail_core:
	if (generated)
		unlink(path);
	/* freeDiameter cannot be initialised twice: g_started stays set */
	__atomic_store_n(&g_stopping, 1, __ATOMIC_RELAXED);
	fd_core_shutdown();
	fd_core_wait_shutdown_complete();
	g_d = NULL;
	return -(rc > 0 ? rc : EIO);
fail:
	if (generated)
		unlink(path);
	g_d = NULL;
	return -EIO;
}

void kl_dia_core_stop(void)
{
	__atomic_store_n(&g_stopping, 1, __ATOMIC_RELAXED);
	fd_core_shutdown();
	fd_core_wait_shutdown_complete();
	tls_log_counts();
	g_d = NULL;
}

/* ---- server: request validation ------------------------------------------------------------ */

struct kl_dia_item {
	struct kl_dia_item *next;
	struct msg *req;
	struct kl_diameter_entry e;
	int rc; /* the handler's result, kept until the commit */
	char origin[96];
};

/* Why a request is refused: Result-Code, the AVP to name in Failed-AVP, and words for logs. */
struct reject {
	uint32_t code;
	int idx;		 /* our AVP index, or -1 */
	struct avp_hdr *src;	 /* the received AVP (copied, a key zeroed), or NULL: a blank one */
	struct avp_hdr *group;	 /* src sits inside this KL-MBMS-Key-Group */
	const char *why;
};

#define BIT(i) (1u << (i))
#define B_UID BIT(KL_DIA_I_USER_IDENTITY)
#define B_IMSI BIT(KL_DIA_I_IMSI)
#define B_KEY BIT(KL_DIA_I_KEY)
#define B_KID BIT(KL_DIA_I_KEY_ID)
#define B_EXP BIT(KL_DIA_I_EXPIRY)
#define B_APP BIT(KL_DIA_I_APP_IDENTITY)
#define B_EMSE BIT(KL_DIA_I_EMSE_ID)
#define B_GRP BIT(KL_DIA_I_KEY_GROUP)
#define B_PEER BIT(KL_DIA_I_PEER_IDENTITY)
#define B_SVC BIT(KL_DIA_I_SERVICES)

/* [op][type]: required AVPs, and optional ones. The table of kl_diameter.h. */
static const struct {
	uint32_t req, opt;
} shape[2][KL_DIAMETER_TYPE_LAST + 1] = {
	[KL_DIAMETER_PUSH] = {
		[KL_DIAMETER_MUK] = { B_UID | B_KEY, B_EXP | B_SVC },
		[KL_DIAMETER_E2M] = { B_IMSI | B_KID | B_KEY, B_EXP },
		[KL_DIAMETER_APPID] = { B_APP | B_IMSI, 0 },
		[KL_DIAMETER_EMSE] = { B_EMSE | B_KEY, 0 },
		[KL_DIAMETER_UE_GROUPS] = { B_UID, B_GRP },
		[KL_DIAMETER_PAIR] = { B_PEER | B_KEY, B_EXP },
	},
	[KL_DIAMETER_REMOVE] = {
		[KL_DIAMETER_MUK] = { B_UID, 0 },
		[KL_DIAMETER_E2M] = { B_IMSI, B_KID },
		[KL_DIAMETER_APPID] = { B_APP, 0 },
		[KL_DIAMETER_EMSE] = { B_EMSE, 0 },
		[KL_DIAMETER_UE_GROUPS] = { B_UID, B_GRP },
		[KL_DIAMETER_PAIR] = { B_PEER, 0 },
	},
};

static int rej(struct reject *r, uint32_t code, int idx, struct avp_hdr *src, const char *why)
{
	r->code = code;
	r->idx = idx;
	r->src = src;
	r->why = why;
	return -1;
}

static int take_string(struct avp_hdr *h, int idx, uint8_t *out, uint16_t *len,
		       struct reject *r)
{
	size_t n = h->avp_value->os.len;

	if (!n || n > KL_DIAMETER_ID_MAX)
		return rej(r, KL_DIAMETER_INVALID_AVP_VALUE, idx, h, "identity not 1..128 bytes");
	if (!kl_utf8_ok(h->avp_value->os.data, n))
		return rej(r, KL_DIAMETER_INVALID_AVP_VALUE, idx, h, "identity is not UTF-8");
	memcpy(out, h->avp_value->os.data, n);
	*len = (uint16_t)n;
	return 0;
}

static int take_group(struct kl_diameter *d, struct avp *g, struct avp_hdr *gh,
		      struct kl_diameter_group *out, struct reject *r)
{
	struct avp *c = NULL;
	int have_dom = 0, have_grp = 0;

	for (fd_msg_browse(g, MSG_BRW_FIRST_CHILD, &c, NULL); c;
	     fd_msg_browse(c, MSG_BRW_NEXT, &c, NULL)) {
		struct avp_hdr *h;

		if (fd_msg_avp_hdr(c, &h) || !(h->avp_flags & AVP_FLAG_VENDOR) ||
		    h->avp_vendor != d->vendor_id || !h->avp_value)
			continue;
		if (h->avp_code == KL_DIAMETER_AVP_KEY_DOMAIN_ID) {
			if (h->avp_value->os.len != 3) {
				r->group = gh;
				return rej(r, KL_DIAMETER_INVALID_AVP_LENGTH, KL_DIA_I_KEY_DOMAIN_ID, h,
					   "Key-Domain-Id is not 3 bytes");
			}
			memcpy(out->domain, h->avp_value->os.data, 3);
			have_dom = 1;
		} else if (h->avp_code == KL_DIAMETER_AVP_KEY_GROUP_ID) {
			if (h->avp_value->u32 > 0xFFFF) {
				r->group = gh;
				return rej(r, KL_DIAMETER_INVALID_AVP_VALUE, KL_DIA_I_KEY_GROUP_ID, h,
					   "Key-Group-Id over 65535");
			}
			out->group = (uint16_t)h->avp_value->u32;
			have_grp = 1;
		}
	}
	/* the dictionary rules require both; kept as a guard */
	if (!have_dom || !have_grp)
		return rej(r, KL_DIAMETER_MISSING_AVP,
			   have_dom ? KL_DIA_I_KEY_GROUP_ID : KL_DIA_I_KEY_DOMAIN_ID, NULL,
			   "incomplete MBMS-Key-Group");
	return 0;
}

/*
 * Decode and validate a request into e. Key AVP bytes are wiped from the message once copied.
 * @return 0, or -1 with r filled.
 */
static int decode(struct kl_diameter *d, struct msg *m, struct kl_diameter_entry *e,
		  char *origin, size_t olen, struct reject *r)
{
	struct avp_hdr *seen[KL_DIA_I__COUNT] = { 0 };
	struct avp *grp[KL_DIAMETER_MAX_GROUPS];
	struct avp_hdr *grph[KL_DIAMETER_MAX_GROUPS];
	struct avp *a = NULL;
	struct msg_hdr *mh;
	uint32_t present = 0, allowed;
	unsigned ngrp = 0;
	int32_t type;

	r->idx = -1;
	if (fd_msg_hdr(m, &mh))
		return rej(r, KL_DIAMETER_UNABLE_TO_COMPLY, -1, NULL, "unreadable header");
	e->op = mh->msg_code == KL_DIAMETER_CMD_PUSH ? KL_DIAMETER_PUSH : KL_DIAMETER_REMOVE;
	for (fd_msg_browse(m, MSG_BRW_FIRST_CHILD, &a, NULL); a;
	     fd_msg_browse(a, MSG_BRW_NEXT, &a, NULL)) {
		struct avp_hdr *h;
		int i;

		if (fd_msg_avp_hdr(a, &h))
			continue;
		if (!(h->avp_flags & AVP_FLAG_VENDOR)) {
			if (h->avp_code == 264 && h->avp_value) { /* Origin-Host, for the logs */
				snprintf(origin, olen, "%.*s",
					 (int)(h->avp_value->os.len < olen ? h->avp_value->os.len
									   : olen - 1),
					 (const char *)h->avp_value->os.data);
				/* the peer's bytes: nothing that could forge or break a log line */
				for (char *c = origin; *c; c++)
					if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
						*c = '?';
			}
			continue;
		}
		/* unknown AVPs with the M bit never get here (freeDiameter answers 5001);
		 * without it they are ignored, as RFC 6733 says */
		if (h->avp_vendor != d->vendor_id || (i = avp_index(h->avp_code)) < 0)
			continue;
		if (i == KL_DIA_I_KEY_GROUP) {
			if (ngrp < KL_DIAMETER_MAX_GROUPS) {
				grph[ngrp] = h;
				grp[ngrp++] = a;
			}
		} else if (!h->avp_value) {
			continue;
		}
		present |= BIT(i);
		if (!seen[i])
			seen[i] = h;
	}

	/* Copy the key out and wipe it from the message before any check can reject the request:
	 * the rejected request (answer's parent) and its raw buffer are freed unwiped. */
	if (seen[KL_DIA_I_KEY]) {
		struct avp_hdr *h = seen[KL_DIA_I_KEY];
		size_t n = h->avp_value->os.len;

		if (n) {
			memcpy(e->key, h->avp_value->os.data, n < sizeof(e->key) ? n : sizeof(e->key));
			kl_memzero(h->avp_value->os.data, n);
		}
	}

	type = seen[KL_DIA_I_ENTRY_TYPE] ? seen[KL_DIA_I_ENTRY_TYPE]->avp_value->i32 : 0;
	if (!seen[KL_DIA_I_ENTRY_TYPE]) /* the dictionary rules require it; kept as a guard */
		return rej(r, KL_DIAMETER_MISSING_AVP, KL_DIA_I_ENTRY_TYPE, NULL, "no entry type");
	if (type < KL_DIAMETER_MUK || type > KL_DIAMETER_TYPE_LAST)
		return rej(r, KL_DIAMETER_INVALID_AVP_VALUE, KL_DIA_I_ENTRY_TYPE,
			   seen[KL_DIA_I_ENTRY_TYPE], "unknown entry type");
	e->type = (enum kl_diameter_type)type;
	allowed = shape[e->op][type].req | shape[e->op][type].opt | BIT(KL_DIA_I_ENTRY_TYPE);
	for (unsigned i = 0; i < KL_DIA_I__COUNT; i++)
		if ((present & BIT(i)) && !(allowed & BIT(i)))
			return rej(r, KL_DIAMETER_AVP_NOT_ALLOWED, (int)i,
				   i == KL_DIA_I_KEY_GROUP ? grph[0] : seen[i],
				   "AVP not taken by this entry type");
	for (unsigned i = 0; i < KL_DIA_I__COUNT; i++)
		if ((shape[e->op][type].req & BIT(i)) && !(present & BIT(i)))
			return rej(r, KL_DIAMETER_MISSING_AVP, (int)i, NULL,
				   "required AVP missing for this entry type");

	if (seen[KL_DIA_I_USER_IDENTITY] &&
	    take_string(seen[KL_DIA_I_USER_IDENTITY], KL_DIA_I_USER_IDENTITY, e->id, &e->id_len, r))
		return -1;
	if (seen[KL_DIA_I_APP_IDENTITY] &&
	    take_string(seen[KL_DIA_I_APP_IDENTITY], KL_DIA_I_APP_IDENTITY, e->id, &e->id_len, r))
		return -1;
	if (seen[KL_DIA_I_EMSE_ID] &&
	    take_string(seen[KL_DIA_I_EMSE_ID], KL_DIA_I_EMSE_ID, e->id, &e->id_len, r))
		return -1;
	if (seen[KL_DIA_I_PEER_IDENTITY] &&
	    take_string(seen[KL_DIA_I_PEER_IDENTITY], KL_DIA_I_PEER_IDENTITY, e->id, &e->id_len, r))
		return -1;
	if (seen[KL_DIA_I_SERVICES]) {
		uint32_t v = seen[KL_DIA_I_SERVICES]->avp_value->u32;

		if (!v || v > KL_DIAMETER_SERVICES_ALL)
			return rej(r, KL_DIAMETER_INVALID_AVP_VALUE, KL_DIA_I_SERVICES,
				   seen[KL_DIA_I_SERVICES], "Services not 1..15");
		e->services = (uint8_t)v;
	}
	if (seen[KL_DIA_I_IMSI]) {
		struct avp_hdr *h = seen[KL_DIA_I_IMSI];
		size_t n = h->avp_value->os.len;

		if (!n || n > KL_DIAMETER_IMSI_MAX)
			return rej(r, KL_DIAMETER_INVALID_AVP_VALUE, KL_DIA_I_IMSI, h,
				   "IMSI not 1..15 digits");
		for (size_t k = 0; k < n; k++)
			if (h->avp_value->os.data[k] < '0' || h->avp_value->os.data[k] > '9')
				return rej(r, KL_DIAMETER_INVALID_AVP_VALUE, KL_DIA_I_IMSI, h,
					   "IMSI not 1..15 digits");
		memcpy(e->imsi, h->avp_value->os.data, n);
		e->imsi[n] = 0;
	}
	if (seen[KL_DIA_I_KEY]) {
		struct avp_hdr *h = seen[KL_DIA_I_KEY];
		size_t n = h->avp_value->os.len;

		if (e->type == KL_DIAMETER_E2M ? n != KL_DIAMETER_E2M_KEY_LEN
					       : (n < KL_DIAMETER_KEY_MIN || n > KL_DIAMETER_KEY_MAX))
			return rej(r, KL_DIAMETER_INVALID_AVP_LENGTH, KL_DIA_I_KEY, h,
				   e->type == KL_DIAMETER_E2M ? "e2m_int_key is not 32 bytes"
							      : "key not 16..64 bytes");
		e->key_len = (uint8_t)n; /* copied (and wiped) above */
	}
	if (seen[KL_DIA_I_KEY_ID]) {
		e->has_key_id = 1;
		e->key_id = seen[KL_DIA_I_KEY_ID]->avp_value->u32;
	}
	if (seen[KL_DIA_I_EXPIRY]) {
		struct avp_hdr *h = seen[KL_DIA_I_EXPIRY];
		const uint8_t *b = h->avp_value->os.data;

		if (h->avp_value->os.len != 4)
			return rej(r, KL_DIAMETER_INVALID_AVP_LENGTH, KL_DIA_I_EXPIRY, h,
				   "Time is not 4 bytes");
		e->expires = (uint64_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
					(uint32_t)b[2] << 8 | b[3])
			     << 32;
	}
	for (unsigned g = 0; g < ngrp; g++)
		if (take_group(d, grp[g], grph[g], &e->groups[g], r))
			return -1;
	e->ngroups = (uint8_t)ngrp;
	return 0;
}

/* ---- server: answers ----------------------------------------------------------------------- */

/* A copy of a received AVP (or a blank one of our AVP idx) for Failed-AVP; a key's data is
 * zeroed. */
static struct avp *failed_child(struct kl_diameter *d, int idx, const struct avp_hdr *src)
{
	struct dict_object *model = d->dict.avp[idx];
	struct dict_avp_data ad;
	union avp_value v;
	struct avp *a = NULL;
	uint8_t zeros[KL_DIAMETER_KEY_MAX] = { 0 };

	if (fd_dict_getval(model, &ad) || fd_msg_avp_new(model, 0, &a))
		return NULL;
	memset(&v, 0, sizeof(v));
	switch (ad.avp_basetype) {
	case AVP_TYPE_GROUPED:
		return a;
	case AVP_TYPE_OCTETSTRING:
		if (src && src->avp_value && idx != KL_DIA_I_KEY) {
			v.os = src->avp_value->os;
		} else {
			/* a key: zeros of its length; missing: zeros of the minimum length */
			size_t n = src && src->avp_value ? src->avp_value->os.len
				   : idx == KL_DIA_I_KEY ? KL_DIAMETER_KEY_MIN
				   : idx == KL_DIA_I_EXPIRY ? 4
				   : idx == KL_DIA_I_KEY_DOMAIN_ID ? 3 : 1;

			v.os.data = zeros;
			v.os.len = n < sizeof(zeros) ? n : sizeof(zeros);
		}
		break;
	default:
		if (src && src->avp_value)
			v = *src->avp_value;
		break;
	}
	if (fd_msg_avp_setvalue(a, &v)) {
		fd_msg_free((struct msg *)a);
		return NULL;
	}
	return a;
}

static void add_failed_avp(struct kl_diameter *d, struct msg *ans, const struct reject *r)
{
	struct avp *fa = NULL, *c, *g = NULL;

	if (r->idx < 0 || fd_msg_avp_new(d->dict.failed_avp, 0, &fa))
		return;
	if (!(c = failed_child(d, r->idx, r->src)))
		goto fail;
	if (r->group) {
		if (fd_msg_avp_new(d->dict.avp[KL_DIA_I_KEY_GROUP], 0, &g) ||
		    fd_msg_avp_add(g, MSG_BRW_LAST_CHILD, c)) {
			fd_msg_free((struct msg *)c);
			if (g)
				fd_msg_free((struct msg *)g);
			goto fail;
		}
		c = g;
	}
	if (fd_msg_avp_add(fa, MSG_BRW_LAST_CHILD, c)) {
		fd_msg_free((struct msg *)c);
		goto fail;
	}
	if (!fd_msg_avp_add(ans, MSG_BRW_LAST_CHILD, fa))
		return;
fail:
	fd_msg_free((struct msg *)fa);
}

static void add_app_avps(struct kl_diameter *d, struct msg *ans)
{
	struct avp *vsai = NULL, *v = NULL, *app = NULL, *ass = NULL;
	union avp_value val;

	if (fd_msg_avp_new(d->dict.vsai, 0, &vsai) || fd_msg_avp_new(d->dict.vendor_id, 0, &v) ||
	    fd_msg_avp_new(d->dict.auth_app_id, 0, &app) ||
	    fd_msg_avp_new(d->dict.auth_session_state, 0, &ass))
		goto fail;
	val.u32 = d->vendor_id;
	if (fd_msg_avp_setvalue(v, &val))
		goto fail;
	val.u32 = d->app_id;
	if (fd_msg_avp_setvalue(app, &val))
		goto fail;
	val.i32 = 1; /* NO_STATE_MAINTAINED */
	if (fd_msg_avp_setvalue(ass, &val))
		goto fail;
	if (fd_msg_avp_add(vsai, MSG_BRW_LAST_CHILD, v))
		goto fail;
	v = NULL;
	if (fd_msg_avp_add(vsai, MSG_BRW_LAST_CHILD, app))
		goto fail;
	app = NULL;
	if (fd_msg_avp_add(ans, MSG_BRW_LAST_CHILD, vsai))
		goto fail;
	vsai = NULL;
	if (fd_msg_avp_add(ans, MSG_BRW_LAST_CHILD, ass))
		goto fail;
	return;
fail:
	if (vsai)
		fd_msg_free((struct msg *)vsai);
	if (v)
		fd_msg_free((struct msg *)v);
	if (app)
		fd_msg_free((struct msg *)app);
	if (ass)
		fd_msg_free((struct msg *)ass);
}

/* Turn *req into its answer and send it (any thread). @return 0 or an errno. */
static int send_answer(struct kl_diameter *d, struct msg **req, uint32_t code, const char *why,
		       const struct reject *r)
{
	const char *name = kl_dia_rc_name(code);
	int proto = code / 1000 == 3, rc;

	if ((rc = fd_msg_new_answer_from_req(fd_g_config->cnf_dict, req,
					     proto ? MSGFL_ANSW_ERROR : 0))) {
		kl_dia_log(KL_DIAMETER_LOG_ERROR, "cannot build an answer: %s", strerror(rc));
		fd_msg_free(*req);
		*req = NULL;
		return rc;
	}
	if (!proto)
		add_app_avps(d, *req);
	if (r)
		add_failed_avp(d, *req, r);
	if ((rc = fd_msg_rescode_set(*req, (char *)(name ? name : "DIAMETER_UNABLE_TO_COMPLY"),
				     (char *)why, NULL, 1)) ||
	    (rc = fd_msg_send(req, NULL, NULL))) {
		kl_dia_log(KL_DIAMETER_LOG_ERROR, "cannot send an answer: %s", strerror(rc));
		if (*req)
			fd_msg_free(*req);
		*req = NULL;
		return rc;
	}
	return 0;
}

static void item_free(struct kl_dia_item *it)
{
	if (it->req)
		fd_msg_free(it->req);
	kl_memzero(it, sizeof(*it));
	free(it);
}

/* What an entry names, for logs: an identity or an IMSI (never a key). */
static void entry_subject(const struct kl_diameter_entry *e, char *buf, size_t n)
{
	if (e->type == KL_DIAMETER_E2M)
		snprintf(buf, n, "IMSI %s key id %08x", e->imsi, e->key_id);
	else
		snprintf(buf, n, "'%.*s'", (int)(e->id_len < 64 ? e->id_len : 64),
			 (const char *)e->id);
}

/* ---- server: dispatch (freeDiameter's threads) --------------------------------------------- */

/*
 * A peer that reconnects after its connection broke is in REOPEN until three DWR/DWA exchanges
 * (RFC 3539); its requests are processed, but freeDiameter drops every answer routed to a peer
 * that is not OPEN. Holding the request here (a dispatch thread, not the peer's state machine,
 * which runs the watchdog exchange) until the peer is OPEN keeps those answers; after 2 s we go
 * on regardless.
 */
static void wait_reopen(struct msg *m)
{
	DiamId_t id = NULL;
	size_t len = 0;

	if (fd_msg_source_get(m, &id, &len) || !id)
		return;
	for (int i = 0; i < 200; i++) {
		struct peer_hdr *p = NULL;

		if (fd_peer_getbyid(id, len, 0, &p) || !p || fd_peer_get_state(p) != STATE_REOPEN)
			return;
		usleep(10000);
	}
}

static int on_request(struct msg **msg, struct avp *avp, struct session *sess, void *opaque,
		      enum disp_action *act)
{
	struct kl_diameter *d = opaque;
	struct kl_dia_item *it;
	struct msg_hdr *mh;
	struct reject r;
	uint64_t one = 1;
	int busy;

	(void)avp;
	(void)sess;
	*act = DISP_ACT_CONT;
	if (!msg || !*msg || fd_msg_hdr(*msg, &mh) || !(mh->msg_flags & CMD_FLAG_REQUEST))
		return 0;
	wait_reopen(*msg);
	it = calloc(1, sizeof(*it));
	if (!it) {
		send_answer(d, msg, KL_DIAMETER_TOO_BUSY, "out of memory", NULL);
		return 0;
	}
	snprintf(it->origin, sizeof(it->origin), "%s", msg_source(*msg));
	memset(&r, 0, sizeof(r));
	if (decode(d, *msg, &it->e, it->origin, sizeof(it->origin), &r)) {
		const char *tn = kl_diameter_type_name(it->e.type);

		kl_dia_log(KL_DIAMETER_LOG_WARNING, "rejected %s %s from %s: %s (%u %s), AVP %u",
			   it->e.op == KL_DIAMETER_PUSH ? "push" : "remove", tn ? tn : "-",
			   it->origin, r.why, r.code, kl_diameter_result_name(r.code),
			   r.idx >= 0 ? avp_defs[r.idx].code : 0);
		send_answer(d, msg, r.code, r.why, &r);
		pthread_mutex_lock(&d->lock);
		d->st.rejected++;
		kl_ctl_add(d->ctl, KL_CTL_DIAMETER_REJECTED, 1);
		pthread_mutex_unlock(&d->lock);
		item_free(it);
		return 0;
	}
	pthread_mutex_lock(&d->lock);
	busy = d->stopping || d->queued >= d->max_queue;
	if (busy) {
		d->st.busy++;
		kl_ctl_add(d->ctl, KL_CTL_DIAMETER_BUSY, 1);
	} else {
		it->req = *msg;
		*msg = NULL;
		if (d->tail)
			d->tail->next = it;
		else
			d->head = it;
		d->tail = it;
		d->queued++;
		kl_ctl_set(d->ctl, KL_CTL_DIAMETER_QUEUED, d->queued);
	}
	pthread_mutex_unlock(&d->lock);
	if (busy) {
		kl_dia_log(KL_DIAMETER_LOG_WARNING, "too busy: %s from %s answered %s",
			   kl_diameter_type_name(it->e.type), it->origin,
			   kl_diameter_result_name(KL_DIAMETER_TOO_BUSY));
		send_answer(d, msg, KL_DIAMETER_TOO_BUSY, "request queue full", NULL);
		item_free(it);
		return 0;
	}
	if (write(d->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		kl_dia_log(KL_DIAMETER_LOG_ERROR, "eventfd write: %s", strerror(errno));
	return 0;
}

/* ---- server: control thread ---------------------------------------------------------------- */

/* @return 0 done, -ENOTSUP no handler, or the handler's -errno. */
static int run_handler(const struct kl_diameter_handlers *h, const struct kl_diameter_entry *e)
{
	void *a = h->arg;

	if (e->op == KL_DIAMETER_PUSH) {
		switch (e->type) {
		case KL_DIAMETER_MUK:
			return h->push_muk ? h->push_muk(a, e->id, e->id_len, e->key, e->key_len,
							 e->expires, e->services)
					   : -ENOTSUP;
		case KL_DIAMETER_E2M:
			return h->push_e2m ? h->push_e2m(a, e->imsi, e->key_id, e->key, e->expires)
					   : -ENOTSUP;
		case KL_DIAMETER_APPID:
			return h->put_appid ? h->put_appid(a, e->id, e->id_len, e->imsi) : -ENOTSUP;
		case KL_DIAMETER_EMSE:
			return h->put_emse ? h->put_emse(a, e->id, e->id_len, e->key, e->key_len)
					   : -ENOTSUP;
		case KL_DIAMETER_UE_GROUPS:
			return h->put_ue_groups ? h->put_ue_groups(a, e->id, e->id_len, e->groups,
								   e->ngroups)
						: -ENOTSUP;
		case KL_DIAMETER_PAIR:
			return h->push_pair ? h->push_pair(a, e->id, e->id_len, e->key, e->key_len,
							   e->expires)
					    : -ENOTSUP;
		}
		return -ENOTSUP;
	}
	switch (e->type) {
	case KL_DIAMETER_MUK:
		return h->remove_muk ? h->remove_muk(a, e->id, e->id_len) : -ENOTSUP;
	case KL_DIAMETER_E2M:
		return h->remove_e2m ? h->remove_e2m(a, e->imsi, e->has_key_id, e->key_id)
				     : -ENOTSUP;
	case KL_DIAMETER_APPID:
		return h->remove_appid ? h->remove_appid(a, e->id, e->id_len) : -ENOTSUP;
	case KL_DIAMETER_EMSE:
		return h->remove_emse ? h->remove_emse(a, e->id, e->id_len) : -ENOTSUP;
	case KL_DIAMETER_UE_GROUPS:
		return h->remove_ue_groups ? h->remove_ue_groups(a, e->id, e->id_len, e->groups,
								 e->ngroups)
					   : -ENOTSUP;
	case KL_DIAMETER_PAIR:
		return h->remove_pair ? h->remove_pair(a, e->id, e->id_len) : -ENOTSUP;
	}
	return -ENOTSUP;
}

int kl_diameter_poll(struct kl_diameter *d, unsigned max)
{
	struct kl_dia_item *list = NULL, **tail = &list;
	unsigned n = 0, left, ok = 0, failed = 0;
	int staged = 0, commit_rc = 0;
	uint64_t v;

	if (!d || d->client)
		return -EINVAL;
	if (read(d->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		kl_dia_log(KL_DIAMETER_LOG_ERROR, "eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&d->lock);
	while (d->head && (!max || n < max)) {
		struct kl_dia_item *it = d->head;

		d->head = it->next;
		it->next = NULL;
		*tail = it;
		tail = &it->next;
		n++;
	}
	if (!d->head)
		d->tail = NULL;
	d->queued -= n;
	left = d->queued;
	kl_ctl_set(d->ctl, KL_CTL_DIAMETER_QUEUED, left);
	pthread_mutex_unlock(&d->lock);
	if (!n)
		return 0;

	/* The handlers, in arrival order; each result waits in its item until the commit. */
	for (struct kl_dia_item *it = list; it; it = it->next) {
		it->rc = run_handler(&d->h, &it->e);
		kl_memzero(it->e.key, sizeof(it->e.key));
		/* >= 0: done (the key table's "added"/"replaced"); an absent entry is removed */
		if (it->rc > 0 || (it->rc == -ENOENT && it->e.op == KL_DIAMETER_REMOVE))
			it->rc = 0;
		if (!it->rc)
			staged++;
	}
	if (d->h.commit && staged) {
		commit_rc = d->h.commit(d->h.arg);
		if (commit_rc)
			kl_dia_log(KL_DIAMETER_LOG_ERROR, "commit of %d changes failed: %s", staged,
				   strerror(commit_rc < 0 ? -commit_rc : commit_rc));
	}
	for (struct kl_dia_item *it = list; it;) {
		struct kl_dia_item *next = it->next;
		char subj[96];

		if (!it->rc && !commit_rc) {
			send_answer(d, &it->req, KL_DIAMETER_SUCCESS, NULL, NULL);
			ok++;
		} else {
			const char *why = it->rc == -ENOTSUP ? "entry type not handled by this server"
					  : it->rc	       ? "the key store refused the change"
								 : "the key store commit failed";

			entry_subject(&it->e, subj, sizeof(subj));
			kl_dia_log(KL_DIAMETER_LOG_WARNING, "%s %s %s from %s failed: %s (%s)",
				   it->e.op == KL_DIAMETER_PUSH ? "push" : "remove",
				   kl_diameter_type_name(it->e.type), subj, it->origin, why,
				   it->rc ? strerror(-it->rc) : "commit");
			send_answer(d, &it->req, KL_DIAMETER_UNABLE_TO_COMPLY, why, NULL);
			failed++;
		}
		item_free(it);
		it = next;
	}
	pthread_mutex_lock(&d->lock);
	d->st.answered_ok += ok;
	d->st.failed += failed;
	if (d->h.commit && staged)
		d->st.commits++;
	pthread_mutex_unlock(&d->lock);
	kl_ctl_add(d->ctl, KL_CTL_DIAMETER_ANSWERED_OK, ok);
	kl_ctl_add(d->ctl, KL_CTL_DIAMETER_FAILED, failed);
	if (d->h.commit && staged)
		kl_ctl_add(d->ctl, KL_CTL_DIAMETER_COMMITS, 1);
	if (left && write(d->efd, &(uint64_t){ 1 }, sizeof(uint64_t)) < 0 && errno != EAGAIN)
		kl_dia_log(KL_DIAMETER_LOG_ERROR, "eventfd write: %s", strerror(errno));
	return (int)n;
}

int kl_diameter_fd(const struct kl_diameter *d)
{
	return d ? d->efd : -1;
}

void kl_diameter_get_stats(struct kl_diameter *d, struct kl_diameter_stats *s)
{
	if (!d || !s)
		return;
	pthread_mutex_lock(&d->lock);
	*s = d->st;
	s->queued = d->queued;
	pthread_mutex_unlock(&d->lock);
}

/* ---- server: start / stop ------------------------------------------------------------------ */

/*
 * fd_core_start binds the server sockets but listen() runs later on their own threads, so a
 * peer connecting right after start could be refused. Wait until every socket of ours bound to
 * the configured ports listens (SO_ACCEPTCONN), found through /proc/self/fd.
 * @return 0, or -ETIMEDOUT.
 */
int kl_diameter_peers(struct kl_diameter *d, struct kl_diameter_peer *out, unsigned max)
{
	unsigned n = 0;

	if (!d || (max && !out))
		return -EINVAL;
	if (pthread_rwlock_rdlock(&fd_g_peers_rw))
		return -EINVAL;
	for (struct fd_list *li = fd_g_peers.next; li != &fd_g_peers; li = li->next) {
		struct peer_hdr *p = (struct peer_hdr *)li; /* chain is its first member */

		if (n < max) {
			snprintf(out[n].identity, sizeof(out[n].identity), "%s",
				 p->info.pi_diamid ? p->info.pi_diamid : "");
			snprintf(out[n].state, sizeof(out[n].state), "%s",
				 STATE_STR(fd_peer_get_state(p)));
		}
		n++;
	}
	pthread_rwlock_unlock(&fd_g_peers_rw);
	return (int)n;
}

static int wait_listening(unsigned timeout_ms)
{
	for (unsigned waited = 0;; waited += 10) {
		unsigned bound = 0, listening = 0;
		struct dirent *de;
		DIR *dir = opendir("/proc/self/fd");

		if (!dir)
			return 0; /* no /proc: nothing to check with */
		while ((de = readdir(dir))) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			int fd = atoi(de->d_name), acc = 0;
			socklen_t al = sizeof(acc);
			uint16_t port;

			if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd == dirfd(dir) ||
			    getsockname(fd, (struct sockaddr *)&ss, &sl))
				continue;
			if (ss.ss_family == AF_INET)
				port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
			else if (ss.ss_family == AF_INET6)
				port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
			else
				continue;
			if (!port || (port != fd_g_config->cnf_port_tls && port != fd_g_config->cnf_port))
				continue;
			/* nothing was accepted yet: every socket on the port is a server's */
			bound++;
			if (!getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) && acc)
				listening++;
		}
		closedir(dir);
		if (bound && listening == bound)
			return 0;
		if (waited >= timeout_ms)
			return -ETIMEDOUT;
		usleep(10000);
	}
}

static void free_allowed(char **a)
{
	if (!a)
		return;
	for (char **p = a; *p; p++)
		free(*p);
	free(a);
}

struct kl_diameter *kl_diameter_start(const struct kl_diameter_params *p,
				      const struct kl_diameter_handlers *h, char *err,
				      size_t errlen)
{
	struct kl_diameter *d;
	struct disp_when when;
	int rc;

	if (!p || !h) {
		kl_errf(err, errlen, "no parameters or handlers");
		errno = EINVAL;
		return NULL;
	}
	if (p->max_queue > KL_DIAMETER_MAX_QUEUE) {
		kl_errf(err, errlen, "max_queue: at most %u", KL_DIAMETER_MAX_QUEUE);
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		kl_errf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	d->vendor_id = p->vendor_id ? p->vendor_id : KL_DIAMETER_DEFAULT_VENDOR;
	d->app_id = p->app_id ? p->app_id : KL_DIAMETER_DEFAULT_APP;
	d->h = *h;
	d->max_queue = p->max_queue ? p->max_queue : KL_DIAMETER_DEFAULT_MAX_QUEUE;
	d->ctl = p->ctl;
	d->efd = -1;
	pthread_mutex_init(&d->lock, NULL);
	if (p->allowed_peers) {
		unsigned n = 0;

		while (p->allowed_peers[n])
			n++;
		d->allowed = calloc(n + 1, sizeof(char *));
		for (unsigned i = 0; d->allowed && i < n; i++) {
			if (!kl_dia_diamid_ok(p->allowed_peers[i])) {
				kl_errf(err, errlen, "allowed peer '%s': not a Diameter identity",
					p->allowed_peers[i]);
				rc = -EINVAL;
				goto fail;
			}
			if (!(d->allowed[i] = strdup(p->allowed_peers[i])))
				break;
		}
		if (!d->allowed || (n && !d->allowed[n - 1])) {
			kl_errf(err, errlen, "out of memory");
			rc = -ENOMEM;
			goto fail;
		}
	}
	d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->efd < 0) {
		rc = -errno;
		kl_errf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if ((rc = kl_dia_core_start(d, p, err, errlen)))
		goto fail;
	memset(&when, 0, sizeof(when));
	when.app = d->dict.app;
	when.command = d->dict.kpr;
	if ((rc = fd_disp_register(on_request, DISP_HOW_CC, &when, d, &d->disp[0])) == 0) {
		when.command = d->dict.krr;
		rc = fd_disp_register(on_request, DISP_HOW_CC, &when, d, &d->disp[1]);
	}
	if (rc) {
		kl_errf(err, errlen, "cannot register the request handlers: %s", strerror(rc));
		kl_dia_core_stop();
		rc = -EIO;
		goto fail;
	}
	if ((rc = fd_core_start()) || (rc = fd_core_waitstartcomplete())) {
		kl_errf(err, errlen, "freeDiameter did not start: %s (port in use? see its log lines)",
			strerror(rc));
		kl_dia_core_stop();
		rc = -EIO;
		goto fail;
	}
	if (wait_listening(5000)) {
		kl_errf(err, errlen, "freeDiameter did not listen on port %u within 5 s",
			(unsigned)fd_g_config->cnf_port_tls);
		kl_dia_core_stop();
		rc = -EIO;
		goto fail;
	}
	kl_dia_log(KL_DIAMETER_LOG_INFO,
		   "serving %s (vendor %u, application %u) on %s port %u over TLS",
		   p->fd_conf ? "as configured" : p->identity, d->vendor_id, d->app_id,
		   p->fd_conf ? "the configured" : p->listen ? p->listen : "every address",
		   p->fd_conf ? 0u : (unsigned)(p->port ? p->port : KL_DIAMETER_DEFAULT_PORT));
	return d;
fail:
	if (d->efd >= 0)
		close(d->efd);
	free_allowed(d->allowed);
	pthread_mutex_destroy(&d->lock);
	free(d);
	errno = -rc;
	return NULL;
}

void kl_diameter_stop(struct kl_diameter *d)
{
	struct kl_dia_item *list;
	unsigned dropped = 0;

	if (!d)
		return;
	if (!d->client) {
		pthread_mutex_lock(&d->lock);
		d->stopping = 1;
		list = d->head;
		d->head = d->tail = NULL;
		d->queued = 0;
		kl_ctl_set(d->ctl, KL_CTL_DIAMETER_QUEUED, 0);
		pthread_mutex_unlock(&d->lock);
		while (list) {
			struct kl_dia_item *next = list->next;

			item_free(list);
			list = next;
			dropped++;
		}
		if (dropped)
			kl_dia_log(KL_DIAMETER_LOG_WARNING,
				   "stopping: %u queued requests dropped unanswered", dropped);
	}
	kl_dia_core_stop();
	/* requests that arrived while stopping were answered busy: nothing is queued now */
	if (!d->client) {
		close(d->efd);
		free_allowed(d->allowed);
	}
	pthread_mutex_destroy(&d->lock);
	kl_memzero(d, sizeof(*d));
	free(d);
}

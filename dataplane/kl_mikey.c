/* SPDX-License-Identifier: BSD-3-Clause */
/* MIKEY codec of the keyline wire profile. Every read is bounds-checked against the datagram. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "kl_mikey.h"

static const char *const kind_names[] = {
#define KL_K(X, e, n, d) n,
	KL_KIND_LIST(KL_K, )
#undef KL_K
};

const char *kl_kind_name(unsigned kind)
{
	return kind < KL_KIND__COUNT ? kind_names[kind] : "unknown";
}

/* The TLV registry: wire type -> position + 1 (0 = unknown), and each position's bounds. */
static const uint8_t tlv_pos[256] = {
#define KL_X(e, t, lo, hi, id) [t] = KL_TLVI_##e + 1,
	KL_TLV_LIST(KL_X)
#undef KL_X
};
static const struct {
	uint16_t lo, hi;
	uint8_t ident;
} tlv_def[KL_TLVI__COUNT] = {
#define KL_X(e, t, l, h, id) [KL_TLVI_##e] = { l, h, id },
	KL_TLV_LIST(KL_X)
#undef KL_X
};

/* Kind 2: the peer UE must be another UE (IDUEa == IDUEb is malformed, PROTOCOL.md section 9). */
static enum kl_drop hm_check(const struct kl_mikey_req *r)
{
	if (r->tlv_len[KL_TLVI_PEER_UE] == r->id_len &&
	    !memcmp(r->tlv[KL_TLVI_PEER_UE], r->id, r->id_len))
		return KL_DROP_MALFORMED;
	return KL_DROP_NONE;
}

/* Kinds 4 and 5: the peer UE must be another UE, as in kind 2. Kind 5 and 7: role 1 or 2. */
static enum kl_drop prose_check(const struct kl_mikey_req *r)
{
	uint8_t role = r->tlv[KL_TLVI_ROLE][0];

	if (role != 1 && role != 2)
		return KL_DROP_MALFORMED;
	return hm_check(r);
}

/* Kind 7: the UE whose value is pushed and its peer are two UEs. */
static enum kl_drop push_check(const struct kl_mikey_req *r)
{
	uint8_t role = r->tlv[KL_TLVI_ROLE][0];

	if (role != 1 && role != 2)
		return KL_DROP_MALFORMED;
	if (r->tlv_len[KL_TLVI_PEER_UE] == r->tlv_len[KL_TLVI_SOURCE_UE] &&
	    !memcmp(r->tlv[KL_TLVI_PEER_UE], r->tlv[KL_TLVI_SOURCE_UE], r->tlv_len[KL_TLVI_PEER_UE]))
		return KL_DROP_MALFORMED;
	return KL_DROP_NONE;
}

/* The TLVs a request of each kind takes (EXT 250) and must carry, and those its response
 * carries besides TLV 3. MBMS uses EXT type 2 and no TLVs. Padding is allowed for every kind
 * (PROTOCOL.md section 4). */
static const struct {
	uint32_t takes, needs;
	enum kl_drop (*check)(const struct kl_mikey_req *r); /* kind-specific rules, or NULL */
	uint32_t resp_has;   /* TLVs every response of the kind carries besides TLV 3 */
	uint8_t session;     /* TLV 3 is the session (id, validity); the key's SPI is 0 */
} kind_tlvs[KL_KIND__COUNT] = {
	[KL_KIND_MBMS] = { 0, 0, NULL, 0, 0 },
	[KL_KIND_E2M] = { KL_TLV_BIT(UE_ID) | KL_TLV_BIT(KEY_ID) | KL_TLV_BIT(PADDING),
			  KL_TLV_BIT(UE_ID), NULL, 0, 0 },
	[KL_KIND_HM] = { KL_TLV_BIT(PEER_UE) | KL_TLV_BIT(PEER_SERVER) | KL_TLV_BIT(PADDING),
			 KL_TLV_BIT(PEER_UE) | KL_TLV_BIT(PEER_SERVER), hm_check,
			 KL_TLV_BIT(TOKEN_REQ) | KL_TLV_BIT(TOKEN_PEER), 1 },
	[KL_KIND_KSTAR] = { KL_TLV_BIT(PEER_SERVER) | KL_TLV_BIT(PADDING), KL_TLV_BIT(PEER_SERVER),
			    NULL, 0, 0 },
	[KL_KIND_DH] = { KL_TLV_BIT(PEER_UE) | KL_TLV_BIT(PEER_SERVER) | KL_TLV_BIT(PADDING),
			 KL_TLV_BIT(PEER_UE) | KL_TLV_BIT(PEER_SERVER), hm_check,
			 KL_TLV_BIT(X25519), 0 },
	[KL_KIND_PROSE] = { KL_TLV_BIT(PEER_UE) | KL_TLV_BIT(PEER_SERVER) | KL_TLV_BIT(CONTRIB) |
				    KL_TLV_BIT(ROLE) | KL_TLV_BIT(PADDING),
			    KL_TLV_BIT(PEER_UE) | KL_TLV_BIT(PEER_SERVER) | KL_TLV_BIT(CONTRIB) |
				    KL_TLV_BIT(ROLE),
			    prose_check, 0, 1 },
	[KL_KIND_PEERPV] = { KL_TLV_BIT(PEER_UE) | KL_TLV_BIT(PADDING), KL_TLV_BIT(PEER_UE), NULL,
			     KL_TLV_BIT(X25519), 0 },
	[KL_KIND_PUSH] = { KL_TLV_BIT(SOURCE_UE) | KL_TLV_BIT(PEER_UE) | KL_TLV_BIT(ROLE) |
				   KL_TLV_BIT(PADDING),
			   KL_TLV_BIT(SOURCE_UE) | KL_TLV_BIT(PEER_UE) | KL_TLV_BIT(ROLE), push_check,
			   0, 0 },
};

/* Kind 7's KEMAC holds one key data sub-payload: p2 or p4 (32 bytes), SPI length 4. */
#define PUSH_KEYDATA_MAX (4 + KL_MIKEY_KEY_MAX + 5)

int kl_mikey_kind_session(unsigned kind)
{
	return kind < KL_KIND__COUNT && kind_tlvs[kind].session;
}

static const char *const drop_names[] = {
#define KL_X(e, n, d) n,
	KL_DROP_LIST(KL_X)
#undef KL_X
};
static const char *const drop_descs[] = {
#define KL_X(e, n, d) d,
	KL_DROP_LIST(KL_X)
#undef KL_X
};

const char *kl_drop_name(unsigned reason)
{
	return reason < KL_DROP__COUNT ? drop_names[reason] : "unknown";
}

const char *kl_drop_desc(unsigned reason)
{
	return reason < KL_DROP__COUNT ? drop_descs[reason] : "unknown";
}

/* RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static int utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c;
		size_t k;
		uint32_t cp;
		uint64_t w;

		/* identities are mostly ASCII: eight bytes at a time while no byte has its top bit */
		while (i + 8 <= n) {
			memcpy(&w, s + i, 8);
			if (w & 0x8080808080808080ull)
				break;
			i += 8;
		}
		if (i >= n)
			break;
		c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xC2 && c <= 0xDF) {
			k = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			k = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i <= k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3F);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
			return 0;
		i += k + 1;
	}
	return 1;
}

static int ident_ok(const uint8_t *s, size_t n)
{
	return n >= 1 && n <= KL_MIKEY_ID_MAX && utf8_ok(s, n);
}

/* HDR of the profile; returns the drop reason. */
static enum kl_drop parse_hdr(const uint8_t *p, size_t len, uint8_t want_dt, uint8_t *prf,
			      uint32_t *csb_id, uint8_t *dt_out)
{
	if (len < 10)
		return KL_DROP_MALFORMED;
	if (p[0] != 1)
		return KL_DROP_UNSUPPORTED_VERSION;
	if (dt_out)
		*dt_out = p[1];
	else if (p[1] != want_dt)
		return KL_DROP_UNSUPPORTED_TYPE;
	if (p[2] != KL_PT_T)
		return KL_DROP_MALFORMED;
	if (p[3] & 0x80) /* V bit: the profile never asks for a verification message */
		return KL_DROP_MALFORMED;
	if ((p[3] & 0x7F) > 1)
		return KL_DROP_UNSUPPORTED_PRF;
	if (p[8] != 0 || p[9] != 1) /* #CS 0, CS ID map type 1 (empty map) */
		return KL_DROP_MALFORMED;
	*prf = p[3] & 0x7F;
	*csb_id = kl_be32(p + 4);
	return KL_DROP_NONE;
}

/* T then RAND, shared by every message: off at T on entry, after RAND on return. */
static enum kl_drop parse_t_rand(const uint8_t *p, size_t len, size_t *off, uint64_t *ts,
				 const uint8_t **rand, uint8_t *next)
{
	size_t o = *off;

	if (len - o < 10)
		return KL_DROP_MALFORMED;
	if (p[o] != KL_PT_RAND)
		return KL_DROP_MALFORMED;
	if (p[o + 1] != 0) /* NTP-UTC */
		return KL_DROP_UNSUPPORTED_TYPE;
	*ts = kl_be64(p + o + 2);
	o += 10;
	if (len - o < 2 + KL_MIKEY_RAND_LEN || p[o + 1] != KL_MIKEY_RAND_LEN)
		return KL_DROP_MALFORMED;
	*next = p[o];
	*rand = p + o + 2;
	*off = o + 2 + KL_MIKEY_RAND_LEN;
	return KL_DROP_NONE;
}

static enum kl_drop parse_keyref(const uint8_t *d, size_t n, uint8_t type, struct kl_mikey_req *r)
{
	if (type == KL_EXT_KEYID) {
		/* Key ID type (1) = 1 MSK || Key ID length (2) = 7 || Key Domain ID (3) || MSK ID (4) */
		if (n < 1)
			return KL_DROP_MALFORMED;
		if (d[0] != 1)
			return KL_DROP_UNSUPPORTED_TYPE;
		if (n != 10 || kl_be16(d + 1) != 7)
			return KL_DROP_MALFORMED;
		memcpy(r->domain, d + 3, 3);
		r->group = kl_be16(d + 6);
		r->number = kl_be16(d + 8);
		r->kind = KL_KIND_MBMS;
		return KL_DROP_NONE;
	}
	/* keyline request: kind (1) || TLVs, each from the registry, at most once, and one that
	 * the kind takes */
	if (n < 1)
		return KL_DROP_MALFORMED;
	if (d[0] == KL_KIND_MBMS || d[0] >= KL_KIND__COUNT)
		return KL_DROP_UNSUPPORTED_TYPE;
	r->kind = d[0];
	for (size_t o = 1; o < n;) {
		unsigned i;
		uint16_t l;

		if (n - o < 3)
			return KL_DROP_MALFORMED;
		i = tlv_pos[d[o]];
		l = kl_be16(d + o + 1);
		o += 3;
		if (!i-- || l > n - o || (r->tlv_seen & (1u << i)) ||
		    !(kind_tlvs[r->kind].takes & (1u << i)) || l < tlv_def[i].lo || l > tlv_def[i].hi ||
		    (tlv_def[i].ident && !ident_ok(d + o, l)))
			return KL_DROP_MALFORMED;
		r->tlv_seen |= 1u << i;
		r->tlv[i] = d + o;
		r->tlv_len[i] = l;
		o += l;
	}
	if ((r->tlv_seen & kind_tlvs[r->kind].needs) != kind_tlvs[r->kind].needs)
		return KL_DROP_MALFORMED;
	if (r->tlv_seen & KL_TLV_BIT(UE_ID)) {
		r->ue = r->tlv[KL_TLVI_UE_ID];
		r->ue_len = r->tlv_len[KL_TLVI_UE_ID];
	}
	if (r->tlv_seen & KL_TLV_BIT(KEY_ID)) {
		r->key_id = kl_be32(r->tlv[KL_TLVI_KEY_ID]);
		r->has_key_id = 1;
	}
	return kind_tlvs[r->kind].check ? kind_tlvs[r->kind].check(r) : KL_DROP_NONE;
}

enum kl_drop kl_mikey_parse_req(const uint8_t *p, size_t len, struct kl_mikey_req *r)
{
	enum kl_drop d;
	size_t o = 10;
	uint8_t next;
	uint16_t l;

	memset(r, 0, offsetof(struct kl_mikey_req, tlv)); /* tlv[] is read only where tlv_seen says */
	if (!p)
		return KL_DROP_MALFORMED;
	if (len > KL_MIKEY_REQ_MAX)
		return KL_DROP_OVERSIZED;
	d = parse_hdr(p, len, KL_DT_PSK_INIT, &r->prf, &r->csb_id, NULL);
	if (d != KL_DROP_NONE)
		return d;
	d = parse_t_rand(p, len, &o, &r->ts, &r->rand, &next);
	if (d != KL_DROP_NONE)
		return d;
	/* IDi */
	if (next != KL_PT_ID || len - o < 4 || p[o] != KL_PT_GENEXT)
		return KL_DROP_MALFORMED;
	if (p[o + 1] > 1)
		return KL_DROP_UNSUPPORTED_TYPE;
	r->id_type = p[o + 1];
	l = kl_be16(p + o + 2);
	if (l > len - o - 4 || !ident_ok(p + o + 4, l))
		return KL_DROP_MALFORMED;
	r->id = p + o + 4;
	r->id_len = l;
	o += 4 + l;
	/* EXT with the key reference; then V (kind 7: KEMAC) */
	if (len - o < 4 || (p[o] != KL_PT_V && p[o] != KL_PT_KEMAC))
		return KL_DROP_MALFORMED;
	if (p[o + 1] != KL_EXT_KEYID && p[o + 1] != KL_EXT_KEYLINE)
		return KL_DROP_UNSUPPORTED_TYPE;
	r->ext_type = p[o + 1];
	l = kl_be16(p + o + 2);
	if (l > len - o - 4)
		return KL_DROP_MALFORMED;
	next = p[o];
	d = parse_keyref(p + o + 4, l, r->ext_type, r);
	if (d != KL_DROP_NONE)
		return d;
	o += 4 + l;
	if (r->kind == KL_KIND_PUSH) {
		/* kind 7 carries a key: KEMAC (next 0, encr alg 1 AES-CM, encr len, encr data, MAC alg
		 * 1, MAC) instead of V; nothing after it */
		if (next != KL_PT_KEMAC || len - o < 4 || p[o] != KL_PT_LAST)
			return KL_DROP_MALFORMED;
		if (p[o + 1] != 1)
			return KL_DROP_UNSUPPORTED_ALG;
		l = kl_be16(p + o + 2);
		o += 4;
		if (l < 9 || l > PUSH_KEYDATA_MAX || l > len - o)
			return KL_DROP_MALFORMED;
		r->encr_off = (uint16_t)o;
		r->encr_len = l;
		o += l;
		if (len - o < 1)
			return KL_DROP_MALFORMED;
		if (p[o] != 1)
			return KL_DROP_UNSUPPORTED_ALG;
		if (len - o != 1 + KL_MIKEY_MAC_LEN)
			return KL_DROP_MALFORMED;
		r->msg = p;
		r->len = (uint16_t)len;
		r->mac_off = (uint16_t)(o + 1);
		r->mac = p + o + 1;
		return KL_DROP_NONE;
	}
	/* V, and nothing after it */
	if (next != KL_PT_V || len - o < 2 || p[o] != KL_PT_LAST)
		return KL_DROP_MALFORMED;
	if (p[o + 1] != 1) /* HMAC-SHA-1-160 */
		return KL_DROP_UNSUPPORTED_ALG;
	if (len - o != KL_MIKEY_V_LEN)
		return KL_DROP_MALFORMED;
	r->msg = p;
	r->len = (uint16_t)len;
	r->mac_off = (uint16_t)(o + 2);
	r->mac = p + o + 2;
	return KL_DROP_NONE;
}

static size_t put_hdr(uint8_t *b, uint8_t dt, uint8_t prf, uint32_t csb)
{
	b[0] = 1;
	b[1] = dt;
	b[2] = KL_PT_T;
	b[3] = prf & 0x7F;
	kl_put32(b + 4, csb);
	b[8] = 0;
	b[9] = 1;
	return 10;
}

static size_t put_t_rand(uint8_t *b, uint64_t ts, const uint8_t *rand, uint8_t next)
{
	b[0] = KL_PT_RAND;
	b[1] = 0;
	kl_put64(b + 2, ts);
	b[10] = next;
	b[11] = KL_MIKEY_RAND_LEN;
	memcpy(b + 12, rand, KL_MIKEY_RAND_LEN);
	return 12 + KL_MIKEY_RAND_LEN;
}

/* type || length || value (zeros when val is NULL). @return its size. */
static size_t put_tlv(uint8_t *b, uint8_t type, const uint8_t *val, uint16_t len)
{
	b[0] = type;
	kl_put16(b + 1, len);
	if (val)
		memcpy(b + 3, val, len);
	else
		memset(b + 3, 0, len);
	return 3 + (size_t)len;
}

/* A request up to and including its EXT payload header's data; @return the EXT's end, or -errno.
 * tail = the bytes after the EXT (V, or kind 7's KEMAC). */
static int build_req_head(uint8_t *buf, size_t cap, const struct kl_mikey_req_spec *s, size_t tail,
			  uint8_t ext_next)
{
	size_t ext, need, o = 0;

	if (!buf || !s || !s->rand || !s->id || !s->id_len || s->id_len > KL_MIKEY_ID_MAX ||
	    s->prf > 1 || s->id_type > 1 || s->kind >= KL_KIND__COUNT)
		return -EINVAL;
	if (s->kind == KL_KIND_E2M && (!s->ue || !s->ue_len || s->ue_len > KL_MIKEY_ID_MAX))
		return -EINVAL;
	if ((s->peer_ue_len && (!s->peer_ue || s->peer_ue_len > KL_MIKEY_ID_MAX)) ||
	    (s->peer_server_len && (!s->peer_server || s->peer_server_len > KL_MIKEY_ID_MAX)) ||
	    (s->source_ue_len && (!s->source_ue || s->source_ue_len > KL_MIKEY_ID_MAX)) ||
	    s->role > 2)
		return -EINVAL;
	ext = s->kind == KL_KIND_MBMS
		      ? 10
		      : 1 + (s->kind == KL_KIND_E2M ? 3 + (size_t)s->ue_len : 0) +
				(s->has_key_id ? 7 : 0) +
				(s->source_ue_len ? 3 + (size_t)s->source_ue_len : 0) +
				(s->peer_ue_len ? 3 + (size_t)s->peer_ue_len : 0) +
				(s->peer_server_len ? 3 + (size_t)s->peer_server_len : 0) +
				(s->contrib ? 3 + 16 : 0) + (s->role ? 3 + 1 : 0) +
				(s->has_pad ? 3 + (size_t)s->pad_len : 0);
	need = 10 + 10 + 18 + 4 + s->id_len + 4 + ext + tail;
	if (need > cap || need > KL_MIKEY_REQ_MAX)
		return -ENOSPC;
	o += put_hdr(buf, KL_DT_PSK_INIT, s->prf, s->csb_id);
	o += put_t_rand(buf + o, s->ts, s->rand, KL_PT_ID);
	buf[o] = KL_PT_GENEXT;
	buf[o + 1] = s->id_type;
	kl_put16(buf + o + 2, s->id_len);
	memcpy(buf + o + 4, s->id, s->id_len);
	o += 4 + s->id_len;
	buf[o] = ext_next;
	buf[o + 1] = s->kind == KL_KIND_MBMS ? KL_EXT_KEYID : KL_EXT_KEYLINE;
	kl_put16(buf + o + 2, (uint16_t)ext);
	o += 4;
	if (s->kind == KL_KIND_MBMS) {
		buf[o] = 1;
		kl_put16(buf + o + 1, 7);
		memcpy(buf + o + 3, s->domain, 3);
		kl_put16(buf + o + 6, s->group);
		kl_put16(buf + o + 8, s->number);
		o += 10;
	} else {
		buf[o++] = s->kind;
		if (s->kind == KL_KIND_E2M)
			o += put_tlv(buf + o, KL_TLV_UE_ID, s->ue, s->ue_len);
		if (s->has_key_id) {
			buf[o] = KL_TLV_KEY_ID;
			kl_put16(buf + o + 1, 4);
			kl_put32(buf + o + 3, s->key_id);
			o += 7;
		}
		if (s->source_ue_len)
			o += put_tlv(buf + o, KL_TLV_SOURCE_UE, s->source_ue, s->source_ue_len);
		if (s->peer_ue_len)
			o += put_tlv(buf + o, KL_TLV_PEER_UE, s->peer_ue, s->peer_ue_len);
		if (s->peer_server_len)
			o += put_tlv(buf + o, KL_TLV_PEER_SERVER, s->peer_server, s->peer_server_len);
		if (s->contrib)
			o += put_tlv(buf + o, KL_TLV_CONTRIB, s->contrib, 16);
		if (s->role)
			o += put_tlv(buf + o, KL_TLV_ROLE, &s->role, 1);
		if (s->has_pad) {
			o += put_tlv(buf + o, KL_TLV_PADDING, NULL, s->pad_len);
		}
	}
	return (int)o;
}

int kl_mikey_build_req(uint8_t *buf, size_t cap, const struct kl_mikey_req_spec *s,
		       uint16_t *mac_off)
{
	int o;

	if (!mac_off || (s && s->kind == KL_KIND_PUSH))
		return -EINVAL; /* kind 7 ends with a KEMAC: kl_mikey_build_req_kemac */
	o = build_req_head(buf, cap, s, KL_MIKEY_V_LEN, KL_PT_V);
	if (o < 0)
		return o;
	buf[o] = KL_PT_LAST;
	buf[o + 1] = 1;
	memset(buf + o + 2, 0, KL_MIKEY_MAC_LEN);
	*mac_off = (uint16_t)(o + 2);
	return o + KL_MIKEY_V_LEN;
}

int kl_mikey_build_req_kemac(uint8_t *buf, size_t cap, const struct kl_mikey_req_spec *s,
			     struct kl_mikey_layout *lay)
{
	size_t encr;
	int o;

	if (!lay || !s || s->kind != KL_KIND_PUSH || !s->push_key || !s->push_key_len ||
	    s->push_key_len > KL_MIKEY_KEY_MAX)
		return -EINVAL;
	encr = 4 + (size_t)s->push_key_len + 5;
	o = build_req_head(buf, cap, s, 4 + encr + 1 + KL_MIKEY_MAC_LEN, KL_PT_KEMAC);
	if (o < 0)
		return o;
	buf[o] = KL_PT_LAST;
	buf[o + 1] = 1; /* AES-CM-128 */
	kl_put16(buf + o + 2, (uint16_t)encr);
	o += 4;
	lay->encr_off = (uint16_t)o;
	lay->encr_len = (uint16_t)encr;
	buf[o] = KL_PT_LAST;
	buf[o + 1] = 0x21;
	kl_put16(buf + o + 2, s->push_key_len);
	memcpy(buf + o + 4, s->push_key, s->push_key_len);
	o += 4 + s->push_key_len;
	buf[o] = 4;
	kl_put32(buf + o + 1, 0);
	o += 5;
	buf[o++] = 1; /* HMAC-SHA-1-160 */
	lay->mac_off = (uint16_t)o;
	memset(buf + o, 0, KL_MIKEY_MAC_LEN);
	lay->len = (uint16_t)(o + KL_MIKEY_MAC_LEN);
	return lay->len;
}

int kl_mikey_build_resp(uint8_t *buf, size_t cap, const struct kl_mikey_req *req, uint64_t now,
			const uint8_t *idr, uint16_t idr_len, const struct kl_mikey_key *keys,
			unsigned nkeys, struct kl_mikey_layout *lay)
{
	return kl_mikey_build_resp_tlv(buf, cap, req, now, idr, idr_len, keys, nkeys, NULL, 0, lay);
}

int kl_mikey_build_resp_tlv(uint8_t *buf, size_t cap, const struct kl_mikey_req *req, uint64_t now,
			    const uint8_t *idr, uint16_t idr_len, const struct kl_mikey_key *keys,
			    unsigned nkeys, struct kl_mikey_tlv *extra, unsigned nextra,
			    struct kl_mikey_layout *lay)
{
	size_t encr = 0, need, o = 0, ext;
	int session;

	if (!buf || !req || !idr || !idr_len || idr_len > KL_MIKEY_ID_MAX || !keys || !nkeys ||
	    nkeys > KL_MIKEY_MAX_KEYS || !lay || (nextra && !extra))
		return -EINVAL;
	session = kl_mikey_kind_session(req->kind);
	if (session && nkeys != 1)
		return -EINVAL;
	for (unsigned i = 0; i < nkeys; i++) {
		if (!keys[i].key || !keys[i].key_len || keys[i].key_len > KL_MIKEY_KEY_MAX)
			return -EINVAL;
		encr += 4 + keys[i].key_len + 5;
	}
	ext = 1 + nkeys * 23;
	for (unsigned i = 0; i < nextra; i++)
		ext += 3 + (size_t)extra[i].len;
	if (ext > UINT16_MAX)
		return -ENOSPC;
	need = 10 + 10 + 18 + 4 + idr_len + 4 + ext + 4 + encr + 1 + KL_MIKEY_MAC_LEN;
	if (need > cap)
		return -ENOSPC;
	o += put_hdr(buf, KL_DT_PSK_RESP, req->prf, req->csb_id);
	o += put_t_rand(buf + o, now, req->rand, KL_PT_ID);
	buf[o] = KL_PT_GENEXT;
	buf[o + 1] = 0;
	kl_put16(buf + o + 2, idr_len);
	memcpy(buf + o + 4, idr, idr_len);
	o += 4 + idr_len;
	buf[o] = KL_PT_KEMAC;
	buf[o + 1] = KL_EXT_KEYLINE;
	kl_put16(buf + o + 2, (uint16_t)ext);
	buf[o + 4] = req->kind;
	o += 5;
	for (unsigned i = 0; i < nkeys; i++) {
		buf[o] = KL_TLV_KEY_INFO;
		kl_put16(buf + o + 1, 20);
		kl_put32(buf + o + 3, keys[i].key_id);
		kl_put64(buf + o + 7, keys[i].valid_from);
		kl_put64(buf + o + 15, keys[i].valid_to);
		o += 23;
	}
	for (unsigned i = 0; i < nextra; i++) {
		extra[i].off = (uint16_t)(o + 3);
		o += put_tlv(buf + o, extra[i].type, extra[i].val, extra[i].len);
	}
	buf[o] = KL_PT_LAST;
	buf[o + 1] = 1; /* AES-CM-128 */
	kl_put16(buf + o + 2, (uint16_t)encr);
	o += 4;
	lay->encr_off = (uint16_t)o;
	lay->encr_len = (uint16_t)encr;
	for (unsigned i = 0; i < nkeys; i++) {
		buf[o] = i + 1 < nkeys ? KL_PT_KEYDATA : KL_PT_LAST;
		buf[o + 1] = 0x21; /* type 2 TEK, KV 1 SPI */
		kl_put16(buf + o + 2, keys[i].key_len);
		memcpy(buf + o + 4, keys[i].key, keys[i].key_len);
		o += 4 + keys[i].key_len;
		buf[o] = 4;
		kl_put32(buf + o + 1, session ? 0 : keys[i].key_id);
		o += 5;
	}
	buf[o] = 1; /* HMAC-SHA-1-160 */
	o += 1;
	lay->mac_off = (uint16_t)o;
	memset(buf + o, 0, KL_MIKEY_MAC_LEN);
	o += KL_MIKEY_MAC_LEN;
	lay->len = (uint16_t)o;
	return 0;
}

int kl_mikey_build_resp_v(uint8_t *buf, size_t cap, const struct kl_mikey_req *req, uint64_t now,
			  const uint8_t *idr, uint16_t idr_len, struct kl_mikey_tlv *extra,
			  unsigned nextra, struct kl_mikey_layout *lay)
{
	size_t need, o = 0, ext = 1;

	if (!buf || !req || !idr || !idr_len || idr_len > KL_MIKEY_ID_MAX || !lay ||
	    (nextra && !extra))
		return -EINVAL;
	for (unsigned i = 0; i < nextra; i++)
		ext += 3 + (size_t)extra[i].len;
	if (ext > UINT16_MAX)
		return -ENOSPC;
	need = 10 + 10 + 18 + 4 + idr_len + 4 + ext + KL_MIKEY_V_LEN;
	if (need > cap)
		return -ENOSPC;
	o += put_hdr(buf, KL_DT_PSK_RESP, req->prf, req->csb_id);
	o += put_t_rand(buf + o, now, req->rand, KL_PT_ID);
	buf[o] = KL_PT_GENEXT;
	buf[o + 1] = 0;
	kl_put16(buf + o + 2, idr_len);
	memcpy(buf + o + 4, idr, idr_len);
	o += 4 + idr_len;
	buf[o] = KL_PT_V;
	buf[o + 1] = KL_EXT_KEYLINE;
	kl_put16(buf + o + 2, (uint16_t)ext);
	buf[o + 4] = req->kind;
	o += 5;
	for (unsigned i = 0; i < nextra; i++) {
		extra[i].off = (uint16_t)(o + 3);
		o += put_tlv(buf + o, extra[i].type, extra[i].val, extra[i].len);
	}
	buf[o] = KL_PT_LAST;
	buf[o + 1] = 1;
	o += 2;
	lay->mac_off = (uint16_t)o;
	memset(buf + o, 0, KL_MIKEY_MAC_LEN);
	lay->len = (uint16_t)(o + KL_MIKEY_MAC_LEN);
	lay->encr_off = 0;
	lay->encr_len = 0;
	return 0;
}

int kl_mikey_build_err(uint8_t *buf, size_t cap, const struct kl_mikey_req *req, uint64_t now,
		       uint8_t err_no, uint16_t detail, struct kl_mikey_layout *lay)
{
	return kl_mikey_build_err_retry(buf, cap, req, now, err_no, detail, 0, lay);
}

int kl_mikey_build_err_retry(uint8_t *buf, size_t cap, const struct kl_mikey_req *req, uint64_t now,
			     uint8_t err_no, uint16_t detail, uint16_t retry_ms,
			     struct kl_mikey_layout *lay)
{
	size_t need = 10 + 10 + 18 + 4 + (detail ? 10 : 0) + (retry_ms ? 5 : 0) + KL_MIKEY_V_LEN,
	       o = 0;

	if (!buf || !req || !lay || (retry_ms && !detail))
		return -EINVAL;
	if (need > cap || need > req->len)
		return -ENOSPC;
	o += put_hdr(buf, KL_DT_ERROR, req->prf, req->csb_id);
	o += put_t_rand(buf + o, now, req->rand, KL_PT_ERR);
	buf[o] = detail ? KL_PT_GENEXT : KL_PT_V;
	buf[o + 1] = err_no;
	buf[o + 2] = 0;
	buf[o + 3] = 0;
	o += 4;
	if (detail) {
		buf[o] = KL_PT_V;
		buf[o + 1] = KL_EXT_KEYLINE;
		kl_put16(buf + o + 2, retry_ms ? 11 : 6);
		buf[o + 4] = req->kind;
		buf[o + 5] = KL_TLV_DETAIL;
		kl_put16(buf + o + 6, 2);
		kl_put16(buf + o + 8, detail);
		o += 10;
		if (retry_ms) {
			buf[o] = KL_TLV_RETRY_AFTER;
			kl_put16(buf + o + 1, 2);
			kl_put16(buf + o + 3, retry_ms);
			o += 5;
		}
	}
	buf[o] = KL_PT_LAST;
	buf[o + 1] = 1;
	o += 2;
	lay->mac_off = (uint16_t)o;
	memset(buf + o, 0, KL_MIKEY_MAC_LEN);
	lay->len = (uint16_t)(o + KL_MIKEY_MAC_LEN);
	lay->encr_off = 0;
	lay->encr_len = 0;
	return 0;
}

/* EXT type 250 of a response: kind || TLV 3 per key. */
static enum kl_drop parse_resp_ext(const uint8_t *d, size_t n, struct kl_mikey_resp *r)
{
	if (n < 1)
		return KL_DROP_MALFORMED;
	r->kind = d[0];
	for (size_t o = 1; o < n;) {
		uint16_t l;

		if (n - o < 3)
			return KL_DROP_MALFORMED;
		l = kl_be16(d + o + 1);
		if (l > n - o - 3)
			return KL_DROP_MALFORMED;
		if (d[o] == KL_TLV_KEY_INFO && r->data_type == KL_DT_PSK_RESP) {
			if (l != 20 || r->nkeys == KL_MIKEY_MAX_KEYS)
				return KL_DROP_MALFORMED;
			r->tlv3[r->nkeys++] = d + o + 3;
		} else if (d[o] == KL_TLV_DETAIL && r->data_type == KL_DT_ERROR) {
			if (l != 2 || r->has_detail)
				return KL_DROP_MALFORMED;
			r->detail = kl_be16(d + o + 3);
			r->has_detail = 1;
		} else if (d[o] == KL_TLV_RETRY_AFTER && r->data_type == KL_DT_ERROR) {
			if (l != 2 || r->has_retry_after)
				return KL_DROP_MALFORMED;
			r->retry_after_ms = kl_be16(d + o + 3);
			r->has_retry_after = 1;
		} else {
			unsigned i = tlv_pos[d[o]];

			/* the kind's own response TLVs, each once, within the registry's bounds */
			if (!i-- || r->data_type != KL_DT_PSK_RESP || r->kind >= KL_KIND__COUNT ||
			    !(kind_tlvs[r->kind].resp_has & (1u << i)) || (r->tlv_seen & (1u << i)) ||
			    l < tlv_def[i].lo || l > tlv_def[i].hi)
				return KL_DROP_MALFORMED;
			r->tlv_seen |= 1u << i;
			r->tlv[i] = d + o + 3;
			r->tlv_len[i] = l;
		}
		o += 3 + l;
	}
	if (r->data_type == KL_DT_PSK_RESP && r->kind < KL_KIND__COUNT &&
	    (r->tlv_seen & kind_tlvs[r->kind].resp_has) != kind_tlvs[r->kind].resp_has)
		return KL_DROP_MALFORMED;
	/* retry-after goes only with "answer not ready yet" (ERR 12/5, PROTOCOL.md section 6); the
	 * error number is read before the EXT */
	if (r->has_retry_after &&
	    (!r->has_detail || r->detail != 5 || r->err_no != KL_ERR_UNSPECIFIED))
		return KL_DROP_MALFORMED;
	return KL_DROP_NONE;
}

enum kl_drop kl_mikey_parse_resp(const uint8_t *p, size_t len, struct kl_mikey_resp *r)
{
	enum kl_drop d;
	size_t o = 10;
	uint8_t next;
	uint16_t l;

	memset(r, 0, sizeof(*r));
	if (!p)
		return KL_DROP_MALFORMED;
	if (len > 3 * KL_MIKEY_REQ_MAX)
		return KL_DROP_OVERSIZED;
	d = parse_hdr(p, len, 0, &r->prf, &r->csb_id, &r->data_type);
	if (d != KL_DROP_NONE)
		return d;
	if (r->data_type != KL_DT_PSK_RESP && r->data_type != KL_DT_ERROR)
		return KL_DROP_UNSUPPORTED_TYPE;
	d = parse_t_rand(p, len, &o, &r->ts, &r->rand, &next);
	if (d != KL_DROP_NONE)
		return d;
	if (r->data_type == KL_DT_ERROR) {
		if (next != KL_PT_ERR || len - o < 4 || p[o + 2] || p[o + 3])
			return KL_DROP_MALFORMED;
		next = p[o];
		r->err_no = p[o + 1];
		o += 4;
		if (next == KL_PT_GENEXT) {
			if (len - o < 4 || p[o] != KL_PT_V || p[o + 1] != KL_EXT_KEYLINE)
				return KL_DROP_MALFORMED;
			l = kl_be16(p + o + 2);
			if (l > len - o - 4)
				return KL_DROP_MALFORMED;
			d = parse_resp_ext(p + o + 4, l, r);
			if (d != KL_DROP_NONE)
				return d;
			next = p[o];
			o += 4 + l;
		}
		if (next != KL_PT_V || len - o < 2 || p[o] != KL_PT_LAST)
			return KL_DROP_MALFORMED;
		if (p[o + 1] != 1)
			return KL_DROP_UNSUPPORTED_ALG;
		if (len - o != KL_MIKEY_V_LEN)
			return KL_DROP_MALFORMED;
		r->mac_off = (uint16_t)(o + 2);
	} else {
		if (next != KL_PT_ID || len - o < 4 || p[o] != KL_PT_GENEXT)
			return KL_DROP_MALFORMED;
		if (p[o + 1] > 1)
			return KL_DROP_UNSUPPORTED_TYPE;
		l = kl_be16(p + o + 2);
		if (l > len - o - 4 || !ident_ok(p + o + 4, l))
			return KL_DROP_MALFORMED;
		r->idr = p + o + 4;
		r->idr_len = l;
		o += 4 + l;
		if (len - o < 4 || (p[o] != KL_PT_KEMAC && p[o] != KL_PT_V) ||
		    p[o + 1] != KL_EXT_KEYLINE)
			return KL_DROP_MALFORMED;
		next = p[o];
		l = kl_be16(p + o + 2);
		if (l > len - o - 4)
			return KL_DROP_MALFORMED;
		d = parse_resp_ext(p + o + 4, l, r);
		if (d != KL_DROP_NONE)
			return d;
		o += 4 + l;
		if (next == KL_PT_V) {
			/* an answer without a secret (kinds 4, 6, 7): no key info, then V */
			if (r->nkeys || !(r->kind == KL_KIND_DH || r->kind == KL_KIND_PEERPV ||
					  r->kind == KL_KIND_PUSH))
				return KL_DROP_MALFORMED;
			if (len - o < 2 || p[o] != KL_PT_LAST)
				return KL_DROP_MALFORMED;
			if (p[o + 1] != 1)
				return KL_DROP_UNSUPPORTED_ALG;
			if (len - o != KL_MIKEY_V_LEN)
				return KL_DROP_MALFORMED;
			r->msg = p;
			r->len = (uint16_t)len;
			r->mac_off = (uint16_t)(o + 2);
			r->mac = p + r->mac_off;
			return KL_DROP_NONE;
		}
		if (!r->nkeys || r->kind == KL_KIND_DH || r->kind == KL_KIND_PEERPV ||
		    r->kind == KL_KIND_PUSH)
			return KL_DROP_MALFORMED;
		/* KEMAC: next 0, encr alg, encr len, encr data, mac alg, MAC */
		if (len - o < 4 || p[o] != KL_PT_LAST)
			return KL_DROP_MALFORMED;
		if (p[o + 1] != 1)
			return KL_DROP_UNSUPPORTED_ALG;
		l = kl_be16(p + o + 2);
		o += 4;
		if (l > len - o)
			return KL_DROP_MALFORMED;
		r->encr = p + o;
		r->encr_len = l;
		o += l;
		if (len - o < 1)
			return KL_DROP_MALFORMED;
		if (p[o] != 1)
			return KL_DROP_UNSUPPORTED_ALG;
		if (len - o != 1 + KL_MIKEY_MAC_LEN)
			return KL_DROP_MALFORMED;
		r->mac_off = (uint16_t)(o + 1);
	}
	r->msg = p;
	r->len = (uint16_t)len;
	r->mac = p + r->mac_off;
	return KL_DROP_NONE;
}

int kl_mikey_parse_keydata(const uint8_t *p, size_t len, struct kl_mikey_key *keys, unsigned max)
{
	unsigned n = 0;
	size_t o = 0;
	uint8_t next = KL_PT_KEYDATA;

	while (next == KL_PT_KEYDATA) {
		uint16_t kl;

		if (n == max || len - o < 4 || p[o + 1] != 0x21)
			return -EBADMSG;
		next = p[o];
		kl = kl_be16(p + o + 2);
		if (!kl || kl > KL_MIKEY_KEY_MAX || len - o - 4 < (size_t)kl + 5 || p[o + 4 + kl] != 4)
			return -EBADMSG;
		keys[n].key = p + o + 4;
		keys[n].key_len = (uint8_t)kl;
		keys[n].key_id = kl_be32(p + o + 5 + kl);
		keys[n].valid_from = keys[n].valid_to = 0;
		n++;
		o += 4 + kl + 5;
		if (next != KL_PT_KEYDATA && next != KL_PT_LAST)
			return -EBADMSG;
	}
	return o == len ? (int)n : -EBADMSG;
}

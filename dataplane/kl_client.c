/* SPDX-License-Identifier: BSD-3-Clause */
/* Client side of the profile: signing requests in batches and verifying answers. No DPDK. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "kl_engine.h"

#define CLIENT_BATCH 64
#define NTP_UNIX_OFFSET 2208988800ull

uint64_t kl_ntp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec + NTP_UNIX_OFFSET) << 32 |
	       (((uint64_t)ts.tv_nsec << 32) / 1000000000ull);
}

int kl_client_sign(struct kl_crypto *c, struct kl_client_req *reqs, unsigned n)
{
	struct kl_hmac_key psk[CLIENT_BATCH][KL_PRF_MAX_CHUNKS], auth[CLIENT_BATCH];
	struct kl_mikey_tk_op tk[CLIENT_BATCH];
	struct kl_hmac_op hop[CLIENT_BATCH];
	const uint8_t *ak[CLIENT_BATCH];
	uint16_t al[CLIENT_BATCH], mo[CLIENT_BATCH];

	if (!c || (n && !reqs))
		return -EINVAL;
	for (unsigned base = 0; base < n; base += CLIENT_BATCH) {
		unsigned m = n - base < CLIENT_BATCH ? n - base : CLIENT_BATCH;

		for (unsigned k = 0; k < m; k++) {
			struct kl_client_req *r = &reqs[base + k];
			int len, nch;

			len = kl_mikey_build_req(r->buf, r->cap, &r->spec, &mo[k]);
			if (len < 0)
				return len;
			r->len = (uint16_t)len;
			nch = kl_prf_key_init((enum kl_prf)r->spec.prf, r->psk, r->psk_len, psk[k],
					      KL_PRF_MAX_CHUNKS);
			if (nch < 0)
				return nch;
			tk[k] = (struct kl_mikey_tk_op){ .chunks = psk[k], .rand = r->spec.rand,
							 .auth_key = r->auth_key, .encr_key = r->encr_key,
							 .salt_key = r->salt_key, .csb_id = r->spec.csb_id,
							 .nchunks = (uint8_t)nch, .rand_len = KL_MIKEY_RAND_LEN,
							 .cs_id = 0xFF };
			ak[k] = r->auth_key;
			al[k] = KL_MIKEY_AUTH_KEY_LEN;
		}
		if (kl_mikey_transport_keys_burst(c, tk, m) < 0 ||
		    kl_hmac_key_init_burst(KL_HASH_SHA1, ak, al, auth, m) < 0)
			return -EIO;
		for (unsigned k = 0; k < m; k++) {
			struct kl_client_req *r = &reqs[base + k];

			hop[k] = (struct kl_hmac_op){ .key = &auth[k], .msg = r->buf, .len = mo[k],
						      .mac = r->buf + mo[k] };
		}
		if (kl_hmac_burst(c, hop, m) < 0)
			return -EIO;
		kl_memzero(psk, sizeof(psk));
		kl_memzero(auth, sizeof(auth));
	}
	return (int)n;
}

/* One batch of kl_client_verify_burst (and kl_client_verify, a batch of one): parse all, MAC all,
 * decrypt what passed. A verified error message is returned whatever its T: an Invalid TS error
 * carries the server's time precisely so the client can resync. */
static void verify_batch(struct kl_crypto *c, struct kl_client_check *chk, unsigned m,
			 uint32_t skew_s)
{
	struct kl_mikey_resp r[CLIENT_BATCH];
	struct kl_hmac_key auth[CLIENT_BATCH];
	struct kl_hmac_op hop[CLIENT_BATCH];
	struct kl_aescm_op aop[CLIENT_BATCH];
	uint8_t mac[CLIENT_BATCH][KL_SHA1_LEN];
	unsigned hidx[CLIENT_BATCH], aidx[CLIENT_BATCH], nh = 0, na = 0, nauth;
	uint64_t skew = (uint64_t)skew_s << 32;

	for (unsigned k = 0; k < m; k++) {
		struct kl_client_check *x = &chk[k];

		if (!x->req || !x->ans || !x->res) {
			x->rc = -EINVAL;
			continue;
		}
		memset(x->res, 0, sizeof(*x->res));
		if (kl_mikey_parse_resp(x->ans, x->len, &r[k]) != KL_DROP_NONE) {
			x->rc = -EBADMSG;
			continue;
		}
		kl_hmac_key_init(KL_HASH_SHA1, x->req->auth_key, KL_MIKEY_AUTH_KEY_LEN, &auth[nh]);
		hop[nh] = (struct kl_hmac_op){ .key = &auth[nh], .msg = x->ans, .len = r[k].mac_off,
					       .mac = mac[nh] };
		hidx[nh++] = k;
	}
	nauth = nh; /* what to wipe: a batch of one does not pay for 64 */
	if (nh && kl_hmac_burst(c, hop, nh) < 0) {
		for (unsigned i = 0; i < nh; i++)
			chk[hidx[i]].rc = -EIO;
		nh = 0;
	}
	kl_memzero(auth, nauth * sizeof(auth[0]));
	for (unsigned i = 0; i < nh; i++) {
		unsigned k = hidx[i];
		struct kl_client_check *x = &chk[k];
		const struct kl_mikey_resp *p = &r[k];
		uint8_t d = 0;
		uint64_t dt;

		for (unsigned b = 0; b < KL_MIKEY_MAC_LEN; b++)
			d |= mac[i][b] ^ p->mac[b];
		if (d) {
			x->rc = -EPERM;
			continue;
		}
		if (memcmp(p->rand, x->req->spec.rand, KL_MIKEY_RAND_LEN) ||
		    p->csb_id != x->req->spec.csb_id || p->prf != x->req->spec.prf) {
			x->rc = -EPROTO;
			continue;
		}
		x->res->server_ts = p->ts;
		if (p->data_type == KL_DT_ERROR) {
			x->res->is_error = 1;
			x->res->err_no = p->err_no;
			x->res->detail = p->detail;
			x->rc = 0;
			continue;
		}
		dt = p->ts > x->now ? p->ts - x->now : x->now - p->ts;
		if (dt > skew) {
			x->rc = -ETIME;
			continue;
		}
		if (p->kind != x->req->spec.kind || p->encr_len > sizeof(x->res->plain)) {
			x->rc = -EPROTO;
			continue;
		}
		aop[na] = (struct kl_aescm_op){ .key = x->req->encr_key, .salt = x->req->salt_key,
						.in = p->encr, .out = x->res->plain, .ntp_ts = p->ts,
						.csb_id = p->csb_id, .len = p->encr_len };
		aidx[na++] = k;
	}
	kl_memzero(mac, nauth * sizeof(mac[0]));
	if (na && kl_aescm_burst(c, aop, na) != (int)na) {
		for (unsigned i = 0; i < na; i++)
			chk[aidx[i]].rc = -EIO;
		na = 0;
	}
	for (unsigned i = 0; i < na; i++) {
		unsigned k = aidx[i];
		struct kl_client_check *x = &chk[k];
		const struct kl_mikey_resp *p = &r[k];
		int nk = kl_mikey_parse_keydata(x->res->plain, p->encr_len, x->res->keys,
						KL_MIKEY_MAX_KEYS);

		int session = kl_mikey_kind_session(p->kind);

		x->rc = 0;
		if (nk < 0 || (unsigned)nk != p->nkeys || (session && nk != 1)) {
			x->rc = -EBADMSG;
			continue;
		}
		for (int j = 0; j < nk; j++) {
			/* a session's TLV 3 names the session and its key's SPI is 0; otherwise the
			 * TLV 3 names the key, whose SPI is its id */
			if (session ? x->res->keys[j].key_id != 0
				    : kl_be32(p->tlv3[j]) != x->res->keys[j].key_id) {
				x->rc = -EBADMSG;
				break;
			}
			x->res->keys[j].key_id = kl_be32(p->tlv3[j]);
			x->res->keys[j].valid_from = kl_be64(p->tlv3[j] + 4);
			x->res->keys[j].valid_to = kl_be64(p->tlv3[j] + 12);
		}
		if (!x->rc) {
			x->res->nkeys = (uint8_t)nk;
			for (unsigned t = 0; t < 2; t++) {
				unsigned ti = t ? KL_TLVI_TOKEN_PEER : KL_TLVI_TOKEN_REQ;

				if (p->tlv_seen & (1u << ti)) {
					x->res->token[t] = p->tlv[ti];
					x->res->token_len[t] = p->tlv_len[ti];
				}
			}
		}
	}
}

int kl_client_verify(struct kl_crypto *c, const struct kl_client_req *req, const uint8_t *ans,
		     uint16_t len, uint64_t now, uint32_t skew_s, struct kl_client_result *res)
{
	struct kl_client_check x = { .req = req, .ans = ans, .len = len, .now = now, .res = res };

	if (!c || !req || !ans || !res)
		return -EINVAL;
	verify_batch(c, &x, 1, skew_s);
	return x.rc;
}

int kl_client_verify_burst(struct kl_crypto *c, struct kl_client_check *chk, unsigned n,
			   uint32_t skew_s)
{
	if (!c || (n && !chk))
		return -EINVAL;
	for (unsigned base = 0; base < n; base += CLIENT_BATCH)
		verify_batch(c, chk + base, n - base < CLIENT_BATCH ? n - base : CLIENT_BATCH, skew_s);
	return (int)n;
}

/* ---- HM tokens ---------------------------------------------------------------------------------- */

#define HM_TOKEN_VERSION 0x01
#define HM_AAD_MAX (3 + 2 * 255)

int kl_client_hm_open_burst(struct kl_crypto *c, struct kl_hm_open *ops, unsigned n)
{
	static __thread uint8_t aad[CLIENT_BATCH][HM_AAD_MAX];
	static __thread uint8_t plain[CLIENT_BATCH][KL_MIKEY_REQ_MAX];
	struct kl_gcm_op g[CLIENT_BATCH];
	unsigned idx[CLIENT_BATCH];

	if (!c || (n && !ops))
		return -EINVAL;
	for (unsigned base = 0; base < n; base += CLIENT_BATCH) {
		unsigned m = n - base < CLIENT_BATCH ? n - base : CLIENT_BATCH, ng = 0;

		for (unsigned k = 0; k < m; k++) {
			struct kl_hm_open *o = &ops[base + k];
			uint16_t ct;
			uint8_t *a = aad[ng];

			memset(o->ks, 0, sizeof(o->ks));
			o->valid_to = 0;
			/* 0x01 || nonce (12) || ciphertext (>= 16 + 8 + 1 + 1 + 1 + 1) || tag (16) */
			if (!o->kstar || !o->token || !o->vlra || !o->vlrb || !o->ue_a || !o->ue_b ||
			    !o->vlra_len || o->vlra_len > 255 || !o->vlrb_len || o->vlrb_len > 255 ||
			    o->token_len < 1 + KL_GCM_IV_LEN + 28 + KL_GCM_TAG_LEN ||
			    o->token_len > 1 + KL_GCM_IV_LEN + KL_MIKEY_REQ_MAX + KL_GCM_TAG_LEN ||
			    o->token[0] != HM_TOKEN_VERSION) {
				o->rc = -EBADMSG;
				continue;
			}
			ct = (uint16_t)(o->token_len - 1 - KL_GCM_IV_LEN - KL_GCM_TAG_LEN);
			a[0] = 0x01;
			a[1] = (uint8_t)o->vlra_len;
			memcpy(a + 2, o->vlra, o->vlra_len);
			a[2 + o->vlra_len] = (uint8_t)o->vlrb_len;
			memcpy(a + 3 + o->vlra_len, o->vlrb, o->vlrb_len);
			g[ng] = (struct kl_gcm_op){ .key = o->kstar, .iv = o->token + 1, .aad = a,
						    .aad_len = (uint16_t)(3 + o->vlra_len + o->vlrb_len),
						    .in = o->token + 1 + KL_GCM_IV_LEN, .out = plain[ng],
						    .len = ct,
						    .tag = (uint8_t *)(uintptr_t)(o->token + 1 + KL_GCM_IV_LEN + ct) };
			idx[ng++] = k;
		}
		if (ng && kl_gcm_open_burst(c, g, ng) != (int)ng) {
			for (unsigned i = 0; i < ng; i++)
				ops[base + idx[i]].rc = -EIO;
			ng = 0;
		}
		for (unsigned i = 0; i < ng; i++) {
			struct kl_hm_open *o = &ops[base + idx[i]];
			const uint8_t *p = plain[i];
			unsigned len = g[i].len, la, lb;

			if (g[i].rc) {
				o->rc = -EPERM;
				continue;
			}
			/* Ks (16) || valid-to (8) || len || IDUEa || len || IDUEb, exactly; identities
			 * of 1..128 bytes */
			la = p[24];
			lb = 25 + la < len ? p[25 + la] : 0;
			if (!la || !lb || la > KL_MIKEY_ID_MAX || lb > KL_MIKEY_ID_MAX ||
			    26 + la + lb != len) {
				o->rc = -EBADMSG;
			} else if (la != o->ue_a_len || lb != o->ue_b_len ||
				   memcmp(p + 25, o->ue_a, la) || memcmp(p + 26 + la, o->ue_b, lb)) {
				o->rc = -EPROTO;
			} else {
				o->valid_to = kl_be64(p + 16);
				if (o->valid_to <= o->now) {
					o->rc = -ETIME;
				} else {
					memcpy(o->ks, p, 16);
					o->rc = 0;
				}
			}
		}
		kl_memzero(plain, ng * sizeof(plain[0]));
	}
	return (int)n;
}

int kl_client_hm_pad(const struct kl_mikey_req_spec *s, uint16_t idr_len)
{
	/* the sizes of kl_mikey_build_req and kl_mikey_build_resp_tlv for kind 2: a request is
	 * HDR, T, RAND, IDi, EXT (kind, TLV 5, TLV 6), V; an answer HDR, T, RAND, IDr, EXT (kind,
	 * TLV 3, token_a, token_b), KEMAC with K*a; a token 0x01 || nonce || Ks || valid-to ||
	 * len || IDUEa || len || IDUEb || tag */
	size_t req, ans, tok;

	if (!s || s->kind != KL_KIND_HM || !s->id_len || !s->peer_ue_len || !s->peer_server_len ||
	    !idr_len)
		return -EINVAL;
	req = 10 + 10 + 18 + 4 + (size_t)s->id_len + 4 + 1 + 3 + (size_t)s->peer_ue_len + 3 +
	      (size_t)s->peer_server_len + KL_MIKEY_V_LEN;
	tok = 1 + KL_GCM_IV_LEN + 16 + 8 + 1 + (size_t)s->id_len + 1 + (size_t)s->peer_ue_len +
	      KL_GCM_TAG_LEN;
	ans = 10 + 10 + 18 + 4 + (size_t)idr_len + 4 + 1 + 23 + 2 * (3 + tok) + 4 + (4 + 32 + 5) + 1 +
	      KL_MIKEY_MAC_LEN;
	if (3 * req >= ans)
		return -1;
	/* the TLV itself is 3 bytes; its value makes up the rest */
	{
		size_t more = (ans - 3 * req + 2) / 3, pad = more > 3 ? more - 3 : 0;

		if (req + 3 + pad > KL_MIKEY_REQ_MAX)
			return -ENOSPC;
		return (int)pad;
	}
}

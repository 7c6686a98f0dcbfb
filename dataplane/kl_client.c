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
			x->res->retry_after_ms = p->retry_after_ms;
			x->res->has_retry_after = p->has_retry_after;
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
		if (!p->encr) {
			/* an answer without a secret (kind 4: the peer's public value), nothing to
			 * decrypt; the codec checked that it carries the kind's TLVs */
			if (p->tlv_seen & (1u << KL_TLVI_X25519))
				x->res->x25519 = p->tlv[KL_TLVI_X25519];
			x->rc = 0;
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

/* ---- DH VLR scheme (kind 4) and ProSe (kind 5) on the UE side -------------------------------- */

/* s_own's derivation from the table (PROTOCOL.md section 7): FC FF07 and its fixed parameter
 * "dh-x25519". */
static struct kl_kdf_param dh_label(uint16_t *fc)
{
	const struct kl_kdf_def *d = kl_kdf_def_get(KL_KDF_DH_SCALAR);

	*fc = d->fc;
	return (struct kl_kdf_param){ .data = (const uint8_t *)d->fixed[0], .len = strlen(d->fixed[0]) };
}

/* The identities of op in bytewise ascending order (a prefix first). @return -EINVAL if equal. */
static int dh_order(const struct kl_dh_op *o, struct kl_kdf_param ids[2])
{
	uint16_t m = o->la < o->lb ? o->la : o->lb;
	int cmp = memcmp(o->id_a, o->id_b, m);

	if (!cmp && o->la == o->lb)
		return -EINVAL;
	if (!cmp)
		cmp = o->la < o->lb ? -1 : 1;
	ids[cmp < 0 ? 0 : 1] = (struct kl_kdf_param){ .data = o->id_a, .len = o->la };
	ids[cmp < 0 ? 1 : 0] = (struct kl_kdf_param){ .data = o->id_b, .len = o->lb };
	return 0;
}

int kl_client_dh_ks_burst(struct kl_crypto *c, struct kl_dh_op *ops, unsigned n)
{
	static __thread struct kl_hmac_key hk[CLIENT_BATCH];
	static __thread uint8_t sec[CLIENT_BATCH][KL_KDF_OUT_LEN];
	const uint16_t fc_ks = kl_kdf_def_get(KL_KDF_DH_KS)->fc;
	uint16_t fc_scalar;
	struct kl_kdf_param label = dh_label(&fc_scalar);
	struct kl_kdf_param ids[CLIENT_BATCH][2];
	struct kl_kdf_op kop[CLIENT_BATCH];
	const uint8_t *kp[CLIENT_BATCH];
	uint16_t kl[CLIENT_BATCH];
	unsigned idx[CLIENT_BATCH];

	if (!c || (n && !ops))
		return -EINVAL;
	for (unsigned base = 0; base < n; base += CLIENT_BATCH) {
		unsigned m = n - base < CLIENT_BATCH ? n - base : CLIENT_BATCH, ng = 0, nx = 0;

		for (unsigned k = 0; k < m; k++) {
			struct kl_dh_op *o = &ops[base + k];

			memset(o->ks, 0, sizeof(o->ks));
			o->rc = -EINVAL;
			if (!o->own_key || !o->own_key_len || !o->peer_pub || !o->id_a || !o->id_b ||
			    !o->la || !o->lb || dh_order(o, ids[ng]))
				continue;
			kp[ng] = o->own_key;
			kl[ng] = o->own_key_len;
			idx[ng++] = k;
		}
		/* s_own = KDF(Kx, FF07, "dh-x25519"), one batch */
		if (ng && kl_hmac_key_init_burst(KL_HASH_SHA256, kp, kl, hk, ng) != (int)ng)
			ng = 0;
		for (unsigned i = 0; i < ng; i++)
			kop[i] = (struct kl_kdf_op){ .key = &hk[i], .params = &label, .fc = fc_scalar,
						     .nparams = 1, .out = sec[i] };
		if (ng && kl_kdf_burst(c, kop, ng) != (int)ng) {
			for (unsigned i = 0; i < ng; i++)
				ops[base + idx[i]].rc = -EIO;
			ng = 0;
		}
		/* X25519 one by one (OpenSSL has no batch); then Ks = KDF(shared, FF08, ...) */
		for (unsigned i = 0; i < ng; i++) {
			struct kl_dh_op *o = &ops[base + idx[i]];
			uint8_t x[KL_X25519_LEN];

			o->rc = kl_x25519_shared(sec[i], o->peer_pub, x);
			if (o->rc)
				continue;
			kp[nx] = o->ks; /* the shared secret waits in ks until its key state is made */
			memcpy(o->ks, x, sizeof(x));
			kl_memzero(x, sizeof(x));
			kl[nx] = KL_X25519_LEN;
			ids[nx][0] = ids[i][0];
			ids[nx][1] = ids[i][1];
			idx[nx++] = idx[i];
		}
		kl_memzero(sec, ng * sizeof(sec[0]));
		if (nx && kl_hmac_key_init_burst(KL_HASH_SHA256, kp, kl, hk, nx) != (int)nx) {
			for (unsigned i = 0; i < nx; i++)
				ops[base + idx[i]].rc = -EIO;
			nx = 0;
		}
		for (unsigned i = 0; i < nx; i++)
			kop[i] = (struct kl_kdf_op){ .key = &hk[i], .params = ids[i], .fc = fc_ks,
						     .nparams = 2, .out = ops[base + idx[i]].ks };
		if (nx && kl_kdf_burst(c, kop, nx) != (int)nx)
			for (unsigned i = 0; i < nx; i++)
				ops[base + idx[i]].rc = -EIO;
		for (unsigned k = 0; k < m; k++)
			if (ops[base + k].rc)
				kl_memzero(ops[base + k].ks, sizeof(ops[base + k].ks));
		kl_memzero(hk, sizeof(hk));
	}
	return (int)n;
}

int kl_client_dh_ks(struct kl_crypto *c, const uint8_t *own_key, uint16_t own_key_len,
		    const uint8_t peer_pub[32], const uint8_t *id_a, uint16_t la,
		    const uint8_t *id_b, uint16_t lb, uint8_t ks[32])
{
	struct kl_dh_op o = { .own_key = own_key, .own_key_len = own_key_len, .peer_pub = peer_pub,
			      .id_a = id_a, .id_b = id_b, .la = la, .lb = lb };

	if (!ks)
		return -EINVAL;
	if (kl_client_dh_ks_burst(c, &o, 1) != 1)
		o.rc = -EINVAL;
	memcpy(ks, o.ks, sizeof(o.ks));
	kl_memzero(o.ks, sizeof(o.ks));
	return o.rc;
}

int kl_client_dh_public(struct kl_crypto *c, const uint8_t *own_key, uint16_t own_key_len,
			uint8_t pub[32])
{
	struct kl_hmac_key k;
	int rc;

	if (!c || !own_key || !own_key_len || !pub)
		return -EINVAL;
	if (kl_hmac_key_init(KL_HASH_SHA256, own_key, own_key_len, &k))
		return -EINVAL;
	rc = kl_dh_public(c, &k, pub); /* the control plane's derivation, one implementation */
	kl_hmac_key_wipe(&k);
	return rc;
}

int kl_client_prose_burst(struct kl_crypto *c, struct kl_prose_op *ops, unsigned n)
{
	static __thread struct kl_hmac_key hk[CLIENT_BATCH];
	const uint16_t fc_p = kl_kdf_def_get(KL_KDF_PROSE_P2)->fc,
		       fc_kd = kl_kdf_def_get(KL_KDF_PROSE_KD)->fc;
	struct kl_kdf_param in[CLIENT_BATCH];
	struct kl_kdf_op kop[CLIENT_BATCH];
	const uint8_t *kp[CLIENT_BATCH];
	uint16_t kl[CLIENT_BATCH];
	unsigned idx[CLIENT_BATCH];

	if (!c || (n && !ops))
		return -EINVAL;
	for (unsigned base = 0; base < n; base += CLIENT_BATCH) {
		unsigned m = n - base < CLIENT_BATCH ? n - base : CLIENT_BATCH, ng = 0;

		for (unsigned k = 0; k < m; k++) {
			struct kl_prose_op *o = &ops[base + k];

			memset(o->out, 0, sizeof(o->out));
			o->rc = -EINVAL;
			if (!o->key || !o->in || !o->key_len || o->kd > 1 ||
			    (o->kd && o->key_len != 32))
				continue;
			kp[ng] = o->key;
			kl[ng] = o->key_len;
			in[ng] = (struct kl_kdf_param){ .data = o->in, .len = o->kd ? 32 : 16 };
			idx[ng++] = k;
		}
		if (ng && kl_hmac_key_init_burst(KL_HASH_SHA256, kp, kl, hk, ng) != (int)ng)
			ng = 0;
		for (unsigned i = 0; i < ng; i++) {
			struct kl_prose_op *o = &ops[base + idx[i]];

			kop[i] = (struct kl_kdf_op){ .key = &hk[i], .params = &in[i],
						     .fc = o->kd ? fc_kd : fc_p, .nparams = 1,
						     .out = o->out };
		}
		if (ng && kl_kdf_burst(c, kop, ng) == (int)ng)
			for (unsigned i = 0; i < ng; i++)
				ops[base + idx[i]].rc = 0;
		else
			for (unsigned i = 0; i < ng; i++)
				kl_memzero(ops[base + idx[i]].out, 32);
		kl_memzero(hk, ng * sizeof(hk[0]));
	}
	return (int)n;
}

/* One ProSe derivation through kl_client_prose_burst. */
static int prose_one(struct kl_crypto *c, const uint8_t *key, uint16_t key_len,
		     const uint8_t *in, uint8_t kd, uint8_t out[32])
{
	struct kl_prose_op o = { .key = key, .in = in, .key_len = key_len, .kd = kd };

	if (!out)
		return -EINVAL;
	if (kl_client_prose_burst(c, &o, 1) != 1)
		o.rc = -EINVAL;
	memcpy(out, o.out, 32);
	kl_memzero(o.out, sizeof(o.out));
	return o.rc;
}

int kl_client_prose_p(struct kl_crypto *c, const uint8_t *kasme, uint16_t kasme_len,
		      const uint8_t p_in[16], uint8_t p_out[32])
{
	return prose_one(c, kasme, kasme_len, p_in, 0, p_out);
}

int kl_client_prose_kd(struct kl_crypto *c, const uint8_t p2[32], const uint8_t p4[32],
		       uint8_t kd[32])
{
	return prose_one(c, p2, 32, p4, 1, kd);
}

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

		x->rc = 0;
		if (nk < 0 || (unsigned)nk != p->nkeys) {
			x->rc = -EBADMSG;
			continue;
		}
		for (int j = 0; j < nk; j++) {
			if (kl_be32(p->tlv3[j]) != x->res->keys[j].key_id) {
				x->rc = -EBADMSG;
				break;
			}
			x->res->keys[j].valid_from = kl_be64(p->tlv3[j] + 4);
			x->res->keys[j].valid_to = kl_be64(p->tlv3[j] + 12);
		}
		if (!x->rc)
			x->res->nkeys = (uint8_t)nk;
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

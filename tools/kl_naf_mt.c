/* SPDX-License-Identifier: BSD-3-Clause */
/* The MT side of the NAF Key Center: the BSF simulator's UE file and the MT's derivation. */
#include "kl_naf_mt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kl_crypto.h"
#include "kl_util.h"

long kl_naf_hex(const char *s, uint8_t *out, size_t cap)
{
	size_t n;

	if (!s)
		return -1;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	n = strlen(s);
	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = kl_hexval(s[2 * i]), lo = kl_hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

static int hex_member(json_t *o, const char *name, uint8_t *out, size_t len, char *err,
		      size_t errlen)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_string(v)) {
		kl_errf(err, errlen, "\"%s\": missing or not a string", name);
		return -1;
	}
	if (json_string_length(v) != 2 * len || kl_naf_hex(json_string_value(v), out, len) != (long)len) {
		kl_errf(err, errlen, "\"%s\": want %zu bytes of hex", name, len);
		return -1;
	}
	return 0;
}

int kl_naf_json_text(json_t *o, const char *name, char *out, size_t cap, char *err,
		     size_t errlen)
{
	json_t *v = json_object_get(o, name);
	size_t n;

	if (!json_is_string(v)) {
		kl_errf(err, errlen, "\"%s\": missing or not a string", name);
		return -1;
	}
	n = json_string_length(v);
	if (!n || n >= cap) {
		kl_errf(err, errlen, "\"%s\": want 1..%zu bytes", name, cap - 1);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)json_string_value(v)[i];

		if (c <= 0x20 || c >= 0x7f) {
			kl_errf(err, errlen, "\"%s\": not printable ASCII without spaces", name);
			return -1;
		}
	}
	memcpy(out, json_string_value(v), n + 1);
	return 0;
}

static int uint_member(json_t *o, const char *name, uint64_t max, uint64_t *out, char *err,
		       size_t errlen)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max) {
		kl_errf(err, errlen, "\"%s\": missing or not an integer 0..%llu", name,
			(unsigned long long)max);
		return -1;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int kl_naf_ue_parse(const char *line, size_t len, struct kl_naf_ue *u, char *err, size_t errlen)
{
	json_error_t je;
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	uint64_t idx = 0, run = 0;
	int rc = -1;

	memset(u, 0, sizeof(*u));
	if (!o) {
		/* je.text may quote the input: only the position is given */
		kl_errf(err, errlen, "not JSON (column %d)", je.column);
		return -1;
	}
	if (!json_is_object(o)) {
		kl_errf(err, errlen, "not a JSON object");
		goto out;
	}
	if (uint_member(o, "index", UINT32_MAX, &idx, err, errlen) ||
	    uint_member(o, "run", UINT32_MAX, &run, err, errlen) ||
	    kl_naf_json_text(o, "impi", u->impi, sizeof(u->impi), err, errlen) ||
	    kl_naf_json_text(o, "b_tid", u->btid, sizeof(u->btid), err, errlen) ||
	    hex_member(o, "k", u->k, 16, err, errlen) || hex_member(o, "opc", u->opc, 16, err, errlen) ||
	    hex_member(o, "rand", u->rand, 16, err, errlen) ||
	    hex_member(o, "sqn", u->sqn, 6, err, errlen) || hex_member(o, "amf", u->amf, 2, err, errlen) ||
	    uint_member(o, "expires", UINT64_MAX >> 1, &u->expires, err, errlen))
		goto out;
	u->index = (uint32_t)idx;
	u->run = (uint32_t)run;
	rc = 0;
out:
	json_decref(o); /* jansson does not wipe: the K strings stay in freed memory of this tool */
	if (rc)
		kl_memzero(u, sizeof(*u));
	return rc;
}

int kl_naf_ue_read(const char *path, struct kl_naf_ue **ues, size_t *n, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	struct kl_naf_ue *v = NULL;
	size_t cnt = 0, cap = 0, lc = 0;
	char *line = NULL, why[160];
	size_t lcap = 0;
	ssize_t len;

	*ues = NULL;
	*n = 0;
	if (!f) {
		kl_errf(err, errlen, "cannot open: %s", strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &lcap, f)) >= 0) {
		lc++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (!len || strspn(line, " \t") == (size_t)len)
			continue;
		if (cnt == cap) {
			size_t nc = cap ? 2 * cap : 256;
			struct kl_naf_ue *nv = calloc(nc, sizeof(*nv));

			if (!nv) {
				kl_errf(err, errlen, "out of memory");
				goto fail;
			}
			if (v) {
				memcpy(nv, v, cnt * sizeof(*v));
				kl_memzero(v, cnt * sizeof(*v));
				free(v);
			}
			v = nv;
			cap = nc;
		}
		if (kl_naf_ue_parse(line, (size_t)len, &v[cnt], why, sizeof(why))) {
			kl_errf(err, errlen, "line %zu: %s", lc, why);
			goto fail;
		}
		cnt++;
	}
	if (ferror(f)) {
		kl_errf(err, errlen, "read error");
		goto fail;
	}
	if (!cnt) {
		kl_errf(err, errlen, "no UE in the file");
		goto fail;
	}
	if (line)
		kl_memzero(line, lcap);
	free(line);
	fclose(f);
	*ues = v;
	*n = cnt;
	return 0;
fail:
	if (line)
		kl_memzero(line, lcap);
	free(line);
	fclose(f);
	kl_naf_ue_free(v, cnt);
	return -1;
}

void kl_naf_ue_free(struct kl_naf_ue *ues, size_t n)
{
	if (ues)
		kl_memzero(ues, n * sizeof(*ues));
	free(ues);
}

const struct kl_naf_ue *kl_naf_ue_find(const struct kl_naf_ue *ues, size_t n, const char *btid)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ues[i].btid, btid))
			return &ues[i];
	return NULL;
}

int kl_naf_mt_derive(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
		     const uint8_t sqn[6], const uint8_t amf[2], const char *impi, const char *btid,
		     const uint8_t *naf_id, size_t naf_len, const char *device_id,
		     struct kl_naf_mt_keys *out)
{
	struct kl_milenage_out m;
	struct kl_kdf_param p[3];
	uint8_t ckik[32];
	size_t il, bl, dl;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!impi || !btid || !device_id || (!naf_id && naf_len))
		return -EINVAL;
	il = strlen(impi);
	bl = strlen(btid);
	dl = strlen(device_id);
	if (!il || il > KL_NAF_MT_IMPI_MAX || !bl || bl > KL_NAF_MT_BTID_MAX || !naf_len ||
	    naf_len > KL_NAF_MT_ID_MAX || !dl || dl > KL_NAF_MT_ID_MAX)
		return -EINVAL;
	if (kl_milenage(k, opc, rand, sqn, amf, &m))
		return -EIO;
	memcpy(out->ck, m.ck, 16);
	memcpy(out->ik, m.ik, 16);
	memcpy(ckik, m.ck, 16);
	memcpy(ckik + 16, m.ik, 16);
	kl_memzero(&m, sizeof(m));
	p[0] = (struct kl_kdf_param){ .data = rand, .len = 16 };
	p[1] = (struct kl_kdf_param){ .data = (const uint8_t *)impi, .len = il };
	p[2] = (struct kl_kdf_param){ .data = naf_id, .len = naf_len };
	rc = kl_derive(NULL, KL_KDF_KS_NAF, ckik, sizeof(ckik), p, 3, out->ks_naf);
	kl_memzero(ckik, sizeof(ckik));
	if (!rc) {
		p[0] = (struct kl_kdf_param){ .data = (const uint8_t *)btid, .len = bl };
		p[1] = (struct kl_kdf_param){ .data = naf_id, .len = naf_len };
		p[2] = (struct kl_kdf_param){ .data = (const uint8_t *)device_id, .len = dl };
		rc = kl_derive(NULL, KL_KDF_KS_LOCAL_MT, out->ks_naf, sizeof(out->ks_naf), p, 3,
			       out->ks_local_mt);
	}
	if (rc) {
		kl_memzero(out, sizeof(*out));
		return rc == -EINVAL ? -EINVAL : -EIO;
	}
	return 0;
}

int kl_naf_mt_derive_ue(const struct kl_naf_ue *u, const uint8_t *naf_id, size_t naf_len,
			const char *device_id, struct kl_naf_mt_keys *out)
{
	return kl_naf_mt_derive(u->k, u->opc, u->rand, u->sqn, u->amf, u->impi, u->btid, naf_id,
				naf_len, device_id, out);
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The MT side of the NAF Key Center (PROTOCOL.md sections 7 and 11): what a UE (UICC + ME) that
 * ran GBA_ME holds, as keyline-hss-sim's BSF role writes it to its UE file (one JSON object per
 * line: index, run, impi, b_tid, k, opc, rand, sqn, amf, expires; contract BSF_SIM.md), and the
 * derivation the MT makes from it:
 *   Milenage(K, OPc, RAND, SQN, AMF) -> CK, IK
 *   Ks_(ext)_NAF = KDF(CK||IK, 0x01, "gba-me", RAND, IMPI, NAF_Id)
 *   Ks_local_MT  = KDF(Ks_(ext)_NAF, 0xFF03, B-TID, NAF_ID, Device_ID)
 * Used by keyline-kdf gba-ks-local-mt and keyline-burst --kind naf (which verifies every key the
 * Key Center hands out against it). No crypto context: the table's one-shot derivations.
 */
#ifndef KL_NAF_MT_H
#define KL_NAF_MT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define KL_NAF_MT_BTID_MAX 255
#define KL_NAF_MT_IMPI_MAX 255
#define KL_NAF_MT_ID_MAX 255	 /* NAF_ID and Device_ID */
#define KL_NAF_MT_KEY_LEN 32

/** One line of the UE file: one UE's GBA run. */
struct kl_naf_ue {
	uint32_t index, run;
	char impi[KL_NAF_MT_IMPI_MAX + 1];
	char btid[KL_NAF_MT_BTID_MAX + 1];
	uint8_t k[16], opc[16], rand[16], sqn[6], amf[2];
	uint64_t expires; /* Unix seconds */
};

/**
 * Parse one line of the UE file (a JSON object with every member above, hex of exact lengths,
 * impi and b_tid 1..255 bytes of printable text). Never echoes values (they hold K).
 * @return 0, or -1 with err set.
 */
int kl_naf_ue_parse(const char *line, size_t len, struct kl_naf_ue *u, char *err, size_t errlen);

/**
 * Read a whole UE file: *ues (malloc'd; the caller frees it with kl_naf_ue_free) and *n. Blank
 * lines are skipped; any other bad line fails the read, naming its line number. An empty file
 * is an error.
 * @return 0, or -1 with err set.
 */
int kl_naf_ue_read(const char *path, struct kl_naf_ue **ues, size_t *n, char *err, size_t errlen);

/** Wipe (the entries hold K and OPc) and free. */
void kl_naf_ue_free(struct kl_naf_ue *ues, size_t n);

/** The UE of a B-TID in ues[0..n), NULL if none. */
const struct kl_naf_ue *kl_naf_ue_find(const struct kl_naf_ue *ues, size_t n, const char *btid);

/** The steps of the MT's derivation (all of them, so tools can show their check values). */
struct kl_naf_mt_keys {
	uint8_t ck[16], ik[16];
	uint8_t ks_naf[KL_NAF_MT_KEY_LEN];
	uint8_t ks_local_mt[KL_NAF_MT_KEY_LEN];
};

/**
 * The MT's derivation from its GBA run's inputs. impi, btid, device_id: text; naf_id: bytes.
 * @return 0, or -EINVAL (empty or over-long identity) / -EIO (crypto).
 */
int kl_naf_mt_derive(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
		     const uint8_t sqn[6], const uint8_t amf[2], const char *impi, const char *btid,
		     const uint8_t *naf_id, size_t naf_len, const char *device_id,
		     struct kl_naf_mt_keys *out);

/** The same from a UE file entry. */
int kl_naf_mt_derive_ue(const struct kl_naf_ue *u, const uint8_t *naf_id, size_t naf_len,
			const char *device_id, struct kl_naf_mt_keys *out);

/**
 * The member name of JSON object o as text into out: 1..cap-1 bytes of printable ASCII without
 * spaces (identities, B-TIDs, hex, times). Never echoes the value. @return 0, or -1 with err set.
 */
int kl_naf_json_text(json_t *o, const char *name, char *out, size_t cap, char *err,
		     size_t errlen);

/** Hex text (even length, optional 0x) into out (at most cap bytes). @return the length, or -1. */
long kl_naf_hex(const char *s, uint8_t *out, size_t cap);

#endif

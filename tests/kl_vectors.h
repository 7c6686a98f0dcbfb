/* SPDX-License-Identifier: BSD-3-Clause */
/* Reader for the published vector files (shared/vectors): blocks of "name: value" lines. */
#ifndef KL_VECTORS_H
#define KL_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#define KL_VB_MAX_KV 32

struct kl_vkv {
	char *k;
	char *v;
};

struct kl_vblock {
	struct kl_vkv kv[KL_VB_MAX_KV];
	unsigned n;
};

struct kl_vfile {
	struct kl_vblock *b;
	unsigned n;
	char *text;
};

/** Load dir/file (dir from $KL_VECTORS_DIR when dir is NULL). @return 0 or -1 with a message. */
int kl_vfile_load(const char *file, struct kl_vfile *out);
/** Load a vector file by path (no errata). @return 0 or -1 with a message. */
int kl_vfile_load_path(const char *path, struct kl_vfile *out);
void kl_vfile_free(struct kl_vfile *f);
/** Value of key k in a block, or NULL. */
const char *kl_vget(const struct kl_vblock *b, const char *k);
/** Decode lower/upper-case hex; @return the length, or -1 when not hex or longer than cap. */
long kl_unhex(const char *s, uint8_t *out, size_t cap);

#endif

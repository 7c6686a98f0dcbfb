/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_vectors.h"
#include "kl_util.h"

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = 0;
	return s;
}

static int load_path(const char *path, struct kl_vfile *out);

/* Applies tests/vectors-errata.txt ($KL_VECTORS_ERRATA) to a freshly loaded file. */
static void apply_errata(const char *file, struct kl_vfile *vf)
{
	static struct kl_vfile er;
	static int loaded;
	const char *path = getenv("KL_VECTORS_ERRATA");

	if (!loaded) {
		loaded = 1;
		if (!path || load_path(path, &er) < 0)
			return;
	}
	for (unsigned e = 0; e < er.n; e++) {
		const struct kl_vblock *eb = &er.b[e];
		const char *ef = kl_vget(eb, "file"), *en = kl_vget(eb, "name"), *fld = kl_vget(eb, "field");

		if (!ef || !en || !fld || strcmp(ef, file))
			continue;
		for (unsigned i = 0; i < vf->n; i++) {
			const char *nm = kl_vget(&vf->b[i], "name");

			if (!nm || strcmp(nm, en))
				continue;
			for (unsigned k = 0; k < vf->b[i].n; k++)
				if (!strcmp(vf->b[i].kv[k].k, fld) &&
				    !strcmp(vf->b[i].kv[k].v, kl_vget(eb, "wrong"))) {
					vf->b[i].kv[k].v = (char *)kl_vget(eb, "right");
					printf("# %s %s: erratum applied to field %s (%s)\n", file, nm, fld,
					       kl_vget(eb, "source"));
				}
		}
	}
}

int kl_vfile_load(const char *file, struct kl_vfile *out)
{
	const char *dir = getenv("KL_VECTORS_DIR");
	char path[1024];

	memset(out, 0, sizeof(*out));
	if (!dir) {
		fprintf(stderr, "KL_VECTORS_DIR is not set\n");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (load_path(path, out) < 0)
		return -1;
	apply_errata(file, out);
	return 0;
}

int kl_vfile_load_path(const char *path, struct kl_vfile *out)
{
	return load_path(path, out);
}

static int load_path(const char *path, struct kl_vfile *out)
{
	FILE *f;
	long sz;
	char *line, *save = NULL;
	struct kl_vblock *cur = NULL;

	memset(out, 0, sizeof(*out));
	f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	out->text = calloc(1, (size_t)sz + 2);
	out->b = calloc((size_t)sz / 8 + 2, sizeof(*out->b));
	if (!out->text || !out->b || fread(out->text, 1, (size_t)sz, f) != (size_t)sz) {
		fclose(f);
		kl_vfile_free(out);
		return -1;
	}
	fclose(f);
	/* strtok_r would merge blank lines, which separate blocks: walk lines by hand. */
	line = out->text;
	while (line && *line) {
		char *nl = strchr(line, '\n'), *colon;

		if (nl)
			*nl = 0;
		save = nl ? nl + 1 : NULL;
		line = trim(line);
		if (!*line) {
			cur = NULL;
		} else if (*line != '#' && (colon = strchr(line, ':'))) {
			if (!cur) {
				cur = &out->b[out->n++];
			}
			if (cur->n < KL_VB_MAX_KV) {
				*colon = 0;
				cur->kv[cur->n].k = trim(line);
				cur->kv[cur->n].v = trim(colon + 1);
				cur->n++;
			}
		}
		line = save;
	}
	return 0;
}

void kl_vfile_free(struct kl_vfile *f)
{
	free(f->text);
	free(f->b);
	memset(f, 0, sizeof(*f));
}

const char *kl_vget(const struct kl_vblock *b, const char *k)
{
	for (unsigned i = 0; i < b->n; i++)
		if (!strcmp(b->kv[i].k, k))
			return b->kv[i].v;
	return NULL;
}


long kl_unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s);

	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int a = kl_hexval(s[2 * i]), b = kl_hexval(s[2 * i + 1]);

		if (a < 0 || b < 0)
			return -1;
		out[i] = (uint8_t)(a << 4 | b);
	}
	return (long)(n / 2);
}

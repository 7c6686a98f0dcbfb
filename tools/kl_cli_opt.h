/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "--name value" options of the hex-in CLIs (keyline-kdf, keyline-hss-sim), header only: the
 * tool collects argv's pairs into an array and looks them up by name, each at most once.
 * Errors name an option by its argv position, never by what was typed: text on a command line
 * may be a key put in the wrong place.
 */
#ifndef KL_CLI_OPT_H
#define KL_CLI_OPT_H

#include <string.h>

struct kl_cli_opt {
	const char *name; /* without the leading "--" */
	const char *val;
	int used; /* looked up at least once: what is left unused was not expected */
	int pos;  /* argv index of "--name" */
};

/* The value of --name in opts[0..n) (NULL when absent), marked used.
 * @return 0, or -1 when --name was given more than once. */
static inline int kl_cli_opt_get(struct kl_cli_opt *opts, unsigned n, const char *name,
				 const char **val)
{
	*val = NULL;
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(opts[i].name, name)) {
			if (*val)
				return -1;
			*val = opts[i].val;
			opts[i].used = 1;
		}
	return 0;
}

#endif

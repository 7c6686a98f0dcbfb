/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylined: the keyline key server.
 *   keylined [EAL options] -- -c keyline.yaml [-p population] [--io dpdk|socket]
 *            [--crypto ipsec-mb|openssl] [key=value ...]
 * Exit status: 0 after a clean stop (SIGINT/SIGTERM), 1 on a runtime failure, 2 on bad arguments
 * or configuration (one message naming the key and line).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "kl_config.h"
#include "kl_daemon.h"
#include "kl_eal_rundir.h"
#include "kl_util.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: keylined [EAL options] -- -c CONFIG.yaml [-p POPULATION] [--io dpdk|socket]\n"
		   "                [--crypto ipsec-mb|openssl] [KEY=VALUE ...]\n"
		   "  -c, --config FILE      YAML configuration (see keyline.example.yaml)\n"
		   "  -p, --population FILE  import a TEST population (keyline-population) before serving\n"
		   "      --io MODE          override io: dpdk or socket (kernel UDP sockets)\n"
		   "      --crypto BACKEND   override crypto: ipsec-mb or openssl\n"
		   "  KEY=VALUE              override any config key (skew_s=30, ports[0].queues=2, ...)\n"
		   "keylined --help shows DPDK's EAL options and this; -- --help only this.\n"
		   "An argument that could be a key (16+ hex digits, or 16+ base64 characters mixing\n"
		   "cases and digits) is never echoed; as an EAL option it is refused (exit 2).\n");
}

/* EAL's own help ends with the application's (keylined --help shows both) */
static void eal_usage_hook(const char *prgname)
{
	(void)prgname;
	usage(stdout);
}

/* DPDK echoes EAL arguments it cannot use (and some it can): refuse one that could be a key
 * before EAL sees it. @return its argv index, or 0. */
static int eal_arg_maybe_key(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (kl_maybe_key(argv[i]))
			return i;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "population", required_argument, NULL, 'p' },
		{ "io", required_argument, NULL, 'i' },
		{ "crypto", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kl_daemon_opts dopts = { 0 };
	const char *config = NULL, *io = NULL, *crypto = NULL;
	struct sigaction sa;
	struct kl_config cfg;
	struct kl_daemon *d;
	char err[512], ov[64];
	int n, opt, status;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* a client (admin, /metrics) that goes away mid-answer must not end the server */
	signal(SIGPIPE, SIG_IGN);

	if ((n = eal_arg_maybe_key(argc, argv))) {
		fprintf(stderr, "keylined: EAL argument %d could be a key: refused, not shown (see "
				"--help)\n", n);
		return KL_EXIT_CONFIG;
	}
	rte_set_application_usage_hook(eal_usage_hook);
	kl_eal_rundir_cleanup_at_exit(); /* no empty /var/run/dpdk/<prefix> left behind */
	n = rte_eal_init(argc, argv);
	if (n < 0) {
		fprintf(stderr, "keylined: EAL initialisation failed: %s\n", rte_strerror(rte_errno));
		return KL_EXIT_CONFIG;
	}
	argc -= n;
	argv += n;
	optind = 1;
	opterr = 0; /* getopt's message would echo the argument */
	while ((opt = getopt_long(argc, argv, ":c:p:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'p':
			dopts.population = optarg;
			break;
		case 'i':
			io = optarg;
			break;
		case 'k':
			crypto = optarg;
			break;
		case 'h':
			usage(stdout);
			rte_eal_cleanup();
			return KL_EXIT_OK;
		default: {
			const char *a = argv[optind - 1];

			fprintf(stderr, "keylined: argument %d after --: %s%s%s%s\n", optind - 1,
				opt == ':' ? "needs a value" : "unknown option",
				kl_maybe_key(a) ? "" : " (", kl_maybe_key(a) ? "" : a,
				kl_maybe_key(a) ? "" : ")");
			usage(stderr);
			rte_eal_cleanup();
			return KL_EXIT_CONFIG;
		}
		}
	}
	if (!config) {
		fprintf(stderr, "keylined: -c CONFIG is required\n");
		usage(stderr);
		rte_eal_cleanup();
		return KL_EXIT_CONFIG;
	}
	if (kl_config_load(config, &cfg, err, sizeof(err))) {
		fprintf(stderr, "keylined: %s\n", err);
		rte_eal_cleanup();
		return KL_EXIT_CONFIG;
	}
	for (int i = optind; i < argc; i++) {
		if (kl_config_override(&cfg, argv[i], err, sizeof(err))) {
			fprintf(stderr, "keylined: %s\n", err);
			rte_eal_cleanup();
			return KL_EXIT_CONFIG;
		}
	}
	if (io || crypto) {
		snprintf(ov, sizeof(ov), io ? "io=%s" : "crypto=%s", io ? io : crypto);
		if (kl_config_override(&cfg, ov, err, sizeof(err)) ||
		    (io && crypto && (snprintf(ov, sizeof(ov), "crypto=%s", crypto),
				      kl_config_override(&cfg, ov, err, sizeof(err))))) {
			fprintf(stderr, "keylined: %s\n", err);
			rte_eal_cleanup();
			return KL_EXIT_CONFIG;
		}
	}
	if (kl_config_validate(&cfg, err, sizeof(err))) {
		fprintf(stderr, "keylined: %s: %s\n", kl_maybe_key(config) ? "-c CONFIG" : config, err);
		rte_eal_cleanup();
		return KL_EXIT_CONFIG;
	}

	d = kl_daemon_start(&cfg, &dopts, &status);
	if (d) {
		status = kl_daemon_run(d, &g_stop);
		kl_daemon_stop(d);
	}
	kl_config_free(&cfg);
	rte_eal_cleanup();
	return status;
}

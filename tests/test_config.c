/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylined config: the example loads, defaults apply, every bad file fails with one
 * "FILE:LINE: KEY: ..." message naming the right key and line, overrides apply or fail by key, and
 * garbage (1 MiB of random bytes, random mutations of a good file) never crashes the loader.
 * Usage: test_config SOURCE_ROOT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kl_config.h"

static const char *src_root = ".";

static void
path_of(char *out, size_t ol, const char *rel)
{
	snprintf(out, ol, "%s/%s", src_root, rel);
}

/* err must be "…FILE:LINE: KEY…"; returns LINE. */
static unsigned
err_line(const char *err, const char *file)
{
	const char *p = strstr(err, file);
	char *end;
	assert_non_null(p);
	p += strlen(file);
	assert_int_equal(*p, ':');
	unsigned long line = strtoul(p + 1, &end, 10);
	assert_true(end > p + 1);
	assert_int_equal(*end, ':');
	assert_true(line >= 1);
	assert_null(strchr(err, '\n'));
	return (unsigned)line;
}

static void
test_example(void **state)
{
	(void)state;
	struct kl_config c;
	char err[512] = "", path[1024];
	struct in_addr a4;
	struct in6_addr a6;

	path_of(path, sizeof(path), "keyline.example.yaml");
	int rc = kl_config_load(path, &c, err, sizeof(err));
	if (rc != 0)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	assert_int_equal(c.n_ports, 1);
	assert_string_equal(c.ports[0].name, "memif0");
	assert_string_equal(c.ports[0].devargs,
			    "net_memif0,role=server,socket=/tmp/keyline-memif.sock");
	assert_int_equal(c.ports[0].queues, 1);
	inet_pton(AF_INET, "192.0.2.1", &a4);
	inet_pton(AF_INET6, "2001:db8::1", &a6);
	assert_int_equal(c.n_ipv4, 1);
	assert_int_equal(c.ipv4[0].s_addr, a4.s_addr);
	assert_int_equal(c.n_ipv6, 1);
	assert_memory_equal(&c.ipv6[0], &a6, sizeof(a6));
	assert_int_equal(c.udp_port, 2269);
	assert_int_equal(c.workers, 1);
	assert_string_equal(c.server_identity, "keyline.example.net");
	assert_int_equal(c.server_identity_len, strlen("keyline.example.net"));
	assert_int_equal(c.skew_s, 60);
	assert_int_equal(c.predelivery_s, 60);
	assert_int_equal(c.hm_session_s, 3600);
	assert_int_equal(c.retry_after_ms, 200);
	assert_int_equal(c.replay_cache, 4194304);
	assert_int_equal(c.rate_limit.per_source_pps, 1000);
	assert_int_equal(c.rate_limit.burst, 64);
	assert_int_equal(c.rate_limit.table_size, 65536);
	assert_string_equal(c.admin_socket, "/run/keyline/admin.sock");
	assert_true(c.metrics.enabled);
	assert_int_equal(c.metrics.family, AF_INET);
	assert_int_equal(c.metrics.port, 9469);
	assert_int_equal(c.metrics.v4.s_addr, htonl(0x7f000001));
	assert_int_equal(c.log_level, KL_CONFIG_LOG_INFO);
	assert_int_equal(c.crypto, KL_CONFIG_CRYPTO_IPSEC_MB);
	assert_int_equal(c.io, KL_CONFIG_IO_DPDK);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	kl_config_free(&c);
}

/* The example's commented diameter:, msk_rotation:, peers: and naf_key_center: sections,
 * uncommented, load. */
static void
test_example_sections(void **state)
{
	(void)state;
	char path[1024], tmp[] = "/tmp/kl-config-example-XXXXXX", line[512], err[512] = "";
	struct kl_config c;
	bool in = false;
	int fd = mkstemp(tmp);
	FILE *in_f, *out_f;

	assert_true(fd >= 0);
	out_f = fdopen(fd, "w");
	assert_non_null(out_f);
	path_of(path, sizeof(path), "keyline.example.yaml");
	in_f = fopen(path, "r");
	assert_non_null(in_f);
	while (fgets(line, sizeof(line), in_f)) {
		if (!strcmp(line, "# diameter:\n") || !strcmp(line, "# msk_rotation:\n") ||
		    !strcmp(line, "# peers:\n") || !strcmp(line, "# naf_key_center:\n") ||
		    !strcmp(line, "# store:\n") || !strcmp(line, "# cluster:\n"))
			in = true;
		/* the peers: section's top-level keys: one line each */
		if (!strncmp(line, "# rendezvous_", 13) || !strncmp(line, "# dh_cache_", 11) ||
		    !strncmp(line, "# s2s_pending", 13)) {
			fputs(line + 2, out_f);
			in = false;
			continue;
		}
		else if (line[0] != '#')
			in = false;
		/* the fd_conf alternative stays commented: it excludes identity..tls_crl */
		if (in && strncmp(line, "#   ", 4) && strncmp(line, "# diameter", 10) &&
		    strncmp(line, "# msk_rotation", 14) && strncmp(line, "# peers", 7) &&
		    strncmp(line, "# naf_key_center", 16) && strncmp(line, "# store", 7) &&
		    strncmp(line, "# cluster", 9))
			in = false;
		fputs(in ? line + 2 : line, out_f);
	}
	fclose(in_f);
	assert_int_equal(fclose(out_f), 0);
	int rc = kl_config_load(tmp, &c, err, sizeof(err));
	if (rc != 0)
		print_error("%s\n", err);
	unlink(tmp);
	assert_int_equal(rc, 0);
	assert_true(c.diameter.enabled);
	assert_string_equal(c.diameter.identity, "keyline.example.net");
	assert_string_equal(c.diameter.fd_conf, "");
	assert_int_equal(c.diameter.n_allowed_peers, 1);
	assert_int_equal(c.diameter.max_queue, 4096);
	assert_int_equal(c.n_msk_rotation, 1);
	assert_int_equal(c.msk_rotation[0].period_s, 3600);
	assert_int_equal(c.n_peers, 1);
	assert_string_equal(c.peers[0].identity, "vlr-b.example.net");
	assert_int_equal(c.peers[0].family, AF_INET);
	assert_int_equal(c.peers[0].v4.s_addr, htonl(0xc0000214));
	assert_int_equal(c.peers[0].port, 2269);
	assert_true(c.peers[0].has_mac);
	assert_memory_equal(c.peers[0].mac, "\x02\x00\x00\x00\x00\x20", 6);
	assert_int_equal(c.rendezvous_s, 30);
	assert_int_equal(c.rendezvous_entries, 65536);
	assert_int_equal(c.dh_cache_s, 300);
	assert_int_equal(c.dh_cache_entries, 65536);
	assert_int_equal(c.s2s_pending, 4096);
	assert_true(c.naf.enabled);
	assert_int_equal(c.naf.n_ids, 1);
	assert_int_equal(c.naf.ids[0].len, 15 + 5);
	assert_string_equal(c.naf.bsf.identity, "bsf.example.net");
	assert_true(c.naf.has_cpus);
	assert_int_equal(c.admin_max_clients, 16);
	assert_int_equal(c.admin_idle_timeout_s, 60);
	assert_int_equal(c.admin_line_timeout_s, 5);
	assert_int_equal(c.metrics_max_connections, 32);
	assert_int_equal(c.metrics_request_timeout_s, 5);
	assert_true(c.store.enabled);
	assert_true(c.cluster.enabled);
	assert_int_equal(c.cluster.n_endpoints, 3);
	assert_string_equal(c.cluster.endpoints[2], "https://192.0.2.43:2379");
	assert_string_equal(c.cluster.node, "keyline-a");
	assert_string_equal(c.cluster.prefix, "/keyline");
	assert_string_equal(c.cluster.key_file, "/etc/keyline/etcd.key");
	assert_int_equal(c.cluster.lease_ttl_s, 10);
	assert_int_equal(c.cluster.stale_after_ms, 5000);
	assert_int_equal(c.cluster.write_connections, 4);
	kl_config_free(&c);
}

static void
test_defaults(void **state)
{
	(void)state;
	struct kl_config c;
	char err[512] = "", path[1024];

	path_of(path, sizeof(path), "tests/config/minimal.yaml");
	int rc = kl_config_load(path, &c, err, sizeof(err));
	if (rc != 0)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	assert_string_equal(c.server_identity, "keyline");
	assert_int_equal(c.io, KL_CONFIG_IO_SOCKET);
	assert_int_equal(c.n_ports, 0);
	assert_int_equal(c.n_ipv4, 0);
	assert_int_equal(c.n_ipv6, 0);
	assert_int_equal(c.udp_port, 2269);
	assert_int_equal(c.workers, 1);
	assert_int_equal(c.skew_s, 60);
	assert_int_equal(c.predelivery_s, 60);
	assert_int_equal(c.hm_session_s, 3600);
	assert_int_equal(c.retry_after_ms, 200);
	assert_int_equal(c.replay_cache, 4194304);
	assert_int_equal(c.rate_limit.per_source_pps, 0);
	assert_int_equal(c.rate_limit.burst, 64);
	assert_int_equal(c.rate_limit.table_size, 65536);
	assert_int_equal(c.table.pairs, 64);
	assert_string_equal(c.admin_socket, "/run/keyline/admin.sock");
	assert_false(c.metrics.enabled);
	assert_int_equal(c.admin_max_clients, 16);
	assert_int_equal(c.admin_idle_timeout_s, 60);
	assert_int_equal(c.admin_line_timeout_s, 5);
	assert_int_equal(c.metrics_max_connections, 32);
	assert_int_equal(c.metrics_request_timeout_s, 5);
	assert_int_equal(c.log_level, KL_CONFIG_LOG_INFO);
	assert_int_equal(c.crypto, KL_CONFIG_CRYPTO_IPSEC_MB);
	assert_false(c.store.enabled); /* no store section: keys in memory only */
	assert_int_equal(c.store.map_size_mb, 1024);
	assert_false(c.diameter.enabled); /* no diameter section: no HSS feed */
	assert_int_equal(c.diameter.port, 5868);
	assert_int_equal(c.diameter.vendor_id, 99999);
	assert_int_equal(c.diameter.app_id, 16777999);
	assert_int_equal(c.diameter.max_queue, 4096);
	assert_int_equal(c.n_msk_rotation, 0);
	assert_int_equal(c.n_peers, 0);
	assert_int_equal(c.rendezvous_s, 30);
	assert_int_equal(c.rendezvous_entries, 65536);
	assert_int_equal(c.dh_cache_s, 300);
	assert_int_equal(c.dh_cache_entries, 65536);
	assert_int_equal(c.s2s_pending, 4096);

	/* The all-keys file used as the base of every bad file loads. */
	path_of(path, sizeof(path), "tests/config/good.yaml");
	rc = kl_config_load(path, &c, err, sizeof(err));
	if (rc != 0)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	assert_true(c.diameter.enabled);
	assert_string_equal(c.diameter.identity, "keyline.example.net");
	assert_string_equal(c.diameter.realm, "example.net");
	assert_string_equal(c.diameter.listen, "127.0.0.1");
	assert_int_equal(c.diameter.port, 5868);
	assert_string_equal(c.diameter.tls_cert, "/etc/keyline/diameter.pem");
	assert_string_equal(c.diameter.tls_key, "/etc/keyline/diameter.key");
	assert_string_equal(c.diameter.tls_ca, "/etc/keyline/ca.pem");
	assert_string_equal(c.diameter.tls_crl, "/etc/keyline/ca.crl");
	assert_string_equal(c.diameter.fd_conf, "");
	assert_int_equal(c.diameter.vendor_id, 99999);
	assert_int_equal(c.diameter.app_id, 16777999);
	assert_int_equal(c.diameter.n_allowed_peers, 2);
	assert_string_equal(c.diameter.allowed_peers[1], "hss2.example.net");
	assert_int_equal(c.diameter.max_queue, 4096);
	assert_int_equal(c.n_msk_rotation, 2);
	assert_memory_equal(c.msk_rotation[0].domain, "\x00\xf1\x10", 3);
	assert_int_equal(c.msk_rotation[0].group, 3);
	assert_int_equal(c.msk_rotation[0].period_s, 3600);
	assert_int_equal(c.msk_rotation[0].predelivery_s, 60);
	assert_memory_equal(c.msk_rotation[1].domain, "\x00\xf1\x10", 3);
	assert_int_equal(c.msk_rotation[1].group, 4);
	assert_int_equal(c.msk_rotation[1].period_s, 86400);
	assert_int_equal(c.msk_rotation[1].predelivery_s, 30);
	assert_int_equal(c.n_peers, 2);
	assert_string_equal(c.peers[0].identity, "vlr-b.example.net");
	assert_int_equal(c.peers[0].identity_len, 17);
	assert_int_equal(c.peers[0].family, AF_INET);
	assert_int_equal(c.peers[0].v4.s_addr, htonl(0xc0000214));
	assert_int_equal(c.peers[0].port, 2270);
	assert_true(c.peers[0].has_mac);
	assert_memory_equal(c.peers[0].mac, "\x02\x00\x00\x00\x00\x20", 6);
	assert_string_equal(c.peers[1].identity, "mme2.example.net");
	assert_int_equal(c.peers[1].family, AF_INET6);
	{
		struct in6_addr a6;

		inet_pton(AF_INET6, "2001:db8::20", &a6);
		assert_memory_equal(&c.peers[1].v6, &a6, sizeof(a6));
	}
	assert_int_equal(c.peers[1].port, 2269); /* the default */
	assert_false(c.peers[1].has_mac);
	assert_int_equal(c.rendezvous_s, 20);
	assert_int_equal(c.rendezvous_entries, 1024);
	assert_int_equal(c.dh_cache_s, 600);
	assert_int_equal(c.dh_cache_entries, 4096);
	assert_int_equal(c.s2s_pending, 256);
	kl_config_free(&c);
}

struct bad_case {
	const char *file; /* under tests/config */
	const char *key;  /* must appear in the message */
	unsigned line;	  /* 0: any */
};

static const struct bad_case bad_cases[] = {
	{ "bad-udp-port-zero.yaml", "udp_port", 9 },
	{ "bad-udp-port-big.yaml", "udp_port", 9 },
	{ "bad-udp-port-string.yaml", "udp_port", 9 },
	{ "bad-udp-port-list.yaml", "udp_port", 9 },
	{ "bad-workers-zero.yaml", "workers", 10 },
	{ "bad-workers-big.yaml", "workers", 10 },
	{ "bad-workers-negative.yaml", "workers", 10 },
	{ "bad-workers-float.yaml", "workers", 10 },
	{ "bad-skew-zero.yaml", "skew_s", 12 },
	{ "bad-skew-big.yaml", "skew_s", 12 },
	{ "bad-predelivery-big.yaml", "predelivery_s", 13 },
	{ "bad-hm-session-small.yaml", "hm_session_s", 14 },
	{ "bad-hm-session-big.yaml", "hm_session_s", 14 },
	{ "bad-retry-after-small.yaml", "retry_after_ms", 14 },
	{ "bad-retry-after-big.yaml", "retry_after_ms", 14 },
	{ "bad-replay-not-pow2.yaml", "replay_cache", 14 },
	{ "bad-replay-small.yaml", "replay_cache", 14 },
	{ "bad-replay-huge.yaml", "replay_cache", 14 },
	{ "bad-pps-big.yaml", "rate_limit.per_source_pps", 16 },
	{ "bad-burst-zero.yaml", "rate_limit.burst", 17 },
	{ "bad-table-not-pow2.yaml", "rate_limit.table_size", 18 },
	{ "bad-rate-limit-scalar.yaml", "rate_limit", 15 },
	{ "bad-rate-limit-unknown.yaml", "rate_limit.bursts", 17 },
	{ "bad-table-ues-zero.yaml", "table.ues", 20 },
	{ "bad-table-groups-big.yaml", "table.groups", 21 },
	{ "bad-table-ring-big.yaml", "table.e2m_ring", 25 },
	{ "bad-table-pairs-zero.yaml", "table.pairs", 26 },
	{ "bad-table-unknown.yaml", "table.appid", 24 },
	{ "bad-table-scalar.yaml", "table", 19 },
	{ "bad-store-relative.yaml", "store.path", 27 },
	{ "bad-store-no-kek.yaml", "store.kek_file", 26 },
	{ "bad-store-map-small.yaml", "store.map_size_mb", 29 },
	{ "bad-store-unknown.yaml", "store.kek", 28 },
	{ "bad-naf-no-diameter.yaml", "naf_key_center", 4 },
	{ "bad-naf-port-zero.yaml", "naf_key_center.port", 11 },
	{ "bad-naf-listen.yaml", "naf_key_center.listen", 10 },
	{ "bad-naf-no-cert.yaml", "naf_key_center.tls_cert", 9 },
	{ "bad-naf-ca-relative.yaml", "naf_key_center.device_ca", 14 },
	{ "bad-naf-no-operator-ca.yaml", "naf_key_center.operator_ca", 9 },
	{ "bad-naf-ua.yaml", "naf_key_center.naf_ids[0].ua_protocol", 19 },
	{ "bad-naf-fqdn.yaml", "naf_key_center.naf_ids[0].fqdn", 18 },
	{ "bad-naf-hex.yaml", "naf_key_center.naf_ids[1].hex", 22 },
	{ "bad-naf-lifetime.yaml", "naf_key_center.naf_ids[0].max_lifetime_s", 20 },
	{ "bad-naf-default-word.yaml", "naf_key_center.naf_ids[0].default", 21 },
	{ "bad-naf-no-default.yaml", "naf_key_center.naf_ids", 17 },
	{ "bad-naf-both.yaml", "naf_key_center.naf_ids[1]", 22 },
	{ "bad-naf-no-bsf-address.yaml", "naf_key_center.bsf.address", 23 },
	{ "bad-naf-bsf-identity.yaml", "naf_key_center.bsf.identity", 24 },
	{ "bad-naf-bsf-timeout.yaml", "naf_key_center.bsf.timeout_ms", 27 },
	{ "bad-naf-threads.yaml", "naf_key_center.threads", 31 },
	{ "bad-naf-body.yaml", "naf_key_center.max_body", 32 },
	{ "bad-naf-cpus.yaml", "naf_key_center.cpus", 36 },
	{ "bad-naf-unknown.yaml", "naf_key_center.thread", 31 },
	{ "bad-naf-rate-unknown.yaml", "naf_key_center.rate_limit.rps", 29 },
	{ "bad-naf-id-unknown.yaml", "naf_key_center.naf_ids[0].name", 18 },
	{ "bad-diameter-no-identity.yaml", "diameter.identity", 31 },
	{ "bad-diameter-identity-bad.yaml", "diameter.identity", 32 },
	{ "bad-diameter-realm-nodot.yaml", "diameter.realm", 31 },
	{ "bad-diameter-listen.yaml", "diameter.listen", 34 },
	{ "bad-diameter-port-zero.yaml", "diameter.port", 35 },
	{ "bad-diameter-port-big.yaml", "diameter.port", 35 },
	{ "bad-diameter-cert-relative.yaml", "diameter.tls_cert", 36 },
	{ "bad-diameter-no-ca.yaml", "diameter.tls_ca", 31 },
	{ "bad-diameter-crl-quote.yaml", "diameter.tls_crl", 39 },
	{ "bad-diameter-vendor-zero.yaml", "diameter.vendor_id", 40 },
	{ "bad-diameter-app-big.yaml", "diameter.app_id", 41 },
	{ "bad-diameter-peers-scalar.yaml", "diameter.allowed_peers", 42 },
	{ "bad-diameter-peer-bad.yaml", "diameter.allowed_peers[0]", 43 },
	{ "bad-diameter-peers-dup.yaml", "diameter.allowed_peers[1]", 44 },
	{ "bad-diameter-queue-big.yaml", "diameter.max_queue", 45 },
	{ "bad-diameter-unknown.yaml", "diameter.tls_certificate", 36 },
	{ "bad-diameter-fd-conf-mixed.yaml", "diameter.identity", 33 },
	{ "bad-diameter-scalar.yaml", "diameter", 31 },
	{ "bad-rotation-scalar.yaml", "msk_rotation", 46 },
	{ "bad-rotation-group.yaml", "msk_rotation[0].group", 47 },
	{ "bad-rotation-group-big.yaml", "msk_rotation[0].group", 47 },
	{ "bad-rotation-period-small.yaml", "msk_rotation[0].period_s", 48 },
	{ "bad-rotation-period-big.yaml", "msk_rotation[0].period_s", 48 },
	{ "bad-rotation-predelivery-period.yaml", "msk_rotation[0].predelivery_s", 49 },
	{ "bad-rotation-predelivery-top.yaml", "msk_rotation[1].predelivery_s", 52 },
	{ "bad-rotation-duplicate.yaml", "msk_rotation[1].group", 50 },
	{ "bad-rotation-no-period.yaml", "msk_rotation[0].period_s", 47 },
	{ "bad-rotation-unknown.yaml", "msk_rotation[0].predelivery", 49 },
	{ "bad-peer-dup-identity.yaml", "peers[1].identity: duplicate of peers[0].identity", 58 },
	{ "bad-peer-own-identity.yaml", "peers[1].identity: is this server's own", 58 },
	{ "bad-peer-bad-address.yaml", "peers[0].address", 55 },
	{ "bad-peer-address-port.yaml", "peers[0].address", 55 },
	{ "bad-peer-multicast.yaml", "peers[1].address", 59 },
	{ "bad-peer-no-address.yaml", "peers[1].address: required key is missing", 58 },
	{ "bad-peer-no-identity.yaml", "peers[1].identity: required key is missing", 58 },
	{ "bad-peer-port-zero.yaml", "peers[0].port", 56 },
	{ "bad-peer-mac.yaml", "peers[0].mac", 57 },
	{ "bad-peer-mac-multicast.yaml", "peers[0].mac", 57 },
	{ "bad-peer-unknown.yaml", "peers[0].macaddr", 57 },
	{ "bad-peer-identity-long.yaml", "peers[0].identity", 54 },
	{ "bad-peer-same-address.yaml", "peers[1].address: peers[0] has the same address", 59 },
	{ "bad-peer-own-address.yaml", "peers[0].address", 55 },
	{ "bad-peer-no-family.yaml", "peers[1].address: an IPv6 peer", 57 },
	{ "bad-peers-scalar.yaml", "peers", 53 },
	{ "bad-peers-too-many.yaml", "peers: at most 32 peers (got 33)", 53 },
	{ "bad-rendezvous-not-pow2.yaml", "rendezvous_entries", 61 },
	{ "bad-rendezvous-s-zero.yaml", "rendezvous_s", 60 },
	{ "bad-dh-cache-s-big.yaml", "dh_cache_s", 62 },
	{ "bad-dh-cache-entries-small.yaml", "dh_cache_entries", 63 },
	{ "bad-dh-cache-entries-not-pow2.yaml", "dh_cache_entries: must be a power of two", 63 },
	{ "bad-s2s-pending-big.yaml", "s2s_pending: must be 16..65536", 64 },
	{ "bad-cluster-no-store.yaml", "cluster: needs the store", 4 },
	{ "bad-cluster-no-endpoints.yaml", "cluster.endpoints: required key is missing", 7 },
	{ "bad-cluster-endpoint-scheme.yaml", "cluster.endpoints[0]", 9 },
	{ "bad-cluster-endpoint-path.yaml", "cluster.endpoints[1]", 10 },
	{ "bad-cluster-endpoint-port.yaml", "cluster.endpoints[2]", 11 },
	{ "bad-cluster-endpoint-dup.yaml", "cluster.endpoints[2]: duplicate of cluster.endpoints[1]", 11 },
	{ "bad-cluster-endpoints-scalar.yaml", "cluster.endpoints", 8 },
	{ "bad-cluster-endpoints-too-many.yaml", "cluster.endpoints: at most 16", 8 },
	{ "bad-cluster-no-node.yaml", "cluster.node: required key is missing", 7 },
	{ "bad-cluster-node-bad.yaml", "cluster.node", 12 },
	{ "bad-cluster-prefix-slash.yaml", "cluster.prefix", 13 },
	{ "bad-cluster-prefix-relative.yaml", "cluster.prefix", 13 },
	{ "bad-cluster-ca-relative.yaml", "cluster.ca_file", 14 },
	{ "bad-cluster-cert-no-key.yaml", "cluster.key_file: required with cluster.cert_file", 7 },
	{ "bad-cluster-tls-http.yaml", "cluster.ca_file: TLS files, but no https", 14 },
	{ "bad-cluster-ttl-small.yaml", "cluster.lease_ttl_s", 17 },
	{ "bad-cluster-connect-big.yaml", "cluster.connect_timeout_ms", 18 },
	{ "bad-cluster-request-below.yaml", "cluster.request_timeout_ms: is 400, below", 19 },
	{ "bad-cluster-stale-small.yaml", "cluster.stale_after_ms", 20 },
	{ "bad-cluster-unknown.yaml", "cluster.stale_ms", 20 },
	{ "bad-cluster-scalar.yaml", "cluster", 7 },
	{ "bad-unknown-key.yaml", "skew", 12 },
	{ "bad-duplicate-key.yaml", "skew_s", 13 },
	{ "bad-missing-identity.yaml", "server_identity", 0 },
	{ "bad-identity-empty.yaml", "server_identity", 11 },
	{ "bad-identity-long.yaml", "server_identity", 11 },
	{ "bad-identity-map.yaml", "server_identity", 11 },
	{ "bad-ipv4-invalid.yaml", "ipv4[0]", 6 },
	{ "bad-ipv4-multicast.yaml", "ipv4[0]", 6 },
	{ "bad-ipv4-scalar.yaml", "ipv4", 5 },
	{ "bad-ipv4-duplicate.yaml", "ipv4[1]", 7 },
	{ "bad-ipv4-too-many.yaml", "ipv4", 5 },
	{ "bad-ipv6-invalid.yaml", "ipv6[0]", 8 },
	{ "bad-metrics-no-port.yaml", "metrics", 20 },
	{ "bad-metrics-bad-host.yaml", "metrics", 20 },
	{ "bad-metrics-bad-v6.yaml", "metrics", 20 },
	{ "bad-metrics-port-big.yaml", "metrics", 20 },
	{ "bad-admin-relative.yaml", "admin_socket", 19 },
	{ "bad-admin-too-long.yaml", "admin_socket", 19 },
	{ "bad-log-level.yaml", "log_level", 21 },
	{ "bad-crypto.yaml", "crypto", 22 },
	{ "bad-io.yaml", "io", 23 },
	{ "bad-port-queues-zero.yaml", "ports[0].queues", 4 },
	{ "bad-port-queues-big.yaml", "ports[0].queues", 4 },
	{ "bad-port-queues-workers.yaml", "ports[0].queues", 4 },
	{ "bad-port-no-name.yaml", "ports[0].name", 2 },
	{ "bad-port-bad-name.yaml", "ports[0].name", 2 },
	{ "bad-port-no-devargs.yaml", "ports[0].devargs", 2 },
	{ "bad-port-devargs-space.yaml", "ports[0].devargs", 3 },
	{ "bad-port-unknown-key.yaml", "ports[0].queue", 4 },
	{ "bad-ports-empty.yaml", "ports", 1 },
	{ "bad-ports-too-many.yaml", "ports", 1 },
	{ "bad-yaml-syntax.yaml", NULL, 0 },
	{ "bad-alias.yaml", "predelivery_s", 13 },
	{ "bad-tab-indent.yaml", NULL, 17 },
	{ "bad-empty.yaml", "server_identity", 1 },
	{ "bad-not-yaml.yaml", NULL, 0 },
	{ "bad-top-list.yaml", "top level", 1 },
	{ "bad-top-scalar.yaml", "top level", 1 },
	{ "bad-two-docs.yaml", NULL, 3 },
	{ "bad-deep.yaml", "ipv4", 2 },
};
#define N_BAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

static void
test_bad_files(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_BAD; i++) {
		const struct bad_case *b = &bad_cases[i];
		struct kl_config c;
		char err[512] = "", path[1024];

		snprintf(path, sizeof(path), "%s/tests/config/%s", src_root, b->file);
		assert_int_equal(access(path, R_OK), 0);
		int rc = kl_config_load(path, &c, err, sizeof(err));
		print_message("%s\n", err);
		if (rc != -1)
			print_error("%s: loaded, expected a failure\n", b->file);
		assert_int_equal(rc, -1);
		unsigned line = err_line(err, b->file);
		if (b->key != NULL && strstr(err, b->key) == NULL)
			fail_msg("%s: message does not name %s: %s", b->file, b->key, err);
		if (b->line != 0 && line != b->line)
			fail_msg("%s: line %u, expected %u: %s", b->file, line, b->line, err);
		kl_config_free(&c);
	}
}

/* Every bad-*.yaml in the folder is in the table above (so none escapes the key/line checks). */
static void
test_bad_files_all_listed(void **state)
{
	(void)state;
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/tests/config", src_root);
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "bad-", 4) != 0)
			continue;
		bool found = false;
		for (size_t i = 0; i < N_BAD; i++)
			found |= strcmp(bad_cases[i].file, de->d_name) == 0;
		if (!found)
			fail_msg("%s is not in bad_cases", de->d_name);
		n++;
	}
	closedir(d);
	assert_int_equal(n, N_BAD);
}

static void
test_missing_file(void **state)
{
	(void)state;
	struct kl_config c;
	char err[512] = "";
	assert_int_equal(kl_config_load("/nonexistent/keyline.yaml", &c, err, sizeof(err)), -1);
	assert_int_equal(err_line(err, "/nonexistent/keyline.yaml"), 1);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void
write_file(const char *path, const uint8_t *b, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* Generated rather than stored: 1 MiB of random bytes does not belong in the repository. */
static void
test_garbage_1mb(void **state)
{
	(void)state;
	char path[] = "/tmp/kl-config-garbage-XXXXXX";
	int fd = mkstemp(path);
	size_t n = 1u << 20;
	uint8_t *b = malloc(n);
	struct kl_config c;
	char err[512] = "";

	assert_true(fd >= 0);
	close(fd);
	assert_non_null(b);
	for (int pass = 0; pass < 2; pass++) {
		/* pass 0: any byte; pass 1: printable ASCII and newlines, which gets further in YAML */
		for (size_t i = 0; i < n; i++) {
			uint8_t r = (uint8_t)next_rand();
			b[i] = pass == 0 ? r : (r % 16 == 0 ? '\n' : (uint8_t)(0x20 + r % 95));
		}
		write_file(path, b, n);
		assert_int_equal(kl_config_load(path, &c, err, sizeof(err)), -1);
		print_message("%s\n", err);
		err_line(err, path);
	}
	/* Over the size limit: refused before parsing. */
	free(b);
	n = KL_CONFIG_MAX_FILE_SIZE + 1;
	b = calloc(1, n);
	assert_non_null(b);
	memset(b, '#', n);
	write_file(path, b, n);
	assert_int_equal(kl_config_load(path, &c, err, sizeof(err)), -1);
	print_message("%s\n", err);
	err_line(err, path);
	free(b);
	unlink(path);
}

/* Random byte edits of the good file: each load either succeeds or fails with a proper message. */
static void
test_mutations(void **state)
{
	(void)state;
	char good[1024], path[] = "/tmp/kl-config-mut-XXXXXX";
	uint8_t orig[4096], b[4096];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	path_of(good, sizeof(good), "tests/config/good.yaml");
	FILE *f = fopen(good, "rb");
	assert_non_null(f);
	size_t n = fread(orig, 1, sizeof(orig), f);
	fclose(f);
	assert_true(n > 100);
	static const char alphabet[] = "0123456789:-[]{}#&*!|>'\"%@`,? \n\tx.\\";
	unsigned failed = 0;
	for (int iter = 0; iter < 3000; iter++) {
		struct kl_config c;
		char err[512] = "";
		memcpy(b, orig, n);
		unsigned edits = 1 + (unsigned)(next_rand() % 3);
		for (unsigned k = 0; k < edits; k++) {
			size_t at = (size_t)(next_rand() % n);
			uint64_t r = next_rand();
			b[at] = (r & 1) ? (uint8_t)(r >> 8) : (uint8_t)alphabet[(r >> 8) % (sizeof(alphabet) - 1)];
		}
		write_file(path, b, n);
		if (kl_config_load(path, &c, err, sizeof(err)) < 0) {
			err_line(err, path);
			failed++;
		} else {
			assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
		}
		kl_config_free(&c);
	}
	print_message("%u of 3000 mutations rejected\n", failed);
	assert_true(failed > 0);
	unlink(path);
}

static void
test_overrides(void **state)
{
	(void)state;
	struct kl_config c;
	char err[512] = "", path[1024];
	struct in_addr a4;

	path_of(path, sizeof(path), "keyline.example.yaml");
	assert_int_equal(kl_config_load(path, &c, err, sizeof(err)), 0);

	static const char *const good[] = {
		"skew_s=30", "rate_limit.per_source_pps=0", "rate_limit.burst=1000000",
		"rate_limit.table_size=1024", "udp_port=12269", "replay_cache=1024",
		"predelivery_s=0", "server_identity=kl-ü", "admin_socket=/tmp/kl.sock",
		"metrics=[::1]:9470", "log_level=debug", "crypto=openssl", "ipv4=192.0.2.7,192.0.2.8",
		"ipv6=", "ports[0].devargs=net_tap0,iface=kl0", "workers=2", "ports[0].queues=2",
		"ports[1].name=memif1", "ports[1].devargs=net_memif1", "ports[1].queues=2",
		"io=socket", "metrics=",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = kl_config_override(&c, good[i], err, sizeof(err));
		if (rc != 0)
			print_error("%s: %s\n", good[i], err);
		assert_int_equal(rc, 0);
	}
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(c.skew_s, 30);
	assert_int_equal(c.rate_limit.per_source_pps, 0);
	assert_int_equal(c.rate_limit.burst, 1000000);
	assert_int_equal(c.rate_limit.table_size, 1024);
	assert_int_equal(c.udp_port, 12269);
	assert_int_equal(c.replay_cache, 1024);
	assert_int_equal(c.predelivery_s, 0);
	assert_string_equal(c.server_identity, "kl-ü");
	assert_string_equal(c.admin_socket, "/tmp/kl.sock");
	assert_false(c.metrics.enabled);
	assert_int_equal(c.log_level, KL_CONFIG_LOG_DEBUG);
	assert_int_equal(c.crypto, KL_CONFIG_CRYPTO_OPENSSL);
	assert_int_equal(c.io, KL_CONFIG_IO_SOCKET);
	assert_int_equal(c.n_ipv4, 2);
	inet_pton(AF_INET, "192.0.2.8", &a4);
	assert_int_equal(c.ipv4[1].s_addr, a4.s_addr);
	assert_int_equal(c.n_ipv6, 0);
	assert_int_equal(c.n_ports, 2);
	assert_string_equal(c.ports[0].devargs, "net_tap0,iface=kl0");
	assert_string_equal(c.ports[1].name, "memif1");
	assert_int_equal(c.ports[1].queues, 2);
	assert_int_equal(c.workers, 2);
	assert_int_equal(kl_config_override(&c, "metrics=[::1]:9470", err, sizeof(err)), 0);
	assert_true(c.metrics.enabled);
	assert_int_equal(c.metrics.family, AF_INET6);
	assert_int_equal(c.metrics.port, 9470);

	static const struct {
		const char *kv, *key;
	} bad[] = {
		{ "skew_s=0", "skew_s" },
		{ "skew_s=abc", "skew_s" },
		{ "skew_s=", "skew_s" },
		{ "skew_s=-5", "skew_s" },
		{ "skew_s=99999999999999999999999", "skew_s" },
		{ "rate_limit.per_source_pps=10000001", "rate_limit.per_source_pps" },
		{ "rate_limit.table_size=3000", "rate_limit.table_size" },
		{ "replay_cache=1000", "replay_cache" },
		{ "udp_port=65536", "udp_port" },
		{ "workers=65", "workers" },
		{ "server_identity=", "server_identity" },
		{ "admin_socket=relative", "admin_socket" },
		{ "metrics=1.2.3.4", "metrics" },
		{ "log_level=loud", "log_level" },
		{ "crypto=rot13", "crypto" },
		{ "io=ebpf", "io" },
		{ "ipv4=300.1.1.1", "ipv4" },
		{ "ipv6=fe80:::1", "ipv6" },
		{ "ipv4[5]=192.0.2.9", "ipv4[5]" },
		{ "ports[0].queues=17", "ports[0].queues" },
		{ "ports[0].speed=10", "ports[0].speed" },
		{ "ports[7].name=x", "ports[7].name" },
		{ "nosuchkey=1", "nosuchkey" },
		{ "rate_limit=5", "rate_limit" },
		{ "noequals", "noequals" },
		{ "store.path=relative/dir", "store.path" },
		{ "store.kek_file=", "store.kek_file" },
		{ "store.map_size_mb=15", "store.map_size_mb" },
		{ "store.map_size_mb=1048577", "store.map_size_mb" },
		{ "store.kek=/x", "store.kek" },
		{ "diameter.port=0", "diameter.port" },
		{ "diameter.port=65536", "diameter.port" },
		{ "diameter.identity=a b", "diameter.identity" },
		{ "diameter.identity=", "diameter.identity" },
		{ "diameter.tls_cert=cert.pem", "diameter.tls_cert" },
		{ "diameter.tls_key=", "diameter.tls_key" },
		{ "diameter.listen=::g", "diameter.listen" },
		{ "diameter.vendor_id=4294967296", "diameter.vendor_id" },
		{ "diameter.max_queue=0", "diameter.max_queue" },
		{ "diameter.allowed_peers=a,b c", "diameter.allowed_peers" },
		{ "diameter.allowed_peers[3]=a.b", "diameter.allowed_peers[3]" },
		{ "diameter.peers=a", "diameter.peers" },
		{ "msk_rotation[0].group=1:1", "msk_rotation[0].group" },
		{ "msk_rotation[0].period_s=5", "msk_rotation[0].period_s" },
		{ "msk_rotation[0].keys=5", "msk_rotation[0].keys" },
		{ "msk_rotation[4].group=00f110:1", "msk_rotation[4].group" },
		{ "msk_rotation=1", "msk_rotation" },
		{ "admin_max_clients=0", "admin_max_clients" },
		{ "admin_max_clients=257", "admin_max_clients" },
		{ "admin_idle_timeout_s=0", "admin_idle_timeout_s" },
		{ "admin_line_timeout_s=3601", "admin_line_timeout_s" },
		{ "metrics_max_connections=1025", "metrics_max_connections" },
		{ "metrics_request_timeout_s=0", "metrics_request_timeout_s" },
		{ "peers[0].address=10.0.0.1:2269", "peers[0].address" },
		{ "peers[0].address=224.0.0.1", "peers[0].address" },
		{ "peers[0].address=::ffff:10.0.0.1", "peers[0].address" },
		{ "peers[0].identity=", "peers[0].identity" },
		{ "peers[0].port=70000", "peers[0].port" },
		{ "peers[0].mac=zz:00:00:00:00:01", "peers[0].mac" },
		{ "peers[0].mac=00:00:00:00:00:00", "peers[0].mac" },
		{ "peers[0].name=x", "peers[0].name" },
		{ "peers[3].identity=x", "peers[3].identity" },
		{ "peers[32].identity=x", "peers[32].identity" },
		{ "peers=x", "peers" },
		{ "rendezvous_entries=65535", "rendezvous_entries" },
		{ "s2s_pending=15", "s2s_pending" },
	};
	assert_int_equal(kl_config_override(&c, "io=dpdk", err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kl_config copy = c;
		err[0] = '\0';
		int rc = kl_config_override(&copy, bad[i].kv, err, sizeof(err));
		print_message("%s -> %s\n", bad[i].kv, err);
		if (rc != -1)
			fail_msg("override %s accepted", bad[i].kv);
		assert_non_null(strstr(err, "command line: "));
		if (strstr(err, bad[i].key) == NULL)
			fail_msg("override %s: message does not name %s: %s", bad[i].kv, bad[i].key,
				 err);
	}
	/* Cross-field: accepted one at a time, refused by the final validation, naming the key. */
	assert_int_equal(kl_config_override(&c, "workers=3", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	print_message("workers=3 -> %s\n", err);
	assert_non_null(strstr(err, "ports[0].queues"));
	assert_int_equal(kl_config_override(&c, "workers=2", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	/* store.path alone turns the store on; validation then wants the KEK file too. */
	assert_false(c.store.enabled);
	assert_int_equal(kl_config_override(&c, "store.path=/var/lib/keyline/store", err,
					    sizeof(err)), 0);
	assert_true(c.store.enabled);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "store.kek_file"));
	assert_int_equal(kl_config_override(&c, "store.kek_file=/etc/keyline/kek", err,
					    sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "store.map_size_mb=16", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	assert_string_equal(c.store.kek_file, "/etc/keyline/kek");
	assert_int_equal(c.store.map_size_mb, 16);

	/* diameter.* turns the feed on; validation then wants the identity and the TLS files. */
	assert_false(c.diameter.enabled);
	assert_int_equal(kl_config_override(&c, "diameter.port=3869", err, sizeof(err)), 0);
	assert_true(c.diameter.enabled);
	assert_int_equal(c.diameter.port, 3869);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	print_message("diameter.port only -> %s\n", err);
	assert_non_null(strstr(err, "diameter.identity"));
	static const char *const dia[] = {
		"diameter.identity=kl.example.org", "diameter.tls_cert=/etc/kl/c.pem",
		"diameter.tls_key=/etc/kl/c.key", "diameter.tls_ca=/etc/kl/ca.pem",
		"diameter.listen=::1", "diameter.vendor_id=28458", "diameter.app_id=16777300",
		"diameter.max_queue=1", "diameter.allowed_peers=hss1.example.org,hss2.example.org",
		"diameter.allowed_peers[2]=hss3.example.org",
	};
	for (size_t i = 0; i < sizeof(dia) / sizeof(dia[0]); i++) {
		int rc = kl_config_override(&c, dia[i], err, sizeof(err));
		if (rc != 0)
			print_error("%s: %s\n", dia[i], err);
		assert_int_equal(rc, 0);
	}
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	assert_string_equal(c.diameter.identity, "kl.example.org");
	assert_string_equal(c.diameter.listen, "::1");
	assert_int_equal(c.diameter.vendor_id, 28458);
	assert_int_equal(c.diameter.app_id, 16777300);
	assert_int_equal(c.diameter.max_queue, 1);
	assert_int_equal(c.diameter.n_allowed_peers, 3);
	assert_string_equal(c.diameter.allowed_peers[2], "hss3.example.org");
	/* a duplicate peer and fd_conf next to the generated configuration's keys are refused */
	assert_int_equal(kl_config_override(&c, "diameter.allowed_peers[3]=hss1.example.org", err,
					    sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "diameter.allowed_peers[3]"));
	assert_int_equal(kl_config_override(&c, "diameter.allowed_peers=", err, sizeof(err)), 0);
	assert_int_equal(c.diameter.n_allowed_peers, 0);
	assert_int_equal(kl_config_override(&c, "diameter.fd_conf=/etc/kl/fd.conf", err,
					    sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	print_message("fd_conf with identity -> %s\n", err);
	assert_non_null(strstr(err, "diameter.identity"));

	/* msk_rotation[N] appends; cross-field rules at validation */
	assert_int_equal(kl_config_override(&c, "diameter.fd_conf=", err, sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "msk_rotation[0].group=00f110:7", err, sizeof(err)),
			 0);
	assert_int_equal(c.n_msk_rotation, 1);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "msk_rotation[0].period_s"));
	assert_int_equal(kl_config_override(&c, "predelivery_s=10", err, sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "msk_rotation[0].period_s=12", err, sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "msk_rotation[0].predelivery_s=4", err, sizeof(err)),
			 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(c.msk_rotation[0].group, 7);
	assert_int_equal(c.msk_rotation[0].period_s, 12);
	assert_int_equal(kl_config_override(&c, "predelivery_s=3", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	print_message("predelivery_s=3 -> %s\n", err);
	assert_non_null(strstr(err, "msk_rotation[0].predelivery_s"));
	assert_int_equal(kl_config_override(&c, "predelivery_s=10", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);

	/* peers[N] appends; identity and address are required, the rest checked at validation */
	assert_int_equal(kl_config_override(&c, "peers[0].address=192.0.2.7", err, sizeof(err)), 0);
	assert_int_equal(c.n_peers, 1);
	assert_int_equal(c.peers[0].port, 2269);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	print_message("peers[0] without identity -> %s\n", err);
	assert_non_null(strstr(err, "peers[0].identity: required key is missing"));
	assert_int_equal(kl_config_override(&c, "peers[0].identity=vlr-b", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "peers[1].identity=vlr-c", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "peers[1].address: required key is missing"));
	assert_int_equal(kl_config_override(&c, "peers[1].address=192.0.2.7", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	print_message("two peers on one address:port -> %s\n", err);
	assert_non_null(strstr(err, "peers[1].address: peers[0] has the same address and port"));
	assert_int_equal(kl_config_override(&c, "peers[1].port=2270", err, sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "peers[1].mac=02:AA:bb:00:00:01", err, sizeof(err)),
			 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	assert_true(c.peers[1].has_mac);
	assert_memory_equal(c.peers[1].mac, "\x02\xaa\xbb\x00\x00\x01", 6);
	assert_int_equal(kl_config_override(&c, "peers[1].identity=vlr-b", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "peers[1].identity: duplicate of peers[0].identity"));
	assert_int_equal(kl_config_override(&c, "peers[1].identity=kl-ü", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "peers[1].identity: is this server's own server_identity"));
	assert_int_equal(kl_config_override(&c, "peers[1].identity=vlr-c", err, sizeof(err)), 0);
	/* our own address and udp_port (12269 here) is no peer */
	assert_int_equal(kl_config_override(&c, "peers[1].address=192.0.2.8", err, sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "peers[1].port=12269", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	print_message("peer on our address:port -> %s\n", err);
	assert_non_null(strstr(err, "peers[1].address: with port 12269 is this server's own"));
	assert_int_equal(kl_config_override(&c, "peers[1].port=2269", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	/* an IPv6 peer needs an IPv6 address of ours (ipv6 was emptied above) */
	assert_int_equal(kl_config_override(&c, "peers[1].address=2001:db8::7", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	print_message("IPv6 peer without ipv6 -> %s\n", err);
	assert_non_null(strstr(err, "peers[1].address: an IPv6 peer"));
	assert_int_equal(kl_config_override(&c, "ipv6=2001:db8::1", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(c.peers[1].family, AF_INET6);
	/* the whole list goes with "peers=" */
	assert_int_equal(kl_config_override(&c, "peers=", err, sizeof(err)), 0);
	assert_int_equal(c.n_peers, 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	/* KL_CONFIG_MAX_PEERS entries are fine, validated */
	for (unsigned i = 0; i < KL_CONFIG_MAX_PEERS; i++) {
		char kv[96];

		snprintf(kv, sizeof(kv), "peers[%u].identity=peer%u.example.net", i, i);
		assert_int_equal(kl_config_override(&c, kv, err, sizeof(err)), 0);
		snprintf(kv, sizeof(kv), "peers[%u].address=198.51.100.%u", i, i + 1);
		assert_int_equal(kl_config_override(&c, kv, err, sizeof(err)), 0);
	}
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(c.n_peers, KL_CONFIG_MAX_PEERS);
	kl_config_free(&c);
}

/* The naf_key_center: section: every value of tests/config/naf-good.yaml, and the overrides. */
static void
test_naf_section(void **state)
{
	(void)state;
	char path[1024], err[512] = "";
	struct kl_config c;

	snprintf(path, sizeof(path), "%s/tests/config/naf-good.yaml", src_root);
	assert_int_equal(kl_config_load(path, &c, err, sizeof(err)), 0);
	assert_true(c.naf.enabled);
	assert_string_equal(c.naf.listen, "127.0.0.1");
	assert_int_equal(c.naf.port, 8443);
	assert_string_equal(c.naf.device_ca, "/etc/keyline/device-ca.pem");
	assert_string_equal(c.naf.crl, "/etc/keyline/device-ca.crl");
	assert_int_equal(c.naf.n_ids, 2);
	assert_int_equal(c.naf.ids[0].len, 15 + 5);
	assert_memory_equal(c.naf.ids[0].id, "naf.example.net\x01\x00\x00\x00\x02", 20);
	assert_true(c.naf.ids[0].is_default);
	assert_int_equal(c.naf.ids[0].max_lifetime_s, 3600);
	assert_int_equal(c.naf.ids[1].len, 20);
	assert_memory_equal(c.naf.ids[1].id, "naf.example.net\x01\x00\x00\x00\x01", 20);
	assert_int_equal(c.naf.ids[1].max_lifetime_s, 86400);
	assert_string_equal(c.naf.bsf.identity, "bsf.example.net");
	assert_string_equal(c.naf.bsf.address, "192.0.2.10");
	assert_int_equal(c.naf.bsf.port, 3868);
	assert_int_equal(c.naf.bsf.timeout_ms, 2000);
	assert_int_equal(c.naf.rate_per_s, 50);
	assert_int_equal(c.naf.rate_burst, 20);
	assert_int_equal(c.naf.threads, 2);
	assert_int_equal(c.naf.max_body, 4096);
	assert_int_equal(c.naf.max_connections, 1024);
	assert_int_equal(c.naf.connection_timeout_s, 10);
	assert_int_equal(c.naf.max_keys, 100000);
	assert_true(c.naf.has_cpus);
	assert_int_equal(c.naf.cpus[0], 2);
	/* overrides: the same checks, cross-field rules at validate */
	assert_int_equal(kl_config_override(&c, "naf_key_center.cpus=0-2,5", err, sizeof(err)), 0);
	assert_int_equal(c.naf.cpus[0], 0x27);
	assert_int_equal(kl_config_override(&c, "naf_key_center.naf_ids[2].hex=00ff", err,
					    sizeof(err)), 0);
	assert_int_equal(c.naf.n_ids, 3);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "naf_key_center.naf_ids[2].default=true", err,
					    sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exactly one must be default"));
	assert_int_equal(kl_config_override(&c, "naf_key_center.naf_ids[4].hex=00", err,
					    sizeof(err)), -1);
	assert_non_null(strstr(err, "naf_key_center.naf_ids[4].hex"));
	assert_int_equal(kl_config_override(&c, "naf_key_center.port=8443x", err, sizeof(err)),
			 -1);
	c.diameter.enabled = false;
	c.naf.ids[2].is_default = false;
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "needs the diameter: section"));
	kl_config_free(&c);
	kl_config_defaults(&c);
	assert_false(c.naf.enabled);
	assert_int_equal(c.naf.port, 8443);
}

/* The cluster: section: every value of tests/config/cluster-good.yaml, and the overrides. */
static void
test_cluster_section(void **state)
{
	(void)state;
	char path[1024], err[512] = "";
	struct kl_config c;

	snprintf(path, sizeof(path), "%s/tests/config/cluster-good.yaml", src_root);
	assert_int_equal(kl_config_load(path, &c, err, sizeof(err)), 0);
	assert_true(c.cluster.enabled);
	assert_int_equal(c.cluster.n_endpoints, 3);
	assert_string_equal(c.cluster.endpoints[0], "https://etcd-1.example.net:2379");
	assert_string_equal(c.cluster.endpoints[2], "https://[2001:db8::43]:2379");
	assert_string_equal(c.cluster.node, "keyline-b");
	assert_string_equal(c.cluster.prefix, "/keyline/c1");
	assert_string_equal(c.cluster.ca_file, "/etc/keyline/etcd-ca.pem");
	assert_string_equal(c.cluster.cert_file, "/etc/keyline/etcd.pem");
	assert_string_equal(c.cluster.key_file, "/etc/keyline/etcd.key");
	assert_int_equal(c.cluster.lease_ttl_s, 15);
	assert_int_equal(c.cluster.connect_timeout_ms, 500);
	assert_int_equal(c.cluster.request_timeout_ms, 3000);
	assert_int_equal(c.cluster.stale_after_ms, 2000);
	assert_int_equal(c.cluster.write_connections, 8);
	/* overrides: the list at once or by index, optional files cleared, cross-field rules at
	 * validate */
	assert_int_equal(kl_config_override(&c, "cluster.endpoints=http://127.0.0.1:2379,"
						"http://localhost:22379", err, sizeof(err)), 0);
	assert_int_equal(c.cluster.n_endpoints, 2);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "TLS files, but no https:// endpoint"));
	assert_int_equal(kl_config_override(&c, "cluster.endpoints[2]=https://h.example:1", err,
					    sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "cluster.endpoints[4]=https://h.example:1", err,
					    sizeof(err)), -1);
	assert_non_null(strstr(err, "cluster.endpoints[4]: at most 16 endpoints"));
	assert_int_equal(kl_config_override(&c, "cluster.endpoints[0]=http://h:0", err,
					    sizeof(err)), -1);
	assert_int_equal(kl_config_override(&c, "cluster.endpoints[0]=http://.h", err,
					    sizeof(err)), -1);
	assert_int_equal(kl_config_override(&c, "cluster.endpoints[0]=http://[::1", err,
					    sizeof(err)), -1);
	assert_int_equal(kl_config_override(&c, "cluster.key_file=", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cluster.key_file: required with cluster.cert_file"));
	assert_int_equal(kl_config_override(&c, "cluster.cert_file=", err, sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "cluster.node=a/b", err, sizeof(err)), -1);
	assert_int_equal(kl_config_override(&c, "cluster.prefix=/", err, sizeof(err)), -1);
	assert_int_equal(kl_config_override(&c, "cluster.prefix=/a b", err, sizeof(err)), -1);
	assert_int_equal(kl_config_override(&c, "cluster.lease_ttl_s=301", err, sizeof(err)), -1);
	assert_int_equal(kl_config_override(&c, "cluster.write_connections=17", err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "cluster.write_connections: must be 1..16"));
	assert_int_equal(kl_config_override(&c, "cluster.member=x", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cluster.member: unknown key"));
	c.store.enabled = false;
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "needs the store: section"));
	kl_config_free(&c);
	/* a cluster from the command line alone */
	kl_config_defaults(&c);
	assert_false(c.cluster.enabled);
	assert_string_equal(c.cluster.prefix, "/keyline");
	assert_int_equal(kl_config_override(&c, "server_identity=k", err, sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "io=socket", err, sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "store.path=/s", err, sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "store.kek_file=/k", err, sizeof(err)), 0);
	assert_int_equal(kl_config_override(&c, "cluster.node=n1", err, sizeof(err)), 0);
	assert_true(c.cluster.enabled);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cluster.endpoints: required key is missing"));
	assert_int_equal(kl_config_override(&c, "cluster.endpoints[0]=http://127.0.0.1:2379", err,
					    sizeof(err)), 0);
	assert_int_equal(kl_config_validate(&c, err, sizeof(err)), 0);
	kl_config_free(&c);
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		src_root = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_example_sections),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_bad_files_all_listed),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_garbage_1mb),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_naf_section),
		cmocka_unit_test(test_cluster_section),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

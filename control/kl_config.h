/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylined configuration: one YAML file (libcyaml schema) plus "key=value" command-line overrides,
 * validated completely at start-up. Every error is one line "FILE:LINE: KEY: what is wrong"
 * ("command line: KEY: what is wrong" for overrides), so the daemon can print it and exit 2.
 */
#ifndef KL_CONFIG_H
#define KL_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KL_CONFIG_MAX_PORTS 8
#define KL_CONFIG_MAX_ADDRS 8
#define KL_CONFIG_MAX_QUEUES 16
#define KL_CONFIG_MAX_WORKERS 64
#define KL_CONFIG_PORT_NAME_MAX 31  /* bytes, excluding NUL */
#define KL_CONFIG_DEVARGS_MAX 255   /* bytes, excluding NUL */
#define KL_CONFIG_IDENTITY_MAX 64   /* bytes of UTF-8 */
#define KL_CONFIG_ADMIN_PATH_MAX 107 /* sun_path is 108 bytes with its NUL */
#define KL_CONFIG_STORE_PATH_MAX 255 /* bytes of store.path / store.kek_file, excluding NUL */
#define KL_CONFIG_MAX_FILE_SIZE (4u << 20) /* larger files are refused before parsing */

#define KL_CONFIG_DIAMETER_STR_MAX 255 /* bytes of a diameter.* string, excluding NUL */
#define KL_CONFIG_DIAMETER_MAX_PEERS 16 /* diameter.allowed_peers entries */
#define KL_CONFIG_DIAMETER_MAX_QUEUE (1u << 20) /* = KL_DIAMETER_MAX_QUEUE */
#define KL_CONFIG_MAX_ROTATIONS 256 /* msk_rotation entries */
#define KL_CONFIG_MAX_PEERS 32 /* peers entries (= KL_PEERS_MAX, dataplane/kl_peer.h) */
#define KL_CONFIG_PEER_ID_MAX 128 /* bytes of a peer server's identity (PROTOCOL.md section 1) */
/* = KL_ROTATE_MIN_PERIOD_S / KL_ROTATE_MAX_PERIOD_S (control/kl_rotate.h; kl_daemon.c checks) */
#define KL_CONFIG_ROTATE_MIN_PERIOD_S 10u
#define KL_CONFIG_ROTATE_MAX_PERIOD_S (366u * 86400u)

#define KL_CONFIG_DEFAULT_UDP_PORT 2269
#define KL_CONFIG_DEFAULT_PEER_PORT 2269 /* a peer's port when its entry names none */
#define KL_CONFIG_DEFAULT_DIAMETER_PORT 5868	   /* Diameter over TLS (RFC 6733) */
#define KL_CONFIG_DEFAULT_DIAMETER_VENDOR 99999u   /* = KL_DIAMETER_DEFAULT_VENDOR */
#define KL_CONFIG_DEFAULT_DIAMETER_APP 16777999u   /* = KL_DIAMETER_DEFAULT_APP */
#define KL_CONFIG_DEFAULT_DIAMETER_QUEUE 4096u	   /* = KL_DIAMETER_DEFAULT_MAX_QUEUE */
#define KL_CONFIG_DEFAULT_ADMIN_SOCKET "/run/keyline/admin.sock"
#define KL_CONFIG_DEFAULT_NAF_PORT 8443		   /* PROTOCOL.md section 11 */
#define KL_CONFIG_DEFAULT_BSF_PORT 3868
#define KL_CONFIG_NAF_MAX_IDS 16		   /* naf_key_center.naf_ids entries */
#define KL_CONFIG_NAF_ID_MAX 255		   /* bytes of a NAF_Id (= KL_ZN_NAF_ID_MAX) */
#define KL_CONFIG_NAF_UA_LEN 5			   /* Ua security protocol id (TS 33.220 H) */
#define KL_CONFIG_MAX_CPUS 1024			   /* naf_key_center.cpus: CPU numbers below */
#define KL_CONFIG_CLUSTER_MAX_ENDPOINTS 16	   /* = KL_ETCD_MAX_ENDPOINTS */
#define KL_CONFIG_CLUSTER_URL_MAX 255		   /* bytes of an endpoint URL */
#define KL_CONFIG_CLUSTER_PREFIX_MAX 128	   /* = KL_CLUSTER_PREFIX_MAX */
#define KL_CONFIG_CLUSTER_NODE_MAX 63		   /* bytes of cluster.node */
#define KL_CONFIG_DEFAULT_CLUSTER_PREFIX "/keyline"

enum kl_config_log_level {
	KL_CONFIG_LOG_ERROR = 0,
	KL_CONFIG_LOG_WARNING,
	KL_CONFIG_LOG_INFO,
	KL_CONFIG_LOG_DEBUG,
};

/* Same values as enum kl_crypto_backend (crypto/kl_crypto.h), so the daemon can cast. */
enum kl_config_crypto {
	KL_CONFIG_CRYPTO_IPSEC_MB = 0,
	KL_CONFIG_CRYPTO_OPENSSL = 1,
};

enum kl_config_io {
	KL_CONFIG_IO_DPDK = 0,
	KL_CONFIG_IO_SOCKET,
};

struct kl_config_port {
	char name[KL_CONFIG_PORT_NAME_MAX + 1];	  /* [A-Za-z0-9_.-], unique */
	char devargs[KL_CONFIG_DEVARGS_MAX + 1]; /* vdev ("net_memif0,role=server,...") or PCI address */
	uint16_t queues;			  /* RX/TX queue pairs, 1..16; must equal workers (dpdk io) */
};

/* A parsed "host:port" ("127.0.0.1:9469", "[::1]:9469"). */
struct kl_config_endpoint {
	bool enabled;	  /* false: the key was empty (feature off) */
	int family;	  /* AF_INET or AF_INET6 */
	struct in_addr v4;
	struct in6_addr v6;
	uint16_t port;	  /* host order */
	char text[64];	  /* as written */
};

/* One msk_rotation: entry: an MBMS key group whose MSKs keylined makes and rotates. */
struct kl_config_rotation {
	uint8_t domain[3];	/* Key Domain ID (MCC||MNC) */
	uint16_t group;		/* key group 0..65535 */
	uint32_t period_s;	/* KL_CONFIG_ROTATE_MIN_PERIOD_S..KL_CONFIG_ROTATE_MAX_PERIOD_S */
	uint32_t predelivery_s; /* 0..period_s - 1, and <= the top-level predelivery_s */
};

/* One peers: entry: another keyline this one exchanges server-to-server messages with
 * (PROTOCOL.md section 10, kinds 6 and 7; dataplane/kl_peer.h). Its datagrams are recognised by
 * their source address and port, which must therefore be exactly what the peer sends from. */
struct kl_config_peer {
	char identity[KL_CONFIG_PEER_ID_MAX + 1]; /* required: its IDr/IDi, 1..128 bytes of UTF-8,
						    * unique, not our server_identity */
	uint16_t identity_len;
	int family;	       /* AF_INET or AF_INET6 (required: address) */
	struct in_addr v4;
	struct in6_addr v6;
	uint16_t port;	       /* host order, 1..65535, default 2269 */
	bool has_mac;	       /* dpdk io: the next hop's MAC is configured, not learned */
	uint8_t mac[6];
};

/* The HSS-side Diameter feed (control/diameter/kl_diameter.h, struct kl_diameter_params). */
struct kl_config_diameter {
	bool enabled; /* the section is present (or diameter.* was overridden) */
	/* An operator's freeDiameter configuration file (absolute); then identity, realm, listen
	 * and tls_* must be absent (the file sets them; port is ignored). */
	char fd_conf[KL_CONFIG_DIAMETER_STR_MAX + 1];
	char identity[KL_CONFIG_DIAMETER_STR_MAX + 1]; /* our Diameter identity (FQDN); required */
	char realm[KL_CONFIG_DIAMETER_STR_MAX + 1];    /* "": the identity after its first dot */
	char listen[64];  /* IPv4 or IPv6 address to listen on; "": all */
	uint16_t port;	  /* TLS port, 1..65535, default 5868 */
	char tls_cert[KL_CONFIG_DIAMETER_STR_MAX + 1]; /* absolute PEM paths; required */
	char tls_key[KL_CONFIG_DIAMETER_STR_MAX + 1];
	char tls_ca[KL_CONFIG_DIAMETER_STR_MAX + 1];
	char tls_crl[KL_CONFIG_DIAMETER_STR_MAX + 1]; /* optional */
	uint32_t vendor_id; /* 1..2^32-1, default 99999 */
	uint32_t app_id;    /* 1..2^32-2, default 16777999 */
	char allowed_peers[KL_CONFIG_DIAMETER_MAX_PEERS][KL_CONFIG_DIAMETER_STR_MAX + 1];
	unsigned n_allowed_peers; /* 0: any peer with a certificate from tls_ca naming it */
	uint32_t max_queue; /* requests waiting for the control thread, 1..2^20, default 4096 */
};

/* One naf_key_center.naf_ids entry: a NAF_Id (NAF FQDN || Ua security protocol id, TS 33.220)
 * a device may ask for, and the longest lifetime of a Ks_local_MT issued for it. */
struct kl_config_naf_id {
	uint8_t id[KL_CONFIG_NAF_ID_MAX]; /* fqdn || ua_protocol, or hex */
	uint16_t len;			  /* 0: not set (an entry needs fqdn + ua_protocol, or hex) */
	char fqdn[KL_CONFIG_NAF_ID_MAX + 1];
	bool has_ua;
	uint8_t ua[KL_CONFIG_NAF_UA_LEN];
	bool has_hex;
	uint32_t max_lifetime_s; /* 60..31536000, default 86400 */
	bool is_default;	 /* the one used when a request names none */
};

/* The NAF Key Center (control/http/kl_naf.h, PROTOCOL.md section 11): HTTPS with mutual TLS for
 * external devices, Ks_(ext)_NAF from the BSF over Zn on the diameter: section's stack. */
struct kl_config_naf {
	bool enabled; /* the section is present (or naf_key_center.* was overridden) */
	char listen[64]; /* IPv4 or IPv6 address; "": all */
	uint16_t port;	 /* 1..65535, default 8443 */
	char tls_cert[KL_CONFIG_DIAMETER_STR_MAX + 1];	  /* absolute PEM paths; required */
	char tls_key[KL_CONFIG_DIAMETER_STR_MAX + 1];
	char device_ca[KL_CONFIG_DIAMETER_STR_MAX + 1];	  /* devices' certificates chain to it */
	char operator_ca[KL_CONFIG_DIAMETER_STR_MAX + 1]; /* the DELETE route's certificates */
	char crl[KL_CONFIG_DIAMETER_STR_MAX + 1];	  /* optional: PEM CRLs of those CAs */
	struct kl_config_naf_id ids[KL_CONFIG_NAF_MAX_IDS];
	unsigned n_ids; /* at least one; with several, exactly one is default */
	struct {
		char identity[KL_CONFIG_DIAMETER_STR_MAX + 1]; /* the BSF's Diameter identity */
		char address[64];			       /* IPv4 or IPv6; required */
		uint16_t port;				       /* default 3868 */
		uint32_t timeout_ms;			       /* 10..60000, default 2000 */
	} bsf;
	uint32_t rate_per_s;	    /* requests per second per client certificate, 0 = off;
				     * default 50, up to 10^6 */
	uint32_t rate_burst;	    /* 1..10^6, default 20 */
	uint32_t threads;	    /* HTTPS thread pool, 1..64, default 2 */
	uint32_t max_body;	    /* request body bytes, 64..1048576, default 4096 (413 beyond) */
	uint32_t max_connections;   /* 1..65536, default 1024 */
	uint32_t connection_timeout_s; /* a request's time from connection start or the previous
					* answer (slow clients), 1..3600, default 10 */
	uint32_t max_keys;	    /* issued keys kept, 1..10^8, default 1000000 */
	bool has_cpus;		    /* false: every CPU but the workers' lcores */
	uint64_t cpus[KL_CONFIG_MAX_CPUS / 64]; /* CPUs the HTTPS threads may run on */
	char cpus_text[128];
};

/* The cluster (control/store/kl_cluster.h, README "Clusters on etcd"): the store is a replica of
 * one key catalogue in etcd, written to etcd first. Needs the store: section (its KEK file is
 * the cluster's KEK: every node has the same). */
struct kl_config_cluster {
	bool enabled; /* the section is present (or cluster.* was overridden) */
	char endpoints[KL_CONFIG_CLUSTER_MAX_ENDPOINTS][KL_CONFIG_CLUSTER_URL_MAX + 1];
	unsigned n_endpoints; /* 1..16 http:// or https:// URLs, unique */
	char ca_file[KL_CONFIG_STORE_PATH_MAX + 1];   /* optional (https): CA bundle of the members */
	char cert_file[KL_CONFIG_STORE_PATH_MAX + 1]; /* optional: client certificate, with key_file */
	char key_file[KL_CONFIG_STORE_PATH_MAX + 1];
	char prefix[KL_CONFIG_CLUSTER_PREFIX_MAX + 1]; /* default /keyline; '/' first, none last */
	char node[KL_CONFIG_CLUSTER_NODE_MAX + 1];     /* required: [A-Za-z0-9_.-], unique per node */
	uint32_t lease_ttl_s;	     /* the node's registration lease, 2..300, default 10 */
	uint32_t connect_timeout_ms; /* per endpoint, 10..60000, default 1000 */
	uint32_t request_timeout_ms; /* per endpoint, whole exchange, 10..600000, default 5000 */
	uint32_t stale_after_ms;     /* no contact with etcd this long: stale, 100..3600000,
				      * default 5000 */
	uint32_t write_connections;  /* a write's etcd transactions sent over this many
				      * connections at once, 1..16, default 4 */
};

struct kl_config {
	struct kl_config_port ports[KL_CONFIG_MAX_PORTS];
	unsigned n_ports;
	struct in_addr ipv4[KL_CONFIG_MAX_ADDRS];
	unsigned n_ipv4;
	struct in6_addr ipv6[KL_CONFIG_MAX_ADDRS];
	unsigned n_ipv6;
	uint16_t udp_port;	/* 1..65535, default 2269 */
	uint32_t workers;	/* 1..64, default 1 */
	char server_identity[KL_CONFIG_IDENTITY_MAX + 1]; /* required, 1..64 bytes UTF-8, NUL-terminated */
	uint16_t server_identity_len;
	uint32_t skew_s;	/* 1..3600, default 60 */
	uint32_t predelivery_s; /* 0..86400, default 60 */
	uint32_t hm_session_s;	/* 60..86400, default 3600: kind 2 sessions' lifetime (valid-to) */
	uint32_t retry_after_ms; /* 10..10000, default 200: retry-after of ERR 12/5 (kinds 4, 5) */
	uint32_t replay_cache;	/* power of two 1024..2^26, default 4194304 (64 MiB per worker) */
	struct {
		uint32_t per_source_pps; /* 0 = off (default), up to 10^7 */
		uint32_t burst;		 /* 1..10^6, default 64 */
		uint32_t table_size;	 /* power of two 1024..2^24, default 65536 */
	} rate_limit;
	struct {
		uint32_t ues;	   /* 1..10^8, default 1048576 (about 230 bytes each) */
		uint32_t groups;   /* MBMS key groups, 1..65535, default 1024 */
		uint32_t emses;	   /* 1..10^7, default 65536 */
		uint32_t imsis;	   /* IMSIs with E2M keys, 1..10^8, default 65536 */
		uint32_t appids;   /* application identities, 1..10^7, default 65536 */
		uint32_t e2m_ring; /* e2m_int_keys kept per IMSI, 1..8, default 4 */
		uint32_t pairs;	   /* peer servers with a pair key, 1..10^6, default 64 */
		uint32_t dh_ues;   /* UEs with the dh service (32 bytes more each), 0..10^8;
				    * 0 (not set) = max(ues / 16 + 1024, min(ues, 65536)) */
	} table;
	/* Durable key store (control/store/kl_store.h); absent = keys live in memory only. */
	struct {
		bool enabled;	      /* the section is present (or store.* was overridden) */
		char path[KL_CONFIG_STORE_PATH_MAX + 1];     /* absolute directory; required */
		char kek_file[KL_CONFIG_STORE_PATH_MAX + 1]; /* absolute, mode 0600; required */
		uint32_t map_size_mb; /* 16..1048576, default 1024 */
	} store;
	struct kl_config_diameter diameter; /* absent = no Diameter feed */
	/* Server-to-server (PROTOCOL.md sections 9, 10): the peers, unique identities and unique
	 * address:port pairs, each of a family this server has an address of (any with no
	 * address: the socket io's dual-stack socket). */
	struct kl_config_peer peers[KL_CONFIG_MAX_PEERS];
	unsigned n_peers;
	uint32_t rendezvous_s;	     /* kind 5 pair values kept, 1..3600, default 30 */
	uint32_t rendezvous_entries; /* power of two 64..2^24, default 65536 (shared by workers) */
	uint32_t dh_cache_s;	     /* peers' kind 6 answers kept, 1..86400, default 300 */
	uint32_t dh_cache_entries;   /* power of two 64..2^24, default 65536 */
	uint32_t s2s_pending;	     /* requests to peers in flight, 16..65536, default 4096 */
	struct kl_config_rotation msk_rotation[KL_CONFIG_MAX_ROTATIONS]; /* unique groups */
	unsigned n_msk_rotation;
	char admin_socket[KL_CONFIG_ADMIN_PATH_MAX + 1]; /* absolute; default /run/keyline/admin.sock */
	struct kl_config_endpoint metrics;		  /* default off */
	/* Slow clients (kl_admin.h, kl_metrics.h): at the limit the longest-stalled one makes room. */
	uint32_t admin_max_clients;	    /* 1..256, default 16 */
	uint32_t admin_idle_timeout_s;	    /* 1..86400, default 60 */
	uint32_t admin_line_timeout_s;	    /* a request line's time from its first byte, 1..3600, 5 */
	uint32_t metrics_max_connections;   /* 1..1024, default 32 */
	uint32_t metrics_request_timeout_s; /* headers in and answer out, 1..3600, default 5 */
	struct kl_config_naf naf; /* naf_key_center: absent = no NAF Key Center */
	struct kl_config_cluster cluster; /* cluster: absent = a single node (no etcd) */
	enum kl_config_log_level log_level;		  /* default info */
	enum kl_config_crypto crypto;			  /* default ipsec-mb */
	enum kl_config_io io;				  /* default dpdk */
};

/** Fill c with every default (server_identity stays empty: it is required). */
void kl_config_defaults(struct kl_config *c);

/**
 * Load and fully validate a YAML config file (defaults first, then the file).
 * @param path  file to read (at most KL_CONFIG_MAX_FILE_SIZE bytes)
 * @param out   filled on success; left in an unspecified but freeable state on error
 * @param err   receives one message "FILE:LINE: KEY: what is wrong" on error
 * @return 0, or -1 on any error (I/O, YAML syntax, schema, value).
 */
int kl_config_load(const char *path, struct kl_config *out, char *err, size_t errlen);

/**
 * Apply one command-line override "key=value", with the same per-value checks as the file (syntax,
 * range, power of two, address form). Cross-field rules are not checked here, since overrides come
 * one at a time: call kl_config_validate() once after the last override.
 * Keys: any scalar key ("skew_s", "rate_limit.burst", "metrics", "store.path", "diameter.port",
 * ...), "ports[N].name|devargs|queues" (N = n_ports appends a port), "ipv4[N]" / "ipv6[N]", or
 * "ipv4=a,b" / "ipv6=a,b" to replace a list, "diameter.allowed_peers[N]" or
 * "diameter.allowed_peers=a,b", "msk_rotation[N].group|period_s|predelivery_s" (N =
 * n_msk_rotation appends an entry), "peers[N].identity|address|port|mac" (N = n_peers
 * appends an entry; the empty "peers=" removes every peer). An empty value clears the "metrics"
 * endpoint, an address list, diameter.allowed_peers, or an optional diameter string (realm,
 * listen, tls_crl, ...).
 * "cluster.endpoints[N]" or "cluster.endpoints=a,b".
 * A diameter.* key turns the Diameter feed on, as a store.* key turns the store on (and a
 * cluster.* key the cluster).
 * @return 0, or -1 with "command line: KEY: what is wrong" in err (the key's value, or for an address
 *         list the list, may then be partly changed).
 */
int kl_config_override(struct kl_config *c, const char *key_eq_value, char *err, size_t errlen);

/**
 * Check every field and the cross-field rules (required identity, a port and an address for dpdk
 * io, queues per port equal to workers, unique port names, store.path and store.kek_file when
 * the store is enabled; diameter.identity and tls_cert/tls_key/tls_ca, or fd_conf alone, when
 * the Diameter feed is enabled; unique msk_rotation groups with predelivery_s below period_s
 * and at most the top-level predelivery_s; peers with an identity and an address each, unique
 * identities other than server_identity, unique address:port pairs other than ours, each of a
 * family we have an address of; for cluster: the store, endpoints, node, cert_file with
 * key_file). Files are checked for form only (absolute paths):
 * keylined finds out at start-up whether they exist.
 * @return 0, or -1 with "KEY: what is wrong" in err.
 */
int kl_config_validate(const struct kl_config *c, char *err, size_t errlen);

/** Release what a config holds (nothing is heap-allocated today; the struct is reset). */
void kl_config_free(struct kl_config *c);

/** "error", "warning", "info", "debug". */
const char *kl_config_log_level_name(enum kl_config_log_level l);

#endif /* KL_CONFIG_H */

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline's HSS-side key feed over Diameter, on freeDiameter (libfdcore/libfdproto).
 *
 * keylined is a Diameter server for one vendor-specific application; the HSS/BSF side (or
 * tools/keyline-hss-sim) is a client peer that pushes and removes keys. The same module holds
 * the client side used by the simulator and the tests, so both ends share one dictionary.
 *
 * Transport: Diameter over TLS on TCP only (RFC 6733 "TLS at connection start", freeDiameter's
 * SecPort); the plain Diameter port and SCTP are switched off. Each side presents a certificate
 * from the configured CA. A client must present a certificate naming its Diameter identity
 * (Origin-Host; subject alternative name or common name), and, when allowed_peers is given, be
 * in that list. A peer whose certificate does not chain to the CA fails the TLS handshake; a
 * CER from an identity its certificate does not name, or outside the list, is answered
 * DIAMETER_UNKNOWN_PEER (3010) and the connection closed.
 *
 * ---- Application (vendor and application ids are configurable) ----------------------------
 * Vendor-Id 99999 (KL_DIAMETER_DEFAULT_VENDOR, an example enterprise number) and
 * Auth-Application-Id 16777999 (KL_DIAMETER_DEFAULT_APP, in the IANA vendor-specific range)
 * unless configured otherwise; both are advertised in CER/CEA as a Vendor-Specific-Application-Id.
 * Two commands (codes from RFC 6733's vendor-specific range 8388608..16777213):
 *
 *   Key-Push-Request (KPR)    8388900, R and P bits    Key-Push-Answer (KPA)    8388900
 *   Key-Remove-Request (KRR)  8388901, R and P bits    Key-Remove-Answer (KRA)  8388901
 *
 *   KPR/KRR ::= < Diameter Header: 8388900|8388901, REQ, PXY >
 *               < Session-Id >
 *               { Vendor-Specific-Application-Id }
 *               { Auth-Session-State }              NO_STATE_MAINTAINED (1)
 *               { Origin-Host } { Origin-Realm }
 *               [ Destination-Host ] { Destination-Realm }
 *               { KL-Entry-Type }
 *               [ KL-User-Identity ] [ KL-IMSI ] [ KL-Key ] [ KL-Key-Id ] [ KL-Expiry ]
 *               [ KL-App-Identity ] [ KL-EMSE-Id ] *4[ KL-MBMS-Key-Group ]
 *               [ KL-Peer-Identity ] [ KL-Services ]
 *               *[ Proxy-Info ] *[ Route-Record ] *[ AVP ]
 *   KPA/KRA ::= < Diameter Header: same code, PXY >
 *               < Session-Id > [ Vendor-Specific-Application-Id ] [ Auth-Session-State ]
 *               { Result-Code } { Origin-Host } { Origin-Realm }
 *               [ Error-Message ] [ Failed-AVP ] *[ Proxy-Info ] *[ AVP ]
 *
 * AVPs: vendor-specific (V bit, Vendor-Id = the configured vendor), M bit set:
 *
 *   code name                 type        content
 *   1001 KL-Entry-Type        Enumerated  MUK (1), E2M (2), APPID (3), EMSE (4), UE-GROUPS (5),
 *                                         PAIR (6)
 *   1002 KL-User-Identity     UTF8String  the UE's IMPI or B-TID, 1..128 bytes
 *   1003 KL-IMSI              UTF8String  1..15 decimal digits
 *   1004 KL-Key               OctetString MUK 16..64, e2m_int_key 32, EMSE PSK 16..64, pair key
 *                                         16..64 bytes
 *   1005 KL-Key-Id            Unsigned32  E2M key identifier (32 LSBs of the AV's RAND)
 *   1006 KL-Expiry            Time        expiry of a MUK, e2m_int_key or pair key; absent or 0:
 *                                         never
 *   1007 KL-App-Identity      UTF8String  application-layer identity, 1..128 bytes
 *   1008 KL-EMSE-Id           UTF8String  EMSE_Id, 1..128 bytes
 *   1009 KL-MBMS-Key-Group    Grouped     { KL-Key-Domain-Id } { KL-Key-Group-Id }
 *   1010 KL-Key-Domain-Id     OctetString 3 bytes, MCC||MNC
 *   1011 KL-Key-Group-Id      Unsigned32  0..65535
 *   1012 KL-Peer-Identity     UTF8String  a peer server's identity (PROTOCOL.md section 9), 1..128
 *   1013 KL-Services          Unsigned32  the services a UE may use: mbms 1, hm 2, dh 4, prose 8
 *                                         (1..15); absent: an existing UE keeps its services, a
 *                                         new one gets mbms
 *
 * What each entry type carries (anything else of ours is DIAMETER_AVP_NOT_ALLOWED):
 *
 *   type       push (KPR)                                 remove (KRR)
 *   MUK        User-Identity, Key, [Expiry], [Services]   User-Identity
 *   E2M        IMSI, Key-Id, Key (32), [Expiry]           IMSI, [Key-Id] (absent: every key)
 *   APPID      App-Identity, IMSI                         App-Identity
 *   EMSE       EMSE-Id, Key (PSK)                         EMSE-Id
 *   UE-GROUPS  User-Identity, *4 MBMS-Key-Group (the      User-Identity, *4 MBMS-Key-Group
 *              UE's whole authorised set, replaced)       (absent: every group)
 *   PAIR       Peer-Identity, Key, [Expiry]               Peer-Identity
 *
 * ---- Result-Codes (RFC 6733 section 7.1) ---------------------------------------------------
 *   2001 DIAMETER_SUCCESS                only after the handler (and commit) returned 0; a
 *                                        remove of an absent entry (-ENOENT) is a success too
 *   3004 DIAMETER_TOO_BUSY               the control thread's queue is full, or stopping
 *   5001 DIAMETER_AVP_UNSUPPORTED        unknown AVP with the M bit (freeDiameter)
 *   5004 DIAMETER_INVALID_AVP_VALUE      bad entry type, IMSI, UTF-8, Key-Group-Id > 65535
 *   5005 DIAMETER_MISSING_AVP            a required AVP is missing (ABNF: freeDiameter; per
 *                                        entry type: here); Failed-AVP names it
 *   5008 DIAMETER_AVP_NOT_ALLOWED        one of our AVPs that this entry type does not take
 *   5009 DIAMETER_AVP_OCCURS_TOO_MANY_TIMES  a repeated single-valued AVP (freeDiameter)
 *   5012 DIAMETER_UNABLE_TO_COMPLY       the handler or the commit failed, or has no handler
 *   5014 DIAMETER_INVALID_AVP_LENGTH     wrong data length: a key, Key-Domain-Id or Expiry of
 *                                        the wrong size (here), an Unsigned32 of the wrong size
 *                                        (freeDiameter). Chosen over 5004 because the value is
 *                                        fine byte by byte, its length is what breaks the type.
 *   3xxx other protocol errors (unknown command or no Destination-Realm 3001, another realm or
 *        host 3002, unknown application 3007, bad bits 3008/3009, ...) are answered by
 *        freeDiameter itself with the E bit.
 * Failed-AVP carries the offending AVP, except that a KL-Key's data is zeroed (same length):
 * key bytes never travel back (freeDiameter's own Failed-AVPs carry blank values too). A message
 * freeDiameter cannot parse at all (truncated AVP, bad version or length, garbage) makes it
 * close that connection; the server goes on. Every rejection is logged (WARNING) with the
 * reason, the Result-Code, the AVP code and the origin host, never key bytes.
 *
 * ---- Threading -----------------------------------------------------------------------------
 * freeDiameter runs its own threads (connections, routing, dispatch). Its dispatch threads
 * parse and validate each request here, copy the entry into a queue item (wiping the key from
 * freeDiameter's parsed message) and keep the request; invalid requests are answered at once
 * from the dispatch thread. The key table has one writer, the control thread: it calls
 * kl_diameter_poll (when kl_diameter_fd is readable, or on every loop), which runs the handlers
 * for queued items, then the optional commit, and only then builds and sends each answer
 * (fd_msg_new_answer_from_req + fd_msg_send, which only queues the answer on freeDiameter's
 * outgoing FIFO and is safe from any thread). So no handler ever runs on a freeDiameter thread
 * and no answer leaves before its handler returned. The log sink, in contrast, is called from
 * freeDiameter's threads as well as from the caller's.
 * A peer that reconnects after a broken connection is in REOPEN until three watchdog exchanges
 * (RFC 3539), and freeDiameter drops answers to a peer that is not OPEN: the dispatch thread
 * holds such a peer's request until it is OPEN (at most 2 s) so its answer is not lost.
 *
 * ---- Limits and workarounds ---------------------------------------------------------------
 * freeDiameter keeps global state: one kl_diameter (server or client) per process, started once
 * (it cannot be restarted after kl_diameter_stop). Key bytes are wiped from our queue items and
 * from freeDiameter's parsed AVPs; freeDiameter's raw receive buffer and GnuTLS's record
 * buffers are released without wiping, which is out of this module's reach.
 * freeDiameter 1.2.1 (Debian 12) has two bugs this module works around:
 *  - it sends on one TLS session from two threads when a connection closes (the receiver
 *    thread's gnutls_bye against the state machine's gnutls_bye or DPA send): a heap use after
 *    free in GnuTLS. kl_diameter.c defines gnutls_bye and gnutls_record_send, which the
 *    executable exports to libfdcore, serialising the sends on a session (see there).
 *  - its ListenOn directive drops loopback addresses: listen is added to its endpoints directly.
 * Under LeakSanitizer its own start-up and refused-connection leaks need the suppressions in
 * tests/diameter/lsan.supp. kl_diameter_start sets SIGPIPE to SIG_IGN when it was SIG_DFL.
 */
#ifndef KL_DIAMETER_H
#define KL_DIAMETER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KL_DIAMETER_DEFAULT_VENDOR 99999u
#define KL_DIAMETER_DEFAULT_APP 16777999u
#define KL_DIAMETER_DEFAULT_PORT 5868 /* Diameter over TLS (RFC 6733) */
#define KL_DIAMETER_DEFAULT_MAX_QUEUE 4096u
#define KL_DIAMETER_MAX_QUEUE (1u << 20)

#define KL_DIAMETER_CMD_PUSH 8388900u
#define KL_DIAMETER_CMD_REMOVE 8388901u

/* AVP codes: name, code, freeDiameter type (OctetString-derived ones by their derived type). */
#define KL_DIAMETER_AVPS(X)                                   \
	X(ENTRY_TYPE, 1001, "KL-Entry-Type", "Enumerated")     \
	X(USER_IDENTITY, 1002, "KL-User-Identity", "UTF8String") \
	X(IMSI, 1003, "KL-IMSI", "UTF8String")                 \
	X(KEY, 1004, "KL-Key", "OctetString")                  \
	X(KEY_ID, 1005, "KL-Key-Id", "Unsigned32")             \
	X(EXPIRY, 1006, "KL-Expiry", "Time")                   \
	X(APP_IDENTITY, 1007, "KL-App-Identity", "UTF8String") \
	X(EMSE_ID, 1008, "KL-EMSE-Id", "UTF8String")           \
	X(KEY_GROUP, 1009, "KL-MBMS-Key-Group", "Grouped")     \
	X(KEY_DOMAIN_ID, 1010, "KL-Key-Domain-Id", "OctetString") \
	X(KEY_GROUP_ID, 1011, "KL-Key-Group-Id", "Unsigned32")  \
	X(PEER_IDENTITY, 1012, "KL-Peer-Identity", "UTF8String") \
	X(SERVICES, 1013, "KL-Services", "Unsigned32")

enum kl_diameter_avp {
#define KL_DIAMETER_AVP_ENUM(n, code, name, type) KL_DIAMETER_AVP_##n = code,
	KL_DIAMETER_AVPS(KL_DIAMETER_AVP_ENUM)
#undef KL_DIAMETER_AVP_ENUM
};

enum kl_diameter_op {
	KL_DIAMETER_PUSH = 0,
	KL_DIAMETER_REMOVE = 1,
};

/* KL-Entry-Type values. */
enum kl_diameter_type {
	KL_DIAMETER_MUK = 1,
	KL_DIAMETER_E2M = 2,
	KL_DIAMETER_APPID = 3,
	KL_DIAMETER_EMSE = 4,
	KL_DIAMETER_UE_GROUPS = 5,
	KL_DIAMETER_PAIR = 6,
};
#define KL_DIAMETER_TYPE_LAST KL_DIAMETER_PAIR

/* KL-Services: one bit per service, the key table's KL_SVC() bits (kl_feed.c checks they are
 * equal): mbms 1, hm 2, dh 4, prose 8. */
#define KL_DIAMETER_SERVICES_ALL 0xFu

#define KL_DIAMETER_ID_MAX 128
#define KL_DIAMETER_IMSI_MAX 15 /* digits */
#define KL_DIAMETER_KEY_MIN 16	/* MUK and EMSE PSK */
#define KL_DIAMETER_KEY_MAX 64
#define KL_DIAMETER_E2M_KEY_LEN 32
/* Key groups per UE: the key table's KL_TABLE_UE_GROUPS (kl_feed.c checks they are equal), so
 * the feed and keylinectl put-ue take the same number; a fifth MBMS-Key-Group AVP is answered
 * DIAMETER_AVP_OCCURS_TOO_MANY_TIMES by the dictionary's rule. */
#define KL_DIAMETER_MAX_GROUPS 4

/* Result-Codes this module sends or expects (RFC 6733). */
#define KL_DIAMETER_SUCCESS 2001u
#define KL_DIAMETER_TOO_BUSY 3004u
#define KL_DIAMETER_AVP_UNSUPPORTED 5001u
#define KL_DIAMETER_INVALID_AVP_VALUE 5004u
#define KL_DIAMETER_MISSING_AVP 5005u
#define KL_DIAMETER_AVP_NOT_ALLOWED 5008u
#define KL_DIAMETER_AVP_OCCURS_TOO_MANY_TIMES 5009u
#define KL_DIAMETER_UNABLE_TO_COMPLY 5012u
#define KL_DIAMETER_INVALID_AVP_LENGTH 5014u

/* An MBMS key group: Key Domain ID (MCC||MNC) and key group. */
struct kl_diameter_group {
	uint8_t domain[3];
	uint16_t group;
};

/* One decoded request: what the client sends, what the server hands to its handlers. */
struct kl_diameter_entry {
	enum kl_diameter_op op;
	enum kl_diameter_type type;
	uint16_t id_len;		/* User-Identity (MUK, UE-GROUPS), App-Identity, EMSE-Id */
	uint8_t id[KL_DIAMETER_ID_MAX];
	char imsi[KL_DIAMETER_IMSI_MAX + 1]; /* digits, NUL-terminated; "" when absent */
	uint8_t key_len;		/* 0: absent */
	uint8_t key[KL_DIAMETER_KEY_MAX];
	uint8_t has_key_id;
	uint32_t key_id;
	uint64_t expires; /* NTP timestamp (NTP seconds << 32), 0 = never */
	uint8_t ngroups;
	struct kl_diameter_group groups[KL_DIAMETER_MAX_GROUPS];
	uint8_t services; /* MUK push: KL-Services bits; 0: absent */
};

/*
 * What keylined does with each request, called on the control thread from kl_diameter_poll.
 * Each returns 0 (or any value >= 0, e.g. the key table's 1 "replaced") once the change is
 * durable (with commit: once it is staged in the batch's transaction), or a negative errno:
 * the request is then answered DIAMETER_UNABLE_TO_COMPLY,
 * except -ENOENT from a remove, which is answered DIAMETER_SUCCESS (the entry is absent, as
 * asked). A NULL handler makes its requests fail with DIAMETER_UNABLE_TO_COMPLY.
 * Key pointers are valid during the call only and are wiped afterwards.
 */
struct kl_diameter_handlers {
	/** services: KL-Services bits, 0 when absent (the UE keeps its services; a new UE gets
	 * mbms). */
	int (*push_muk)(void *arg, const uint8_t *id, uint16_t id_len, const uint8_t *muk,
			unsigned muk_len, uint64_t expires, uint8_t services);
	int (*push_e2m)(void *arg, const char *imsi, uint32_t key_id,
			const uint8_t key[KL_DIAMETER_E2M_KEY_LEN], uint64_t expires);
	int (*put_appid)(void *arg, const uint8_t *appid, uint16_t len, const char *imsi);
	int (*put_emse)(void *arg, const uint8_t *id, uint16_t id_len, const uint8_t *psk,
			unsigned psk_len);
	/** The UE's whole authorised set (0..16 groups) replaces the previous one. */
	int (*put_ue_groups)(void *arg, const uint8_t *id, uint16_t id_len,
			     const struct kl_diameter_group *groups, unsigned n);
	int (*remove_muk)(void *arg, const uint8_t *id, uint16_t id_len);
	/** has_key_id 0: every e2m_int_key of the IMSI. */
	int (*remove_e2m)(void *arg, const char *imsi, int has_key_id, uint32_t key_id);
	int (*remove_appid)(void *arg, const uint8_t *appid, uint16_t len);
	int (*remove_emse)(void *arg, const uint8_t *id, uint16_t id_len);
	/** n 0: every group of the UE. */
	int (*remove_ue_groups)(void *arg, const uint8_t *id, uint16_t id_len,
				const struct kl_diameter_group *groups, unsigned n);
	/** The pair key K(our identity, peer server) with its expiry (NTP, 0 = never). */
	int (*push_pair)(void *arg, const uint8_t *peer, uint16_t peer_len, const uint8_t *key,
			 unsigned key_len, uint64_t expires);
	int (*remove_pair)(void *arg, const uint8_t *peer, uint16_t peer_len);
	/**
	 * Optional. When set, the handlers of one kl_diameter_poll call only stage their changes
	 * and commit makes them all durable at once (one LMDB transaction per poll): its 0 answers
	 * every staged request DIAMETER_SUCCESS, an error answers them all
	 * DIAMETER_UNABLE_TO_COMPLY. A handler that fails must leave nothing staged.
	 */
	int (*commit)(void *arg);
	void *arg;
};

/* Same values as enum kl_config_log_level and kl_admin_log_level, so keylined can cast. */
enum kl_diameter_log_level {
	KL_DIAMETER_LOG_ERROR = 0,
	KL_DIAMETER_LOG_WARNING,
	KL_DIAMETER_LOG_INFO,
	KL_DIAMETER_LOG_DEBUG,
};

struct kl_diameter_params {
	/* An operator's freeDiameter configuration file, used as it is: then identity..tls_crl
	 * below are ignored (the file must not load extensions that register the same
	 * application). NULL: a configuration is generated from the fields below. */
	const char *fd_conf;
	const char *identity;	/* our Diameter identity (FQDN); our certificate names it */
	const char *realm;	/* NULL: the part of identity after its first dot */
	const char *listen;	/* IP address to listen on / connect from; NULL: all (server) */
	uint16_t port;		/* server: TLS port to listen on; 0 = KL_DIAMETER_DEFAULT_PORT */
	const char *tls_cert;	/* PEM: our certificate (chain) */
	const char *tls_key;	/* PEM: its private key */
	const char *tls_ca;	/* PEM: the CA(s) peer certificates must chain to */
	const char *tls_crl;	/* PEM CRL, optional */
	uint32_t vendor_id;	/* 0 = KL_DIAMETER_DEFAULT_VENDOR */
	uint32_t app_id;	/* 0 = KL_DIAMETER_DEFAULT_APP */
	/* Server: NULL-terminated list of the Diameter identities allowed to connect; NULL: any
	 * peer whose certificate from tls_ca names its identity. */
	const char *const *allowed_peers;
	unsigned max_queue; /* server: requests waiting for the control thread; 0 = default */
	/* Client: the server to connect to. */
	const char *peer_identity;
	const char *peer_address; /* IP address */
	uint16_t peer_port;	  /* 0 = KL_DIAMETER_DEFAULT_PORT */
	/* Log sink (any thread); NULL: "keyline diameter: ..." lines on stderr. Messages up to
	 * log_level are passed; they never contain key bytes. freeDiameter's own log lines come
	 * through it too, prefixed "freeDiameter: ". */
	void (*log)(void *arg, enum kl_diameter_log_level level, const char *msg);
	void *log_arg;
	/* 0 is ERROR: set INFO for the usual start/peer/stop lines. freeDiameter's notices come
	 * at DEBUG; its own debug traces are never passed on (some dump whole messages). */
	enum kl_diameter_log_level log_level;
	/* Server: control-plane counters (diameter_*, kl_ctl_stats.h) kept with the stats below;
	 * NULL: none. */
	struct kl_ctl_stats *ctl;
};

struct kl_diameter;

/**
 * Start the server: freeDiameter's core with the generated (or given) configuration, the
 * dictionary, the application and its handlers; returns once it listens. handlers is copied.
 * @param err gets one clear line on failure.
 * @return the server, or NULL (errno: EINVAL bad parameters or configuration, EALREADY
 *         freeDiameter was already started in this process, EIO freeDiameter failed).
 */
struct kl_diameter *kl_diameter_start(const struct kl_diameter_params *p,
				      const struct kl_diameter_handlers *h, char *err,
				      size_t errlen);

/**
 * Control thread: run the handlers of up to max queued requests (0: all queued now), then the
 * commit, then send their answers. Never blocks beyond the handlers themselves.
 * @return the number of requests answered, or -EINVAL.
 */
int kl_diameter_poll(struct kl_diameter *d, unsigned max);

/** An eventfd that is readable while requests wait for kl_diameter_poll (poll/epoll it). */
int kl_diameter_fd(const struct kl_diameter *d);

/* What the server has done since start, for logs and tests. */
struct kl_diameter_stats {
	uint64_t answered_ok;	    /* 2001 */
	uint64_t rejected;	    /* invalid requests answered by this module (5xxx) */
	uint64_t failed;	    /* 5012: handler or commit failed */
	uint64_t busy;		    /* 3004 */
	uint64_t commits;	    /* commit calls */
	unsigned queued;	    /* waiting now */
	unsigned peers_refused;	    /* connections refused by the peer check */
};

/** Copy the counters (any thread). */
void kl_diameter_get_stats(struct kl_diameter *d, struct kl_diameter_stats *s);

/* One peer freeDiameter knows (connected, connecting, or kept after a disconnection). */
struct kl_diameter_peer {
	char identity[256]; /* its Diameter identity (truncated, NUL-terminated) */
	char state[32];	    /* freeDiameter's state name: "STATE_OPEN", "STATE_CLOSED", ... */
};

/**
 * List freeDiameter's peers (fd_g_peers, in its order) with their states, up to max of them
 * (any thread; freeDiameter's peer list lock is held while copying).
 * @return the number of peers (may exceed max: only max were written), or -EINVAL.
 */
int kl_diameter_peers(struct kl_diameter *d, struct kl_diameter_peer *out, unsigned max);

/**
 * Stop: requests still queued are dropped without an answer (the peer retries them
 * elsewhere), connections are closed (DPR), freeDiameter is shut down, everything freed.
 * NULL is accepted.
 */
void kl_diameter_stop(struct kl_diameter *d);

/* ---- client side (keyline-hss-sim, tests) ---------------------------------------------------- */

/**
 * Start freeDiameter as a client of p->peer_identity at p->peer_address and wait up to
 * timeout_ms for the connection to open (TLS handshake and CER/CEA done).
 * @return the client, or NULL with err set (errno ETIMEDOUT: the peer did not open, e.g. it
 *         refused our certificate; others as kl_diameter_start).
 */
struct kl_diameter *kl_diameter_client_start(const struct kl_diameter_params *p,
					     unsigned timeout_ms, char *err, size_t errlen);

/**
 * Send one request built from e (only the AVPs e's type takes are written; key_len 0, ngroups
 * 0 and has_key_id 0 leave those out, an empty imsi or id_len 0 too, so tests can omit any).
 * done is called once, on a freeDiameter thread, with the answer's Result-Code, or 0 when no
 * answer came within timeout_ms (or the connection failed). The request's key is wiped from
 * freeDiameter's message when the answer arrives.
 * @return 0 (sent) or -errno (ENOTCONN: the peer is not open; EINVAL; ENOMEM).
 */
int kl_diameter_client_send(struct kl_diameter *c, const struct kl_diameter_entry *e,
			    unsigned timeout_ms, void (*done)(void *arg, uint32_t result_code),
			    void *arg);

/** 1 while the connection to the peer is open. */
int kl_diameter_client_connected(struct kl_diameter *c);

/** Name of a Result-Code ("DIAMETER_SUCCESS", ..., or "unknown"). */
const char *kl_diameter_result_name(uint32_t code);

/** Name of an entry type ("muk", "e2m", "appid", "emse", "ue-groups", "pair") or NULL. */
const char *kl_diameter_type_name(enum kl_diameter_type t);

/**
 * The GnuTLS interposers' counts since the process started (kl_diameter.c, freeDiameter 1.2.1's
 * TLS race): counts[0] gnutls_record_send and counts[1] gnutls_bye calls of libfdcore,
 * serialised per session; counts[2] sends and counts[3] byes of every other caller, passed
 * straight to GnuTLS. Any thread.
 */
void kl_diameter_tls_counts(uint64_t counts[4]);

#ifdef __cplusplus
}
#endif
#endif

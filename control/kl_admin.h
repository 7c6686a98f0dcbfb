/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylined's admin socket: a Unix stream socket on which operators (keylinectl) change the key
 * table and read counters while the workers keep serving.
 *
 * It runs on the control thread, the key table's only writer: keylined calls kl_admin_poll in its
 * control loop and every command is executed there, through the key table's write API. All socket
 * I/O is non-blocking and each poll does bounded work, so a slow or stuck client never holds the
 * control thread (the one exception is import-population, which writes a whole test population in
 * one call and answers when it is done).
 *
 * Protocol: each request is one JSON object on one line, each answer one JSON object on one line,
 * in order: {"ok":true,...} or {"ok":false,"error":"message"}. Blank lines are ignored. A line
 * longer than max_line bytes is answered with an error and the connection is closed; any other
 * bad request gets an error answer and the connection stays usable. Unknown fields are errors.
 *
 *   {"cmd":"ping"}                          -> {"ok":true,"pong":true}
 *   {"cmd":"version"}                       -> {"ok":true,"version":..,"io_backend":..,
 *                                               "crypto_backend":..}
 *   {"cmd":"import-population","params":{"seed":N|"N","ues":N,"groups":N,"emses":N,"imsis":N,
 *          "appids":N,"e2m-keys":N,"now":N,"msk-period":N}}   (names and units of the
 *          population file, "now" in NTP seconds; keylinectl reads the file and sends these)
 *   {"cmd":"import-population","path":"/abs/file"}  (the daemon reads the file itself)
 *                                           -> {"ok":true,"ues":..,"groups":..,"emses":..,
 *                                               "imsis":..,"e2m_keys":..,"appids":..,
 *                                               "elapsed_ms":..}
 *   {"cmd":"put-ue","id":"IMPI or B-TID","muk":"HEX (1..64 bytes)","groups":["DDDDDD:G",..],
 *          "expires":T (the MUK's expiry in Unix seconds, optional, 0 = never)}
 *          (show ue also returns "expires"; at most KL_TABLE_UE_GROUPS groups, the whole list)
 *   {"cmd":"ue-group-add"|"ue-group-del","id":"IMPI or B-TID","group":"DDDDDD:G"}
 *          -> {"ok":true,"result":"group added"|"group removed","group":..,"groups":[..]}
 *          (one group more or less; the MUK and its expiry are kept)
 *          put-ue and ue-group-add answer "warnings":["group G does not exist (yet): ..."] for
 *          a group not in the table (taken all the same). Groups are answered as lower-case hex.
 *   {"cmd":"put-group","group":"DDDDDD:G","current":MSK,"next":MSK (optional)}
 *          MSK = {"key":"HEX (16 bytes)","msk_id":N,"valid_from":T,"valid_to":T}; msk_id is the
 *          key number (1..65535) or the whole MSK ID (group << 16 | key number)
 *   {"cmd":"put-emse","id":"EMSE_Id","psk":"HEX (1..64 bytes)"}
 *   {"cmd":"push-e2m","imsi":"DIGITS","key":"HEX (32 bytes)","key_id":N,"expires":T (0 = never)}
 *   {"cmd":"put-appid","appid":"ID","imsi":"DIGITS"}
 *          -> {"ok":true,"result":"added"|"replaced",("kcv":"XXXXXX")}
 *   {"cmd":"del","kind":KIND,"id":ID}       -> {"ok":true,"result":"deleted"}
 *   {"cmd":"count"}                         -> {"ok":true,"counts":{"ues":N,..},"memory_bytes":N}
 *   {"cmd":"show","kind":KIND,"id":ID}      -> the entry's metadata and key check values
 *   {"cmd":"stats","worker":N (optional)}   -> every counter, drop reason, the service-time
 *                                              histogram, totals, uptime
 *   {"cmd":"rotate","group":"DDDDDD:G"}    -> forced MSK rotation (kl_rotate_force, now):
 *          {"ok":true,"result":"rotated","group":"DDDDDD:G","msk_id":N,"key_number":N,
 *           "valid_from":T,"valid_to":T,"kcv":"XXXXXX"}; an error when no rotation is
 *          configured or the group is not one of its groups
 *   {"cmd":"status"}                        -> {"ok":true,"version":..,"io_backend":..,
 *          "crypto_backend":..,"uptime_s":N,"workers":N,
 *          "table":{"counts":{"ues":N,..},"memory_bytes":N},
 *          "store":{"enabled":false} | {"enabled":true,"entries":{"ues":N,..},"file_bytes":N,
 *                   "used_bytes":N,"map_size":N,"bytes_per_ue":X,"ue_bytes":N,"schema":N,
 *                   "created":T,"kek_kcv":"XXXXXX","kek_secure_heap":B} (or "error":".."),
 *          "diameter":{"enabled":false} | {"enabled":true,"identity":..,"port":N,
 *                   "vendor_id":N,"app_id":N,"counters":{"answered_ok":N,"rejected":N,
 *                   "failed":N,"busy":N,"commits":N,"queued":N,"peers_refused":N},
 *                   "peers":[{"identity":..,"state":..},..]} (or "error":".."),
 *          "rotation":{"enabled":B,"groups":[{"group":"DDDDDD:G","period_s":N,
 *                   "predelivery_s":N,"rotations":N,"failures":N,"current":MSKINFO|null,
 *                   "next":MSKINFO|null},..]},
 *          "s2s":{"enabled":false} | {"enabled":true,"peers":N,"rendezvous":{"used":N,
 *                   "capacity":N,"full":N},"cache":{...},"pending":{...},"contended":N}}
 *          (server-to-server tables, kl_stats_s2s: up to a second old)
 *          "naf_key_center":{"enabled":false} | {"enabled":true,"port":N,"bsf":{"identity":..,
 *                   "open":B},"zn":{"requests":N,"cache_hits":N,"sent":N,"answered":N,
 *                   "cache_entries":N},"keys":{"keys":N,"invalidated":N,"issued":N,
 *                   "blocked_devices":N,"blocked_serials":N}}
 *          "cluster":{"enabled":false} | kl_cluster_status (control/store/kl_cluster.h), with
 *                   MSK rotation its "role" and "election":{"name":"rotation","role":..,
 *                   "leader":NAME,"term":N,"elected_revision":N,"valid_ms":N,"lease":N,
 *                   "campaigns":N,"elected":N,"lost":N,"keepalives":N,"keepalive_failures":N,
 *                   "ready":B,"error":".."} (kl_services.c)
 *          MSKINFO = {"msk_id":N,"key_number":N,"valid_from":T,"valid_to":T,"kcv":"XXXXXX"}
 *          (version etc. only with a stats view; "status" never holds key bytes)
 *   {"cmd":"peers"}                         -> {"ok":true,"peers":[{"identity":..,"address":..,
 *          "port":N,"pair_key":B,("pair_kcv":"XXXXXX","pair_expires":T,)"counters":{"sent":N,
 *          "answered":N,"retried":N,"failed":N,"refused":N,"received":N}},..],
 *          "unconfigured_refused":N}: the configured peer servers (stats view's peers; an
 *          error without them), whether the table holds the pair key with each
 *   {"cmd":"backup","file":"/abs/path"}    -> {"ok":true,"result":"started","id":N}: an online
 *          copy of the store (kl_store_backup_start: consistent, compacted, mode 0600, never
 *          over an existing file) made by a thread of the store while this thread goes on
 *          serving; an error when there is no store, a backup runs, the path is not absolute,
 *          the file exists or its directory does not
 *   {"cmd":"backup-status"}                 -> {"ok":true,"running":B,"id":N (last started),
 *          "last":{"id":N,"file":..,"ok":B,"bytes":N,"seconds":X,"error":".."} (the last
 *          finished, when there is one)}; keylinectl backup asks every 100 ms until its id is
 *          the last finished one
 *
 *   naf-keys, naf-invalidate, naf-block, naf-unblock, naf-blocklist: the NAF Key Center's issued
 *          keys and blocklists (control/http/kl_naf_keys.h, kl_naf_keys_admin), through ext_cmd below;
 *          "the NAF Key Center is not configured" without a naf_key_center: section
 *
 * KIND: ue, group, emse, imsi (alias e2m), appid, or the plural names of kl_stats_table_kind_name.
 * A group is named "DDDDDD:G": Key Domain ID as 6 hex digits (MCC||MNC), key group in decimal.
 * Times T are unix seconds (integers, 0..2085978495; stored as NTP timestamps) and are shown the
 * same way. Keys are hex strings (even number of digits, no prefix).
 *
 * Key hygiene: answers and log lines never hold key bytes or midstates, only key check values
 * (kl_kcv, 6 uppercase hex digits). Request bytes are wiped from the line buffer once handled,
 * decoded keys are wiped after the table call, and the key strings inside the parsed JSON are
 * wiped in place; jansson's own scratch buffers (its lexer copies each string once) are covered
 * by kl_admin_create installing a jansson free function that zeroes every block it releases
 * (json_set_alloc_funcs with malloc and a wiping free: process-wide, harmless to other users).
 * What stays out of reach: the kernel's socket buffers.
 *
 * Durable store: when kl_admin_params.store is set, every write (put-*, push-e2m, del) is
 * committed to the store first and only then written into the table; a store failure is answered
 * as an error ("store: ...") and leaves the table untouched. A table failure after the store
 * commit (table full) removes a new record from the store again (a replaced one cannot be: that
 * is logged and the stored value loads at the next start). import-population is refused
 * while a store is set: a test population's keys follow from its seed and are never stored.
 *
 * Slow clients: every connection has its own buffers and non-blocking I/O. A client silent for
 * idle_timeout_ms, or holding a partial request line for line_timeout_ms after its first byte,
 * gets an error line and is disconnected. At max_clients a new client is never refused: the
 * connected client idle (or holding its partial line) the longest is told
 * "too many admin clients (max N): this connection was idle the longest" and closed, and the
 * new one takes its slot, so slow or forgotten connections cannot lock an operator out.
 *
 * Access: the socket file is 0600 in a directory created 0750 if missing; peers whose uid is
 * neither root nor ours (SO_PEERCRED) are refused.
 */
#ifndef KL_ADMIN_H
#define KL_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "kl_stats.h"
#include "kl_table.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KL_ADMIN_DEFAULT_MAX_CLIENTS 16
#define KL_ADMIN_DEFAULT_MAX_LINE 65536u     /* bytes of one request, without its newline */
#define KL_ADMIN_DEFAULT_IDLE_MS 60000u      /* a client silent this long is disconnected */
#define KL_ADMIN_DEFAULT_LINE_MS 5000u       /* a request line must be complete this soon after
						its first byte, or the client is disconnected */
#define KL_ADMIN_MAX_CLIENTS 256
#define KL_ADMIN_MIN_LINE 1024u
#define KL_ADMIN_MAX_LINE (16u << 20)

/* Same values as enum kl_config_log_level (control/kl_config.h), so the daemon can cast. */
enum kl_admin_log_level {
	KL_ADMIN_LOG_ERROR = 0,
	KL_ADMIN_LOG_WARNING,
	KL_ADMIN_LOG_INFO,
	KL_ADMIN_LOG_DEBUG,
};

struct kl_store;
struct kl_rotate;
struct json_t;

/* Diameter feed status for the "status" command (filled by keylined). */
#define KL_ADMIN_MAX_PEERS 16
struct kl_admin_peer {
	char identity[256];
	char state[32]; /* freeDiameter's state name: "STATE_OPEN", "STATE_CLOSED", ... */
};
struct kl_admin_diameter_status {
	int enabled; /* 0: no diameter: section; the rest is unset */
	char identity[256];
	uint16_t port;
	uint32_t vendor_id, app_id;
	uint64_t answered_ok, rejected, failed, busy, commits;
	unsigned queued, peers_refused;
	unsigned npeers;
	struct kl_admin_peer peers[KL_ADMIN_MAX_PEERS];
};

struct kl_admin_params {
	const char *path;		   /* absolute socket path (< 108 bytes) */
	struct kl_table *table;		   /* written by the commands: the caller is its writer */
	struct kl_store *store;		   /* durable store written before the table; NULL: none */
	unsigned e2m_ring;		   /* the table's e2m ring size (store pushes keep as many);
					      0 = the table's default, 4 */
	const struct kl_stats_view *stats; /* counters for stats/version; NULL: stats unavailable */
	const char *server_identity;	   /* ours: a population import loads our pair keys with its
					      peer servers; NULL: no pair keys imported */
	unsigned max_clients;		   /* 0 = KL_ADMIN_DEFAULT_MAX_CLIENTS; <= KL_ADMIN_MAX_CLIENTS */
	uint32_t max_line;		   /* 0 = KL_ADMIN_DEFAULT_MAX_LINE; MIN_LINE..MAX_LINE */
	uint32_t idle_timeout_ms;	   /* 0 = KL_ADMIN_DEFAULT_IDLE_MS */
	uint32_t line_timeout_ms;	   /* 0 = KL_ADMIN_DEFAULT_LINE_MS */
	struct kl_ctl_stats *ctl;	   /* control-plane counters (admin_*); NULL: none */
	/* MSK rotation (control/kl_rotate.h) for "rotate" and "status"; NULL: none configured. */
	struct kl_rotate *rotate;
	/* Fills the Diameter part of "status"; NULL: no Diameter feed. */
	int (*diameter_status)(void *arg, struct kl_admin_diameter_status *st);
	void *diameter_arg;
	/* Commands of other modules (the NAF Key Center's naf-*): asked for a cmd not in the
	 * table; @return 0 with *answer an object whose fields join {"ok":true}, 1 (not its
	 * command: unknown), or < 0 with *answer {"error": "..."} (or NULL). NULL: none. */
	int (*ext_cmd)(void *arg, const char *cmd, const struct json_t *req,
		       struct json_t **answer);
	void *ext_arg;
	/* The NAF Key Center's part of "status" (a new object), asked on each "status"; NULL, or
	 * NULL returned: {"enabled": false}. */
	struct json_t *(*naf_status)(void *arg);
	/* Other services' parts of "status" (the cluster's "cluster"), added to the answer
	 * object, asked with ext_arg on each "status"; NULL: none. */
	void (*ext_status)(void *arg, struct json_t *status);
	/* Log sink; NULL writes "keyline admin: ..." lines to stderr for levels up to INFO.
	 * Messages never contain key bytes. */
	void (*log)(void *arg, enum kl_admin_log_level level, const char *msg);
	void *log_arg;
};

struct kl_admin;

/**
 * Create the admin socket and start listening: create the socket's parent directories if missing
 * (0750), refuse a path where a live server answers ("admin socket PATH: in use") or that is not
 * a socket, remove a stale socket file, bind with mode 0600.
 * @param err gets one clear line on failure.
 * @return the server, or NULL (errno set).
 */
struct kl_admin *kl_admin_create(const struct kl_admin_params *p, char *err, size_t errlen);

/**
 * Accept clients, read requests, execute them and send answers, waiting up to timeout_ms
 * (0: do not wait, -1: until something happens) for the first event. Call it from the table's
 * writer thread only. A signal interrupting the wait makes it return 0.
 * @return the number of requests answered, or -errno (the event loop itself failed).
 */
int kl_admin_poll(struct kl_admin *a, int timeout_ms);

/** An fd that is readable when kl_admin_poll has work (for an outer poll/epoll loop). */
int kl_admin_fd(const struct kl_admin *a);

/** Clients connected now. */
unsigned kl_admin_clients(const struct kl_admin *a);

/** Disconnect every client, close and remove the socket file (if it is still ours), free. */
void kl_admin_destroy(struct kl_admin *a);

#ifdef __cplusplus
}
#endif
#endif

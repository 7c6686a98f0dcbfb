/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline durable key store: LMDB records, key material wrapped with AES-256-KWP (RFC 5649).
 * Formats and guarantees are described in kl_store.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "kl_ctl_stats.h"
#include "kl_kwp.h"
#include "kl_store.h"
#include "kl_store_repl.h"
#include "kl_util.h"

#define REC_FORMAT 1
#define REC_HDR 6
#define BIND_LEN 16
#define META_MAX 128
#define SECRET_MAX (KL_TABLE_E2M_RING_MAX * 32)
#define WRAP_MAX (((SECRET_MAX + BIND_LEN + 7) & ~7) + 8)
#define REC_MAX (REC_HDR + META_MAX + WRAP_MAX)
#define PSK_MAX (KL_TABLE_PSK_CHUNKS * KL_PRF_CHUNK_LEN)
#define GROUP_KEY_LEN 5
#define MSK_META_LEN 20
#define LOAD_BATCH 256
#define SECURE_HEAP_SIZE 65536 /* process-wide, when nobody initialised it before */

static const char bind_label[] = "keyline-store-v1";
static const char kek_check_plain[] = "keyline store KEK check value v1";
/* Database names: the table kinds' names (kl_table_kind_name), but for the IMSIs' e2m_int_keys,
 * whose database has been "e2m" since the first stores. */
#define KL_X(e, n, pl, d) [KL_TK_##e] = KL_TK_##e == KL_TK_E2M ? "e2m" : n,
static const char *const kind_names[KL_TK__COUNT] = { KL_TABLE_KIND_LIST(KL_X) };
#undef KL_X
/* Databases added after the first stores: created in a store that lacks them. */
#define ADDED_KINDS (1u << KL_TK_PAIR)

/* The KEK and its expanded AES schedules (KEK-equivalent): one allocation in protected memory,
 * for the store's lifetime, wiped on close. */
struct st_secret {
	struct kl_kwp_key kwp;
	uint8_t kek[KL_STORE_KEK_LEN];
};

struct kl_store {
	MDB_env *env;
	MDB_dbi dbi[KL_TK__COUNT];
	MDB_dbi meta;
	MDB_dbi naf, nafblock; /* the NAF Key Center's issued keys and blocklists */
	MDB_txn *txn;	  /* an open batch, or NULL */
	int txn_failed;	  /* a write of the batch failed: only abort is left */
	struct kl_ctl_stats *ctl; /* commits counted here; NULL: not counted */
	struct st_secret *sec; /* in the secure heap or a locked page */
	uint8_t *kek;	       /* sec->kek */
	int kek_secure;
	uint8_t kek_kcv[KL_KCV_LEN];
	EVP_MD *sha256;
	EVP_MD_CTX *md; /* the binding's SHA-256, reused (hashes no secret) */
	int lock_fd;
	uint64_t map_size;
	char *path;
	struct st_backup *bk; /* a backup started and not yet collected */
	MDB_dbi rev;	      /* replica stamps (kl_store_repl.h) */
	const struct kl_store_repl_ops *repl; /* the cluster's replicator, or NULL */
	void *repl_arg;
	struct repl_log *log; /* the open write's changes (with a replicator) */
	struct {	      /* views of the replicated databases (kl_store_set_view) */
		kl_store_view_fn fn;
		void *arg;
	} view[KL_TK__COUNT + 2]; /* by db_index: the kinds, then naf, nafblock */
	char msg[320];
};

/* Why a record is bad: positive, so they never mix with -errno. */
enum rec_fail {
	REC_MALFORMED = 1, /* format byte, kind or lengths */
	REC_UNWRAP,	   /* RFC 5649 integrity check failed */
	REC_BIND,	   /* unwrapped, but bound to another key or other metadata */
	REC_CONTENT,	   /* authentic but out of range: cannot happen without the KEK */
	REC_NOCTX,	   /* no OpenSSL context (KL_KWP=openssl): not the record's fault */
};

static const char *rec_fail_text(int why)
{
	switch (why) {
	case REC_UNWRAP:
		return "its wrapped key does not unwrap (damaged or altered)";
	case REC_BIND:
		return "it does not belong to its key (a value moved from another entry, or its "
		       "metadata altered)";
	case REC_CONTENT:
		return "its contents are out of range";
	case REC_NOCTX:
		return "OpenSSL could not set up AES key wrap";
	default:
		return "malformed record (format or lengths)";
	}
}

/* ---- little-endian fields --------------------------------------------------------------------- */

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ---- AES key wrap with padding ------------------------------------------------------------------ */

/* The store's KEK schedule is set up once at open (kl_kwp: AES-NI, or OpenSSL's wrap cipher as
 * the fallback) and serves every record. */
static long st_wrap(struct kl_store *s, const uint8_t *in, size_t inlen, uint8_t *out, size_t cap)
{
	return kl_kwp_wrap(&s->sec->kwp, in, inlen, out, cap);
}

static long st_unwrap(struct kl_store *s, const uint8_t *in, size_t inlen, uint8_t *out,
		      size_t cap)
{
	return kl_kwp_unwrap(&s->sec->kwp, in, inlen, out, cap);
}

long kl_store_kwp(const uint8_t *kek, size_t kek_len, int enc, const uint8_t *in, size_t inlen,
		  uint8_t *out, size_t cap)
{
	struct kl_kwp_key k;
	long rc;

	rc = kl_kwp_init(&k, kek, kek_len);
	if (rc)
		return rc == -EINVAL ? -EINVAL : -ENOMEM;
	rc = enc ? kl_kwp_wrap(&k, in, inlen, out, cap) : kl_kwp_unwrap(&k, in, inlen, out, cap);
	kl_kwp_free(&k);
	return rc;
}

long kl_store_kek_wrap(struct kl_store *s, int enc, const uint8_t *in, size_t inlen, uint8_t *out,
		       size_t cap)
{
	if (!s || !in || !out)
		return -EINVAL;
	return enc ? st_wrap(s, in, inlen, out, cap) : st_unwrap(s, in, inlen, out, cap);
}

/* ---- records ----------------------------------------------------------------------------------- */

static int bind_tag(struct kl_store *s, unsigned kind, const uint8_t *key, size_t klen,
		    const uint8_t *hdr, size_t hlen, uint8_t tag[BIND_LEN])
{
	uint8_t buf[sizeof(bind_label) + 3 + KL_TABLE_ID_MAX + REC_HDR + META_MAX];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	size_t n = 0;

	if (klen > KL_TABLE_ID_MAX || hlen > REC_HDR + META_MAX)
		return -EINVAL;
	memcpy(buf, bind_label, sizeof(bind_label) - 1);
	n = sizeof(bind_label) - 1;
	buf[n++] = (uint8_t)kind;
	put_le16(buf + n, (uint16_t)klen);
	n += 2;
	memcpy(buf + n, key, klen);
	n += klen;
	memcpy(buf + n, hdr, hlen);
	n += hlen;
	/* One context for every record: EVP_Digest would allocate and free one per call. */
	if (EVP_DigestInit_ex2(s->md, s->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(s->md, buf, n) != 1 ||
	    EVP_DigestFinal_ex(s->md, md, &mdlen) != 1 || mdlen < BIND_LEN) {
		ERR_clear_error();
		return -EIO;
	}
	memcpy(tag, md, BIND_LEN);
	return 0;
}

/* Build a record into rec (REC_MAX bytes). @return its length or -errno. */
static long rec_build(struct kl_store *s, unsigned kind, const uint8_t *key, size_t klen,
		      const uint8_t *meta, size_t mlen, const uint8_t *secret, size_t slen,
		      uint8_t *rec)
{
	uint8_t pt[SECRET_MAX + BIND_LEN];
	size_t plen = slen + BIND_LEN, wlen = ((plen + 7) & ~(size_t)7) + 8;
	long n;

	if (mlen > META_MAX || !slen || slen > SECRET_MAX)
		return -EINVAL;
	rec[0] = REC_FORMAT;
	rec[1] = (uint8_t)kind;
	put_le16(rec + 2, (uint16_t)mlen);
	put_le16(rec + 4, (uint16_t)wlen);
	if (mlen)
		memcpy(rec + REC_HDR, meta, mlen);
	memcpy(pt, secret, slen);
	n = bind_tag(s, kind, key, klen, rec, REC_HDR + mlen, pt + slen);
	if (!n)
		n = st_wrap(s, pt, plen, rec + REC_HDR + mlen, WRAP_MAX);
	kl_memzero(pt, sizeof(pt));
	if (n < 0)
		return n;
	if ((size_t)n != wlen)
		return -EIO;
	return (long)(REC_HDR + mlen + wlen);
}

struct rec_view {
	const uint8_t *meta;
	size_t mlen;
	uint8_t secret[SECRET_MAX + BIND_LEN + 8]; /* wipe after use */
	size_t slen;
};

/* Check and unwrap one record. @return 0 or an enum rec_fail. */
static int rec_open(struct kl_store *s, unsigned kind, const MDB_val *k, const MDB_val *v,
		    struct rec_view *rv)
{
	const uint8_t *r = v->mv_data;
	uint8_t tag[BIND_LEN];
	size_t mlen, wlen;
	long n;

	rv->slen = 0;
	if (k->mv_size < 1 || k->mv_size > KL_TABLE_ID_MAX || v->mv_size < REC_HDR)
		return REC_MALFORMED;
	mlen = get_le16(r + 2);
	wlen = get_le16(r + 4);
	if (r[0] != REC_FORMAT || r[1] != kind || mlen > META_MAX || wlen < 24 || wlen % 8 ||
	    wlen > WRAP_MAX || REC_HDR + mlen + wlen != v->mv_size)
		return REC_MALFORMED;
	rv->meta = r + REC_HDR;
	rv->mlen = mlen;
	n = st_unwrap(s, r + REC_HDR + mlen, wlen, rv->secret, sizeof(rv->secret));
	if (n == -ENOMEM)
		return REC_NOCTX;
	if (n <= BIND_LEN)
		return n < 0 ? REC_UNWRAP : REC_MALFORMED;
	if (bind_tag(s, kind, k->mv_data, k->mv_size, r, REC_HDR + mlen, tag))
		return REC_UNWRAP;
	if (CRYPTO_memcmp(tag, rv->secret + n - BIND_LEN, BIND_LEN))
		return REC_BIND;
	rv->slen = (size_t)n - BIND_LEN;
	return 0;
}

static void rv_wipe(struct rec_view *rv)
{
	kl_memzero(rv->secret, sizeof(rv->secret));
	rv->slen = 0;
}

/* ---- errors ------------------------------------------------------------------------------------- */

static int mdb_to_errno(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case MDB_DBS_FULL:
		return -ENOSPC;
	case MDB_INVALID:
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_BAD_VALSIZE:
		return -EBADMSG;
	case MDB_VERSION_MISMATCH:
		return -EPROTO;
	case MDB_READERS_FULL:
		return -EAGAIN;
	default:
		return rc > 0 ? -rc : -EIO;
	}
}

/* Record the message of a failed LMDB call. @return -errno. */
static int st_fail(struct kl_store *s, int mrc, const char *what, unsigned kind)
{
	const char *kn = kind < KL_TK__COUNT ? kind_names[kind] : "";
	const char *sp = kind < KL_TK__COUNT ? " " : "";

	if (mrc == MDB_MAP_FULL)
		snprintf(s->msg, sizeof(s->msg),
			 "store %s: %s%s%s: the store is full (map_size %" PRIu64 " bytes)", s->path,
			 what, sp, kn, s->map_size);
	else
		snprintf(s->msg, sizeof(s->msg), "store %s: %s%s%s: %s", s->path, what, sp, kn,
			 mdb_strerror(mrc));
	return mdb_to_errno(mrc);
}

const char *kl_store_last_error(const struct kl_store *s)
{
	return s ? s->msg : "no store";
}

const char *kl_store_kind_name(enum kl_table_kind kind)
{
	return (unsigned)kind < KL_TK__COUNT ? kind_names[kind] : "?";
}

/* ---- KEK file and memory ---------------------------------------------------------------------- */

static struct st_secret *kek_alloc(int *secure)
{
	struct st_secret *p;

	_Static_assert(sizeof(struct st_secret) <= 4096, "st_secret must fit a locked page");
	if (!CRYPTO_secure_malloc_initialized())
		CRYPTO_secure_malloc_init(SECURE_HEAP_SIZE, 16);
	if (CRYPTO_secure_malloc_initialized()) {
		/* the secure heap's blocks are aligned to their (power of two) size */
		p = OPENSSL_secure_zalloc(sizeof(*p));
		if (p && CRYPTO_secure_allocated(p)) {
			*secure = 1;
			return p;
		}
		OPENSSL_secure_clear_free(p, sizeof(*p));
	}
	/* No secure heap: a page of our own, locked and kept out of core dumps. */
	p = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)mlock(p, (size_t)sysconf(_SC_PAGESIZE));
	(void)madvise(p, (size_t)sysconf(_SC_PAGESIZE), MADV_DONTDUMP);
	*secure = 0;
	return p;
}

static void kek_free(struct st_secret *p, int secure)
{
	if (!p)
		return;
	kl_kwp_free(&p->kwp);
	if (secure) {
		OPENSSL_secure_clear_free(p, sizeof(*p));
		return;
	}
	kl_memzero(p, sizeof(*p));
	munlock(p, (size_t)sysconf(_SC_PAGESIZE));
	munmap(p, (size_t)sysconf(_SC_PAGESIZE));
}

/* Read and check the KEK file into kek. @return 0 or -errno with err set. */
static int kek_read(const char *file, uint8_t *kek, char *err, size_t errlen)
{
	uint8_t buf[160];
	size_t n = 0;
	struct stat st;
	int fd, rc = 0;

	/* O_NONBLOCK: a FIFO in its place must be refused, not waited on. */
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			kl_errf(err, errlen, "KEK file %s does not exist", file);
		else
			kl_errf(err, errlen, "KEK file %s: cannot open: %s", file, strerror(-rc));
		return rc;
	}
	/* Checked on the open descriptor: what we read is what we checked. */
	if (fstat(fd, &st)) {
		rc = -errno;
		kl_errf(err, errlen, "KEK file %s: %s", file, strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		kl_errf(err, errlen, "KEK file %s is not a regular file", file);
		rc = -EINVAL;
		goto out;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		kl_errf(err, errlen,
			"KEK file %s is owned by uid %u: it must belong to root or to uid %u "
			"(this process)",
			file, (unsigned)st.st_uid, (unsigned)geteuid());
		rc = -EPERM;
		goto out;
	}
	if ((st.st_mode & 07777) != 0600) {
		kl_errf(err, errlen,
			"KEK file %s has mode %04o: it must be exactly 0600 (owner read/write, no "
			"group or other access)",
			file, (unsigned)(st.st_mode & 07777));
		rc = -EPERM;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			kl_errf(err, errlen, "KEK file %s: read: %s", file, strerror(-rc));
			goto out;
		}
		if (r == 0 || (n += (size_t)r) == sizeof(buf))
			break;
	}
	if (n == KL_STORE_KEK_LEN) {
		memcpy(kek, buf, KL_STORE_KEK_LEN);
	} else if (n == 2 * KL_STORE_KEK_LEN ||
		   (n == 2 * KL_STORE_KEK_LEN + 1 && buf[n - 1] == '\n')) {
		for (unsigned i = 0; i < KL_STORE_KEK_LEN; i++) {
			int hi = kl_hexval(buf[2 * i]), lo = kl_hexval(buf[2 * i + 1]);

			if (hi < 0 || lo < 0) {
				kl_errf(err, errlen,
					"KEK file %s: %zu bytes but not 64 hex digits: it must hold 32 "
					"raw bytes or 64 hex digits",
					file, n);
				rc = -EINVAL;
				goto out;
			}
			kek[i] = (uint8_t)(hi << 4 | lo);
		}
	} else {
		kl_errf(err, errlen,
			"KEK file %s holds %s%zu bytes: it must hold 32 raw bytes or 64 hex digits",
			file, n == sizeof(buf) ? "at least " : "", n);
		rc = -EINVAL;
		goto out;
	}
	{
		uint8_t acc = 0;

		for (unsigned i = 0; i < KL_STORE_KEK_LEN; i++)
			acc |= kek[i];
		if (!acc) {
			kl_errf(err, errlen, "KEK file %s: the KEK is all zeros", file);
			rc = -EINVAL;
		}
	}
out:
	kl_memzero(buf, sizeof(buf));
	if (rc)
		kl_memzero(kek, KL_STORE_KEK_LEN);
	close(fd);
	return rc;
}

/* ---- verification walk (a child process) ------------------------------------------------------ */

/* LMDB 0.9 trusts its pages: a damaged one can make it assert (abort) or read outside the map
 * (SIGSEGV, SIGBUS). The walk runs in a child process, where either only ends the child. */
#define VFY_MAX_DBS 64	 /* the main database's entries the walk opens (ours: 6) */
#define VFY_MSG 256
#define VFY_NUM_METAS 2	 /* LMDB's meta pages 0 and 1 */
enum { VFY_OK = 0, VFY_DAMAGED = 1, VFY_ASSERT = 3, VFY_CANNOT = 4 };

static int vfy_fd = -1; /* the child's report pipe */

static void vfy_report(const char *msg)
{
	size_t n = strnlen(msg, VFY_MSG - 1);

	while (n) {
		ssize_t w = write(vfy_fd, msg, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		msg += w;
		n -= (size_t)w;
	}
}

/* LMDB calls this, then abort(): the child reports and ends first. */
static void vfy_assert(MDB_env *env, const char *msg)
{
	char buf[VFY_MSG];

	(void)env;
	snprintf(buf, sizeof(buf), "LMDB assertion failed reading it: %s", msg);
	vfy_report(buf);
	_exit(VFY_ASSERT);
}

/* For messages: anything but printable ASCII becomes '?'. */
static void vfy_printable(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}

struct vfy {
	uint64_t file_bytes; /* (last page + 1) x page size */
	size_t max_key;	     /* LMDB's */
	uint64_t last_pgno;
	uint64_t pages; /* pages the databases' records count, and the free list's pages */
	char msg[VFY_MSG];
};

static int vfy_fail(struct vfy *w, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int vfy_fail(struct vfy *w, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
	va_end(ap);
	return code;
}

/* Read every byte of v: one that lies past the end of the file is a SIGBUS here, in the child.
 * (LMDB's public API does not tell where its map is, so the bytes are read rather than their
 * addresses checked.) */
static uint8_t vfy_touch(const MDB_val *v)
{
	const uint8_t *p = v->mv_data;
	uint8_t x = 0;

	for (size_t i = 0; i < v->mv_size; i++)
		x ^= p[i];
	return x;
}

/* Every record of one database: inside the file, read once, as many as its record says. */
static int vfy_db(struct vfy *w, MDB_txn *txn, MDB_dbi dbi, const char *name)
{
	volatile uint8_t sink;
	uint8_t x = 0;
	MDB_cursor *cur;
	MDB_stat ms;
	MDB_val k, v;
	uint64_t n = 0;
	int m;

	m = mdb_stat(txn, dbi, &ms);
	if (!m)
		m = mdb_cursor_open(txn, dbi, &cur);
	if (m)
		return vfy_fail(w, VFY_DAMAGED, "database \"%s\": %s", name, mdb_strerror(m));
	w->pages += (uint64_t)ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
	for (m = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !m;
	     m = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		n++;
		if (k.mv_size > w->max_key || v.mv_size > w->file_bytes) {
			mdb_cursor_close(cur);
			return vfy_fail(w, VFY_DAMAGED, "database \"%s\": record #%" PRIu64
					" is larger than possible", name, n);
		}
		x ^= vfy_touch(&k) ^ vfy_touch(&v);
		if (dbi == 0) { /* the free list: counted page numbers, descending, in the file */
			const size_t *id = v.mv_data;

			if (v.mv_size < sizeof(size_t) || v.mv_size % sizeof(size_t) ||
			    id[0] != v.mv_size / sizeof(size_t) - 1) {
				mdb_cursor_close(cur);
				return vfy_fail(w, VFY_DAMAGED, "free list: record #%" PRIu64
						" is malformed", n);
			}
			for (size_t i = 1; i <= id[0]; i++)
				if (id[i] < VFY_NUM_METAS || id[i] > w->last_pgno ||
				    (i > 1 && id[i] >= id[i - 1])) {
					mdb_cursor_close(cur);
					return vfy_fail(w, VFY_DAMAGED,
							"free list: record #%" PRIu64
							" names page %zu (the file has %" PRIu64 ")",
							n, id[i], w->last_pgno + 1);
				}
			w->pages += id[0]; /* free pages count like pages in use */
		}
	}
	mdb_cursor_close(cur);
	sink = x;
	(void)sink;
	if (m != MDB_NOTFOUND && !n)
		return vfy_fail(w, VFY_DAMAGED, "database \"%s\": %s", name, mdb_strerror(m));
	if (m != MDB_NOTFOUND)
		return vfy_fail(w, VFY_DAMAGED, "database \"%s\": after record #%" PRIu64 ": %s",
				name, n, mdb_strerror(m));
	if (n != ms.ms_entries)
		return vfy_fail(w, VFY_DAMAGED, "database \"%s\": %" PRIu64
				" records where it counts %zu", name, n, ms.ms_entries);
	return VFY_OK;
}

/* The child's walk of the store at path. @return a VFY_ code, w->msg says why. */
static int vfy_walk(const char *path, struct vfy *w)
{
	char name[KL_TABLE_ID_MAX + 1];
	MDB_envinfo info;
	MDB_cursor *cur = NULL;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi main_dbi, dbi;
	MDB_stat ms;
	MDB_val k, v;
	unsigned ndb = 0;
	int m, rc;

	m = mdb_env_create(&env);
	if (m)
		return vfy_fail(w, VFY_CANNOT, "%s", mdb_strerror(m));
	(void)mdb_env_set_assert(env, vfy_assert);
	m = mdb_env_set_maxdbs(env, VFY_MAX_DBS);
	/* read-only, no lock file: the parent holds keyline.lock, nobody writes */
	if (!m)
		m = mdb_env_open(env, path, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0600);
	if (!m)
		m = mdb_env_info(env, &info);
	if (!m)
		m = mdb_env_stat(env, &ms);
	if (!m)
		m = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (m) {
		rc = vfy_fail(w, m == ENOMEM ? VFY_CANNOT : VFY_DAMAGED, "%s", mdb_strerror(m));
		mdb_env_close(env);
		return rc;
	}
	w->last_pgno = info.me_last_pgno;
	w->file_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	w->max_key = (size_t)mdb_env_get_maxkeysize(env);
	rc = vfy_db(w, txn, 0, "free list");
	if (!rc) {
		m = mdb_dbi_open(txn, NULL, 0, &main_dbi);
		rc = m ? vfy_fail(w, VFY_DAMAGED, "main database: %s", mdb_strerror(m))
		       : vfy_db(w, txn, main_dbi, "main");
	}
	/* each entry of the main database names a database: walk each (the main database walked
	 * fine above, so its cursor does too) */
	if (!rc && (m = mdb_cursor_open(txn, main_dbi, &cur)) != 0) {
		cur = NULL;
		rc = vfy_fail(w, VFY_DAMAGED, "main database: %s", mdb_strerror(m));
	}
	for (m = rc ? MDB_NOTFOUND : mdb_cursor_get(cur, &k, &v, MDB_FIRST); !m;
	     m = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (++ndb > VFY_MAX_DBS - 2 || !k.mv_size || k.mv_size >= sizeof(name) ||
		    memchr(k.mv_data, 0, k.mv_size)) {
			rc = vfy_fail(w, VFY_DAMAGED, "main database: entry #%u is not a database name",
				      ndb);
			break;
		}
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		m = mdb_dbi_open(txn, name, 0, &dbi);
		vfy_printable(name);
		rc = m ? vfy_fail(w, VFY_DAMAGED, "database %s: %s", name, mdb_strerror(m))
		       : vfy_db(w, txn, dbi, name);
		if (rc)
			break;
	}
	if (cur)
		mdb_cursor_close(cur);
	if (!rc && w->pages + VFY_NUM_METAS != w->last_pgno + 1)
		rc = vfy_fail(w, VFY_DAMAGED,
			      "%" PRIu64 " pages in use or free where the file has %" PRIu64,
			      w->pages + VFY_NUM_METAS, w->last_pgno + 1);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

/* Walk the store in a child process. @return 0, -EBADMSG (damaged) or -errno, err set. */
static int st_verify(const char *path, char *err, size_t errlen)
{
	char msg[VFY_MSG] = "";
	size_t n = 0;
	int pfd[2], status = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC)) {
		int e = errno;

		kl_errf(err, errlen, "store %s: cannot check it: pipe: %s", path, strerror(e));
		return -e;
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(pfd[0]);
		close(pfd[1]);
		kl_errf(err, errlen, "store %s: cannot check it: fork: %s", path, strerror(e));
		return -e;
	}
	if (pid == 0) {
		struct vfy w;
		int rc;

		/* a crash must end the child by its signal, whoever handled it in the parent */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		signal(SIGABRT, SIG_DFL);
		close(pfd[0]);
		vfy_fd = pfd[1];
		memset(&w, 0, sizeof(w));
		rc = vfy_walk(path, &w);
		vfy_report(w.msg);
		_exit(rc);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t r = read(pfd[0], msg + n, sizeof(msg) - 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (n += (size_t)r) == sizeof(msg) - 1)
			break;
	}
	msg[n] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	vfy_printable(msg);
	if (WIFSIGNALED(status)) {
		kl_errf(err, errlen, "store %s is damaged (reading it killed the check process: %s)",
			path, strsignal(WTERMSIG(status)));
		return -EBADMSG;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) == VFY_CANNOT) {
		kl_errf(err, errlen, "store %s: cannot check it: %s", path,
			msg[0] ? msg : "the check process failed");
		return -EIO;
	}
	if (WEXITSTATUS(status) != VFY_OK) {
		kl_errf(err, errlen, "store %s is damaged (%s)", path,
			msg[0] ? msg : "the check process failed");
		return -EBADMSG;
	}
	return 0;
}

/* Damage found after the open: an LMDB assertion would abort() the process. */
static void st_assert(MDB_env *env, const char *msg)
{
	const struct kl_store *s = mdb_env_get_userctx(env);

	fprintf(stderr, "keylined: error: store %s is damaged (LMDB assertion failed: %s): %s\n",
		s && s->path ? s->path : "?", msg, KL_STORE_RESTORE_HINT);
	_exit(2);
}

/* ---- open / close ------------------------------------------------------------------------------ */

static void backup_join(struct kl_store *s);
static void log_free(struct repl_log *l);

static void st_free(struct kl_store *s)
{
	if (!s)
		return;
	backup_join(s); /* the backup thread reads the environment */
	if (s->txn)
		mdb_txn_abort(s->txn);
	if (s->env)
		mdb_env_close(s->env);
	EVP_MD_CTX_free(s->md);
	EVP_MD_free(s->sha256);
	kek_free(s->sec, s->kek_secure);
	log_free(s->log);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->path);
	kl_memzero(s, sizeof(*s));
	free(s);
}

void kl_store_close(struct kl_store *s)
{
	st_free(s);
}

/* The NAF Key Center's databases (added after the first stores: a store without them gets them,
 * empty). @return an LMDB code (MDB_NOTFOUND: one is missing and flags has no MDB_CREATE). */
static int naf_dbs_open(struct kl_store *s, MDB_txn *txn, unsigned flags)
{
	int rc = mdb_dbi_open(txn, "naf", flags, &s->naf);

	return rc ? rc : mdb_dbi_open(txn, "nafblock", flags, &s->nafblock);
}

/* The replica stamps' database (kl_store_repl.h; added after the first stores, as above). */
static int rev_db_open(struct kl_store *s, MDB_txn *txn, unsigned flags)
{
	return mdb_dbi_open(txn, "rev", flags, &s->rev);
}

/* A new store: every database and the meta records in one transaction. */
static int st_init(struct kl_store *s, char *err, size_t errlen)
{
	uint8_t rec[REC_MAX], v4[4], v8[8];
	MDB_txn *txn;
	MDB_val k, v;
	long n;
	int rc;

	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc) {
		kl_errf(err, errlen, "store %s: cannot start a transaction: %s", s->path,
			mdb_strerror(rc));
		return mdb_to_errno(rc);
	}
	rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta);
	for (unsigned i = 0; !rc && i < KL_TK__COUNT; i++)
		rc = mdb_dbi_open(txn, kind_names[i], MDB_CREATE, &s->dbi[i]);
	if (!rc)
		rc = naf_dbs_open(s, txn, MDB_CREATE);
	if (!rc)
		rc = rev_db_open(s, txn, MDB_CREATE);
	if (rc)
		goto fail;
	put_le32(v4, KL_STORE_SCHEMA);
	k = (MDB_val){6, "schema"};
	v = (MDB_val){4, v4};
	rc = mdb_put(txn, s->meta, &k, &v, 0);
	if (rc)
		goto fail;
	put_le64(v8, (uint64_t)time(NULL));
	k = (MDB_val){7, "created"};
	v = (MDB_val){8, v8};
	rc = mdb_put(txn, s->meta, &k, &v, 0);
	if (rc)
		goto fail;
	n = st_wrap(s, (const uint8_t *)kek_check_plain, sizeof(kek_check_plain) - 1, rec,
		    sizeof(rec));
	if (n < 0) {
		mdb_txn_abort(txn);
		kl_errf(err, errlen, "store %s: cannot wrap the KEK check value", s->path);
		return -EIO;
	}
	k = (MDB_val){9, "kek_check"};
	v = (MDB_val){(size_t)n, rec};
	rc = mdb_put(txn, s->meta, &k, &v, 0);
	if (rc)
		goto fail;
	rc = mdb_txn_commit(txn);
	if (rc) {
		kl_errf(err, errlen, "store %s: cannot create: %s", s->path, mdb_strerror(rc));
		return mdb_to_errno(rc);
	}
	return 0;
fail:
	mdb_txn_abort(txn);
	kl_errf(err, errlen, "store %s: cannot create: %s", s->path, mdb_strerror(rc));
	return mdb_to_errno(rc);
}

/* An existing store: schema, databases, KEK. @return 0, 1 (an LMDB file with nothing in it: a
 * creation that never committed) or -errno. */
/* The result rc of opening a database added after the first schema: MDB_NOTFOUND, a store from
 * before it (*missing = 1: st_check adds it); another error, a damaged store (the read
 * transaction aborted). @return 0, or -EBADMSG. */
static int st_opened(struct kl_store *s, MDB_txn *txn, int rc, int *missing, const char *what,
		     char *err, size_t errlen)
{
	if (rc == MDB_NOTFOUND)
		*missing = 1;
	if (rc == MDB_NOTFOUND || rc == 0)
		return 0;
	mdb_txn_abort(txn);
	kl_errf(err, errlen, "store %s is damaged: %s: %s", s->path, what, mdb_strerror(rc));
	return -EBADMSG;
}

static int st_check(struct kl_store *s, const char *kek_file, char *err, size_t errlen)
{
	unsigned missing = 0;
	int missing_naf = 0, missing_rev = 0;
	uint8_t pt[128];
	MDB_txn *txn;
	MDB_dbi main_dbi;
	MDB_stat ms;
	MDB_val k, v;
	uint32_t schema;
	long n;
	int rc;

	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		kl_errf(err, errlen, "store %s: cannot read: %s", s->path, mdb_strerror(rc));
		return mdb_to_errno(rc);
	}
	rc = mdb_dbi_open(txn, "meta", 0, &s->meta);
	if (rc == MDB_NOTFOUND && !mdb_dbi_open(txn, NULL, 0, &main_dbi) &&
	    !mdb_stat(txn, main_dbi, &ms) && ms.ms_entries == 0) {
		mdb_txn_abort(txn);
		return 1;
	}
	if (rc) {
		mdb_txn_abort(txn);
		kl_errf(err, errlen, "store %s is not a keyline store (no meta database: %s)",
			s->path, mdb_strerror(rc));
		return rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE ? -EBADMSG : mdb_to_errno(rc);
	}
	k = (MDB_val){6, "schema"};
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc || v.mv_size != 4) {
		mdb_txn_abort(txn);
		kl_errf(err, errlen, "store %s is not a keyline store (no schema version record)",
			s->path);
		return rc && rc != MDB_NOTFOUND ? mdb_to_errno(rc) : -EBADMSG;
	}
	schema = get_le32(v.mv_data);
	if (schema != KL_STORE_SCHEMA) {
		mdb_txn_abort(txn);
		kl_errf(err, errlen,
			"store %s has schema version %u; this keylined reads schema version %u: "
			"incompatible store",
			s->path, schema, KL_STORE_SCHEMA);
		return -EPROTO;
	}
	for (unsigned i = 0; i < KL_TK__COUNT; i++) {
		rc = mdb_dbi_open(txn, kind_names[i], 0, &s->dbi[i]);
		if (rc == MDB_NOTFOUND && (ADDED_KINDS & (1u << i))) {
			missing |= 1u << i;
			continue;
		}
		if (rc) {
			mdb_txn_abort(txn);
			kl_errf(err, errlen, "store %s is damaged: database \"%s\" is missing (%s)",
				s->path, kind_names[i], mdb_strerror(rc));
			return -EBADMSG;
		}
	}
	if (st_opened(s, txn, naf_dbs_open(s, txn, 0), &missing_naf, "the NAF key databases", err,
		      errlen) < 0 ||
	    st_opened(s, txn, rev_db_open(s, txn, 0), &missing_rev, "the replica stamps", err,
		      errlen) < 0)
		return -EBADMSG;
	k = (MDB_val){9, "kek_check"};
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc) {
		mdb_txn_abort(txn);
		kl_errf(err, errlen, "store %s is damaged: no KEK check record", s->path);
		return -EBADMSG;
	}
	n = st_unwrap(s, v.mv_data, v.mv_size, pt, sizeof(pt));
	if (n == -ENOMEM) {
		mdb_txn_abort(txn);
		kl_errf(err, errlen, "store %s: cannot set up AES key wrap (OpenSSL)", s->path);
		return -ENOMEM;
	}
	if (n < 0) {
		mdb_txn_abort(txn);
		kl_errf(err, errlen,
			"wrong KEK: the key in %s does not open store %s (its KEK check value "
			"does not unwrap)",
			kek_file, s->path);
		return -EKEYREJECTED;
	}
	if ((size_t)n != sizeof(kek_check_plain) - 1 || memcmp(pt, kek_check_plain, (size_t)n)) {
		kl_memzero(pt, sizeof(pt));
		mdb_txn_abort(txn);
		kl_errf(err, errlen, "store %s is damaged: its KEK check value is not the expected one",
			s->path);
		return -EBADMSG;
	}
	kl_memzero(pt, sizeof(pt));
	/* Committing the read transaction keeps the database handles for the environment. */
	rc = mdb_txn_commit(txn);
	if (rc) {
		kl_errf(err, errlen, "store %s: %s", s->path, mdb_strerror(rc));
		return mdb_to_errno(rc);
	}
	if (!missing && !missing_naf && !missing_rev)
		return 0;
	/* A store from before some kind existed (pair keys, NAF keys): its database is added,
	 * empty. */
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (!rc) {
		for (unsigned i = 0; !rc && i < KL_TK__COUNT; i++)
			if (missing & (1u << i))
				rc = mdb_dbi_open(txn, kind_names[i], MDB_CREATE, &s->dbi[i]);
		if (!rc && missing_naf)
			rc = naf_dbs_open(s, txn, MDB_CREATE);
		if (!rc && missing_rev)
			rc = rev_db_open(s, txn, MDB_CREATE);
		if (rc)
			mdb_txn_abort(txn); /* the write lock is released before the store closes */
		else
			rc = mdb_txn_commit(txn);
	}
	if (rc) {
		kl_errf(err, errlen, "store %s: cannot add a database for a new kind: %s", s->path,
			mdb_strerror(rc));
		return mdb_to_errno(rc);
	}
	return 0;
}

struct kl_store *kl_store_open(const struct kl_store_params *p, char *err, size_t errlen)
{
	char file[PATH_MAX];
	struct kl_store *s;
	struct stat st;
	int rc, fresh = 0;

	kl_errf(err, errlen, "%s", "");
	if (!p || !p->path || !p->path[0] || !p->kek_file || !p->kek_file[0]) {
		kl_errf(err, errlen, "store: path and kek_file must be set");
		errno = EINVAL;
		return NULL;
	}
	if (strlen(p->path) > PATH_MAX - 32) {
		kl_errf(err, errlen, "store: path too long");
		errno = ENAMETOOLONG;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		kl_errf(err, errlen, "store: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	s->lock_fd = -1;
	s->map_size = p->map_size ? p->map_size : KL_STORE_MAP_SIZE_DEFAULT;
	s->ctl = p->ctl;
	s->path = strdup(p->path);
	s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	s->md = EVP_MD_CTX_new();
	s->sec = kek_alloc(&s->kek_secure);
	s->kek = s->sec ? s->sec->kek : NULL;
	if (!s->path || !s->sha256 || !s->md || !s->kek) {
		ERR_clear_error();
		kl_errf(err, errlen, "store: out of memory (or no SHA-256 in OpenSSL)");
		rc = -ENOMEM;
		goto fail;
	}
	rc = kek_read(p->kek_file, s->kek, err, errlen);
	if (rc)
		goto fail;
	if (kl_kcv(s->kek, KL_STORE_KEK_LEN, s->kek_kcv))
		memset(s->kek_kcv, 0, sizeof(s->kek_kcv));
	rc = kl_kwp_init(&s->sec->kwp, s->kek, KL_STORE_KEK_LEN);
	if (rc) {
		kl_errf(err, errlen, "store: cannot set up AES key wrap (%s)", strerror(-rc));
		goto fail;
	}

	if (stat(p->path, &st)) {
		rc = -errno;
		if (rc != -ENOENT) {
			kl_errf(err, errlen, "store %s: %s", p->path, strerror(-rc));
			goto fail;
		}
		if (!p->create_if_missing) {
			kl_errf(err, errlen, "store %s does not exist (and create_if_missing is off)",
				p->path);
			goto fail;
		}
		if (mkdir(p->path, 0700)) {
			rc = -errno;
			kl_errf(err, errlen, "store %s: cannot create the directory: %s", p->path,
				strerror(-rc));
			goto fail;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		kl_errf(err, errlen, "store %s is not a directory", p->path);
		rc = -ENOTDIR;
		goto fail;
	}

	snprintf(file, sizeof(file), "%s/keyline.lock", p->path);
	s->lock_fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		rc = -errno;
		kl_errf(err, errlen, "store %s: cannot open %s: %s", p->path, file, strerror(-rc));
		goto fail;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB)) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		kl_errf(err, errlen, "store %s is in use by another process (or already open)",
			p->path);
		goto fail;
	}

	snprintf(file, sizeof(file), "%s/data.mdb", p->path);
	if (stat(file, &st)) {
		rc = -errno;
		if (rc != -ENOENT) {
			kl_errf(err, errlen, "store %s: %s: %s", p->path, file, strerror(-rc));
			goto fail;
		}
		if (!p->create_if_missing) {
			kl_errf(err, errlen,
				"store %s has no data file (data.mdb) and create_if_missing is off",
				p->path);
			goto fail;
		}
		fresh = 1;
	} else if (!S_ISREG(st.st_mode)) {
		kl_errf(err, errlen, "store %s: data.mdb is not a regular file", p->path);
		rc = -EBADMSG;
		goto fail;
	} else if (st.st_size == 0) {
		/* LMDB would silently start a new environment in an empty file. */
		kl_errf(err, errlen, "store %s is damaged: data.mdb is empty (truncated)", p->path);
		rc = -EBADMSG;
		goto fail;
	}

	rc = mdb_env_create(&s->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(s->env, KL_TK__COUNT + 6);
	if (!rc)
		rc = mdb_env_set_mapsize(s->env, (size_t)s->map_size);
	if (!rc && p->verify) {
		(void)mdb_env_set_userctx(s->env, s);
		(void)mdb_env_set_assert(s->env, st_assert);
	}
	if (rc) {
		kl_errf(err, errlen, "store %s: %s", p->path, mdb_strerror(rc));
		rc = mdb_to_errno(rc);
		goto fail;
	}
	/* Durable commits: no MDB_NOSYNC, MDB_NOMETASYNC or MDB_WRITEMAP. */
	rc = mdb_env_open(s->env, p->path, MDB_NOTLS, 0600);
	if (rc) {
		if (rc == MDB_INVALID)
			kl_errf(err, errlen,
				"store %s is not a keyline store: data.mdb is not an LMDB file "
				"(overwritten or damaged)",
				p->path);
		else if (rc == MDB_VERSION_MISMATCH)
			kl_errf(err, errlen,
				"store %s: data.mdb was written by an incompatible LMDB version",
				p->path);
		else
			kl_errf(err, errlen, "store %s: cannot open: %s", p->path, mdb_strerror(rc));
		rc = mdb_to_errno(rc);
		goto fail;
	}
	if (!fresh) {
		MDB_envinfo info;
		MDB_stat ms;
		int verified = 0;

		/* Reading a page past the end of a truncated file would be SIGBUS. */
		if (mdb_env_info(s->env, &info) || mdb_env_stat(s->env, &ms) || stat(file, &st)) {
			kl_errf(err, errlen, "store %s: cannot read its header", p->path);
			rc = -EIO;
			goto fail;
		}
		/* A file shorter than the last page is truncated, or ends in free pages that were
		 * never written: LMDB counts the pages a transaction allocated and freed again (a
		 * batch of many deletes) without writing them. The walk tells the two apart: it
		 * reads every page in use and accounts for every page up to the last. */
		if ((uint64_t)st.st_size < ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize) {
			char why[256];

			if (st_verify(p->path, why, sizeof(why)) != 0) {
				kl_errf(err, errlen,
					"store %s is damaged: data.mdb is truncated (%" PRIu64
					" bytes, its pages need %" PRIu64 ")",
					p->path, (uint64_t)st.st_size,
					((uint64_t)info.me_last_pgno + 1) * ms.ms_psize);
				rc = -EBADMSG;
				goto fail;
			}
			verified = 1;
		}
		/* before this process reads a page: LMDB trusts what it reads */
		if (p->verify && !verified && (rc = st_verify(p->path, err, errlen)) != 0)
			goto fail;
		(void)mdb_reader_check(s->env, NULL); /* readers of a killed process */
		rc = st_check(s, p->kek_file, err, errlen);
		if (rc < 0)
			goto fail;
		fresh = rc == 1 && p->create_if_missing;
		if (rc == 1 && !fresh) {
			kl_errf(err, errlen,
				"store %s is empty (a creation that never completed) and "
				"create_if_missing is off",
				p->path);
			rc = -ENOENT;
			goto fail;
		}
	}
	if (fresh) {
		rc = st_init(s, err, errlen);
		if (rc)
			goto fail;
	}
	s->msg[0] = '\0';
	return s;
fail:
	st_free(s);
	errno = rc < 0 ? -rc : ENOENT;
	return NULL;
}

/* ---- the cluster's change log (kl_store_repl.h) ------------------------------------------------ */

/* One change of the open write, its bytes in the log's buffer (offsets: the buffer grows). A key
 * written twice in one batch is one change: the last value, the first one's compare. */
struct repl_ent {
	const char *db; /* a database name of this file (kind_names, "naf", "nafblock") */
	size_t koff, klen, voff, vlen, ooff, olen;
	uint8_t del, cmp, has_old;
};

struct repl_log {
	struct repl_ent *e;
	size_t n, cap;
	uint8_t *buf;
	size_t used, bcap;
	uint32_t *ht; /* open addressing: entry index + 1, 0 empty */
	size_t hcap;  /* a power of two, or 0 */
};

#define STAMP_KEY_MAX (16 + KL_TABLE_ID_MAX + 1)
static const char db_naf[] = "naf", db_nafblock[] = "nafblock";

static void log_reset(struct repl_log *l)
{
	if (!l)
		return;
	l->n = 0;
	l->used = 0;
	if (l->hcap)
		memset(l->ht, 0, l->hcap * sizeof(*l->ht));
}

static void log_free(struct repl_log *l)
{
	if (!l)
		return;
	free(l->e);
	free(l->buf);
	free(l->ht);
	free(l);
}

static uint32_t log_hash(const char *db, const uint8_t *key, size_t klen)
{
	uint32_t h = 2166136261u;

	for (const char *p = db; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	for (size_t i = 0; i < klen; i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

/* Copy len bytes into the log's buffer. @return the offset, or SIZE_MAX (no memory). */
static size_t log_bytes(struct repl_log *l, const void *p, size_t len)
{
	size_t off = l->used;

	if (l->used + len > l->bcap) {
		size_t nc = l->bcap ? l->bcap : 65536;
		uint8_t *nb;

		while (nc < l->used + len)
			nc *= 2;
		nb = realloc(l->buf, nc);
		if (!nb)
			return SIZE_MAX;
		l->buf = nb;
		l->bcap = nc;
	}
	if (len)
		memcpy(l->buf + off, p, len);
	l->used += len;
	return off;
}

/* The slot of (db, key) in the hash: its entry or the empty slot where it goes. */
static uint32_t *log_slot(struct repl_log *l, const char *db, const uint8_t *key, size_t klen)
{
	size_t m = l->hcap - 1, i = log_hash(db, key, klen) & m;

	for (;; i = (i + 1) & m) {
		struct repl_ent *e;

		if (!l->ht[i])
			return &l->ht[i];
		e = &l->e[l->ht[i] - 1];
		if (e->db == db && e->klen == klen && !memcmp(l->buf + e->koff, key, klen))
			return &l->ht[i];
	}
}

static int log_grow(struct repl_log *l)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? 2 * l->cap : 256;
		struct repl_ent *ne = realloc(l->e, nc * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		l->e = ne;
		l->cap = nc;
	}
	if (2 * (l->n + 1) > l->hcap) {
		size_t nh = l->hcap ? 2 * l->hcap : 1024;
		uint32_t *ot = l->ht;

		l->ht = calloc(nh, sizeof(*l->ht));
		if (!l->ht) {
			l->ht = ot;
			return -ENOMEM;
		}
		free(ot);
		l->hcap = nh;
		for (size_t i = 0; i < l->n; i++)
			*log_slot(l, l->e[i].db, l->buf + l->e[i].koff, l->e[i].klen) =
				(uint32_t)(i + 1);
	}
	return 0;
}

/* Record a change of the open write transaction (only with a replicator): value NULL deletes;
 * cmp: the write was computed from old (NULL: the entry was absent). @return 0 or -ENOMEM (the
 * caller marks the transaction broken). */
static int note(struct kl_store *s, const char *db, const void *key, size_t klen,
		const void *value, size_t vlen, const MDB_val *old, int cmp)
{
	struct repl_log *l = s->log;
	struct repl_ent *e;
	uint32_t *slot;
	size_t voff = 0;

	if (!s->repl)
		return 0;
	if (!l && !(l = s->log = calloc(1, sizeof(*l))))
		goto nomem;
	if (log_grow(l))
		goto nomem;
	if (value && (voff = log_bytes(l, value, vlen)) == SIZE_MAX)
		goto nomem;
	slot = log_slot(l, db, key, klen);
	if (*slot) { /* written before in this batch: the new value, the first compare */
		e = &l->e[*slot - 1];
		e->del = !value;
		e->voff = voff;
		e->vlen = value ? vlen : 0;
		return 0;
	}
	e = &l->e[l->n];
	*e = (struct repl_ent){ .db = db, .klen = klen, .del = !value, .voff = voff,
				.vlen = value ? vlen : 0, .cmp = (uint8_t)!!cmp };
	if ((e->koff = log_bytes(l, key, klen)) == SIZE_MAX)
		goto nomem;
	if (cmp && old) {
		e->has_old = 1;
		e->olen = old->mv_size;
		if ((e->ooff = log_bytes(l, old->mv_data, old->mv_size)) == SIZE_MAX)
			goto nomem;
	}
	*slot = (uint32_t)++l->n;
	return 0;
nomem:
	snprintf(s->msg, sizeof(s->msg), "store %s: no memory for the cluster's change log",
		 s->path);
	return -ENOMEM;
}

/* The stamp's LMDB key: db || 0x00 || key. @return its length, 0 when too long. */
static size_t stamp_key(const char *db, const uint8_t *key, size_t klen, uint8_t *out)
{
	size_t dl = strlen(db);

	if (dl + 1 + klen > STAMP_KEY_MAX)
		return 0;
	memcpy(out, db, dl + 1);
	memcpy(out + dl + 1, key, klen);
	return dl + 1 + klen;
}

/* Read a stamp in txn: 0 and *v (0 when none), or an LMDB code. */
static int stamp_get(struct kl_store *s, MDB_txn *txn, const char *db, const uint8_t *key,
		     size_t klen, int64_t *v)
{
	uint8_t kb[STAMP_KEY_MAX];
	MDB_val k = { stamp_key(db, key, klen, kb), kb }, d;
	int rc;

	*v = 0;
	if (!k.mv_size)
		return MDB_BAD_VALSIZE;
	rc = mdb_get(txn, s->rev, &k, &d);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (d.mv_size == 8)
		*v = (int64_t)get_le64(d.mv_data);
	return 0;
}

static int stamp_put(struct kl_store *s, MDB_txn *txn, const char *db, const uint8_t *key,
		     size_t klen, int64_t v)
{
	uint8_t kb[STAMP_KEY_MAX], vb[8];
	MDB_val k = { stamp_key(db, key, klen, kb), kb }, d = { 8, vb };

	if (!k.mv_size)
		return MDB_BAD_VALSIZE;
	put_le64(vb, (uint64_t)v);
	return mdb_put(txn, s->rev, &k, &d, 0);
}

/* With a replicator: the record of key in dbi as txn holds it, copied into buf (cap bytes), for
 * a change computed from it: *old = ov, or NULL when absent (or without a replicator).
 * @return 0 or an LMDB code. */
static int old_get(struct kl_store *s, MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
		   uint8_t *buf, size_t cap, MDB_val *ov, const MDB_val **old)
{
	MDB_val k = { klen, (void *)(uintptr_t)key }, v;
	int rc;

	*old = NULL;
	if (!s->repl)
		return 0;
	rc = mdb_get(txn, dbi, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (v.mv_size > cap)
		return MDB_BAD_VALSIZE;
	memcpy(buf, v.mv_data, v.mv_size);
	*ov = (MDB_val){ v.mv_size, buf };
	*old = ov;
	return 0;
}

/* Make the open write transaction's changes durable in the catalogue and stamp them in txn
 * (before it commits). @return 0 (nothing to replicate, or replicated and stamped) or -errno
 * with s->msg: the caller aborts txn. */
static int repl_commit(struct kl_store *s, MDB_txn *txn)
{
	struct repl_log *l = s->log;
	struct kl_store_change *ch;
	int64_t *revs, rev = 0;
	char err[256] = "";
	int rc = 0, m = 0;

	if (!s->repl || !l || !l->n)
		return 0;
	ch = calloc(l->n, sizeof(*ch));
	revs = calloc(l->n, sizeof(*revs));
	if (!ch || !revs) {
		snprintf(s->msg, sizeof(s->msg), "store %s: no memory to replicate a commit", s->path);
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct repl_ent *e = &l->e[i];

		ch[i] = (struct kl_store_change){
			.db = e->db, .key = l->buf + e->koff, .key_len = e->klen,
			.value = e->del ? NULL : l->buf + e->voff, .value_len = e->vlen,
			.old = e->has_old ? l->buf + e->ooff : NULL, .old_len = e->olen,
			.cmp_old = e->cmp, .mod_revision = &revs[i] };
	}
	rc = s->repl->commit(s->repl_arg, ch, l->n, &rev, err, sizeof(err));
	if (rc) {
		if (rc > 0)
			rc = -EIO;
		snprintf(s->msg, sizeof(s->msg), "cluster: %s", err[0] ? err : strerror(-rc));
		goto out;
	}
	for (size_t i = 0; i < l->n && !m; i++) {
		int64_t r = revs[i] > 0 ? revs[i] : rev;

		m = stamp_put(s, txn, ch[i].db, ch[i].key, ch[i].key_len, ch[i].value ? r : -r);
	}
	if (m)
		rc = st_fail(s, m, "stamp", KL_TK__COUNT);
out:
	free(ch);
	free(revs);
	log_reset(l);
	return rc;
}

/* Commit a write transaction: replicated first (with a replicator), then mdb_txn_commit; on a
 * failure of either it is aborted. @return 0 or -errno (s->msg). */
static int st_commit(struct kl_store *s, MDB_txn *txn)
{
	int rc = repl_commit(s, txn), m;

	if (rc) {
		mdb_txn_abort(txn);
	} else if ((m = mdb_txn_commit(txn)) != 0) {
		rc = st_fail(s, m, "commit", KL_TK__COUNT);
	}
	kl_ctl_add(s->ctl, rc ? KL_CTL_STORE_COMMIT_FAILURES : KL_CTL_STORE_COMMITS, 1);
	return rc;
}

void kl_store_set_repl(struct kl_store *s, const struct kl_store_repl_ops *ops, void *arg)
{
	if (!s)
		return;
	if (s->txn) /* changes staged before would be missing from the log: only abort is left */
		s->txn_failed = 1;
	log_reset(s->log);
	s->repl = ops && ops->commit ? ops : NULL;
	s->repl_arg = s->repl ? arg : NULL;
}

/* ---- writes ------------------------------------------------------------------------------------ */

/* Start a write (flags 0) or a read (MDB_RDONLY): inside a batch its transaction (so a read
 * sees the batch's staged writes), else a transaction of its own. */
static int txn_open(struct kl_store *s, MDB_txn **txn, unsigned flags)
{
	int rc;

	s->msg[0] = '\0';
	if (s->txn) {
		if (s->txn_failed) {
			snprintf(s->msg, sizeof(s->msg),
				 "store %s: an earlier write of this batch failed", s->path);
			return -ECANCELED;
		}
		*txn = s->txn;
		return 0;
	}
	rc = mdb_txn_begin(s->env, NULL, flags, txn);
	return rc ? st_fail(s, rc, "begin", KL_TK__COUNT) : 0;
}

static int w_begin(struct kl_store *s, MDB_txn **txn)
{
	return txn_open(s, txn, 0);
}

static int r_begin(struct kl_store *s, MDB_txn **txn)
{
	return txn_open(s, txn, MDB_RDONLY);
}

/* End a write: commit it when it is not part of a batch. broken: the transaction is unusable. */
static int w_end(struct kl_store *s, MDB_txn *txn, int rc, int broken)
{
	if (s->txn) {
		if (rc && broken)
			s->txn_failed = 1;
		return rc;
	}
	if (rc) {
		mdb_txn_abort(txn);
		log_reset(s->log);
	} else {
		rc = st_commit(s, txn);
	}
	return rc;
}

/* Write one record into an open write transaction. @return 0, -errno; *broken set when LMDB
 * failed (the transaction must be aborted). */
static int put_in(struct kl_store *s, MDB_txn *txn, unsigned kind, const uint8_t *key,
		  size_t klen, const uint8_t *meta, size_t mlen, const uint8_t *secret, size_t slen,
		  const MDB_val *old, int cmp, int *broken)
{
	uint8_t rec[REC_MAX];
	MDB_val k = {klen, (void *)key}, v;
	long n;
	int rc;

	n = rec_build(s, kind, key, klen, meta, mlen, secret, slen, rec);
	if (n < 0) {
		snprintf(s->msg, sizeof(s->msg), "store %s: cannot wrap a %s record", s->path,
			 kind_names[kind]);
		return (int)n;
	}
	v = (MDB_val){(size_t)n, rec};
	rc = mdb_put(txn, s->dbi[kind], &k, &v, 0);
	if (rc) {
		*broken = 1;
		return st_fail(s, rc, "put", kind);
	}
	rc = note(s, kind_names[kind], key, klen, rec, (size_t)n, old, cmp);
	if (rc)
		*broken = 1;
	return rc;
}

static int put_rec(struct kl_store *s, unsigned kind, const uint8_t *key, size_t klen,
		   const uint8_t *meta, size_t mlen, const uint8_t *secret, size_t slen)
{
	MDB_txn *txn;
	int rc, broken = 0;

	rc = w_begin(s, &txn);
	if (rc)
		return rc;
	rc = put_in(s, txn, kind, key, klen, meta, mlen, secret, slen, NULL, 0, &broken);
	return w_end(s, txn, rc, broken);
}

static int id_ok(const uint8_t *id, size_t len)
{
	return id && len >= 1 && len <= KL_TABLE_ID_MAX;
}

/* @return 1..15 for a string of decimal digits, 0 otherwise (as the table checks IMSIs). */
static unsigned imsi_len(const char *imsi, size_t max)
{
	unsigned n = 0;

	if (!imsi)
		return 0;
	while (n < max && n < KL_TABLE_IMSI_MAX && imsi[n]) {
		if (imsi[n] < '0' || imsi[n] > '9')
			return 0;
		n++;
	}
	return n < KL_TABLE_IMSI_MAX ? n : 0;
}

#define UE_META_MAX (1 + KL_TABLE_UE_GROUPS * GROUP_KEY_LEN + 8 + 1)

/* UE metadata: u8 ngroups, ngroups x (domain[3], group u16 big-endian), then u64 expires (NTP
 * timestamp, little-endian) only when the MUK expires: a never-expiring UE is written exactly as
 * before the expiry existed. @return its length. */
static size_t ue_meta(uint8_t meta[UE_META_MAX], const struct kl_group_ref *groups,
		      unsigned ngroups, uint64_t expires, uint8_t services)
{
	size_t n = 1 + (size_t)ngroups * GROUP_KEY_LEN;

	meta[0] = (uint8_t)ngroups;
	for (unsigned i = 0; i < ngroups; i++) {
		uint8_t *g = meta + 1 + i * GROUP_KEY_LEN;

		memcpy(g, groups[i].domain, 3);
		g[3] = (uint8_t)(groups[i].group >> 8);
		g[4] = (uint8_t)groups[i].group;
	}
	if (expires || (services && services != KL_SVC_DEFAULT)) {
		put_le64(meta + n, expires);
		n += 8;
	}
	if (services && services != KL_SVC_DEFAULT)
		meta[n++] = services;
	return n;
}

/* Decode an unwrapped UE record's groups, expiry and services (the MUK stays in rv->secret);
 * meta of 1 + 5n bytes (no expiry: 0; the default services), 1 + 5n + 8, or 1 + 5n + 8 + 1 (the
 * services byte). expires and services may be NULL. @return 0 or REC_CONTENT. */
static int ue_decode_svc(const struct rec_view *rv, struct kl_group_ref *groups, unsigned *ngroups,
			 uint64_t *expires, uint8_t *services)
{
	size_t glen;
	unsigned ng;

	if (rv->mlen < 1)
		return REC_CONTENT;
	ng = rv->meta[0];
	glen = 1 + (size_t)ng * GROUP_KEY_LEN;
	if (ng > KL_TABLE_UE_GROUPS ||
	    (rv->mlen != glen && rv->mlen != glen + 8 && rv->mlen != glen + 9) || rv->slen < 1 ||
	    rv->slen > PSK_MAX || (rv->mlen == glen + 9 && (!rv->meta[glen + 8] ||
							     (rv->meta[glen + 8] & ~KL_SVC_ALL))))
		return REC_CONTENT;
	for (unsigned j = 0; j < ng; j++) {
		const uint8_t *g = rv->meta + 1 + j * GROUP_KEY_LEN;

		memset(&groups[j], 0, sizeof(groups[j]));
		memcpy(groups[j].domain, g, 3);
		groups[j].group = (uint16_t)(g[3] << 8 | g[4]);
	}
	*ngroups = ng;
	if (expires)
		*expires = rv->mlen == glen ? 0 : get_le64(rv->meta + glen);
	if (services)
		*services = rv->mlen == glen + 9 ? rv->meta[glen + 8] : KL_SVC_DEFAULT;
	return 0;
}

static int ue_decode(const struct rec_view *rv, struct kl_group_ref *groups, unsigned *ngroups,
		     uint64_t *expires)
{
	return ue_decode_svc(rv, groups, ngroups, expires, NULL);
}

/* Decode an unwrapped group record into g (zeroed first). @return 0 or REC_CONTENT. */
static int group_decode(const struct rec_view *rv, struct kl_group *g)
{
	memset(g, 0, sizeof(*g));
	if (rv->mlen != 1 + 2 * MSK_META_LEN || rv->slen != 32 || rv->meta[0] > 1)
		return REC_CONTENT;
	g->has_next = rv->meta[0];
	g->current.msk_id = get_le32(rv->meta + 1);
	g->current.valid_from = get_le64(rv->meta + 5);
	g->current.valid_to = get_le64(rv->meta + 13);
	g->next.msk_id = get_le32(rv->meta + 1 + MSK_META_LEN);
	g->next.valid_from = get_le64(rv->meta + 5 + MSK_META_LEN);
	g->next.valid_to = get_le64(rv->meta + 13 + MSK_META_LEN);
	memcpy(g->current.key, rv->secret, 16);
	memcpy(g->next.key, rv->secret + 16, 16);
	return 0;
}

/* A stored record that cannot be used (why: an enum rec_fail). @return -EBADMSG, or -ENOMEM
 * when OpenSSL could not set up the unwrap (not the record's fault). */
static int bad_rec(struct kl_store *s, unsigned kind, int why)
{
	snprintf(s->msg, sizeof(s->msg), "store %s: the stored %s record of this key is corrupt "
		 "(%s): delete it or write it again", s->path, kind_names[kind], rec_fail_text(why));
	return why == REC_NOCTX ? -ENOMEM : -EBADMSG;
}

/* Read and unwrap one record in txn (a batch's transaction sees the batch's staged writes).
 * @return 0 (rv filled: wipe it), -ENOENT, -EBADMSG/-ENOMEM (see bad_rec) or -errno with
 * *broken set (LMDB failed: the transaction must be aborted). rv->meta points into the map:
 * use it before the next write in txn. */
static int get_in(struct kl_store *s, MDB_txn *txn, unsigned kind, const uint8_t *key,
		  size_t klen, struct rec_view *rv, int *broken)
{
	MDB_val k = {klen, (void *)key}, v;
	int rc;

	rv->slen = 0;
	rv->meta = NULL;
	rv->mlen = 0;
	rc = mdb_get(txn, s->dbi[kind], &k, &v);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	if (rc) {
		*broken = 1;
		return st_fail(s, rc, "read", kind);
	}
	rc = rec_open(s, kind, &k, &v, rv);
	if (rc) {
		rv_wipe(rv);
		return bad_rec(s, kind, rc);
	}
	return 0;
}


static void r_end(struct kl_store *s, MDB_txn *txn, int broken)
{
	if (s->txn) {
		if (broken)
			s->txn_failed = 1;
		return;
	}
	mdb_txn_abort(txn);
}

int kl_store_has(struct kl_store *s, enum kl_table_kind kind, const uint8_t *key, uint16_t len)
{
	MDB_val k = { len, (void *)(uintptr_t)key }, v;
	MDB_txn *txn;
	int rc;

	if (!s || (unsigned)kind >= KL_TK__COUNT || !key || !len)
		return -EINVAL;
	rc = r_begin(s, &txn);
	if (rc)
		return rc;
	rc = mdb_get(txn, s->dbi[kind], &k, &v);
	r_end(s, txn, 0);
	if (rc == MDB_NOTFOUND)
		return 0;
	return rc ? st_fail(s, rc, "read", kind) : 1;
}

int kl_store_put_ue(struct kl_store *s, const uint8_t *id, uint16_t id_len, const uint8_t *muk,
		    unsigned muk_len, const struct kl_group_ref *groups, unsigned ngroups)
{
	return kl_store_put_ue_exp(s, id, id_len, muk, muk_len, groups, ngroups, 0);
}

int kl_store_put_ue_exp(struct kl_store *s, const uint8_t *id, uint16_t id_len,
			const uint8_t *muk, unsigned muk_len, const struct kl_group_ref *groups,
			unsigned ngroups, uint64_t expires)
{
	return kl_store_put_ue_svc(s, id, id_len, muk, muk_len, groups, ngroups, expires,
				   KL_SVC_DEFAULT);
}

int kl_store_put_ue_svc(struct kl_store *s, const uint8_t *id, uint16_t id_len,
			const uint8_t *muk, unsigned muk_len, const struct kl_group_ref *groups,
			unsigned ngroups, uint64_t expires, uint8_t services)
{
	uint8_t meta[UE_META_MAX];

	if (!s || !id_ok(id, id_len) || !muk || muk_len < 1 || muk_len > PSK_MAX ||
	    ngroups > KL_TABLE_UE_GROUPS || (ngroups && !groups) || !services ||
	    (services & ~KL_SVC_ALL))
		return -EINVAL;
	return put_rec(s, KL_TK_UE, id, id_len, meta,
		       ue_meta(meta, groups, ngroups, expires, services), muk, muk_len);
}

int kl_store_put_pair(struct kl_store *s, const uint8_t *peer, uint16_t peer_len,
		      const uint8_t *key, unsigned key_len, uint64_t expires)
{
	uint8_t meta[8];

	if (!s || !id_ok(peer, peer_len) || !key || key_len < 1 || key_len > PSK_MAX)
		return -EINVAL;
	put_le64(meta, expires);
	return put_rec(s, KL_TK_PAIR, peer, peer_len, meta, sizeof(meta), key, key_len);
}

static void msk_meta(uint8_t *p, const struct kl_msk *m)
{
	put_le32(p, m->msk_id);
	put_le64(p + 4, m->valid_from);
	put_le64(p + 12, m->valid_to);
}

int kl_store_put_group(struct kl_store *s, const struct kl_group_ref *ref,
		       const struct kl_group *g)
{
	uint8_t key[GROUP_KEY_LEN], meta[1 + 2 * MSK_META_LEN], secret[32], ob[REC_MAX];
	const MDB_val *old;
	MDB_val ov;
	MDB_txn *txn;
	int rc, m, broken = 0;

	if (!s || !ref || !g)
		return -EINVAL;
	memcpy(key, ref->domain, 3);
	key[3] = (uint8_t)(ref->group >> 8);
	key[4] = (uint8_t)ref->group;
	meta[0] = g->has_next ? 1 : 0;
	msk_meta(meta + 1, &g->current);
	msk_meta(meta + 1 + MSK_META_LEN, &g->next);
	memcpy(secret, g->current.key, 16);
	memcpy(secret + 16, g->next.key, 16);
	/* A group's new MSKs are computed from the ones it holds (rotation): with a replicator the
	 * write is only valid while the catalogue still holds the record it replaces. */
	rc = w_begin(s, &txn);
	if (!rc) {
		m = old_get(s, txn, s->dbi[KL_TK_GROUP], key, sizeof(key), ob, sizeof(ob), &ov, &old);
		if (m) {
			broken = 1;
			rc = st_fail(s, m, "read", KL_TK_GROUP);
		} else {
			rc = put_in(s, txn, KL_TK_GROUP, key, sizeof(key), meta, sizeof(meta), secret,
				    sizeof(secret), old, 1, &broken);
		}
		rc = w_end(s, txn, rc, broken);
	}
	kl_memzero(secret, sizeof(secret));
	return rc;
}

int kl_store_put_emse(struct kl_store *s, const uint8_t *id, uint16_t id_len, const uint8_t *psk,
		      unsigned psk_len)
{
	if (!s || !id_ok(id, id_len) || !psk || psk_len < 1 || psk_len > PSK_MAX)
		return -EINVAL;
	return put_rec(s, KL_TK_EMSE, id, id_len, NULL, 0, psk, psk_len);
}

int kl_store_put_appid(struct kl_store *s, const uint8_t *appid, uint16_t len, const char *imsi)
{
	unsigned il = imsi_len(imsi, KL_TABLE_IMSI_MAX);

	if (!s || !id_ok(appid, len) || !il)
		return -EINVAL;
	return put_rec(s, KL_TK_APPID, appid, len, NULL, 0, (const uint8_t *)imsi, il);
}

struct e2m_ring {
	unsigned n;
	uint32_t id[KL_TABLE_E2M_RING_MAX];
	uint64_t expires[KL_TABLE_E2M_RING_MAX];
	uint8_t key[KL_TABLE_E2M_RING_MAX][32];
};

/* Decode an unwrapped e2m record. @return 0 or REC_CONTENT. */
static int e2m_decode(const struct rec_view *rv, struct e2m_ring *r)
{
	if (rv->mlen < 1)
		return REC_CONTENT;
	r->n = rv->meta[0];
	if (r->n < 1 || r->n > KL_TABLE_E2M_RING_MAX || rv->mlen != 1 + 12 * r->n ||
	    rv->slen != 32 * r->n)
		return REC_CONTENT;
	for (unsigned i = 0; i < r->n; i++) {
		r->id[i] = get_le32(rv->meta + 1 + 12 * i);
		r->expires[i] = get_le64(rv->meta + 1 + 12 * i + 4);
		memcpy(r->key[i], rv->secret + 32 * i, 32);
	}
	return 0;
}

/* Write the ring r as imsi's e2m record (e2m_decode's counterpart). */
static int e2m_put(struct kl_store *s, MDB_txn *txn, const char *imsi, unsigned il,
		   const struct e2m_ring *r, const MDB_val *old, int *broken)
{
	uint8_t meta[1 + 12 * KL_TABLE_E2M_RING_MAX];

	meta[0] = (uint8_t)r->n;
	for (unsigned i = 0; i < r->n; i++) {
		put_le32(meta + 1 + 12 * i, r->id[i]);
		put_le64(meta + 1 + 12 * i + 4, r->expires[i]);
	}
	return put_in(s, txn, KL_TK_E2M, (const uint8_t *)imsi, il, meta, 1 + 12 * r->n,
		      &r->key[0][0], 32 * r->n, old, 1, broken);
}

int kl_store_push_e2m(struct kl_store *s, const char *imsi, const uint8_t key[32],
		      uint32_t key_id, uint64_t expires, unsigned ring_size)
{
	unsigned il = imsi_len(imsi, KL_TABLE_IMSI_MAX);
	uint8_t ob[REC_MAX];
	struct rec_view rv;
	struct e2m_ring r, nr;
	const MDB_val *old;
	MDB_txn *txn;
	MDB_val k = {il, (void *)imsi}, v, ov;
	int rc, broken = 0, at = -1;

	if (!s || !il || !key || ring_size < 1 || ring_size > KL_TABLE_E2M_RING_MAX)
		return -EINVAL;
	rc = w_begin(s, &txn);
	if (rc)
		return rc;
	memset(&r, 0, sizeof(r));
	rc = old_get(s, txn, s->dbi[KL_TK_E2M], imsi, il, ob, sizeof(ob), &ov, &old);
	if (!rc)
		rc = mdb_get(txn, s->dbi[KL_TK_E2M], &k, &v);
	if (rc == 0) {
		rc = rec_open(s, KL_TK_E2M, &k, &v, &rv);
		if (!rc)
			rc = e2m_decode(&rv, &r);
		rv_wipe(&rv);
		if (rc) {
			snprintf(s->msg, sizeof(s->msg),
				 "store %s: the stored e2m ring of this IMSI is corrupt (%s): delete "
				 "it first",
				 s->path, rec_fail_text(rc));
			rc = rc == REC_NOCTX ? -ENOMEM : -EBADMSG;
			goto out;
		}
	} else if (rc != MDB_NOTFOUND) {
		broken = 1;
		rc = st_fail(s, rc, "read", KL_TK_E2M);
		goto out;
	}
	rc = 0;
	/* The same ring rules as kl_table_push_e2m. */
	for (unsigned i = 0; i < r.n; i++)
		if (r.id[i] == key_id)
			at = (int)i;
	if (at >= 0) {
		nr = r;
	} else {
		unsigned keep = r.n < ring_size - 1u ? r.n : ring_size - 1u;

		nr.n = keep + 1;
		for (unsigned i = 0; i < keep; i++) {
			nr.id[i + 1] = r.id[i];
			nr.expires[i + 1] = r.expires[i];
			memcpy(nr.key[i + 1], r.key[i], 32);
		}
		at = 0;
	}
	nr.id[at] = key_id;
	nr.expires[at] = expires;
	memcpy(nr.key[at], key, 32);
	rc = e2m_put(s, txn, imsi, il, &nr, old, &broken);
out:
	kl_memzero(&r, sizeof(r));
	kl_memzero(&nr, sizeof(nr));
	return w_end(s, txn, rc, broken);
}

int kl_store_del(struct kl_store *s, enum kl_table_kind kind, const uint8_t *key, uint16_t len)
{
	MDB_txn *txn;
	MDB_val k = {len, (void *)key};
	int rc, broken = 0;

	if (!s || (unsigned)kind >= KL_TK__COUNT || !id_ok(key, len) ||
	    (kind == KL_TK_GROUP && len != GROUP_KEY_LEN))
		return -EINVAL;
	rc = w_begin(s, &txn);
	if (rc)
		return rc;
	rc = mdb_del(txn, s->dbi[kind], &k, NULL);
	if (rc == MDB_NOTFOUND) {
		rc = -ENOENT;
	} else if (rc) {
		broken = 1;
		rc = st_fail(s, rc, "delete", kind);
	} else if ((rc = note(s, kind_names[kind], key, len, NULL, 0, NULL, 0)) != 0) {
		broken = 1;
	}
	return w_end(s, txn, rc, broken);
}

/* Rewrite a stored UE with new groups (groups_set) and/or new services (services != 0),
 * keeping the rest: the MUK unwrapped from the old record is wrapped again, bound to the new
 * metadata. */
static int ue_rewrite(struct kl_store *s, const uint8_t *id, uint16_t id_len, int groups_set,
		      const struct kl_group_ref *groups, unsigned ngroups, uint8_t new_services)
{
	uint8_t meta[UE_META_MAX], services = KL_SVC_DEFAULT, ob[REC_MAX];
	struct kl_group_ref old[KL_TABLE_UE_GROUPS];
	struct rec_view rv;
	uint64_t expires = 0;
	unsigned ong;
	const MDB_val *orec;
	MDB_txn *txn;
	MDB_val ov;
	int rc, broken = 0;

	rc = w_begin(s, &txn);
	if (rc)
		return rc;
	rc = old_get(s, txn, s->dbi[KL_TK_UE], id, id_len, ob, sizeof(ob), &ov, &orec);
	if (rc) {
		broken = 1;
		return w_end(s, txn, st_fail(s, rc, "read", KL_TK_UE), broken);
	}
	rc = get_in(s, txn, KL_TK_UE, id, id_len, &rv, &broken);
	if (!rc && (rc = ue_decode_svc(&rv, old, &ong, &expires, &services)) != 0)
		rc = bad_rec(s, KL_TK_UE, rc);
	if (!groups_set) {
		groups = old;
		ngroups = ong;
	}
	if (new_services)
		services = new_services;
	if (!rc)
		rc = put_in(s, txn, KL_TK_UE, id, id_len, meta,
			    ue_meta(meta, groups, ngroups, expires, services), rv.secret, rv.slen,
			    orec, 1, &broken);
	rv_wipe(&rv);
	return w_end(s, txn, rc, broken);
}

int kl_store_set_ue_groups(struct kl_store *s, const uint8_t *id, uint16_t id_len,
			   const struct kl_group_ref *groups, unsigned ngroups)
{
	if (!s || !id_ok(id, id_len) || ngroups > KL_TABLE_UE_GROUPS || (ngroups && !groups))
		return -EINVAL;
	return ue_rewrite(s, id, id_len, 1, groups, ngroups, 0);
}

int kl_store_set_ue_services(struct kl_store *s, const uint8_t *id, uint16_t id_len,
			     uint8_t services)
{
	if (!s || !id_ok(id, id_len) || !services || (services & ~KL_SVC_ALL))
		return -EINVAL;
	return ue_rewrite(s, id, id_len, 0, NULL, 0, services);
}

int kl_store_del_e2m_key(struct kl_store *s, const char *imsi, uint32_t key_id)
{
	unsigned il = imsi_len(imsi, KL_TABLE_IMSI_MAX), m = 0;
	uint8_t ob[REC_MAX];
	struct rec_view rv;
	struct e2m_ring r, nr;
	const MDB_val *old;
	MDB_txn *txn;
	MDB_val k = {il, (void *)imsi}, ov;
	int rc, broken = 0, at = -1;

	if (!s || !il)
		return -EINVAL;
	rc = w_begin(s, &txn);
	if (rc)
		return rc;
	memset(&r, 0, sizeof(r));
	memset(&nr, 0, sizeof(nr));
	rc = old_get(s, txn, s->dbi[KL_TK_E2M], imsi, il, ob, sizeof(ob), &ov, &old);
	if (rc) {
		broken = 1;
		rc = st_fail(s, rc, "read", KL_TK_E2M);
		goto out;
	}
	rc = get_in(s, txn, KL_TK_E2M, (const uint8_t *)imsi, il, &rv, &broken);
	if (!rc && (rc = e2m_decode(&rv, &r)) != 0)
		rc = bad_rec(s, KL_TK_E2M, rc);
	rv_wipe(&rv);
	if (rc)
		goto out;
	for (unsigned i = 0; i < r.n; i++)
		if (r.id[i] == key_id)
			at = (int)i;
	if (at < 0) {
		rc = -ENOENT;
		goto out;
	}
	if (r.n == 1) { /* its last key: the record goes */
		rc = mdb_del(txn, s->dbi[KL_TK_E2M], &k, NULL);
		if (rc) {
			broken = 1;
			rc = st_fail(s, rc, "delete", KL_TK_E2M);
		} else if ((rc = note(s, kind_names[KL_TK_E2M], imsi, il, NULL, 0, old, 1)) != 0) {
			broken = 1;
		}
		goto out;
	}
	for (unsigned i = 0; i < r.n; i++) {
		if ((int)i == at)
			continue;
		nr.id[m] = r.id[i];
		nr.expires[m] = r.expires[i];
		memcpy(nr.key[m], r.key[i], 32);
		m++;
	}
	nr.n = m;
	rc = e2m_put(s, txn, imsi, il, &nr, old, &broken);
out:
	kl_memzero(&r, sizeof(r));
	kl_memzero(&nr, sizeof(nr));
	return w_end(s, txn, rc, broken);
}

int kl_store_get_group(struct kl_store *s, const struct kl_group_ref *ref, struct kl_group *out)
{
	uint8_t key[GROUP_KEY_LEN];
	struct rec_view rv;
	MDB_txn *txn;
	int rc, broken = 0;

	if (!s || !ref || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	memcpy(key, ref->domain, 3);
	key[3] = (uint8_t)(ref->group >> 8);
	key[4] = (uint8_t)ref->group;
	rc = r_begin(s, &txn);
	if (rc)
		return rc;
	rc = get_in(s, txn, KL_TK_GROUP, key, sizeof(key), &rv, &broken);
	if (!rc && (rc = group_decode(&rv, out)) != 0) {
		kl_memzero(out, sizeof(*out));
		rc = bad_rec(s, KL_TK_GROUP, rc);
	}
	rv_wipe(&rv);
	r_end(s, txn, broken);
	return rc;
}

int kl_store_get_ue_groups(struct kl_store *s, const uint8_t *id, uint16_t id_len,
			   struct kl_group_ref *groups, unsigned *ngroups)
{
	if (!groups || !ngroups)
		return -EINVAL;
	return kl_store_get_ue(s, id, id_len, groups, ngroups, NULL);
}

int kl_store_get_ue(struct kl_store *s, const uint8_t *id, uint16_t id_len,
		    struct kl_group_ref *groups, unsigned *ngroups, uint64_t *expires)
{
	struct kl_group_ref g[KL_TABLE_UE_GROUPS];
	struct rec_view rv;
	uint64_t ex = 0;
	unsigned ng = 0;
	MDB_txn *txn;
	int rc, broken = 0;

	if (!s || !id_ok(id, id_len))
		return -EINVAL;
	rc = r_begin(s, &txn);
	if (rc)
		return rc;
	/* Unwrapped although no key byte is returned: the groups are authentic only once the
	 * binding inside the wrap checked them. */
	rc = get_in(s, txn, KL_TK_UE, id, id_len, &rv, &broken);
	if (!rc && (rc = ue_decode(&rv, g, &ng, &ex)) != 0)
		rc = bad_rec(s, KL_TK_UE, rc);
	rv_wipe(&rv);
	r_end(s, txn, broken);
	if (rc)
		return rc;
	if (groups)
		memcpy(groups, g, ng * sizeof(g[0]));
	if (ngroups)
		*ngroups = ng;
	if (expires)
		*expires = ex;
	return 0;
}

int kl_store_load_ue(struct kl_store *s, struct kl_table *t, const uint8_t *id, uint16_t id_len)
{
	struct kl_group_ref g[KL_TABLE_UE_GROUPS];
	struct kl_ue_put v;
	struct rec_view rv;
	uint64_t ex = 0;
	unsigned ng = 0;
	uint8_t svc = KL_SVC_DEFAULT;
	MDB_txn *txn;
	int rc, trc = -EINVAL, broken = 0;

	if (!s || !t || !id_ok(id, id_len))
		return -EINVAL;
	rc = r_begin(s, &txn);
	if (rc)
		return rc;
	rc = get_in(s, txn, KL_TK_UE, id, id_len, &rv, &broken);
	if (!rc && (rc = ue_decode_svc(&rv, g, &ng, &ex, &svc)) != 0)
		rc = bad_rec(s, KL_TK_UE, rc);
	if (!rc && (rv.slen < 1 || rv.slen > KL_TABLE_PSK_CHUNKS * KL_PRF_CHUNK_LEN))
		rc = -EBADMSG;
	if (!rc) {
		/* the MUK goes from the unwrapped record straight into the table's put */
		v = (struct kl_ue_put){ .id = id, .id_len = id_len, .muk = rv.secret,
					.muk_len = (uint8_t)rv.slen, .groups = g,
					.ngroups = (uint8_t)ng, .expires = ex, .services = svc };
		kl_table_put_ue_bulk(t, &v, 1, &trc);
		rc = trc;
	}
	rv_wipe(&rv);
	r_end(s, txn, broken);
	return rc;
}

int kl_store_txn_begin(struct kl_store *s)
{
	int rc;

	if (!s)
		return -EINVAL;
	if (s->txn)
		return -EBUSY;
	s->msg[0] = '\0';
	rc = mdb_txn_begin(s->env, NULL, 0, &s->txn);
	if (rc) {
		s->txn = NULL;
		return st_fail(s, rc, "begin", KL_TK__COUNT);
	}
	s->txn_failed = 0;
	log_reset(s->log);
	return 0;
}

int kl_store_txn_commit(struct kl_store *s)
{
	MDB_txn *txn;
	int rc = 0;

	if (!s || !s->txn)
		return -EINVAL;
	txn = s->txn;
	s->txn = NULL;
	if (s->txn_failed) {
		mdb_txn_abort(txn);
		log_reset(s->log);
		rc = -ECANCELED;
		kl_ctl_add(s->ctl, KL_CTL_STORE_COMMIT_FAILURES, 1);
	} else {
		rc = st_commit(s, txn);
	}
	s->txn_failed = 0;
	return rc;
}

void kl_store_txn_abort(struct kl_store *s)
{
	if (!s || !s->txn)
		return;
	mdb_txn_abort(s->txn);
	s->txn = NULL;
	s->txn_failed = 0;
	log_reset(s->log);
}

/* ---- load ------------------------------------------------------------------------------------- */

struct ue_batch {
	unsigned n;
	struct kl_ue_put v[LOAD_BATCH];
	uint64_t recno[LOAD_BATCH];
	int rc[LOAD_BATCH];
	struct kl_group_ref g[LOAD_BATCH][KL_TABLE_UE_GROUPS];
	uint8_t muk[LOAD_BATCH][PSK_MAX];
};

struct load_ctx {
	struct kl_store *s;
	struct kl_table *t;
	struct kl_store_load_stats *st;
	char *err;
	size_t errlen;
	uint64_t total; /* records of the kind being loaded */
	struct ue_batch *ub;
};

static int table_fail(struct load_ctx *lc, unsigned kind, uint64_t recno, int rc)
{
	if (rc == -ENOSPC)
		kl_errf(lc->err, lc->errlen,
			"store %s: the key table has no room for %s record #%" PRIu64 " of %" PRIu64
			" (table holds %u %s entries): raise its capacity",
			lc->s->path, kind_names[kind], recno, lc->total,
			kl_table_count(lc->t, (enum kl_table_kind)kind), kind_names[kind]);
	else
		kl_errf(lc->err, lc->errlen,
			"store %s: the key table refused %s record #%" PRIu64 " (%s)", lc->s->path,
			kind_names[kind], recno, strerror(-rc));
	return rc == -ENOSPC ? -ENOSPC : -EBADMSG;
}

static int ue_flush(struct load_ctx *lc)
{
	struct ue_batch *b = lc->ub;
	int rc = 0;

	if (!b->n)
		return 0;
	kl_table_put_ue_bulk(lc->t, b->v, b->n, b->rc);
	for (unsigned i = 0; i < b->n; i++) {
		if (b->rc[i] < 0) {
			rc = table_fail(lc, KL_TK_UE, b->recno[i], b->rc[i]);
			break;
		}
		lc->st->loaded[KL_TK_UE]++;
	}
	kl_memzero(b->muk, sizeof(b->muk));
	b->n = 0;
	return rc;
}

/* Write one authentic record into the table. @return 0, REC_CONTENT or -errno (table). */
static int load_one(struct load_ctx *lc, unsigned kind, const MDB_val *k, struct rec_view *rv,
		    uint64_t recno)
{
	char imsi[KL_TABLE_IMSI_MAX + 1];
	int rc = 0;

	switch (kind) {
	case KL_TK_UE: {
		struct ue_batch *b = lc->ub;
		uint64_t expires;
		unsigned ng, i = b->n;
		uint8_t svc;

		if (ue_decode_svc(rv, b->g[i], &ng, &expires, &svc))
			return REC_CONTENT;
		memcpy(b->muk[i], rv->secret, rv->slen);
		/* The id points into the read transaction's map: valid until the flush. */
		b->v[i] = (struct kl_ue_put){.id = k->mv_data, .muk = b->muk[i], .groups = b->g[i],
					     .id_len = (uint16_t)k->mv_size,
					     .muk_len = (uint8_t)rv->slen, .ngroups = (uint8_t)ng,
					     .expires = expires, .services = svc};
		b->recno[i] = recno;
		if (++b->n == LOAD_BATCH)
			return ue_flush(lc);
		return 0;
	}
	case KL_TK_GROUP: {
		struct kl_group_ref ref;
		struct kl_group g;
		const uint8_t *key = k->mv_data;

		if (k->mv_size != GROUP_KEY_LEN || group_decode(rv, &g)) {
			kl_memzero(&g, sizeof(g));
			return REC_CONTENT;
		}
		memcpy(ref.domain, key, 3);
		ref.group = (uint16_t)(key[3] << 8 | key[4]);
		rc = kl_table_put_group(lc->t, &ref, &g);
		kl_memzero(&g, sizeof(g));
		break;
	}
	case KL_TK_EMSE:
		if (rv->mlen || rv->slen < 1 || rv->slen > PSK_MAX)
			return REC_CONTENT;
		rc = kl_table_put_emse(lc->t, k->mv_data, (uint16_t)k->mv_size, rv->secret,
				       (unsigned)rv->slen);
		break;
	case KL_TK_E2M: {
		struct e2m_ring r;

		if (k->mv_size > KL_TABLE_IMSI_MAX - 1)
			return REC_CONTENT;
		memcpy(imsi, k->mv_data, k->mv_size);
		imsi[k->mv_size] = '\0';
		if (imsi_len(imsi, k->mv_size) != k->mv_size)
			return REC_CONTENT;
		rc = e2m_decode(rv, &r);
		if (rc)
			return rc;
		/* Oldest first, so the table's ring ends newest first like the stored one. */
		for (unsigned i = r.n; i-- > 0 && rc >= 0;)
			rc = kl_table_push_e2m(lc->t, imsi, r.key[i], r.id[i], r.expires[i]);
		kl_memzero(&r, sizeof(r));
		break;
	}
	case KL_TK_APPID:
		if (rv->mlen || rv->slen < 1 || rv->slen > KL_TABLE_IMSI_MAX - 1)
			return REC_CONTENT;
		memcpy(imsi, rv->secret, rv->slen);
		imsi[rv->slen] = '\0';
		if (imsi_len(imsi, rv->slen) != rv->slen)
			return REC_CONTENT;
		rc = kl_table_put_appid(lc->t, k->mv_data, (uint16_t)k->mv_size, imsi);
		kl_memzero(imsi, sizeof(imsi));
		break;
	case KL_TK_PAIR:
		if (rv->mlen != 8 || rv->slen < 1 || rv->slen > PSK_MAX)
			return REC_CONTENT;
		rc = kl_table_put_pair(lc->t, k->mv_data, (uint16_t)k->mv_size, rv->secret,
				       (unsigned)rv->slen, get_le64(rv->meta));
		break;
	default:
		return REC_CONTENT;
	}
	if (rc < 0)
		return table_fail(lc, kind, recno, rc);
	lc->st->loaded[kind]++;
	return 0;
}

static int load_kind(struct load_ctx *lc, MDB_txn *txn, unsigned kind)
{
	struct kl_store *s = lc->s;
	struct rec_view rv;
	MDB_cursor *cur;
	MDB_stat ms;
	MDB_val k, v;
	uint64_t recno = 0;
	int rc, m;

	if (mdb_stat(txn, s->dbi[kind], &ms) == 0)
		lc->total = ms.ms_entries;
	m = mdb_cursor_open(txn, s->dbi[kind], &cur);
	if (m) {
		kl_errf(lc->err, lc->errlen, "store %s: cannot read %s records: %s", s->path,
			kind_names[kind], mdb_strerror(m));
		return mdb_to_errno(m);
	}
	rc = 0;
	for (m = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !m && !rc;
	     m = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		recno++;
		rc = rec_open(s, kind, &k, &v, &rv);
		if (!rc) {
			rc = load_one(lc, kind, &k, &rv, recno);
		} else if (rc == REC_NOCTX) {
			rv_wipe(&rv);
			kl_errf(lc->err, lc->errlen, "store %s: cannot set up AES key wrap (OpenSSL)",
				s->path);
			rc = -ENOMEM;
			break;
		}
		rv_wipe(&rv);
		if (rc > 0) {
			kl_errf(lc->err, lc->errlen,
				"store %s is corrupt: %s record #%" PRIu64 " of %" PRIu64 ": %s",
				s->path, kind_names[kind], recno, lc->total, rec_fail_text(rc));
			rc = -EBADMSG;
		}
	}
	if (!rc && m != MDB_NOTFOUND) {
		kl_errf(lc->err, lc->errlen, "store %s: reading %s records failed after #%" PRIu64
			": %s", s->path, kind_names[kind], recno, mdb_strerror(m));
		rc = mdb_to_errno(m);
	}
	if (!rc && kind == KL_TK_UE)
		rc = ue_flush(lc);
	mdb_cursor_close(cur);
	return rc;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int kl_store_load(struct kl_store *s, struct kl_table *t, struct kl_store_load_stats *st,
		  char *err, size_t errlen)
{
	struct kl_store_load_stats local;
	struct load_ctx lc;
	MDB_txn *txn;
	double t0 = mono_s();
	int rc;

	kl_errf(err, errlen, "%s", "");
	if (!s || !t)
		return -EINVAL;
	if (s->txn) {
		kl_errf(err, errlen, "store %s: a batch is open", s->path);
		return -EBUSY;
	}
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	lc = (struct load_ctx){.s = s, .t = t, .st = st, .err = err, .errlen = errlen};
	lc.ub = calloc(1, sizeof(*lc.ub));
	if (!lc.ub) {
		kl_errf(err, errlen, "store %s: out of memory", s->path);
		return -ENOMEM;
	}
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		kl_errf(err, errlen, "store %s: cannot read: %s", s->path, mdb_strerror(rc));
		free(lc.ub);
		return mdb_to_errno(rc);
	}
	/* Groups first: UEs name them (the table does not require it, operators reading a
	 * half-loaded table in a failure report would). */
	static const unsigned order[KL_TK__COUNT] = {KL_TK_GROUP, KL_TK_EMSE, KL_TK_UE, KL_TK_E2M,
						     KL_TK_APPID, KL_TK_PAIR};
	rc = 0;
	for (unsigned i = 0; i < KL_TK__COUNT && !rc; i++)
		rc = load_kind(&lc, txn, order[i]);
	mdb_txn_abort(txn);
	kl_memzero(lc.ub, sizeof(*lc.ub));
	free(lc.ub);
	st->seconds = mono_s() - t0;
	return rc;
}

/* ---- stats ------------------------------------------------------------------------------------ */

int kl_store_stats(struct kl_store *s, struct kl_store_stats *out)
{
	char file[PATH_MAX];
	MDB_envinfo info;
	MDB_txn *txn;
	MDB_stat ms;
	MDB_val k, v;
	struct stat fst;
	int rc;

	if (!s || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_to_errno(rc);
	for (unsigned i = 0; i < KL_TK__COUNT; i++) {
		if (mdb_stat(txn, s->dbi[i], &ms))
			continue;
		out->entries[i] = ms.ms_entries;
		if (i == KL_TK_UE)
			out->ue_bytes = (uint64_t)(ms.ms_branch_pages + ms.ms_leaf_pages +
						   ms.ms_overflow_pages) * ms.ms_psize;
	}
	k = (MDB_val){7, "created"};
	if (!mdb_get(txn, s->meta, &k, &v) && v.mv_size == 8)
		out->created = get_le64(v.mv_data);
	k = (MDB_val){6, "schema"};
	if (!mdb_get(txn, s->meta, &k, &v) && v.mv_size == 4)
		out->schema = get_le32(v.mv_data);
	mdb_txn_abort(txn);
	if (!mdb_env_info(s->env, &info) && !mdb_env_stat(s->env, &ms)) {
		out->used_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
		out->map_size = info.me_mapsize;
	}
	snprintf(file, sizeof(file), "%s/data.mdb", s->path);
	if (!stat(file, &fst))
		out->file_bytes = (uint64_t)fst.st_size;
	out->bytes_per_ue = out->entries[KL_TK_UE] ?
				    (double)out->ue_bytes / (double)out->entries[KL_TK_UE] : 0;
	memcpy(out->kek_kcv, s->kek_kcv, KL_KCV_LEN);
	out->kek_secure_heap = (uint8_t)s->kek_secure;
	return 0;
}

/* ---- online backup ------------------------------------------------------------------------------ */

struct st_backup {
	pthread_t thread;
	MDB_env *env;
	int done; /* set (release) by the thread when it has finished */
	struct kl_store_backup_result r;
	char tmp[PATH_MAX];
};

/* fsync the directory holding file, so that the new name is durable. */
static int sync_dir_of(const char *file)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, rc = 0;

	snprintf(dir, sizeof(dir), "%s", file);
	slash = strrchr(dir, '/');
	if (!slash)
		return -EINVAL;
	slash[slash == dir] = '\0'; /* "/x" -> "/" */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

static void *backup_main(void *arg)
{
	struct st_backup *b = arg;
	struct kl_store_backup_result *r = &b->r;
	double t0 = mono_s();
	struct stat st;
	int fd, m;

	fd = mkostemp(b->tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0) {
		r->rc = -errno;
		snprintf(r->msg, sizeof(r->msg), "cannot create a temporary file beside %.200s: %s",
			 r->file, strerror(-r->rc));
		goto out;
	}
	m = mdb_env_copyfd2(b->env, fd, MDB_CP_COMPACT);
	if (m) {
		r->rc = mdb_to_errno(m);
		snprintf(r->msg, sizeof(r->msg), "copy failed: %s", mdb_strerror(m));
	} else if (fsync(fd) || fstat(fd, &st)) {
		r->rc = -errno;
		snprintf(r->msg, sizeof(r->msg), "cannot write %.200s: %s", b->tmp, strerror(-r->rc));
	} else {
		r->bytes = (uint64_t)st.st_size;
	}
	close(fd);
	/* link, not rename: an existing file (made meanwhile) is never replaced */
	if (!r->rc && link(b->tmp, r->file)) {
		r->rc = -errno;
		snprintf(r->msg, sizeof(r->msg), "%.200s: %s", r->file,
			 r->rc == -EEXIST ? "exists (a backup never overwrites a file)"
					  : strerror(-r->rc));
	}
	unlink(b->tmp);
	if (!r->rc && (r->rc = sync_dir_of(r->file)) != 0)
		snprintf(r->msg, sizeof(r->msg), "cannot sync the directory of %.200s: %s", r->file,
			 strerror(-r->rc));
out:
	r->seconds = mono_s() - t0;
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

int kl_store_backup_start(struct kl_store *s, const char *file, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	struct st_backup *b;
	struct stat st;
	char *slash;
	int rc;

	kl_errf(err, errlen, "%s", "");
	if (!s || !file || file[0] != '/' || strlen(file) >= sizeof(dir) - 16) {
		kl_errf(err, errlen, "backup: the file must be an absolute path (at most %zu bytes)",
			sizeof(dir) - 17);
		return -EINVAL;
	}
	if (s->bk) {
		kl_errf(err, errlen, "backup: a backup is running: wait for it to finish");
		return -EBUSY;
	}
	if (!lstat(file, &st)) {
		kl_errf(err, errlen, "backup: %s exists (a backup never overwrites a file)", file);
		return -EEXIST;
	}
	if (errno != ENOENT) {
		rc = -errno;
		kl_errf(err, errlen, "backup: %s: %s", file, strerror(-rc));
		return rc;
	}
	snprintf(dir, sizeof(dir), "%s", file);
	slash = strrchr(dir, '/');
	slash[slash == dir] = '\0'; /* "/x" -> "/" */
	rc = stat(dir, &st) ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	if (rc) {
		kl_errf(err, errlen, "backup: directory %s: %s", dir, strerror(-rc));
		return rc;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		kl_errf(err, errlen, "backup: out of memory");
		return -ENOMEM;
	}
	b->env = s->env;
	snprintf(b->r.file, sizeof(b->r.file), "%s", file);
	snprintf(b->tmp, sizeof(b->tmp), "%s.tmp.XXXXXX", file);
	/* MDB_NOTLS: the thread's read transaction is not tied to the control thread */
	rc = pthread_create(&b->thread, NULL, backup_main, b);
	if (rc) {
		free(b);
		kl_errf(err, errlen, "backup: cannot start a thread: %s", strerror(rc));
		return -rc;
	}
	s->bk = b;
	return 0;
}

int kl_store_backup_poll(struct kl_store *s, struct kl_store_backup_result *r)
{
	if (!s || !s->bk)
		return -ENOENT;
	if (!__atomic_load_n(&s->bk->done, __ATOMIC_ACQUIRE))
		return 0;
	pthread_join(s->bk->thread, NULL);
	if (r)
		*r = s->bk->r;
	free(s->bk);
	s->bk = NULL;
	return 1;
}

static void backup_join(struct kl_store *s)
{
	if (!s->bk)
		return;
	pthread_join(s->bk->thread, NULL);
	free(s->bk);
	s->bk = NULL;
}

/* ---- the NAF Key Center's issued keys and blocklists ------------------------------------------ */

#define NAF_TYPE 'N'
#define NAF_META_MAX (8 + 8 + 1 + KL_KCV_LEN + 1 + KL_STORE_NAF_BTID_MAX + 2 + \
		      KL_STORE_NAF_ID_MAX + 1 + KL_STORE_NAF_DEVICE_MAX)
#define NAF_WRAP_MAX (((KL_STORE_NAF_KEY_LEN + BIND_LEN + 7) & ~7) + 8)
#define NAF_REC_MAX (REC_HDR + NAF_META_MAX + NAF_WRAP_MAX)
#define NAF_HASH_LEN 32
#define BLOCK_VAL_LEN 9

static const char naf_id_label[] = "keyline-naf-id-v1";
static const char naf_bind_label[] = "keyline-store-naf-v1";

static int printable(const char *p, size_t min, size_t max, int space_ok)
{
	size_t n = p ? strnlen(p, max + 1) : 0;

	if (n < min || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] < (space_ok ? 0x20 : 0x21) || p[i] > 0x7e)
			return 0;
	return 1;
}

int kl_store_naf_check(const struct kl_store_naf *n)
{
	return n && printable(n->btid, 1, KL_STORE_NAF_BTID_MAX, 0) && n->naf_len >= 1 &&
			       n->naf_len <= KL_STORE_NAF_ID_MAX &&
			       printable(n->device_id, 1, KL_STORE_NAF_DEVICE_MAX, 1)
		       ? 0
		       : -EINVAL;
}

int kl_store_naf_block_check(enum kl_store_naf_block_kind kind, const char *value)
{
	size_t n;

	if (kind == KL_STORE_NAF_DEVICE)
		return printable(value, 1, KL_STORE_NAF_DEVICE_MAX, 1) ? 0 : -EINVAL;
	if (kind != KL_STORE_NAF_SERIAL || !value)
		return -EINVAL;
	n = strnlen(value, KL_STORE_NAF_SERIAL_MAX + 1);
	if (n < 1 || n > KL_STORE_NAF_SERIAL_MAX || (n > 1 && value[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!((value[i] >= '0' && value[i] <= '9') || (value[i] >= 'a' && value[i] <= 'f')))
			return -EINVAL;
	return 0;
}

/* SHA-256 over label and parts (pairs of pointer, length; a NULL pointer ends them). */
static int naf_sha(struct kl_store *s, const char *label, uint8_t out[32], ...)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	const void *p;
	va_list ap;
	int ok;

	ok = EVP_DigestInit_ex2(s->md, s->sha256, NULL) == 1 &&
	     EVP_DigestUpdate(s->md, label, strlen(label)) == 1;
	va_start(ap, out);
	while (ok && (p = va_arg(ap, const void *)) != NULL) {
		size_t n = va_arg(ap, size_t);

		ok = EVP_DigestUpdate(s->md, p, n) == 1;
	}
	va_end(ap);
	if (!ok || EVP_DigestFinal_ex(s->md, md, &mdlen) != 1 || mdlen < 32) {
		ERR_clear_error();
		return -EIO;
	}
	memcpy(out, md, 32);
	return 0;
}

/* The identity part of the meta (u8 btid_len | btid | u16 naf_len | naf | u8 dev_len | dev):
 * also what the LMDB key hashes. @return its length. */
static size_t naf_ident(const struct kl_store_naf *n, uint8_t *p)
{
	size_t bl = strlen(n->btid), dl = strlen(n->device_id), o = 0;

	p[o++] = (uint8_t)bl;
	memcpy(p + o, n->btid, bl);
	o += bl;
	put_le16(p + o, n->naf_len);
	o += 2;
	memcpy(p + o, n->naf_id, n->naf_len);
	o += n->naf_len;
	p[o++] = (uint8_t)dl;
	memcpy(p + o, n->device_id, dl);
	return o + dl;
}

static int naf_key(struct kl_store *s, const struct kl_store_naf *n, uint8_t key[NAF_HASH_LEN])
{
	uint8_t id[NAF_META_MAX];
	size_t il = naf_ident(n, id);

	return naf_sha(s, naf_id_label, key, id, il, (const void *)NULL);
}

/* Build the record of n (key NULL: invalidated). @return its length or -errno. */
static long naf_rec_build(struct kl_store *s, const struct kl_store_naf *n, const uint8_t *key,
			  const uint8_t lkey[NAF_HASH_LEN], uint8_t *rec)
{
	uint8_t pt[KL_STORE_NAF_KEY_LEN + BIND_LEN], md[32], *m = rec + REC_HDR;
	size_t slen = key ? KL_STORE_NAF_KEY_LEN : 0, mlen, wlen;
	long w;

	wlen = ((slen + BIND_LEN + 7) & ~(size_t)7) + 8;
	put_le64(m, n->issued);
	put_le64(m + 8, n->expiry);
	m[16] = key ? 0 : 1;
	if (key && kl_kcv(key, KL_STORE_NAF_KEY_LEN, m + 17))
		return -EIO;
	if (!key)
		memcpy(m + 17, n->kcv, KL_KCV_LEN);
	mlen = 17 + KL_KCV_LEN + naf_ident(n, m + 17 + KL_KCV_LEN);
	rec[0] = REC_FORMAT;
	rec[1] = NAF_TYPE;
	put_le16(rec + 2, (uint16_t)mlen);
	put_le16(rec + 4, (uint16_t)wlen);
	if (naf_sha(s, naf_bind_label, md, lkey, (size_t)NAF_HASH_LEN, rec, REC_HDR + mlen,
		    (const void *)NULL))
		return -EIO;
	if (key)
		memcpy(pt, key, slen);
	memcpy(pt + slen, md, BIND_LEN);
	w = st_wrap(s, pt, slen + BIND_LEN, rec + REC_HDR + mlen, NAF_WRAP_MAX);
	kl_memzero(pt, sizeof(pt));
	if (w < 0)
		return w;
	return (size_t)w == wlen ? (long)(REC_HDR + mlen + wlen) : -EIO;
}

/* Check and open one record: *n filled, key (32) the unwrapped key (zero when invalidated).
 * @return 0 or an enum rec_fail. */
static int naf_rec_open(struct kl_store *s, const MDB_val *k, const MDB_val *v,
			struct kl_store_naf *n, uint8_t key[KL_STORE_NAF_KEY_LEN])
{
	const uint8_t *r = v->mv_data, *m;
	uint8_t pt[NAF_WRAP_MAX], md[32], lkey[NAF_HASH_LEN];
	size_t mlen, wlen, o, bl, dl;
	long got;
	int why = 0;

	memset(n, 0, sizeof(*n));
	memset(key, 0, KL_STORE_NAF_KEY_LEN);
	if (k->mv_size != NAF_HASH_LEN || v->mv_size < REC_HDR)
		return REC_MALFORMED;
	mlen = get_le16(r + 2);
	wlen = get_le16(r + 4);
	if (r[0] != REC_FORMAT || r[1] != NAF_TYPE || mlen > NAF_META_MAX || mlen < 25 ||
	    wlen < 24 || wlen % 8 || wlen > NAF_WRAP_MAX || REC_HDR + mlen + wlen != v->mv_size)
		return REC_MALFORMED;
	m = r + REC_HDR;
	n->issued = get_le64(m);
	n->expiry = get_le64(m + 8);
	n->invalidated = m[16] & 1;
	memcpy(n->kcv, m + 17, KL_KCV_LEN);
	o = 17 + KL_KCV_LEN;
	bl = m[o++];
	if (m[16] > 1 || o + bl + 2 > mlen)
		return REC_MALFORMED;
	memcpy(n->btid, m + o, bl);
	o += bl;
	n->naf_len = get_le16(m + o);
	o += 2;
	if (n->naf_len > KL_STORE_NAF_ID_MAX || o + n->naf_len + 1 > mlen)
		return REC_MALFORMED;
	memcpy(n->naf_id, m + o, n->naf_len);
	o += n->naf_len;
	dl = m[o++];
	if (dl > KL_STORE_NAF_DEVICE_MAX || o + dl != mlen)
		return REC_MALFORMED;
	memcpy(n->device_id, m + o, dl);
	got = st_unwrap(s, m + mlen, wlen, pt, sizeof(pt));
	if (got == -ENOMEM)
		return REC_NOCTX;
	if (got < 0)
		return REC_UNWRAP;
	if ((size_t)got != (n->invalidated ? 0 : KL_STORE_NAF_KEY_LEN) + BIND_LEN) {
		why = REC_MALFORMED;
	} else if (naf_sha(s, naf_bind_label, md, k->mv_data, (size_t)NAF_HASH_LEN, r,
			   REC_HDR + mlen, (const void *)NULL) ||
		   CRYPTO_memcmp(md, pt + got - BIND_LEN, BIND_LEN)) {
		why = REC_BIND;
	} else if (kl_store_naf_check(n) || naf_key(s, n, lkey) ||
		   memcmp(lkey, k->mv_data, NAF_HASH_LEN)) {
		why = REC_CONTENT;
	} else if (!n->invalidated) {
		uint8_t kcv[KL_KCV_LEN];

		memcpy(key, pt, KL_STORE_NAF_KEY_LEN);
		if (kl_kcv(key, KL_STORE_NAF_KEY_LEN, kcv) || memcmp(kcv, n->kcv, KL_KCV_LEN))
			why = REC_CONTENT;
	}
	kl_memzero(pt, sizeof(pt));
	if (why)
		kl_memzero(key, KL_STORE_NAF_KEY_LEN);
	return why;
}

static int naf_fail(struct kl_store *s, int mrc, const char *what)
{
	if (mrc == MDB_MAP_FULL)
		snprintf(s->msg, sizeof(s->msg),
			 "store %s: %s NAF key: the store is full (map_size %" PRIu64 " bytes)",
			 s->path, what, s->map_size);
	else
		snprintf(s->msg, sizeof(s->msg), "store %s: %s NAF key: %s", s->path, what,
			 mdb_strerror(mrc));
	return mdb_to_errno(mrc);
}

int kl_store_naf_put(struct kl_store *s, const struct kl_store_naf *n, const uint8_t *key)
{
	uint8_t rec[NAF_REC_MAX], lkey[NAF_HASH_LEN];
	MDB_val k = { NAF_HASH_LEN, lkey }, v;
	MDB_txn *txn;
	long len;
	int rc, broken = 0;

	if (!s || kl_store_naf_check(n) || (!key && !n->invalidated) || (key && n->invalidated))
		return -EINVAL;
	if (naf_key(s, n, lkey) || (len = naf_rec_build(s, n, key, lkey, rec)) < 0) {
		snprintf(s->msg, sizeof(s->msg), "store %s: cannot wrap a NAF key record", s->path);
		kl_memzero(rec, sizeof(rec));
		return -EIO;
	}
	rc = w_begin(s, &txn);
	if (!rc) {
		v = (MDB_val){ (size_t)len, rec };
		rc = mdb_put(txn, s->naf, &k, &v, 0);
		if (rc) {
			broken = 1;
			rc = naf_fail(s, rc, "put");
		} else if ((rc = note(s, db_naf, lkey, sizeof(lkey), rec, (size_t)len, NULL, 0))) {
			broken = 1;
		}
		rc = w_end(s, txn, rc, broken);
	}
	kl_memzero(rec, sizeof(rec));
	return rc;
}

/* Delete key k from dbi. */
static int del_in(struct kl_store *s, MDB_dbi dbi, MDB_val *k, const char *what)
{
	MDB_txn *txn;
	int rc, broken = 0;

	rc = w_begin(s, &txn);
	if (rc)
		return rc;
	rc = mdb_del(txn, dbi, k, NULL);
	if (rc == MDB_NOTFOUND) {
		rc = -ENOENT;
	} else if (rc) {
		broken = 1;
		rc = naf_fail(s, rc, what);
	} else if ((rc = note(s, dbi == s->naf ? db_naf : db_nafblock, k->mv_data, k->mv_size,
			      NULL, 0, NULL, 0)) != 0) {
		broken = 1;
	}
	return w_end(s, txn, rc, broken);
}

int kl_store_naf_del(struct kl_store *s, const struct kl_store_naf *n)
{
	uint8_t lkey[NAF_HASH_LEN];
	MDB_val k = { NAF_HASH_LEN, lkey };

	if (!s || kl_store_naf_check(n))
		return -EINVAL;
	if (naf_key(s, n, lkey))
		return -EIO;
	return del_in(s, s->naf, &k, "delete");
}

/* The issued key at LMDB key lkey, unwrapped and checked: 0 (*n and key filled), -ENOENT,
 * -EBADMSG, -ENOMEM, -errno (*n as it was). */
static int naf_read(struct kl_store *s, const uint8_t lkey[NAF_HASH_LEN], struct kl_store_naf *n,
		    uint8_t key[KL_STORE_NAF_KEY_LEN])
{
	MDB_val k = { NAF_HASH_LEN, (void *)(uintptr_t)lkey }, v;
	MDB_txn *txn;
	int rc, broken = 0;

	rc = r_begin(s, &txn);
	if (rc)
		return rc;
	rc = mdb_get(txn, s->naf, &k, &v);
	if (rc == MDB_NOTFOUND) {
		rc = -ENOENT;
	} else if (rc) {
		broken = 1;
		rc = naf_fail(s, rc, "read");
	} else {
		struct kl_store_naf got;

		rc = naf_rec_open(s, &k, &v, &got, key);
		if (rc) {
			snprintf(s->msg, sizeof(s->msg),
				 "store %s: the stored NAF key record is corrupt (%s)", s->path,
				 rec_fail_text(rc));
			rc = rc == REC_NOCTX ? -ENOMEM : -EBADMSG;
		} else {
			*n = got;
		}
	}
	r_end(s, txn, broken);
	return rc;
}

int kl_store_naf_get(struct kl_store *s, struct kl_store_naf *n, uint8_t key[32])
{
	uint8_t lkey[NAF_HASH_LEN];

	if (!s || !key || kl_store_naf_check(n))
		return -EINVAL;
	if (naf_key(s, n, lkey))
		return -EIO;
	return naf_read(s, lkey, n, key);
}

int kl_store_naf_key(struct kl_store *s, const struct kl_store_naf *n, uint8_t out[32])
{
	if (!s || !out || kl_store_naf_check(n))
		return -EINVAL;
	return naf_key(s, n, out);
}

int kl_store_naf_get_at(struct kl_store *s, const uint8_t *lkey, size_t len,
			struct kl_store_naf *n)
{
	uint8_t key[KL_STORE_NAF_KEY_LEN];
	int rc;

	if (!s || !lkey || len != NAF_HASH_LEN || !n)
		return -EINVAL;
	rc = naf_read(s, lkey, n, key);
	kl_memzero(key, sizeof(key));
	return rc;
}

/* Walk dbi in a read transaction of its own: each record to fn. */
static int naf_walk(struct kl_store *s, MDB_dbi dbi,
		    int (*fn)(struct kl_store *s, const MDB_val *k, const MDB_val *v, void *ctx,
			      uint64_t recno, char *err, size_t errlen),
		    void *ctx, char *err, size_t errlen)
{
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	uint64_t recno = 0;
	int rc, m;

	if (s->txn)
		return -EBUSY;
	m = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (m) {
		kl_errf(err, errlen, "store %s: cannot read: %s", s->path, mdb_strerror(m));
		return mdb_to_errno(m);
	}
	m = mdb_cursor_open(txn, dbi, &cur);
	rc = 0;
	if (!m) {
		while (!rc &&
		       (m = mdb_cursor_get(cur, &k, &v, recno ? MDB_NEXT : MDB_FIRST)) == 0)
			rc = fn(s, &k, &v, ctx, ++recno, err, errlen);
		mdb_cursor_close(cur);
	}
	if (!rc && m && m != MDB_NOTFOUND) {
		kl_errf(err, errlen, "store %s: cannot read the NAF databases: %s", s->path,
			mdb_strerror(m));
		rc = mdb_to_errno(m);
	}
	mdb_txn_abort(txn);
	return rc;
}

struct naf_each_ctx {
	int (*cb)(void *arg, const struct kl_store_naf *n);
	int (*bcb)(void *arg, enum kl_store_naf_block_kind kind, const char *value, uint64_t added);
	void *arg;
};

static int naf_each_one(struct kl_store *s, const MDB_val *k, const MDB_val *v, void *ctx,
			uint64_t recno, char *err, size_t errlen)
{
	struct naf_each_ctx *c = ctx;
	struct kl_store_naf n;
	uint8_t key[KL_STORE_NAF_KEY_LEN];
	int why = naf_rec_open(s, k, v, &n, key);

	kl_memzero(key, sizeof(key));
	if (why) {
		kl_errf(err, errlen, "store %s: NAF key record %" PRIu64 " is corrupt (%s): %s",
			s->path, recno, rec_fail_text(why), KL_STORE_RESTORE_HINT);
		return why == REC_NOCTX ? -ENOMEM : -EBADMSG;
	}
	return c->cb(c->arg, &n);
}

int kl_store_naf_each(struct kl_store *s, int (*cb)(void *arg, const struct kl_store_naf *n),
		      void *arg, char *err, size_t errlen)
{
	struct naf_each_ctx c = { .cb = cb, .arg = arg };

	if (!s || !cb)
		return -EINVAL;
	return naf_walk(s, s->naf, naf_each_one, &c, err, errlen);
}

/* The blocklist's LMDB key: kind || value. @return its length, or 0 for a bad value. */
static size_t block_key(enum kl_store_naf_block_kind kind, const char *value, uint8_t *out)
{
	size_t n;

	if (kl_store_naf_block_check(kind, value))
		return 0;
	n = strlen(value);
	out[0] = (uint8_t)kind;
	memcpy(out + 1, value, n);
	return n + 1;
}

int kl_store_naf_block(struct kl_store *s, enum kl_store_naf_block_kind kind, const char *value,
		       int on, uint64_t now)
{
	uint8_t kb[1 + KL_STORE_NAF_DEVICE_MAX], val[BLOCK_VAL_LEN];
	MDB_val k = { 0, kb }, v = { sizeof(val), val };
	MDB_txn *txn;
	int rc, broken = 0;

	if (!s || (k.mv_size = block_key(kind, value, kb)) == 0)
		return -EINVAL;
	if (!on)
		return del_in(s, s->nafblock, &k, "unblock");
	val[0] = REC_FORMAT;
	put_le64(val + 1, now);
	rc = w_begin(s, &txn);
	if (rc)
		return rc;
	rc = mdb_put(txn, s->nafblock, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		rc = 0;
	} else if (rc) {
		broken = 1;
		rc = naf_fail(s, rc, "block");
	} else if ((rc = note(s, db_nafblock, kb, k.mv_size, val, sizeof(val), NULL, 0)) != 0) {
		broken = 1;
	}
	return w_end(s, txn, rc, broken);
}

int kl_store_naf_block_get_at(struct kl_store *s, const uint8_t *key, size_t len,
			      enum kl_store_naf_block_kind *kind,
			      char value[KL_STORE_NAF_DEVICE_MAX + 1])
{
	MDB_val k = { len, (void *)(uintptr_t)key }, v;
	MDB_txn *txn;
	int rc, broken = 0;

	if (!s || !key || !kind || !value || len < 2 || len > KL_STORE_NAF_DEVICE_MAX + 1 ||
	    (key[0] != KL_STORE_NAF_DEVICE && key[0] != KL_STORE_NAF_SERIAL))
		return -EINVAL;
	*kind = (enum kl_store_naf_block_kind)key[0];
	memcpy(value, key + 1, len - 1);
	value[len - 1] = '\0';
	if (strlen(value) != len - 1 || kl_store_naf_block_check(*kind, value))
		return -EINVAL;
	rc = r_begin(s, &txn);
	if (rc)
		return rc;
	rc = mdb_get(txn, s->nafblock, &k, &v);
	if (rc == MDB_NOTFOUND) {
		rc = -ENOENT;
	} else if (rc) {
		broken = 1;
		rc = naf_fail(s, rc, "read");
	}
	r_end(s, txn, broken);
	return rc;
}

/* Check a blocklist record: 0 (*kind, value filled) or REC_MALFORMED. */
static int block_rec_open(const MDB_val *k, const MDB_val *v, enum kl_store_naf_block_kind *kind,
			  char value[KL_STORE_NAF_DEVICE_MAX + 1])
{
	const uint8_t *kb = k->mv_data, *vb = v->mv_data;

	if (k->mv_size < 2 || k->mv_size > KL_STORE_NAF_DEVICE_MAX + 1 ||
	    (kb[0] != 'd' && kb[0] != 's') || v->mv_size != BLOCK_VAL_LEN || vb[0] != REC_FORMAT)
		return REC_MALFORMED;
	*kind = kb[0] == 's' ? KL_STORE_NAF_SERIAL : KL_STORE_NAF_DEVICE;
	memcpy(value, kb + 1, k->mv_size - 1);
	value[k->mv_size - 1] = '\0';
	return kl_store_naf_block_check(*kind, value) ? REC_MALFORMED : 0;
}

static int block_each_one(struct kl_store *s, const MDB_val *k, const MDB_val *v, void *ctx,
			  uint64_t recno, char *err, size_t errlen)
{
	struct naf_each_ctx *c = ctx;
	char value[KL_STORE_NAF_DEVICE_MAX + 1];
	enum kl_store_naf_block_kind kind;

	if (block_rec_open(k, v, &kind, value)) {
		kl_errf(err, errlen, "store %s: NAF blocklist record %" PRIu64 " is malformed: %s",
			s->path, recno, KL_STORE_RESTORE_HINT);
		return -EBADMSG;
	}
	return c->bcb(c->arg, kind, value, get_le64((const uint8_t *)v->mv_data + 1));
}

int kl_store_naf_each_blocked(struct kl_store *s,
			      int (*cb)(void *arg, enum kl_store_naf_block_kind kind,
					const char *value, uint64_t added),
			      void *arg, char *err, size_t errlen)
{
	struct naf_each_ctx c = { .bcb = cb, .arg = arg };

	if (!s || !cb)
		return -EINVAL;
	return naf_walk(s, s->nafblock, block_each_one, &c, err, errlen);
}

int kl_store_naf_count(struct kl_store *s, uint64_t *keys, uint64_t *blocked)
{
	MDB_txn *txn;
	MDB_stat ms;
	int rc;

	if (!s)
		return -EINVAL;
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_to_errno(rc);
	if (keys)
		*keys = mdb_stat(txn, s->naf, &ms) ? 0 : ms.ms_entries;
	if (blocked)
		*blocked = mdb_stat(txn, s->nafblock, &ms) ? 0 : ms.ms_entries;
	mdb_txn_abort(txn);
	return 0;
}

/* ---- the replica side (kl_store_repl.h) ------------------------------------------------------- */

const char *kl_store_db_name(enum kl_table_kind kind)
{
	return (unsigned)kind < KL_TK__COUNT ? kind_names[kind] : NULL;
}

int kl_store_db_kind(const char *db)
{
	for (unsigned i = 0; db && i < KL_TK__COUNT; i++)
		if (!strcmp(db, kind_names[i]))
			return (int)i;
	return -1;
}

/* A replicated database by name: 0 with its handle and this file's name string, or -EINVAL. */
static int db_lookup(struct kl_store *s, const char *db, MDB_dbi *dbi, const char **name)
{
	int kind = kl_store_db_kind(db);

	if (kind >= 0) {
		*dbi = s->dbi[kind];
		*name = kind_names[kind];
	} else if (db && !strcmp(db, db_naf)) {
		*dbi = s->naf;
		*name = db_naf;
	} else if (db && !strcmp(db, db_nafblock)) {
		*dbi = s->nafblock;
		*name = db_nafblock;
	} else {
		return -EINVAL;
	}
	return 0;
}

/* A replicated database's place in view[]: the table kinds, then naf, nafblock; -1 unknown. */
static int db_index(const char *db)
{
	int kind = kl_store_db_kind(db);

	if (kind >= 0)
		return kind;
	if (db && !strcmp(db, db_naf))
		return KL_TK__COUNT;
	if (db && !strcmp(db, db_nafblock))
		return KL_TK__COUNT + 1;
	return -1;
}

int kl_store_set_view(struct kl_store *s, const char *db, kl_store_view_fn view, void *arg)
{
	int i = db_index(db);

	if (!s || i < 0)
		return -EINVAL;
	s->view[i].fn = view;
	s->view[i].arg = view ? arg : NULL;
	return 0;
}

/* What kl_store_load takes of an authentic record beyond its binding. @return 0 or
 * REC_CONTENT. */
static int rec_content(unsigned kind, const MDB_val *k, const struct rec_view *rv)
{
	struct kl_group_ref g[KL_TABLE_UE_GROUPS];
	unsigned ng;
	uint64_t ex;
	uint8_t svc;
	int rc = REC_CONTENT;

	switch (kind) {
	case KL_TK_UE:
		if (rv->slen <= PSK_MAX && !ue_decode_svc(rv, g, &ng, &ex, &svc))
			rc = 0;
		break;
	case KL_TK_GROUP: {
		struct kl_group grp;

		if (k->mv_size == GROUP_KEY_LEN && !group_decode(rv, &grp))
			rc = 0;
		kl_memzero(&grp, sizeof(grp));
		break;
	}
	case KL_TK_EMSE:
		if (!rv->mlen && rv->slen >= 1 && rv->slen <= PSK_MAX)
			rc = 0;
		break;
	case KL_TK_E2M: {
		struct e2m_ring r;

		if (k->mv_size <= KL_TABLE_IMSI_MAX - 1 &&
		    imsi_len(k->mv_data, k->mv_size) == k->mv_size)
			rc = e2m_decode(rv, &r);
		kl_memzero(&r, sizeof(r));
		break;
	}
	case KL_TK_APPID:
		if (!rv->mlen && rv->slen >= 1 && rv->slen <= KL_TABLE_IMSI_MAX - 1 &&
		    imsi_len((const char *)rv->secret, rv->slen) == rv->slen)
			rc = 0;
		break;
	case KL_TK_PAIR:
		if (rv->mlen == 8 && rv->slen >= 1 && rv->slen <= PSK_MAX)
			rc = 0;
		break;
	default:
		break;
	}
	return rc;
}

/* Check a catalogue record of db (name) as the load would. @return 0 or an enum rec_fail. */
static int rec_check(struct kl_store *s, const char *db, const MDB_val *k, const MDB_val *v)
{
	int kind = kl_store_db_kind(db), why;

	if (kind >= 0) {
		struct rec_view rv;

		why = rec_open(s, (unsigned)kind, k, v, &rv);
		if (!why)
			why = rec_content((unsigned)kind, k, &rv);
		rv_wipe(&rv);
	} else if (db == db_naf) {
		struct kl_store_naf n;
		uint8_t key[KL_STORE_NAF_KEY_LEN];

		why = naf_rec_open(s, k, v, &n, key);
		kl_memzero(key, sizeof(key));
	} else {
		enum kl_store_naf_block_kind bk;
		char value[KL_STORE_NAF_DEVICE_MAX + 1];

		why = block_rec_open(k, v, &bk, value);
	}
	return why;
}

int kl_store_apply(struct kl_store *s, const char *db, const uint8_t *key, size_t key_len,
		   const uint8_t *value, size_t value_len, int64_t rev)
{
	MDB_val k = { key_len, (void *)(uintptr_t)key }, v = { value_len, (void *)(uintptr_t)value };
	const char *name;
	MDB_dbi dbi;
	MDB_txn *txn;
	int64_t stamp;
	int rc, m, why;

	if (!s || !key || !key_len || key_len > KL_TABLE_ID_MAX || rev <= 0 ||
	    db_lookup(s, db, &dbi, &name))
		return -EINVAL;
	s->msg[0] = '\0';
	if (value && (why = rec_check(s, name, &k, &v)) != 0) {
		snprintf(s->msg, sizeof(s->msg),
			 "store %s: a catalogue %s record at revision %" PRId64 " is refused (%s)",
			 s->path, name, rev, rec_fail_text(why));
		return why == REC_NOCTX ? -ENOMEM : -EBADMSG;
	}
	rc = w_begin(s, &txn);
	if (rc)
		return rc;
	m = stamp_get(s, txn, name, key, key_len, &stamp);
	if (!m && (stamp >= rev || -stamp >= rev)) { /* the entry holds this or a newer one */
		if (!s->txn)
			mdb_txn_abort(txn);
		return 0;
	}
	if (!m) {
		m = value ? mdb_put(txn, dbi, &k, &v, 0) : mdb_del(txn, dbi, &k, NULL);
		if (m == MDB_NOTFOUND)
			m = 0;
	}
	if (!m)
		m = stamp_put(s, txn, name, key, key_len, value ? rev : -rev);
	rc = m ? st_fail(s, m, "apply", (unsigned)kl_store_db_kind(name)) : 0;
	rc = w_end(s, txn, rc, m != 0);
	return rc ? rc : 1;
}

int kl_store_stamp(struct kl_store *s, const char *db, const uint8_t *key, size_t key_len,
		   int64_t *stamp)
{
	const char *name;
	MDB_dbi dbi;
	MDB_txn *txn;
	int rc, m;

	if (!s || !key || !key_len || key_len > KL_TABLE_ID_MAX || !stamp ||
	    db_lookup(s, db, &dbi, &name))
		return -EINVAL;
	rc = r_begin(s, &txn);
	if (rc)
		return rc;
	m = stamp_get(s, txn, name, key, key_len, stamp);
	r_end(s, txn, 0);
	return m ? st_fail(s, m, "read a stamp", KL_TK__COUNT) : 0;
}

static int sync_table(struct kl_store *s, struct kl_table *t, const char *db,
		      const uint8_t *key, size_t key_len);

int kl_store_sync_table(struct kl_store *s, struct kl_table *t, const char *db,
			const uint8_t *key, size_t key_len)
{
	int rc = sync_table(s, t, db, key, key_len), i = db_index(db);

	/* the other views of the database follow the store too, whatever the key table said */
	if (s && key && key_len && key_len <= KL_TABLE_ID_MAX && i >= 0 && s->view[i].fn)
		s->view[i].fn(s->view[i].arg, db, key, key_len);
	return rc;
}

static int sync_table(struct kl_store *s, struct kl_table *t, const char *db,
		      const uint8_t *key, size_t key_len)
{
	struct load_ctx lc = { .s = s, .t = t, .err = s ? s->msg : NULL, .errlen = sizeof(s->msg) };
	struct kl_store_load_stats st;
	struct rec_view rv;
	MDB_val k = { key_len, (void *)(uintptr_t)key }, v;
	MDB_txn *txn;
	int kind = kl_store_db_kind(db), rc, broken = 0;

	if (!s || !t || !key || !key_len || key_len > KL_TABLE_ID_MAX)
		return -EINVAL;
	if (kind < 0) /* the NAF Key Center's databases have no key table entry */
		return db && (!strcmp(db, db_naf) || !strcmp(db, db_nafblock)) ? 0 : -EINVAL;
	memset(&st, 0, sizeof(st));
	lc.st = &st;
	if (kind == KL_TK_UE) {
		rc = kl_store_load_ue(s, t, key, (uint16_t)key_len);
		if (rc != -ENOENT)
			return rc < 0 ? rc : 0;
		rc = kl_table_del(t, KL_TK_UE, key, (uint16_t)key_len);
		return rc == -ENOENT ? 0 : rc;
	}
	rc = r_begin(s, &txn);
	if (rc)
		return rc;
	rc = mdb_get(txn, s->dbi[kind], &k, &v);
	if (rc == MDB_NOTFOUND || (!rc && kind == KL_TK_E2M)) { /* a ring is rebuilt whole */
		int d = kl_table_del(t, (enum kl_table_kind)kind, key, (uint16_t)key_len);

		if (d < 0 && d != -ENOENT) {
			r_end(s, txn, 0);
			return d;
		}
	}
	if (rc == MDB_NOTFOUND) {
		rc = 0;
	} else if (rc) {
		broken = 1;
		rc = st_fail(s, rc, "read", (unsigned)kind);
	} else {
		rc = rec_open(s, (unsigned)kind, &k, &v, &rv);
		if (!rc)
			rc = load_one(&lc, (unsigned)kind, &k, &rv, 1);
		rv_wipe(&rv);
		if (rc > 0)
			rc = bad_rec(s, (unsigned)kind, rc);
	}
	r_end(s, txn, broken);
	return rc;
}

static const char meta_rev[] = "etcd_revision";

int64_t kl_store_revision(struct kl_store *s)
{
	MDB_val k = { sizeof(meta_rev) - 1, (void *)meta_rev }, v;
	MDB_txn *txn;
	int64_t rev = 0;
	int rc;

	if (!s)
		return -EINVAL;
	rc = r_begin(s, &txn);
	if (rc)
		return rc;
	rc = mdb_get(txn, s->meta, &k, &v);
	if (!rc && v.mv_size == 8)
		rev = (int64_t)get_le64(v.mv_data);
	r_end(s, txn, 0);
	if (rc && rc != MDB_NOTFOUND)
		return st_fail(s, rc, "read the revision", KL_TK__COUNT);
	return rev;
}

int kl_store_set_revision(struct kl_store *s, int64_t rev)
{
	uint8_t b[8];
	MDB_val k = { sizeof(meta_rev) - 1, (void *)meta_rev }, v = { 8, b };
	MDB_txn *txn;
	int rc, m;

	if (!s || rev < 0)
		return -EINVAL;
	rc = w_begin(s, &txn);
	if (rc)
		return rc;
	put_le64(b, (uint64_t)rev);
	m = mdb_put(txn, s->meta, &k, &v, 0);
	return w_end(s, txn, m ? st_fail(s, m, "write the revision", KL_TK__COUNT) : 0, m != 0);
}

/* Walk one database of txn: each entry with its stamp to cb. */
static int each_db(struct kl_store *s, MDB_txn *txn, MDB_dbi dbi, const char *name,
		   int (*cb)(void *arg, const char *db, const uint8_t *key, size_t key_len,
			     const uint8_t *value, size_t value_len, int64_t rev),
		   void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int64_t stamp;
	int rc = 0, m;

	m = mdb_cursor_open(txn, dbi, &cur);
	for (int op = MDB_FIRST; !m && !rc; op = MDB_NEXT) {
		m = mdb_cursor_get(cur, &k, &v, op);
		if (!m)
			m = stamp_get(s, txn, name, k.mv_data, k.mv_size, &stamp);
		if (!m)
			rc = cb(arg, name, k.mv_data, k.mv_size, v.mv_data, v.mv_size,
				stamp > 0 ? stamp : 0);
	}
	if (cur)
		mdb_cursor_close(cur);
	if (!rc && m && m != MDB_NOTFOUND)
		rc = st_fail(s, m, "read", KL_TK__COUNT);
	return rc;
}

int kl_store_each_record(struct kl_store *s,
			 int (*cb)(void *arg, const char *db, const uint8_t *key, size_t key_len,
				   const uint8_t *value, size_t value_len, int64_t rev),
			 void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, m = 0;

	if (!s || !cb)
		return -EINVAL;
	rc = r_begin(s, &txn);
	if (rc)
		return rc;
	for (unsigned i = 0; !rc && i < KL_TK__COUNT; i++)
		rc = each_db(s, txn, s->dbi[i], kind_names[i], cb, arg);
	if (!rc)
		rc = each_db(s, txn, s->naf, db_naf, cb, arg);
	if (!rc)
		rc = each_db(s, txn, s->nafblock, db_nafblock, cb, arg);
	/* the tombstones */
	if (!rc)
		m = mdb_cursor_open(txn, s->rev, &cur);
	for (int op = MDB_FIRST; !rc && !m; op = MDB_NEXT) {
		const char *name;
		const uint8_t *kb;
		size_t dl;
		MDB_dbi dbi;
		int64_t stamp;

		m = mdb_cursor_get(cur, &k, &v, op);
		if (m || v.mv_size != 8 || (stamp = (int64_t)get_le64(v.mv_data)) >= 0)
			continue;
		kb = k.mv_data;
		dl = strnlen((const char *)kb, k.mv_size);
		if (dl + 1 >= k.mv_size || db_lookup(s, (const char *)kb, &dbi, &name))
			continue; /* not a stamp this keylined wrote */
		rc = cb(arg, name, kb + dl + 1, k.mv_size - dl - 1, NULL, 0, -stamp);
	}
	if (cur)
		mdb_cursor_close(cur);
	if (!rc && m && m != MDB_NOTFOUND)
		rc = st_fail(s, m, "read the stamps", KL_TK__COUNT);
	r_end(s, txn, 0);
	return rc;
}

int kl_store_purge_tombstones(struct kl_store *s, int64_t rev)
{
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, m;

	if (!s)
		return -EINVAL;
	rc = w_begin(s, &txn);
	if (rc)
		return rc;
	m = mdb_cursor_open(txn, s->rev, &cur);
	for (int op = MDB_FIRST; !m; op = MDB_NEXT) {
		int64_t stamp;

		m = mdb_cursor_get(cur, &k, &v, op);
		if (!m && v.mv_size == 8 && (stamp = (int64_t)get_le64(v.mv_data)) < 0 &&
		    -stamp < rev)
			m = mdb_cursor_del(cur, 0);
	}
	if (cur)
		mdb_cursor_close(cur);
	if (m == MDB_NOTFOUND)
		m = 0;
	return w_end(s, txn, m ? st_fail(s, m, "purge tombstones", KL_TK__COUNT) : 0, m != 0);
}

long kl_store_kek_check(struct kl_store *s, uint8_t *out, size_t cap)
{
	MDB_val k = { 9, "kek_check" }, v;
	MDB_txn *txn;
	long n;
	int rc;

	if (!s || (!out && cap))
		return -EINVAL;
	rc = r_begin(s, &txn);
	if (rc)
		return rc;
	rc = mdb_get(txn, s->meta, &k, &v);
	if (!rc) {
		if (cap)
			memcpy(out, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
		n = (long)v.mv_size;
	} else {
		n = st_fail(s, rc, "read the KEK check value", KL_TK__COUNT);
	}
	r_end(s, txn, 0);
	return n;
}

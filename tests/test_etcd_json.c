/* SPDX-License-Identifier: BSD-3-Clause */
/* kl_etcd's pure codec (control/store/kl_etcd_json.c) on fixed inputs: base64 against RFC 4648's
 * vectors, prefix ends, the gateway's omissions (no kvs, no revision, no succeeded) read as
 * zero, 64-bit integers as strings and as JSON numbers, every wrong type refused naming the
 * field, error bodies classified (compacted, not found, unary and stream forms), watch messages
 * (created, PUT and DELETE events, a compaction). The client's other half, against real etcd, is
 * tests/test_etcd.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kl_etcd.h"

#define S(lit) lit, sizeof(lit) - 1

static void test_b64(void **state)
{
	/* RFC 4648 section 10 */
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					   "Zm9vYmFy" };
	char out[16];
	uint8_t dec[16];

	(void)state;
	for (int i = 0; i < 7; i++) {
		size_t n = strlen(plain[i]);

		assert_int_equal(kl_etcd_b64_len(n), strlen(enc[i]));
		kl_etcd_b64_encode((const uint8_t *)plain[i], n, out);
		assert_string_equal(out, enc[i]);
		assert_int_equal(kl_etcd_b64_decode(enc[i], strlen(enc[i]), dec), (long)n);
		assert_memory_equal(dec, plain[i], n);
	}
	assert_int_equal(kl_etcd_b64_decode(S("Zm9vYg"), dec), 4); /* padding optional */
	assert_int_equal(kl_etcd_b64_decode(S("Zm9vY"), dec), -1);  /* 1 char left over */
	assert_int_equal(kl_etcd_b64_decode(S("Zm9v!A=="), dec), -1);
	assert_int_equal(kl_etcd_b64_decode(S("Zm=v"), dec), -1);
	assert_int_equal(kl_etcd_b64_decode(S("A==="), dec), -1);
	assert_int_equal(kl_etcd_b64_decode(S("Zm9v\n"), dec), -1);
}

static void test_prefix_end(void **state)
{
	uint8_t out[4];

	(void)state;
	assert_int_equal(kl_etcd_prefix_end((const uint8_t *)"ab", 2, out), 2);
	assert_memory_equal(out, "ac", 2);
	assert_int_equal(kl_etcd_prefix_end((const uint8_t *)"a\xff\xff", 3, out), 1);
	assert_int_equal(out[0], 'b');
	assert_int_equal(kl_etcd_prefix_end((const uint8_t *)"\xff", 1, out), 1);
	assert_int_equal(out[0], 0); /* every key */
}

static void test_range(void **state)
{
	struct kl_etcd_range r;
	char err[256];

	(void)state;
	/* A real answer (etcd 3.4.23), with a value of bytes 00 01 02 ff. */
	assert_int_equal(kl_etcd_parse_range(S("{\"header\":{\"cluster_id\":\"15118495548433857066\","
		"\"member_id\":\"13668033151171901709\",\"revision\":\"2\",\"raft_term\":\"2\"},"
		"\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
		"\"version\":\"1\",\"value\":\"AAEC/w==\"}],\"count\":\"1\"}"), &r, err, sizeof(err)),
		0);
	assert_int_equal(r.hdr.revision, 2);
	assert_true(r.hdr.cluster_id == 15118495548433857066ull);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.more, 0);
	assert_int_equal(r.kvs[0].key_len, 3);
	assert_memory_equal(r.kvs[0].key, "foo", 4); /* NUL-terminated */
	assert_int_equal(r.kvs[0].value_len, 4);
	assert_memory_equal(r.kvs[0].value, "\x00\x01\x02\xff", 4);
	assert_int_equal(r.kvs[0].lease, 0);
	kl_etcd_range_free(&r);
	/* Omitted: kvs, count, more, revision; an empty value; numbers as JSON numbers. */
	assert_int_equal(kl_etcd_parse_range(S("{\"header\":{}}"), &r, err, sizeof(err)), 0);
	assert_int_equal(r.n, 0);
	assert_null(r.kvs);
	assert_int_equal(r.hdr.revision, 0);
	assert_int_equal(kl_etcd_parse_range(S("{\"header\":{\"revision\":7},\"more\":true,"
		"\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":5}]}"), &r, err, sizeof(err)), 0);
	assert_int_equal(r.hdr.revision, 7);
	assert_int_equal(r.more, 1);
	assert_int_equal(r.kvs[0].value_len, 0);
	assert_int_equal(r.kvs[0].mod_revision, 5);
	kl_etcd_range_free(&r);
}

static void refused(const char *body, const char *field)
{
	struct kl_etcd_range r;
	char err[256] = "";

	assert_int_equal(kl_etcd_parse_range(body, strlen(body), &r, err, sizeof(err)),
			 KL_ETCD_EPROTO);
	assert_int_equal(r.n, 0);
	assert_null(r.kvs);
	if (!strstr(err, field))
		fail_msg("%s: message \"%s\" does not name %s", body, err, field);
}

static void test_range_refused(void **state)
{
	(void)state;
	refused("", "not JSON");
	refused("[]", "not a JSON object");
	refused("{}", "header");
	refused("{\"header\":7}", "header");
	refused("{\"header\":{\"revision\":\"x\"}}", "revision");
	refused("{\"header\":{\"revision\":\"1e3\"}}", "revision");
	refused("{\"header\":{\"revision\":\"99999999999999999999\"}}", "revision");
	refused("{\"header\":{\"revision\":\"-5\"}}", "negative");
	refused("{\"header\":{\"revision\":1.5}}", "revision");
	refused("{\"header\":{\"member_id\":\"-1\"}}", "member_id");
	refused("{\"header\":{},\"more\":\"true\"}", "more");
	refused("{\"header\":{},\"kvs\":{}}", "kvs");
	refused("{\"header\":{},\"kvs\":[7]}", "kv");
	refused("{\"header\":{},\"kvs\":[{\"key\":\"!!\"}]}", "key");
	refused("{\"header\":{},\"kvs\":[{\"key\":\"YQ==\",\"value\":5}]}", "value");
	refused("{\"header\":{},\"kvs\":[{\"key\":\"YQ==\"},{\"key\":\"YQ=\"}]}", "key");
	refused("{\"header\":{},\"count\":\"-1\"}", "count");
	refused("{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"@@", "not JSON");
}

static void test_errors(void **state)
{
	struct kl_etcd_range r;
	char err[256];
	int code;

	(void)state;
	assert_int_equal(kl_etcd_parse_range(S("{\"error\":\"etcdserver: mvcc: required revision "
		"has been compacted\",\"message\":\"etcdserver: mvcc: required revision has been "
		"compacted\",\"code\":11}"), &r, err, sizeof(err)), KL_ETCD_ECOMPACTED);
	assert_non_null(strstr(err, "compacted"));
	assert_int_equal(kl_etcd_parse_error(S("{\"error\":\"etcdserver: requested lease not "
		"found\",\"message\":\"etcdserver: requested lease not found\",\"code\":5}"), &code,
		err, sizeof(err)), KL_ETCD_ENOTFOUND);
	assert_int_equal(code, 5);
	assert_int_equal(kl_etcd_parse_error(S("{\"error\":{\"grpc_code\":14,\"http_code\":503,"
		"\"message\":\"etcdserver: no leader\"}}"), &code, err, sizeof(err)), KL_ETCD_ESERVER);
	assert_int_equal(code, 14);
	assert_non_null(strstr(err, "no leader"));
	assert_int_equal(kl_etcd_parse_error(S("{\"error\":5}"), &code, err, sizeof(err)),
			 KL_ETCD_EPROTO);
	assert_int_equal(kl_etcd_parse_error(S("Not Found"), &code, err, sizeof(err)),
			 KL_ETCD_EPROTO);
	assert_int_equal(kl_etcd_parse_error(S("{\"error\":\"x\",\"code\":\"14\"}"), &code, err,
					     sizeof(err)), KL_ETCD_EPROTO);
}

static void test_txn_lease_status(void **state)
{
	struct kl_etcd_txn_result t;
	struct kl_etcd_lease l;
	struct kl_etcd_status st;
	struct kl_etcd_header h;
	int64_t d;
	char err[256];

	(void)state;
	/* The failure branch of a real answer: no "succeeded", a range and a delete. */
	assert_int_equal(kl_etcd_parse_txn(S("{\"header\":{\"revision\":\"2\"},\"responses\":["
		"{\"response_range\":{\"header\":{\"revision\":\"2\"},\"kvs\":[{\"key\":\"Zm9v\","
		"\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"}],"
		"\"count\":\"1\"}},{\"response_delete_range\":{\"header\":{\"revision\":\"2\"},"
		"\"deleted\":\"3\"}},{\"response_put\":{\"header\":{}}}]}"), &t, err, sizeof(err)), 0);
	assert_int_equal(t.succeeded, 0);
	assert_int_equal(t.n, 3);
	assert_int_equal(t.res[0].kind, KL_ETCD_OP_RANGE);
	assert_int_equal(t.res[0].range.n, 1);
	assert_memory_equal(t.res[0].range.kvs[0].value, "bar", 3);
	assert_int_equal(t.res[1].kind, KL_ETCD_OP_DELETE);
	assert_int_equal(t.res[1].deleted, 3);
	assert_int_equal(t.res[2].kind, KL_ETCD_OP_PUT);
	kl_etcd_txn_result_free(&t);
	assert_int_equal(kl_etcd_parse_txn(S("{\"header\":{},\"succeeded\":true,\"responses\":[{"
		"\"response_txn\":{}}]}"), &t, err, sizeof(err)), KL_ETCD_EPROTO);
	assert_int_equal(t.n, 0);
	assert_null(t.res);
	/* Keep-alive answer (in "result"), one of a lease gone (no TTL), grant. */
	assert_int_equal(kl_etcd_parse_lease(S("{\"result\":{\"header\":{\"revision\":\"2\"},"
		"\"ID\":\"4111120499740561673\",\"TTL\":\"5\"}}"), &l, err, sizeof(err)), 0);
	assert_true(l.id == 4111120499740561673ll && l.ttl == 5);
	assert_int_equal(kl_etcd_parse_lease(S("{\"result\":{\"header\":{},\"ID\":\"123\"}}"), &l,
					     err, sizeof(err)), 0);
	assert_int_equal(l.ttl, 0);
	assert_int_equal(kl_etcd_parse_lease(S("{\"header\":{},\"ID\":\"1\",\"error\":\"no\"}"), &l,
					     err, sizeof(err)), KL_ETCD_ESERVER);
	assert_int_equal(kl_etcd_parse_lease(S("{\"result\":[]}"), &l, err, sizeof(err)),
			 KL_ETCD_EPROTO);
	assert_int_equal(kl_etcd_parse_status(S("{\"header\":{\"member_id\":\"13668033151171901709\","
		"\"revision\":\"2\",\"raft_term\":\"2\"},\"version\":\"3.4.23\",\"dbSize\":\"32768\","
		"\"leader\":\"13668033151171901709\",\"raftIndex\":\"7\",\"raftTerm\":\"2\","
		"\"raftAppliedIndex\":\"7\",\"dbSizeInUse\":\"16384\"}"), &st, err, sizeof(err)), 0);
	assert_string_equal(st.version, "3.4.23");
	assert_true(st.leader == st.hdr.member_id && st.leader == 13668033151171901709ull);
	assert_int_equal(st.db_size, 32768);
	assert_int_equal(st.raft_term, 2);
	assert_int_equal(kl_etcd_parse_status(S("{\"header\":{},\"version\":3}"), &st, err,
					      sizeof(err)), KL_ETCD_EPROTO);
	assert_int_equal(kl_etcd_parse_put(S("{\"header\":{\"revision\":\"9\"}}"), &h, err,
					   sizeof(err)), 0);
	assert_int_equal(h.revision, 9);
	assert_int_equal(kl_etcd_parse_delete(S("{\"header\":{\"revision\":\"9\"}}"), &h, &d, err,
					      sizeof(err)), 0);
	assert_int_equal(d, 0); /* "deleted" omitted: none */
}

static void test_watch(void **state)
{
	struct kl_etcd_watch_resp w;
	char err[256];

	(void)state;
	assert_int_equal(kl_etcd_parse_watch(S("{\"result\":{\"header\":{\"revision\":\"2\"},"
		"\"created\":true}}"), &w, err, sizeof(err)), 0);
	assert_int_equal(w.created, 1);
	assert_int_equal(w.n_events, 0);
	assert_int_equal(kl_etcd_parse_watch(S("{\"result\":{\"header\":{\"revision\":\"7\"},"
		"\"events\":[{\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":\"2\",\"value\":\"YmFy\"}},"
		"{\"type\":\"DELETE\",\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"5\"}}]}}"), &w, err,
		sizeof(err)), 0);
	assert_int_equal(w.n_events, 2);
	assert_int_equal(w.events[0].type, KL_ETCD_EV_PUT);
	assert_int_equal(w.events[0].kv.mod_revision, 2);
	assert_memory_equal(w.events[0].kv.value, "bar", 3);
	assert_int_equal(w.events[1].type, KL_ETCD_EV_DELETE);
	assert_memory_equal(w.events[1].kv.key, "a", 2);
	assert_int_equal(w.events[1].kv.mod_revision, 5);
	kl_etcd_watch_resp_free(&w);
	/* The compaction message of etcd 3.4 (its header has no revision). */
	assert_int_equal(kl_etcd_parse_watch(S("{\"result\":{\"header\":{\"raft_term\":\"2\"},"
		"\"canceled\":true,\"compact_revision\":\"2\"}}"), &w, err, sizeof(err)), 0);
	assert_int_equal(w.canceled, 1);
	assert_int_equal(w.compact_revision, 2);
	assert_int_equal(kl_etcd_parse_watch(S("{\"error\":{\"grpc_code\":14,\"message\":"
		"\"etcdserver: no leader\"}}"), &w, err, sizeof(err)), KL_ETCD_ESERVER);
	assert_int_equal(kl_etcd_parse_watch(S("{\"header\":{}}"), &w, err, sizeof(err)),
			 KL_ETCD_EPROTO);
	assert_int_equal(kl_etcd_parse_watch(S("{\"result\":{\"header\":{},\"events\":[{\"type\":"
		"\"MOVE\",\"kv\":{}}]}}"), &w, err, sizeof(err)), KL_ETCD_EPROTO);
	assert_non_null(strstr(err, "type"));
	assert_int_equal(kl_etcd_parse_watch(S("{\"result\":{\"header\":{},\"events\":[{\"kv\":{"
		"\"key\":\"YQ==\"}},{\"type\":\"PUT\"}]}}"), &w, err, sizeof(err)), KL_ETCD_EPROTO);
	assert_int_equal(w.n_events, 0);
	assert_null(w.events);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),          cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_range),        cmocka_unit_test(test_range_refused),
		cmocka_unit_test(test_errors),       cmocka_unit_test(test_txn_lease_status),
		cmocka_unit_test(test_watch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: BSD-3-Clause
//
// Parse + serve throughput of the request engine per core, in memory (no I/O), both crypto
// backends: client-signed MBMS and E2M requests served in bursts against a real key table.
//
// The requests are signed once at set-up: a pool of 524288 distinct ones per kind over 65536 UEs
// (4096 EMSEs). Each run serves the pool exactly once (fixed iterations) through a fresh worker
// with the default replay cache, so every request costs what a fresh one does: full crypto, no
// replay shortcut. The threads:2 runs are two workers sharing one replay cache, as in keylined,
// each serving its half of the pool. The benchmark fails if any request is dropped or answered
// with an error.
//
// serve_dh and serve_prose (PROTOCOL.md section 9, kinds 4 and 5, both UEs local): 16384 more UEs
// with the dh and prose services (their public values computed at set-up), a kl_s2s in the
// worker config (the default sizes of keylined), pools of 262144 requests each:
//  - serve_dh: UE x asks for the public value of another local UE; every answer carries TLV 9;
//  - serve_prose: pairs, the initiator's request then the responder's, every pair a new one
//    (its own two UEs): the initiator is answered ERR 12/5 (the responder's value is not there
//    yet), the responder gets p2. Both count as served; anything else fails the benchmark. A
//    pair's rendezvous entry lives 30 s in keylined and a fixed clock would keep every pair of
//    the pool live in the table (its buckets would overflow: refused pairs); here pairs live 1 s
//    and the clock advances 1 s per burst, so the table holds about one burst's pairs (the
//    buckets are still cold: the table is keylined's size).

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include <rte_eal.h>

#include "kl_eal_rundir.h"
#include "kl_engine.h"
#include "kl_s2s.h"

namespace {

constexpr unsigned kUes = 65536;
constexpr unsigned kPool = 1u << 19;
constexpr size_t kSlot = 256;
constexpr unsigned kPairUes = 16384;	  // UEs with the dh and prose services, after the kUes
constexpr unsigned kPairPool = 1u << 18;  // kind 4 requests; kind 5: pairs x 2
constexpr uint32_t kRendezvous = 65536;	  // keylined's defaults (config rendezvous_entries, ...)
constexpr uint32_t kDhCache = 65536;
constexpr uint32_t kPending = 4096;
const char kIdr[] = "keyline.bench.example";
bool g_failed = false;

struct Pool {
	std::vector<uint8_t> bytes; // kPool requests, kSlot-byte slots
	std::vector<uint16_t> lens;
};

struct World {
	kl_table *table = nullptr;
	Pool mbms, e2m, dh, prose;
	uint64_t now = 0;
};

World *g_world;

void drop_log(const char *) {}

std::string ue_id(unsigned i)
{
	char b[64];
	snprintf(b, sizeof(b), "ue%07u@ims.mnc001.mcc001.3gppnetwork.org", i);
	return b;
}

std::string emse_id(unsigned i)
{
	char b[32];
	snprintf(b, sizeof(b), "emse-%05u.corp.example", i);
	return b;
}

std::string imsi(unsigned i)
{
	char b[32];
	snprintf(b, sizeof(b), "00101%010u", i);
	return b;
}

void key_of(unsigned i, uint8_t tag, uint8_t *k, unsigned n)
{
	for (unsigned b = 0; b < n; b++)
		k[b] = (uint8_t)(tag ^ (i * 131u + b * 7u));
}

enum { K_MBMS, K_E2M, K_DH, K_PROSE };

// What request n of a kind's pool names besides RAND, T and CSB ID (which sign_pool sets).
struct ReqText {
	std::string id, ue, peer;
	std::array<uint8_t, 32> psk;
	std::array<uint8_t, 16> rand, contrib;
};

void spec_of(int kind, unsigned n, ReqText &t, kl_mikey_req_spec &s)
{
	unsigned who = kind == K_MBMS ? n % kUes : n % (kUes / 16), me = 0, other = 0;

	if (kind == K_MBMS || kind == K_E2M) {
		t.id = kind == K_MBMS ? ue_id(who) : emse_id(who);
		t.ue = imsi(who);
		key_of(who, kind == K_MBMS ? 0x11 : 0x22, t.psk.data(), 32);
	} else if (kind == K_DH) { // dh UE n asks for the public value of another (local) one
		me = n % kPairUes;
		other = (me + 1 + (n / kPairUes) * 7919u % (kPairUes - 1)) % kPairUes;
	} else { // pair n / 2: initiator a, then responder b; every pair of the pool its own (a, b)
		unsigned q = n / 2, a = q % kPairUes, b = (a + 1 + q / kPairUes) % kPairUes;
		me = n % 2 ? b : a;
		other = n % 2 ? a : b;
		for (unsigned i = 0; i < 16; i++)
			t.contrib[i] = (uint8_t)((n * 40503u) >> (i % 2 * 8)) ^ (uint8_t)(i * 17);
		s.contrib = t.contrib.data();
		s.role = (uint8_t)(n % 2 + 1);
	}
	if (kind == K_DH || kind == K_PROSE) {
		t.id = ue_id(kUes + me);
		t.peer = ue_id(kUes + other);
		key_of(kUes + me, 0x11, t.psk.data(), 32);
		s.kind = kind == K_DH ? KL_KIND_DH : KL_KIND_PROSE;
		s.peer_ue = (const uint8_t *)t.peer.data();
		s.peer_ue_len = (uint16_t)t.peer.size();
		s.peer_server = (const uint8_t *)kIdr;
		s.peer_server_len = (uint16_t)strlen(kIdr);
	} else if (kind == K_MBMS) {
		s.kind = KL_KIND_MBMS;
		s.domain[1] = 0xF1;
		s.domain[2] = 0x10;
		s.group = 1;
	} else {
		s.kind = KL_KIND_E2M;
		s.id_type = 1;
		s.ue = (const uint8_t *)t.ue.data();
		s.ue_len = (uint16_t)t.ue.size();
	}
	s.id = (const uint8_t *)t.id.data();
	s.id_len = (uint16_t)t.id.size();
}

// A kind's pool of size client-signed requests, 64 per signing batch.
bool sign_pool(kl_crypto *c, int kind, Pool &p, unsigned size)
{
	p.bytes.assign((size_t)size * kSlot, 0);
	p.lens.assign(size, 0);
	std::vector<kl_client_req> reqs(64);
	std::vector<ReqText> text(64);
	for (unsigned base = 0; base < size; base += 64) {
		for (unsigned k = 0; k < 64; k++) {
			unsigned n = base + k;
			kl_client_req &r = reqs[k];
			r = kl_client_req{};
			for (unsigned b = 0; b < 16; b++)
				text[k].rand[b] = (uint8_t)((n * 2654435761u) >> (b % 4 * 8)) ^ (uint8_t)b;
			memcpy(text[k].rand.data(), &n, 4);
			spec_of(kind, n, text[k], r.spec);
			r.spec.rand = text[k].rand.data();
			// T advances 15 us per request, as a stream's does: the replay cache's
			// bucket floors (raised by evictions) stay behind the requests to come
			r.spec.ts = g_world->now + ((uint64_t)n << 16);
			r.spec.csb_id = n;
			r.spec.prf = 0;
			r.psk = text[k].psk.data();
			r.psk_len = 32;
			r.buf = &p.bytes[(size_t)n * kSlot];
			r.cap = (uint16_t)kSlot;
		}
		if (kl_client_sign(c, reqs.data(), 64) != 64)
			return false;
		for (unsigned k = 0; k < 64; k++)
			p.lens[base + k] = reqs[k].len;
	}
	return true;
}

bool build_world()
{
	kl_table_params tp{};
	tp.name = "bench";
	tp.max_ues = kUes + kPairUes;
	tp.max_groups = 16;
	tp.max_emses = kUes / 16;
	tp.max_imsis = kUes / 16;
	tp.max_appids = 16;
	tp.e2m_ring = 4;
	tp.max_readers = 4;
	tp.socket_id = -1;
	g_world = new World;
	g_world->now = kl_ntp_now();
	g_world->table = kl_table_create(&tp);
	if (!g_world->table)
		return false;
	kl_group_ref g{};
	g.domain[0] = 0x00;
	g.domain[1] = 0xF1;
	g.domain[2] = 0x10;
	g.group = 1;
	kl_group grp{};
	memset(grp.current.key, 0x42, 16);
	grp.current.valid_from = g_world->now - (1000ull << 32);
	grp.current.valid_to = g_world->now + (100000ull << 32);
	grp.current.msk_id = 1u << 16 | 1;
	if (kl_table_put_group(g_world->table, &g, &grp) < 0)
		return false;
	for (unsigned i = 0; i < kUes; i++) {
		uint8_t muk[32];
		std::string id = ue_id(i);
		key_of(i, 0x11, muk, 32);
		if (kl_table_put_ue(g_world->table, (const uint8_t *)id.data(), (uint16_t)id.size(), muk, 32,
				    &g, 1) < 0)
			return false;
	}
	for (unsigned i = 0; i < kUes / 16; i++) {
		uint8_t psk[32], k[32];
		std::string id = emse_id(i), im = imsi(i);
		key_of(i, 0x22, psk, 32);
		key_of(i, 0x33, k, 32);
		if (kl_table_put_emse(g_world->table, (const uint8_t *)id.data(), (uint16_t)id.size(), psk, 32) < 0 ||
		    kl_table_push_e2m(g_world->table, im.c_str(), k, 0x1000 + i, 0) < 0)
			return false;
	}
	{ // the dh and prose UEs: their public values are computed here (one X25519 each)
		std::vector<kl_ue_put> v(kPairUes);
		std::vector<std::string> ids(kPairUes);
		std::vector<std::array<uint8_t, 32>> muks(kPairUes);
		std::vector<int> res(kPairUes);
		for (unsigned i = 0; i < kPairUes; i++) {
			ids[i] = ue_id(kUes + i);
			key_of(kUes + i, 0x11, muks[i].data(), 32);
			v[i] = kl_ue_put{ .id = (const uint8_t *)ids[i].data(), .muk = muks[i].data(),
					  .groups = &g, .id_len = (uint16_t)ids[i].size(), .muk_len = 32,
					  .ngroups = 1, .expires = 0,
					  .services = (uint8_t)(KL_SVC(MBMS) | KL_SVC(DH) | KL_SVC(PROSE)) };
		}
		if (kl_table_put_ue_bulk(g_world->table, v.data(), kPairUes, res.data()) != kPairUes)
			return false;
	}
	kl_crypto *c = kl_crypto_create(KL_CRYPTO_IPSECMB);
	if (!c)
		return false;
	const bool ok = sign_pool(c, K_MBMS, g_world->mbms, kPool) &&
			sign_pool(c, K_E2M, g_world->e2m, kPool) &&
			sign_pool(c, K_DH, g_world->dh, kPairPool) &&
			sign_pool(c, K_PROSE, g_world->prose, kPairPool);
	kl_crypto_destroy(c);
	return ok;
}



// Two workers (threads) share one replay cache, as keylined's do; made by thread 0 for each run.
std::atomic<kl_replay *> g_shared{nullptr};

void serve(benchmark::State &state, kl_crypto_backend be, int kind)
{
	const unsigned burst = (unsigned)state.range(0);
	// one benchmark runs at a time: its threads register readers 0.. and unregister them
	const unsigned reader = (unsigned)state.thread_index();
	const unsigned nthreads = (unsigned)state.threads();
	kl_engine_config ec{};
	ec.idr = (const uint8_t *)kIdr;
	ec.idr_len = (uint16_t)strlen(kIdr);
	ec.skew_s = 1u << 20; // the pool's T stays acceptable however long the run takes
	ec.predelivery_s = 60;
	// default size, or KL_BENCH_REPLAY_ENTRIES (a power of two) to see what its size costs
	ec.replay_entries = getenv("KL_BENCH_REPLAY_ENTRIES") ? (uint32_t)strtoul(getenv("KL_BENCH_REPLAY_ENTRIES"), nullptr, 0) : 0;
	ec.backend = be;
	if (nthreads > 1) {
		if (reader == 0) {
			uint64_t slots = 1;

			while (slots < (uint64_t)(ec.replay_entries ? ec.replay_entries : 4194304) * nthreads)
				slots <<= 1;
			g_shared.store(kl_replay_create(slots));
		}
		while (!g_shared.load())
			;
		ec.replay = g_shared.load();
	}
	kl_s2s *s2s = nullptr;
	if (kind == K_DH || kind == K_PROSE) {
		// a pair lives 1 s here (the clock advances 1 s per burst); a peer's answer 300 s
		s2s = kl_s2s_create(kRendezvous, kDhCache, kPending, kind == K_PROSE ? 1 : 30, 300);
		if (!s2s) {
			state.SkipWithError("kl_s2s_create failed");
			g_failed = true;
			return;
		}
		ec.s2s = s2s;
	}
	if (kl_table_reader_register(g_world->table, reader) < 0) {
		state.SkipWithError("reader register failed");
		g_failed = true;
		return;
	}
	kl_worker *w = kl_worker_create(&ec, g_world->table, reader);
	if (!w) {
		state.SkipWithError("worker create failed");
		g_failed = true;
		kl_s2s_destroy(s2s);
		return;
	}
	const Pool &p = kind == K_MBMS ? g_world->mbms
			: kind == K_E2M	 ? g_world->e2m
			: kind == K_DH	 ? g_world->dh
					 : g_world->prose;
	const unsigned pool = (unsigned)p.lens.size();
	uint64_t now = g_world->now;
	std::vector<kl_pkt> pkts(burst);
	std::vector<uint8_t> out((size_t)burst * 1600);
	unsigned pos = reader; // thread t serves requests t, t + nthreads, ...: none twice
	uint64_t answered = 0, served = 0;
	for (auto _ : state) {
		for (unsigned i = 0; i < burst; i++) {
			pkts[i].in = &p.bytes[(size_t)pos * kSlot];
			pkts[i].in_len = p.lens[pos];
			pkts[i].out = &out[(size_t)i * 1600];
			pkts[i].out_cap = 1600;
			pos = (pos + nthreads) % pool;
		}
		answered += kl_engine_serve(w, now, pkts.data(), burst);
		if (kind == K_PROSE)
			now += 1ull << 32; // the pairs of the last burst expire
		kl_table_quiescent(g_world->table, reader);
		served += burst;
	}
	const struct kl_worker_stats *st = kl_worker_stats(w);
	uint64_t drops = 0;
	for (unsigned d = 1; d < KL_DROP__COUNT; d++)
		drops += st->drop[d];
	uint64_t ok = st->counter[KL_CNT_ANSWERED_MBMS] + st->counter[KL_CNT_ANSWERED_E2M] +
		      st->counter[KL_CNT_ANSWERED_DH] + st->counter[KL_CNT_ANSWERED_PROSE];
	uint64_t errors = 0;
	for (unsigned k = KL_CNT_ERR_INVALID_TS; k < KL_CNT__COUNT; k++)
		if (k != KL_CNT_REPLAY_EVICTIONS && k != KL_CNT_S2S_ANSWERS && k != KL_CNT_S2S_STALE)
			errors += st->counter[k];
	// kind 5: the initiators are answered ERR 12/5, the responders with the key
	const uint64_t waits = kind == K_PROSE ? served / 2 : 0;
	if (answered != served || drops || ok != served - waits || errors != waits ||
	    st->counter[KL_CNT_ERR_NOT_READY] != waits) {
		fprintf(stderr, "engine_bench: served %llu answered %llu with keys %llu;",
			(unsigned long long)served, (unsigned long long)answered, (unsigned long long)ok);
		for (unsigned d = 1; d < KL_DROP__COUNT; d++)
			if (st->drop[d])
				fprintf(stderr, " %s %llu", kl_drop_name(d), (unsigned long long)st->drop[d]);
		for (unsigned k = 0; k < KL_CNT__COUNT; k++)
			if (st->counter[k])
				fprintf(stderr, " %s %llu", kl_counter_name(k), (unsigned long long)st->counter[k]);
		fprintf(stderr, "\n");
		state.SkipWithError(kind == K_PROSE ? "not every pair was answered ERR 12/5, then the key"
						    : "not every request was answered with keys");
		g_failed = true;
	}
	state.SetItemsProcessed((int64_t)served);
	state.counters["replay_evictions"] = (double)st->counter[KL_CNT_REPLAY_EVICTIONS];
	kl_worker_destroy(w);
	kl_s2s_destroy(s2s);
	kl_table_reader_unregister(g_world->table, reader);
	if (nthreads > 1 && reader == 0) { // the others are past the loop's closing barrier
		kl_replay_destroy(g_shared.load());
		g_shared.store(nullptr);
	}
}

} // namespace

int main(int argc, char **argv)
{
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "kl_engine_bench_%d", (int)getpid());
	const char *eal[] = { "engine_bench", "--no-huge", "--no-shconf", "-m", "1024", "--no-pci",
			      "--no-telemetry", "-l", "0", "--log-level=error", "--file-prefix", prefix };
	kl_crypto_set_log(drop_log);
	kl_eal_rundir_cleanup_at_exit(); /* no /var/run/dpdk/<prefix> left behind */
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), const_cast<char **>(eal)) < 0) {
		fprintf(stderr, "engine_bench: EAL init failed\n");
		return 1;
	}
	if (!build_world()) {
		fprintf(stderr, "engine_bench: building the table or the request pool failed\n");
		return 1;
	}
	const struct {
		kl_crypto_backend id;
		const char *name;
	} backends[] = { { KL_CRYPTO_IPSECMB, "ipsec-mb" }, { KL_CRYPTO_OPENSSL, "openssl" } };
	static const char *const names[] = { "serve_mbms/", "serve_e2m/", "serve_dh/", "serve_prose/" };
	for (const auto &b : backends)
		for (int kind = K_MBMS; kind <= K_PROSE; kind++) {
			std::string name = std::string(names[kind]) + b.name;
			const unsigned pool = kind == K_MBMS || kind == K_E2M ? kPool : kPairPool;
			for (int burst : { 32, 64 })
				benchmark::RegisterBenchmark(name.c_str(), serve, b.id, kind)
					->ArgName("burst")
					->Arg(burst)
					->Iterations(pool / (unsigned)burst);
			// two workers on two cores sharing the replay cache (per-core rate = items/s / 2)
			if (kind == K_MBMS)
				benchmark::RegisterBenchmark(name.c_str(), serve, b.id, kind)
					->ArgName("burst")
					->Arg(32)
					->Threads(2)
					->UseRealTime()
					->Iterations(kPool / 32 / 2);
		}
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	size_t ran = benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return (g_failed || ran == 0) ? 1 : 0;
}

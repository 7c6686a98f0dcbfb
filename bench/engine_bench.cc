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

namespace {

constexpr unsigned kUes = 65536;
constexpr unsigned kPool = 1u << 19;
constexpr size_t kSlot = 256;
bool g_failed = false;

struct Pool {
	std::vector<uint8_t> bytes; // kPool requests, kSlot-byte slots
	std::vector<uint16_t> lens;
};

struct World {
	kl_table *table = nullptr;
	Pool mbms, e2m;
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

bool build_world()
{
	kl_table_params tp{};
	tp.name = "bench";
	tp.max_ues = kUes;
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
	kl_crypto *c = kl_crypto_create(KL_CRYPTO_IPSECMB);
	if (!c)
		return false;
	for (int kind = 0; kind < 2; kind++) {
		Pool &p = kind == 0 ? g_world->mbms : g_world->e2m;
		p.bytes.assign((size_t)kPool * kSlot, 0);
		p.lens.assign(kPool, 0);
		std::vector<kl_client_req> reqs(64);
		std::vector<std::string> ids(64), ues(64);
		std::vector<std::array<uint8_t, 32>> psks(64);
		std::vector<std::array<uint8_t, 16>> rands(64);
		for (unsigned base = 0; base < kPool; base += 64) {
			for (unsigned k = 0; k < 64; k++) {
				unsigned n = base + k, who = kind == 0 ? n % kUes : n % (kUes / 16);
				kl_client_req &r = reqs[k];
				r = kl_client_req{};
				ids[k] = kind == 0 ? ue_id(who) : emse_id(who);
				ues[k] = imsi(who);
				key_of(who, kind == 0 ? 0x11 : 0x22, psks[k].data(), 32);
				for (unsigned b = 0; b < 16; b++)
					rands[k][b] = (uint8_t)((n * 2654435761u) >> (b % 4 * 8)) ^ (uint8_t)b;
				memcpy(rands[k].data(), &n, 4);
				r.spec.rand = rands[k].data();
				r.spec.id = (const uint8_t *)ids[k].data();
				r.spec.id_len = (uint16_t)ids[k].size();
				// T advances 15 us per request, as a stream's does: the replay cache's
				// bucket floors (raised by evictions) stay behind the requests to come
				r.spec.ts = g_world->now + ((uint64_t)n << 16);
				r.spec.csb_id = n;
				r.spec.prf = 0;
				if (kind == 0) {
					r.spec.kind = KL_KIND_MBMS;
					r.spec.domain[1] = 0xF1;
					r.spec.domain[2] = 0x10;
					r.spec.group = 1;
				} else {
					r.spec.kind = KL_KIND_E2M;
					r.spec.id_type = 1;
					r.spec.ue = (const uint8_t *)ues[k].data();
					r.spec.ue_len = (uint16_t)ues[k].size();
				}
				r.psk = psks[k].data();
				r.psk_len = 32;
				r.buf = &p.bytes[(size_t)n * kSlot];
				r.cap = (uint16_t)kSlot;
			}
			if (kl_client_sign(c, reqs.data(), 64) != 64)
				return false;
			for (unsigned k = 0; k < 64; k++)
				p.lens[base + k] = reqs[k].len;
		}
	}
	kl_crypto_destroy(c);
	return true;
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
	ec.idr = (const uint8_t *)"keyline.bench.example";
	ec.idr_len = 21;
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
	if (kl_table_reader_register(g_world->table, reader) < 0) {
		state.SkipWithError("reader register failed");
		g_failed = true;
		return;
	}
	kl_worker *w = kl_worker_create(&ec, g_world->table, reader);
	if (!w) {
		state.SkipWithError("worker create failed");
		g_failed = true;
		return;
	}
	const Pool &p = kind == 0 ? g_world->mbms : g_world->e2m;
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
			pos = (pos + nthreads) % kPool;
		}
		answered += kl_engine_serve(w, g_world->now, pkts.data(), burst);
		kl_table_quiescent(g_world->table, reader);
		served += burst;
	}
	const struct kl_worker_stats *st = kl_worker_stats(w);
	uint64_t drops = 0;
	for (unsigned d = 1; d < KL_DROP__COUNT; d++)
		drops += st->drop[d];
	uint64_t ok = st->counter[KL_CNT_ANSWERED_MBMS] + st->counter[KL_CNT_ANSWERED_E2M];
	if (answered != served || drops || ok != served) {
		fprintf(stderr, "engine_bench: served %llu answered %llu with keys %llu;",
			(unsigned long long)served, (unsigned long long)answered, (unsigned long long)ok);
		for (unsigned d = 1; d < KL_DROP__COUNT; d++)
			if (st->drop[d])
				fprintf(stderr, " %s %llu", kl_drop_name(d), (unsigned long long)st->drop[d]);
		for (unsigned k = 0; k < KL_CNT__COUNT; k++)
			if (st->counter[k])
				fprintf(stderr, " %s %llu", kl_counter_name(k), (unsigned long long)st->counter[k]);
		fprintf(stderr, "\n");
		state.SkipWithError("not every request was answered with keys");
		g_failed = true;
	}
	state.SetItemsProcessed((int64_t)served);
	state.counters["replay_evictions"] = (double)st->counter[KL_CNT_REPLAY_EVICTIONS];
	kl_worker_destroy(w);
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
	for (const auto &b : backends)
		for (int kind = 0; kind < 2; kind++) {
			std::string name = std::string(kind == 0 ? "serve_mbms/" : "serve_e2m/") + b.name;
			for (int burst : { 32, 64 })
				benchmark::RegisterBenchmark(name.c_str(), serve, b.id, kind)
					->ArgName("burst")
					->Arg(burst)
					->Iterations(kPool / (unsigned)burst);
			// two workers on two cores sharing the replay cache (per-core rate = items/s / 2)
			if (kind == 0)
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

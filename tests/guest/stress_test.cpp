// SPDX-License-Identifier: MIT
// Stress*: long streams between two processes through libshmq, every
// message carrying a sequence number and a checksum; exact counts at the end.
// SHMQ_TEST_SLOW=1 (debug kernel) scales the counts down.
#include "shmq_test.hpp"

using namespace shmqt;

namespace {

const auto k60s = std::chrono::seconds(60);

class Stress : public testing::Test {
protected:
	void SetUp() override { SHMQT_REQUIRE_ROOT(); }
	void make(uint64_t cap) { ASSERT_NO_FATAL_FAILURE(q_.create(cap, "stress")); }
	TestQueue q_;
};

enum class SendMode { Copy, ZeroCopy, Deferred, Mixed };
enum class RecvMode { Copy, Peek, Mixed };

struct Opts {
	uint64_t count;
	size_t max_size = 4096;
	SendMode send = SendMode::Copy;
	RecvMode recv = RecvMode::Copy;
	unsigned producer_pause_pct = 0; // chance of a short pause per message
	unsigned consumer_pause_pct = 0;
};

void pause_a_little(Rng &rng)
{
	if (rng.chance(50))
		sched_yield();
	else
		for (uint64_t spin = rng.range(0, 20000); spin; spin--)
			asm volatile("" ::: "memory");
}

// Producer child: sends 0..count-1; exit status 0 or a step number.
int run_producer(const std::string &name, const Opts &o, uint64_t seed)
{
	auto p = shmq::Producer::open(name);
	if (!p)
		return 10;
	Rng rng(seed);
	const size_t max = std::min<size_t>(o.max_size, p->info().max_message);
	std::vector<uint8_t> buf(max);
	uint64_t pending = 0; // deferred, not yet flushed
	for (uint64_t seq = 0; seq < o.count; seq++) {
		const size_t n = random_size(rng, max);
		SendMode mode = o.send;
		if (mode == SendMode::Mixed)
			mode = SendMode(rng.next() % 3);
		if (mode != SendMode::Deferred && pending) {
			p->flush();
			pending = 0;
		}
		switch (mode) {
		case SendMode::Copy: {
			make_msg(buf.data(), n, seq, 1);
			if (!p->send(as_bytes(buf.data(), n), shmq::Timeout::after(k60s)))
				return 20;
			break;
		}
		case SendMode::ZeroCopy: {
			auto r = p->reserve(n, shmq::Timeout::after(k60s));
			if (!r)
				return 21;
			// Sometimes reserve more than is used.
			size_t used = rng.chance(30) ? size_t(rng.range(kMinMsg, n)) : n;
			make_msg(reinterpret_cast<uint8_t *>(r->data().data()), used, seq, 1);
			if (!p->commit(std::move(*r), used).has_value())
				return 22;
			break;
		}
		case SendMode::Deferred: {
			auto r = p->try_reserve(n);
			if (!r) {
				if (r.error().code() != EAGAIN)
					return 23;
				// Full: publish the batch before sleeping for room.
				p->flush();
				pending = 0;
				r = p->reserve(n, shmq::Timeout::after(k60s));
				if (!r)
					return 24;
			}
			make_msg(reinterpret_cast<uint8_t *>(r->data().data()), n, seq, 1);
			if (!p->commit_deferred(std::move(*r)).has_value())
				return 25;
			if (++pending >= rng.range(1, 32)) {
				p->flush();
				pending = 0;
			}
			break;
		}
		case SendMode::Mixed:
			break;
		}
		if (o.producer_pause_pct && rng.chance(o.producer_pause_pct))
			pause_a_little(rng);
	}
	p->flush();
	return 0;
}

struct Stats {
	uint64_t received = 0, bytes = 0;
	double seconds = 0;
};

// Consumer (the test process): receives until EPIPE; exact sequence.
void run_consumer(shmq::Consumer &c, const Opts &o, uint64_t seed, Stats *st)
{
	Rng rng(seed);
	std::vector<uint8_t> buf(64 * 1024);
	const uint64_t t0 = now_ns();
	uint64_t next = 0;
	for (;;) {
		RecvMode mode = o.recv;
		if (mode == RecvMode::Mixed)
			mode = rng.chance(50) ? RecvMode::Copy : RecvMode::Peek;
		const uint8_t *m;
		size_t n;
		if (mode == RecvMode::Copy) {
			auto r = c.receive(as_wbytes(buf.data(), buf.size()), shmq::Timeout::after(k60s));
			if (!r) {
				ASSERT_EQ(EPIPE, r.error().code()) << "after " << next << " messages: " << err_str(r.error());
				break;
			}
			m = buf.data();
			n = *r;
		} else {
			auto r = c.peek(shmq::Timeout::after(k60s));
			if (!r) {
				ASSERT_EQ(EPIPE, r.error().code()) << "after " << next << " messages: " << err_str(r.error());
				break;
			}
			m = reinterpret_cast<const uint8_t *>(r->data().data());
			n = r->size();
		}
		MsgHdr h{};
		std::string why;
		ASSERT_TRUE(check_msg(m, n, &h, &why)) << "message " << next << ": " << why;
		ASSERT_EQ(next, h.seq) << "lost, duplicated or reordered";
		ASSERT_EQ(1u, h.stream);
		if (mode == RecvMode::Peek) {
			ASSERT_TRUE(c.release().has_value());
		}
		next++;
		st->bytes += n;
		if (o.consumer_pause_pct && rng.chance(o.consumer_pause_pct))
			pause_a_little(rng);
	}
	st->received = next;
	st->seconds = double(now_ns() - t0) / 1e9;
}

void run_stream(Stress *t, const std::string &name, const Opts &o)
{
	const uint64_t seed = test_seed();
	auto c = shmq::Consumer::open(name);
	ASSERT_TRUE(c) << err_str(c.error());
	Child prod = Child::spawn([&] { return run_producer(name, o, seed); });
	Stats st;
	run_consumer(*c, o, seed ^ 0x5555, &st);
	if (t->HasFatalFailure()) {
		prod.kill_and_reap();
		return;
	}
	ASSERT_TRUE(prod.wait_exit(60000));
	ASSERT_TRUE(prod.exited_with(0)) << "producer: " << prod.describe();
	EXPECT_EQ(o.count, st.received) << "exact message count";
	printf("[   INFO   ] %llu messages, %.1f MB in %.2f s (seed %llu)\n", (unsigned long long)st.received,
	       double(st.bytes) / 1e6, st.seconds, (unsigned long long)seed);
}

} // namespace

TEST_F(Stress, MillionMessagesTwoProcesses)
{
	make(256 * 1024);
	Opts o;
	o.count = scaled<uint64_t>(1000000, 200000);
	run_stream(this, q_.name(), o);
}

TEST_F(Stress, DeferredCommitAndFlushBatches)
{
	make(64 * 1024);
	Opts o;
	o.count = scaled<uint64_t>(300000, 60000);
	o.send = SendMode::Deferred;
	o.recv = RecvMode::Copy;
	run_stream(this, q_.name(), o);
}

TEST_F(Stress, ZeroCopyReserveCommitPeekRelease)
{
	make(64 * 1024);
	Opts o;
	o.count = scaled<uint64_t>(300000, 60000);
	o.send = SendMode::ZeroCopy;
	o.recv = RecvMode::Peek;
	run_stream(this, q_.name(), o);
}

TEST_F(Stress, TinyRingBlocksBothWays)
{
	make(4096);
	Opts o;
	o.count = scaled<uint64_t>(30000, 8000);
	o.max_size = 1016; // max_message of a 4096-byte ring
	o.send = SendMode::Mixed;
	o.recv = RecvMode::Mixed;
	o.producer_pause_pct = 3;
	o.consumer_pause_pct = 3;
	run_stream(this, q_.name(), o);
}

TEST_F(Stress, MaxSizeMessagesWrapTheRing)
{
	make(8192);
	// Sizes near max_message force a PAD record at almost every wrap.
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c);
	const uint64_t count = scaled<uint64_t>(3000, 1000);
	const size_t max = c->info().max_message;
	ASSERT_EQ(8192u / 4 - 8, max);
	Child prod = Child::spawn([&] {
		auto p = shmq::Producer::open(q_.name());
		if (!p)
			return 10;
		Rng rng(42);
		std::vector<uint8_t> buf(max);
		for (uint64_t s = 0; s < count; s++) {
			size_t n = size_t(rng.range(max - 600, max));
			make_msg(buf.data(), n, s, 1);
			if (!p->send(as_bytes(buf.data(), n), shmq::Timeout::after(k60s)))
				return 11;
		}
		// One byte over the limit is refused.
		std::vector<uint8_t> big(max + 1);
		auto r = p->try_send(as_bytes(big.data(), big.size()));
		return !r.has_value() && r.error().code() == EMSGSIZE ? 0 : 12;
	});
	std::vector<uint8_t> buf(max);
	uint64_t next = 0;
	for (;;) {
		auto r = c->receive(as_wbytes(buf.data(), buf.size()), shmq::Timeout::after(k60s));
		if (!r) {
			ASSERT_EQ(EPIPE, r.error().code()) << err_str(r.error());
			break;
		}
		MsgHdr h{};
		std::string why;
		ASSERT_TRUE(check_msg(buf.data(), *r, &h, &why)) << why;
		ASSERT_EQ(next, h.seq);
		next++;
	}
	ASSERT_TRUE(prod.wait_exit());
	EXPECT_TRUE(prod.exited_with(0)) << prod.describe();
	EXPECT_EQ(count, next);
}

TEST_F(Stress, TwoQueuesFourThreads)
{
	TestQueue q2;
	make(32 * 1024);
	ASSERT_NO_FATAL_FAILURE(q2.create(8 * 1024, "stress"));
	const uint64_t count = scaled<uint64_t>(50000, 10000);
	std::atomic<uint64_t> received[2] = {0, 0};
	std::atomic<int> errors{0};
	std::string err_text[2];
	std::vector<std::thread> ts;
	const std::string names[2] = {q_.name(), q2.name()};
	// Open both ends first so a fast producer never sees "no consumer".
	std::vector<shmq::Producer> ps;
	std::vector<shmq::Consumer> cs;
	for (int q = 0; q < 2; q++) {
		auto p = shmq::Producer::open(names[q]);
		auto c = shmq::Consumer::open(names[q]);
		ASSERT_TRUE(p && c);
		ps.push_back(std::move(*p));
		cs.push_back(std::move(*c));
	}
	for (int q = 0; q < 2; q++) {
		ts.emplace_back([&, q] {
			Rng rng(1000 + q);
			std::vector<uint8_t> buf(2000);
			for (uint64_t s = 0; s < count; s++) {
				size_t n = random_size(rng, buf.size());
				make_msg(buf.data(), n, s, q);
				if (!ps[q].send(as_bytes(buf.data(), n), shmq::Timeout::after(k60s))) {
					errors++;
					return;
				}
			}
			ps[q].close();
		});
		ts.emplace_back([&, q] {
			std::vector<uint8_t> buf(4096);
			uint64_t next = 0;
			for (;;) {
				auto r = cs[q].receive(as_wbytes(buf.data(), buf.size()), shmq::Timeout::after(k60s));
				if (!r) {
					if (r.error().code() != EPIPE) {
						err_text[q] = err_str(r.error());
						errors++;
					}
					break;
				}
				MsgHdr h{};
				std::string why;
				if (!check_msg(buf.data(), *r, &h, &why) || h.seq != next || h.stream != uint64_t(q)) {
					err_text[q] = why.empty() ? strprintf("seq %llu, expected %llu",
									      (unsigned long long)h.seq,
									      (unsigned long long)next)
								  : why;
					errors++;
					break;
				}
				next++;
			}
			received[q] = next;
		});
	}
	for (auto &t : ts)
		t.join();
	EXPECT_EQ(0, errors.load()) << err_text[0] << " / " << err_text[1];
	EXPECT_EQ(count, received[0].load());
	EXPECT_EQ(count, received[1].load());
	EXPECT_EQ(2 * count, received[0].load() + received[1].load());
}

TEST_F(Stress, ReattachingProducerAndConsumer)
{
	make(16 * 1024);
	const uint64_t count = scaled<uint64_t>(100000, 20000);
	struct Progress {
		std::atomic<uint64_t> received;
		std::atomic<int> failed;
		char error[256];
	};
	Shared<Progress> pr;
	// Producer process: closes and reopens its Producer every few
	// thousand messages, continuing the sequence.
	Child prod = Child::spawn([&] {
		Rng rng(7);
		std::vector<uint8_t> buf(3000);
		uint64_t s = 0;
		while (s < count) {
			auto p = shmq::Producer::open(q_.name());
			if (!p)
				return 10;
			for (uint64_t k = rng.range(1, 5000); k && s < count; k--) {
				size_t n = random_size(rng, buf.size());
				make_msg(buf.data(), n, s, 1);
				for (;;) {
					auto r = p->send(as_bytes(buf.data(), n), shmq::Timeout::after(k60s));
					if (r)
						break;
					if (r.error().code() != EPIPE)
						return 11;
					sleep_ms(1); // consumer between incarnations, ring full
				}
				s++;
			}
		}
		return 0;
	});
	// Consumer process: the same on its side; EPIPE between producers.
	Child cons = Child::spawn([&] {
		Rng rng(8);
		std::vector<uint8_t> buf(4096);
		uint64_t next = 0;
		while (next < count) {
			auto c = shmq::Consumer::open(q_.name());
			if (!c)
				return 10;
			for (uint64_t k = rng.range(1, 5000); k && next < count;) {
				auto r = c->receive(as_wbytes(buf.data(), buf.size()), shmq::Timeout::after(k60s));
				if (!r) {
					if (r.error().code() != EPIPE)
						return 11;
					sleep_ms(1); // producer between incarnations
					continue;
				}
				MsgHdr h{};
				std::string why;
				if (!check_msg(buf.data(), *r, &h, &why) || h.seq != next) {
					snprintf(pr->error, sizeof pr->error, "%s (seq %llu, expected %llu)", why.c_str(),
						 (unsigned long long)h.seq, (unsigned long long)next);
					return 12;
				}
				next++;
				k--;
				pr->received = next;
			}
		}
		return 0;
	});
	ASSERT_TRUE(cons.wait_exit(300000)) << "consumer stuck at " << pr->received.load();
	EXPECT_TRUE(cons.exited_with(0)) << cons.describe() << " " << pr->error;
	ASSERT_TRUE(prod.wait_exit(60000));
	EXPECT_TRUE(prod.exited_with(0)) << prod.describe();
	EXPECT_EQ(count, pr->received.load());
}

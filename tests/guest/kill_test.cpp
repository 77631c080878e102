// SPDX-License-Identifier: MIT
// Kill*: SIGKILL producers and consumers at random points of a stream and
// check, with sequence numbers and checksums, that no committed message is
// lost, duplicated (except a peeked-but-not-released one, redelivered once)
// or reordered, that the role can be taken again at once, and that the
// kernel's waiter bookkeeping does not leak.
#include "shmq_test.hpp"

using namespace shmqt;

namespace {

const auto k10s = std::chrono::seconds(10);
constexpr int kMaxIters = 64;

class Kill : public testing::Test {
protected:
	void SetUp() override { SHMQT_REQUIRE_ROOT(); }
	void make(uint64_t cap = 64 * 1024) { ASSERT_NO_FATAL_FAILURE(q_.create(cap, "kill")); }
	TestQueue q_;
};

// Written by producer children, read by the consuming parent.
struct ProducerLog {
	std::atomic<int> attached[kMaxIters + 1];
	std::atomic<uint64_t> committed[kMaxIters + 1];	 // messages certainly published
	std::atomic<uint64_t> publishing[kMaxIters + 1]; // at most this many published
	std::atomic<int> open_error[kMaxIters + 1];
};

// One producer incarnation: sends stream @stream forever (or @limit
// messages), mixing send, reserve/commit and batched commit_deferred/flush.
int produce_stream(const std::string &name, ProducerLog *log, int stream, uint64_t limit)
{
	auto p = shmq::Producer::open(name);
	if (!p) {
		log->open_error[stream] = p.error().code();
		return 10;
	}
	log->attached[stream] = 1;
	Rng rng(uint64_t(getpid()) * 7919 + stream);
	const size_t max = size_t(std::min<uint64_t>(p->info().max_message, 3000));
	std::vector<uint8_t> buf(max);
	uint64_t seq = 0;
	while (seq < limit) {
		const unsigned mode = unsigned(rng.next() % 10);
		if (mode < 5) { // send (copy)
			size_t n = random_size(rng, max);
			make_msg(buf.data(), n, seq, stream);
			log->publishing[stream] = seq + 1;
			auto r = p->send(as_bytes(buf.data(), n), shmq::Timeout::after(std::chrono::seconds(30)));
			if (!r)
				return 20;
			log->committed[stream] = ++seq;
		} else if (mode < 8) { // zero copy, possibly using less than reserved
			size_t n = random_size(rng, max);
			auto r = p->reserve(n, shmq::Timeout::after(std::chrono::seconds(30)));
			if (!r)
				return 21;
			size_t used = rng.chance(50) ? n : size_t(rng.range(kMinMsg, n));
			make_msg(reinterpret_cast<uint8_t *>(r->data().data()), used, seq, stream);
			log->publishing[stream] = seq + 1;
			if (!p->commit(*r, used).ok())
				return 22;
			log->committed[stream] = ++seq;
		} else { // a batch behind one flush
			const uint64_t batch = std::min<uint64_t>(rng.range(1, 16), limit - seq);
			log->publishing[stream] = seq + batch; // upper bound until the flush
			uint64_t s = seq;
			for (; s < seq + batch; s++) {
				size_t n = random_size(rng, std::min<size_t>(max, 512));
				auto r = p->try_reserve(n);
				if (!r) {
					if (r.error().code() != EAGAIN)
						return 23;
					break; // ring full: publish what we have
				}
				make_msg(reinterpret_cast<uint8_t *>(r->data().data()), n, s, stream);
				if (!p->commit_deferred(*r).ok())
					return 24;
			}
			p->flush();
			log->committed[stream] = s;
			if (s == seq) { // nothing fitted: wait for room the normal way
				size_t n = random_size(rng, max);
				make_msg(buf.data(), n, seq, stream);
				log->publishing[stream] = seq + 1;
				if (!p->send(as_bytes(buf.data(), n), shmq::Timeout::after(std::chrono::seconds(30))))
					return 25;
				s = seq + 1;
				log->committed[stream] = s;
			}
			seq = s;
		}
	}
	return 0;
}

// Parent side of the producer-kill test: validates one message.
struct StreamChecker {
	int stream = -1;
	uint64_t next = 0;
	uint64_t total = 0;
	std::string error;

	bool take(const uint8_t *m, size_t n)
	{
		MsgHdr h{};
		std::string why;
		if (!check_msg(m, n, &h, &why)) {
			error = why;
			return false;
		}
		if (int(h.stream) != stream || h.seq != next) {
			error = strprintf("expected stream %d seq %llu, got stream %llu seq %llu", stream,
					  (unsigned long long)next, (unsigned long long)h.stream,
					  (unsigned long long)h.seq);
			return false;
		}
		next++;
		total++;
		return true;
	}
};

} // namespace

TEST_F(Kill, ProducerKilledRepeatedlyAtRandomMoments)
{
	make(16 * 1024);
	const int iters = std::min(kMaxIters, scaled(50, 25));
	Shared<ProducerLog> log;
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c) << err_str(c.error());
	std::vector<uint8_t> buf(64 * 1024);
	Rng rng(test_seed());
	StreamChecker chk;
	uint64_t committed_total = 0;

	for (int it = 0; it <= iters; it++) {
		const bool last = it == iters; // the final producer is not killed
		chk.stream = it;
		chk.next = 0;
		Child prod = Child::spawn([&] {
			return produce_stream(q_.name(), &*log, it, last ? 5000 : UINT64_MAX);
		});
		// Kill after a random number of messages, or at a random early
		// time (perhaps before the producer even opened the queue).
		const bool early = rng.chance(20);
		const uint64_t kill_after_msgs = rng.range(0, 3000);
		const uint64_t kill_at = deadline_in_ms(rng.range(0, 30));
		for (;;) {
			if (!last && (early ? now_ns() >= kill_at : chk.next >= kill_after_msgs))
				break;
			auto r = c->receive(as_wbytes(buf.data(), buf.size()),
					    shmq::Timeout::after(std::chrono::milliseconds(100)));
			if (r) {
				ASSERT_TRUE(chk.take(buf.data(), *r)) << "iteration " << it << ": " << chk.error;
				continue;
			}
			const int e = r.error().code();
			ASSERT_TRUE(e == EPIPE || e == ETIMEDOUT) << "iteration " << it << ": " << err_str(r.error());
			if (last && e == EPIPE && prod.wait_exit(0))
				break; // final producer done and drained
			if (!last && prod.wait_exit(0))
				FAIL() << "iteration " << it << ": producer exited by itself: " << prod.describe()
				       << " (open error " << errname(log->open_error[it]) << ")";
			if (e == EPIPE)
				sleep_ms(1); // between producers
		}
		if (!last) {
			prod.kill_and_reap();
			ASSERT_TRUE(prod.killed_by(SIGKILL))
				<< "iteration " << it << ": " << prod.describe() << " (open error "
				<< errname(log->open_error[it]) << ")";
			// Everything the dead producer published is in the ring now.
			for (;;) {
				auto r = c->try_receive(as_wbytes(buf.data(), buf.size()));
				if (!r) {
					ASSERT_TRUE(r.error().code() == EAGAIN || r.error().code() == EPIPE)
						<< err_str(r.error());
					break;
				}
				ASSERT_TRUE(chk.take(buf.data(), *r)) << "iteration " << it << ": " << chk.error;
			}
		} else {
			ASSERT_TRUE(prod.exited_with(0)) << prod.describe();
		}
		const uint64_t lo = log->committed[it], hi = log->publishing[it];
		EXPECT_GE(chk.next, lo) << "iteration " << it << ": lost committed messages";
		EXPECT_LE(chk.next, std::max(lo, hi)) << "iteration " << it << ": more messages than published";
		committed_total += chk.next;
		if (HasFailure())
			return;
		// The producer role is free again right away.
		if (!last) {
			Fd again(open_queue(q_.name(), O_WRONLY));
			ASSERT_TRUE(again.ok()) << "iteration " << it << ": reopen after SIGKILL: " << errname(-again.get());
		}
	}
	EXPECT_EQ(5000u, chk.next) << "final producer";
	EXPECT_EQ(committed_total, chk.total);
	printf("[   INFO   ] %d producers killed, %llu messages verified\n", iters,
	       (unsigned long long)chk.total);
}

namespace {

struct ConsumerLog {
	std::atomic<uint64_t> next;	 // every seq below was released
	std::atomic<int64_t> releasing;	 // seq being released, -1: none
	std::atomic<int> attached;	 // incarnation number that attached
	std::atomic<uint64_t> delivered; // messages handed to consumers, redeliveries included
	std::atomic<uint64_t> redelivered;
	std::atomic<int> failed;
	char error[256];
};

// One consumer incarnation: receives until EPIPE, checking each message is
// the next one (or, after a kill during release, the one after it).
int consume_stream(const std::string &name, ConsumerLog *log, int incarnation)
{
	auto c = shmq::Consumer::open(name);
	if (!c) {
		snprintf(log->error, sizeof log->error, "open: %s", err_str(c.error()).c_str());
		log->failed = 1;
		return 10;
	}
	log->attached = incarnation;
	Rng rng(uint64_t(getpid()) * 31 + incarnation);
	std::vector<uint8_t> buf(64 * 1024);
	auto fail = [&](const std::string &why) {
		snprintf(log->error, sizeof log->error, "incarnation %d: %s", incarnation, why.c_str());
		log->failed = 1;
		return 20;
	};
	for (;;) {
		uint64_t want = log->next;
		const int64_t rel = log->releasing;
		const bool zero_copy = rng.chance(60);
		const uint8_t *m;
		size_t n;
		if (zero_copy) {
			auto r = c->peek(shmq::Timeout::after(std::chrono::seconds(30)));
			if (!r)
				return r.error().code() == EPIPE ? 0 : fail("peek: " + err_str(r.error()));
			m = reinterpret_cast<const uint8_t *>(r->data().data());
			n = r->size();
		} else {
			log->releasing = int64_t(want);
			auto r = c->receive(as_wbytes(buf.data(), buf.size()), shmq::Timeout::after(std::chrono::seconds(30)));
			if (!r) {
				log->releasing = rel;
				return r.error().code() == EPIPE ? 0 : fail("receive: " + err_str(r.error()));
			}
			m = buf.data();
			n = *r;
		}
		MsgHdr h{};
		std::string why;
		if (!check_msg(m, n, &h, &why))
			return fail(why);
		log->delivered++;
		if (h.seq == want + 1 && rel == int64_t(want)) {
			// The previous incarnation died after releasing @want.
			want++;
		} else if (h.seq != want) {
			return fail(strprintf("got seq %llu, expected %llu (releasing %lld)", (unsigned long long)h.seq,
					      (unsigned long long)want, (long long)rel));
		}
		if (zero_copy) {
			log->releasing = int64_t(want);
			if (!c->release().ok())
				return fail("release failed");
		}
		log->next = want + 1;
		log->releasing = -1;
	}
}

} // namespace

TEST_F(Kill, ConsumerKilledRepeatedlyAtRandomMoments)
{
	make(16 * 1024);
	const int iters = scaled(50, 25);
	Shared<ConsumerLog> log;
	log->next = 0;
	log->releasing = -1;
	log->attached = -1;
	auto p = shmq::Producer::open(q_.name());
	ASSERT_TRUE(p) << err_str(p.error());
	const size_t max = 3000;
	std::vector<uint8_t> buf(max);
	Rng rng(test_seed());
	uint64_t seq = 0;
	auto send_some = [&](uint64_t count, Child &cons) {
		for (uint64_t i = 0; i < count; i++) {
			size_t n = random_size(rng, max);
			make_msg(buf.data(), n, seq, 0);
			for (;;) {
				auto r = p->send(as_bytes(buf.data(), n), shmq::Timeout::after(k10s));
				if (r)
					break;
				// EPIPE: the ring is full and the consumer not (yet) there.
				if (r.error().code() != EPIPE)
					return r.error().code();
				if (cons.wait_exit(0))
					return EPIPE; // the consumer died by itself
				sleep_ms(1);
			}
			seq++;
		}
		return 0;
	};
	for (int it = 0; it < iters; it++) {
		Child cons = Child::spawn([&] { return consume_stream(q_.name(), &*log, it); });
		if (rng.chance(10)) {
			// Kill at once, perhaps before it attached.
			sleep_ms(unsigned(rng.range(0, 3)));
		} else {
			int e = send_some(rng.range(0, 2000), cons);
			ASSERT_EQ(0, e) << "iteration " << it << ": send: " << errname(e) << "; consumer: "
					<< (cons.running() ? "running" : cons.describe()) << " " << log->error;
			// Let it catch up for a random while, maybe blocking in wait.
			for (uint64_t spin = rng.range(0, 200000); spin; spin--)
				asm volatile("" ::: "memory");
		}
		cons.kill_and_reap();
		ASSERT_TRUE(cons.killed_by(SIGKILL)) << "iteration " << it << ": consumer " << cons.describe() << ": "
						     << log->error;
		ASSERT_EQ(0, log->failed.load()) << log->error;
		Fd again(open_queue(q_.name(), O_RDONLY));
		ASSERT_TRUE(again.ok()) << "iteration " << it << ": reopen after SIGKILL: " << errname(-again.get());
	}
	// A final consumer takes the rest; the producer then leaves so that it
	// ends with EPIPE.
	// The child must not inherit the producer: a forked copy of its fd and
	// mappings would keep the producer attached after p->close().
	Child cons = Child::spawn([&] {
		p->close();
		return consume_stream(q_.name(), &*log, iters);
	});
	ASSERT_EQ(0, send_some(1000, cons));
	p->close();
	ASSERT_TRUE(cons.wait_exit(120000)) << "final consumer did not finish";
	ASSERT_TRUE(cons.exited_with(0)) << cons.describe() << ": " << log->error;
	EXPECT_EQ(seq, log->next.load()) << "messages sent vs. released in order";
	EXPECT_EQ(-1, log->releasing.load());
	// Each kill adds at most one redelivery (killed between peek and
	// release) or hides one delivery from the count (killed between the
	// release and the bookkeeping).
	EXPECT_LE(log->delivered.load(), log->next.load() + iters) << "more redeliveries than kills";
	EXPECT_LE(log->next.load(), log->delivered.load() + iters);
	printf("[   INFO   ] %d consumers killed, %llu messages, %llu deliveries\n", iters, (unsigned long long)seq,
	       (unsigned long long)log->delivered.load());
}

TEST_F(Kill, ProducerKilledWhileBlockedInWait)
{
	make(4096);
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	Shared<ProducerLog> log;
	for (int round = 0; round < 3; round++) {
		Child prod = Child::spawn([&] { return produce_stream(q_.name(), &*log, round, UINT64_MAX); });
		// The ring fills, then the producer sleeps for room.
		ASSERT_TRUE(eventually(10000, [&] { return c.write_waiters() != 0; }))
			<< "producer never slept (ring tail " << c.tail() << ")";
		sleep_ms(50);
		ASSERT_TRUE(eventually(5000, [&] { return task_state(prod.pid()) == 'S'; })) << task_state(prod.pid());
		prod.kill_and_reap();
		EXPECT_TRUE(prod.killed_by(SIGKILL)) << prod.describe();
		EXPECT_TRUE(eventually(1000, [&] { return c.write_waiters() == 0; }))
			<< "write_waiters " << c.write_waiters() << " after the sleeping producer was killed";
		EXPECT_EQ(uint32_t(SHMQ_STATE_CONSUMER), c.state());
		c.set_head(c.tail()); // consume everything
		ASSERT_EQ(0, xioctl_val(c.fd(), SHMQ_IOC_WAKE, 0));
		Fd p(open_queue(q_.name(), O_WRONLY));
		ASSERT_TRUE(p.ok()) << "reopen: " << errname(-p.get());
	}
}

TEST_F(Kill, ConsumerKilledWhileBlockedInWait)
{
	make(4096);
	RawEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	for (int round = 0; round < 3; round++) {
		Pipe ready;
		Child cons = Child::spawn([&] {
			auto c = shmq::Consumer::open(q_.name());
			if (!c)
				return 10;
			ready.send();
			uint8_t buf[64];
			auto r = c->receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(std::chrono::seconds(30)));
			return r ? 0 : 11;
		});
		ASSERT_EQ(1, ready.recv(10000));
		ASSERT_TRUE(eventually(10000, [&] { return p.read_waiters() != 0; })) << "consumer never slept";
		cons.kill_and_reap();
		EXPECT_TRUE(cons.killed_by(SIGKILL)) << cons.describe();
		EXPECT_TRUE(eventually(1000, [&] { return p.read_waiters() == 0; }))
			<< "read_waiters " << p.read_waiters() << " after the sleeping consumer was killed";
		EXPECT_EQ(uint32_t(SHMQ_STATE_PRODUCER), p.state());
		// A message published now is not lost: the next consumer gets it.
		p.publish(40, uint8_t(round));
		auto c = shmq::Consumer::open(q_.name());
		ASSERT_TRUE(c) << err_str(c.error());
		uint8_t buf[64];
		auto r = c->try_receive(as_wbytes(buf, sizeof buf));
		ASSERT_TRUE(r) << err_str(r.error());
		EXPECT_EQ(40u, *r);
		EXPECT_EQ(uint8_t(round), buf[39]);
	}
}

TEST_F(Kill, ManyWaitersKilledLeaveNoSleeperCount)
{
	make();
	RawEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	Pipe ready;
	// One consumer process with several threads asleep in SHMQ_IOC_WAIT.
	Child cons = Child::spawn([&] {
		int fd = open_queue(q_.name(), O_RDONLY);
		if (fd < 0)
			return 10;
		std::vector<std::thread> ts;
		for (int i = 0; i < 4; i++)
			ts.emplace_back([fd] { raw_wait(fd, SHMQ_WAIT_READABLE, 0, deadline_in_ms(30000)); });
		ready.send();
		for (auto &t : ts)
			t.join();
		return 0;
	});
	ASSERT_EQ(1, ready.recv(10000));
	ASSERT_TRUE(eventually(5000, [&] { return p.read_waiters() != 0; }));
	sleep_ms(100);
	cons.kill_and_reap();
	EXPECT_TRUE(eventually(1000, [&] { return p.read_waiters() == 0; }))
		<< "read_waiters " << p.read_waiters() << " after killing 4 sleepers";
	Fd again(open_queue(q_.name(), O_RDONLY));
	EXPECT_TRUE(again.ok()) << errname(-again.get());
}

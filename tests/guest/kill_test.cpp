// SPDX-License-Identifier: MIT
// Kill*: SIGKILL producers and consumers at random points of a stream and
// check, with sequence numbers and checksums, that no committed message is
// lost, duplicated (except a peeked-but-not-released one, redelivered once)
// or reordered, that the role can be taken again at once, and that the
// kernel's waiter bookkeeping does not leak. CrashPointsEveryMessageChecked
// (at the end) kills both sides at chosen points with an exact checker and
// proves afterwards that the queue works, destroys and frees everything.
#include "shmq_test.hpp"
#include "usage.hpp"

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
			if (!p->commit(std::move(*r), used).has_value())
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
				if (!p->commit_deferred(std::move(*r)).has_value())
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
			if (!c->release().has_value())
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

// ---------------------------------------------------------------------------
// Kill.CrashPointsEveryMessageChecked: producers and consumers run at the
// same time, each incarnation with a plan that ends in SIGKILL at a chosen
// point (mid-reserve, holding deferred commits, right before or after a
// publication, between peek and release, right after a release) or at a
// random moment, or while proven blocked in SHMQ_IOC_WAIT. After each
// death the parent reads the shared counter the dead process owned (tail or
// head) to learn exactly what it published or released, so the checker is
// exact: per producer incarnation (a stream) the consumers must release
// exactly the messages it published, in order, each passing its checksum;
// the only repeat allowed is the message a consumer had peeked and not
// released when it died, and then it must come next.

namespace {

constexpr int kCrashMaxInc = 1024; // incarnations per side

// Messages are keyed (stream + 1) << 40 | seq; 0 means none.
constexpr uint64_t crash_key(uint64_t stream, uint64_t seq) { return (stream + 1) << 40 | seq; }
constexpr uint64_t key_stream(uint64_t k) { return (k >> 40) - 1; }
constexpr uint64_t key_seq(uint64_t k) { return k & ((uint64_t(1) << 40) - 1); }

enum ProdPoint : int {
	P_ASYNC,	     // the parent kills it after a random number of messages or time
	P_BLOCKED,	     // the parent kills it once it sleeps for room (no consumer)
	P_MID_RESERVE,	     // reserve() returned, payload half written
	P_DEFERRED,	     // several commit_deferred(), no flush
	P_DEFERRED_RESERVED, // deferred commits plus an outstanding reservation
	P_BEFORE_PUBLISH,    // decided to send, died before the call
	P_AFTER_PUBLISH,     // send() returned, died before its bookkeeping
	P_COUNT
};
const char *const kProdPointName[P_COUNT] = {"async",	  "blocked in wait", "mid-reserve", "deferred commits",
					     "deferred+reserve", "before publish", "after publish"};

enum ConsPoint : int {
	C_ASYNC,	 // the parent kills it after a random number of messages or time
	C_BLOCKED,	 // the parent kills it once it sleeps on an empty ring (no producer)
	C_PEEKED,	 // peek() returned, before the checks
	C_BEFORE_RELEASE, // checked and marked, release() not called
	C_AFTER_RELEASE, // release() returned, before the bookkeeping
	C_COUNT
};
const char *const kConsPointName[C_COUNT] = {"async", "blocked in wait", "peeked", "before release",
					     "after release"};

struct CrashLog {
	// Producer incarnation i writes stream i.
	struct Prod {
		std::atomic<uint64_t> committed;  // messages certainly published
		std::atomic<uint64_t> publishing; // at most this many published
		std::atomic<uint64_t> ctail;	  // shared tail after `committed` messages
		std::atomic<uint64_t> published;  // resolved by the parent after its death
	} prod[kCrashMaxInc + 1];
	// Consumer side: per stream, messages released.
	std::atomic<uint64_t> received[kCrashMaxInc + 1];
	std::atomic<uint64_t> last_key;	   // last message released
	std::atomic<uint64_t> rel_key;	   // message being released, 0: none
	std::atomic<uint64_t> rel_head;	   // shared head before that release
	std::atomic<int> expect_redelivery; // rel_key was not released: it comes next
	std::atomic<uint64_t> cons_count;  // released by the current consumer incarnation
	std::atomic<uint64_t> checked;	   // messages verified (redeliveries included)
	std::atomic<uint64_t> redelivered;
	std::atomic<int> failed;
	char error[512];
};

void crash_fail(CrashLog *log, const std::string &why)
{
	if (log->failed.exchange(1) == 0)
		snprintf(log->error, sizeof log->error, "%s", why.c_str());
}

// Maps one region of the caller's own queue fd read-only (to read its own
// shared counter); nullptr on failure.
const uint64_t *map_counter(int qfd, bool producer)
{
	shmq_layout L;
	if (get_layout(qfd, &L))
		return nullptr;
	int rfd = ring_fd(qfd);
	if (rfd < 0)
		return nullptr;
	const shmq_region &r = producer ? L.producer : L.consumer;
	void *p = ::mmap(nullptr, r.size, PROT_READ, MAP_SHARED, rfd, off_t(r.offset));
	::close(rfd);
	if (p == MAP_FAILED)
		return nullptr;
	return reinterpret_cast<const uint64_t *>(static_cast<uint8_t *>(p) +
						  (producer ? L.tail_off : L.head_off));
}

void unmap_counter(const uint64_t *p)
{
	::munmap(reinterpret_cast<void *>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t(page_size() - 1)),
		 page_size());
}

uint64_t load_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

[[noreturn]] void die_now()
{
	kill(getpid(), SIGKILL);
	for (;;)
		pause();
}

// Producer incarnation @inc (stream @inc): mixes send, reserve/commit and
// deferred batches; at message @stop it dies at @point (self-kill points).
int crash_producer(const std::string &name, CrashLog *log, int inc, int point, uint64_t stop, uint64_t seed)
{
	shmq::OpenOptions oo;
	oo.ignore_hangup = true; // consumers come and go
	auto p = shmq::Producer::open(name, oo);
	if (!p) {
		crash_fail(log, strprintf("producer %d: open: %s", inc, err_str(p.error()).c_str()));
		return 10;
	}
	CrashLog::Prod &me = log->prod[inc];
	const uint64_t *tail = map_counter(p->fd(), true);
	if (!tail) {
		crash_fail(log, strprintf("producer %d: cannot map its own producer region", inc));
		return 11;
	}
	if (load_u64(tail) != me.ctail.load()) {
		crash_fail(log, strprintf("producer %d: shared tail %llu at open, the last producer left %llu", inc,
					  (unsigned long long)load_u64(tail), (unsigned long long)me.ctail.load()));
		return 12;
	}
	Rng rng(seed);
	const size_t max = size_t(std::min<uint64_t>(p->info().max_message, 3000));
	std::vector<uint8_t> buf(max);
	const auto tmo = shmq::Timeout::after(std::chrono::seconds(120));
	uint64_t seq = 0;
	auto done = [&](uint64_t n) { // n more messages are published
		seq += n;
		me.committed = seq; // first committed, then ctail (see resolve)
		me.ctail = load_u64(tail);
	};
	// A try_reserve that finds the ring full publishes the deferred commits
	// before it looks again, and may then find room after all and succeed:
	// messages before @upto are published then, the ones deferred after
	// this reservation are not. Seen by the tail having moved.
	auto note_try_published = [&](uint64_t upto) {
		const uint64_t t = load_u64(tail);
		if (t != me.ctail) {
			me.committed = upto; // first committed, then ctail (see resolve)
			me.ctail = t;
		}
	};
	for (;;) {
		if (seq >= stop) {
			switch (point) {
			case P_MID_RESERVE: {
				size_t n = random_size(rng, max);
				auto r = p->reserve(n, tmo);
				if (!r) {
					crash_fail(log, strprintf("producer %d: reserve: %s", inc,
								  err_str(r.error()).c_str()));
					return 26;
				}
				make_msg(buf.data(), n, seq, inc);
				memcpy(r->data().data(), buf.data(), n / 2);
				die_now();
			}
			case P_DEFERRED:
			case P_DEFERRED_RESERVED: {
				const uint64_t k = rng.range(1, 16);
				uint64_t s = seq; // next message: seq..s-1 are committed, deferred
				for (; s < seq + k; s++) {
					size_t n = random_size(rng, 256);
					// A try_reserve that finds the ring full publishes
					// the deferred commits before its EAGAIN.
					me.publishing = s;
					auto r = p->try_reserve(n);
					if (!r)
						break;
					note_try_published(s);
					make_msg(reinterpret_cast<uint8_t *>(r->data().data()), n, s, inc);
					if (!p->commit_deferred(std::move(*r)).has_value())
						break;
				}
				if (point == P_DEFERRED_RESERVED) {
					size_t n = random_size(rng, max);
					me.publishing = s; // as above
					auto r = p->try_reserve(n);
					if (r)
						make_msg(reinterpret_cast<uint8_t *>(r->data().data()), n, s, inc);
				}
				die_now();
			}
			case P_BEFORE_PUBLISH:
				me.publishing = seq + 1;
				die_now();
			default:
				break;
			}
		}
		const unsigned mode = unsigned(rng.next() % 10);
		if (mode < 4 || (point == P_AFTER_PUBLISH && seq >= stop)) { // send (copy)
			size_t n = random_size(rng, max);
			make_msg(buf.data(), n, seq, inc);
			me.publishing = seq + 1;
			auto r = p->send(as_bytes(buf.data(), n), tmo);
			if (!r) {
				crash_fail(log, strprintf("producer %d: send: %s", inc, err_str(r.error()).c_str()));
				return 20;
			}
			if (point == P_AFTER_PUBLISH && seq >= stop)
				die_now();
			done(1);
		} else if (mode < 7) { // zero copy, perhaps using less than reserved
			size_t n = random_size(rng, max);
			auto r = p->reserve(n, tmo);
			if (!r) {
				crash_fail(log, strprintf("producer %d: reserve: %s", inc, err_str(r.error()).c_str()));
				return 21;
			}
			size_t used = rng.chance(50) ? n : size_t(rng.range(kMinMsg, n));
			make_msg(reinterpret_cast<uint8_t *>(r->data().data()), used, seq, inc);
			me.publishing = seq + 1;
			if (!p->commit(std::move(*r), used).has_value()) {
				crash_fail(log, strprintf("producer %d: commit failed", inc));
				return 22;
			}
			done(1);
		} else { // a batch behind one flush
			const uint64_t want = rng.range(1, 16);
			uint64_t k = 0;
			for (; k < want; k++) {
				size_t n = random_size(rng, std::min<size_t>(max, 512));
				if (k)	// a full ring publishes the k deferred commits
					me.publishing = seq + k;
				auto r = p->try_reserve(n);
				if (r && k)
					note_try_published(seq + k);
				if (!r) {
					if (r.error().code() != EAGAIN) {
						crash_fail(log, strprintf("producer %d: try_reserve: %s", inc,
									  err_str(r.error()).c_str()));
						return 23;
					}
					break; // full: publish what we have
				}
				make_msg(reinterpret_cast<uint8_t *>(r->data().data()), n, seq + k, inc);
				if (!p->commit_deferred(std::move(*r)).has_value()) {
					crash_fail(log, strprintf("producer %d: commit_deferred failed", inc));
					return 24;
				}
			}
			if (k == 0) { // nothing fitted: wait for room
				auto r = p->reserve(kMinMsg, tmo);
				if (!r) {
					crash_fail(log, strprintf("producer %d: reserve: %s", inc,
								  err_str(r.error()).c_str()));
					return 25;
				}
				p->abort(std::move(*r));
				continue;
			}
			me.publishing = seq + k;
			p->flush();
			done(k);
		}
	}
}

// Checks one message the consumer is about to release, against the log.
// Returns its key, or 0 after recording a failure.
uint64_t crash_check(CrashLog *log, const uint8_t *m, size_t n, const char *who)
{
	MsgHdr h{};
	std::string why;
	if (!check_msg(m, n, &h, &why)) {
		crash_fail(log, strprintf("%s: %s", who, why.c_str()));
		return 0;
	}
	if (h.stream > uint64_t(kCrashMaxInc)) {
		crash_fail(log, strprintf("%s: stream %llu out of range", who, (unsigned long long)h.stream));
		return 0;
	}
	const uint64_t key = crash_key(h.stream, h.seq);
	if (log->expect_redelivery) {
		if (key != log->rel_key) {
			crash_fail(log, strprintf("%s: expected the redelivery of stream %llu seq %llu (peeked, not "
						  "released by a killed consumer), got stream %llu seq %llu",
						  who, (unsigned long long)key_stream(log->rel_key),
						  (unsigned long long)key_seq(log->rel_key), (unsigned long long)h.stream,
						  (unsigned long long)h.seq));
			return 0;
		}
		return key;
	}
	const uint64_t last = log->last_key;
	const bool ok = last == 0 ? h.seq == 0
				  : (h.stream == key_stream(last) && h.seq == key_seq(last) + 1) ||
					    (h.stream > key_stream(last) && h.seq == 0);
	if (!ok) {
		crash_fail(log, strprintf("%s: after stream %llu seq %llu got stream %llu seq %llu (lost, "
					  "duplicated or reordered)",
					  who, last ? (unsigned long long)key_stream(last) : 0ull,
					  last ? (unsigned long long)key_seq(last) : 0ull, (unsigned long long)h.stream,
					  (unsigned long long)h.seq));
		return 0;
	}
	return key;
}

// Bookkeeping after a release (also done by the parent for a consumer
// that died after its release store).
void crash_released(CrashLog *log, uint64_t key)
{
	std::atomic<uint64_t> &r = log->received[key_stream(key)];
	if (r.load() < key_seq(key) + 1)
		r = key_seq(key) + 1;
	log->last_key = key;
	log->rel_key = 0;
}

// One message through @c: peek, check, release, with the kill points.
// Returns 0, or an errno from peek (after recording a failure unless
// @ok_errno allows it).
int crash_consume_one(shmq::Consumer &c, const uint64_t *head, CrashLog *log, int point, bool at_stop,
		      Rng &rng, std::vector<uint8_t> &buf, const char *who, int ok_errno = 0)
{
	auto r = c.peek(shmq::Timeout::after(std::chrono::seconds(120)));
	if (!r) {
		if (r.error().code() != ok_errno)
			crash_fail(log, strprintf("%s: peek: %s", who, err_str(r.error()).c_str()));
		return r.error().code();
	}
	if (at_stop && point == C_PEEKED)
		die_now();
	const uint8_t *m = reinterpret_cast<const uint8_t *>(r->data().data());
	if (rng.chance(40)) { // verify a copy, as receive() would hand it out
		memcpy(buf.data(), m, std::min(buf.size(), r->size()));
		m = buf.data();
	}
	const uint64_t key = crash_check(log, m, r->size(), who);
	if (!key)
		return EBADMSG;
	log->checked++;
	log->rel_head = load_u64(head); // first rel_head, then rel_key
	log->rel_key = key;
	if (log->expect_redelivery) {
		log->expect_redelivery = 0;
		log->redelivered++;
	}
	if (at_stop && point == C_BEFORE_RELEASE)
		die_now();
	if (!c.release().has_value()) {
		crash_fail(log, strprintf("%s: release failed", who));
		return EINVAL;
	}
	if (at_stop && point == C_AFTER_RELEASE)
		die_now();
	crash_released(log, key);
	log->cons_count++;
	return 0;
}

int crash_consumer(const std::string &name, CrashLog *log, int inc, int point, uint64_t stop, uint64_t seed)
{
	shmq::OpenOptions oo;
	oo.ignore_hangup = true; // producers come and go
	auto c = shmq::Consumer::open(name, oo);
	if (!c) {
		crash_fail(log, strprintf("consumer %d: open: %s", inc, err_str(c.error()).c_str()));
		return 10;
	}
	const uint64_t *head = map_counter(c->fd(), false);
	if (!head) {
		crash_fail(log, strprintf("consumer %d: cannot map its own consumer region", inc));
		return 11;
	}
	Rng rng(seed);
	std::vector<uint8_t> buf(64 * 1024);
	const std::string who = strprintf("consumer %d", inc);
	for (uint64_t i = 0;; i++)
		if (crash_consume_one(*c, head, log, point, i >= stop, rng, buf, who.c_str()))
			return 20;
}

// Is @pid asleep inside ioctl(2) (SHMQ_IOC_WAIT is the only ioctl that sleeps)?
bool asleep_in_ioctl(pid_t pid)
{
	if (task_state(pid) != 'S')
		return false;
	std::string s;
	if (!read_file(strprintf("/proc/%d/syscall", int(pid)), &s))
		return false;
	return strtol(s.c_str(), nullptr, 10) == SYS_ioctl;
}

struct Slot {
	Child child;
	int inc = -1;
	int point = 0;
	uint64_t stop = 0;	   // messages before the kill point
	uint64_t kill_at_ns = 0;   // P_ASYNC/C_ASYNC: or at this time
	uint64_t started_ns = 0;
	uint64_t blocked_since = 0; // *_BLOCKED: first seen asleep
	bool alive() const { return child.running(); }
};

} // namespace

TEST_F(Kill, CrashPointsEveryMessageChecked)
{
	const Usage base = read_usage();
	make(16 * 1024);
	const uint64_t cap = q_.capacity();
	const uint64_t seed = test_seed();
	printf("[   INFO   ] seed %llu (SHMQ_TEST_SEED=%llu repeats the kill plans)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	Rng rng(seed);
	const int target = scaled(300, 120); // SIGKILLs
	const uint64_t budget_ns = ms_to_ns(scaled(150000u, 500000u));
	const unsigned stuck_ms = scaled(30000u, 120000u);
	Shared<CrashLog> log;
	std::array<int, P_COUNT> pkills{};
	std::array<int, C_COUNT> ckills{};
	int prod_inc = 0, cons_inc = 0, kills = 0;
	Slot P, C;
	bool hold_p = false, hold_c = false; // keep that slot empty (the other side's BLOCKED plan)
	const uint64_t t_start = now_ns();

	// After the producer of incarnation @inc died: how many messages did it
	// publish? Its tail tells: still the tail it logged after `committed`
	// messages, or moved by its one publication in flight.
	auto resolve_producer = [&](int inc) {
		RawEnd raw;
		ASSERT_TRUE(eventually(5000, [&] {
			Fd f(open_queue(q_.name(), O_WRONLY));
			return f.ok();
		})) << "producer role still taken after the producer was reaped";
		ASSERT_NO_FATAL_FAILURE(raw.open(q_.name(), O_WRONLY));
		const uint64_t T = raw.tail();
		CrashLog::Prod &pr = log->prod[inc];
		const uint64_t c = pr.committed, pub = pr.publishing, ct = pr.ctail;
		if (T == ct) {
			pr.published = c;
		} else {
			ASSERT_TRUE(T > ct && T - ct <= cap)
				<< "producer " << inc << ": tail " << T << " after its death, logged " << ct;
			ASSERT_GT(pub, c) << "producer " << inc << ": tail moved from " << ct << " to " << T
					  << " but nothing was being published";
			pr.published = pub;
		}
		log->prod[inc + 1].ctail = T;
	};
	// After a consumer died: did it release the message it was releasing?
	auto resolve_consumer = [&]() {
		RawEnd raw;
		ASSERT_TRUE(eventually(5000, [&] {
			Fd f(open_queue(q_.name(), O_RDONLY));
			return f.ok();
		})) << "consumer role still taken after the consumer was reaped";
		ASSERT_NO_FATAL_FAILURE(raw.open(q_.name(), O_RDONLY));
		const uint64_t H = raw.head();
		const uint64_t key = log->rel_key;
		if (!key)
			return;
		const uint64_t before = log->rel_head;
		if (H == before) {
			log->expect_redelivery = 1; // peeked, never released: it must come next
		} else {
			ASSERT_TRUE(H > before && H - before <= cap)
				<< "head " << H << " after the consumer's death, " << before << " before its release";
			crash_released(&*log, key);
		}
	};
	auto spawn_producer = [&]() {
		const int inc = prod_inc++;
		P.inc = inc;
		P.point = int(rng.next() % P_COUNT);
		// Blocked for room needs the consumer slot empty: once the
		// running consumer dies, it is not replaced until this one is
		// killed (never both sides held: hold_p means a blocked plan
		// of the consumer runs).
		if (P.point == P_BLOCKED && hold_p)
			P.point = P_ASYNC;
		if (P.point == P_BLOCKED)
			hold_c = true;
		P.stop = rng.chance(10) ? 0 : rng.range(0, 400);
		P.kill_at_ns = now_ns() + ms_to_ns(rng.range(0, 60));
		P.started_ns = now_ns();
		P.blocked_since = 0;
		log->prod[inc].committed = 0;
		log->prod[inc].publishing = 0;
		const uint64_t cs = rng.next();
		const int point = P.point;
		const uint64_t stop = P.stop;
		P.child = Child::spawn([&, inc, point, stop, cs] {
			return crash_producer(q_.name(), &*log, inc, point, stop, cs);
		});
	};
	auto spawn_consumer = [&]() {
		const int inc = cons_inc++;
		C.inc = inc;
		C.point = int(rng.next() % C_COUNT);
		if (C.point == C_BLOCKED && hold_c)
			C.point = C_ASYNC;
		if (C.point == C_BLOCKED)
			hold_p = true;
		C.stop = rng.chance(10) ? 0 : rng.range(0, 400);
		C.kill_at_ns = now_ns() + ms_to_ns(rng.range(0, 60));
		C.started_ns = now_ns();
		C.blocked_since = 0;
		log->cons_count = 0;
		const uint64_t cs = rng.next();
		const int point = C.point;
		const uint64_t stop = C.stop;
		C.child = Child::spawn([&, inc, point, stop, cs] {
			return crash_consumer(q_.name(), &*log, inc, point, stop, cs);
		});
	};
	// Should the parent kill this one now?
	auto due = [&](Slot &s, bool producer) {
		const int async = producer ? int(P_ASYNC) : int(C_ASYNC);
		const int blocked = producer ? int(P_BLOCKED) : int(C_BLOCKED);
		if (s.point == async) {
			const uint64_t n = producer ? log->prod[s.inc].committed.load() : log->cons_count.load();
			return n >= s.stop || now_ns() >= s.kill_at_ns;
		}
		if (s.point == blocked) {
			// Proven: asleep in the ioctl now and still 20 ms later.
			if (!asleep_in_ioctl(s.child.pid())) {
				s.blocked_since = 0;
				return false;
			}
			if (!s.blocked_since)
				s.blocked_since = now_ns();
			return now_ns() - s.blocked_since >= ms_to_ns(20);
		}
		return false;
	};
	auto reap = [&](Slot &s, bool producer, bool by_us) {
		if (by_us)
			s.child.kill_and_reap();
		ASSERT_TRUE(s.child.killed_by(SIGKILL))
			<< (producer ? "producer " : "consumer ") << s.inc << " ("
			<< (producer ? kProdPointName[s.point] : kConsPointName[s.point]) << "): "
			<< s.child.describe() << ": " << log->error;
		kills++;
		if (producer) {
			pkills[size_t(s.point)]++;
			if (s.point == P_BLOCKED)
				hold_c = false;
			ASSERT_NO_FATAL_FAILURE(resolve_producer(s.inc));
		} else {
			ckills[size_t(s.point)]++;
			if (s.point == C_BLOCKED)
				hold_p = false;
			ASSERT_NO_FATAL_FAILURE(resolve_consumer());
		}
	};

	while (kills < target) {
		ASSERT_EQ(0, log->failed.load()) << log->error;
		ASSERT_LT(now_ns() - t_start, budget_ns)
			<< "only " << kills << " of " << target << " kills within the time budget";
		ASSERT_LT(prod_inc, kCrashMaxInc);
		ASSERT_LT(cons_inc, kCrashMaxInc);
		if (!P.alive() && !hold_p)
			spawn_producer();
		if (!C.alive() && !hold_c)
			spawn_consumer();
		for (int side = 0; side < 2; side++) {
			Slot &s = side == 0 ? P : C;
			const bool producer = side == 0;
			if (!s.alive())
				continue;
			if (s.child.wait_exit(0)) { // died by itself: must be its self-kill
				ASSERT_NO_FATAL_FAILURE(reap(s, producer, false));
			} else if (due(s, producer)) {
				ASSERT_NO_FATAL_FAILURE(reap(s, producer, true));
			} else {
				ASSERT_LT(now_ns() - s.started_ns, ms_to_ns(stuck_ms))
					<< (producer ? "producer " : "consumer ") << s.inc << " ("
					<< (producer ? kProdPointName[s.point] : kConsPointName[s.point])
					<< ", stop after " << s.stop << ") made no progress to its kill point; state "
					<< task_state(s.child.pid()) << ", log: " << log->error;
			}
		}
		sleep_ms(1);
	}
	// Whatever still runs dies now, at a random moment.
	for (int side = 0; side < 2; side++) {
		Slot &s = side == 0 ? P : C;
		if (s.alive()) {
			ASSERT_NO_FATAL_FAILURE(reap(s, side == 0, true));
		}
	}
	ASSERT_EQ(0, log->failed.load()) << log->error;

	// A fresh pair streams correctly: this process consumes (with the same
	// checks), a last producer sends a fixed number and leaves (EPIPE).
	const int last = prod_inc++;
	const uint64_t final_count = scaled<uint64_t>(2000, 300);
	{
		auto c = shmq::Consumer::open(q_.name());
		ASSERT_TRUE(c) << err_str(c.error());
		Child prod = Child::spawn([&] {
			c->close();
			auto p = shmq::Producer::open(q_.name());
			if (!p)
				return 10;
			Rng r2(seed ^ 0xf1a1);
			std::vector<uint8_t> b(3000);
			for (uint64_t s = 0; s < final_count; s++) {
				size_t n = random_size(r2, b.size());
				make_msg(b.data(), n, s, uint64_t(last));
				if (!p->send(as_bytes(b.data(), n), shmq::Timeout::after(std::chrono::seconds(60))))
					return 11;
			}
			return 0;
		});
		const uint64_t *head = map_counter(c->fd(), false);
		ASSERT_NE(nullptr, head);
		struct Unmap {
			const uint64_t *p;
			~Unmap() { unmap_counter(p); } // a mapping holds a module reference
		} unmap{head};
		std::vector<uint8_t> buf(64 * 1024);
		for (;;) {
			const int e = crash_consume_one(*c, head, &*log, -1, false, rng, buf, "final consumer", EPIPE);
			if (e == EPIPE)
				break;
			ASSERT_EQ(0, e) << log->error;
		}
		ASSERT_TRUE(prod.wait_exit(60000));
		ASSERT_TRUE(prod.exited_with(0)) << "final producer: " << prod.describe();
		log->prod[last].published = final_count;
	}
	ASSERT_EQ(0, log->failed.load()) << log->error;

	// Exact accounting, stream by stream.
	uint64_t published = 0;
	for (int i = 0; i <= last; i++) {
		EXPECT_EQ(log->prod[i].published.load(), log->received[i].load())
			<< "stream " << i << ": messages published vs. released in order (committed "
			<< log->prod[i].committed.load() << ", publishing " << log->prod[i].publishing.load() << ")";
		published += log->prod[i].published;
	}
	const int cons_killed = cons_inc;
	EXPECT_EQ(0, log->expect_redelivery.load()) << "a redelivery never came";
	EXPECT_LE(log->redelivered.load(), uint64_t(cons_killed)) << "more redeliveries than consumer kills";
	EXPECT_GE(log->checked.load(), published);
	EXPECT_LE(log->checked.load(), published + uint64_t(cons_killed))
		<< "messages seen more than once beyond the at-least-once case";
	EXPECT_EQ(uint64_t(final_count), log->received[last].load());

	// Destroy works, and nothing of the queue is left.
	ASSERT_EQ(0, q_.destroy());
	EXPECT_TRUE(wait_path(q_.path(), false)) << q_.path() << " still there after destroy";
	Usage now;
	EXPECT_TRUE(usage_back_to(base, &now)) << "leak: before " << base.describe() << ", after " << now.describe();
	printf("[   INFO   ] usage checked with %s: %s\n", base.source().c_str(), now.describe().c_str());

	std::string pk, ck;
	for (int i = 0; i < P_COUNT; i++)
		pk += strprintf("%s%s %d", i ? ", " : "", kProdPointName[i], pkills[size_t(i)]);
	for (int i = 0; i < C_COUNT; i++)
		ck += strprintf("%s%s %d", i ? ", " : "", kConsPointName[i], ckills[size_t(i)]);
	printf("[   INFO   ] %d SIGKILLs in %.1f s: producers (%s); consumers (%s)\n", kills,
	       double(now_ns() - t_start) / 1e9, pk.c_str(), ck.c_str());
	printf("[   INFO   ] %llu messages published in %d streams, %llu checked, %llu redelivered after a kill "
	       "between peek and release\n",
	       (unsigned long long)published, last + 1, (unsigned long long)log->checked.load(),
	       (unsigned long long)log->redelivered.load());
	report_figure("kill_points", uint64_t(kills), "SIGKILLs at random points, every message checked");
	report_figure("messages_checked", log->checked.load(), "messages verified by sequence and checksum");
}

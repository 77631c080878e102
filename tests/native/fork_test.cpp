// SPDX-License-Identifier: MIT
// Producer and consumer in separate processes over plain shared memory, each
// mapping its peer's regions read-only as the kernel would. Waiting spins
// with sched_yield (the handles have no kernel fd).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstring>
#include <functional>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>
#include <thread>
#include <vector>

#include "shm_ring.hpp"

using namespace shmq;
using namespace std::chrono_literals;
using shmq::test::ShmRing;

namespace {

// Child exit codes name the failure.
enum Exit : int {
	kOk = 0,
	kSendFailed = 10,
	kReceiveFailed = 11,
	kBadSize = 12,
	kBadSeq = 13,
	kBadSum = 14,
	kExtraMessage = 15,
	kBadEnd = 16,
	kSetup = 17,
};

pid_t spawn(const std::function<int()> &fn)
{
	const pid_t pid = fork();
	if (pid == 0) {
		alarm(600); // a hang fails the test instead of blocking the run
		int rc = kSetup;
		try {
			rc = fn();
		} catch (...) {
		}
		_exit(rc);
	}
	return pid;
}

// Exit code, or 128 + signal.
int reap(pid_t pid)
{
	int st = 0;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

// Message @seq: [seq][checksum][payload]; its size depends only on seq, so
// the consumer can check it too.
size_t size_for(uint64_t seq, uint64_t max_message)
{
	const uint64_t r = mix(seq ^ 0x5eed);
	const uint64_t cap = r % 100 == 0 ? max_message : std::min<uint64_t>(max_message, 2048);
	return 16 + (r >> 8) % (cap - 16 + 1);
}

// Word-at-a-time, so that a million messages cost little CPU.
uint64_t checksum(const std::byte *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		std::memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < n; ++i)
		h = (h ^ static_cast<uint8_t>(p[i])) * 0x100000001b3ULL;
	return h;
}

void fill(std::byte *msg, size_t size, uint64_t seq)
{
	uint64_t x = mix(seq) | 1;
	size_t i = 16;
	for (; i < size; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		std::memcpy(msg + i, &x, std::min<size_t>(8, size - i));
	}
	const uint64_t sum = checksum(msg + 16, size - 16);
	std::memcpy(msg, &seq, 8);
	std::memcpy(msg + 8, &sum, 8);
}

int verify(const std::byte *msg, size_t size, uint64_t expect_seq, uint64_t max_message)
{
	if (size != size_for(expect_seq, max_message))
		return kBadSize;
	uint64_t seq, sum;
	std::memcpy(&seq, msg, 8);
	std::memcpy(&sum, msg + 8, 8);
	if (seq != expect_seq)
		return kBadSeq;
	if (sum != checksum(msg + 16, size - 16))
		return kBadSum;
	return kOk;
}

// Copying producer: try_send, yielding while the ring is full.
int copy_producer(ShmRing &s, uint64_t count)
{
	s.protect_for(SHMQ_ROLE_PRODUCER);
	auto p = s.producer();
	std::vector<std::byte> buf(p.info().max_message);
	for (uint64_t seq = 0; seq < count; ++seq) {
		const size_t n = size_for(seq, p.info().max_message);
		fill(buf.data(), n, seq);
		for (;;) {
			auto r = p.try_send(std::span(buf).first(n));
			if (r)
				break;
			if (r.error().code() != EAGAIN)
				return kSendFailed;
			sched_yield();
		}
	}
	return kOk;
}

// Copying consumer: exactly @count messages in order, then EPIPE once the
// producer has gone (the parent clears its state bit): nothing extra.
int copy_consumer(ShmRing &s, uint64_t count)
{
	s.protect_for(SHMQ_ROLE_CONSUMER);
	auto c = s.consumer();
	std::vector<std::byte> buf(c.info().max_message);
	for (uint64_t seq = 0; seq < count; ++seq) {
		Result<size_t> n = size_t{0};
		for (;;) {
			n = c.try_receive(buf);
			if (n)
				break;
			if (n.error().code() != EAGAIN)
				return kReceiveFailed;
			sched_yield();
		}
		if (int e = verify(buf.data(), *n, seq, c.info().max_message))
			return e;
	}
	auto end = c.receive(buf, Timeout::after(120s));
	if (end)
		return kExtraMessage;
	return end.error().code() == EPIPE ? kOk : kBadEnd;
}

// Runs producer and consumer children; the producer's exit is reported to
// the consumer by clearing SHMQ_STATE_PRODUCER, as the kernel would.
void run_pair(ShmRing &s, const std::function<int()> &prod, const std::function<int()> &cons)
{
	const pid_t pc = spawn(cons);
	const pid_t pp = spawn(prod);
	ASSERT_GT(pc, 0);
	ASSERT_GT(pp, 0);
	EXPECT_EQ(reap(pp), kOk) << "producer";
	detail::store_release(s.ring.state, uint32_t{SHMQ_STATE_CONSUMER});
	EXPECT_EQ(reap(pc), kOk) << "consumer";
}

} // namespace

TEST(Fork, MillionRandomSizedMessagesArriveExactlyOnceInOrder)
{
	ShmRing s(65536);
	constexpr uint64_t kCount = 1000000;
	run_pair(
		s, [&] { return copy_producer(s, kCount); },
		[&] { return copy_consumer(s, kCount); });
	// Every byte published was consumed: the ring ends empty.
	EXPECT_EQ(s.tail(), s.head());
	EXPECT_GT(s.tail(), kCount * 16);
}

TEST(Fork, SmallRingRandomSizesWithBlockingCalls)
{
	ShmRing s(4096);
	constexpr uint64_t kCount = 200000;
	auto prod = [&]() -> int {
		s.protect_for(SHMQ_ROLE_PRODUCER);
		auto p = s.producer(/*spin=*/50);
		std::vector<std::byte> buf(p.info().max_message);
		for (uint64_t seq = 0; seq < kCount; ++seq) {
			const size_t n = size_for(seq, p.info().max_message);
			fill(buf.data(), n, seq);
			if (!p.send(std::span(buf).first(n), Timeout::after(60s)))
				return kSendFailed;
		}
		return kOk;
	};
	auto cons = [&]() -> int {
		s.protect_for(SHMQ_ROLE_CONSUMER);
		auto c = s.consumer(/*spin=*/50);
		std::vector<std::byte> buf(c.info().max_message);
		for (uint64_t seq = 0; seq < kCount; ++seq) {
			auto n = c.receive(buf, Timeout::after(60s));
			if (!n)
				return kReceiveFailed;
			if (int e = verify(buf.data(), *n, seq, c.info().max_message))
				return e;
		}
		auto end = c.receive(buf, Timeout::after(120s));
		return end ? kExtraMessage : end.error().code() == EPIPE ? kOk : kBadEnd;
	};
	run_pair(s, prod, cons);
	EXPECT_EQ(s.tail(), s.head());
}

TEST(Fork, ZeroCopyBatchesArriveExactlyOnceInOrder)
{
	ShmRing s(65536);
	constexpr uint64_t kCount = 300000;
	auto prod = [&]() -> int {
		s.protect_for(SHMQ_ROLE_PRODUCER);
		auto p = s.producer();
		for (uint64_t seq = 0; seq < kCount; ++seq) {
			const size_t n = size_for(seq, p.info().max_message);
			Result<Reservation> r = Reservation();
			while (!(r = p.try_reserve(n))) {
				if (r.error().code() != EAGAIN)
					return kSendFailed;
				p.flush(); // the consumer may be waiting for the batch
				sched_yield();
			}
			fill(r->data().data(), n, seq);
			const bool last_of_batch = mix(seq) % 8 == 0;
			if (!(last_of_batch ? p.commit(std::move(*r)) : p.commit_deferred(std::move(*r))))
				return kSendFailed;
		}
		p.flush();
		return kOk;
	};
	auto cons = [&]() -> int {
		s.protect_for(SHMQ_ROLE_CONSUMER);
		auto c = s.consumer();
		for (uint64_t seq = 0; seq < kCount; ++seq) {
			Result<Message> m = Message();
			while (!(m = c.try_peek())) {
				if (m.error().code() != EAGAIN)
					return kReceiveFailed;
				sched_yield();
			}
			if (int e = verify(m->data().data(), m->size(), seq, c.info().max_message))
				return e;
			if (!c.release())
				return kReceiveFailed;
		}
		std::vector<std::byte> buf(c.info().max_message);
		auto end = c.receive(buf, Timeout::after(120s));
		return end ? kExtraMessage : end.error().code() == EPIPE ? kOk : kBadEnd;
	};
	run_pair(s, prod, cons);
	EXPECT_EQ(s.tail(), s.head());
}

TEST(Fork, EveryMessageSizeAcrossProcesses)
{
	ShmRing s(4096);
	const uint64_t max = s.ring.max_message;
	auto prod = [&]() -> int {
		s.protect_for(SHMQ_ROLE_PRODUCER);
		auto p = s.producer();
		std::vector<std::byte> buf(max);
		for (uint64_t n = 0; n <= max; ++n) {
			for (uint64_t i = 0; i < n; ++i)
				buf[i] = std::byte(mix(n + i));
			if (!p.send(std::span(buf).first(n), Timeout::after(60s)))
				return kSendFailed;
		}
		return kOk;
	};
	auto cons = [&]() -> int {
		s.protect_for(SHMQ_ROLE_CONSUMER);
		auto c = s.consumer();
		std::vector<std::byte> buf(max);
		for (uint64_t n = 0; n <= max; ++n) {
			auto got = c.receive(buf, Timeout::after(60s));
			if (!got)
				return kReceiveFailed;
			if (*got != n)
				return kBadSize;
			for (uint64_t i = 0; i < n; ++i)
				if (buf[i] != std::byte(mix(n + i)))
					return kBadSum;
		}
		auto end = c.receive(buf, Timeout::after(120s));
		return end ? kExtraMessage : end.error().code() == EPIPE ? kOk : kBadEnd;
	};
	run_pair(s, prod, cons);
}

// A consumer killed between peek and release leaves that message to the next
// consumer: nothing is lost, the peeked one is delivered again.
TEST(Fork, ConsumerKilledAfterPeekLosesNothing)
{
	ShmRing s(65536);
	constexpr uint64_t kCount = 1000;
	auto p = s.producer();
	std::vector<std::byte> buf(p.info().max_message);
	for (uint64_t seq = 0; seq < kCount; ++seq) {
		const size_t n = 16 + seq % 40;
		fill(buf.data(), n, seq);
		ASSERT_TRUE(p.try_send(std::span(buf).first(n)).has_value());
	}
	const pid_t victim = spawn([&]() -> int {
		s.protect_for(SHMQ_ROLE_CONSUMER);
		auto c = s.consumer();
		for (int i = 0; i < 400; ++i)
			if (!c.try_receive(buf))
				return kReceiveFailed;
		if (!c.try_peek())
			return kReceiveFailed;
		raise(SIGKILL);
		return kOk;
	});
	EXPECT_EQ(reap(victim), 128 + SIGKILL);
	auto c = s.consumer();
	for (uint64_t seq = 400; seq < kCount; ++seq) {
		auto n = c.try_receive(buf);
		ASSERT_TRUE(n.has_value()) << seq;
		uint64_t got;
		std::memcpy(&got, buf.data(), 8);
		ASSERT_EQ(got, seq);
	}
	EXPECT_EQ(c.try_receive(buf).error().code(), EAGAIN);
}

// A producer killed mid-reservation (pad and half a message written) leaves
// nothing visible; the next producer continues at the published tail.
TEST(Fork, ProducerKilledMidReservationPublishesNothing)
{
	ShmRing s(4096);
	s.set_counters(4096 - 32, 4096 - 32);
	const pid_t victim = spawn([&]() -> int {
		s.protect_for(SHMQ_ROLE_PRODUCER);
		auto p = s.producer();
		if (!p.try_send(std::as_bytes(std::span("ok"))))
			return kSendFailed;
		auto r = p.try_reserve(1000); // pad at the end, message at 0
		if (!r)
			return kSendFailed;
		std::memset(r->data().data(), 0xee, 500);
		auto r2 = p.try_reserve(8);
		(void)r2;
		raise(SIGKILL);
		return kOk;
	});
	EXPECT_EQ(reap(victim), 128 + SIGKILL);
	auto c = s.consumer();
	std::vector<std::byte> buf(2048);
	auto n = c.try_receive(buf);
	ASSERT_TRUE(n.has_value());
	EXPECT_EQ(*n, 3u);
	EXPECT_EQ(c.try_receive(buf).error().code(), EAGAIN);
	auto p = s.producer();
	ASSERT_TRUE(p.try_send(std::as_bytes(std::span("next"))).has_value());
	n = c.try_receive(buf);
	ASSERT_TRUE(n.has_value());
	EXPECT_EQ(std::string(reinterpret_cast<char *>(buf.data())), "next");
}

// A write a role must not make faults: the consumer cannot scribble on data.
TEST(Fork, ConsumerProtectionsForbidWritingData)
{
	ShmRing s(4096);
	const pid_t pid = spawn([&]() -> int {
		s.protect_for(SHMQ_ROLE_CONSUMER);
		signal(SIGSEGV, SIG_DFL); // die of it even under AddressSanitizer
		*reinterpret_cast<volatile char *>(s.ring.data) = 1;
		return kOk;
	});
	EXPECT_EQ(reap(pid), 128 + SIGSEGV);
}

// ---------------------------------------------------------------------------
// Objects inherited across fork(): the child must not run a second position
// on the parent's ring. (The ring here is plain MAP_SHARED memory, which the
// child does inherit, unlike a real queue's MADV_DONTFORK mappings: so any
// write the child made through an inherited object would show.)

namespace {

enum ForkExit : int {
	kChildOk = 0,
	kSendNotEBADF = 40,
	kReserveNotEBADF,
	kCommitNotEBADF,
	kPeekNotEBADF,
	kReleaseNotEBADF,
	kReceiveNotEBADF,
	kBatchNotEBADF,
	kResyncNotEBADF,
	kStillOpen,
	kNoForkMessage,
	kReservationStillValid,
	kCountersMoved,
};

// EBADF whose message says the object came from the parent.
template <class R> bool inherited_ebadf(const R &r)
{
	return !r && r.error().code() == EBADF && std::strstr(r.error().what(), "before fork()");
}

} // namespace

TEST(Fork, ChildCallsOnInheritedObjectsFailWithEBADF)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	ASSERT_TRUE(p.try_send(std::as_bytes(std::span("first"))).has_value());
	ASSERT_TRUE(p.try_send(std::as_bytes(std::span("second"))).has_value());
	ASSERT_TRUE(c.try_peek().has_value()); // peeked, not released
	auto r = p.try_reserve(16);	       // outstanding
	ASSERT_TRUE(r.has_value());
	const uint64_t tail = s.tail(), head = s.head();
	const pid_t pid = spawn([&]() -> int {
		std::byte buf[64];
		std::array<Message, 4> batch;
		if (!inherited_ebadf(p.try_send(std::as_bytes(std::span("x")))) ||
		    !inherited_ebadf(p.send(std::as_bytes(std::span("x")), Timeout::none())))
			return kSendNotEBADF;
		if (r->valid())
			return kReservationStillValid;
		if (!inherited_ebadf(p.commit(std::move(*r))))
			return kCommitNotEBADF;
		if (!inherited_ebadf(p.try_reserve(8)) || !inherited_ebadf(p.reserve(8)))
			return kReserveNotEBADF;
		if (!inherited_ebadf(c.try_peek()) || !inherited_ebadf(c.peek(Timeout::none())))
			return kPeekNotEBADF;
		if (!inherited_ebadf(c.release()))
			return kReleaseNotEBADF;
		if (!inherited_ebadf(c.try_receive(buf)) || !inherited_ebadf(c.receive(buf)))
			return kReceiveNotEBADF;
		if (!inherited_ebadf(c.try_peek_many(batch)))
			return kBatchNotEBADF;
		if (!inherited_ebadf(c.resync()))
			return kResyncNotEBADF;
		if (p.is_open() || c.is_open() || p.fd() != -1 || c.fd() != -1)
			return kStillOpen;
		p.flush();
		p.close();
		c.close();
		if (s.tail() != tail || s.head() != head)
			return kCountersMoved;
		return kChildOk;
	});
	EXPECT_EQ(reap(pid), kChildOk);
	// The parent's objects are untouched: its reservation and its peek.
	EXPECT_TRUE(p.is_open() && c.is_open());
	ASSERT_TRUE(r->valid());
	std::memcpy(r->data().data(), "third", 6);
	ASSERT_TRUE(p.commit(std::move(*r), 6).has_value());
	ASSERT_TRUE(c.release().has_value());
	std::byte buf[64];
	EXPECT_EQ(c.try_receive(buf).value(), 7u); // "second"
	EXPECT_EQ(c.try_receive(buf).value(), 6u); // "third"
	EXPECT_EQ(s.head(), s.tail());
}

// The child leaves with exit() after the parent published more: its
// ~Producer once flushed its stale copy of the deferred commits and moved
// the shared tail backwards over the parent's messages.
TEST(Fork, ChildExitNeverMovesTheTailBackwards)
{
	ShmRing s(4096);
	auto c = s.consumer();
	// Heap-allocated and destroyed by exit() in the child (an atexit
	// handler), as a global would be.
	static Producer *p;
	p = new Producer(s.producer());
	auto r = p->try_reserve(8);
	ASSERT_TRUE(r.has_value());
	std::memcpy(r->data().data(), "deferred", 8);
	ASSERT_TRUE(p->commit_deferred(std::move(*r)).has_value()); // tail_ 16, published 0
	int go[2];
	ASSERT_EQ(pipe(go), 0);
	fflush(stdout);
	const pid_t pid = fork();
	if (pid == 0) {
		char b;
		close(go[1]);
		if (read(go[0], &b, 1) != 1)
			_exit(2);
		atexit([] { delete p; });
		exit(0);
	}
	close(go[0]);
	p->flush(); // 16
	for (int i = 0; i < 5; ++i)
		ASSERT_TRUE(p->try_send(std::as_bytes(std::span("after fork"))).has_value());
	const uint64_t tail = s.tail();
	EXPECT_EQ(tail, 16u + 5 * 24);
	ASSERT_EQ(write(go[1], "g", 1), 1);
	close(go[1]);
	EXPECT_EQ(reap(pid), 0);
	EXPECT_EQ(s.tail(), tail) << "the child's exit moved the tail";
	std::byte buf[64];
	EXPECT_EQ(c.try_receive(buf).value(), 8u);
	for (int i = 0; i < 5; ++i)
		EXPECT_EQ(c.try_receive(buf).value(), 11u) << i;
	EXPECT_EQ(c.try_receive(buf).error().code(), EAGAIN);
	delete p;
	p = nullptr;
}

// A child may open its own objects, and a grandchild is disarmed again.
TEST(Fork, ObjectsOpenedInTheChildWork)
{
	ShmRing s(4096);
	auto inherited = s.producer();
	inherited.close(); // the parent hands the producer role over
	const pid_t pid = spawn([&]() -> int {
		auto p = s.producer();
		if (!p.try_send(std::as_bytes(std::span("from the child"))))
			return kSendNotEBADF;
		const pid_t grandchild = fork();
		if (grandchild == 0)
			_exit(inherited_ebadf(p.try_send(std::as_bytes(std::span("x")))) ? 0 : 1);
		return reap(grandchild) == 0 ? kChildOk : kStillOpen;
	});
	EXPECT_EQ(reap(pid), kChildOk);
	auto c = s.consumer();
	std::byte buf[64];
	EXPECT_EQ(c.try_receive(buf).value(), 15u);
	EXPECT_EQ(c.try_receive(buf).error().code(), EAGAIN);
}

// Moves @a to @b and back in another thread while forking 300 times; each
// child runs @child (its exit code: 0 good) on the frozen pair, and
// @counter (the shared counter the child must not move) is compared around
// each fork. Returns the first bad code (4: the counter moved), or 0.
template <class T, class Child, class Counter>
int fork_during_moves(T &a, T &b, Child child, Counter counter)
{
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> moves{0};
	std::thread mover([&] {
		while (!stop.load(std::memory_order_relaxed)) {
			b = std::move(a);
			a = std::move(b);
			moves.fetch_add(1, std::memory_order_relaxed);
		}
	});
	while (moves.load() < 1000)
		sched_yield();
	int bad = 0;
	for (int i = 0; i < 300 && bad == 0; ++i) {
		const uint64_t before = counter();
		const pid_t pid = fork();
		if (pid == 0)
			_exit(child(before));
		bad = reap(pid);
		if (bad == 0 && counter() != before)
			bad = 4;
	}
	stop = true;
	mover.join();
	return bad;
}

// A fork while another thread moves a producer between two objects: the
// move once took the fields first and re-owned the handle afterwards, so a
// fork in between disarmed the moved-from (empty) object in the child and
// left the moved-to one live there; its try_send then wrote into the
// parent's ring. The moves now run under the fork lock.
TEST(Fork, ForkDuringAMoveNeverLeavesALiveObjectInTheChild)
{
	ShmRing s(1 << 16);
	Producer a = s.producer(), b;
	const int bad = fork_during_moves(
		a, b,
		[&](uint64_t tail) {
			const auto ra = a.try_send(std::as_bytes(std::span("x")));
			const auto rb = b.try_send(std::as_bytes(std::span("x")));
			if (ra || rb || ra.error().code() != EBADF || rb.error().code() != EBADF)
				return 1;
			if (!inherited_ebadf(ra) && !inherited_ebadf(rb))
				return 2; // neither object knows it was inherited
			return s.tail() == tail ? 0 : 3;
		},
		[&] { return s.tail(); });
	EXPECT_EQ(bad, 0) << "1: a child's send did not fail with EBADF, 2: no object was "
			     "disarmed, 3/4: the child wrote into the parent's ring";
	ASSERT_TRUE(a.is_open());
	EXPECT_TRUE(a.try_send(std::as_bytes(std::span("still ours"))).has_value());
}

// The same for a consumer: a live moved-to consumer in the child would
// release (move head) in the parent's ring.
TEST(Fork, ForkDuringAConsumerMoveNeverLeavesALiveObjectInTheChild)
{
	ShmRing s(1 << 16);
	auto p = s.producer();
	ASSERT_TRUE(p.try_send(std::as_bytes(std::span("for the parent"))).has_value());
	Consumer a = s.consumer(), b;
	const int bad = fork_during_moves(
		a, b,
		[&](uint64_t head) {
			std::byte buf[64];
			const auto ra = a.try_receive(buf);
			const auto rb = b.try_receive(buf);
			if (ra || rb || ra.error().code() != EBADF || rb.error().code() != EBADF)
				return 1;
			if (!inherited_ebadf(ra) && !inherited_ebadf(rb))
				return 2;
			return s.head() == head ? 0 : 3;
		},
		[&] { return s.head(); });
	EXPECT_EQ(bad, 0) << "1: a child's receive did not fail with EBADF, 2: no object was "
			     "disarmed, 3/4: the child released in the parent's ring";
	std::byte buf[64];
	EXPECT_EQ(a.try_receive(buf).value(), 15u);
}

// SPDX-License-Identifier: MIT
// Producer/Consumer (the classes of shmq.hpp) over plain shared memory: the
// same objects Producer::open/Consumer::open build, minus the kernel.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "shm_ring.hpp"

using namespace shmq;
using namespace std::chrono_literals;
using shmq::test::ShmRing;

namespace {

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

std::string text(std::span<const std::byte> b)
{
	return std::string(reinterpret_cast<const char *>(b.data()), b.size());
}

std::string receive_text(Consumer &c)
{
	std::vector<std::byte> buf(c.info().max_message);
	auto n = c.try_receive(buf);
	if (!n)
		return "<error " + std::to_string(n.error().code()) + ">";
	return text(std::span(buf).first(*n));
}

} // namespace

TEST(Api, SendThenReceiveReturnsTheMessage)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	ASSERT_TRUE(p.try_send(bytes("hello")).has_value());
	ASSERT_TRUE(p.send(bytes("world")).has_value());
	EXPECT_EQ(receive_text(c), "hello");
	std::vector<std::byte> buf(64, std::byte{0x5a});
	auto n = c.receive(buf, Timeout::after(1s));
	ASSERT_TRUE(n.has_value());
	EXPECT_EQ(text(std::span(buf).first(*n)), "world");
}

TEST(Api, TryReceiveOnEmptyQueueIsEAGAIN)
{
	ShmRing s(4096);
	auto c = s.consumer();
	std::vector<std::byte> buf(16);
	auto n = c.try_receive(buf);
	ASSERT_FALSE(n.has_value());
	EXPECT_EQ(n.error().code(), EAGAIN);
	auto m = c.try_peek();
	ASSERT_FALSE(m.has_value());
	EXPECT_EQ(m.error().code(), EAGAIN);
}

TEST(Api, TrySendOnFullRingIsEAGAIN)
{
	ShmRing s(4096);
	auto p = s.producer();
	int sent = 0;
	Result<void> r;
	while ((r = p.try_send(bytes("0123456789abcdef"))).has_value()) // record of 24
		++sent;
	EXPECT_EQ(r.error().code(), EAGAIN);
	EXPECT_EQ(sent, 4096 / 24);
}

TEST(Api, TrySendOnFullRingWithoutConsumerIsEPIPE)
{
	ShmRing s(4096);
	auto p = s.producer();
	while (p.try_send(bytes("x")).has_value()) {
	}
	*s.ring.state = SHMQ_STATE_PRODUCER; // the consumer went away
	auto r = p.try_send(bytes("x"));
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(r.error().code(), EPIPE);
}

TEST(Api, TrySendWithoutConsumerSucceedsWhileThereIsRoom)
{
	ShmRing s(4096);
	*s.ring.state = SHMQ_STATE_PRODUCER;
	auto p = s.producer();
	EXPECT_TRUE(p.try_send(bytes("x")).has_value());
}

TEST(Api, TrySendOnFullRingWithIgnoreHangupIsEAGAIN)
{
	ShmRing s(4096);
	auto p = s.producer();
	detail::Access::handle(p)->ignore_hangup = true;
	while (p.try_send(bytes("x")).has_value()) {
	}
	*s.ring.state = SHMQ_STATE_PRODUCER;
	auto r = p.try_send(bytes("x"));
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(r.error().code(), EAGAIN);
}

TEST(Api, TryReceiveOnEmptyDestroyedQueueIsEIDRM)
{
	ShmRing s(4096);
	auto c = s.consumer();
	*s.ring.state |= SHMQ_STATE_DESTROYED;
	std::vector<std::byte> buf(16);
	auto n = c.try_receive(buf);
	ASSERT_FALSE(n.has_value());
	EXPECT_EQ(n.error().code(), EIDRM);
}

TEST(Api, ConsumerDrainsBeforeSeeingEPIPE)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	ASSERT_TRUE(p.try_send(bytes("last words")).has_value());
	p.close();
	*s.ring.state = SHMQ_STATE_CONSUMER;
	EXPECT_EQ(receive_text(c), "last words");
	std::vector<std::byte> buf(16);
	auto n = c.receive(buf, Timeout::after(5s));
	ASSERT_FALSE(n.has_value());
	EXPECT_EQ(n.error().code(), EPIPE);
}

TEST(Api, SendOnFullRingTimesOutAtTheDeadline)
{
	ShmRing s(4096);
	auto p = s.producer();
	while (p.try_send(bytes("x")).has_value()) {
	}
	const auto t0 = std::chrono::steady_clock::now();
	auto r = p.send(bytes("x"), Timeout::after(100ms));
	const auto dt = std::chrono::steady_clock::now() - t0;
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(r.error().code(), ETIMEDOUT);
	EXPECT_GE(dt, 100ms);
	EXPECT_LT(dt, 5s);
}

TEST(Api, ReceiveOnEmptyRingTimesOutAtTheDeadline)
{
	ShmRing s(4096);
	auto c = s.consumer();
	std::vector<std::byte> buf(16);
	const auto t0 = std::chrono::steady_clock::now();
	auto n = c.receive(buf, Timeout::after(100ms));
	const auto dt = std::chrono::steady_clock::now() - t0;
	ASSERT_FALSE(n.has_value());
	EXPECT_EQ(n.error().code(), ETIMEDOUT);
	EXPECT_GE(dt, 100ms);
}

TEST(Api, BlockingCallWithTimeoutNoneFailsAtOnce)
{
	ShmRing s(4096);
	auto c = s.consumer();
	auto m = c.peek(Timeout::none());
	ASSERT_FALSE(m.has_value());
	EXPECT_EQ(m.error().code(), ETIMEDOUT);
}

TEST(Api, SpinningWaitStillTimesOut)
{
	ShmRing s(4096);
	auto c = s.consumer(/*spin=*/1000);
	auto m = c.peek(Timeout::after(20ms));
	ASSERT_FALSE(m.has_value());
	EXPECT_EQ(m.error().code(), ETIMEDOUT);
}

TEST(Api, OversizeMessageIsEMSGSIZE)
{
	ShmRing s(4096);
	auto p = s.producer();
	std::vector<std::byte> big(p.info().max_message + 1);
	auto r = p.try_send(big);
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(r.error().code(), EMSGSIZE);
	auto r2 = p.send(big, Timeout::after(1s));
	ASSERT_FALSE(r2.has_value());
	EXPECT_EQ(r2.error().code(), EMSGSIZE);
	big.pop_back();
	EXPECT_TRUE(p.try_send(big).has_value());
}

TEST(Api, SecondReservationIsEBUSY)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto r1 = p.try_reserve(8);
	ASSERT_TRUE(r1.has_value());
	auto r2 = p.try_reserve(8);
	ASSERT_FALSE(r2.has_value());
	EXPECT_EQ(r2.error().code(), EBUSY);
	auto r3 = p.try_send(bytes("x"));
	ASSERT_FALSE(r3.has_value());
	EXPECT_EQ(r3.error().code(), EBUSY);
}

TEST(Api, CommitMoreThanReservedIsEINVALAndKeepsTheReservation)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	auto r = p.try_reserve(4);
	ASSERT_TRUE(r.has_value());
	std::memcpy(r->data().data(), "abcd", 4);
	auto e = p.commit(std::move(*r), 5);
	ASSERT_FALSE(e.has_value());
	EXPECT_EQ(e.error().code(), EINVAL);
	ASSERT_TRUE(p.commit(std::move(*r)).has_value());
	EXPECT_EQ(receive_text(c), "abcd");
}

TEST(Api, CommittingAReservationTwiceIsEINVAL)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto r = p.try_reserve(4);
	ASSERT_TRUE(r.has_value());
	ASSERT_TRUE(p.commit(std::move(*r)).has_value());
	EXPECT_FALSE(r->valid());
	auto e = p.commit(std::move(*r)); // consumed by the first commit
	ASSERT_FALSE(e.has_value());
	EXPECT_EQ(e.error().code(), EINVAL);
	EXPECT_EQ(p.commit(Reservation()).error().code(), EINVAL);
}

TEST(Api, PartialCommitSendsOnlyTheUsedBytes)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	auto r = p.try_reserve(100);
	ASSERT_TRUE(r.has_value());
	EXPECT_EQ(r->size(), 100u);
	std::memcpy(r->data().data(), "abc", 3);
	ASSERT_TRUE(p.commit(std::move(*r), 3).has_value());
	EXPECT_EQ(s.tail(), 16u);
	EXPECT_EQ(receive_text(c), "abc");
}

TEST(Api, AbortedReservationIsNeverSeen)
{
	ShmRing s(4096);
	s.set_counters(4096 - 16, 4096 - 16);
	auto p = s.producer();
	auto c = s.consumer();
	auto r = p.try_reserve(100); // needs a pad at the ring end
	ASSERT_TRUE(r.has_value());
	std::memcpy(r->data().data(), "ghost", 5);
	p.abort(std::move(*r));
	EXPECT_FALSE(r->valid());
	p.flush();
	EXPECT_EQ(s.tail(), 4096u - 16);
	std::vector<std::byte> buf(128);
	EXPECT_EQ(c.try_receive(buf).error().code(), EAGAIN);
	ASSERT_TRUE(p.try_send(bytes("real")).has_value()); // fits before the end
	EXPECT_EQ(receive_text(c), "real");
	EXPECT_EQ(c.try_receive(buf).error().code(), EAGAIN);
}

TEST(Api, DeferredCommitsAreInvisibleUntilFlush)
{
	ShmRing s(4096);
	s.set_waiters(1, 0, 0);
	auto p = s.producer();
	auto c = s.consumer();
	for (char ch : std::string("abcdefghij")) {
		auto r = p.try_reserve(1);
		ASSERT_TRUE(r.has_value());
		r->data()[0] = std::byte(ch);
		ASSERT_TRUE(p.commit_deferred(std::move(*r)).has_value());
	}
	std::vector<std::byte> buf(8);
	EXPECT_EQ(c.try_receive(buf).error().code(), EAGAIN);
	EXPECT_EQ(s.tail(), 0u);
	p.flush();
	EXPECT_EQ(s.tail(), 160u);
	EXPECT_EQ(detail::Access::handle(p)->wake_calls, 1u); // one wake for ten
	for (char ch : std::string("abcdefghij"))
		EXPECT_EQ(receive_text(c), std::string(1, ch));
}

TEST(Api, ProducerWakesOnlyOnTheEmptyToNonEmptyTransition)
{
	ShmRing s(65536);
	s.set_waiters(1, 0, 0);
	auto p = s.producer();
	for (int i = 0; i < 50; ++i)
		ASSERT_TRUE(p.try_send(bytes("m")).has_value());
	EXPECT_EQ(detail::Access::handle(p)->wake_calls, 1u);
}

TEST(Api, ConsumerWakesProducerOnceWhenSpaceCrossesItsNeed)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	while (p.try_send(bytes("0123456789abcdef")).has_value()) {
	}
	s.set_waiters(0, 1, 2048);
	std::vector<std::byte> buf(64);
	while (c.try_receive(buf).has_value()) {
	}
	EXPECT_EQ(detail::Access::handle(c)->wake_calls, 1u);
}

TEST(Api, BlockingReserveFlushesDeferredCommitsBeforeWaiting)
{
	ShmRing s(4096);
	auto p = s.producer();
	uint64_t committed = 0;
	for (int i = 0; i < 4096 / 16; ++i) { // 16-byte records fill the ring
		auto r = p.try_reserve(8);
		ASSERT_TRUE(r.has_value());
		ASSERT_TRUE(p.commit_deferred(std::move(*r)).has_value());
		committed += 16;
	}
	EXPECT_EQ(s.tail(), 0u);
	auto r = p.reserve(8, Timeout::after(10ms));
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(r.error().code(), ETIMEDOUT);
	EXPECT_EQ(s.tail(), committed); // the consumer can drain while we sleep
}

// poll() judges free space by the published tail: a try_reserve/try_send
// that finds the ring full only because of its own deferred commits must
// publish them before answering EAGAIN, or the consumer never sees them
// while the producer, told "writable" by poll, keeps getting EAGAIN.
TEST(Api, TryReserveAndTrySendPublishDeferredCommitsBeforeEAGAIN)
{
	for (const bool send : {false, true}) {
		ShmRing s(4096);
		auto p = s.producer();
		auto c = s.consumer();
		for (int i = 0; i < 4096 / 16; ++i) {
			auto r = p.try_reserve(8);
			ASSERT_TRUE(r.has_value());
			std::memcpy(r->data().data(), &i, sizeof i);
			ASSERT_TRUE(p.commit_deferred(std::move(*r)).has_value());
		}
		ASSERT_EQ(s.tail(), 0u);
		s.set_waiters(1, 0, 0); // the consumer sleeps on the empty ring
		const auto e = send ? p.try_send(bytes("12345678")).error().code()
				    : p.try_reserve(8).error().code();
		EXPECT_EQ(e, EAGAIN) << (send ? "try_send" : "try_reserve");
		EXPECT_EQ(s.tail(), 4096u) << "deferred commits not published";
		EXPECT_EQ(detail::Access::handle(p)->wake_calls, 1u) << "the sleeper was not woken";
		s.set_waiters(0, 0, 0);
		for (int i = 0; i < 4096 / 16; ++i) {
			std::byte buf[8];
			auto n = c.try_receive(buf);
			ASSERT_TRUE(n.has_value()) << i;
			int got;
			std::memcpy(&got, buf, sizeof got);
			EXPECT_EQ(got, i);
		}
	}
}

TEST(Api, PeekTwiceReturnsTheSameMessageUntilRelease)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	ASSERT_TRUE(p.try_send(bytes("one")).has_value());
	ASSERT_TRUE(p.try_send(bytes("two")).has_value());
	auto m1 = c.try_peek();
	auto m2 = c.peek(Timeout::after(1s));
	ASSERT_TRUE(m1.has_value() && m2.has_value());
	EXPECT_EQ(m1->data().data(), m2->data().data());
	EXPECT_EQ(text(m2->data()), "one");
	ASSERT_TRUE(c.release().has_value());
	auto m3 = c.try_peek();
	ASSERT_TRUE(m3.has_value());
	EXPECT_EQ(text(m3->data()), "two");
}

TEST(Api, ReleaseWithoutPeekIsEINVAL)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	EXPECT_EQ(c.release().error().code(), EINVAL);
	ASSERT_TRUE(p.try_send(bytes("one")).has_value());
	ASSERT_TRUE(c.try_peek().has_value());
	ASSERT_TRUE(c.release().has_value());
	EXPECT_EQ(c.release().error().code(), EINVAL);
}

TEST(Api, ReceiveIntoSmallBufferIsEMSGSIZEAndTheMessageStays)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	ASSERT_TRUE(p.try_send(bytes("0123456789")).has_value());
	std::vector<std::byte> small(9);
	auto n = c.try_receive(small);
	ASSERT_FALSE(n.has_value());
	EXPECT_EQ(n.error().code(), EMSGSIZE);
	auto n2 = c.receive(small, Timeout::after(1s));
	ASSERT_FALSE(n2.has_value());
	EXPECT_EQ(n2.error().code(), EMSGSIZE);
	EXPECT_EQ(receive_text(c), "0123456789");
}

// What shmq.hpp promises after EMSGSIZE: the message counts as peeked, so
// peek() shows it in place and release() drops it (skipping a message too
// large for the caller's buffer).
TEST(Api, AfterEMSGSIZEPeekShowsTheMessageAndReleaseDropsIt)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	ASSERT_TRUE(p.try_send(bytes("0123456789")).has_value());
	ASSERT_TRUE(p.try_send(bytes("next")).has_value());
	std::vector<std::byte> small(9);
	EXPECT_EQ(c.try_receive(small).error().code(), EMSGSIZE);
	auto m = c.try_peek();
	ASSERT_TRUE(m.has_value());
	EXPECT_EQ(text(m->data()), "0123456789");
	EXPECT_EQ(c.try_receive(small).error().code(), EMSGSIZE);
	ASSERT_TRUE(c.release().has_value());
	EXPECT_EQ(receive_text(c), "next");
}

TEST(Api, MessagesLeftUnreleasedGoToTheNextConsumer)
{
	ShmRing s(4096);
	auto p = s.producer();
	ASSERT_TRUE(p.try_send(bytes("first")).has_value());
	ASSERT_TRUE(p.try_send(bytes("second")).has_value());
	{
		auto c1 = s.consumer();
		EXPECT_EQ(receive_text(c1), "first");
		auto m = c1.try_peek();
		ASSERT_TRUE(m.has_value());
		EXPECT_EQ(text(m->data()), "second");
	} // closed between peek and release
	auto c2 = s.consumer();
	EXPECT_EQ(receive_text(c2), "second");
}

TEST(Api, NewProducerContinuesAtThePublishedTail)
{
	ShmRing s(4096);
	auto c = s.consumer();
	{
		auto p1 = s.producer();
		ASSERT_TRUE(p1.try_send(bytes("a")).has_value());
		auto r = p1.try_reserve(10);
		ASSERT_TRUE(r.has_value());
		ASSERT_TRUE(p1.commit_deferred(std::move(*r), 1).has_value()); // close() flushes it
		auto r2 = p1.try_reserve(10);		      // dropped by close()
		ASSERT_TRUE(r2.has_value());
	}
	auto p2 = s.producer();
	ASSERT_TRUE(p2.try_send(bytes("c")).has_value());
	EXPECT_EQ(receive_text(c), "a");
	EXPECT_EQ(receive_text(c).size(), 1u);
	EXPECT_EQ(receive_text(c), "c");
	std::vector<std::byte> buf(16);
	EXPECT_EQ(c.try_receive(buf).error().code(), EAGAIN);
}

TEST(Api, ClosedOrMovedFromObjectsAreEBADF)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	Producer p2 = std::move(p);
	Consumer c2 = std::move(c);
	EXPECT_FALSE(p.is_open());
	EXPECT_FALSE(c.is_open());
	EXPECT_EQ(p.fd(), -1);
	EXPECT_EQ(p.try_send(bytes("x")).error().code(), EBADF);
	std::vector<std::byte> buf(8);
	EXPECT_EQ(c.try_receive(buf).error().code(), EBADF);
	EXPECT_EQ(c.release().error().code(), EBADF);
	ASSERT_TRUE(p2.try_send(bytes("x")).has_value());
	EXPECT_EQ(receive_text(c2), "x");
	p2.close();
	EXPECT_EQ(p2.try_reserve(1).error().code(), EBADF);
	Producer never_opened;
	EXPECT_EQ(never_opened.send(bytes("x")).error().code(), EBADF);
	never_opened.flush(); // harmless
}

TEST(Api, MoveAssignmentClosesTheTarget)
{
	ShmRing s1(4096), s2(4096);
	auto p = s1.producer();
	auto r = p.try_reserve(1);
	ASSERT_TRUE(r.has_value());
	ASSERT_TRUE(p.commit_deferred(std::move(*r)).has_value());
	p = s2.producer(); // closing the first flushes its deferred commit
	EXPECT_EQ(s1.tail(), 16u);
	ASSERT_TRUE(p.try_send(bytes("x")).has_value());
	EXPECT_EQ(s2.tail(), 16u);
}

TEST(Api, MisalignedTailLeftByPreviousProducerIsEBADMSG)
{
	ShmRing s(4096);
	s.set_counters(12, 0);
	auto r = detail::Access::make_producer(detail::plain_handle(s.ring), s.info);
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(r.error().code(), EBADMSG);
}

TEST(Api, CorruptHeadMakesSendEBADMSG)
{
	ShmRing s(4096);
	auto p = s.producer();
	while (p.try_send(bytes("x")).has_value()) {
	}
	*s.ring.head = s.tail() + 8; // ahead of tail
	EXPECT_EQ(p.try_send(bytes("x")).error().code(), EBADMSG);
	EXPECT_EQ(p.send(bytes("x"), Timeout::after(1s)).error().code(), EBADMSG);
}

TEST(Api, CorruptRecordMakesReceiveEBADMSG)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	ASSERT_TRUE(p.try_send(bytes("x")).has_value());
	s.set_header(0, 5000, SHMQ_REC_MSG);
	std::vector<std::byte> buf(16);
	EXPECT_EQ(c.try_receive(buf).error().code(), EBADMSG);
	EXPECT_EQ(c.receive(buf, Timeout::after(1s)).error().code(), EBADMSG);
}

TEST(Api, LonePadIsConsumedAndTheQueueIsEmpty)
{
	ShmRing s(4096);
	s.set_header(4096 - 64, 56, SHMQ_REC_PAD);
	s.set_counters(4096, 4096 - 64);
	auto c = s.consumer();
	std::vector<std::byte> buf(16);
	EXPECT_EQ(c.try_receive(buf).error().code(), EAGAIN);
	EXPECT_EQ(s.head(), 4096u);
}

TEST(Names, ValidNamesPass)
{
	EXPECT_TRUE(validate_name("orders").has_value());
	EXPECT_TRUE(validate_name("a").has_value());
	EXPECT_TRUE(validate_name("A-Z_a.z-09").has_value());
	EXPECT_TRUE(validate_name(std::string(63, 'x')).has_value());
}

TEST(Names, EmptyNameIsEINVAL) { EXPECT_EQ(validate_name("").error().code(), EINVAL); }

TEST(Names, SixtyFourCharactersIsENAMETOOLONG)
{
	EXPECT_EQ(validate_name(std::string(64, 'x')).error().code(), ENAMETOOLONG);
}

TEST(Names, LeadingDotIsEINVAL)
{
	EXPECT_EQ(validate_name(".hidden").error().code(), EINVAL);
	EXPECT_EQ(validate_name("..").error().code(), EINVAL);
}

// "-rf", "--help", "-": shell tools (rm, ls, shmqctl itself) would read
// /dev/shmq/-rf's name as an option. Refused, with a message that says why.
TEST(Names, LeadingDashIsEINVALBecauseToolsReadItAsAnOption)
{
	for (const char *n : {"-rf", "--help", "-", "-x.y", "--"}) {
		auto v = validate_name(n);
		ASSERT_FALSE(static_cast<bool>(v)) << n;
		EXPECT_EQ(v.error().code(), EINVAL) << n;
		EXPECT_NE(std::string(v.error().what()).find("must not start with '-'"), std::string::npos)
			<< n << ": " << v.error().what();
		EXPECT_NE(std::string(v.error().what()).find("option"), std::string::npos)
			<< n << ": " << v.error().what();
	}
	// '-' elsewhere is fine
	EXPECT_TRUE(static_cast<bool>(validate_name("a-")));
	EXPECT_TRUE(static_cast<bool>(validate_name("a--b")));
	EXPECT_TRUE(static_cast<bool>(validate_name("0-")));
}

// No module of this ABI (0.4.0 on) has a queue whose name starts with '-':
// open and destroy refuse such a name as create does, before any system call.
TEST(Names, DashNameIsRefusedByOpenAndDestroyAsByCreate)
{
	const OpenOptions opt{.dev_dir = "/nonexistent-shmq-dir"};
	EXPECT_EQ(Producer::open("-rf", opt).error().code(), EINVAL);
	EXPECT_EQ(Consumer::open("-rf", opt).error().code(), EINVAL);
	EXPECT_EQ(destroy_queue("-rf", "/nonexistent-shmq-control").error().code(), EINVAL);
	EXPECT_EQ(create_queue("-rf", 4096, "/nonexistent-shmq-control").error().code(), EINVAL);
}

TEST(Names, SlashSpaceAndNulAreEINVAL)
{
	EXPECT_EQ(validate_name("a/b").error().code(), EINVAL);
	EXPECT_EQ(validate_name("a b").error().code(), EINVAL);
	EXPECT_EQ(validate_name(std::string_view("a\0b", 3)).error().code(), EINVAL);
}

TEST(Errors, MessageAppendsStrerror)
{
	EXPECT_EQ(Error(EPIPE, "peer gone").message(), "peer gone (Broken pipe)");
}

TEST(Timeouts, AfterIsAnAbsoluteMonotonicDeadline)
{
	const uint64_t before = monotonic_now_ns();
	const auto t = Timeout::after(2s);
	EXPECT_GE(t.deadline_ns(), before + 2000000000u);
	EXPECT_LE(t.deadline_ns(), monotonic_now_ns() + 2000000000u);
	EXPECT_EQ(Timeout::after(-5s).deadline_ns(), 0u);
	EXPECT_EQ(Timeout::after(0s).deadline_ns(), 0u);
	EXPECT_EQ(Timeout::infinite().deadline_ns(), UINT64_MAX);
	EXPECT_EQ(Timeout::none().deadline_ns(), 0u);
}

class OpenErrors : public ::testing::Test {
protected:
	void SetUp() override
	{
		char tmpl[] = "/tmp/shmq-native-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir = tmpl;
	}
	void TearDown() override
	{
		unlink((dir + "/plainfile").c_str());
		rmdir(dir.c_str());
	}
	std::string dir;
};

TEST_F(OpenErrors, MissingQueueIsENOENTWithAHint)
{
	auto p = Producer::open("nosuchqueue", {.dev_dir = dir});
	ASSERT_FALSE(p.has_value());
	EXPECT_EQ(p.error().code(), ENOENT);
	EXPECT_NE(std::string(p.error().what()).find("shmqctl create"), std::string::npos);
}

TEST_F(OpenErrors, MissingDeviceDirectoryIsENOENTAskingForTheModule)
{
	auto c = Consumer::open("q", {.dev_dir = dir + "/absent"});
	ASSERT_FALSE(c.has_value());
	EXPECT_EQ(c.error().code(), ENOENT);
	EXPECT_NE(std::string(c.error().what()).find("module"), std::string::npos);
}

TEST_F(OpenErrors, NonShmqFileIsENOTTY)
{
	const int fd = ::open((dir + "/plainfile").c_str(), O_CREAT | O_WRONLY, 0644);
	ASSERT_GE(fd, 0);
	::close(fd);
	auto c = Consumer::open("plainfile", {.dev_dir = dir});
	ASSERT_FALSE(c.has_value());
	EXPECT_EQ(c.error().code(), ENOTTY);
}

TEST_F(OpenErrors, InvalidNameIsEINVALBeforeAnySyscall)
{
	auto p = Producer::open("../etc", {.dev_dir = dir});
	ASSERT_FALSE(p.has_value());
	EXPECT_EQ(p.error().code(), EINVAL);
}

TEST_F(OpenErrors, CreateWithBadCapacityIsEINVAL)
{
	EXPECT_EQ(create_queue("q", 5000, dir + "/ctl").error().code(), EINVAL);
	EXPECT_EQ(create_queue("q", 2048, dir + "/ctl").error().code(), EINVAL);
	EXPECT_EQ(create_queue("q", 4096, dir + "/ctl").error().code(), ENOENT);
	EXPECT_EQ(destroy_queue("q", dir + "/ctl").error().code(), ENOENT);
	EXPECT_EQ(destroy_queue("", dir + "/ctl").error().code(), EINVAL);
}

// The largest message (1016 bytes, a 1024-byte record) with the tail 512
// bytes before the ring end needs a 512-byte PAD plus the record: 1536 free
// bytes. Room for the record alone is not enough.
TEST(Api, BlockingSendWaitsForPadPlusRecord)
{
	ShmRing s(4096);
	const uint64_t tail = 4096 + 4096 - 512;
	s.set_counters(tail, tail - (4096 - 1024)); // 1024 free: the record, not its PAD
	auto p = s.producer();
	std::vector<std::byte> big(p.info().max_message);
	ASSERT_EQ(big.size(), 1016u);
	auto r = p.send(big, Timeout::after(20ms));
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(r.error().code(), ETIMEDOUT);
	*s.ring.head = tail - (4096 - 1536); // now free = 1536 = pad + record
	EXPECT_TRUE(p.send(big, Timeout::after(1s)).has_value());
}

// The counters are free-running u64s: a record can end exactly at 2^64,
// i.e. at position 0. Neither side may take that 0 for "nothing reserved"
// or "nothing peeked" (the fuzzer found release() refusing such a message,
// so receive() handed it out again and again).
TEST(Api, RecordEndingExactlyAtTheCounterWrapIsCommittedAndReleased)
{
	ShmRing s(4096);
	const uint64_t start = 0 - uint64_t{64}; // the next 64-byte record ends at 0
	s.set_counters(start, start);
	auto p = s.producer();
	auto c = s.consumer();

	auto r = p.try_reserve(56); // 8 + 56: exactly to the ring end and to 2^64
	ASSERT_TRUE(r.has_value()) << r.error().message();
	std::memcpy(r->data().data(), "wrap", 4);
	ASSERT_TRUE(p.commit(std::move(*r), 4).has_value()); // a 16-byte record: tail start + 16
	EXPECT_EQ(s.tail(), start + 16);

	auto r2 = p.try_reserve(40); // 48 bytes: start + 16 .. 2^64 == 0
	ASSERT_TRUE(r2.has_value()) << r2.error().message();
	EXPECT_EQ(p.try_reserve(1).error().code(), EBUSY) << "the reservation ending at 0 was forgotten";
	std::memcpy(r2->data().data(), "zero", 4);
	ASSERT_TRUE(p.commit(std::move(*r2), 40).has_value()) << "a reservation ending at 0 must commit";
	EXPECT_EQ(s.tail(), 0u);
	ASSERT_TRUE(p.try_send(bytes("after")).has_value());

	EXPECT_EQ(receive_text(c), "wrap");
	auto m = c.try_peek();
	ASSERT_TRUE(m.has_value());
	EXPECT_EQ(m->size(), 40u);
	ASSERT_TRUE(c.release().has_value()) << "a message ending at 0 must be releasable";
	EXPECT_EQ(s.head(), 0u);
	EXPECT_EQ(c.release().error().code(), EINVAL); // nothing peeked any more
	EXPECT_EQ(receive_text(c), "after");

	// The same through receive(), which releases internally.
	s.set_counters(start, start);
	auto p2 = s.producer();
	auto c2 = s.consumer();
	std::vector<std::byte> payload(56, std::byte{7});
	ASSERT_TRUE(p2.try_send(payload).has_value());
	EXPECT_EQ(s.tail(), 0u);
	std::vector<std::byte> buf(64);
	auto n = c2.try_receive(buf);
	ASSERT_TRUE(n.has_value());
	EXPECT_EQ(*n, 56u);
	EXPECT_EQ(s.head(), 0u);
	EXPECT_EQ(c2.try_receive(buf).error().code(), EAGAIN) << "the message was delivered twice";
}

// SPDX-License-Identifier: MIT
// Recovering from a corrupt ring (Consumer::resync: the consumer owns head,
// so it may jump to the producer's tail) and message positions
// (Message::position: the free-running counter value of the record header),
// which let an at-least-once consumer recognise a redelivered message.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "shm_ring.hpp"

using namespace shmq;
using shmq::test::ShmRing;

namespace {

std::vector<std::byte> msg(size_t len, char fill)
{
	return std::vector<std::byte>(len, std::byte(fill));
}

} // namespace

TEST(Resync, CorruptRingIsEBADMSGThenResyncSkipsExactlyToTheTail)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	for (char f : {'a', 'b', 'c'})
		ASSERT_TRUE(p.try_send(msg(24, f)).has_value()); // 32-byte records
	s.set_header(32, 24, 0x5151); // the producer scribbles on the second header
	std::byte buf[64];
	ASSERT_EQ(c.try_receive(buf).value(), 24u);
	EXPECT_EQ(c.try_receive(buf).error().code(), EBADMSG);
	EXPECT_EQ(c.try_peek().error().code(), EBADMSG); // and stays so
	auto skipped = c.resync();
	ASSERT_TRUE(skipped.has_value()) << skipped.error().message();
	EXPECT_EQ(*skipped, 64u); // the corrupt record and the one after it
	EXPECT_EQ(s.head(), 96u);
	EXPECT_EQ(s.head(), s.tail());
	EXPECT_EQ(c.try_peek().error().code(), EAGAIN);
	// New messages flow again, from the tail the consumer synced to.
	ASSERT_TRUE(p.try_send(msg(8, 'd')).has_value());
	auto m = c.try_peek();
	ASSERT_TRUE(m.has_value()) << m.error().message();
	EXPECT_EQ(m->position(), 96u);
	EXPECT_EQ(m->data()[0], std::byte('d'));
	ASSERT_TRUE(c.release().has_value());
	EXPECT_EQ(s.head(), 96u + 16);
}

TEST(Resync, HeadLeftAheadOfTheTailIsRepaired)
{
	ShmRing s(4096);
	s.set_counters(64, 64 + 4096 + 8); // a previous consumer left garbage
	auto c = s.consumer();
	EXPECT_EQ(c.try_peek().error().code(), EBADMSG);
	auto skipped = c.resync();
	ASSERT_TRUE(skipped.has_value());
	EXPECT_EQ(*skipped, uint64_t{64} - (64 + 4096 + 8)); // modulo 2^64: backwards
	EXPECT_EQ(s.head(), 64u);
	EXPECT_EQ(c.try_peek().error().code(), EAGAIN);
}

TEST(Resync, MisalignedTailIsEBADMSGAndHeadStays)
{
	ShmRing s(4096);
	s.set_counters(12, 0);
	auto c = s.consumer();
	auto r = c.resync();
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(r.error().code(), EBADMSG);
	EXPECT_EQ(s.head(), 0u);
}

TEST(Resync, EmptyRingSkipsNothingAndAPeekEnds)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	EXPECT_EQ(c.resync().value(), 0u);
	ASSERT_TRUE(p.try_send(msg(8, 'x')).has_value());
	ASSERT_TRUE(c.try_peek().has_value());
	EXPECT_EQ(c.resync().value(), 16u);
	EXPECT_EQ(c.release().error().code(), EINVAL) << "resync must end the peek";
	Consumer closed;
	EXPECT_EQ(closed.resync().error().code(), EBADF);
}

TEST(Resync, WakesAProducerWaitingForRoom)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	while (p.try_send(msg(100, 'f')).has_value()) {
	}
	s.set_waiters(0, 1, 2048); // it sleeps for half the ring
	ASSERT_TRUE(c.resync().has_value());
	EXPECT_EQ(detail::Access::handle(c)->wake_calls, 1u);
	EXPECT_TRUE(p.try_send(msg(100, 'g')).has_value());
}

// Positions are the header's counter value: strictly increasing, and each
// one plus its record size is where head goes on release (PADs included).
TEST(Positions, StrictlyIncreaseAndMatchTheByteCounters)
{
	ShmRing s(4096);
	s.set_counters(4096 - 200, 4096 - 200); // wrap (and PADs) early
	auto p = s.producer();
	auto c = s.consumer();
	uint64_t last = 0;
	bool first = true;
	std::vector<Message> batch(3);
	for (int round = 0; round < 200; ++round) {
		const size_t len = 1 + (round * 37) % 300;
		ASSERT_TRUE(p.try_send(msg(len, 'p')).has_value());
		ASSERT_TRUE(p.try_send(msg(len / 2, 'q')).has_value());
		ASSERT_TRUE(p.try_send(msg(len / 3, 'r')).has_value());
		const uint64_t head = s.head();
		ASSERT_EQ(c.try_peek_many(batch).value(), 3u);
		uint64_t at = head;
		for (const Message &m : batch) {
			// At most a PAD between the previous record and this one.
			ASSERT_GE(m.position(), at);
			if (m.position() != at) {
				EXPECT_EQ(at % 4096 + s.header(at % 4096).len + 8, 4096u) << "not a PAD";
				EXPECT_EQ(m.position() % 4096, 0u);
			}
			if (!first) {
				EXPECT_GT(m.position(), last);
			}
			first = false;
			last = m.position();
			EXPECT_EQ(s.header(m.position() % 4096).type, SHMQ_REC_MSG);
			EXPECT_EQ(s.header(m.position() % 4096).len, m.size());
			at = m.position() + detail::record_size(m.size());
		}
		ASSERT_TRUE(c.release().has_value());
		EXPECT_EQ(s.head(), at);
	}
}

// An at-least-once consumer that dies between peek and release gets the
// message again: the same position says it is the same message.
TEST(Positions, RedeliveredMessageHasTheSamePosition)
{
	ShmRing s(4096);
	auto p = s.producer();
	ASSERT_TRUE(p.try_send(msg(8, '1')).has_value());
	ASSERT_TRUE(p.try_send(msg(8, '2')).has_value());
	uint64_t seen;
	{
		auto c = s.consumer();
		std::byte buf[8];
		ASSERT_TRUE(c.try_receive(buf).has_value());
		auto m = c.try_peek();
		ASSERT_TRUE(m.has_value());
		seen = m->position();
		EXPECT_EQ(seen, 16u);
	} // dies before release
	auto c2 = s.consumer();
	auto again = c2.try_peek();
	ASSERT_TRUE(again.has_value());
	EXPECT_EQ(again->position(), seen);
	EXPECT_EQ(again->data()[0], std::byte('2'));
}

// SPDX-License-Identifier: MIT
// Regressions found by the consumer fuzzer (tests/fuzz/consumer_fuzz.cpp):
// a hostile producer rewriting the ring between the consumer's calls.
#include <gtest/gtest.h>

#include "shm_ring.hpp"

using namespace shmq;
using shmq::test::ShmRing;

// The producer turned the peeked message into a PAD that reaches the ring
// end and the tail: the second peek consumes that PAD (head moves to the
// ring end). Release used to store the first message's end: head went back.
TEST(ConsumerHostile, ReleaseAfterAPeekThatConsumedAPadKeepsHead)
{
	ShmRing s(4096);
	const uint64_t start = 4096 - 64;
	s.set_header(start, 8, SHMQ_REC_MSG);
	s.set_counters(4096, start);
	auto c = s.consumer();
	auto m = c.try_peek();
	ASSERT_TRUE(m.has_value());
	EXPECT_EQ(m->size(), 8u);
	s.set_header(start, 56, SHMQ_REC_PAD);
	auto again = c.try_peek();
	ASSERT_FALSE(again.has_value());
	EXPECT_EQ(again.error().code(), EAGAIN);
	EXPECT_EQ(s.head(), 4096u);
	auto r = c.release();
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(r.error().code(), EINVAL);
	EXPECT_EQ(s.head(), 4096u) << "head moved backwards";
}

// A peek that fails leaves nothing to release: the message peeked before
// it is not consumed behind the caller's back.
TEST(ConsumerHostile, ReleaseAfterAFailedPeekIsEINVAL)
{
	ShmRing s(4096);
	s.set_header(0, 8, SHMQ_REC_MSG);
	s.set_counters(16, 0);
	auto c = s.consumer();
	ASSERT_TRUE(c.try_peek().has_value());
	s.set_header(0, 0xffffffff, SHMQ_REC_MSG); // garbage
	EXPECT_EQ(c.try_peek().error().code(), EBADMSG);
	EXPECT_EQ(c.release().error().code(), EINVAL);
	EXPECT_EQ(s.head(), 0u);
	s.set_header(0, 8, SHMQ_REC_MSG); // repaired: delivered once
	ASSERT_TRUE(c.try_peek().has_value());
	ASSERT_TRUE(c.release().has_value());
	EXPECT_EQ(s.head(), 16u);
}

// Garbage counters are not sticky: once the producer's tail is consistent
// again (rewritten by it, or by a new producer), the consumer reads it again
// and delivers what is there. It used to keep the corrupt tail cached and
// fail with EBADMSG forever.
TEST(ConsumerHostile, CorruptTailIsReadAgainOnceRepaired)
{
	ShmRing s(4096);
	s.set_header(0, 8, SHMQ_REC_MSG);
	s.set_counters(1u << 20, 0); // tail - head > capacity
	auto c = s.consumer();
	EXPECT_EQ(c.try_peek().error().code(), EBADMSG);
	EXPECT_EQ(c.try_peek().error().code(), EBADMSG);
	s.set_counters(16, 0);
	auto m = c.try_peek();
	ASSERT_TRUE(m.has_value()) << m.error().message();
	EXPECT_EQ(m->size(), 8u);
	ASSERT_TRUE(c.release().has_value());
	EXPECT_EQ(s.head(), 16u);
}

// SPDX-License-Identifier: MIT
// Batched consume: Consumer::try_peek_many/peek_many fill a span with
// consecutive messages in place, every header validated as peek validates
// it, and release() then consumes all of them with one head store, one fence
// and one wake check (like io_uring_cq_advance).
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "shm_ring.hpp"

using namespace shmq;
using namespace std::chrono_literals;
using shmq::test::ShmRing;

namespace {

// Message @i: its index in 4 bytes, then @len - 4 bytes of 'a' + i % 26.
std::vector<std::byte> msg(uint32_t i, size_t len)
{
	std::vector<std::byte> m(len, std::byte('a' + i % 26));
	std::memcpy(m.data(), &i, sizeof i);
	return m;
}

uint32_t index_of(const Message &m)
{
	uint32_t i;
	std::memcpy(&i, m.data().data(), sizeof i);
	return i;
}

void send_n(Producer &p, uint32_t from, uint32_t n, size_t len = 20)
{
	for (uint32_t i = from; i < from + n; ++i)
		ASSERT_TRUE(p.try_send(msg(i, len)).has_value()) << i;
}

} // namespace

TEST(Batch, PeekManyReturnsExactCountsInOrderAndReleaseMovesHeadOnce)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	send_n(p, 0, 10); // 20-byte messages: 32-byte records
	std::vector<Message> out(4);
	auto n = c.try_peek_many(out);
	ASSERT_TRUE(n.has_value()) << n.error().message();
	ASSERT_EQ(*n, 4u);
	for (uint32_t i = 0; i < 4; ++i) {
		EXPECT_EQ(index_of(out[i]), i);
		EXPECT_EQ(out[i].size(), 20u);
	}
	EXPECT_EQ(s.head(), 0u) << "head moved before release";
	// Peeking again before release returns the same batch.
	ASSERT_EQ(c.try_peek_many(out).value(), 4u);
	EXPECT_EQ(index_of(out[0]), 0u);
	ASSERT_TRUE(c.release().has_value());
	EXPECT_EQ(s.head(), 4 * 32u);
	EXPECT_EQ(c.release().error().code(), EINVAL); // nothing peeked any more

	std::vector<Message> big(16);
	ASSERT_EQ(c.peek_many(big, Timeout::none()).value(), 6u);
	for (uint32_t i = 0; i < 6; ++i)
		EXPECT_EQ(index_of(big[i]), 4 + i);
	EXPECT_EQ(s.head(), 4 * 32u);
	ASSERT_TRUE(c.release().has_value());
	EXPECT_EQ(s.head(), 10 * 32u);
	EXPECT_EQ(c.try_peek_many(big).error().code(), EAGAIN);
	EXPECT_EQ(c.peek_many(big, Timeout::none()).error().code(), ETIMEDOUT);
}

TEST(Batch, ReleaseOfABatchIsOneWakeCheck)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	send_n(p, 0, 100, 32); // 40-byte records: 4000 of 4096 bytes
	// The producer sleeps for 2000 free bytes: crossed by releasing the
	// whole batch of 100, by no single message of it.
	s.set_waiters(0, 1, 2000);
	std::vector<Message> out(100);
	ASSERT_EQ(c.try_peek_many(out).value(), 100u);
	EXPECT_EQ(detail::Access::handle(c)->wake_calls, 0u);
	ASSERT_TRUE(c.release().has_value());
	EXPECT_EQ(s.head(), 4000u);
	EXPECT_EQ(detail::Access::handle(c)->wake_calls, 1u);
}

TEST(Batch, PadRecordsInsideTheBatchAreSkipped)
{
	ShmRing s(4096);
	// Start 64 bytes before the ring end: two 24-byte records fit, the
	// third needs a PAD of 16 and goes to offset 0.
	s.set_counters(4096 - 64, 4096 - 64);
	auto p = s.producer();
	auto c = s.consumer();
	send_n(p, 0, 5, 16);
	EXPECT_EQ(s.header(4096 - 16).type, SHMQ_REC_PAD);
	std::vector<Message> out(8);
	ASSERT_EQ(c.try_peek_many(out).value(), 5u);
	for (uint32_t i = 0; i < 5; ++i)
		EXPECT_EQ(index_of(out[i]), i);
	ASSERT_TRUE(c.release().has_value());
	EXPECT_EQ(s.head(), s.tail());
	EXPECT_EQ(s.tail(), 4096 - 64 + 2 * 24 + 16 + 3 * 24u);
}

TEST(Batch, TrailingPadIsReleasedWithTheBatch)
{
	ShmRing s(4096);
	s.set_counters(4096 - 48, 4096 - 48);
	auto p = s.producer();
	auto c = s.consumer();
	send_n(p, 0, 1, 16); // 24 bytes, then 24 left before the end
	// A record of 32 does not fit the 24: the producer writes a PAD and
	// the message at 0. Publish the PAD alone: the ring ends in a PAD.
	auto r = p.try_reserve(24);
	ASSERT_TRUE(r.has_value());
	ASSERT_EQ(s.header(4096 - 24).type, SHMQ_REC_PAD);
	detail::store_release(s.ring.tail, uint64_t{4096}); // tail past the PAD only
	std::vector<Message> out(4);
	ASSERT_EQ(c.try_peek_many(out).value(), 1u);
	ASSERT_TRUE(c.release().has_value());
	EXPECT_EQ(s.head(), 4096u) << "the PAD after the last message was not released with it";
	p.abort(std::move(*r));
}

TEST(Batch, CorruptionMidBatchReturnsTheValidPrefixThenEBADMSG)
{
	ShmRing s(4096);
	auto c = s.consumer();
	for (uint64_t off = 0; off < 5 * 16; off += 16)
		s.set_header(off, 8, SHMQ_REC_MSG);
	s.set_header(3 * 16, 8, 0x7777); // the 4th record: unknown type
	s.set_counters(5 * 16, 0);
	std::vector<Message> out(8);
	auto n = c.try_peek_many(out);
	ASSERT_TRUE(n.has_value()) << n.error().message();
	EXPECT_EQ(*n, 3u);
	EXPECT_EQ(s.head(), 0u);
	ASSERT_TRUE(c.release().has_value());
	EXPECT_EQ(s.head(), 3 * 16u);
	EXPECT_EQ(c.try_peek_many(out).error().code(), EBADMSG);
	EXPECT_EQ(c.try_peek().error().code(), EBADMSG);
	EXPECT_EQ(c.release().error().code(), EINVAL);
	EXPECT_EQ(s.head(), 3 * 16u);
	// A length past the tail mid-batch is the same.
	ShmRing s2(4096);
	auto c2 = s2.consumer();
	s2.set_header(0, 8, SHMQ_REC_MSG);
	s2.set_header(16, 100, SHMQ_REC_MSG);
	s2.set_counters(32, 0);
	ASSERT_EQ(c2.try_peek_many(out).value(), 1u);
	ASSERT_TRUE(c2.release().has_value());
	EXPECT_EQ(c2.try_peek_many(out).error().code(), EBADMSG);
}

TEST(Batch, PeekManyWaitsForAtLeastOneMessage)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	std::thread t([&] {
		std::this_thread::sleep_for(100ms);
		send_n(p, 0, 3);
	});
	std::vector<Message> out(8);
	const auto t0 = std::chrono::steady_clock::now();
	auto n = c.peek_many(out, Timeout::after(10s));
	const auto dt = std::chrono::steady_clock::now() - t0;
	t.join();
	ASSERT_TRUE(n.has_value()) << n.error().message();
	EXPECT_GE(*n, 1u);
	EXPECT_LE(*n, 3u);
	EXPECT_GE(dt, 90ms);
	EXPECT_EQ(index_of(out[0]), 0u);
}

TEST(Batch, EmptySpanIsEINVALAndClosedIsEBADF)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	send_n(p, 0, 1);
	EXPECT_EQ(c.try_peek_many({}).error().code(), EINVAL);
	Consumer closed;
	std::vector<Message> out(2);
	EXPECT_EQ(closed.try_peek_many(out).error().code(), EBADF);
	EXPECT_EQ(closed.peek_many(out, Timeout::none()).error().code(), EBADF);
}

// A batch never reaches more than one ring's worth past head. Each record
// is checked against the tail relative to where it starts, so a producer
// that raises tail while the batch runs (here: after the tail was cached)
// made the batch wrap onto the same records again, handing out every
// message twice, and release() then moved head by more than the capacity.
TEST(Batch, ABatchStopsAtOneRingsWorthAlthoughTheTailRunsAhead)
{
	ShmRing s(4096);
	for (uint64_t off = 0; off < 4096; off += 256)
		s.set_header(off, 248, SHMQ_REC_MSG);
	s.set_counters(4096, 0);
	auto c = s.consumer();
	ASSERT_TRUE(c.try_peek().has_value()); // caches tail 4096
	s.set_counters(8192, 0);	       // hostile: a second ring's worth
	std::vector<Message> out(40);
	auto n = c.try_peek_many(out);
	ASSERT_TRUE(n.has_value());
	EXPECT_EQ(*n, 16u) << "the batch aliased the ring onto itself";
	ASSERT_TRUE(c.release().has_value());
	EXPECT_EQ(s.head(), 4096u);
}

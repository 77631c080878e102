// SPDX-License-Identifier: MIT
// The ring protocol core (include/shmq/ring.hpp) on plain shared memory.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "shm_ring.hpp"

using namespace shmq;
using namespace shmq::detail;
using shmq::test::ShmRing;

namespace {

// A writer and a reader driving the core the way Producer/Consumer do.
struct Writer {
	ShmRing &s;
	uint64_t tail, cached_head;
	explicit Writer(ShmRing &r) : s(r), tail(r.tail()), cached_head(r.head()) {}

	// Returns the errno of try_reserve; publishes on success.
	int put(const std::vector<uint8_t> &msg, bool *woke = nullptr)
	{
		Reserved res;
		const int e = try_reserve(s.ring, tail, cached_head, msg.size(), res);
		if (e)
			return e;
		if (!msg.empty())
			std::memcpy(payload_at(s.ring, res.pos), msg.data(), msg.size());
		const uint64_t old = s.tail();
		tail = commit(s.ring, res.pos, msg.size());
		const bool w = publish(s.ring, old, tail);
		if (woke)
			*woke = w;
		return 0;
	}
};

struct Reader {
	ShmRing &s;
	uint64_t head, cached_tail;
	explicit Reader(ShmRing &r) : s(r), head(r.head()), cached_tail(r.head()) {}

	// Returns the errno of try_peek (skipping a lone PAD); releases on 0.
	int get(std::vector<uint8_t> &out, bool *woke = nullptr)
	{
		for (;;) {
			Peeked p;
			const int e = try_peek(s.ring, head, cached_tail, p);
			if (e == EAGAIN && p.end != head) {
				(void)release(s.ring, head, p.end);
				head = p.end;
				continue;
			}
			if (e)
				return e;
			EXPECT_LE(p.payload + p.len, s.ring.capacity);
			out.assign(reinterpret_cast<const uint8_t *>(s.ring.data + p.payload),
				   reinterpret_cast<const uint8_t *>(s.ring.data + p.payload) + p.len);
			const bool w = release(s.ring, head, p.end);
			if (woke)
				*woke = w;
			head = p.end;
			return 0;
		}
	}
	// Returns try_peek's errno without consuming anything.
	int peek(Peeked &p) { return try_peek(s.ring, head, cached_tail, p); }
};

std::vector<uint8_t> pattern(size_t n, uint32_t seed)
{
	std::vector<uint8_t> v(n);
	uint32_t x = seed * 2654435761u + 1;
	for (auto &b : v) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b = static_cast<uint8_t>(x);
	}
	return v;
}

} // namespace

TEST(RecordSize, RoundsHeaderPlusPayloadUpToEight)
{
	EXPECT_EQ(record_size(0), 8u);
	EXPECT_EQ(record_size(1), 16u);
	EXPECT_EQ(record_size(8), 16u);
	EXPECT_EQ(record_size(9), 24u);
	EXPECT_EQ(record_size(2040), 2048u);
}

TEST(RingCore, EmptyRingPeekIsEAGAINWithNothingToRelease)
{
	ShmRing s(4096);
	Reader r(s);
	Peeked p;
	p.end = 12345;
	EXPECT_EQ(r.peek(p), EAGAIN);
	EXPECT_EQ(p.end, r.head);
}

TEST(RingCore, CommittedMessageIsInvisibleUntilPublished)
{
	ShmRing s(4096);
	Reserved res;
	uint64_t cached_head = 0;
	ASSERT_EQ(try_reserve(s.ring, 0, cached_head, 5, res), 0);
	std::memcpy(payload_at(s.ring, res.pos), "hello", 5);
	const uint64_t t = commit(s.ring, res.pos, 5);
	EXPECT_EQ(t, 16u);
	Reader r(s);
	Peeked p;
	EXPECT_EQ(r.peek(p), EAGAIN);
	EXPECT_FALSE(publish(s.ring, 0, t));
	EXPECT_EQ(s.tail(), 16u);
	ASSERT_EQ(r.peek(p), 0);
	EXPECT_EQ(p.len, 5u);
	EXPECT_EQ(p.payload, 8u);
	EXPECT_EQ(p.end, 16u);
	EXPECT_EQ(std::memcmp(s.ring.data + p.payload, "hello", 5), 0);
}

TEST(RingCore, ZeroLengthMessageRoundTrips)
{
	ShmRing s(4096);
	Writer w(s);
	Reader r(s);
	ASSERT_EQ(w.put({}), 0);
	EXPECT_EQ(s.tail(), 8u);
	std::vector<uint8_t> out{1, 2, 3};
	ASSERT_EQ(r.get(out), 0);
	EXPECT_TRUE(out.empty());
	EXPECT_EQ(r.get(out), EAGAIN);
}

TEST(RingCore, OversizeMessageIsEMSGSIZE)
{
	ShmRing s(4096);
	Reserved res;
	uint64_t ch = 0;
	EXPECT_EQ(try_reserve(s.ring, 0, ch, s.ring.max_message + 1, res), EMSGSIZE);
	EXPECT_EQ(try_reserve(s.ring, 0, ch, s.ring.max_message, res), 0);
}

TEST(RingCore, MaxMessageIsAQuarterOfTheRingMinusHeader)
{
	ShmRing s(65536);
	EXPECT_EQ(record_size(s.ring.max_message), 65536u / 4);
}

class EverySize : public ::testing::TestWithParam<uint64_t> {};

// Every size from 0 to max_message, back to back, so that the ring wraps at
// ever-changing offsets; the ring is empty after each message.
TEST_P(EverySize, EachSizeRoundTripsInOrder)
{
	ShmRing s(GetParam());
	Writer w(s);
	Reader r(s);
	std::vector<uint8_t> out;
	for (uint64_t n = 0; n <= s.ring.max_message; ++n) {
		const auto msg = pattern(n, static_cast<uint32_t>(n));
		ASSERT_EQ(w.put(msg), 0) << "size " << n;
		ASSERT_EQ(r.get(out), 0) << "size " << n;
		ASSERT_EQ(out, msg) << "size " << n;
		ASSERT_EQ(r.head, s.tail());
	}
	EXPECT_GT(s.tail(), 10 * s.ring.capacity); // wrapped many times
}

// Every size with a backlog: the ring stays partly full, so messages wait
// behind others and pads appear with data on both sides.
TEST_P(EverySize, EachSizeWithBacklogRoundTripsInOrder)
{
	ShmRing s(GetParam());
	Writer w(s);
	Reader r(s);
	std::vector<uint8_t> out;
	uint64_t next_read = 0;
	for (uint64_t n = 0; n <= s.ring.max_message; ++n) {
		const auto msg = pattern(n, static_cast<uint32_t>(n));
		int e;
		while ((e = w.put(msg)) == EAGAIN) {
			ASSERT_EQ(r.get(out), 0);
			ASSERT_EQ(out, pattern(next_read, static_cast<uint32_t>(next_read)));
			++next_read;
		}
		ASSERT_EQ(e, 0) << "size " << n;
	}
	while (r.get(out) == 0) {
		ASSERT_EQ(out, pattern(next_read, static_cast<uint32_t>(next_read)));
		++next_read;
	}
	EXPECT_EQ(next_read, s.ring.max_message + 1);
	EXPECT_EQ(r.head, s.tail());
}

INSTANTIATE_TEST_SUITE_P(Capacities, EverySize, ::testing::Values(4096, 65536));

// For a 4 KiB ring, every size at every starting offset.
TEST(RingCore, EverySizeAtEveryOffset4K)
{
	ShmRing s(4096);
	std::vector<uint8_t> out;
	for (uint64_t off = 0; off < s.ring.capacity; off += 8) {
		const uint64_t start = 3 * s.ring.capacity + off;
		for (uint64_t n = 0; n <= s.ring.max_message; ++n) {
			s.set_counters(start, start);
			Writer w(s);
			Reader r(s);
			const auto msg = pattern(n, static_cast<uint32_t>(n + off));
			ASSERT_EQ(w.put(msg), 0) << "offset " << off << " size " << n;
			ASSERT_EQ(r.get(out), 0) << "offset " << off << " size " << n;
			ASSERT_EQ(out, msg);
			ASSERT_EQ(r.head, w.tail);
		}
	}
}

TEST(RingCore, MaxMessageFitsEmptyRingAtEveryOffset)
{
	ShmRing s(4096);
	for (uint64_t off = 0; off < s.ring.capacity; off += 8) {
		uint64_t ch = off;
		Reserved res;
		ASSERT_EQ(try_reserve(s.ring, off, ch, s.ring.max_message, res), 0) << off;
		ASSERT_LE(res.need, s.ring.capacity);
	}
}

TEST(RingCore, PadRecordFillsTheRingEndAndMessageStartsAtZero)
{
	ShmRing s(4096);
	const uint64_t start = 4096 - 24;
	s.set_counters(start, start);
	Writer w(s);
	ASSERT_EQ(w.put(pattern(20, 1)), 0);
	const auto pad = s.header(4096 - 24);
	EXPECT_EQ(pad.type, SHMQ_REC_PAD);
	EXPECT_EQ(pad.len, 16u); // 8 + 16 reaches the ring end exactly
	const auto msg = s.header(0);
	EXPECT_EQ(msg.type, SHMQ_REC_MSG);
	EXPECT_EQ(msg.len, 20u);
	EXPECT_EQ(s.tail(), start + 24 + 32);
	Reader r(s);
	std::vector<uint8_t> out;
	ASSERT_EQ(r.get(out), 0);
	EXPECT_EQ(out, pattern(20, 1));
	EXPECT_EQ(r.head, start + 24 + 32);
}

TEST(RingCore, RecordEndingExactlyAtRingEndNeedsNoPad)
{
	ShmRing s(4096);
	const uint64_t start = 4096 - 32;
	s.set_counters(start, start);
	Writer w(s);
	ASSERT_EQ(w.put(pattern(24, 1)), 0);
	EXPECT_EQ(s.header(4096 - 32).type, SHMQ_REC_MSG);
	EXPECT_EQ(s.tail(), 4096u);
}

TEST(RingCore, SmallestPadIsAHeaderOnly)
{
	ShmRing s(4096);
	const uint64_t start = 4096 - 8;
	s.set_counters(start, start);
	Writer w(s);
	ASSERT_EQ(w.put(pattern(0, 1)), 0); // rec 8 fits exactly: no pad
	ASSERT_EQ(w.put(pattern(1, 1)), 0);
	s.set_counters(start, start);
	Writer w2(s);
	ASSERT_EQ(w2.put(pattern(1, 2)), 0); // rec 16 > 8: pad with len 0
	EXPECT_EQ(s.header(4096 - 8).type, SHMQ_REC_PAD);
	EXPECT_EQ(s.header(4096 - 8).len, 0u);
	Reader r(s);
	std::vector<uint8_t> out;
	ASSERT_EQ(r.get(out), 0);
	EXPECT_EQ(out, pattern(1, 2));
}

TEST(RingCore, FullRingIsEAGAINAfterExactlyCapacityBytes)
{
	ShmRing s(4096);
	Writer w(s);
	int count = 0;
	while (w.put(pattern(8, 0)) == 0)
		++count;
	EXPECT_EQ(count, 4096 / 16);
	EXPECT_EQ(s.tail(), 4096u);
	Reserved res;
	EXPECT_EQ(try_reserve(s.ring, w.tail, w.cached_head, 0, res), EAGAIN);
	EXPECT_EQ(res.need, 8u);
}

TEST(RingCore, EAGAINNeedIncludesThePad)
{
	ShmRing s(4096);
	// 32 bytes free: enough for the 32-byte record, not for the 16-byte pad
	// it needs first at the ring end
	const uint64_t head = 4096 + 16, tail = 2 * 4096 - 16;
	s.set_counters(tail, head);
	uint64_t ch = head;
	Reserved res;
	ASSERT_EQ(try_reserve(s.ring, tail, ch, 24, res), EAGAIN);
	EXPECT_EQ(res.need, 16u + 32u);
	EXPECT_LE(res.need, s.ring.capacity);
}

TEST(RingCore, SpaceIsReusableOnlyAfterRelease)
{
	ShmRing s(4096);
	Writer w(s);
	Reader r(s);
	while (w.put(pattern(100, 0)) == 0) {
	}
	Peeked p;
	ASSERT_EQ(r.peek(p), 0);
	EXPECT_EQ(w.put(pattern(100, 0)), EAGAIN); // peeked is not released
	(void)release(s.ring, r.head, p.end);
	r.head = p.end;
	EXPECT_EQ(w.put(pattern(100, 0)), 0);
}

TEST(RingCore, ProducerReadsHeadOnlyWhenCachedHeadSaysFull)
{
	ShmRing s(4096);
	s.set_counters(0, 0);
	*s.ring.head = 999999; // garbage, but the cached head says there is room
	uint64_t ch = 0;
	Reserved res;
	EXPECT_EQ(try_reserve(s.ring, 0, ch, 100, res), 0);
	EXPECT_EQ(ch, 0u);
}

TEST(RingCore, CountersRunFreelyAcrossTwoToTheSixtyFour)
{
	ShmRing s(4096);
	const uint64_t start = UINT64_MAX - 3 * 4096 + 1 + 40; // 8-aligned
	ASSERT_EQ(start % 8, 0u);
	s.set_counters(start, start);
	Writer w(s);
	Reader r(s);
	std::vector<uint8_t> out;
	uint64_t read = 0;
	for (uint32_t i = 0; i < 200; ++i) {
		const auto msg = pattern(i * 7 % 1000, i);
		while (w.put(msg) == EAGAIN) {
			ASSERT_EQ(r.get(out), 0);
			ASSERT_EQ(out, pattern(read * 7 % 1000, static_cast<uint32_t>(read)));
			++read;
		}
	}
	while (r.get(out) == 0) {
		ASSERT_EQ(out, pattern(read * 7 % 1000, static_cast<uint32_t>(read)));
		++read;
	}
	EXPECT_EQ(read, 200u);
	EXPECT_LT(s.tail(), start); // wrapped past zero
}

TEST(RingCore, LonePadIsReportedForRelease)
{
	ShmRing s(4096);
	const uint64_t start = 4096 - 64;
	s.set_header(4096 - 64, 56, SHMQ_REC_PAD);
	s.set_counters(start + 64, start);
	Reader r(s);
	Peeked p;
	EXPECT_EQ(r.peek(p), EAGAIN);
	EXPECT_EQ(p.end, start + 64);
}

// --- corrupt shared memory: every inconsistency is EBADMSG -------------------

namespace {

// A consumer at @head with the producer's tail at @tail.
int peek_at(ShmRing &s, uint64_t head, uint64_t tail)
{
	s.set_counters(tail, head);
	Reader r(s);
	Peeked p;
	const int e = r.peek(p);
	if (e == 0) {
		EXPECT_LE(p.payload + p.len, s.ring.capacity);
	}
	return e;
}

} // namespace

TEST(RingCorrupt, TailMoreThanCapacityAheadIsEBADMSG)
{
	ShmRing s(4096);
	s.set_header(0, 8, SHMQ_REC_MSG);
	EXPECT_EQ(peek_at(s, 0, 4096 + 8), EBADMSG);
	EXPECT_EQ(peek_at(s, 0, 4096), 0); // exactly full is fine
}

TEST(RingCorrupt, TailBehindHeadIsEBADMSG)
{
	ShmRing s(4096);
	s.set_header(64, 8, SHMQ_REC_MSG);
	EXPECT_EQ(peek_at(s, 64, 32), EBADMSG);
}

TEST(RingCorrupt, MisalignedHeadIsEBADMSG)
{
	ShmRing s(4096);
	// A well-formed header at the misaligned position: only the alignment
	// check can refuse it.
	const uint64_t hdr = pack_header(0, SHMQ_REC_MSG);
	std::memcpy(s.ring.data + 4, &hdr, 8);
	EXPECT_EQ(peek_at(s, 4, 4 + 16), EBADMSG);
}

TEST(RingCorrupt, MisalignedTailIsEBADMSG)
{
	ShmRing s(4096);
	s.set_header(0, 0, SHMQ_REC_MSG);
	EXPECT_EQ(peek_at(s, 0, 12), EBADMSG);
}

TEST(RingCorrupt, UnknownRecordTypeIsEBADMSG)
{
	ShmRing s(4096);
	s.set_header(0, 8, 0x12345678u);
	EXPECT_EQ(peek_at(s, 0, 16), EBADMSG);
}

TEST(RingCorrupt, ZeroHeaderIsEBADMSG)
{
	ShmRing s(4096); // zeroed data, but tail says there is a record
	EXPECT_EQ(peek_at(s, 0, 16), EBADMSG);
}

TEST(RingCorrupt, PadEndingBeforeRingEndIsEBADMSG)
{
	ShmRing s(4096);
	s.set_header(4096 - 64, 48, SHMQ_REC_PAD); // should be 56
	s.set_header(0, 8, SHMQ_REC_MSG);
	EXPECT_EQ(peek_at(s, 4096 - 64, 4096 + 16), EBADMSG);
}

TEST(RingCorrupt, PadEndingBeyondRingEndIsEBADMSG)
{
	ShmRing s(4096);
	s.set_header(4096 - 64, 64, SHMQ_REC_PAD);
	s.set_header(0, 8, SHMQ_REC_MSG);
	EXPECT_EQ(peek_at(s, 4096 - 64, 4096 + 16), EBADMSG);
	s.set_header(4096 - 64, 0xFFFFFFF8u, SHMQ_REC_PAD);
	EXPECT_EQ(peek_at(s, 4096 - 64, 4096 + 16), EBADMSG);
}

TEST(RingCorrupt, PadBeyondTailIsEBADMSG)
{
	ShmRing s(4096);
	s.set_header(4096 - 64, 56, SHMQ_REC_PAD);
	s.set_header(0, 0, SHMQ_REC_MSG); // a valid record after the pad
	EXPECT_EQ(peek_at(s, 4096 - 64, 4096 - 32), EBADMSG);
	EXPECT_EQ(peek_at(s, 4096 - 64, 4096 + 8), 0);
}

TEST(RingCorrupt, PadFollowedByPadIsEBADMSG)
{
	ShmRing s(4096);
	s.set_header(4096 - 64, 56, SHMQ_REC_PAD);
	s.set_header(0, 8, SHMQ_REC_PAD); // would be a fine MSG but for its type
	EXPECT_EQ(peek_at(s, 4096 - 64, 4096 + 64), EBADMSG);
	s.set_header(0, 8, SHMQ_REC_MSG);
	EXPECT_EQ(peek_at(s, 4096 - 64, 4096 + 64), 0);
}

TEST(RingCorrupt, GarbageAfterPadIsEBADMSG)
{
	ShmRing s(4096);
	s.set_header(4096 - 64, 56, SHMQ_REC_PAD);
	s.set_header(0, 8, 0xdeadbeefu);
	EXPECT_EQ(peek_at(s, 4096 - 64, 4096 + 64), EBADMSG);
}

TEST(RingCorrupt, MessageCrossingTheRingEndIsEBADMSG)
{
	ShmRing s(4096);
	s.set_header(4096 - 16, 16, SHMQ_REC_MSG); // record of 24 in 16 bytes
	EXPECT_EQ(peek_at(s, 4096 - 16, 4096 + 64), EBADMSG);
	s.set_header(4096 - 16, 8, SHMQ_REC_MSG); // 16 bytes: fits exactly
	EXPECT_EQ(peek_at(s, 4096 - 16, 4096 + 64), 0);
}

TEST(RingCorrupt, MessageBeyondTailIsEBADMSG)
{
	ShmRing s(4096);
	s.set_header(0, 100, SHMQ_REC_MSG);
	EXPECT_EQ(peek_at(s, 0, 16), EBADMSG);
	EXPECT_EQ(peek_at(s, 0, 112), 0);
}

TEST(RingCorrupt, MessageAfterPadBeyondTailIsEBADMSG)
{
	ShmRing s(4096);
	s.set_header(4096 - 64, 56, SHMQ_REC_PAD);
	s.set_header(0, 100, SHMQ_REC_MSG);
	EXPECT_EQ(peek_at(s, 4096 - 64, 4096 + 16), EBADMSG);
}

TEST(RingCorrupt, LengthAboveMaxMessageIsEBADMSG)
{
	ShmRing s(65536, 1000); // max_message below capacity/2 - 8
	s.set_header(0, 1001, SHMQ_REC_MSG);
	EXPECT_EQ(peek_at(s, 0, 2048), EBADMSG);
	s.set_header(0, 1000, SHMQ_REC_MSG);
	EXPECT_EQ(peek_at(s, 0, 2048), 0);
}

TEST(RingCorrupt, HugeLengthIsEBADMSG)
{
	ShmRing s(4096);
	s.set_header(0, 0xFFFFFFFFu, SHMQ_REC_MSG);
	EXPECT_EQ(peek_at(s, 0, 4096), EBADMSG);
}

TEST(RingCorrupt, ProducerSeesHeadAheadOfTailAsEBADMSG)
{
	ShmRing s(4096);
	s.set_counters(4096, 4096 + 8);
	uint64_t ch = 4096 + 8;
	Reserved res;
	EXPECT_EQ(try_reserve(s.ring, 4096, ch, 8, res), EBADMSG);
}

TEST(RingCorrupt, ProducerSeesHeadMoreThanCapacityBehindAsEBADMSG)
{
	ShmRing s(4096);
	s.set_counters(3 * 4096, 4096); // 8192 "used" in a 4096 ring
	uint64_t ch = 2 * 4096;		// cached: full
	Reserved res;
	EXPECT_EQ(try_reserve(s.ring, 3 * 4096, ch, 8, res), EBADMSG);
}

// Random counters and headers: the reader answers 0, EAGAIN or EBADMSG and
// never touches memory outside the data region (guard pages would fault).
TEST(RingCorrupt, RandomGarbageNeverReadsOutOfBounds)
{
	ShmRing s(4096);
	std::mt19937_64 rng(42);
	std::vector<uint8_t> sink(4096);
	int ok = 0, bad = 0, empty = 0;
	for (int i = 0; i < 200000; ++i) {
		uint64_t head = rng() % (3 * 4096);
		if (rng() % 4)
			head &= ~uint64_t{7};
		uint64_t tail = head + (rng() % 5 == 0 ? rng() : rng() % 4200);
		if (rng() % 4)
			tail &= ~uint64_t{7};
		// a few plausible records, then garbage
		for (int k = 0; k < 4; ++k) {
			const uint64_t off = (rng() % 512) * 8;
			const uint32_t type = rng() % 3 == 0 ? SHMQ_REC_PAD
					      : rng() % 2	 ? SHMQ_REC_MSG
								 : static_cast<uint32_t>(rng());
			const uint32_t len = rng() % 2 ? static_cast<uint32_t>(rng() % 4200)
						       : static_cast<uint32_t>(rng());
			s.set_header(off, len, type);
		}
		s.set_header(head & 4095 & ~uint64_t{7}, static_cast<uint32_t>(rng() % 2100),
			     rng() % 2 ? SHMQ_REC_MSG : SHMQ_REC_PAD);
		s.set_counters(tail, head);
		Reader r(s);
		Peeked p;
		const int e = r.peek(p);
		if (e == 0) {
			ASSERT_GE(p.payload, 8u);
			ASSERT_LE(p.payload + p.len, s.ring.capacity);
			ASSERT_LE(p.end - head, tail - head);
			std::memcpy(sink.data(), s.ring.data + p.payload, p.len);
			++ok;
		} else if (e == EAGAIN) {
			ASSERT_LE(p.end - head, 4096u);
			++empty;
		} else {
			ASSERT_EQ(e, EBADMSG);
			++bad;
		}
	}
	// The generator must exercise every outcome, or the test proves little.
	EXPECT_GT(ok, 1000);
	EXPECT_GT(bad, 1000);
	EXPECT_GT(empty, 10);
}

// --- wake decisions -----------------------------------------------------------

TEST(WakeProducer, NoWakeWithoutReadWaiters)
{
	ShmRing s(4096);
	s.set_waiters(0, 0, 0);
	s.set_counters(0, 0);
	EXPECT_FALSE(publish(s.ring, 0, 16));
	EXPECT_EQ(s.tail(), 16u);
}

TEST(WakeProducer, WakesWhenRingWasEmptyAndReaderWaits)
{
	ShmRing s(4096);
	s.set_waiters(1, 0, 0);
	s.set_counters(64, 64); // head == old tail
	EXPECT_TRUE(publish(s.ring, 64, 80));
	EXPECT_EQ(s.tail(), 80u);
}

TEST(WakeProducer, NoWakeWhenConsumerIsBehind)
{
	ShmRing s(4096);
	s.set_waiters(1, 0, 0);
	s.set_counters(64, 48); // consumer has not caught up: it is not asleep
	EXPECT_FALSE(publish(s.ring, 64, 80));
}

TEST(WakeProducer, NoWakeWhenConsumerAlreadySawTheNewTail)
{
	ShmRing s(4096);
	s.set_waiters(1, 0, 0);
	s.set_counters(64, 80); // consumer consumed past old tail already
	EXPECT_FALSE(publish(s.ring, 64, 80));
}

TEST(WakeConsumer, NoWakeWithoutWriteWaiters)
{
	ShmRing s(4096);
	s.set_waiters(0, 0, 2048);
	s.set_counters(4096, 0);
	EXPECT_FALSE(release(s.ring, 0, 2048));
	EXPECT_EQ(s.head(), 2048u);
}

TEST(WakeConsumer, WakesWhenFreeSpaceCrossesWriteNeed)
{
	ShmRing s(4096);
	s.set_waiters(0, 1, 2048);
	s.set_counters(4096, 0);
	EXPECT_TRUE(release(s.ring, 0, 2048)); // free 0 -> 2048
}

TEST(WakeConsumer, NoWakeWhileFreeSpaceStaysBelowNeed)
{
	ShmRing s(4096);
	s.set_waiters(0, 1, 2048);
	s.set_counters(4096, 0);
	EXPECT_FALSE(release(s.ring, 0, 2040)); // free 0 -> 2040
}

TEST(WakeConsumer, NoWakeWhenFreeSpaceWasAlreadyEnough)
{
	ShmRing s(4096);
	s.set_waiters(0, 1, 2048);
	s.set_counters(4096, 2048);
	EXPECT_FALSE(release(s.ring, 2048, 3072)); // free 2048 -> 3072
}

// The crossing must be computed with the producer's current tail. A consumer
// that judged it with its own stale cached tail (1024 here) would compute
// free 3072 -> 4096, see no crossing of 1024, and lose the wakeup.
TEST(WakeConsumer, CrossingUsesTheSharedTailNotACachedOne)
{
	ShmRing s(4096);
	Reader r(s);
	std::vector<uint8_t> out;
	// The reader caches tail == 1024 while looking at the first message.
	Writer w(s);
	for (int i = 0; i < 8; ++i)
		ASSERT_EQ(w.put(pattern(120, i)), 0); // 8 x 128 bytes
	// Then the producer fills the ring and goes to sleep needing 1024.
	Peeked p;
	ASSERT_EQ(r.peek(p), 0);
	while (w.put(pattern(120, 0)) == 0) {
	}
	ASSERT_EQ(s.tail() - s.head(), 4096u);
	s.set_waiters(0, 1, 1024);
	// Consume the 8 messages seen with the old cached tail: free 0 -> 1024.
	int wakes = 0;
	for (int i = 0; i < 8; ++i) {
		bool woke = false;
		ASSERT_EQ(r.get(out, &woke), 0);
		wakes += woke;
	}
	EXPECT_EQ(wakes, 1);
}

// Draining a full ring while the producer sleeps costs exactly one wake.
TEST(WakeConsumer, OneWakePerCrossingWhileDraining)
{
	ShmRing s(65536);
	Writer w(s);
	while (w.put(pattern(56, 0)) == 0) {
	}
	s.set_waiters(0, 1, 1000);
	Reader r(s);
	std::vector<uint8_t> out;
	int wakes = 0, n = 0;
	bool woke;
	while (r.get(out, &woke) == 0) {
		wakes += woke;
		++n;
	}
	EXPECT_EQ(n, 65536 / 64);
	EXPECT_EQ(wakes, 1);
}

// A producer publishing into a non-empty ring wakes only on the first
// publication after the consumer went to sleep on an empty ring.
TEST(WakeProducer, OneWakePerEmptyToNonEmptyTransition)
{
	ShmRing s(65536);
	s.set_waiters(1, 0, 0);
	Writer w(s);
	int wakes = 0;
	for (int i = 0; i < 100; ++i) {
		bool woke = false;
		ASSERT_EQ(w.put(pattern(10, i), &woke), 0);
		wakes += woke;
	}
	EXPECT_EQ(wakes, 1);
}

TEST(WakeConsumer, ImpossibleCountersWakeRatherThanLoseAWakeup)
{
	EXPECT_TRUE(free_crossed(4096, 100000, 0, 8, 16));
	EXPECT_TRUE(free_crossed(4096, 4096, 64, 32, 16));
	EXPECT_FALSE(free_crossed(4096, 4096, 0, 8, 16));
	EXPECT_TRUE(free_crossed(4096, 4096, 0, 16, 16));
}

// A producer poller gets EPOLLOUT at capacity/2 free because any single
// message then fits, at every tail: a record is at most capacity/4 bytes, so
// record plus PAD stays below capacity/2. (With records of up to capacity/2
// a tail just past the middle would need capacity - 8 bytes, and a
// level-triggered epoll producer could spin.)
TEST(RingCore, HalfFreeRingFitsTheLargestMessageAtEveryTail)
{
	for (uint64_t off = 0; off < 4096; off += 8) {
		ShmRing s(4096);
		const uint64_t tail = 4096 + off, head = tail - 2048; // free: capacity/2
		s.set_counters(tail, head);
		uint64_t ch = head;
		Reserved res;
		ASSERT_EQ(try_reserve(s.ring, tail, ch, s.ring.max_message, res), 0) << off;
		ASSERT_LE(res.need, 4096u / 2) << off;
	}
}

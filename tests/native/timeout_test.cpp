// SPDX-License-Identifier: MIT
// Timeout::after() with durations whose nanosecond count does not fit in
// 64 bits, or whose conversion overflows on the way (coarse units, odd
// ratios, huge floating-point values): they must mean "forever", never wrap
// into a deadline in the past; durations <= 0 and NaN mean "do not wait".
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include "shm_ring.hpp"

using namespace shmq;
using namespace std::chrono_literals;
using shmq::test::ShmRing;

namespace {

constexpr uint64_t kForever = UINT64_MAX;

template <class Rep, class Period> uint64_t deadline(std::chrono::duration<Rep, Period> d)
{
	return Timeout::after(d).deadline_ns();
}

} // namespace

TEST(Timeouts, AfterSecondsMaxIsInfinite)
{
	EXPECT_EQ(deadline(std::chrono::seconds::max()), kForever);
}

TEST(Timeouts, AfterHoursMaxIsInfinite)
{
	// hours::max() in nanoseconds needs ~2^101: duration_cast overflows.
	EXPECT_EQ(deadline(std::chrono::hours::max()), kForever);
	EXPECT_EQ(deadline(std::chrono::years::max()), kForever);
}

TEST(Timeouts, AfterMinutesJustPastTheNanosecondRangeIsInfinite)
{
	EXPECT_EQ(deadline(std::chrono::minutes(INT64_MAX / 60)), kForever);
	// 2^64 ns is ~584 years: 600 years saturates, 100 years does not.
	EXPECT_EQ(deadline(std::chrono::years(600)), kForever);
	const uint64_t before = monotonic_now_ns();
	const uint64_t d = deadline(std::chrono::years(100));
	EXPECT_NE(d, kForever);
	EXPECT_GE(d, before + uint64_t{3155695200} * 1000000000u);
}

TEST(Timeouts, AfterNanosecondsMaxIsTheExactDeadline)
{
	// INT64_MAX ns (292 years) plus the monotonic clock still fits: exact.
	const uint64_t before = monotonic_now_ns();
	const uint64_t d = deadline(std::chrono::nanoseconds::max());
	const uint64_t after = monotonic_now_ns();
	EXPECT_GE(d, before + INT64_MAX);
	EXPECT_LE(d, after + INT64_MAX);
}

TEST(Timeouts, AfterHugeUnsignedCountIsInfinite)
{
	EXPECT_EQ(deadline(std::chrono::duration<uint64_t, std::milli>(UINT64_MAX)), kForever);
	EXPECT_EQ(deadline(std::chrono::duration<uint64_t, std::nano>(UINT64_MAX)), kForever);
}

TEST(Timeouts, AfterOddRatiosConvertExactlyOrSaturate)
{
	const uint64_t before = monotonic_now_ns();
	// 3 thirds of a second.
	const uint64_t d = deadline(std::chrono::duration<int64_t, std::ratio<1, 3>>(3));
	EXPECT_GE(d, before + 1000000000u);
	EXPECT_LE(d, monotonic_now_ns() + 1000000000u);
	// A period of 2^62 s: its ratio to nanoseconds does not even fit intmax_t.
	EXPECT_EQ(deadline(std::chrono::duration<int64_t, std::ratio<(INT64_C(1) << 62), 1>>(1)),
		  kForever);
	// A period of 1/2^62 s: one tick is less than a nanosecond, so: none.
	EXPECT_EQ(deadline(std::chrono::duration<int64_t, std::ratio<1, (INT64_C(1) << 62)>>(1)),
		  0u);
	EXPECT_EQ(deadline(std::chrono::duration<int, std::micro>(-5)), 0u);
}

TEST(Timeouts, AfterHugeFloatingPointIsInfinite)
{
	EXPECT_EQ(deadline(std::chrono::duration<double>(1e300)), kForever);
	EXPECT_EQ(deadline(std::chrono::duration<double>(std::numeric_limits<double>::infinity())),
		  kForever);
	EXPECT_EQ(deadline(std::chrono::duration<float, std::ratio<3600>>(1e30f)), kForever);
	const uint64_t before = monotonic_now_ns();
	const uint64_t d = deadline(std::chrono::duration<double>(1.5));
	EXPECT_GE(d, before + 1500000000u);
	EXPECT_LE(d, monotonic_now_ns() + 1500000000u);
}

TEST(Timeouts, AfterNaNNegativeAndZeroAreNone)
{
	EXPECT_EQ(deadline(std::chrono::duration<double>(std::nan(""))), 0u);
	EXPECT_EQ(deadline(std::chrono::duration<double>(-1e300)), 0u);
	EXPECT_EQ(deadline(std::chrono::duration<double>(-0.0)), 0u);
	EXPECT_EQ(deadline(std::chrono::seconds::min()), 0u);
	EXPECT_EQ(deadline(std::chrono::hours::min()), 0u);
	EXPECT_EQ(deadline(-1ns), 0u);
	EXPECT_EQ(deadline(0ns), 0u);
	// Rounds like duration_cast, towards zero: less than 1 ns is none.
	EXPECT_EQ(deadline(std::chrono::duration<double, std::nano>(0.5)), 0u);
}

TEST(Timeouts, AfterIsNoexcept)
{
	const std::chrono::duration<double> d(1.0);
	static_assert(noexcept(Timeout::after(std::chrono::hours::max())));
	static_assert(noexcept(Timeout::after(d)));
}

// A full ring and send(after(seconds::max())): the send blocks until the
// consumer frees room 100 ms later instead of failing at once.
TEST(Timeouts, SendWithSecondsMaxBlocksUntilThereIsRoom)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	const std::string msg(100, 'm');
	const auto b = std::as_bytes(std::span(msg));
	while (p.try_send(b).has_value()) {
	}
	std::thread t([&] {
		std::this_thread::sleep_for(100ms);
		std::byte buf[128];
		(void)c.try_receive(buf);
	});
	const auto t0 = std::chrono::steady_clock::now();
	auto r = p.send(b, Timeout::after(std::chrono::seconds::max()));
	const auto dt = std::chrono::steady_clock::now() - t0;
	t.join();
	EXPECT_TRUE(r.has_value()) << r.error().message();
	EXPECT_GE(dt, 90ms);
}

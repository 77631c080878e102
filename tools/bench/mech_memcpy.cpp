// SPDX-License-Identifier: MIT
// The physical limit: one process copying messages of the same size from a
// source region into a destination region of the ring's capacity, walking
// both like a ring, with memcpy. No second process, no synchronisation, no
// verification (nothing is transferred): an upper bound for any mechanism
// that copies each message once. Stream workload only.
#include <algorithm>
#include <cstring>

#include "bench.hpp"

namespace shmq_bench {

namespace {

class MemcpyMechanism final : public Mechanism {
public:
	const char *name() const override { return "memcpy"; }
	const char *describe() const override
	{
		return "single-process memcpy of each message (the physical limit)";
	}
	bool applies(Workload w) const override { return w == Workload::Stream; }
	std::unique_ptr<Channel> make_channel(const ChannelConfig &) override
	{
		throw Failure("memcpy runs in one process");
	}
	bool in_process() const override { return true; }
	void run_in_process(const ChannelConfig &cfg, const Limits &lim, Row &row) override
	{
		const size_t n = cfg.msg_size;
		const size_t region = std::max(cfg.capacity, 2 * n);
		Buffer src(region), dst(region);
		for (size_t i = 0; i < region; ++i)
			src.data()[i] = static_cast<std::byte>(i * 131);
		size_t off = 0;
		auto one = [&] {
			if (off + n > region)
				off = 0;
			std::memcpy(dst.data() + off, src.data() + off, n);
			off += n;
			// Keep the compiler from dropping the copies.
			asm volatile("" : : "r"(dst.data()) : "memory");
		};
		for (uint64_t i = 0; i < lim.warmup; ++i)
			one();
		const unsigned check = n >= 4096 ? 1 : 64;
		const uint64_t t0 = now_ns();
		uint64_t done = 0, t1 = t0;
		for (;;) {
			for (unsigned k = 0; k < check; ++k)
				one();
			done += check;
			t1 = now_ns();
			if (lim.count ? done >= lim.count : double(t1 - t0) >= lim.duration_s * 1e9)
				break;
		}
		row.messages = done;
		row.bytes = done * n;
		row.seconds = double(t1 - t0) / 1e9;
		row.buffer = region;
	}
};

const Registration reg(900, "memcpy", [] { return std::unique_ptr<Mechanism>(new MemcpyMechanism); });

} // namespace

} // namespace shmq_bench

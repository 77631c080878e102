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

class MemcpyMechanism final : public InProcessStreamMechanism {
public:
	const char *name() const override { return "memcpy"; }
	const char *describe() const override
	{
		return "single-process memcpy of each message (the physical limit)";
	}
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
		run_one_process(lim, n, region, row, one);
	}
};

const Registration reg(900, "memcpy", [] { return std::unique_ptr<Mechanism>(new MemcpyMechanism); });

} // namespace

} // namespace shmq_bench

// SPDX-License-Identifier: MIT
// The work without the transfer: one process fills each message (the
// sender's part of every workload) into a region of the ring's capacity and
// checks it right there (the receiver's part), with no second process and no
// synchronisation. Next to `memcpy` (one copy per message, no verification)
// it tells how much of a zero-copy mechanism's large-message throughput is
// the benchmark's own fill-and-verify work: a zero-copy stream splits that
// work over two CPUs, so it can approach or pass this row, but not a bare
// memcpy whose loop is cheaper per byte than fill + check. Stream only.
#include <algorithm>

#include "bench.hpp"

namespace shmq_bench {

namespace {

class FillCheckMechanism final : public InProcessStreamMechanism {
public:
	const char *name() const override { return "fill-check"; }
	const char *describe() const override
	{
		return "single-process fill + verify of each message (the benchmark's own work)";
	}
	void run_in_process(const ChannelConfig &cfg, const Limits &lim, Row &row) override
	{
		const size_t n = cfg.msg_size;
		const size_t region = std::max(cfg.capacity, 2 * n);
		Buffer buf(region);
		size_t off = 0;
		uint64_t seq = 0;
		auto one = [&] {
			if (off + n > region)
				off = 0;
			fill_message(buf.data() + off, n, seq, 0);
			(void)check_message({buf.data() + off, n}, n, seq);
			off += (n + 63) & ~size_t{63};
			++seq;
		};
		run_one_process(lim, n, region, row, one);
	}
};

const Registration reg(910, "fill-check",
		       [] { return std::unique_ptr<Mechanism>(new FillCheckMechanism); });

} // namespace

} // namespace shmq_bench

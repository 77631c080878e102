// SPDX-License-Identifier: MIT
// A lane queue on plain shared memory laid out as the kernel lays it out
// (docs/abi.md, "Lane queues"): the status page (state word, read_wake,
// dir_gen, the directory), the consumer page (read_armed, one head per
// lane), then per lane a producer page (tail, write_armed) and its data.
// The kernel's part (attaching a producer to a lane, lane states) is
// attach() and set_state(). Used by lanes_test.cpp and by bench-instr
// (tools/bench/instr/instr.cpp).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <sys/mman.h>
#include <unistd.h>

#include "../../lib/internal.hpp"

namespace shmq::test {

class ShmLanes {
public:
	ShmLanes(uint32_t lanes, uint64_t lane_size) : n_(lanes), lane_size_(lane_size)
	{
		page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
		stride_ = page_ + lane_size;
		total_ = 2 * page_ + n_ * stride_;
		void *p = mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			throw std::runtime_error("mmap");
		base_ = static_cast<std::byte *>(p);
		*state() = SHMQ_STATE_PRODUCER | SHMQ_STATE_CONSUMER;
	}
	~ShmLanes() { munmap(base_, total_); }
	ShmLanes(const ShmLanes &) = delete;
	ShmLanes &operator=(const ShmLanes &) = delete;

	std::byte *status() { return base_; }
	std::byte *consumer_page() { return base_ + page_; }
	std::byte *lane(uint32_t j) { return base_ + 2 * page_ + j * stride_; }
	uint32_t *state() { return reinterpret_cast<uint32_t *>(base_); }
	uint32_t *dir_gen() { return reinterpret_cast<uint32_t *>(base_ + 8); }
	shmq_lane_dir *dir(uint32_t j) { return reinterpret_cast<shmq_lane_dir *>(base_ + 64 * (j + 1)); }

	detail::PlainLanes plain()
	{
		detail::PlainLanes m;
		m.status = status();
		m.consumer = consumer_page();
		m.lanes = lane(0);
		m.max_producers = n_;
		m.lane_size = lane_size_;
		m.stride = stride_;
		return m;
	}
	// The kernel's part: a producer attaches to lane @j, its tail starting
	// at the consumer's head there.
	void attach(uint32_t j)
	{
		*reinterpret_cast<uint64_t *>(lane(j)) = head(j);
		dir(j)->generation++;
		dir(j)->state = SHMQ_LANE_ATTACHED;
		detail::store_release(dir_gen(), *dir_gen() + 1);
	}
	void set_state(uint32_t j, uint32_t st)
	{
		dir(j)->state = st;
		detail::store_release(dir_gen(), *dir_gen() + 1);
	}
	uint64_t head(uint32_t j) { return *reinterpret_cast<uint64_t *>(consumer_page() + 64 * (j + 1)); }
	uint64_t tail(uint32_t j) { return *reinterpret_cast<uint64_t *>(lane(j)); }

	detail::Ring ring(uint32_t j)
	{
		detail::Ring r;
		r.tail = reinterpret_cast<uint64_t *>(lane(j));
		r.write_armed = reinterpret_cast<uint32_t *>(lane(j) + 64);
		r.data = lane(j) + page_;
		r.head = reinterpret_cast<uint64_t *>(consumer_page() + 64 * (j + 1));
		r.read_armed = reinterpret_cast<uint32_t *>(consumer_page());
		r.read_wake = reinterpret_cast<uint32_t *>(status() + 4);
		r.write_wake = &dir(j)->write_wake;
		r.write_need = reinterpret_cast<uint64_t *>(&dir(j)->write_need);
		r.state = state();
		r.capacity = lane_size_;
		r.max_message = lane_size_ / 4 - 8;
		return r;
	}
	Producer producer(uint32_t j)
	{
		QueueInfo info;
		info.capacity = lane_size_;
		info.max_message = lane_size_ / 4 - 8;
		auto p = detail::Access::make_producer(detail::plain_handle(ring(j)), info);
		if (!p)
			throw std::runtime_error("make_producer");
		return std::move(*p);
	}

private:
	uint32_t n_;
	uint64_t lane_size_;
	size_t page_ = 0, stride_ = 0, total_ = 0;
	std::byte *base_ = nullptr;
};

} // namespace shmq::test

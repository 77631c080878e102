// SPDX-License-Identifier: MIT
// A ring on plain shared memory laid out like the kernel's pages, with
// PROT_NONE guard pages around every region so that any read or write
// outside them kills the test with SIGSEGV.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <sys/mman.h>
#include <unistd.h>

#include "../../lib/internal.hpp"

namespace shmq::test {

// Offsets of the shared words inside their pages (not zero, to catch code
// that assumes a layout).
inline constexpr uint32_t kReadWakeOff = 64, kWriteWakeOff = 68, kWriteNeedOff = 72,
			  kStateOff = 80, kTailOff = 128, kWriteArmedOff = 256, kHeadOff = 192,
			  kReadArmedOff = 320;

class ShmRing {
public:
	explicit ShmRing(uint64_t capacity, uint64_t max_message = 0)
	{
		page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
		// guard status guard producer guard consumer guard data guard
		total_ = 8 * page_ + capacity;
		void *p = mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			       -1, 0);
		if (p == MAP_FAILED)
			throw std::runtime_error("mmap");
		base_ = static_cast<std::byte *>(p);
		for (size_t off : {size_t{0}, 2 * page_, 4 * page_, 6 * page_, 7 * page_ + capacity})
			guard(off);
		status_ = base_ + page_;
		producer_ = base_ + 3 * page_;
		consumer_ = base_ + 5 * page_;
		data_ = base_ + 7 * page_;
		ring.tail = reinterpret_cast<uint64_t *>(producer_ + kTailOff);
		ring.write_armed = reinterpret_cast<uint32_t *>(producer_ + kWriteArmedOff);
		ring.head = reinterpret_cast<uint64_t *>(consumer_ + kHeadOff);
		ring.read_armed = reinterpret_cast<uint32_t *>(consumer_ + kReadArmedOff);
		ring.read_wake = reinterpret_cast<uint32_t *>(status_ + kReadWakeOff);
		ring.write_wake = reinterpret_cast<uint32_t *>(status_ + kWriteWakeOff);
		ring.write_need = reinterpret_cast<uint64_t *>(status_ + kWriteNeedOff);
		ring.state = reinterpret_cast<uint32_t *>(status_ + kStateOff);
		ring.data = data_;
		ring.capacity = capacity;
		ring.max_message = max_message ? max_message : capacity / 4 - 8;
		*ring.state = SHMQ_STATE_PRODUCER | SHMQ_STATE_CONSUMER;
		info.capacity = capacity;
		info.max_message = ring.max_message;
		info.features = SHMQ_FEATURES_V2;
	}
	ShmRing(const ShmRing &) = delete;
	ShmRing &operator=(const ShmRing &) = delete;
	~ShmRing() { munmap(base_, total_); }

	void set_counters(uint64_t tail, uint64_t head)
	{
		*ring.tail = tail;
		*ring.head = head;
	}
	uint64_t tail() const { return detail::load_acquire(ring.tail); }
	uint64_t head() const { return detail::load_acquire(ring.head); }
	void set_header(uint64_t off, uint32_t len, uint32_t type)
	{
		detail::store_relaxed(detail::header_at(ring, off), detail::pack_header(len, type));
	}
	shmq_record header(uint64_t off) const
	{
		return detail::unpack_header(detail::load_relaxed(detail::header_at(ring, off)));
	}
	// What the kernel publishes for sleepers: non-zero @readers/@writers
	// set SHMQ_WAKE_SLEEPER on that side, @need is write_need.
	void set_waiters(uint32_t readers, uint32_t writers, uint64_t need)
	{
		*ring.read_wake = readers ? SHMQ_WAKE_SLEEPER : 0;
		*ring.write_wake = writers ? SHMQ_WAKE_SLEEPER : 0;
		*ring.write_need = need;
	}
	// Raw wake words (SHMQ_WAKE_* bits), e.g. for pollers.
	void set_wake(uint32_t read_wake, uint32_t write_wake, uint64_t need)
	{
		*ring.read_wake = read_wake;
		*ring.write_wake = write_wake;
		*ring.write_need = need;
	}
	uint32_t read_armed() const { return detail::load_acquire(ring.read_armed); }
	uint32_t write_armed() const { return detail::load_acquire(ring.write_armed); }

	// What the kernel's mmap protections give each role (docs/design.md):
	// any write the role must not make then faults.
	void protect_for(int role)
	{
		const bool prod = role == SHMQ_ROLE_PRODUCER;
		mprotect(status_, page_, PROT_READ);
		mprotect(prod ? consumer_ : producer_, page_, PROT_READ);
		if (!prod)
			mprotect(data_, ring.capacity, PROT_READ);
	}

	Producer producer(uint32_t spin = 0)
	{
		auto r = detail::Access::make_producer(detail::plain_handle(ring, spin), info);
		if (!r)
			throw std::runtime_error(r.error().message());
		return std::move(r).value();
	}
	Consumer consumer(uint32_t spin = 0)
	{
		auto r = detail::Access::make_consumer(detail::plain_handle(ring, spin), info);
		if (!r)
			throw std::runtime_error(r.error().message());
		return std::move(r).value();
	}

	detail::Ring ring;
	QueueInfo info;

private:
	void guard(size_t off) { mprotect(base_ + off, page_, PROT_NONE); }
	size_t page_ = 0, total_ = 0;
	std::byte *base_ = nullptr, *status_ = nullptr, *producer_ = nullptr, *consumer_ = nullptr,
		  *data_ = nullptr;
};

} // namespace shmq::test

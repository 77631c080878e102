// SPDX-License-Identifier: MIT
// A hand-written SPSC byte ring on plain shared memory (MAP_SHARED anonymous,
// inherited across fork), with three ways to wait:
//
//   ring-futex    futex(2) on the counter the waiter waits for
//   ring-eventfd  one eventfd per direction (read() to sleep, write() to wake)
//   ring-busy     busy polling (pause; sched_yield every 1024 polls so that a
//                 single CPU still makes progress)
//
// It is what an application would write by hand instead of using shmq: the
// same records (8-byte header, padding record at the wrap), the same cached
// counters, and the same wakeup suppression as libshmq: the waiter publishes
// a flag, full fence, re-checks; the waker publishes its counter, full fence,
// and makes the wake system call only when the flag is set *and* its store
// crossed the condition (the ring was empty before this publication; free
// space went from below to at least what the producer waits for). So the
// futex and eventfd rows differ from shmq only by how the sleep happens
// (futex/eventfd vs SHMQ_IOC_WAIT) and by what shmq does on top (the kernel
// evaluates the condition, validation of untrusted counters and headers).
#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>

#include <linux/futex.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.hpp"

namespace shmq_bench {

namespace {

enum class Wait { Futex, Eventfd, Busy };

constexpr uint32_t kRecMsg = 0x4d534731, kRecPad = 0x50414431;

// The control block, one page before the data; each side's words on their own
// cache lines.
struct Control {
	alignas(64) std::atomic<uint64_t> tail; // producer
	alignas(64) std::atomic<uint64_t> head; // consumer
	alignas(64) std::atomic<uint32_t> read_waiting;	 // consumer
	alignas(64) std::atomic<uint32_t> write_waiting; // producer
	std::atomic<uint64_t> write_need;		 // producer
};
static_assert(sizeof(Control) <= 4096);

// futex(2) on the low 32 bits of a 64-bit counter (little endian).
uint32_t *low_word(std::atomic<uint64_t> &a)
{
	static_assert(std::endian::native == std::endian::little);
	return reinterpret_cast<uint32_t *>(&a);
}
void futex_wait(std::atomic<uint64_t> &a, uint32_t expected)
{
	// Shared (not PRIVATE): the two processes map the same pages.
	if (::syscall(SYS_futex, low_word(a), FUTEX_WAIT, expected, nullptr, nullptr, 0) < 0 &&
	    errno != EAGAIN && errno != EINTR)
		fail_errno("futex wait");
}
void futex_wake(std::atomic<uint64_t> &a)
{
	if (::syscall(SYS_futex, low_word(a), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0) < 0)
		fail_errno("futex wake");
}
void efd_wait(int fd)
{
	uint64_t v;
	while (::read(fd, &v, sizeof v) < 0)
		if (errno != EINTR)
			fail_errno("eventfd read");
}
void efd_wake(int fd)
{
	const uint64_t one = 1;
	while (::write(fd, &one, sizeof one) < 0)
		if (errno != EINTR)
			fail_errno("eventfd write");
}

struct RingView {
	Control *c;
	std::byte *data;
	uint64_t cap;
	Wait wait;
	int efd_data;  // consumer sleeps here
	int efd_space; // producer sleeps here
	uint64_t mask() const { return cap - 1; }
	uint64_t *hdr(uint64_t off) const { return reinterpret_cast<uint64_t *>(data + off); }
};

uint64_t rec_size(uint64_t n) { return (8 + n + 7) & ~uint64_t{7}; }
uint64_t pack(uint32_t len, uint32_t type) { return uint64_t{type} << 32 | len; }

void busy_pause(unsigned &spins)
{
	if (++spins % 1024 == 0)
		::sched_yield();
	else
		cpu_relax();
}

class RingTx final : public Tx {
public:
	explicit RingTx(const RingView &v) : r_(v)
	{
		tail_ = published_ = r_.c->tail.load(std::memory_order_relaxed);
		cached_head_ = r_.c->head.load(std::memory_order_acquire);
	}
	~RingTx() override { publish(); }
	std::byte *begin(size_t n) override
	{
		const uint64_t rec = rec_size(n);
		const uint64_t off = tail_ & r_.mask();
		const uint64_t pad = rec > r_.cap - off ? r_.cap - off : 0;
		const uint64_t need = pad + rec;
		if (need > r_.cap)
			throw Failure("ring: message larger than the ring");
		unsigned spins = 0;
		while (r_.cap - (tail_ - cached_head_) < need) {
			cached_head_ = r_.c->head.load(std::memory_order_acquire);
			if (r_.cap - (tail_ - cached_head_) >= need)
				break;
			publish(); // never wait on records the consumer cannot see
			wait_space(need, spins);
		}
		if (pad)
			std::atomic_ref<uint64_t>(*r_.hdr(off)).store(
				pack(static_cast<uint32_t>(pad - 8), kRecPad), std::memory_order_relaxed);
		pos_ = tail_ + pad;
		return r_.data + (pos_ & r_.mask()) + 8;
	}
	void commit(size_t n, bool more) override
	{
		std::atomic_ref<uint64_t>(*r_.hdr(pos_ & r_.mask()))
			.store(pack(static_cast<uint32_t>(n), kRecMsg), std::memory_order_relaxed);
		tail_ = pos_ + rec_size(n);
		if (!more)
			publish();
	}

private:
	void publish()
	{
		if (tail_ == published_)
			return;
		const uint64_t old = published_;
		r_.c->tail.store(tail_, std::memory_order_release);
		published_ = tail_;
		if (r_.wait == Wait::Busy)
			return;
		std::atomic_thread_fence(std::memory_order_seq_cst);
		if (r_.c->read_waiting.load(std::memory_order_acquire) &&
		    r_.c->head.load(std::memory_order_acquire) == old) {
			if (r_.wait == Wait::Futex)
				futex_wake(r_.c->tail);
			else
				efd_wake(r_.efd_data);
		}
	}
	void wait_space(uint64_t need, unsigned &spins)
	{
		if (r_.wait == Wait::Busy) {
			busy_pause(spins);
			return;
		}
		r_.c->write_need.store(need, std::memory_order_relaxed);
		r_.c->write_waiting.store(1, std::memory_order_relaxed);
		std::atomic_thread_fence(std::memory_order_seq_cst);
		const uint64_t h = r_.c->head.load(std::memory_order_acquire);
		if (r_.cap - (tail_ - h) < need) {
			if (r_.wait == Wait::Futex)
				futex_wait(r_.c->head, static_cast<uint32_t>(h));
			else
				efd_wait(r_.efd_space);
		}
		r_.c->write_waiting.store(0, std::memory_order_relaxed);
	}
	RingView r_;
	uint64_t tail_ = 0, published_ = 0, cached_head_ = 0, pos_ = 0;
};

class RingRx final : public Rx {
public:
	explicit RingRx(const RingView &v) : r_(v)
	{
		head_ = r_.c->head.load(std::memory_order_relaxed);
		cached_tail_ = head_;
	}
	std::span<const std::byte> receive() override
	{
		unsigned spins = 0;
		for (;;) {
			if (cached_tail_ == head_) {
				cached_tail_ = r_.c->tail.load(std::memory_order_acquire);
				if (cached_tail_ == head_) {
					wait_data(spins);
					continue;
				}
			}
			const uint64_t avail = cached_tail_ - head_;
			uint64_t off = head_ & r_.mask();
			uint64_t word = std::atomic_ref<uint64_t>(*r_.hdr(off)).load(std::memory_order_relaxed);
			if (static_cast<uint32_t>(word >> 32) == kRecPad) {
				if ((word & 0xffffffff) != r_.cap - off - 8 || r_.cap - off > avail)
					throw Failure("ring: corrupt padding record");
				release_to(head_ + (r_.cap - off));
				continue;
			}
			const uint32_t len = static_cast<uint32_t>(word);
			if (static_cast<uint32_t>(word >> 32) != kRecMsg || rec_size(len) > avail ||
			    rec_size(len) > r_.cap - off)
				throw Failure("ring: corrupt record header");
			end_ = head_ + rec_size(len);
			return {r_.data + off + 8, len};
		}
	}
	void release() override { release_to(end_); }

private:
	void release_to(uint64_t new_head)
	{
		const uint64_t old = head_;
		r_.c->head.store(new_head, std::memory_order_release);
		head_ = new_head;
		if (r_.wait == Wait::Busy)
			return;
		std::atomic_thread_fence(std::memory_order_seq_cst);
		if (!r_.c->write_waiting.load(std::memory_order_acquire))
			return;
		const uint64_t need = r_.c->write_need.load(std::memory_order_relaxed);
		const uint64_t tail = r_.c->tail.load(std::memory_order_acquire);
		const uint64_t free_old = r_.cap - (tail - old), free_new = r_.cap - (tail - new_head);
		if (free_old < need && free_new >= need) {
			if (r_.wait == Wait::Futex)
				futex_wake(r_.c->head);
			else
				efd_wake(r_.efd_space);
		}
	}
	void wait_data(unsigned &spins)
	{
		if (r_.wait == Wait::Busy) {
			busy_pause(spins);
			return;
		}
		r_.c->read_waiting.store(1, std::memory_order_relaxed);
		std::atomic_thread_fence(std::memory_order_seq_cst);
		if (r_.c->tail.load(std::memory_order_acquire) == head_) {
			if (r_.wait == Wait::Futex)
				futex_wait(r_.c->tail, static_cast<uint32_t>(head_));
			else
				efd_wait(r_.efd_data);
		}
		r_.c->read_waiting.store(0, std::memory_order_relaxed);
	}
	RingView r_;
	uint64_t head_ = 0, cached_tail_ = 0, end_ = 0;
};

class RingChannel final : public Channel {
public:
	RingChannel(Wait w, const ChannelConfig &cfg)
	{
		uint64_t cap = std::bit_ceil(std::max<uint64_t>(cfg.capacity, 4096));
		len_ = 4096 + cap;
		void *p = ::mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			fail_errno("mmap ring");
		base_ = p;
		v_.c = new (p) Control{};
		v_.data = static_cast<std::byte *>(p) + 4096;
		v_.cap = cap;
		v_.wait = w;
		v_.efd_data = v_.efd_space = -1;
		if (w == Wait::Eventfd) {
			v_.efd_data = ::eventfd(0, EFD_CLOEXEC);
			v_.efd_space = ::eventfd(0, EFD_CLOEXEC);
			if (v_.efd_data < 0 || v_.efd_space < 0)
				fail_errno("eventfd");
		}
		buffer = cap;
		if (rec_size(cfg.msg_size) > cap / 2)
			throw Skip("message larger than half the ring");
	}
	~RingChannel() override
	{
		if (v_.efd_data >= 0)
			::close(v_.efd_data);
		if (v_.efd_space >= 0)
			::close(v_.efd_space);
		::munmap(base_, len_);
	}
	std::unique_ptr<Tx> open_tx() override { return std::make_unique<RingTx>(v_); }
	std::unique_ptr<Rx> open_rx() override { return std::make_unique<RingRx>(v_); }

private:
	void *base_ = nullptr;
	size_t len_ = 0;
	RingView v_{};
};

template <Wait W> class RingMechanism final : public Mechanism {
public:
	RingMechanism(const char *n, const char *d) : name_(n), desc_(d) {}
	const char *name() const override { return name_; }
	const char *describe() const override { return desc_; }
	std::unique_ptr<Channel> make_channel(const ChannelConfig &cfg) override
	{
		return std::make_unique<RingChannel>(W, cfg);
	}

private:
	const char *name_, *desc_;
};

const Registration reg_futex(200, "ring-futex", [] {
	return std::unique_ptr<Mechanism>(new RingMechanism<Wait::Futex>(
		"ring-futex", "hand-written SPSC shared-memory ring, zero-copy, futex wakeups "
			      "with shmq's waiter flags and full fences"));
});
const Registration reg_efd(210, "ring-eventfd", [] {
	return std::unique_ptr<Mechanism>(new RingMechanism<Wait::Eventfd>(
		"ring-eventfd", "the same ring, eventfd wakeups"));
});
const Registration reg_busy(220, "ring-busy", [] {
	return std::unique_ptr<Mechanism>(new RingMechanism<Wait::Busy>(
		"ring-busy", "the same ring, busy polling (never sleeps)"));
});

} // namespace

} // namespace shmq_bench

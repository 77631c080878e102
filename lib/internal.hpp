// SPDX-License-Identifier: MIT
// libshmq internals shared by the library sources and the native tests.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <shmq/shmq.hpp>

#include <shmq/ring.hpp>

namespace shmq::detail {

// One mmap()ed region; unmapped on destruction.
struct Mapping {
	void *addr = nullptr;
	size_t len = 0;

	Mapping() = default;
	Mapping(void *a, size_t l) : addr(a), len(l) {}
	Mapping(Mapping &&o) noexcept : addr(std::exchange(o.addr, nullptr)), len(o.len) {}
	Mapping &operator=(Mapping &&o) noexcept;
	Mapping(const Mapping &) = delete;
	Mapping &operator=(const Mapping &) = delete;
	~Mapping();
	void reset();
	// After fork(): the region is not in this process (MADV_DONTFORK), so
	// it must never be unmapped here: the address may be reused already.
	void forget() { addr = nullptr, len = 0; }
};

// The Consumer's errors shared by lib/consumer.cpp and lib/lanes.cpp.
inline constexpr unexpected<Error> kClosed(std::in_place, EBADF, "the consumer is not open");
inline constexpr unexpected<Error> kForked(std::in_place, EBADF,
					   "this Consumer was opened by the parent process before "
					   "fork(): a child must open the queue itself");
inline constexpr unexpected<Error> kEmpty(std::in_place, EAGAIN, "the queue is empty");
inline constexpr unexpected<Error> kNothingPeeked(std::in_place, EINVAL,
						  "release: no message was peeked");
inline constexpr unexpected<Error> kNoRoom(std::in_place, EINVAL,
					   "peek_many: the span for the messages is empty (pass at "
					   "least one Message)");
// A consumer's failed wait (SHMQ_IOC_WAIT's errno) as an Error; @lanes: of a
// lane queue (several producers).
[[nodiscard]] unexpected<Error> consumer_wait_error(int e, bool lanes);

// One lane of a lane queue as its consumer sees it (lib/lanes.cpp).
struct LaneSlot {
	Ring ring;		  // the lane for the ring core: its tail and data
				  // (read-only), our head[j], the shared words
	uint64_t head = 0;	  // our position (published on release)
	uint64_t cached_tail = 0; // last tail read
	uint64_t peeked_end = 0;  // head after releasing what is peeked; head: none
	uint32_t generation = 0;  // the holder we know; 0: not in the scan
	uint32_t state = SHMQ_LANE_FREE; // as the kernel last told us
	uint32_t peek_gen = 0;	  // generation when the outstanding peek was made
	bool corrupt = false;	  // records inconsistent: skipped until dropped
	bool drop_failed = false; // the library's own drop of it was refused
	bool ended = false;	  // the end was reported (draining and empty)
	Sender sender;
};

// A list of lane indices with room for every lane, allocated once: adding
// to it on the receive path is a store, never an allocation.
class LaneList {
public:
	void reserve(size_t n) { v_.resize(n); }
	void push_back(uint32_t j) noexcept { v_[n_++] = j; }
	void clear() noexcept { n_ = 0; }
	[[nodiscard]] bool empty() const noexcept { return n_ == 0; }
	[[nodiscard]] const uint32_t *begin() const noexcept { return v_.data(); }
	[[nodiscard]] const uint32_t *end() const noexcept { return v_.data() + n_; }
	// Removes @j if it is there.
	void remove(uint32_t j) noexcept
	{
		for (size_t k = 0; k < n_; k++)
			if (v_[k] == j) {
				v_[k] = v_[--n_];
				return;
			}
	}

private:
	std::vector<uint32_t> v_;
	size_t n_ = 0;
};

// A lane queue as its consumer sees it: the lanes, the scan's state, the
// pending lane events. The directory in the status page is only a hint
// that something changed (its dir_gen); what changed is asked from the
// kernel (SHMQ_IOC_LANE_INFO), which answers under its lock.
struct LaneSet {
	const uint32_t *dir_gen = nullptr; // status page, kernel-written
	const std::byte *dir = nullptr;	   // struct shmq_lane_dir of lane 0
	uint32_t dir_stride = 0;
	uint32_t seen_gen = 0; // dir_gen when the lanes were last brought up to date
	bool synced = false;
	std::vector<LaneSlot> lanes;   // max_producers
	std::vector<uint32_t> active;  // lanes in the scan, ascending
	uint32_t next = 0;	       // the scan starts at the first active lane >= next
	LaneList touched;	       // lanes with a peek outstanding
	// Pending events: a ring of events_cap entries, allocated at open (no
	// allocation on the receive path), oldest at ev_first.
	std::vector<LaneEvent> events;
	size_t events_cap = 16, ev_first = 0, ev_count = 0;
	uint64_t events_lost = 0;
	uint32_t pending_next = 0;     // next, once what is peeked is released
	uint32_t *read_armed = nullptr; // our consumer page
	bool armed = false;
	uint64_t lane_info_calls = 0; // SHMQ_IOC_LANE_INFO calls (observed by tests)
};

// Where a lane queue's shared words are (from SHMQ_IOC_LAYOUT2).
struct LaneGeometry {
	uint32_t max_producers = 0;
	uint64_t lane_stride = 0;
	uint32_t tail_off = 0, write_armed_off = 0, data_off = 0; // in a lane
	uint32_t head_off = 0, head_stride = 0;			  // consumer page
	uint32_t dir_gen_off = 0, dir_off = 0, dir_stride = 0;	  // status page
};

// Everything an open Producer or Consumer owns besides its positions.
//
// Every handle of the process is in a registry (common.cpp) so that a
// pthread_atfork child handler can disarm the ones a forked child inherits:
// their mappings are not in the child (MADV_DONTFORK), their queue fd is
// closed there, and the Producer or Consumer owning them fails every call
// with EBADF. A child therefore never holds the queue's attachment, and
// never writes a second, independent position into the shared counters.
struct QueueHandle {
	int fd = -1; // queue fd (-1 for rings on plain memory, as in the tests)
	Mapping status, producer, consumer, data;
	Ring ring;
	// A lane queue's consumer: the lanes (mapped in `data`, all of them).
	std::unique_ptr<LaneSet> lanes;
	uint32_t spin = 0;
	bool ignore_hangup = false;
	uint64_t wake_calls = 0; // SHMQ_IOC_WAKE attempts (observed by tests)
	bool armed = false;	 // the producer's write_armed word is set (detail::arm)
	// interrupt() was called and no wait has returned ECANCELED since
	// (the kernel keeps its own mark; this one serves rings on plain memory).
	mutable std::atomic<bool> interrupt_requested{false};
	// Set in a forked child for every handle it inherited; never cleared.
	// Written only by the child handler, before the child runs anything
	// else, so it is read without a lock (the C API must not take its
	// descriptor's mutex in a child: another thread may have held it).
	bool forked = false;
	// The object this handle belongs to (at most one is set), kept current
	// by every move under the registry lock (Access::set_owner), so that
	// the child handler can reach the fast-path fields there.
	Producer *owner_producer = nullptr;
	Consumer *owner_consumer = nullptr;
	QueueHandle *reg_prev = nullptr, *reg_next = nullptr; // the registry

	QueueHandle(); // registers
	QueueHandle(const QueueHandle &) = delete;
	QueueHandle &operator=(const QueueHandle &) = delete;
	~QueueHandle(); // unregisters

	// SHMQ_IOC_WAKE; errno is preserved.
	void wake();
	// SHMQ_IOC_INTERRUPT: the wait in progress or the next returns
	// ECANCELED. Callable from any thread; errno is preserved.
	void interrupt();
	// SHMQ_IOC_WAIT. Returns 0 or an errno value (EINTR already retried).
	[[nodiscard]] int wait(uint32_t cond, uint64_t min_bytes, uint64_t deadline_ns) const;
	// For try_* calls that found the ring full/empty: a precise answer
	// (EAGAIN, EPIPE, EIDRM, or 0 when the condition now holds), asking the
	// kernel only when the state word says the peer is missing or the queue
	// was destroyed. @peer_bit is the other role's SHMQ_STATE_* bit.
	[[nodiscard]] int probe(uint32_t cond, uint64_t min_bytes, uint32_t peer_bit) const;
	// SHMQ_IOC_WAIT(READABLE) of a lane queue's consumer: also returns 0
	// at once when dir_gen differs from @seen_gen (SHMQ_WAIT_DIR_GEN).
	[[nodiscard]] int wait_lanes(uint32_t seen_gen, uint64_t deadline_ns) const;
	// SHMQ_IOC_WAIT with @a, EINTR retried (the deadline is absolute).
	[[nodiscard]] int wait_ioctl(const struct shmq_wait_args &a) const;
	// SHMQ_IOC_WAKE for the producer of @lane only (lane queues).
	void wake_lane(uint32_t lane);
};

// Whether this library can use a queue whose SHMQ_IOC_LAYOUT answer is @l
// for @role: every feature bit it needs is offered (unknown bits are
// ignored) and the layout is one it understands. EPROTO otherwise, with a
// message naming the missing feature and the shmq.ko version that has it.
[[nodiscard]] Result<void> check_module(const struct shmq_layout &l, int role);

// Maps a queue device and builds a handle: used by Producer/Consumer::open.
[[nodiscard]] Result<std::unique_ptr<QueueHandle>> open_queue(std::string_view name,
							     const OpenOptions &opt, int role,
							     QueueInfo &info);

struct Access {
	// Takes ownership of @h (its ring must satisfy ring_geometry_ok) and
	// attaches at the positions found in shared memory. EBADMSG when those
	// counters are inconsistent.
	[[nodiscard]] static Result<Producer> make_producer(std::unique_ptr<QueueHandle> h,
							    const QueueInfo &info);
	[[nodiscard]] static Result<Consumer> make_consumer(std::unique_ptr<QueueHandle> h,
							    const QueueInfo &info);
	// The same for a lane queue (h->lanes set).
	[[nodiscard]] static Result<Consumer> make_lane_consumer(std::unique_ptr<QueueHandle> h,
								 const QueueInfo &info);
	[[nodiscard]] static QueueHandle *handle(const Producer &p) { return p.h_; }
	[[nodiscard]] static QueueHandle *handle(const Consumer &c) { return c.h_; }
	// Records @p (or @c, or neither: nullptr) as the owner of @h.
	static void set_owner(QueueHandle *h, Producer *p, Consumer *c) noexcept;
	// The same, with a ForkLock held.
	static void set_owner_locked(QueueHandle *h, Producer *p, Consumer *c) noexcept;
	// In a forked child: makes the fast paths of the owner of @h fall
	// through to the slow paths (which answer EBADF) and detaches an
	// outstanding reservation. Only writes this process's memory.
	static void disarm_after_fork(QueueHandle &h) noexcept;
};

// Holds the registry of handles (the lock fork()'s prepare handler takes)
// for its scope: while it is held no fork can copy a half-done state, such
// as a queue fd not yet in a handle, a mapping not yet MADV_DONTFORK, or an
// object moved but not yet re-owned. Not recursive; QueueHandle's
// constructor and destructor take it themselves.
class ForkLock {
public:
	ForkLock() noexcept;
	~ForkLock();
	ForkLock(const ForkLock &) = delete;
	ForkLock &operator=(const ForkLock &) = delete;
};

// A lane queue's consumer handle over plain memory (tests): @status holds
// the state word, read_wake, dir_gen and the directory at the kernel's
// offsets (docs/abi.md), @consumer the consumer page, @lanes the lanes,
// @stride bytes apart, each a producer page and then @lane_size bytes.
struct PlainLanes {
	std::byte *status = nullptr, *consumer = nullptr, *lanes = nullptr;
	uint32_t max_producers = 0;
	uint64_t lane_size = 0, stride = 0;
};
[[nodiscard]] Result<Consumer> plain_lane_consumer(const PlainLanes &m, uint32_t spin = 0);

// The lanes of a consumer over mapped (or, in tests, plain) memory; @shared
// has the words every lane shares (state, read_wake, read_armed) and the
// geometry (capacity, max_message).
[[nodiscard]] std::unique_ptr<LaneSet> make_lane_set(const Ring &shared, std::byte *status,
						     std::byte *consumer, std::byte *lanes,
						     const LaneGeometry &g);
// Brings the lanes up to date with the directory if dir_gen moved.
void sync_lanes_for(const QueueHandle &h, LaneSet &s);

// Rings on plain memory (tests): a handle with no fd and unowned pointers.
[[nodiscard]] std::unique_ptr<QueueHandle> plain_handle(const Ring &ring, uint32_t spin = 0);

inline void cpu_relax()
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	asm volatile("yield" ::: "memory");
#endif
}

} // namespace shmq::detail

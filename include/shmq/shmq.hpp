// SPDX-License-Identifier: MIT
// libshmq: C++20 API over the shmq kernel module (docs/design.md; man libshmq(3)).
//
// Fast path: send/receive/reserve/commit/peek/release touch only shared
// memory; the library enters the kernel only to sleep (ring empty or full)
// or to wake a peer that the kernel has marked as waiting.
//
// Errors are values, never exceptions: every fallible call returns
// Result<T> = expected<T, Error> (std::expected's interface), which holds
// either a T or an Error (an errno plus a sentence saying what went wrong
// and what to do).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <shmq/expected.hpp>
#include <shmq/export.hpp>
#include <shmq/ring.hpp>

namespace shmq {

// An errno value with a human-readable explanation.
class SHMQ_API Error {
public:
	constexpr Error() noexcept = default;
	constexpr Error(int code, const char *what) noexcept : code_(code), what_(what) {}
	// An error about one lane of a lane queue (EBADMSG: its records are
	// corrupt), which the consumer can drop (Consumer::drop_lane).
	constexpr Error(int code, const char *what, uint32_t lane) noexcept
		: code_(code), lane_(static_cast<int32_t>(lane)), what_(what)
	{
	}
	[[nodiscard]] constexpr int code() const noexcept { return code_; }
	// Static string: explains the failure and, where possible, the fix.
	[[nodiscard]] constexpr const char *what() const noexcept { return what_; }
	// The lane the error is about, or -1.
	[[nodiscard]] constexpr int32_t lane() const noexcept { return lane_; }
	// "what (strerror(code))", and " [lane N]" for an error about a lane.
	[[nodiscard]] std::string message() const;
	// Same errno, same lane and same sentence.
	[[nodiscard]] friend constexpr bool operator==(const Error &a, const Error &b)
	{
		return a.code_ == b.code_ && a.lane_ == b.lane_ &&
		       std::string_view(a.what_) == std::string_view(b.what_);
	}

private:
	int code_ = 0;
	int32_t lane_ = -1;
	const char *what_ = "";
};

// Either a T or an Error: shmq::expected (<shmq/expected.hpp>), which has
// the names and semantics of C++23's std::expected. Test with has_value()
// or operator bool; error() and operator* do not check, value() throws
// bad_expected_access<Error> on an error.
template <class T> using Result = expected<T, Error>;

// How long a blocking call may wait. Converted once to an absolute
// CLOCK_MONOTONIC deadline, so restarts after signals do not extend it.
class Timeout {
public:
	static constexpr Timeout infinite() noexcept { return Timeout(UINT64_MAX); }
	static constexpr Timeout none() noexcept { return Timeout(0); } // do not wait
	// From now. Any duration works: one too long for a 64-bit nanosecond
	// deadline (seconds::max(), hours::max(), duration<double>(1e300), ...)
	// is infinite(); zero, negative, NaN and less than a nanosecond are
	// none(). Rounds towards zero, like duration_cast.
	template <class Rep, class Period>
	static Timeout after(std::chrono::duration<Rep, Period> d) noexcept;
	// Absolute CLOCK_MONOTONIC nanoseconds (UINT64_MAX = forever).
	static constexpr Timeout at_ns(uint64_t deadline) noexcept { return Timeout(deadline); }
	[[nodiscard]] constexpr uint64_t deadline_ns() const noexcept { return deadline_ns_; }

private:
	constexpr explicit Timeout(uint64_t d) noexcept : deadline_ns_(d) {}
	uint64_t deadline_ns_;
};

SHMQ_API uint64_t monotonic_now_ns() noexcept;

namespace detail {

// __extension__: no -pedantic warning in the programs that include this.
__extension__ typedef unsigned __int128 u128;

constexpr u128 gcd128(u128 a, u128 b) noexcept
{
	while (b) {
		const u128 t = a % b;
		a = b;
		b = t;
	}
	return a;
}

// @count ticks of @Period in nanoseconds, rounded towards zero: 0 for
// anything not positive (NaN included), UINT64_MAX for anything that does
// not fit. duration_cast cannot be used: it multiplies in the duration's
// own representation (hours::max() in nanoseconds needs ~2^101) and
// std::ratio_divide<Period, std::nano> itself overflows for coarse periods.
template <class Rep, class Period> constexpr uint64_t saturated_ns(Rep count) noexcept
{
	static_assert(Period::num > 0 && Period::den > 0, "Timeout::after: a negative period?");
	if constexpr (std::is_integral_v<Rep> && sizeof(Rep) <= sizeof(uint64_t)) {
		if (count <= 0)
			return 0;
		// ns = count * num * 10^9 / den, with the fraction reduced first so
		// that num * (10^9 / g) < 2^63 * 2^30 fits 128 bits; the product
		// with count (< 2^64) is checked.
		constexpr u128 g = gcd128(static_cast<u128>(Period::den), 1000000000u);
		constexpr u128 mult = static_cast<u128>(Period::num) * (1000000000u / g);
		constexpr u128 div = static_cast<u128>(Period::den) / g;
		u128 prod;
		if (__builtin_mul_overflow(static_cast<u128>(count), mult, &prod))
			return UINT64_MAX;
		const u128 ns = prod / div;
		return ns >= UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(ns);
	} else {
		// Floating point (or another arithmetic Rep): long double has a
		// 64-bit mantissa and a range far beyond any duration.
		const long double ns = static_cast<long double>(count) *
				       static_cast<long double>(Period::num) * 1e9L /
				       static_cast<long double>(Period::den);
		if (!(ns >= 1.0L)) // NaN, negative, zero, below a nanosecond
			return 0;
		if (ns >= 18446744073709551615.0L) // 2^64, exactly representable
			return UINT64_MAX;
		return static_cast<uint64_t>(ns);
	}
}

} // namespace detail

template <class Rep, class Period>
Timeout Timeout::after(std::chrono::duration<Rep, Period> d) noexcept
{
	const uint64_t ns = detail::saturated_ns<Rep, Period>(d.count());
	if (ns == 0)
		return none();
	if (ns == UINT64_MAX)
		return infinite();
	const uint64_t now = monotonic_now_ns();
	uint64_t dl;
	if (__builtin_add_overflow(now, ns, &dl) || dl == UINT64_MAX)
		return infinite();
	return Timeout(dl);
}

struct OpenOptions {
	// Directory holding the queue device nodes.
	std::string dev_dir = "/dev/shmq";
	// Busy-poll iterations before sleeping in the kernel (0 = sleep at once).
	uint32_t spin = 0;
	// Keep waiting for a new peer instead of failing with EPIPE when the
	// peer that was attached has gone.
	bool ignore_hangup = false;
};

// Ring geometry as reported by the kernel.
struct QueueInfo {
	uint64_t capacity = 0;	  // data bytes (of each lane, on a lane queue)
	uint64_t max_message = 0; // largest payload one message can carry
	uint64_t features = 0;	  // SHMQ_FEAT_* bits
	uint32_t max_producers = 1; // lanes (1: a queue made by SHMQ_IOC_CREATE)
	bool lanes = false;	  // a lane queue (SHMQ_QUEUE_LANES)
	uint32_t lane = 0;	  // a producer's own lane
};

// Who sent a message on a lane queue, proven by the kernel: the effective
// uid and gid and the process of the producer when it opened the queue,
// translated into this process's user and pid namespaces at the time the
// consumer first saw the producer. A producer cannot change any of it.
struct Sender {
	uint32_t uid = UINT32_MAX; // (uid_t)-1: not mapped in our user namespace
	uint32_t gid = UINT32_MAX; // (gid_t)-1: not mapped
	int32_t pid = 0;	   // 0: not visible in our pid namespace, or had
				   // exited before the consumer saw it (or not
				   // a lane queue)
	[[nodiscard]] friend constexpr bool operator==(const Sender &, const Sender &) = default;
};

// What happened to a producer's lane, from Consumer::events().
struct LaneEvent {
	enum class Kind : uint32_t {
		attached = 1, // a producer opened the queue and got this lane
		ended = 2,    // its producer has gone and every message it
			      // committed has been delivered: the lane is over
		corrupt = 3,  // its records are inconsistent (receive said EBADMSG)
		dropped = 4,  // the consumer (or the library, see drop_lane) dropped it
	};
	Kind kind = Kind::attached;
	uint32_t lane = 0;
	uint32_t generation = 0; // the lane's holder: new at every attach
	Sender sender;
};

// Creating a queue (create_queue): what shmqctl create takes.
struct CreateOptions {
	// Bytes of the ring (of each lane, on a lane queue): a power of two
	// of at least 4096 and of the page size.
	uint64_t capacity = 65536;
	// 0: a queue of one producer and one consumer (SHMQ_IOC_CREATE; a
	// second producer gets EBUSY). 1 to the module's max_producers
	// parameter (at most 1024): a lane queue (SHMQ_IOC_CREATE2) that many
	// producers may send to at once, each into its own lane.
	uint32_t max_producers = 0;
	std::string control = "/dev/shmq-control";
};

namespace detail {
struct Mapping; // one mmap()ed region
struct QueueHandle;
struct LaneSet; // a lane queue as its consumer sees it
struct Access; // libshmq internals: builds Producer/Consumer from a handle
} // namespace detail

class Producer;

// A zero-copy write slot obtained from Producer::reserve(): fill data(),
// then hand it to Producer::commit(std::move(r)). Move-only; dropping one
// that was not committed aborts it, so an early return between reserve and
// commit never leaves the producer stuck with EBUSY.
//
// A reservation and its Producer know each other: moving either keeps the
// link. Closing (or destroying) the Producer detaches the reservation:
// valid() becomes false, data() empty, and its destructor does nothing. As
// with an iterator into a container, a pointer or span taken from data()
// must not be used after the Producer is closed.
class SHMQ_API Reservation {
	// Only a Producer can make one (the key's constructor is private), yet
	// the constructor is public so that Result<Reservation> can build it in
	// place: the common case of reserve() moves nothing.
	class Key {
		friend class Producer;
		constexpr Key() noexcept = default;
	};

public:
	Reservation() noexcept = default;
	inline Reservation(Reservation &&o) noexcept;
	inline Reservation &operator=(Reservation &&o) noexcept;
	Reservation(const Reservation &) = delete;
	Reservation &operator=(const Reservation &) = delete;
	inline ~Reservation();

	[[nodiscard]] std::span<std::byte> data() const noexcept { return {ptr_, len_}; }
	[[nodiscard]] size_t size() const noexcept { return len_; }
	// Outstanding: neither committed, aborted, moved from, nor detached.
	[[nodiscard]] bool valid() const noexcept { return owner_ != nullptr; }

	// For Producer (see Key): links the new reservation into @owner.
	inline Reservation(Key, Producer *owner, std::byte *ptr, size_t len, uint64_t pos) noexcept;

private:
	friend class Producer;
	friend struct detail::Access;
	void clear() noexcept
	{
		owner_ = nullptr;
		ptr_ = nullptr;
		len_ = 0;
	}
	Producer *owner_ = nullptr; // the Producer whose outstanding reservation this is
	std::byte *ptr_ = nullptr;
	size_t len_ = 0;
	uint64_t pos_ = 0; // free-running position of the record header
};

// A zero-copy view of a message obtained from Consumer::peek(). Valid until
// release() (the memory is the producer's ring, mapped read-only).
class Message {
public:
	Message() = default;
	[[nodiscard]] std::span<const std::byte> data() const noexcept { return {ptr_, len_}; }
	[[nodiscard]] size_t size() const noexcept { return len_; }
	// The free-running byte position of the message's record (the value
	// the queue's counters had at its header): it identifies the message
	// for as long as the queue lives. A message delivered again after a
	// consumer died between peek and release has the same position, so an
	// at-least-once consumer that stores the position of the last message
	// it processed can skip redeliveries. Later messages have larger
	// positions (modulo 2^64: compare as `int64_t(a - b) > 0`).
	// On a lane queue positions are per lane: (lane(), generation(),
	// position()) identifies a message.
	[[nodiscard]] uint64_t position() const noexcept { return pos_; }
	// The lane it came from (0 on a queue without lanes) and the lane's
	// generation (0 there).
	[[nodiscard]] uint32_t lane() const noexcept { return lane_; }
	[[nodiscard]] uint32_t generation() const noexcept { return gen_; }
	// Who sent it (lane queues; the unknown Sender{} otherwise).
	[[nodiscard]] const Sender &sender() const noexcept { return sender_; }

private:
	friend class Consumer;
	const std::byte *ptr_ = nullptr;
	size_t len_ = 0;
	uint64_t pos_ = 0;
	uint32_t lane_ = 0;
	uint32_t gen_ = 0;
	Sender sender_;
};

// The sending side of a queue (opened O_WRONLY: needs write permission on
// /dev/shmq/NAME). Movable, not copyable; closing detaches.
// Not thread-safe: one thread at a time per Producer.
//
// fork(): a child does not inherit the queue. Its copy of a Producer (or
// Consumer) opened by the parent fails every call with EBADF ("opened by the
// parent process before fork()"), flushes nothing and unmaps nothing when
// destroyed, and holds neither the queue fd (closed in the child) nor the
// memory (mapped MADV_DONTFORK): the parent's death is seen by the peer at
// once, whatever the child does. A child that needs the queue opens it.
//
// send/try_send, reserve/try_reserve, commit/commit_deferred and flush are
// inline: when the record ends at or before the write end (write_end_:
// room by the last head the slow path read, capped at the ring's end) they
// are a straight line of loads and stores with no call into the library;
// anything else (a PAD at the ring end, the first record of a lap, a full
// ring by that head, waiting, errors) goes to the library's slow paths,
// which give the precise answer.
class SHMQ_API Producer {
public:
	[[nodiscard]] static Result<Producer> open(std::string_view name,
						   const OpenOptions &opt = {});
	Producer() = default;
	Producer(Producer &&) noexcept;
	Producer &operator=(Producer &&) noexcept;
	Producer(const Producer &) = delete;
	Producer &operator=(const Producer &) = delete;
	~Producer();

	// Copy @msg into the ring and publish it. try_send fails with EAGAIN
	// when the ring is full; send waits until @timeout (ETIMEDOUT).
	// EMSGSIZE: larger than max_message. EPIPE: the consumer has gone and
	// the ring is full. EBADMSG: the consumer corrupted the shared counters.
	[[nodiscard]] inline Result<void> try_send(std::span<const std::byte> msg) noexcept;
	[[nodiscard]] inline Result<void> send(std::span<const std::byte> msg,
					Timeout timeout = Timeout::infinite()) noexcept;

	// Zero-copy: reserve @size bytes, fill data(), then commit. One
	// reservation may be outstanding at a time (EBUSY otherwise); dropping
	// it uncommitted aborts it.
	[[nodiscard]] inline Result<Reservation> try_reserve(size_t size) noexcept;
	[[nodiscard]] inline Result<Reservation> reserve(size_t size,
						  Timeout timeout = Timeout::infinite()) noexcept;
	// Commit the first @used bytes (default: all) of @r and publish, waking
	// the consumer if it sleeps; @r is consumed (no longer valid()).
	// EINVAL: @r is not this producer's outstanding reservation, or used >
	// size (then @r stays outstanding). EBADF: the producer is closed.
	[[nodiscard]] inline Result<void> commit(Reservation &&r, size_t used = SIZE_MAX) noexcept;
	// Commit without publishing: the consumer sees nothing until flush()
	// (or until a reserve or send finds the ring full: before answering
	// EAGAIN or sleeping they publish). Use to batch several messages
	// behind one wake-up.
	[[nodiscard]] inline Result<void> commit_deferred(Reservation &&r,
						   size_t used = SIZE_MAX) noexcept;
	// Drop @r if it is this producer's outstanding reservation (as its
	// destructor would); anything else is left alone.
	inline void abort(Reservation &&r) noexcept;
	// Publish everything committed so far and wake the consumer if needed.
	inline void flush() noexcept;

	// The queue fd: poll/epoll reports EPOLLOUT when half the ring is
	// free, EPOLLHUP when the consumer has gone, EPOLLERR when destroyed.
	// Edge-triggered epoll: write until try_send/try_reserve says EAGAIN
	// (which arms the fd, docs/design.md "Pollers"), then wait.
	[[nodiscard]] int fd() const noexcept;
	// Makes the blocking call (send, reserve) sleeping in another thread,
	// or the next one that would sleep, fail with ECANCELED. The one call
	// that may run concurrently with the others. The object must outlive
	// it: interrupt() racing with close(), a move or the destructor is a
	// use-after-free (own the Producer outside the worker thread, interrupt,
	// join the worker, then destroy it).
	void interrupt() noexcept;
	[[nodiscard]] const QueueInfo &info() const noexcept { return info_; }
	// Open, and usable in this process (not inherited across fork()).
	[[nodiscard]] bool is_open() const noexcept { return limit_ != 0; }
	void close() noexcept;

private:
	friend struct detail::Access;
	friend class Reservation;

	// The body of the moves: takes o's state, runs under detail::ForkLock.
	void take(Producer &o) noexcept;

	// Fast-path test: usable, nothing outstanding, and room for a record
	// of @size bytes below write_end_ (no PAD, no shared load). The head
	// behind write_end_ was validated (tail - head <= capacity) by the
	// slow path, which reloads it whenever the room runs out. @off: data
	// offset of the record header, which is at tail_.
	[[nodiscard]] bool fits(size_t size, uint64_t &off) const noexcept
	{
		if (res_ || size >= limit_) [[unlikely]] // limit_ 0: not usable
			return false;
		off = tail_ & mask_;
		// write_end_ - tail_ <= capacity - off (see write_end_), and
		// record_size(size) cannot wrap: size < limit_ <= 2^32.
		return detail::record_size(size) <= write_end_ - tail_;
	}
	// A reservation that ends uncommitted (abort, destruction, assignment
	// over it) unlinks here. The write end goes back to tail_: it was
	// computed for that reservation's lap, which is the next one when the
	// reservation needed a PAD, while tail_ stayed before the ring's end;
	// left as it was, fits() would let a record cross the ring's end.
	void unlink_aborted(uint64_t pos) noexcept
	{
		res_ = nullptr;
		if (pos != tail_) // needed a PAD: write_end_ is in the next lap
			write_end_ = tail_;
	}
	// Publishes tail_ (ring.hpp publish(): release store, fence, waiter
	// check) and wakes the consumer when the kernel marked it waiting.
	void publish_tail() noexcept
	{
		const uint64_t old = published_;
		published_ = tail_;
		if (detail::publish(ring_, old, tail_)) [[unlikely]]
			wake_consumer();
	}
	// Out of line, exported: everything the fast paths do not handle.
	[[nodiscard]] Result<Reservation> reserve_slow(size_t size, Timeout timeout,
						       bool wait) noexcept;
	[[nodiscard]] Result<void> commit_slow(Reservation &r, size_t used, bool publish) noexcept;
	[[nodiscard]] Result<void> send_slow(std::span<const std::byte> msg, Timeout timeout,
					     bool wait) noexcept;
	void wake_consumer() noexcept;

	// The ring as the fast paths see it: a copy of the handle's pointers
	// and geometry, all zero when closed.
	detail::Ring ring_;
	uint64_t mask_ = 0;	     // ring_.capacity - 1
	// max_message + 1 while usable, 0 when closed (or in a forked child):
	// the size check of fits() is then also the "open" check.
	uint64_t limit_ = 0;
	// The outstanding reservation (its owner_ is this). Closing detaches
	// it, so commit's r.owner_ == this also means "open".
	Reservation *res_ = nullptr;
	uint64_t tail_ = 0;	     // local committed position
	// How far the inline paths may write without looking at the shared
	// head: free by the last head read (and validated) by the slow path,
	// and never past the ring's end, so fits() needs one comparison. Only
	// reserve_slow() raises it, to at most the end of the lap its
	// reservation lies in; tail_ <= write_end_ always (tail_ only moves by
	// committing a reservation, which lies below it), so write_end_ -
	// tail_ is the room, 0 to make the next call go slow. That lap is
	// tail_'s own unless the reservation needed a PAD; such a reservation
	// either commits (tail_ moves into that lap) or is aborted
	// (unlink_aborted() lowers write_end_ to tail_).
	uint64_t write_end_ = 0;
	uint64_t published_ = 0;     // last tail stored to shared memory
	detail::QueueHandle *h_ = nullptr;
	QueueInfo info_;
};

// The receiving side of a queue (opened O_RDONLY: needs read permission).
// Messages left unreleased when a Consumer goes away are delivered to the
// next Consumer. Not thread-safe: one thread at a time per Consumer.
//
// peek/try_peek, release and receive/try_receive are inline: a MSG record
// at head below the read end (the last validated tail, capped at the
// ring's end; docs/design.md, "Ring protocol") is validated as the ring
// core does and handed out without a call into the library; anything else
// goes to the slow paths.
class SHMQ_API Consumer {
public:
	[[nodiscard]] static Result<Consumer> open(std::string_view name,
						   const OpenOptions &opt = {});
	Consumer() = default;
	Consumer(Consumer &&) noexcept;
	Consumer &operator=(Consumer &&) noexcept;
	Consumer(const Consumer &) = delete;
	Consumer &operator=(const Consumer &) = delete;
	~Consumer();

	// Copy the next message into @buf and release it; returns its size.
	// EAGAIN (try_): empty. ETIMEDOUT. EPIPE: empty and the producer has
	// gone. EIDRM: empty and the queue was destroyed. EMSGSIZE: @buf too
	// small: the message stays queued and counts as peeked, so peek()
	// returns it in place and release() drops it. EBADMSG: corrupt ring
	// contents.
	[[nodiscard]] inline Result<size_t> try_receive(std::span<std::byte> buf) noexcept;
	[[nodiscard]] inline Result<size_t> receive(std::span<std::byte> buf,
					     Timeout timeout = Timeout::infinite()) noexcept;

	// Zero-copy: look at the next message without consuming it. Calling
	// peek again before release returns the same message.
	[[nodiscard]] inline Result<Message> try_peek() noexcept;
	[[nodiscard]] inline Result<Message> peek(Timeout timeout = Timeout::infinite()) noexcept;
	// Zero-copy batch: fill @out with up to out.size() consecutive messages
	// (in order, PAD records skipped, every header validated as peek
	// validates it) and return how many. try_peek_many fails like
	// try_peek when there is none; peek_many waits for at least one. A
	// corrupt record after the first ends the batch: the valid prefix is
	// returned, and the next call reports EBADMSG. Like peek, it replaces
	// whatever was peeked before; no message is consumed until release()
	// (a PAD record at head, which ends a ring lap and is no message, may
	// be consumed by the peek that looks past it).
	// EINVAL: @out is empty.
	[[nodiscard]] inline Result<size_t> try_peek_many(std::span<Message> out) noexcept;
	[[nodiscard]] inline Result<size_t> peek_many(std::span<Message> out,
					       Timeout timeout = Timeout::infinite()) noexcept;
	// Consume what the last peek or peek_many returned (EINVAL if nothing):
	// for a batch, one store of head, one fence and one wake check.
	[[nodiscard]] inline Result<void> release() noexcept;

	// Recovery from a corrupt ring (peek/receive keep failing with
	// EBADMSG): drop everything published so far by moving head to the
	// producer's current tail, and return how many bytes that skipped
	// (tail - head modulo 2^64, so "negative" when a hostile or broken peer
	// had left head ahead of tail). Ends any peek; wakes a producer waiting
	// for room. The consumer owns head, so this is always allowed; what was
	// skipped is lost. EBADMSG: the tail itself is misaligned, so there is
	// no record boundary to resynchronise to (destroy and recreate the
	// queue).
	// (A lane queue confines corruption to its lane: EINVAL, see drop_lane.)
	[[nodiscard]] Result<uint64_t> resync() noexcept;

	// Lane queues (docs/design.md, "Lanes"). receive/peek take one message
	// from each lane that has one, in lane order starting after the lane
	// served last, before a second from any (a producer that floods its
	// lane gets one message per round); FIFO per producer. A lane whose
	// records are corrupt makes receive/peek fail once with EBADMSG and
	// Error::lane() naming it; the other lanes keep flowing, the lane is
	// skipped. drop_lane() detaches it: nothing more from it reaches any
	// consumer, its producer gets ECONNRESET. A corrupt lane not dropped
	// by the time nothing else is readable is dropped by the library
	// (the kernel would keep reporting its data as readable). EINVAL: not
	// a lane queue, or @lane out of range; ENOENT: the lane is free;
	// ESTALE: its producer has changed since it was reported.
	[[nodiscard]] Result<void> drop_lane(uint32_t lane) noexcept;
	// Moves up to out.size() pending lane events (oldest first) into
	// @out; returns how many. Events are noted as the consumer sees the
	// lanes (on receive, peek and their waits). At most 4 x max_producers
	// + 16 are kept: older ones are discarded first (events_lost()).
	[[nodiscard]] size_t events(std::span<LaneEvent> out) noexcept;
	[[nodiscard]] uint64_t events_lost() const noexcept;

	// The queue fd: EPOLLIN when a message is ready, EPOLLHUP when the
	// producer has gone, EPOLLERR when the queue was destroyed.
	// Edge-triggered epoll: receive until try_receive/try_peek says EAGAIN
	// (which arms the fd, docs/design.md "Pollers"), then wait.
	[[nodiscard]] int fd() const noexcept;
	// Makes the blocking call (receive, peek) sleeping in another thread,
	// or the next one that would sleep, fail with ECANCELED. The one call
	// that may run concurrently with the others. The object must outlive
	// it: interrupt() racing with close(), a move or the destructor is a
	// use-after-free (own the Consumer outside the worker thread, interrupt,
	// join the worker, then destroy it).
	void interrupt() noexcept;
	[[nodiscard]] const QueueInfo &info() const noexcept { return info_; }
	// Open, and usable in this process (not inherited across fork()).
	[[nodiscard]] bool is_open() const noexcept { return live_; }
	void close() noexcept;

private:
	friend struct detail::Access;

	// The body of the moves: takes o's state, runs under detail::ForkLock.
	void take(Consumer &o) noexcept;

	// The common case of peek: a MSG record at head below read_end_. It
	// accepts only what detail::try_peek accepts when the header is not a
	// PAD (the counters checked by refill() when read_end_ was set, then
	// the header read once: type and length by msg_len(), ring end and
	// tail by read_end_), and yields the same message. Anything else
	// (closed, empty, a PAD, a record crossing read_end_, corrupt) returns
	// false and the slow path starts over with try_peek, which reads the
	// shared tail and the header again and gives the precise answer
	// (EBADMSG, PAD consumption, waiting).
	[[nodiscard]] bool peek_fits(Message &m) noexcept
	{
		const uint64_t head = head_;
		uint64_t avail = read_end_ - head;
		// 0: nothing known below read_end_; above capacity: head_ moved
		// past it (a slow path's peek was released). Closed (capacity 0):
		// always here.
		if (avail - 1 >= ring_.capacity) [[unlikely]] {
			if (!refill(avail)) [[unlikely]]
				return false;
		}
		const uint64_t off = head & mask_;
		// One load: the producer may rewrite the header while we look at
		// it. detail::msg_len(): the payload length if it is a MSG of at
		// most max_message bytes, something larger otherwise.
		const uint64_t len = detail::msg_len(detail::load_relaxed(detail::header_at(ring_, off)));
		if (len > ring_.max_message) [[unlikely]]
			return false;
		const uint64_t rec = detail::record_size(len);
		if (rec > avail) [[unlikely]]
			return false;
		peeked_end_ = head + rec;
		m.ptr_ = ring_.data + off + detail::kRecordHeader;
		m.len_ = len;
		m.pos_ = head;
		return true;
	}
	// read_end_ is used up: read the shared tail, set read_end_ by
	// read_end_for() and @avail to read_end_ - head_. False (the slow path
	// decides): not usable, armed, empty, or inconsistent counters.
	[[nodiscard]] bool refill(uint64_t &avail) noexcept
	{
		// Only a usable consumer may touch shared memory. Armed (the
		// last try_ found the ring empty): the slow path disarms on the
		// first message.
		if (!live_ || armed_)
			return false;
		// Pairs with the producer's release store of tail.
		read_end_ = read_end_for(detail::load_acquire(ring_.tail));
		avail = read_end_ - head_;
		return avail != 0;
	}
	// The read end for @tail, just read from shared memory: @tail or the
	// end of head_'s ring lap, whichever comes first, if @tail is
	// consistent with head_ (ahead by 1 to capacity bytes, both aligned);
	// else head_ (nothing to read inline: empty or corrupt, which the slow
	// path's own look reports).
	[[nodiscard]] uint64_t read_end_for(uint64_t tail) const noexcept
	{
		const uint64_t head = head_, used = tail - head;
		if (used - 1 >= ring_.capacity || ((head | used) % detail::kRecordAlign) != 0)
			return head;
		const uint64_t to_end = ring_.capacity - (head & mask_);
		return head + (used < to_end ? used : to_end);
	}
	// Releases up to @end (ring.hpp release(): release store, fence,
	// waiter check) and wakes the producer when its wait condition crossed.
	void release_to(uint64_t end) noexcept
	{
		const bool wake = detail::release(ring_, head_, end);
		head_ = end; // and so nothing is peeked any more
		if (wake) [[unlikely]]
			wake_producer();
	}
	// As for a Reservation: a peeked message always ends past head_, so
	// peeked_end_ == head_ means nothing is peeked (0 is a valid position
	// once the counters wrapped).
	[[nodiscard]] bool peeking() const noexcept { return peeked_end_ != head_; }
	void end_peek() noexcept { peeked_end_ = head_; }
	// Out of line, exported.
	[[nodiscard]] Result<Message> peek_slow(Timeout timeout, bool wait) noexcept;
	[[nodiscard]] Result<void> release_slow() noexcept;
	[[nodiscard]] Result<size_t> receive_slow(std::span<std::byte> buf, Timeout timeout,
						  bool wait) noexcept;
	[[nodiscard]] Result<size_t> peek_many_impl(std::span<Message> out, Timeout timeout,
						    bool wait) noexcept;
	void wake_producer() noexcept;
	// Lane queues (lib/lanes.cpp): every call goes through these, the
	// inline paths above always fall through (ring_ is a zero ring whose
	// tail reads 0).
	[[nodiscard]] Result<size_t> lane_peek(std::span<Message> out, Timeout timeout,
					       bool wait) noexcept;
	[[nodiscard]] Result<void> lane_release() noexcept;
	[[nodiscard]] bool lane_peek_one(Message &m) noexcept;
	[[nodiscard]] Result<uint64_t> lane_resync() noexcept;

	detail::Ring ring_;	    // see Producer::ring_
	uint64_t mask_ = 0;	    // ring_.capacity - 1
	bool live_ = false;	    // open here (not closed, not inherited by fork)
	bool armed_ = false;	    // our read_armed word is set (detail::arm)
	uint64_t head_ = 0;	    // local read position (published on release)
	// How far the inline paths may read: records up to here were
	// published (by a tail read and validated, by refill() or by
	// peek_slow(), which leaves the window it validated) and lie before the
	// ring's end. Anything else that moves head_ (releasing a PAD, resync)
	// either stays within it or resets it to head_. So read_end_ - head_ is
	// either what may be read (<= capacity - (head_ & mask_)) or, once
	// head_ passed it, 0 or above capacity: refill.
	uint64_t read_end_ = 0;
	uint64_t peeked_end_ = 0;   // head after releasing what was peeked, head_: none
	detail::QueueHandle *h_ = nullptr;
	detail::LaneSet *lanes_ = nullptr; // lane queues: owned by h_
	QueueInfo info_;
};

// ---------------------------------------------------------------------------
// Inline fast paths. Memory ordering lives in <shmq/ring.hpp> (publish,
// release, the acquire loads); these only decide fast or slow.

// GCC 12's -Wdangling-pointer flags the back link when the reservation is a
// local variable: it cannot see that the destructor (or a move) always
// unlinks it before it goes away.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
inline Reservation::Reservation(Key, Producer *owner, std::byte *ptr, size_t len,
				uint64_t pos) noexcept
	: owner_(owner), ptr_(ptr), len_(len), pos_(pos)
{
	owner->res_ = this;
}

inline Reservation::Reservation(Reservation &&o) noexcept
	: owner_(o.owner_), ptr_(o.ptr_), len_(o.len_), pos_(o.pos_)
{
	if (owner_)
		owner_->res_ = this;
	o.clear();
}

inline Reservation &Reservation::operator=(Reservation &&o) noexcept
{
	if (this != &o) {
		if (owner_) // dropping an outstanding reservation aborts it
			owner_->unlink_aborted(pos_);
		owner_ = o.owner_;
		ptr_ = o.ptr_;
		len_ = o.len_;
		pos_ = o.pos_;
		if (owner_)
			owner_->res_ = this;
		o.clear();
	}
	return *this;
}
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif

// Aborting needs no more than Producer::unlink_aborted(): the producer's
// tail_ never moved for a reservation, and a PAD it wrote lies beyond
// tail_, overwritten by the next one.
inline Reservation::~Reservation()
{
	if (owner_)
		owner_->unlink_aborted(pos_);
}

inline Result<Reservation> Producer::try_reserve(size_t size) noexcept
{
	if (uint64_t off; fits(size, off)) [[likely]]
		return Result<Reservation>(std::in_place, Reservation::Key(), this,
					   ring_.data + off + detail::kRecordHeader, size, tail_);
	return reserve_slow(size, Timeout::none(), false);
}

inline Result<Reservation> Producer::reserve(size_t size, Timeout timeout) noexcept
{
	if (uint64_t off; fits(size, off)) [[likely]]
		return Result<Reservation>(std::in_place, Reservation::Key(), this,
					   ring_.data + off + detail::kRecordHeader, size, tail_);
	return reserve_slow(size, timeout, true);
}

inline Result<void> Producer::commit(Reservation &&r, size_t used) noexcept
{
	// The link is two-way: res_ == &r means r is our outstanding
	// reservation, and that this producer is usable (closing, and the
	// fork handler, detach it; tested on our side of the link so that a
	// reservation copied by fork() in the middle of a move cannot pass).
	const size_t n = used == SIZE_MAX ? r.len_ : used;
	if (res_ != &r || n > r.len_) [[unlikely]]
		return commit_slow(r, used, true);
	tail_ = detail::commit_header(r.ptr_, r.pos_, n);
	publish_tail();
	// Unlinked after the fence of publish_tail(), so that the compiler
	// sees the reservation empty when its destructor runs next.
	res_ = nullptr;
	r.clear();
	return {};
}

inline Result<void> Producer::commit_deferred(Reservation &&r, size_t used) noexcept
{
	const size_t n = used == SIZE_MAX ? r.len_ : used;
	if (res_ != &r || n > r.len_) [[unlikely]]
		return commit_slow(r, used, false);
	tail_ = detail::commit_header(r.ptr_, r.pos_, n);
	res_ = nullptr;
	r.clear();
	return {};
}

inline void Producer::abort(Reservation &&r) noexcept
{
	if (r.owner_ == this) {
		unlink_aborted(r.pos_);
		r.clear();
	}
}

inline void Producer::flush() noexcept
{
	if (limit_ && tail_ != published_)
		publish_tail();
}

inline Result<void> Producer::try_send(std::span<const std::byte> msg) noexcept
{
	if (uint64_t off; fits(msg.size(), off)) [[likely]] {
		if (!msg.empty())
			std::memcpy(ring_.data + off + detail::kRecordHeader, msg.data(), msg.size());
		tail_ = detail::commit_at(ring_, off, tail_, msg.size());
		publish_tail();
		return {};
	}
	return send_slow(msg, Timeout::none(), false);
}

inline Result<void> Producer::send(std::span<const std::byte> msg, Timeout timeout) noexcept
{
	if (uint64_t off; fits(msg.size(), off)) [[likely]] {
		if (!msg.empty())
			std::memcpy(ring_.data + off + detail::kRecordHeader, msg.data(), msg.size());
		tail_ = detail::commit_at(ring_, off, tail_, msg.size());
		publish_tail();
		return {};
	}
	return send_slow(msg, timeout, true);
}

inline Result<Message> Consumer::try_peek() noexcept
{
	if (Message m; peek_fits(m)) [[likely]]
		return m;
	return peek_slow(Timeout::none(), false);
}

inline Result<Message> Consumer::peek(Timeout timeout) noexcept
{
	if (Message m; peek_fits(m)) [[likely]]
		return m;
	return peek_slow(timeout, true);
}

inline Result<size_t> Consumer::try_peek_many(std::span<Message> out) noexcept
{
	return peek_many_impl(out, Timeout::none(), false);
}

inline Result<size_t> Consumer::peek_many(std::span<Message> out, Timeout timeout) noexcept
{
	return peek_many_impl(out, timeout, true);
}

inline Result<void> Consumer::release() noexcept
{
	// Closing ends the peek, so peeking() also means "open".
	if (!peeking()) [[unlikely]]
		return release_slow();
	release_to(peeked_end_);
	return {};
}

inline Result<size_t> Consumer::try_receive(std::span<std::byte> buf) noexcept
{
	if (Message m; peek_fits(m) && m.len_ <= buf.size()) [[likely]] {
		if (m.len_)
			std::memcpy(buf.data(), m.ptr_, m.len_);
		release_to(peeked_end_);
		return m.len_;
	}
	return receive_slow(buf, Timeout::none(), false);
}

inline Result<size_t> Consumer::receive(std::span<std::byte> buf, Timeout timeout) noexcept
{
	if (Message m; peek_fits(m) && m.len_ <= buf.size()) [[likely]] {
		if (m.len_)
			std::memcpy(buf.data(), m.ptr_, m.len_);
		release_to(peeked_end_);
		return m.len_;
	}
	return receive_slow(buf, timeout, true);
}

// Administration through /dev/shmq-control (root-only by default).
[[nodiscard]] SHMQ_API Result<void> create_queue(std::string_view name, uint64_t capacity,
					const std::string &control = "/dev/shmq-control");
// Creates queue @name as @opt says (a lane queue when max_producers > 0).
[[nodiscard]] SHMQ_API Result<void> create_queue(std::string_view name, const CreateOptions &opt);
[[nodiscard]] SHMQ_API Result<void> destroy_queue(std::string_view name,
					 const std::string &control = "/dev/shmq-control");

// The version of the libshmq that is linked in, "MAJOR.MINOR.PATCH" (the
// SHMQ_VERSION_STRING of <shmq/version.h> it was built with; compare the
// two to detect a header/library mismatch). The module's own version is
// /sys/module/shmq/version.
[[nodiscard]] SHMQ_API const char *version() noexcept;

// Checks a queue name the way the kernel does: 1 to 63 characters of
// [A-Za-z0-9_.-], not starting with '.' or '-' (EINVAL / ENAMETOOLONG).
[[nodiscard]] SHMQ_API Result<void> validate_name(std::string_view name);

} // namespace shmq

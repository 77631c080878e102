// SPDX-License-Identifier: MIT
// The shmq ring protocol (docs/design.md) on raw pointers, without system
// calls: usable by Producer/Consumer over the kernel's pages and by tests
// over plain shared memory. Installed because the inline fast paths of
// <shmq/shmq.hpp> are built on it; namespace shmq::detail is not an API.
//
// Everything read from shared memory is untrusted: the other side may write
// any value at any time. Counters are read once per decision; record headers
// are read once (one 8-byte atomic load) into a local copy and validated
// before any length is used, so nothing is ever read outside the data region.
#pragma once

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <shmq/uapi.h>

namespace shmq::detail {

// The counters are shared with another process: a lock-based fallback of
// std::atomic_ref (a process-local lock) would order nothing across it.
static_assert(std::atomic_ref<uint64_t>::is_always_lock_free &&
	      std::atomic_ref<uint32_t>::is_always_lock_free);

inline constexpr uint64_t kRecordHeader = sizeof(struct shmq_record);
inline constexpr uint64_t kRecordAlign = SHMQ_RECORD_ALIGN;
static_assert(kRecordHeader == 8 && kRecordAlign == 8);

// Bytes a record with @n payload bytes occupies (header + payload, aligned).
[[nodiscard]] constexpr uint64_t record_size(uint64_t n)
{
	return (kRecordHeader + n + kRecordAlign - 1) & ~(kRecordAlign - 1);
}

// Pointers into the mapped regions plus the geometry. Pointers to words
// mapped read-only are only ever loaded from.
struct Ring {
	uint64_t *tail = nullptr;	   // producer region; written by the producer
	uint32_t *write_armed = nullptr;   // producer region; written by the producer
	uint64_t *head = nullptr;	   // consumer region; written by the consumer
	uint32_t *read_armed = nullptr;	   // consumer region; written by the consumer
	uint32_t *read_wake = nullptr;	   // status region; SHMQ_WAKE_*, written by the kernel
	uint32_t *write_wake = nullptr;	   // status region; SHMQ_WAKE_*
	uint64_t *write_need = nullptr;	   // status region
	uint32_t *state = nullptr;	   // status region
	std::byte *data = nullptr;	   // capacity bytes
	uint64_t capacity = 0;		   // power of two >= SHMQ_MIN_CAPACITY
	uint64_t max_message = 0;	   // kernel: capacity/4 - 8; must be < 2^32

	[[nodiscard]] uint64_t mask() const { return capacity - 1; }
};

// Checks what Ring relies on: alignment of the words, geometry. A record
// (with the PAD before it) must need less than capacity/2, what EPOLLOUT
// and the pollers' wake condition promise: so max_message <= capacity/4 - 8.
[[nodiscard]] inline bool ring_geometry_ok(const Ring &r)
{
	auto aligned = [](const void *p, size_t a) {
		return p && reinterpret_cast<uintptr_t>(p) % a == 0;
	};
	return aligned(r.tail, 8) && aligned(r.head, 8) && aligned(r.write_need, 8) &&
	       aligned(r.read_wake, 4) && aligned(r.write_wake, 4) && aligned(r.read_armed, 4) &&
	       aligned(r.write_armed, 4) && aligned(r.state, 4) && aligned(r.data, 8) &&
	       r.capacity >= SHMQ_MIN_CAPACITY && std::has_single_bit(r.capacity) &&
	       r.capacity <= (uint64_t{1} << 62) && r.max_message <= r.capacity / 4 - kRecordHeader &&
	       r.max_message <= UINT32_MAX;
}

template <class T> [[nodiscard]] inline T load_acquire(T *p)
{
	return std::atomic_ref<T>(*p).load(std::memory_order_acquire);
}
template <class T> [[nodiscard]] inline T load_relaxed(T *p)
{
	return std::atomic_ref<T>(*p).load(std::memory_order_relaxed);
}
template <class T> inline void store_release(T *p, T v)
{
	std::atomic_ref<T>(*p).store(v, std::memory_order_release);
}
template <class T> inline void store_relaxed(T *p, T v)
{
	std::atomic_ref<T>(*p).store(v, std::memory_order_relaxed);
}

[[nodiscard]] inline uint64_t pack_header(uint32_t len, uint32_t type)
{
	struct shmq_record rec = {len, type};
	return std::bit_cast<uint64_t>(rec);
}
[[nodiscard]] inline struct shmq_record unpack_header(uint64_t word)
{
	return std::bit_cast<struct shmq_record>(word);
}

// A MSG header word is kMsgHeader + its length: the length is the low half
// of the word (checked here, so that a layout where it is not does not
// compile). msg_len(word) is then the payload length of a MSG record, and
// for any other type at least 2^32, above every max_message: one
// comparison checks the type and the length.
inline constexpr uint64_t kMsgHeader = std::bit_cast<uint64_t>(shmq_record{0, SHMQ_REC_MSG});
static_assert(std::bit_cast<uint64_t>(shmq_record{1, SHMQ_REC_MSG}) == kMsgHeader + 1 &&
	      std::bit_cast<uint64_t>(shmq_record{UINT32_MAX, SHMQ_REC_MSG}) ==
		      kMsgHeader + UINT32_MAX);
[[nodiscard]] constexpr uint64_t msg_len(uint64_t word) { return word - kMsgHeader; }

// The header word of the record at data offset @off (8-aligned, < capacity).
[[nodiscard]] inline uint64_t *header_at(const Ring &r, uint64_t off)
{
	return reinterpret_cast<uint64_t *>(r.data + off);
}

// ---------------------------------------------------------------------------
// Writer (producer) side. The caller keeps `tail` (its committed position,
// possibly ahead of the published one) and `cached_head`.

struct Reserved {
	uint64_t pos = 0;  // free-running position of the message's header
	uint64_t need = 0; // bytes from tail to the record's end (pad included)
};

// Finds room for a record of @n payload bytes at @tail. On success writes the
// PAD record if the message must start at offset 0, and returns 0 with
// out.pos. EAGAIN: not enough free space; out.need is what a waiter must ask
// for (<= capacity). EMSGSIZE: n > max_message. EBADMSG: the shared head is
// ahead of tail or more than capacity behind it.
[[nodiscard]] inline int try_reserve(const Ring &r, uint64_t tail, uint64_t &cached_head,
				     uint64_t n, Reserved &out)
{
	if (n > r.max_message)
		return EMSGSIZE;
	const uint64_t rec = record_size(n);
	const uint64_t off = tail & r.mask();
	const uint64_t room_to_end = r.capacity - off;
	const uint64_t pad = rec > room_to_end ? room_to_end : 0;
	const uint64_t need = pad + rec;
	out.need = need;

	if (r.capacity - (tail - cached_head) < need || tail - cached_head > r.capacity) {
		// Pairs with the consumer's release store of head: once we see
		// head, it no longer reads the bytes before it.
		const uint64_t h = load_acquire(r.head);
		if (tail - h > r.capacity)
			return EBADMSG;
		cached_head = h;
		if (r.capacity - (tail - h) < need)
			return EAGAIN;
	}
	if (pad) // beyond the published tail: invisible until publish
		store_relaxed(header_at(r, off),
			      pack_header(static_cast<uint32_t>(pad - kRecordHeader), SHMQ_REC_PAD));
	out.pos = tail + pad;
	return 0;
}

[[nodiscard]] inline std::byte *payload_at(const Ring &r, uint64_t pos)
{
	return r.data + (pos & r.mask()) + kRecordHeader;
}

// Writes the MSG header of the record reserved at @pos with @len payload
// bytes (len <= the reserved size); returns the new local tail.
[[nodiscard]] inline uint64_t commit(const Ring &r, uint64_t pos, uint64_t len)
{
	store_relaxed(header_at(r, pos & r.mask()),
		      pack_header(static_cast<uint32_t>(len), SHMQ_REC_MSG));
	return pos + record_size(len);
}
// The same with the data offset of @pos (pos & mask) already known.
[[nodiscard]] inline uint64_t commit_at(const Ring &r, uint64_t off, uint64_t pos, uint64_t len)
{
	store_relaxed(header_at(r, off), pack_header(static_cast<uint32_t>(len), SHMQ_REC_MSG));
	return pos + record_size(len);
}

// The same for the record whose payload starts at @payload (the header is
// the 8 bytes before it).
[[nodiscard]] inline uint64_t commit_header(std::byte *payload, uint64_t pos, uint64_t len)
{
	store_relaxed(reinterpret_cast<uint64_t *>(payload - kRecordHeader),
		      pack_header(static_cast<uint32_t>(len), SHMQ_REC_MSG));
	return pos + record_size(len);
}

// Whether a side's wake word (read_wake or write_wake, loaded by the caller)
// asks for a wake of its pollers: a poller is armed by the kernel (its last
// poll found the condition false), or registered and armed by its own
// library through @armed (it found the ring empty or full, see arm()).
[[nodiscard]] inline bool pollers_armed(uint32_t wake, uint32_t *armed)
{
	if (wake & SHMQ_WAKE_POLL_ARMED)
		return true;
	return (wake & SHMQ_WAKE_POLLED) && load_acquire(armed) != 0;
}

// Publishes everything up to @new_tail. Returns true when the consumer must
// be woken (SHMQ_IOC_WAKE): a reader sleeps, or an armed poller waits, and
// the ring was empty before this publication (head == old_tail), i.e. this
// store crossed "empty".
[[nodiscard]] inline bool publish(const Ring &r, uint64_t old_tail, uint64_t new_tail)
{
	// Release: the consumer that sees new_tail sees the records before it.
	store_release(r.tail, new_tail);
	// Store-buffering with the kernel's sleeper and poller (wake word
	// store; smp_mb; read tail) and with the consumer's arm() (armed
	// store; fence; read tail): either it sees new_tail or we see its
	// mark. The fence also orders our tail store before anything the
	// kernel stores later on our behalf (our own write_wake).
	std::atomic_thread_fence(std::memory_order_seq_cst);
	// Acquire: the kernel stores a consumer's wake word after that
	// consumer observed the head it sleeps with (its own release, or, for
	// a descriptor shared by threads, one ordered before it by their
	// lock), so the head we read next is at least that head.
	const uint32_t w = load_acquire(r.read_wake);
	if (w == 0) [[likely]]
		return false;
	if (!(w & SHMQ_WAKE_SLEEPER) && !pollers_armed(w, r.read_armed))
		return false;
	return load_acquire(r.head) == old_tail;
}

// A side that found the ring empty (consumer) or full (producer) and is
// about to return EAGAIN marks itself in its own armed word, so that a
// poller of its fd (edge-triggered epoll, which polls only on wake-ups) is
// woken by the other side's next crossing. The caller then looks at the
// ring once more: the fence pairs with the other side's in publish() /
// release(), so either that look sees its store or it sees our mark.
inline void arm(uint32_t *armed, uint32_t value)
{
	store_relaxed(armed, value);
	std::atomic_thread_fence(std::memory_order_seq_cst);
}

// ---------------------------------------------------------------------------
// Reader (consumer) side. The caller keeps `head` (its own position, published
// on release) and `cached_tail`.

struct Peeked {
	uint64_t payload = 0; // data offset of the payload (< capacity)
	uint32_t len = 0;     // payload bytes
	uint64_t end = 0;     // head after releasing this record (and a PAD)
};

// Looks at the record at @head. Returns 0 with @out describing a message;
// EAGAIN when the ring is empty (out.end == head) or holds only a PAD record
// (out.end > head: release up to out.end, then look again); EBADMSG when
// anything read from shared memory is inconsistent. Never reads outside the
// data region.
[[nodiscard]] inline int try_peek(const Ring &r, uint64_t head, uint64_t &cached_tail, Peeked &out)
{
	out.end = head;
	if (cached_tail == head) {
		// Pairs with the producer's release store of tail.
		cached_tail = load_acquire(r.tail);
		if (cached_tail == head)
			return EAGAIN;
	}
	// On EBADMSG the cached tail is dropped, so that the next call reads the
	// shared tail again: a ring that becomes consistent (the producer, or a
	// new one, rewrote what was wrong) is readable again, as documented.
	const auto corrupt = [&] {
		cached_tail = head;
		return EBADMSG;
	};
	uint64_t avail = cached_tail - head;
	if (avail > r.capacity || head % kRecordAlign != 0 || avail % kRecordAlign != 0)
		return corrupt();

	uint64_t pos = head;
	uint64_t off = pos & r.mask();
	// One load: the producer may rewrite the header while we look at it.
	struct shmq_record hdr = unpack_header(load_relaxed(header_at(r, off)));
	if (hdr.type == SHMQ_REC_PAD) {
		const uint64_t pad = r.capacity - off;
		if (uint64_t{hdr.len} != pad - kRecordHeader || pad > avail)
			return corrupt();
		if (pad == avail) {
			out.end = head + pad;
			return EAGAIN;
		}
		pos += pad;
		avail -= pad;
		off = 0;
		hdr = unpack_header(load_relaxed(header_at(r, 0)));
	}
	if (hdr.type != SHMQ_REC_MSG || hdr.len > r.max_message)
		return corrupt();
	const uint64_t rec = record_size(hdr.len);
	if (rec > r.capacity - off || rec > avail)
		return corrupt();
	out.payload = off + kRecordHeader;
	out.len = hdr.len;
	out.end = pos + rec;
	return 0;
}

// The common case of try_peek: a MSG record at @head below @cached_tail
// (no reload of the tail, no PAD), with exactly the checks try_peek makes on
// the same values; @mask is r.capacity - 1. False for anything else: the
// caller then goes to try_peek, which gives the precise answer.
[[nodiscard]] inline bool msg_below(const Ring &r, uint64_t mask, uint64_t head,
				    uint64_t cached_tail, Peeked &out)
{
	const uint64_t avail = cached_tail - head;
	if (avail == 0 || avail > r.capacity || ((head | avail) % kRecordAlign) != 0)
		return false;
	const uint64_t off = head & mask;
	// One load: the producer may rewrite the header while we look at it.
	const struct shmq_record hdr = unpack_header(load_relaxed(header_at(r, off)));
	if (hdr.type != SHMQ_REC_MSG || hdr.len > r.max_message)
		return false;
	const uint64_t rec = record_size(hdr.len);
	if (rec > r.capacity - off || rec > avail)
		return false;
	out.payload = off + kRecordHeader;
	out.len = hdr.len;
	out.end = head + rec;
	return true;
}

// Free space went from below @need to at least @need when head moved from
// @old_head to @new_head with the producer's tail at @tail.
[[nodiscard]] inline bool free_crossed(uint64_t capacity, uint64_t tail, uint64_t old_head,
				       uint64_t new_head, uint64_t need)
{
	const uint64_t used_old = tail - old_head, used_new = tail - new_head;
	if (used_old > capacity || used_new > used_old)
		return true; // impossible counters: a spurious wake is harmless
	return capacity - used_old < need && capacity - used_new >= need;
}

// Releases everything up to @new_head. Returns true when the producer must
// be woken: a writer sleeps and free space crossed write_need (the smallest
// need of the sleepers), or an armed poller waits and free space crossed
// capacity/2 (what EPOLLOUT reports).
[[nodiscard]] inline bool release(const Ring &r, uint64_t old_head, uint64_t new_head)
{
	// Release: the producer that sees new_head knows we are done with the
	// bytes before it.
	store_release(r.head, new_head);
	// Store-buffering with the kernel's sleeper and with the producer's
	// arm(), see publish().
	std::atomic_thread_fence(std::memory_order_seq_cst);
	const uint32_t w = load_acquire(r.write_wake);
	if (w == 0) [[likely]]
		return false;
	// The crossing must be judged with the tail the producer sleeps with,
	// not with our cached tail: a stale (smaller) tail overstates the free
	// space before this release, hides the crossing and loses the wakeup.
	// The producer's fence after its last publication orders that tail
	// before its wake word, which we loaded with acquire.
	const uint64_t tail = load_acquire(r.tail);
	if (w & SHMQ_WAKE_SLEEPER) {
		// The kernel stores write_need before the SLEEPER bit.
		const uint64_t need = load_acquire(r.write_need);
		if (need && free_crossed(r.capacity, tail, old_head, new_head, need))
			return true;
	}
	return pollers_armed(w, r.write_armed) &&
	       free_crossed(r.capacity, tail, old_head, new_head, r.capacity / 2);
}

} // namespace shmq::detail

// SPDX-License-Identifier: MIT
// Producer: the writing side of a queue, over the ring core in ring.hpp.
#include <cstring>

#include "internal.hpp"

namespace shmq {

namespace {

constexpr unexpected<Error> kClosed(std::in_place, EBADF, "the producer is not open");
constexpr unexpected<Error> kBusy(std::in_place, EBUSY, "a reservation is already outstanding: commit or abort it first");
constexpr unexpected<Error> kTooBig(std::in_place, EMSGSIZE, "message larger than the queue's max_message (capacity/4 - 8 "
			      "bytes; see info().max_message)");
constexpr unexpected<Error> kFull(std::in_place, EAGAIN, "the ring is full: retry later, or use send()/reserve() to wait");
constexpr unexpected<Error> kCorrupt(std::in_place, EBADMSG, "corrupt queue: the consumer's head counter is ahead of tail or "
			      "more than capacity behind it");
constexpr unexpected<Error> kNotReserved(std::in_place, EINVAL, "not the outstanding reservation (already committed or "
				 "aborted?)");
constexpr unexpected<Error> kUsedTooBig(std::in_place, EINVAL, "commit: used is larger than the reserved size");
constexpr unexpected<Error> kBadTail(std::in_place, EBADMSG, "corrupt queue: the tail counter left by a previous producer is "
			     "misaligned; destroy and recreate the queue");

unexpected<Error> wait_error(int e)
{
	switch (e) {
	case ETIMEDOUT:
		return unexpected(Error(e, "timed out waiting for room in the ring"));
	case EPIPE:
		return unexpected(Error(e, "the consumer has gone and the ring is full (set "
				"OpenOptions::ignore_hangup to wait for a new consumer)"));
	case EIDRM:
		return unexpected(Error(e, "the queue was destroyed"));
	case EAGAIN:
		return kFull;
	case EINVAL:
		return unexpected(Error(e, "the kernel rejected the wait (libshmq/module mismatch?)"));
	default:
		return unexpected(Error(e, "waiting for room in the ring failed"));
	}
}

} // namespace

Result<Producer> detail::Access::make_producer(std::unique_ptr<QueueHandle> h,
					       const QueueInfo &info)
{
	Producer p;
	const Ring &r = h->ring;
	// Our own counter, but left by a previous producer: it must be aligned,
	// or we would write headers across the ring end.
	const uint64_t tail = load_acquire(r.tail);
	if (tail % kRecordAlign != 0)
		return kBadTail;
	p.h_ = h.release();
	p.info_ = info;
	p.tail_ = p.published_ = tail;
	p.end_reservation();
	// Untrusted; try_reserve validates it before relying on it.
	p.cached_head_ = load_acquire(r.head);
	return p;
}

Result<Producer> Producer::open(std::string_view name, const OpenOptions &opt)
{
	QueueInfo info;
	auto h = detail::open_queue(name, opt, SHMQ_ROLE_PRODUCER, info);
	if (!h)
		return unexpected(h.error());
	return detail::Access::make_producer(std::move(*h), info);
}

Producer::Producer(Producer &&o) noexcept
	: h_(std::exchange(o.h_, nullptr)), info_(o.info_), tail_(o.tail_),
	  published_(o.published_), cached_head_(o.cached_head_),
	  reserved_end_(std::exchange(o.reserved_end_, o.tail_)), reserved_start_(o.reserved_start_)
{
}

Producer &Producer::operator=(Producer &&o) noexcept
{
	if (this != &o) {
		close();
		h_ = std::exchange(o.h_, nullptr);
		info_ = o.info_;
		tail_ = o.tail_;
		published_ = o.published_;
		cached_head_ = o.cached_head_;
		reserved_end_ = std::exchange(o.reserved_end_, o.tail_);
		reserved_start_ = o.reserved_start_;
	}
	return *this;
}

Producer::~Producer() { close(); }

void Producer::close()
{
	if (!h_)
		return;
	flush(); // committed messages are sent; an outstanding reservation is dropped
	delete h_;
	h_ = nullptr;
	end_reservation();
}

int Producer::fd() const { return h_ ? h_->fd : -1; }

Result<Reservation> Producer::reserve_impl(size_t size, Timeout timeout, bool wait)
{
	if (!h_)
		return kClosed;
	if (reserving())
		return kBusy;
	if (size > info_.max_message)
		return kTooBig;
	const detail::Ring &r = h_->ring;
	uint32_t spins = 0;
	bool probed = false, woken = false;
	for (;;) {
		detail::Reserved res;
		const int e = detail::try_reserve(r, tail_, cached_head_, size, res);
		if (e == 0) {
			reserved_start_ = tail_;
			reserved_end_ = res.pos + detail::record_size(size);
			Reservation rv;
			rv.ptr_ = detail::payload_at(r, res.pos);
			rv.len_ = size;
			rv.pos_ = res.pos;
			return rv;
		}
		if (e == EBADMSG)
			return kCorrupt;
		if (e == EMSGSIZE)
			return kTooBig;
		// EAGAIN: not enough room. Whether or not we wait, publish
		// deferred commits first: the kernel (poll, wait) and the consumer
		// judge by the published tail. A try_ call that answered EAGAIN
		// with records still unpublished would leave the consumer without
		// them while poll, seeing room, tells us to try again.
		flush();
		if (!wait) {
			const int p = h_->probe(SHMQ_WAIT_WRITABLE, res.need, SHMQ_STATE_CONSUMER);
			if (p == 0 && !probed) { // room appeared meanwhile
				probed = true;
				continue;
			}
			return p == 0 ? kFull : wait_error(p);
		}
		// (Never sleep on unpublished records either: the consumer may be
		// asleep waiting for exactly those; flushed above.)
		if (spins < h_->spin) {
			++spins;
			detail::cpu_relax();
			continue;
		}
		// The kernel said the condition held, yet it does not for us:
		// never let such a disagreement outlive the deadline.
		if (woken && timeout.deadline_ns() != UINT64_MAX &&
		    monotonic_now_ns() >= timeout.deadline_ns())
			return wait_error(ETIMEDOUT);
		const int w = h_->wait(SHMQ_WAIT_WRITABLE, res.need, timeout.deadline_ns());
		if (w != 0)
			return wait_error(w);
		woken = true;
		spins = 0;
	}
}

// The common case of reserve: open, nothing outstanding, and room for the
// record before the ring's end according to the cached head, so no PAD, no
// shared load. The one comparison is try_reserve's own test on the cached
// head (used <= capacity and free >= rec, as rec <= capacity); everything
// else, including reloading and validating the shared head, is the slow
// path's. Returns false to mean "take the slow path".
inline bool Producer::reserve_fast(size_t size, Reservation &rv)
{
	if (!h_ || reserving() || size > info_.max_message) [[unlikely]]
		return false;
	const detail::Ring &r = h_->ring;
	if (size > r.max_message) [[unlikely]]
		return false;
	const uint64_t rec = detail::record_size(size);
	const uint64_t off = tail_ & r.mask();
	if (rec > r.capacity - off || tail_ - cached_head_ > r.capacity - rec) [[unlikely]]
		return false;
	reserved_start_ = tail_;
	reserved_end_ = tail_ + rec;
	rv.ptr_ = r.data + off + detail::kRecordHeader;
	rv.len_ = size;
	rv.pos_ = tail_;
	return true;
}

Result<Reservation> Producer::try_reserve(size_t size)
{
	if (Reservation rv; reserve_fast(size, rv)) [[likely]]
		return rv;
	return reserve_impl(size, Timeout::none(), false);
}

Result<Reservation> Producer::reserve(size_t size, Timeout timeout)
{
	if (Reservation rv; reserve_fast(size, rv)) [[likely]]
		return rv;
	return reserve_impl(size, timeout, true);
}

Result<void> Producer::commit_impl(Reservation &r, size_t used, bool publish)
{
	if (!h_)
		return kClosed;
	if (!reserving() || !r.ptr_ || r.pos_ + detail::record_size(r.len_) != reserved_end_)
		return kNotReserved;
	if (used == SIZE_MAX)
		used = r.len_;
	else if (used > r.len_)
		return kUsedTooBig;
	const detail::Ring &ring = h_->ring;
	const uint64_t old = published_;
	tail_ = detail::commit(ring, r.pos_, used);
	end_reservation();
	r = Reservation();
	if (publish) { // flush(), without its checks: tail_ moved, h_ is open
		published_ = tail_;
		if (detail::publish(ring, old, tail_)) [[unlikely]]
			h_->wake();
	}
	return {};
}

Result<void> Producer::commit(Reservation &r, size_t used) { return commit_impl(r, used, true); }

Result<void> Producer::commit_deferred(Reservation &r, size_t used)
{
	return commit_impl(r, used, false);
}

void Producer::abort(Reservation &r)
{
	if (h_ && reserving() && r.ptr_ && r.pos_ + detail::record_size(r.len_) == reserved_end_) {
		// tail_ never moved: a PAD written by the reservation lies beyond
		// it and is overwritten by the next one.
		tail_ = reserved_start_;
		end_reservation();
	}
	r = Reservation();
}

void Producer::flush()
{
	if (!h_ || tail_ == published_)
		return;
	const bool wake = detail::publish(h_->ring, published_, tail_);
	published_ = tail_;
	if (wake)
		h_->wake();
}

Result<void> Producer::try_send(std::span<const std::byte> msg)
{
	if (Reservation rv; reserve_fast(msg.size(), rv)) [[likely]] {
		if (!msg.empty())
			std::memcpy(rv.ptr_, msg.data(), msg.size());
		return commit_impl(rv, SIZE_MAX, true);
	}
	auto r = reserve_impl(msg.size(), Timeout::none(), false);
	if (!r)
		return unexpected(r.error());
	if (!msg.empty())
		std::memcpy(r->data().data(), msg.data(), msg.size());
	return commit_impl(*r, SIZE_MAX, true);
}

Result<void> Producer::send(std::span<const std::byte> msg, Timeout timeout)
{
	if (Reservation rv; reserve_fast(msg.size(), rv)) [[likely]] {
		if (!msg.empty())
			std::memcpy(rv.ptr_, msg.data(), msg.size());
		return commit_impl(rv, SIZE_MAX, true);
	}
	auto r = reserve_impl(msg.size(), timeout, true);
	if (!r)
		return unexpected(r.error());
	if (!msg.empty())
		std::memcpy(r->data().data(), msg.data(), msg.size());
	return commit_impl(*r, SIZE_MAX, true);
}

} // namespace shmq

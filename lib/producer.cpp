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

// The outstanding reservation, if any, follows the producer: its back link
// is repointed at the new object.
Producer::Producer(Producer &&o) noexcept
	: h_(std::exchange(o.h_, nullptr)), info_(o.info_), tail_(o.tail_),
	  published_(o.published_), cached_head_(o.cached_head_),
	  res_(std::exchange(o.res_, nullptr))
{
	if (res_)
		res_->owner_ = this;
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
		res_ = std::exchange(o.res_, nullptr);
		if (res_)
			res_->owner_ = this;
	}
	return *this;
}

Producer::~Producer() { close(); }

void Producer::close()
{
	// An outstanding reservation is dropped, and detached so that its
	// destructor, which may run later, does not reach back into us.
	if (res_) {
		res_->clear();
		res_ = nullptr;
	}
	if (!h_)
		return;
	flush(); // committed messages are sent
	delete h_;
	h_ = nullptr;
}

Reservation::Reservation(Key, Producer *owner, std::byte *ptr, size_t len, uint64_t pos) noexcept
	: owner_(owner), ptr_(ptr), len_(len), pos_(pos)
{
	owner->res_ = this;
}

Reservation::Reservation(Reservation &&o) noexcept
	: owner_(o.owner_), ptr_(o.ptr_), len_(o.len_), pos_(o.pos_)
{
	if (owner_)
		owner_->res_ = this;
	o.clear();
}

Reservation &Reservation::operator=(Reservation &&o) noexcept
{
	if (this != &o) {
		if (owner_) // dropping an outstanding reservation aborts it
			owner_->res_ = nullptr;
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

// Aborting needs nothing but the unlink: the producer's tail_ never moved
// for a reservation, and a PAD it wrote lies beyond tail_, overwritten by
// the next one.
Reservation::~Reservation()
{
	if (owner_)
		owner_->res_ = nullptr;
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
		if (e == 0)
			return Result<Reservation>(std::in_place, Reservation::Key(), this,
						   detail::payload_at(r, res.pos), size, res.pos);
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
// path's. Returns false to mean "take the slow path"; true with @off, the
// data offset of the record header (at tail_).
inline bool Producer::reserve_fast(size_t size, uint64_t &off) const
{
	if (!h_ || reserving() || size > info_.max_message) [[unlikely]]
		return false;
	const detail::Ring &r = h_->ring;
	if (size > r.max_message) [[unlikely]]
		return false;
	const uint64_t rec = detail::record_size(size);
	off = tail_ & r.mask();
	if (rec > r.capacity - off || tail_ - cached_head_ > r.capacity - rec) [[unlikely]]
		return false;
	return true;
}

Result<Reservation> Producer::try_reserve(size_t size)
{
	if (uint64_t off; reserve_fast(size, off)) [[likely]]
		return Result<Reservation>(std::in_place, Reservation::Key(), this,
					   h_->ring.data + off + detail::kRecordHeader, size, tail_);
	return reserve_impl(size, Timeout::none(), false);
}

Result<Reservation> Producer::reserve(size_t size, Timeout timeout)
{
	if (uint64_t off; reserve_fast(size, off)) [[likely]]
		return Result<Reservation>(std::in_place, Reservation::Key(), this,
					   h_->ring.data + off + detail::kRecordHeader, size, tail_);
	return reserve_impl(size, timeout, true);
}

Result<void> Producer::commit_impl(Reservation &r, size_t used, bool publish)
{
	if (!h_)
		return kClosed;
	// The link is two-way, so r.owner_ == this means r is *res_.
	if (r.owner_ != this)
		return kNotReserved;
	if (used == SIZE_MAX)
		used = r.len_;
	else if (used > r.len_)
		return kUsedTooBig;
	const detail::Ring &ring = h_->ring;
	const uint64_t old = published_;
	tail_ = detail::commit(ring, r.pos_, used);
	res_ = nullptr;
	r.clear();
	if (publish) { // flush(), without its checks: tail_ moved, h_ is open
		published_ = tail_;
		if (detail::publish(ring, old, tail_)) [[unlikely]]
			h_->wake();
	}
	return {};
}

Result<void> Producer::commit(Reservation &&r, size_t used) { return commit_impl(r, used, true); }

Result<void> Producer::commit_deferred(Reservation &&r, size_t used)
{
	return commit_impl(r, used, false);
}

void Producer::abort(Reservation &&r) noexcept
{
	if (r.owner_ == this) {
		res_ = nullptr;
		r.clear();
	}
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

// Copy into the record at tail_ (data offset @off, found by reserve_fast)
// and publish it, without building a Reservation.
inline Result<void> Producer::send_fast(std::span<const std::byte> msg, uint64_t off)
{
	const detail::Ring &ring = h_->ring;
	if (!msg.empty())
		std::memcpy(ring.data + off + detail::kRecordHeader, msg.data(), msg.size());
	const uint64_t old = published_;
	tail_ = detail::commit(ring, tail_, msg.size());
	published_ = tail_;
	if (detail::publish(ring, old, tail_)) [[unlikely]]
		h_->wake();
	return {};
}

Result<void> Producer::try_send(std::span<const std::byte> msg)
{
	if (uint64_t off; reserve_fast(msg.size(), off)) [[likely]]
		return send_fast(msg, off);
	auto r = reserve_impl(msg.size(), Timeout::none(), false);
	if (!r)
		return unexpected(r.error());
	if (!msg.empty())
		std::memcpy(r->data().data(), msg.data(), msg.size());
	return commit_impl(*r, SIZE_MAX, true);
}

Result<void> Producer::send(std::span<const std::byte> msg, Timeout timeout)
{
	if (uint64_t off; reserve_fast(msg.size(), off)) [[likely]]
		return send_fast(msg, off);
	auto r = reserve_impl(msg.size(), timeout, true);
	if (!r)
		return unexpected(r.error());
	if (!msg.empty())
		std::memcpy(r->data().data(), msg.data(), msg.size());
	return commit_impl(*r, SIZE_MAX, true);
}

} // namespace shmq

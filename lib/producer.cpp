// SPDX-License-Identifier: MIT
// Producer: the writing side of a queue, over the ring core in ring.hpp.
#include <cstring>

#include "internal.hpp"

namespace shmq {

namespace {

constexpr unexpected<Error> kClosed(std::in_place, EBADF, "the producer is not open");
constexpr unexpected<Error> kForked(std::in_place, EBADF,
				    "this Producer was opened by the parent process before fork(): a "
				    "child must open the queue itself");
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
	case ECANCELED:
		return unexpected(Error(e, "the wait for room was interrupted by Producer::interrupt()"));
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
	p.ring_ = r;
	p.mask_ = r.mask();
	p.limit_ = r.max_message + 1;
	p.h_ = h.release();
	p.info_ = info;
	p.tail_ = p.published_ = tail;
	// Nothing known about the head: the first reserve goes slow.
	p.write_end_ = tail;
	// Our own word, maybe left set by a previous producer.
	store_relaxed(r.write_armed, 0u);
	set_owner(p.h_, &p, nullptr);
	return p; // the move re-owns the handle
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
// A move runs under the ForkLock: a fork between taking o's fields and
// re-owning the handle would have the child's handler disarm o (already
// empty) and leave this object's fast paths pointing into mappings that
// MADV_DONTFORK kept out of the child.
Producer::Producer(Producer &&o) noexcept
{
	const detail::ForkLock no_fork;
	take(o);
}

Producer &Producer::operator=(Producer &&o) noexcept
{
	if (this != &o) {
		close(); // takes the registry lock itself
		const detail::ForkLock no_fork;
		take(o);
	}
	return *this;
}

void Producer::take(Producer &o) noexcept
{
	ring_ = std::exchange(o.ring_, detail::Ring());
	mask_ = std::exchange(o.mask_, 0);
	limit_ = std::exchange(o.limit_, 0);
	res_ = std::exchange(o.res_, nullptr);
	if (res_)
		res_->owner_ = this;
	tail_ = o.tail_;
	write_end_ = o.write_end_;
	published_ = o.published_;
	h_ = std::exchange(o.h_, nullptr);
	info_ = o.info_;
	detail::Access::set_owner_locked(h_, this, nullptr);
}

Producer::~Producer() { close(); }

void Producer::close() noexcept
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
	limit_ = 0;
	mask_ = 0;
	ring_ = detail::Ring();
	delete h_;
	h_ = nullptr;
}

int Producer::fd() const noexcept { return h_ ? h_->fd : -1; }

void Producer::wake_consumer() noexcept { h_->wake(); }

void Producer::interrupt() noexcept
{
	if (h_)
		h_->interrupt();
}

Result<Reservation> Producer::reserve_slow(size_t size, Timeout timeout, bool wait) noexcept
{
	if (!h_)
		return kClosed;
	if (h_->forked)
		return kForked;
	if (res_)
		return kBusy;
	if (size > ring_.max_message)
		return kTooBig;
	uint32_t spins = 0;
	bool probed = false, woken = false;
	for (;;) {
		// Until a reservation succeeds the inline paths have no room.
		write_end_ = tail_;
		detail::Reserved res;
		// "Full" by this head: try_reserve reads and validates the shared one.
		uint64_t head = tail_ - ring_.capacity;
		const int e = detail::try_reserve(ring_, tail_, head, size, res);
		if (e == 0) {
			// The inline paths may go on up to what that head leaves
			// free or the ring's end, whichever comes first (>= the
			// end of this reservation: try_reserve found room for it).
			const uint64_t free_end = head + ring_.capacity;
			const uint64_t lap_end = res.pos - (res.pos & mask_) + ring_.capacity;
			write_end_ = free_end - res.pos < lap_end - res.pos ? free_end : lap_end;
			if (h_->armed) [[unlikely]] { // room again: an epoll of ours need not wake
				h_->armed = false;
				detail::store_relaxed(ring_.write_armed, 0u);
			}
			return Result<Reservation>(std::in_place, Reservation::Key(), this,
						   detail::payload_at(ring_, res.pos), size, res.pos);
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
			// About to say EAGAIN: let an epoll of our fd be woken when
			// room appears, then look once more (detail::arm()).
			// write_end_ stays at tail_ (set above), so that the next
			// reserve comes here (not the inline path) and disarms on
			// success.
			if (!h_->armed) {
				h_->armed = true;
				detail::arm(ring_.write_armed, 1);
				continue;
			}
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

Result<void> Producer::commit_slow(Reservation &r, size_t used, bool publish) noexcept
{
	if (!h_)
		return kClosed;
	if (h_->forked)
		return kForked;
	// The link is two-way, so r.owner_ == this means r is *res_.
	if (r.owner_ != this)
		return kNotReserved;
	if (used == SIZE_MAX)
		used = r.len_;
	else if (used > r.len_)
		return kUsedTooBig;
	tail_ = detail::commit(ring_, r.pos_, used);
	res_ = nullptr;
	r.clear();
	if (publish)
		publish_tail();
	return {};
}

Result<void> Producer::send_slow(std::span<const std::byte> msg, Timeout timeout,
				 bool wait) noexcept
{
	auto r = reserve_slow(msg.size(), timeout, wait);
	if (!r)
		return unexpected(r.error());
	if (!msg.empty())
		std::memcpy(r->data().data(), msg.data(), msg.size());
	return commit_slow(*r, SIZE_MAX, true);
}

} // namespace shmq

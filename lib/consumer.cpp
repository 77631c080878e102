// SPDX-License-Identifier: MIT
// Consumer: the reading side of a queue, over the ring core in ring.hpp.
#include <cstring>

#include "internal.hpp"

namespace shmq {

using detail::kClosed;
using detail::kEmpty;
using detail::kForked;
using detail::kNoRoom;
using detail::kNothingPeeked;

namespace {

unexpected<Error> wait_error(int e) { return detail::consumer_wait_error(e, false); }

constexpr unexpected<Error> kCorrupt(std::in_place, EBADMSG, "corrupt queue: invalid record header or counters in the ring "
			      "(the producer wrote garbage)");
constexpr unexpected<Error> kBufTooSmall(std::in_place, EMSGSIZE, "buffer too small for the next message (it stays queued; "
				   "messages can be up to info().max_message bytes)");
constexpr unexpected<Error> kBadTail(std::in_place, EBADMSG,
				     "resync: the producer's tail is misaligned, so there is no record "
				     "boundary to resynchronise to (destroy and recreate the queue)");

} // namespace

Result<Consumer> detail::Access::make_consumer(std::unique_ptr<QueueHandle> h,
					       const QueueInfo &info)
{
	Consumer c;
	c.ring_ = h->ring;
	c.mask_ = h->ring.mask();
	c.live_ = true;
	// Left by a previous consumer; try_peek validates it (EBADMSG).
	c.head_ = load_acquire(h->ring.head);
	c.read_end_ = c.head_;
	c.end_peek();
	// Our own word, maybe left set by a previous consumer.
	store_relaxed(h->ring.read_armed, 0u);
	c.h_ = h.release();
	c.info_ = info;
	set_owner(c.h_, nullptr, &c);
	return c; // the move re-owns the handle
}

Result<Consumer> Consumer::open(std::string_view name, const OpenOptions &opt)
{
	QueueInfo info;
	auto h = detail::open_queue(name, opt, SHMQ_ROLE_CONSUMER, info);
	if (!h)
		return unexpected(h.error());
	if ((*h)->lanes)
		return detail::Access::make_lane_consumer(std::move(*h), info);
	return detail::Access::make_consumer(std::move(*h), info);
}

// Under the ForkLock, for the reason given at Producer's move.
Consumer::Consumer(Consumer &&o) noexcept
{
	const detail::ForkLock no_fork;
	take(o);
}

Consumer &Consumer::operator=(Consumer &&o) noexcept
{
	if (this != &o) {
		close(); // takes the registry lock itself
		const detail::ForkLock no_fork;
		take(o);
	}
	return *this;
}

void Consumer::take(Consumer &o) noexcept
{
	ring_ = std::exchange(o.ring_, detail::Ring());
	mask_ = std::exchange(o.mask_, 0);
	live_ = std::exchange(o.live_, false);
	armed_ = std::exchange(o.armed_, false);
	head_ = o.head_;
	read_end_ = o.read_end_;
	peeked_end_ = std::exchange(o.peeked_end_, o.head_);
	h_ = std::exchange(o.h_, nullptr);
	lanes_ = std::exchange(o.lanes_, nullptr);
	info_ = o.info_;
	detail::Access::set_owner_locked(h_, nullptr, this);
}

Consumer::~Consumer() { close(); }

void Consumer::close() noexcept
{
	// A peeked but unreleased message stays for the next consumer.
	live_ = false;
	armed_ = false;
	ring_ = detail::Ring();
	mask_ = 0;
	delete h_;
	h_ = nullptr;
	lanes_ = nullptr;
	end_peek();
	read_end_ = head_;
}

int Consumer::fd() const noexcept { return h_ ? h_->fd : -1; }

void Consumer::wake_producer() noexcept { h_->wake(); }

void Consumer::interrupt() noexcept
{
	if (h_)
		h_->interrupt();
}

Result<Message> Consumer::peek_slow(Timeout timeout, bool wait) noexcept
{
	if (lanes_) {
		Message m;
		if (lane_peek_one(m)) [[likely]]
			return m;
		auto n = lane_peek(std::span<Message>(&m, 1), timeout, wait);
		if (!n)
			return unexpected(n.error());
		return m;
	}
	if (!h_)
		return kClosed;
	if (h_->forked)
		return kForked;
	// A new peek replaces the last one: if it fails, or finds a different
	// record because the producer rewrote the ring meanwhile (it may even
	// consume a PAD and move head past the old message), release must not
	// go back to the old message's end.
	end_peek();
	uint32_t spins = 0;
	bool probed = false, woken = false;
	// The tail to go by: the read end while it lies ahead of head_ (what
	// the inline path would have used), else head_: read it below.
	// (tests/fuzz/consumer_fuzz.cpp models exactly this.)
	uint64_t tail = read_end_ - head_ - 1 < ring_.capacity ? read_end_ : head_;
	// Until a message is found, nothing below is known: any exit but
	// success leaves the next peek to read the tail again. (Releasing a
	// PAD moves head_ past this, which means the same.)
	read_end_ = head_;
	for (;;) {
		// Every tail this path goes by is capped at the ring's end, as
		// the inline path's are, so that both give the same answers
		// whichever of them runs. Empty or inconsistent: try_peek reads
		// the tail itself and reports it.
		if (tail == head_)
			tail = read_end_for(detail::load_acquire(ring_.tail));
		detail::Peeked p;
		const int e = detail::try_peek(ring_, head_, tail, p);
		if (e == 0) {
			if (armed_) [[unlikely]] { // data again: an epoll of ours need not wake
				armed_ = false;
				detail::store_relaxed(ring_.read_armed, 0u);
			}
			// What try_peek validated (tail - head_ <= capacity), up to
			// the ring's end: the inline path's window from here on.
			const uint64_t to_end = ring_.capacity - (head_ & mask_);
			read_end_ = head_ + (tail - head_ < to_end ? tail - head_ : to_end);
			peeked_end_ = p.end;
			Message m;
			m.ptr_ = ring_.data + p.payload;
			m.len_ = p.len;
			m.pos_ = p.end - detail::record_size(p.len); // past a PAD, if any
			return m;
		}
		if (e == EBADMSG)
			return kCorrupt;
		if (p.end != head_) { // only a PAD record: consume it, look again
			release_to(p.end);
			end_peek();
			continue;
		}
		if (!wait) {
			// About to say EAGAIN: let an epoll of our fd be woken by
			// the next message, then look once more (detail::arm()).
			if (!armed_) {
				armed_ = true;
				detail::arm(ring_.read_armed, 1);
				continue;
			}
			const int pr = h_->probe(SHMQ_WAIT_READABLE, 0, SHMQ_STATE_PRODUCER);
			if (pr == 0 && !probed) {
				probed = true;
				continue;
			}
			return pr == 0 ? kEmpty : wait_error(pr);
		}
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
		const int w = h_->wait(SHMQ_WAIT_READABLE, 0, timeout.deadline_ns());
		if (w != 0)
			return wait_error(w);
		woken = true;
		spins = 0;
	}
}

Result<void> Consumer::release_slow() noexcept
{
	if (lanes_)
		return lane_release();
	if (!h_)
		return kClosed;
	if (h_->forked)
		return kForked;
	if (!peeking())
		return kNothingPeeked;
	release_to(peeked_end_);
	return {};
}

Result<size_t> Consumer::receive_slow(std::span<std::byte> buf, Timeout timeout,
				      bool wait) noexcept
{
	auto m = wait ? peek(timeout) : try_peek();
	if (!m)
		return unexpected(m.error());
	if (m->size() > buf.size())
		return kBufTooSmall;
	if (m->size())
		std::memcpy(buf.data(), m->data().data(), m->size());
	if (lanes_) {
		(void)lane_release(); // the peek just made cannot be missing
		return m->size();
	}
	release_to(peeked_end_);
	return m->size();
}

Result<uint64_t> Consumer::resync() noexcept
{
	if (lanes_)
		return lane_resync();
	if (!h_)
		return kClosed;
	if (h_->forked)
		return kForked;
	// Pairs with the producer's release store: records before this tail
	// are complete, so the next one starts exactly there.
	const uint64_t tail = detail::load_acquire(ring_.tail);
	if (tail % detail::kRecordAlign != 0)
		return kBadTail;
	const uint64_t skipped = tail - head_;
	release_to(tail); // one store, fence and wake check, as for a release
	end_peek();
	// head_ may have moved back (a hostile tail): nothing is known.
	read_end_ = head_;
	return skipped;
}

// The first message as peek finds it (waiting, a lone PAD at head, errors),
// then as many more as fit in @out and lie before the tail, each through the
// ring core's try_peek at a position of our own: the same validation as
// peek, and nothing shared is written until release().
Result<size_t> Consumer::peek_many_impl(std::span<Message> out, Timeout timeout,
					bool wait) noexcept
{
	if (lanes_)
		return lane_peek(out, timeout, wait);
	if (!h_)
		return kClosed;
	if (h_->forked)
		return kForked;
	if (out.empty())
		return kNoRoom;
	auto first = wait ? peek(timeout) : try_peek();
	if (!first)
		return unexpected(first.error());
	out[0] = *first;
	size_t n = 1;
	uint64_t pos = peeked_end_;
	// The tail to go by: the inline paths' read_end_ while it still lies
	// ahead of head_ and of the first message (that peek was theirs, so
	// what lies below it was published), else none, so that try_peek
	// reads the shared tail.
	const uint64_t window = read_end_ - head_;
	uint64_t tail = window - 1 < ring_.capacity && read_end_ - pos <= window ? read_end_ : pos;
	while (n < out.size()) {
		// Never more than one ring's worth: a producer that moves tail
		// during the batch must not make it alias itself, nor head jump
		// by more than the capacity at release.
		if (pos - head_ >= ring_.capacity)
			break;
		// On EBADMSG the next peek meets the corrupt record again (it
		// reads the tail itself) once the valid prefix is released.
		detail::Peeked p;
		const int e = detail::try_peek(ring_, pos, tail, p);
		// try_peek validated a reloaded tail against pos only: the batch
		// must stay within one ring's worth of head_.
		if (e == EBADMSG || p.end - head_ > ring_.capacity)
			break;
		if (e == EAGAIN) {
			if (p.end == pos) // nothing more published
				break;
			pos = p.end; // a PAD up to the ring end: released with the batch
			continue;
		}
		Message &m = out[n++];
		m.ptr_ = ring_.data + p.payload;
		m.len_ = p.len;
		m.pos_ = p.end - detail::record_size(p.len);
		pos = p.end;
	}
	peeked_end_ = pos;
	return n;
}

unexpected<Error> detail::consumer_wait_error(int e, bool lanes)
{
	switch (e) {
	case ETIMEDOUT:
		return unexpected(Error(e, "timed out waiting for a message"));
	case EPIPE:
		return unexpected(Error(e, lanes ? "the queue is empty and every producer has gone (set "
						  "OpenOptions::ignore_hangup to wait for new producers)"
						: "the queue is empty and the producer has gone (set "
						  "OpenOptions::ignore_hangup to wait for a new producer)"));
	case EIDRM:
		return unexpected(Error(e, "the queue is empty and was destroyed"));
	case ECANCELED:
		return unexpected(Error(e, "the wait for a message was interrupted by Consumer::interrupt()"));
	case EAGAIN:
		return kEmpty;
	case EINVAL:
		return unexpected(Error(e, "the kernel rejected the wait (libshmq/module mismatch?)"));
	default:
		return unexpected(Error(e, "waiting for a message failed"));
	}
}

} // namespace shmq

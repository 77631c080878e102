// SPDX-License-Identifier: MIT
// Consumer: the reading side of a queue, over the ring core in ring.hpp.
#include <cstring>

#include "internal.hpp"

namespace shmq {

namespace {

constexpr unexpected<Error> kClosed(std::in_place, EBADF, "the consumer is not open");
constexpr unexpected<Error> kEmpty(std::in_place, EAGAIN, "the queue is empty");
constexpr unexpected<Error> kCorrupt(std::in_place, EBADMSG, "corrupt queue: invalid record header or counters in the ring "
			      "(the producer wrote garbage)");
constexpr unexpected<Error> kBufTooSmall(std::in_place, EMSGSIZE, "buffer too small for the next message (it stays queued; "
				   "messages can be up to info().max_message bytes)");
constexpr unexpected<Error> kNothingPeeked(std::in_place, EINVAL, "release: no message was peeked");

unexpected<Error> wait_error(int e)
{
	switch (e) {
	case ETIMEDOUT:
		return unexpected(Error(e, "timed out waiting for a message"));
	case EPIPE:
		return unexpected(Error(e, "the queue is empty and the producer has gone (set "
				"OpenOptions::ignore_hangup to wait for a new producer)"));
	case EIDRM:
		return unexpected(Error(e, "the queue is empty and was destroyed"));
	case EAGAIN:
		return kEmpty;
	case EINVAL:
		return unexpected(Error(e, "the kernel rejected the wait (libshmq/module mismatch?)"));
	default:
		return unexpected(Error(e, "waiting for a message failed"));
	}
}

} // namespace

Result<Consumer> detail::Access::make_consumer(std::unique_ptr<QueueHandle> h,
					       const QueueInfo &info)
{
	Consumer c;
	// Left by a previous consumer; try_peek validates it (EBADMSG).
	c.head_ = load_acquire(h->ring.head);
	c.cached_tail_ = c.head_;
	c.end_peek();
	c.h_ = h.release();
	c.info_ = info;
	return c;
}

Result<Consumer> Consumer::open(std::string_view name, const OpenOptions &opt)
{
	QueueInfo info;
	auto h = detail::open_queue(name, opt, SHMQ_ROLE_CONSUMER, info);
	if (!h)
		return unexpected(h.error());
	return detail::Access::make_consumer(std::move(*h), info);
}

Consumer::Consumer(Consumer &&o) noexcept
	: h_(std::exchange(o.h_, nullptr)), info_(o.info_), head_(o.head_),
	  cached_tail_(o.cached_tail_), peeked_end_(std::exchange(o.peeked_end_, o.head_))
{
}

Consumer &Consumer::operator=(Consumer &&o) noexcept
{
	if (this != &o) {
		close();
		h_ = std::exchange(o.h_, nullptr);
		info_ = o.info_;
		head_ = o.head_;
		cached_tail_ = o.cached_tail_;
		peeked_end_ = std::exchange(o.peeked_end_, o.head_);
	}
	return *this;
}

Consumer::~Consumer() { close(); }

void Consumer::close()
{
	// A peeked but unreleased message stays for the next consumer.
	delete h_;
	h_ = nullptr;
	end_peek();
}

int Consumer::fd() const { return h_ ? h_->fd : -1; }

Result<Message> Consumer::peek_impl(Timeout timeout, bool wait)
{
	if (!h_)
		return kClosed;
	// A new peek replaces the last one: if it fails, or finds a different
	// record because the producer rewrote the ring meanwhile (it may even
	// consume a PAD and move head past the old message), release must not
	// go back to the old message's end.
	end_peek();
	const detail::Ring &r = h_->ring;
	uint32_t spins = 0;
	bool probed = false, woken = false;
	for (;;) {
		detail::Peeked p;
		const int e = detail::try_peek(r, head_, cached_tail_, p);
		if (e == 0) {
			peeked_end_ = p.end;
			Message m;
			m.ptr_ = r.data + p.payload;
			m.len_ = p.len;
			return m;
		}
		if (e == EBADMSG)
			return kCorrupt;
		if (p.end != head_) { // only a PAD record: consume it, look again
			const bool wake = detail::release(r, head_, p.end);
			head_ = p.end;
			end_peek();
			if (wake)
				h_->wake();
			continue;
		}
		if (!wait) {
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

// The common case of peek: a MSG record at head. It accepts exactly what
// detail::try_peek accepts when the header is not a PAD, with the same
// checks on the same values (counters, then the header read once), and
// yields the same message. Anything else (closed, empty, a PAD, corrupt)
// returns false and peek_impl starts over with try_peek, which reads the
// shared tail and the header again and gives the precise answer (EBADMSG
// dropping the cached tail, PAD consumption, waiting).
inline bool Consumer::peek_fast(Message &m)
{
	if (!h_) [[unlikely]]
		return false;
	const detail::Ring &r = h_->ring;
	const uint64_t head = head_;
	if (cached_tail_ == head) // Pairs with the producer's release store of tail.
		cached_tail_ = detail::load_acquire(r.tail);
	const uint64_t avail = cached_tail_ - head;
	if (avail == 0 || avail > r.capacity || ((head | avail) % detail::kRecordAlign) != 0)
		[[unlikely]]
		return false;
	const uint64_t off = head & r.mask();
	// One load: the producer may rewrite the header while we look at it.
	const struct shmq_record hdr =
		detail::unpack_header(detail::load_relaxed(detail::header_at(r, off)));
	if (hdr.type != SHMQ_REC_MSG || hdr.len > r.max_message) [[unlikely]]
		return false;
	const uint64_t rec = detail::record_size(hdr.len);
	if (rec > r.capacity - off || rec > avail) [[unlikely]]
		return false;
	peeked_end_ = head + rec;
	m.ptr_ = r.data + off + detail::kRecordHeader;
	m.len_ = hdr.len;
	return true;
}

Result<Message> Consumer::try_peek()
{
	if (Message m; peek_fast(m)) [[likely]]
		return m;
	return peek_impl(Timeout::none(), false);
}

Result<Message> Consumer::peek(Timeout timeout)
{
	if (Message m; peek_fast(m)) [[likely]]
		return m;
	return peek_impl(timeout, true);
}

Result<void> Consumer::release()
{
	if (!h_)
		return kClosed;
	if (!peeking())
		return kNothingPeeked;
	const bool wake = detail::release(h_->ring, head_, peeked_end_);
	head_ = peeked_end_; // and so nothing is peeked any more
	if (wake)
		h_->wake();
	return {};
}

Result<size_t> Consumer::try_receive(std::span<std::byte> buf)
{
	auto m = try_peek();
	if (!m)
		return unexpected(m.error());
	if (m->size() > buf.size())
		return kBufTooSmall;
	if (m->size())
		std::memcpy(buf.data(), m->data().data(), m->size());
	const size_t n = m->size();
	(void)release();
	return n;
}

Result<size_t> Consumer::receive(std::span<std::byte> buf, Timeout timeout)
{
	auto m = peek(timeout);
	if (!m)
		return unexpected(m.error());
	if (m->size() > buf.size())
		return kBufTooSmall;
	if (m->size())
		std::memcpy(buf.data(), m->data().data(), m->size());
	const size_t n = m->size();
	(void)release();
	return n;
}

} // namespace shmq

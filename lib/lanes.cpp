// SPDX-License-Identifier: MIT
// The consumer of a lane queue (docs/design.md, "Lanes"): the lane scan, its
// fairness rule, senders, lane events, waiting on every lane at once.
//
// Each lane is the ring of ring.hpp with a single writer, its producer; the
// consumer runs the ring core on each lane it knows about. The directory in
// the status page (kernel-written) says which lanes are in use; its dir_gen
// changes after every change of an entry, and only then does the consumer
// look at the entries, and ask the kernel (SHMQ_IOC_LANE_INFO, answered
// under its lock) about a lane whose entry changed: the entry itself may be
// read half-written, the kernel's answer cannot.
//
// Why a message is never attributed to the wrong producer: a lane is freed
// (and can get a new producer and new pages) only after its records were
// all consumed (tail == our head) or after we dropped it. Records we have
// not consumed therefore belong to the generation that wrote them, which we
// learnt before we read the tail that shows them: every load of a lane's
// tail is followed by a load of dir_gen, and a tail read from pages of a new
// generation is only possible after the kernel published the old one's end
// (its fault handler installs the new pages after that publication, under
// the lock the reaper held), so that load of dir_gen sees the change and the
// scan starts over with the directory brought up to date.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include <sys/ioctl.h>
#include <sys/mman.h>

#include "internal.hpp"

namespace shmq {

namespace {

using detail::kClosed;
using detail::kEmpty;
using detail::kForked;
using detail::kNoRoom;
using detail::kNothingPeeked;
using detail::LaneSet;
using detail::LaneSlot;

constexpr unexpected<Error> kNotLanes(std::in_place, EINVAL,
				      "not a lane queue: drop_lane needs a queue created with "
				      "max_producers (shmqctl create --producers N)");
constexpr unexpected<Error> kLaneRange(std::in_place, EINVAL,
				       "drop_lane: no such lane (lanes are 0 to info().max_producers - 1)");
constexpr unexpected<Error> kResyncLanes(std::in_place, EINVAL,
					 "resync: a lane queue confines corruption to its lane; drop "
					 "the lane that Error::lane() names with drop_lane()");

unexpected<Error> lane_corrupt(uint32_t lane)
{
	return unexpected(Error(EBADMSG,
				"corrupt lane: its producer wrote an invalid record header or "
				"counters; the other lanes keep flowing (drop it with "
				"Consumer::drop_lane(err.lane()); events() names its sender)",
				lane));
}

unexpected<Error> wait_error(int e) { return detail::consumer_wait_error(e, true); }

const struct shmq_lane_dir *dir_entry(const LaneSet &s, uint32_t j)
{
	return reinterpret_cast<const struct shmq_lane_dir *>(s.dir + size_t{j} * s.dir_stride);
}

void note_event(LaneSet &s, LaneEvent::Kind kind, uint32_t lane, const LaneSlot &l)
{
	if (s.ev_count == s.events_cap) { // full: the oldest goes
		s.ev_first = (s.ev_first + 1) % s.events_cap;
		s.ev_count--;
		++s.events_lost;
	}
	LaneEvent &ev = s.events[(s.ev_first + s.ev_count++) % s.events_cap];
	ev.kind = kind;
	ev.lane = lane;
	ev.generation = l.generation;
	ev.sender = l.sender;
}

void remove_active(LaneSet &s, uint32_t j)
{
	const auto it = std::lower_bound(s.active.begin(), s.active.end(), j);
	if (it != s.active.end() && *it == j)
		s.active.erase(it);
}

void add_active(LaneSet &s, uint32_t j)
{
	const auto it = std::lower_bound(s.active.begin(), s.active.end(), j);
	if (it == s.active.end() || *it != j)
		s.active.insert(it, j);
}

// The lane's holder is over (freed by the kernel, or dropped): its end is
// reported if it was not, and the lane leaves the scan.
void retire(LaneSet &s, uint32_t j)
{
	LaneSlot &l = s.lanes[j];
	if (l.generation && !l.ended)
		note_event(s, LaneEvent::Kind::ended, j, l);
	l.generation = 0;
	l.state = SHMQ_LANE_FREE;
	l.corrupt = false;
	l.drop_failed = false;
	l.ended = false;
	l.peeked_end = l.head;
	l.sender = Sender{};
	remove_active(s, j);
}

// What the kernel says about lane @j now: 0, ENOENT when it is free, or
// another errno (then nothing is known). On plain memory (tests) the
// directory is all there is.
int lane_info(const detail::QueueHandle &h, LaneSet &s, uint32_t j, struct shmq_lane_info &out)
{
	std::memset(&out, 0, sizeof out);
	out.lane = j;
	if (h.fd < 0) {
		const struct shmq_lane_dir *d = dir_entry(s, j);
		out.state = detail::load_acquire(&d->state);
		out.generation = detail::load_acquire(&d->generation);
		out.uid = out.gid = UINT32_MAX;
		return out.state != SHMQ_LANE_FREE ? 0 : ENOENT;
	}
	++s.lane_info_calls;
	return ioctl(h.fd, SHMQ_IOC_LANE_INFO, &out) == 0 ? 0 : errno;
}

// Brings the lanes up to date with the directory (dir_gen was @g).
[[gnu::noinline]] void sync_lanes_slow(const detail::QueueHandle &h, LaneSet &s, uint32_t g)
{
	s.seen_gen = g;
	s.synced = true;
	for (uint32_t j = 0; j < s.lanes.size(); j++) {
		LaneSlot &l = s.lanes[j];
		const struct shmq_lane_dir *d = dir_entry(s, j);
		const uint32_t st = detail::load_relaxed(&d->state);
		const uint32_t gen = detail::load_relaxed(&d->generation);
		if (st == SHMQ_LANE_FREE && l.generation == 0)
			continue;
		if (st != SHMQ_LANE_FREE && gen == l.generation && st == l.state)
			continue;
		struct shmq_lane_info info;
		if (const int e = lane_info(h, s, j, info)) {
			if (e == ENOENT)
				retire(s, j);
			else
				s.synced = false; // ask again next time
			continue;
		}
		if (info.generation != l.generation) {
			retire(s, j);
			l.generation = info.generation;
			l.sender.uid = info.uid;
			l.sender.gid = info.gid;
			l.sender.pid = info.pid;
			// Our own word: the kernel started the new lane's tail there.
			l.head = detail::load_acquire(l.ring.head);
			l.cached_tail = l.head;
			l.peeked_end = l.head;
			add_active(s, j);
			note_event(s, LaneEvent::Kind::attached, j, l);
		}
		l.state = info.state;
	}
}

// Brings the lanes up to date with the directory when dir_gen moved. Cheap
// (inline, one load) when it did not.
inline void sync_lanes(const detail::QueueHandle &h, LaneSet &s)
{
	const uint32_t g = detail::load_acquire(s.dir_gen);
	if (s.synced && g == s.seen_gen) [[likely]]
		return;
	sync_lanes_slow(h, s, g);
}

// Whether the directory moved since the lanes were brought up to date (the
// check after every load of a tail, see the top of this file).
bool dir_moved(const LaneSet &s) { return detail::load_acquire(s.dir_gen) != s.seen_gen; }

enum class Look { message, empty, corrupt, restart };

// Looks at the next record of lane @j at @pos (our head, or the end of what
// a batch took already) with @tail cached. A PAD alone at @pos is consumed
// when nothing is peeked in the lane (pos == head), else stepped over.
Look look(detail::QueueHandle &h, LaneSet &s, uint32_t j, uint64_t &pos, detail::Peeked &p)
{
	LaneSlot &l = s.lanes[j];
	for (;;) {
		const uint64_t cached = l.cached_tail;
		uint64_t tail = cached;
		const int e = detail::try_peek(l.ring, pos, tail, p);
		if (tail != cached && dir_moved(s))
			return Look::restart; // the tail may be a new holder's
		if (e == 0) {
			l.cached_tail = tail;
			return Look::message;
		}
		if (e == EBADMSG) {
			// A lane freed under us reads as zeros: not corruption.
			if (dir_moved(s))
				return Look::restart;
			return Look::corrupt;
		}
		l.cached_tail = tail;
		if (p.end == pos)
			return Look::empty;
		if (pos == l.head && l.peeked_end == l.head) {
			// Only a PAD up to the lane's end: consume it now.
			const bool wake = detail::release(l.ring, l.head, p.end);
			l.head = l.peeked_end = p.end;
			if (wake) [[unlikely]]
				h.wake_lane(j);
		}
		pos = p.end;
	}
}

} // namespace

namespace detail {

int QueueHandle::wait_lanes(uint32_t seen_gen, uint64_t deadline_ns) const
{
	if (fd < 0) {
		// Plain memory (tests): the directory or any lane moving ends it.
		const LaneSet &s = *lanes;
		for (;;) {
			if (load_acquire(s.dir_gen) != seen_gen)
				return 0;
			for (const uint32_t j : s.active) {
				const LaneSlot &l = s.lanes[j];
				if (!l.corrupt && load_acquire(l.ring.tail) != l.head)
					return 0;
			}
			if (load_acquire(ring.state) & SHMQ_STATE_DESTROYED)
				return EIDRM;
			if (deadline_ns != UINT64_MAX && monotonic_now_ns() >= deadline_ns)
				return ETIMEDOUT;
			if (interrupt_requested.exchange(false, std::memory_order_acq_rel))
				return ECANCELED;
			sched_yield();
		}
	}
	struct shmq_wait_args a;
	std::memset(&a, 0, sizeof a);
	a.timeout_ns = deadline_ns;
	a.cond = SHMQ_WAIT_READABLE;
	a.flags = SHMQ_WAIT_DIR_GEN | (ignore_hangup ? SHMQ_WAIT_IGNORE_HUP : 0);
	a.reserved[0] = seen_gen;
	return wait_ioctl(a);
}

void QueueHandle::wake_lane(uint32_t lane)
{
	++wake_calls;
	if (fd < 0)
		return;
	const int saved = errno;
	(void)ioctl(fd, SHMQ_IOC_WAKE, static_cast<unsigned long>(lane) + 1);
	errno = saved;
}

// Builds the lanes of a consumer from the mapped regions: every pointer a
// lane's ring needs, at the offsets the layout gave.
std::unique_ptr<LaneSet> make_lane_set(const Ring &shared, std::byte *status, std::byte *consumer,
				       std::byte *lanes, const LaneGeometry &g)
{
	auto s = std::make_unique<LaneSet>();
	s->dir_gen = reinterpret_cast<const uint32_t *>(status + g.dir_gen_off);
	s->dir = status + g.dir_off;
	s->dir_stride = g.dir_stride;
	s->read_armed = shared.read_armed;
	s->lanes.resize(g.max_producers);
	s->active.reserve(g.max_producers);
	s->touched.reserve(g.max_producers);
	s->events_cap = size_t{4} * g.max_producers + 16;
	s->events.resize(s->events_cap);
	for (uint32_t j = 0; j < g.max_producers; j++) {
		std::byte *lane = lanes + j * g.lane_stride;
		auto *d = reinterpret_cast<struct shmq_lane_dir *>(status + g.dir_off +
								   size_t{j} * g.dir_stride);
		Ring &r = s->lanes[j].ring;
		r = shared;
		r.tail = reinterpret_cast<uint64_t *>(lane + g.tail_off);
		r.write_armed = reinterpret_cast<uint32_t *>(lane + g.write_armed_off);
		r.data = lane + g.data_off;
		r.head = reinterpret_cast<uint64_t *>(consumer + g.head_off + size_t{j} * g.head_stride);
		r.write_wake = &d->write_wake;
		r.write_need = reinterpret_cast<uint64_t *>(&d->write_need);
	}
	return s;
}

Result<Consumer> plain_lane_consumer(const PlainLanes &m, uint32_t spin)
{
	LaneGeometry g;
	g.max_producers = m.max_producers;
	g.lane_stride = m.stride;
	g.tail_off = 0;
	g.write_armed_off = 64;
	g.data_off = 4096;
	g.head_off = 64;
	g.head_stride = 64;
	g.dir_gen_off = 8;
	g.dir_off = 64;
	g.dir_stride = 64;
	Ring shared;
	shared.state = reinterpret_cast<uint32_t *>(m.status);
	shared.read_wake = reinterpret_cast<uint32_t *>(m.status + 4);
	shared.read_armed = reinterpret_cast<uint32_t *>(m.consumer);
	shared.capacity = m.lane_size;
	shared.max_message = m.lane_size / 4 - kRecordHeader;
	auto h = plain_handle(shared, spin);
	h->lanes = make_lane_set(shared, m.status, m.consumer, m.lanes, g);
	QueueInfo info;
	info.capacity = m.lane_size;
	info.max_message = shared.max_message;
	info.max_producers = m.max_producers;
	info.lanes = true;
	return Access::make_lane_consumer(std::move(h), info);
}

// The zero ring of a lane queue's Consumer (see Consumer::lane_peek): its
// tail reads 0, so the inline paths always fall through. Never written.
uint64_t g_zero_tail = 0;

Result<Consumer> Access::make_lane_consumer(std::unique_ptr<QueueHandle> h, const QueueInfo &info)
{
	Consumer c;
	c.ring_ = Ring();
	c.ring_.tail = &g_zero_tail;
	c.mask_ = 0;
	c.live_ = true;
	c.head_ = c.read_end_ = 0;
	c.end_peek();
	// Our own word, maybe left set by a previous consumer.
	store_relaxed(h->lanes->read_armed, 0u);
	c.lanes_ = h->lanes.get();
	c.h_ = h.release();
	c.info_ = info;
	set_owner(c.h_, nullptr, &c);
	return c;
}

} // namespace detail

// The common case of peek (lib/consumer.cpp calls it first): see below.
bool Consumer::lane_peek_one(Message &m) noexcept
{
	if (!h_ || h_->forked)
		return false;
	LaneSet &s = *lanes_;
	// The common case, one message from the lane the scan looks at first,
	// a MSG record below its cached tail, nothing peeked, the directory
	// unchanged: exactly what the scan below would take (it would look at
	// that lane first, at the same record, without reloading the tail),
	// checked as detail::try_peek checks it. Anything else goes the long way.
	if (s.touched.empty() && s.synced && !s.armed && !s.active.empty() &&
	    detail::load_acquire(s.dir_gen) == s.seen_gen) {
		const size_t na = s.active.size();
		size_t at = na > 1 ? static_cast<size_t>(std::lower_bound(s.active.begin(),
									 s.active.end(), s.next) -
							s.active.begin())
				   : 0;
		if (at == na)
			at = 0;
		const uint32_t j = s.active[at];
		LaneSlot &l = s.lanes[j];
		detail::Peeked p;
		if (!l.corrupt &&
		    detail::msg_below(l.ring, l.ring.capacity - 1, l.head, l.cached_tail, p)) {
			s.touched.push_back(j);
			l.peek_gen = l.generation;
			l.peeked_end = p.end;
			m.ptr_ = l.ring.data + p.payload;
			m.len_ = p.len;
			m.pos_ = l.head;
			m.lane_ = j;
			m.gen_ = l.generation;
			m.sender_ = l.sender;
			s.pending_next = j + 1;
			return true;
		}
	}
	return false;
}

// One message (out.size() == 1) or a batch: rounds of the scan, one message
// from each lane that has one, in lane order from the lane after the one
// served last. Nothing shared is written but a consumed lone PAD and the
// armed word; release() moves the heads.
Result<size_t> Consumer::lane_peek(std::span<Message> out, Timeout timeout, bool wait) noexcept
{
	if (!h_)
		return kClosed;
	if (h_->forked)
		return kForked;
	if (out.empty())
		return kNoRoom;
	LaneSet &s = *lanes_;
	// A new peek replaces the last one.
	for (const uint32_t j : s.touched)
		s.lanes[j].peeked_end = s.lanes[j].head;
	s.touched.clear();
	uint32_t spins = 0;
	bool probed = false, woken = false;
	for (;;) {
		sync_lanes(*h_, s);
		size_t n = 0;
		bool restart = false;
		const size_t na = s.active.size();
		// Where the first round starts: the first active lane >= next.
		const size_t start =
			na > 1 ? static_cast<size_t>(std::lower_bound(s.active.begin(), s.active.end(),
								      s.next) -
						     s.active.begin())
			       : 0;
		// Rounds until @out is full or a round finds nothing.
		for (bool found = true; found && n < out.size() && !restart;) {
			found = false;
			for (size_t k = 0; k < na && n < out.size(); k++) {
				const size_t at = start + k;
				const uint32_t j = s.active[at < na ? at : at - na];
				LaneSlot &l = s.lanes[j];
				if (l.corrupt)
					continue;
				uint64_t pos = l.peeked_end;
				// Never more than one lane's worth in a batch.
				if (pos - l.head >= l.ring.capacity)
					continue;
				detail::Peeked p;
				const Look r = look(*h_, s, j, pos, p);
				if (r == Look::restart) {
					restart = true;
					break;
				}
				if (r == Look::corrupt) {
					if (n > 0) // the valid prefix first; reported next time
						continue;
					l.corrupt = true;
					note_event(s, LaneEvent::Kind::corrupt, j, l);
					return lane_corrupt(j);
				}
				if (r == Look::empty) {
					if (l.state == SHMQ_LANE_DRAINING && !l.ended &&
					    l.peeked_end == l.head && pos == l.head) {
						l.ended = true;
						note_event(s, LaneEvent::Kind::ended, j, l);
					}
					continue;
				}
				if (l.peeked_end == l.head) {
					s.touched.push_back(j);
					l.peek_gen = l.generation;
				}
				l.peeked_end = p.end;
				Message &m = out[n++];
				m.ptr_ = l.ring.data + p.payload;
				m.len_ = p.len;
				m.pos_ = p.end - detail::record_size(p.len);
				m.lane_ = j;
				m.gen_ = l.generation;
				m.sender_ = l.sender;
				found = true;
			}
		}
		if (restart) {
			// The directory moved under the scan. What was taken from
			// lanes whose holder did not change is still good: return
			// it (progress whatever the churn); otherwise start over.
			sync_lanes(*h_, s);
			bool valid = n > 0;
			for (const uint32_t j : s.touched)
				valid &= s.lanes[j].generation == s.lanes[j].peek_gen;
			if (!valid) {
				for (const uint32_t j : s.touched)
					s.lanes[j].peeked_end = s.lanes[j].head;
				s.touched.clear();
				continue;
			}
		}
		if (n > 0) {
			if (s.armed) { // data again: an epoll of ours need not wake
				s.armed = false;
				detail::store_relaxed(s.read_armed, 0u);
			}
			// After the release, the scan starts after the lane of the
			// last message (a second peek before it returns the same).
			s.pending_next = out[n - 1].lane_ + 1;
			return n;
		}
		// Nothing readable but a corrupt lane: the kernel sees its data as
		// readable and would end every wait at once; drop it. (A refused
		// drop is not tried again: no loop without a wait.)
		bool dropped = false;
		for (const uint32_t j : s.active) {
			LaneSlot &l = s.lanes[j];
			if (l.corrupt && !l.drop_failed && h_->fd >= 0) {
				dropped = drop_lane(j).has_value();
				if (!dropped)
					s.lanes[j].drop_failed = true;
				break;
			}
		}
		if (dropped)
			continue;
		if (!wait) {
			if (!s.armed) {
				s.armed = true;
				detail::arm(s.read_armed, 1);
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
		if (woken && timeout.deadline_ns() != UINT64_MAX &&
		    monotonic_now_ns() >= timeout.deadline_ns())
			return wait_error(ETIMEDOUT);
		const int w = h_->wait_lanes(s.seen_gen, timeout.deadline_ns());
		if (w != 0)
			return wait_error(w);
		woken = true;
		spins = 0;
	}
}

Result<void> Consumer::lane_release() noexcept
{
	if (!h_)
		return kClosed;
	if (h_->forked)
		return kForked;
	LaneSet &s = *lanes_;
	if (s.touched.empty())
		return kNothingPeeked;
	// A lane whose holder changed since the peek (a hostile producer
	// rewound its tail and left, and the kernel gave the lane to another)
	// must not get our old position: that head would be the new holder's.
	sync_lanes(*h_, s);
	for (const uint32_t j : s.touched) {
		LaneSlot &l = s.lanes[j];
		if (l.generation != l.peek_gen || detail::load_acquire(&dir_entry(s, j)->generation) !=
							      l.peek_gen)
			continue;
		const bool wake = detail::release(l.ring, l.head, l.peeked_end);
		l.head = l.peeked_end;
		if (wake) [[unlikely]]
			h_->wake_lane(j);
	}
	s.touched.clear();
	s.next = s.pending_next;
	return {};
}

Result<void> Consumer::drop_lane(uint32_t lane) noexcept
{
	if (!h_)
		return kClosed;
	if (h_->forked)
		return kForked;
	if (!lanes_)
		return kNotLanes;
	LaneSet &s = *lanes_;
	if (lane >= s.lanes.size())
		return kLaneRange;
	sync_lanes(*h_, s); // the generation to name is the current one
	LaneSlot &l = s.lanes[lane];
	if (h_->fd >= 0) {
		struct shmq_lane_ref ref;
		std::memset(&ref, 0, sizeof ref);
		ref.lane = lane;
		ref.generation = l.generation;
		if (ioctl(h_->fd, SHMQ_IOC_LANE_DROP, &ref) != 0) {
			const int e = errno;
			switch (e) {
			case ENOENT:
				return unexpected(Error(e, "drop_lane: the lane is free (its producer "
							"has gone and it was drained)", lane));
			case ESTALE:
				return unexpected(Error(e, "drop_lane: the lane has another producer "
							"now than the one reported", lane));
			default:
				return unexpected(Error(e, "drop_lane: the kernel refused "
							"SHMQ_IOC_LANE_DROP", lane));
			}
		}
	} else if (!l.generation) {
		return unexpected(Error(ENOENT, "drop_lane: the lane is free", lane));
	}
	// A peek outstanding in the lane ends with it.
	if (l.peeked_end != l.head) {
		l.peeked_end = l.head;
		s.touched.remove(lane);
	}
	note_event(s, LaneEvent::Kind::dropped, lane, l);
	l.ended = true; // the drop is its end
	retire(s, lane);
	return {};
}

size_t Consumer::events(std::span<LaneEvent> out) noexcept
{
	if (!lanes_ || !h_ || h_->forked)
		return 0;
	LaneSet &s = *lanes_;
	sync_lanes(*h_, s);
	const size_t n = std::min(out.size(), s.ev_count);
	for (size_t k = 0; k < n; k++)
		out[k] = s.events[(s.ev_first + k) % s.events_cap];
	s.ev_first = (s.ev_first + n) % s.events_cap;
	s.ev_count -= n;
	return n;
}

uint64_t Consumer::events_lost() const noexcept { return lanes_ ? lanes_->events_lost : 0; }

namespace detail {
void sync_lanes_for(const QueueHandle &h, LaneSet &s) { sync_lanes(h, s); }
} // namespace detail

Result<uint64_t> Consumer::lane_resync() noexcept
{
	if (!h_)
		return kClosed;
	if (h_->forked)
		return kForked;
	return kResyncLanes;
}

} // namespace shmq

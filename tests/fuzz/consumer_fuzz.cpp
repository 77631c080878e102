// SPDX-License-Identifier: MIT
// libFuzzer target: the consumer's record parsing (include/shmq/ring.hpp try_peek and
// release, driven through the real shmq::Consumer try_peek/peek/try_receive/
// receive/release) against ring contents a hostile producer controls.
//
// The ring is tests/native/shm_ring.hpp: plain memory laid out like the
// kernel's pages with PROT_NONE guard pages around every region, so any read
// outside the data area faults (reported as a crash).
//
// Input (little-endian):
//   [0]      capacity: 4096 << (b & 1)
//   [1]      status word: bits 0-1 state (0,3: producer and consumer
//            attached, 1: producer gone, 2: destroyed), bit 2 read_wake
//            SLEEPER, bit 3 write_wake SLEEPER (write_need = capacity / 2),
//            bit 4 read_wake POLLED, bit 5 write_wake POLL_ARMED
//   [2..9]   head, the consumer counter a previous consumer left
//   [10..17] tail - head
//   [18..19] n: the next n bytes (at most the capacity) are the data area,
//            laid out from head's offset on and wrapping at the ring end
//            (the rest of the data area is zero)
//   then     operations, one byte (value % 12) with arguments:
//            0 try_peek    1 try_receive(u16 buffer size)    2 release
//            3 peek(Timeout::none())    4 receive(u16 size, Timeout::none())
//            5 producer: tail += (i16)    10 producer: tail = head + u16
//            6 producer: u64 at data offset (head + 8 * u8) & mask
//            11 producer: u64 at data offset u16 & mask & ~7
//            7 producer: a real Producer sends a message of
//            (u16 % (max_message + 16)) bytes    8 consumer crash: close
//            and reopen    9 kernel: status word = u8 (as byte [1])
//
// Properties checked after every consumer call:
//  - nothing outside the data area is read (guard pages), and nothing the
//    consumer maps read-only is written (compared around each call);
//  - the result is exactly what the record rules of docs/design.md give
//    (a small reference model evaluated on the same memory): a message, or
//    the documented error (EAGAIN/EPIPE/EIDRM/ETIMEDOUT empty, EBADMSG
//    corrupt, EMSGSIZE buffer too small, EINVAL release without a peek);
//  - a returned message lies inside the data area and inside the committed
//    range [head, tail) the consumer read, its length <= max_message, and
//    try_receive copies exactly its bytes;
//  - head only moves forward and never past the tail the consumer read;
//  - a message peeked but not released is delivered again by the next
//    consumer (at-least-once) when the producer changed nothing meanwhile.
// Infinite loops are caught by libFuzzer's -timeout.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <sys/mman.h>
#include <unistd.h>

#include "../native/shm_ring.hpp"

using namespace shmq;
using namespace shmq::detail;
using shmq::test::ShmRing;

namespace {

[[noreturn]] void fail(const char *what, uint64_t a = 0, uint64_t b = 0)
{
	fprintf(stderr, "consumer_fuzz: property violated: %s (%llu, %llu)\n", what,
		static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
	abort();
}
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail(#cond __VA_OPT__(, ) __VA_ARGS__);                                    \
	} while (0)

struct Input {
	const uint8_t *p;
	size_t n;
	bool empty() const { return n == 0; }
	template <class T> T get()
	{
		T v{};
		const size_t k = n < sizeof v ? n : sizeof v;
		std::memcpy(&v, p, k); // little-endian host
		p += k;
		n -= k;
		return v;
	}
};

// One ring per capacity, reused by every input.
ShmRing &ring_for(uint64_t cap)
{
	static ShmRing r4(4096), r8(8192);
	return cap == 4096 ? r4 : r8;
}

// What the consumer may not write (the kernel maps it read-only for a
// consumer): the data area, the producer's and the kernel's words. Compared
// before and after each consumer call (cheaper than mprotect per call).
struct ReadOnlyView {
	std::byte data[8192];
	uint64_t tail, need;
	uint32_t state, rw, ww;

	void take(const Ring &r)
	{
		std::memcpy(data, r.data, r.capacity);
		tail = *r.tail;
		need = *r.write_need;
		state = *r.state;
		rw = *r.read_wake;
		ww = *r.write_wake;
	}
	void check(const Ring &r) const;
};

void set_status(const Ring &r, uint8_t b)
{
	static constexpr uint32_t states[4] = {
		SHMQ_STATE_PRODUCER | SHMQ_STATE_CONSUMER, SHMQ_STATE_CONSUMER,
		SHMQ_STATE_DESTROYED | SHMQ_STATE_CONSUMER, SHMQ_STATE_PRODUCER | SHMQ_STATE_CONSUMER};
	*r.state = states[b & 3];
	*r.read_wake = ((b >> 2) & 1 ? SHMQ_WAKE_SLEEPER : 0) | ((b >> 4) & 1 ? SHMQ_WAKE_POLLED : 0);
	*r.write_wake = ((b >> 3) & 1 ? SHMQ_WAKE_SLEEPER : 0) |
			((b >> 5) & 1 ? SHMQ_WAKE_POLL_ARMED | SHMQ_WAKE_POLLED : 0);
	*r.write_need = r.capacity / 2;
}

// What the consumer's next try_peek/peek must give, from docs/design.md.
struct Model {
	uint64_t head = 0;   // == shared head (only the consumer writes it)
	// The consumer's read end: the tail it last read (and found
	// consistent), capped at the end of the ring lap of the head it was
	// read for. Reread when the head is not below it (equal, or passed
	// it: that difference exceeds the capacity).
	uint64_t cached = 0;
	// std::nullopt: nothing peeked. Not 0: the counters wrap, and a message
	// that ends at 2^64 ends at 0.
	std::optional<uint64_t> peeked_end;
	// The farthest tail (from the head at the start of the call) that the
	// consumer had read and found consistent: head may move up to it.
	// Consistent means within capacity of the head at the time it was read,
	// which is past @start once a lone PAD was consumed in the same call.
	uint64_t start = 0, reach = 0, peeked_reach = 0;
	void note_reach(uint64_t cap)
	{
		if (cached - head <= cap && cached - start > reach - start)
			reach = cached;
	}
};

struct Outcome {
	int err = 0;
	uint64_t off = 0; // payload's data offset
	uint32_t len = 0;
	uint64_t end = 0;
};

Outcome model_peek(Model &m, const Ring &r, bool wait)
{
	const uint64_t cap = r.capacity, mask = cap - 1;
	const uint64_t tail = *r.tail;
	// Every EBADMSG drops the cached tail: the next call reads it again.
	const auto corrupt = [&m]() -> Outcome {
		m.cached = m.head;
		return {EBADMSG};
	};
	for (;;) {
		if (m.cached - m.head - 1 >= cap) {
			m.cached = tail;
			// Consistent with the head: capped at the ring's end.
			const uint64_t used = tail - m.head;
			if (used - 1 < cap && (m.head | used) % 8 == 0)
				m.cached = m.head + std::min(used, cap - (m.head & mask));
		}
		if (m.cached == m.head) { // empty: the kernel's (here plain) answer
			const uint32_t st = *r.state;
			if (st & SHMQ_STATE_DESTROYED)
				return {EIDRM};
			if (!(st & SHMQ_STATE_PRODUCER))
				return {EPIPE};
			return {wait ? ETIMEDOUT : EAGAIN};
		}
		const uint64_t avail = m.cached - m.head;
		if (avail > cap || m.head % 8 || avail % 8)
			return corrupt();
		m.note_reach(cap);
		uint64_t off = m.head & mask, pos = m.head, left = avail;
		shmq_record h;
		std::memcpy(&h, r.data + off, 8);
		if (h.type == SHMQ_REC_PAD) {
			if (h.len != cap - off - 8 || cap - off > left)
				return corrupt();
			if (cap - off == left) { // a lone PAD: consumed, look again
				m.head += cap - off;
				continue;
			}
			pos += cap - off;
			left -= cap - off;
			off = 0;
			std::memcpy(&h, r.data, 8);
		}
		if (h.type != SHMQ_REC_MSG || h.len > r.max_message)
			return corrupt();
		const uint64_t rec = (8 + uint64_t{h.len} + 7) & ~uint64_t{7};
		if (rec > cap - off || rec > left)
			return corrupt();
		return {0, off + 8, h.len, pos + rec};
	}
}

ReadOnlyView ro;

void ReadOnlyView::check(const Ring &r) const
{
	CHECK(std::memcmp(data, r.data, r.capacity) == 0, r.capacity);
	CHECK(tail == *r.tail && need == *r.write_need, tail, *r.tail);
	CHECK(state == *r.state && rw == *r.read_wake && ww == *r.write_wake, state, *r.state);
}

struct Run {
	ShmRing &s;
	const Ring &r;
	Model m;
	std::optional<Consumer> c;
	// At-least-once: the last peeked, unreleased message, while the
	// producer has not touched the ring since.
	bool pending_valid = false;
	Outcome pending;

	void reopen()
	{
		c.reset();
		auto x = Access::make_consumer(plain_handle(r), s.info);
		CHECK(x.has_value());
		c.emplace(std::move(x).value());
		m.head = *r.head;
		m.cached = m.head;
		m.peeked_end.reset();
	}

	// Checks a message the library returned against the model's.
	void check_message(const Message &msg, const Outcome &want, uint64_t head0)
	{
		const auto *p = msg.data().data();
		CHECK(p >= r.data && p + msg.size() <= r.data + r.capacity, msg.size());
		const uint64_t off = static_cast<uint64_t>(p - r.data);
		CHECK(off == want.off && msg.size() == want.len, off, want.off);
		CHECK(msg.size() <= r.max_message, msg.size());
		// Inside [head, tail) as the consumer read them.
		CHECK(want.end - head0 <= m.reach - head0, want.end - head0, m.reach - head0);
	}

	// One consumer call, @kind: 0 try_peek, 1 try_receive, 3 peek and
	// 4 receive with Timeout::none(); @bufsize: the receive buffer.
	void consume(int kind, size_t bufsize)
	{
		const uint64_t head0 = m.head;
		const bool wait = kind == 3 || kind == 4;
		const bool receive = kind == 1 || kind == 4;
		m.start = m.reach = head0;
		m.peeked_end.reset(); // every peek replaces the last one
		Outcome want = model_peek(m, r, wait);
		ro.take(r);
		std::optional<Result<Message>> pm;
		std::optional<Result<size_t>> rm;
		static std::byte buf[1u << 16];
		if (receive)
			rm.emplace(kind == 1 ? c->try_receive(std::span(buf, bufsize))
					     : c->receive(std::span(buf, bufsize), Timeout::none()));
		else
			pm.emplace(kind == 0 ? c->try_peek() : c->peek(Timeout::none()));
		ro.check(r);

		const int got = receive ? (rm->has_value() ? 0 : rm->error().code())
					: (pm->has_value() ? 0 : pm->error().code());
		if (want.err == 0 && receive && want.len > bufsize)
			want.err = EMSGSIZE;
		CHECK(got == want.err, got, want.err);
		if (want.err == 0 || want.err == EMSGSIZE) {
			m.peeked_end = want.end;
			m.peeked_reach = m.reach;
		}
		if (m.head != head0) // a lone PAD was consumed
			pending_valid = false;
		if (got == 0 && !receive) {
			check_message(pm->value(), want, head0);
			if (pending_valid)
				CHECK(want.off == pending.off && want.len == pending.len, want.off,
				      pending.off);
			pending_valid = true;
			pending = want;
		}
		if (got == 0 && receive) {
			CHECK(rm->value() == want.len, rm->value(), want.len);
			CHECK(want.end - head0 <= m.reach - head0);
			CHECK(std::memcmp(buf, r.data + want.off, want.len) == 0);
			m.head = want.end;
			m.peeked_end.reset();
			pending_valid = false;
		}
		const uint64_t h = *r.head;
		CHECK(h == m.head, h, m.head);
		// Forward only, never past the tail the consumer read.
		CHECK(h - head0 <= m.reach - head0, h - head0, m.reach - head0);
	}

	void release()
	{
		const uint64_t head0 = m.head;
		ro.take(r);
		auto res = c->release();
		ro.check(r);
		if (!m.peeked_end) {
			CHECK(!res.has_value() && res.error().code() == EINVAL);
			return;
		}
		CHECK(res.has_value());
		m.head = *m.peeked_end;
		m.peeked_end.reset();
		pending_valid = false;
		const uint64_t h = *r.head;
		CHECK(h == m.head, h, m.head);
		CHECK(h - head0 <= m.peeked_reach - head0, h - head0, m.peeked_reach - head0);
	}
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Input in{data, size};
	const uint64_t cap = 4096u << (in.get<uint8_t>() & 1);
	ShmRing &s = ring_for(cap);
	const Ring &r = s.ring;
	set_status(r, in.get<uint8_t>());
	const uint64_t head = in.get<uint64_t>();
	const uint64_t tail = head + in.get<uint64_t>();
	s.set_counters(tail, head);
	std::memset(r.data, 0, cap);
	size_t n = in.get<uint16_t>();
	n = std::min({n, in.n, size_t{cap}});
	for (size_t i = 0; i < n; i++)
		r.data[(head + i) & (cap - 1)] = std::byte{in.p[i]};
	in.p += n;
	in.n -= n;

	Run run{s, r, {}, {}, false, {}};
	run.reopen();
	// SHMQ_FUZZ_TRACE=1 with a crash file: the operations, one per line
	static const bool trace = getenv("SHMQ_FUZZ_TRACE") != nullptr;
	for (int ops = 0; !in.empty() && ops < 256; ops++) {
		const uint8_t op = in.get<uint8_t>() % 12;
		if (trace)
			fprintf(stderr, "op %d: head %llu tail %llu model cached %llu peeked_end %lld\n",
				op, static_cast<unsigned long long>(*r.head),
				static_cast<unsigned long long>(*r.tail),
				static_cast<unsigned long long>(run.m.cached),
				run.m.peeked_end ? static_cast<long long>(*run.m.peeked_end) : -1LL);
		switch (op) {
		case 0:
		case 3:
			run.consume(op, 0);
			break;
		case 1:
		case 4:
			run.consume(op, in.get<uint16_t>());
			break;
		case 2:
			run.release();
			break;
		case 5:
			*r.tail += static_cast<uint64_t>(static_cast<int64_t>(in.get<int16_t>()));
			run.pending_valid = false;
			break;
		case 10:
			*r.tail = *r.head + in.get<uint16_t>();
			run.pending_valid = false;
			break;
		case 6:
		case 11: {
			const uint64_t off = op == 6 ? (*r.head + 8 * uint64_t{in.get<uint8_t>()}) & (cap - 1) & ~uint64_t{7}
						     : in.get<uint16_t>() & (cap - 1) & ~uint64_t{7};
			store_relaxed(header_at(r, off), in.get<uint64_t>());
			run.pending_valid = false;
			break;
		}
		case 7: {
			const size_t len = in.get<uint16_t>() % (r.max_message + 16);
			auto p = Access::make_producer(plain_handle(r), s.info);
			if (p.has_value()) {
				static std::byte msg[1u << 16];
				std::memset(msg, static_cast<int>(len), len);
				(void)p->try_send(std::span(msg, len));
			}
			run.pending_valid = false;
			break;
		}
		case 8: {
			run.reopen();
			// A consumer that died between peek and release: the next
			// one gets the same message first (when nothing changed).
			if (run.pending_valid)
				run.consume(0, 0);
			break;
		}
		case 9:
			set_status(r, in.get<uint8_t>());
			break;
		}
	}
	run.c.reset();
	return 0;
}

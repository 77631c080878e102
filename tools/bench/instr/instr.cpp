// SPDX-License-Identifier: MIT
// shmq-bench-instr: instructions per message of libshmq's fast paths, counted
// by callgrind (tools/bench/instr/run.sh, `make bench-instr`), next to a
// hand-written minimal SPSC ring doing the same work in the same run.
//
// One thread, plain shared memory laid out like the kernel's pages
// (tests/native/shm_ring.hpp), no waiting on either side: batches of
// --batch messages of --size payload bytes are produced, then consumed.
// Each section is bracketed by CALLGRIND_ZERO_STATS / CALLGRIND_DUMP_STATS_AT
// so a dump holds exactly that section's instructions; run.sh divides by
// the message count. Every message carries its sequence number in its first
// 8 bytes, written by the producer and checked by the consumer, in every
// section: the loops cannot be optimised away and all do the same work.
//
//   zero-copy  Producer::reserve + commit, Consumer::peek + release
//   copy       Producer::send, Consumer::receive (each with its memcpy)
//   ring       the ring of tools/bench/mech_ring.cpp (same records, same
//              cached counters, same fences and waiter checks), without its
//              waits and virtual calls, and trusting its peer
//   ring-copy  the same ring with copy's two copies (buffer -> ring ->
//              buffer): what copy is measured against
//
// The halves of every section are inlined into its loop alike (the
// library's fast paths are inline, and so are the ring's), so that no
// section pays for a call the others do not.
//
// The *-rx sections count the consumer alone (collection is toggled off
// around the producer's half of every batch): the lane scan of a lane
// queue (tests/native/shm_lanes.hpp: the kernel's layout, issue 10) next to
// today's single-producer Consumer and the hand ring's receiver.
//
//   zero-copy-rx  Consumer::peek + release on the single-producer queue
//   lanes1-rx     the same calls on a lane queue of 1 lane
//   lanes8-rx     a lane queue of 8 lanes, all 8 attached, a batch spread
//                 over them round robin (every lane holds messages but in
//                 the last round of a batch); checked per lane, in order
//   ring-rx       the hand ring's receive + release
//
// Outside valgrind it runs the same loops and checks (a smoke test).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <valgrind/callgrind.h>

#include "../../../tests/native/shm_lanes.hpp"
#include "../../../tests/native/shm_ring.hpp"

namespace {

[[noreturn]] void die(const char *what, const std::string &detail = "")
{
	std::fprintf(stderr, "shmq-bench-instr: %s%s%s\n", what, detail.empty() ? "" : ": ",
		     detail.c_str());
	std::exit(1);
}

uint64_t seq_of(const std::byte *p)
{
	uint64_t s;
	std::memcpy(&s, p, sizeof s);
	return s;
}

// ---------------------------------------------------------------------------
// The hand-written ring: tools/bench/mech_ring.cpp's RingTx/RingRx with the
// futex waits taken out (this benchmark never waits) and no virtual calls.

constexpr uint32_t kRecMsg = 0x4d534731, kRecPad = 0x50414431;

struct alignas(64) Control {
	alignas(64) std::atomic<uint64_t> tail;
	alignas(64) std::atomic<uint64_t> head;
	alignas(64) std::atomic<uint32_t> read_waiting;
	alignas(64) std::atomic<uint32_t> write_waiting;
	std::atomic<uint64_t> write_need;
};

struct HandRing {
	Control *c;
	std::byte *data;
	uint64_t cap;
	uint64_t mask() const { return cap - 1; }
	uint64_t *hdr(uint64_t off) const { return reinterpret_cast<uint64_t *>(data + off); }
};

inline uint64_t rec_size(uint64_t n) { return (8 + n + 7) & ~uint64_t{7}; }
inline uint64_t pack(uint32_t len, uint32_t type) { return uint64_t{type} << 32 | len; }

class HandTx {
public:
	explicit HandTx(const HandRing &r) : r_(r) {}
	std::byte *begin(size_t n)
	{
		const uint64_t rec = rec_size(n);
		const uint64_t off = tail_ & r_.mask();
		const uint64_t pad = rec > r_.cap - off ? r_.cap - off : 0;
		const uint64_t need = pad + rec;
		if (r_.cap - (tail_ - cached_head_) < need) [[unlikely]] {
			cached_head_ = r_.c->head.load(std::memory_order_acquire);
			if (r_.cap - (tail_ - cached_head_) < need)
				die("hand ring: full (the benchmark never waits)");
		}
		if (pad)
			std::atomic_ref<uint64_t>(*r_.hdr(off))
				.store(pack(static_cast<uint32_t>(pad - 8), kRecPad),
				       std::memory_order_relaxed);
		pos_ = tail_ + pad;
		return r_.data + (pos_ & r_.mask()) + 8;
	}
	void commit(size_t n)
	{
		std::atomic_ref<uint64_t>(*r_.hdr(pos_ & r_.mask()))
			.store(pack(static_cast<uint32_t>(n), kRecMsg), std::memory_order_relaxed);
		const uint64_t old = tail_;
		tail_ = pos_ + rec_size(n);
		r_.c->tail.store(tail_, std::memory_order_release);
		std::atomic_thread_fence(std::memory_order_seq_cst);
		if (r_.c->read_waiting.load(std::memory_order_acquire) &&
		    r_.c->head.load(std::memory_order_acquire) == old) [[unlikely]]
			die("hand ring: a reader waits?");
	}

private:
	HandRing r_;
	uint64_t tail_ = 0, cached_head_ = 0, pos_ = 0;
};

class HandRx {
public:
	explicit HandRx(const HandRing &r) : r_(r) {}
	std::span<const std::byte> receive()
	{
		for (;;) {
			if (cached_tail_ == head_) {
				cached_tail_ = r_.c->tail.load(std::memory_order_acquire);
				if (cached_tail_ == head_) [[unlikely]]
					die("hand ring: empty (the benchmark never waits)");
			}
			const uint64_t avail = cached_tail_ - head_;
			const uint64_t off = head_ & r_.mask();
			const uint64_t word =
				std::atomic_ref<uint64_t>(*r_.hdr(off)).load(std::memory_order_relaxed);
			if (static_cast<uint32_t>(word >> 32) == kRecPad) {
				release_to(head_ + (r_.cap - off));
				continue;
			}
			const uint32_t len = static_cast<uint32_t>(word);
			if (rec_size(len) > avail) [[unlikely]]
				die("hand ring: corrupt record");
			end_ = head_ + rec_size(len);
			return {r_.data + off + 8, len};
		}
	}
	void release() { release_to(end_); }

private:
	void release_to(uint64_t new_head)
	{
		const uint64_t old = head_;
		r_.c->head.store(new_head, std::memory_order_release);
		head_ = new_head;
		std::atomic_thread_fence(std::memory_order_seq_cst);
		if (!r_.c->write_waiting.load(std::memory_order_acquire))
			return;
		const uint64_t need = r_.c->write_need.load(std::memory_order_relaxed);
		const uint64_t tail = r_.c->tail.load(std::memory_order_acquire);
		if (r_.cap - (tail - old) < need && r_.cap - (tail - new_head) >= need)
			die("hand ring: a writer waits?");
	}
	HandRing r_;
	uint64_t head_ = 0, cached_tail_ = 0, end_ = 0;
};

// ---------------------------------------------------------------------------

struct Config {
	uint64_t messages = 320000;
	uint64_t batch = 500;
	size_t size = 64;
	uint64_t capacity = 65536;
};

// Whose instructions a section counts.
enum class Count { both, consumer };

// One section: a warm-up batch outside the counted region, then @messages
// in batches, between CALLGRIND_ZERO_STATS and CALLGRIND_DUMP_STATS_AT(name).
// Count::consumer toggles collection off around each batch's producing half.
template <class Produce, class Consume>
void section(const char *name, const Config &cfg, Produce produce, Consume consume,
	     Count who = Count::both)
{
	uint64_t seq = 0, want = 0;
	bool counting = false;
	const auto run = [&](uint64_t n) {
		for (uint64_t done = 0; done < n; done += cfg.batch) {
			if (counting && who == Count::consumer)
				CALLGRIND_TOGGLE_COLLECT;
			for (uint64_t i = 0; i < cfg.batch; ++i)
				produce(seq++);
			if (counting && who == Count::consumer)
				CALLGRIND_TOGGLE_COLLECT;
			for (uint64_t i = 0; i < cfg.batch; ++i)
				consume(want++);
		}
	};
	run(cfg.batch);
	counting = true;
	CALLGRIND_ZERO_STATS;
	run(cfg.messages);
	CALLGRIND_DUMP_STATS_AT(name);
	std::printf("%s: %llu messages of %zu bytes checked\n", name,
		    static_cast<unsigned long long>(cfg.messages), cfg.size);
}

// The producing and consuming halves of the zero-copy sections: reserve,
// write the sequence number, commit; peek, check, release.
[[gnu::always_inline]] inline void produce_zc(shmq::Producer &p, const Config &cfg, uint64_t seq)
{
	auto r = p.reserve(cfg.size);
	if (!r) [[unlikely]]
		die("reserve", r.error().message());
	std::memcpy(r->data().data(), &seq, sizeof seq);
	if (auto e = p.commit(std::move(*r)); !e) [[unlikely]]
		die("commit", e.error().message());
}

// Peeks the next message, checks its size and that it carries the sequence
// number want_for(message), releases it.
template <class WantFor>
[[gnu::always_inline]] inline void consume_zc(shmq::Consumer &c, const Config &cfg, const char *name, WantFor want_for)
{
	auto m = c.peek();
	if (!m) [[unlikely]]
		die("peek", m.error().message());
	if (m->size() != cfg.size || seq_of(m->data().data()) != want_for(*m)) [[unlikely]]
		die(name, "wrong message");
	if (auto e = c.release(); !e) [[unlikely]]
		die("release", e.error().message());
}

void zero_copy(const Config &cfg, Count who)
{
	shmq::test::ShmRing s(cfg.capacity);
	auto p = s.producer();
	auto c = s.consumer();
	section(
		who == Count::both ? "zero-copy" : "zero-copy-rx", cfg,
		[&](uint64_t seq) { produce_zc(p, cfg, seq); },
		[&](uint64_t want) { consume_zc(c, cfg, "zero-copy", [&](const shmq::Message &) { return want; }); },
		who);
}

// A lane queue of @lanes lanes of --capacity bytes each, every lane
// attached; message seq goes to lane seq % lanes. The consumer checks each
// lane's messages in order (the scan's order across lanes is its own).
void lanes_rx(const Config &cfg, uint32_t lanes, const char *name)
{
	shmq::test::ShmLanes q(lanes, cfg.capacity);
	std::vector<shmq::Producer> p;
	for (uint32_t j = 0; j < lanes; ++j) {
		q.attach(j);
		p.push_back(q.producer(j));
	}
	auto c = shmq::detail::plain_lane_consumer(q.plain());
	if (!c)
		die("plain_lane_consumer", c.error().message());
	std::vector<uint64_t> next(lanes);
	for (uint32_t j = 0; j < lanes; ++j)
		next[j] = j;
	section(
		name, cfg, [&](uint64_t seq) { produce_zc(p[seq % lanes], cfg, seq); },
		[&](uint64_t) {
			consume_zc(*c, cfg, name, [&](const shmq::Message &m) {
				if (m.lane() >= lanes) [[unlikely]]
					die(name, "message from a lane out of range");
				const uint64_t w = next[m.lane()];
				next[m.lane()] += lanes;
				return w;
			});
		},
		Count::consumer);
}

void copy(const Config &cfg)
{
	shmq::test::ShmRing s(cfg.capacity);
	auto p = s.producer();
	auto c = s.consumer();
	std::vector<std::byte> in(cfg.size), out(cfg.size);
	section(
		"copy", cfg,
		[&](uint64_t seq) {
			std::memcpy(in.data(), &seq, sizeof seq);
			if (auto e = p.send(in); !e) [[unlikely]]
				die("send", e.error().message());
		},
		[&](uint64_t want) {
			auto n = c.receive(out);
			if (!n) [[unlikely]]
				die("receive", n.error().message());
			if (*n != cfg.size || seq_of(out.data()) != want) [[unlikely]]
				die("copy: wrong message");
		});
}

// The hand ring's memory: a control page, then the data.
class HandRingMemory {
public:
	explicit HandRingMemory(uint64_t capacity)
	{
		mem_ = std::aligned_alloc(4096, 4096 + capacity);
		if (!mem_)
			die("out of memory");
		std::memset(mem_, 0, 4096 + capacity);
		ring_ = {new (mem_) Control{}, static_cast<std::byte *>(mem_) + 4096, capacity};
	}
	~HandRingMemory() { std::free(mem_); }
	HandRingMemory(const HandRingMemory &) = delete;
	HandRingMemory &operator=(const HandRingMemory &) = delete;
	const HandRing &ring() const { return ring_; }

private:
	void *mem_;
	HandRing ring_;
};

void hand_ring(const Config &cfg, Count who)
{
	HandRingMemory mem(cfg.capacity);
	HandTx tx(mem.ring());
	HandRx rx(mem.ring());
	section(
		who == Count::both ? "ring" : "ring-rx", cfg,
		[&](uint64_t seq) {
			std::byte *b = tx.begin(cfg.size);
			std::memcpy(b, &seq, sizeof seq);
			tx.commit(cfg.size);
		},
		[&](uint64_t want) {
			const auto m = rx.receive();
			if (m.size() != cfg.size || seq_of(m.data()) != want) [[unlikely]]
				die("ring: wrong message");
			rx.release();
		},
		who);
}

// The copying sections' reference: the hand ring with the copy section's
// two copies (the sender's buffer into the ring, the ring into the
// receiver's buffer), so that "copy" has a target of its own.
void hand_ring_copy(const Config &cfg)
{
	HandRingMemory mem(cfg.capacity);
	HandTx tx(mem.ring());
	HandRx rx(mem.ring());
	std::vector<std::byte> in(cfg.size), out(cfg.size);
	section(
		"ring-copy", cfg,
		[&](uint64_t seq) {
			std::memcpy(in.data(), &seq, sizeof seq);
			std::memcpy(tx.begin(in.size()), in.data(), in.size());
			tx.commit(in.size());
		},
		[&](uint64_t want) {
			const auto m = rx.receive();
			if (m.size() > out.size()) [[unlikely]]
				die("ring-copy: message larger than the buffer");
			std::memcpy(out.data(), m.data(), m.size());
			rx.release();
			if (m.size() != cfg.size || seq_of(out.data()) != want) [[unlikely]]
				die("ring-copy: wrong message");
		});
}

uint64_t number(const char *opt, const char *v)
{
	char *end = nullptr;
	errno = 0;
	const unsigned long long n = std::strtoull(v, &end, 10);
	if (errno || !end || *end || n == 0)
		die("not a positive number", std::string(opt) + " " + v);
	return n;
}

} // namespace

int main(int argc, char **argv)
{
	Config cfg;
	for (int i = 1; i < argc; ++i) {
		const std::string a = argv[i];
		if (i + 1 >= argc)
			die("usage: shmq-bench-instr [--messages N] [--batch N] [--size BYTES] "
			    "[--capacity BYTES]");
		const char *v = argv[++i];
		if (a == "--messages")
			cfg.messages = number(argv[i - 1], v);
		else if (a == "--batch")
			cfg.batch = number(argv[i - 1], v);
		else if (a == "--size")
			cfg.size = number(argv[i - 1], v);
		else if (a == "--capacity")
			cfg.capacity = number(argv[i - 1], v);
		else
			die("unknown option", a);
	}
	const uint64_t rec = (cfg.size + 8 + 7) & ~uint64_t{7};
	// A batch plus the PAD at the wrap must fit: the benchmark never waits.
	if (cfg.size < 8 || cfg.size > cfg.capacity / 4 - 8 || cfg.messages % cfg.batch ||
	    (cfg.batch + 1) * rec > cfg.capacity)
		die("need 8 <= size <= capacity/4 - 8, messages a multiple of batch, and a batch "
		    "(plus one record) within the capacity");
	zero_copy(cfg, Count::both);
	copy(cfg);
	hand_ring(cfg, Count::both);
	hand_ring_copy(cfg);
	zero_copy(cfg, Count::consumer);
	lanes_rx(cfg, 1, "lanes1-rx");
	lanes_rx(cfg, 8, "lanes8-rx");
	hand_ring(cfg, Count::consumer);
	return 0;
}

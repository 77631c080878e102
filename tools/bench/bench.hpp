// SPDX-License-Identifier: MIT
// shmq-bench: the interfaces shared by the runner (main.cpp), the payload
// code (payload.cpp) and the mechanisms (mech_*.cpp).
//
// A mechanism is one way of moving messages between two processes. It builds
// one-directional channels in the parent before fork(); each child then opens
// its end (Tx or Rx) and the runner drives the same workload through every
// mechanism. Adding a mechanism is one file: a Mechanism subclass, a Channel
// subclass with open_tx()/open_rx(), a Tx and an Rx, and a Registration (see
// mech_mq.cpp for a small one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace shmq_bench {

// Any error inside a run: the run fails with this text.
struct Failure : std::runtime_error {
	using std::runtime_error::runtime_error;
};
// The mechanism cannot do this cell on this machine (limits, missing
// module): the row is reported as skipped with this text, not as a failure.
struct Skip : std::runtime_error {
	using std::runtime_error::runtime_error;
};
// Throws Failure("what: strerror(errno)").
[[noreturn]] void fail_errno(const std::string &what);

// ---------------------------------------------------------------------------
// Messages. Every message starts with this header; the payload after it is a
// pattern derived from (seq, size), so the receiver knows every expected byte.

struct MsgHeader {
	uint64_t seq;	// sequence number (replies: seq | kReplyBit)
	uint32_t len;	// total message bytes, header included
	uint32_t flags; // kFlagLast on the last message of a run
	uint64_t sum;	// checksum of the bytes after the header
	uint64_t magic; // kMagic
};
static_assert(sizeof(MsgHeader) == 32);
inline constexpr size_t kMinMessage = sizeof(MsgHeader);
inline constexpr uint32_t kFlagLast = 1;
inline constexpr uint64_t kReplyBit = uint64_t{1} << 62;
// Fan-in: sender i numbers its messages seq | producer_tag(i), so the
// receiver checks every producer's messages in that producer's order.
inline constexpr unsigned kProducerShift = 48;
inline constexpr unsigned kMaxProducers = 8;
inline constexpr uint64_t producer_tag(unsigned i) { return uint64_t{i} << kProducerShift; }
inline constexpr unsigned producer_of(uint64_t seq) { return unsigned(seq >> kProducerShift) & 0xff; }
inline constexpr uint64_t kMagic = 0x68636e6562716d73ULL; // "shmqbnch"

// Writes a complete message of @n bytes (n >= kMinMessage).
void fill_message(std::byte *p, size_t n, uint64_t seq, uint32_t flags);
// Checks a received message against what fill_message(n, seq) wrote: length,
// sequence number, magic, checksum and every payload byte. Returns its flags;
// throws Failure describing the first difference.
uint32_t check_message(std::span<const std::byte> m, size_t n, uint64_t seq);
// Reads the length field of a header at @p (for byte-stream framing).
uint32_t header_len(const std::byte *p);
// Reads the sequence field of a header at @p (fan-in: who sent it).
uint64_t header_seq(const std::byte *p);

// ---------------------------------------------------------------------------
// Channels

struct ChannelConfig {
	size_t msg_size = 64;	 // bytes of every message, header included
	size_t capacity = 0;	 // buffer bytes asked of every mechanism
	unsigned batch = 1;	 // messages per batch (1: unbatched workloads)
	uint32_t spin = 0;	 // OpenOptions::spin for shmq's spin variants
	// Senders of the channel (fan-in: several processes each call
	// open_producer() on it; 1 otherwise). capacity is then asked for each
	// producer's path where the mechanism has one per producer (lanes,
	// connections) and producers x capacity where all share one buffer.
	unsigned producers = 1;
	std::string tag;	 // unique per channel: names of named objects
};

// The sending end, used by one process.
class Tx {
public:
	virtual ~Tx() = default;
	// Room for one message of @n bytes, to be filled by the caller; may
	// block while the channel is full. Valid until commit().
	virtual std::byte *begin(size_t n) = 0;
	// Sends the message filled since begin(). @more: another message of the
	// same batch follows, so the mechanism may hold this one back until a
	// commit with more == false (one wake-up / system call per batch).
	virtual void commit(size_t n, bool more) = 0;
};

// The receiving end, used by one process.
class Rx {
public:
	virtual ~Rx() = default;
	// The next message; blocks while there is none. Valid until release().
	virtual std::span<const std::byte> receive() = 0;
	virtual void release() = 0;
};

// One direction between two processes. Built in the parent before fork;
// destroyed in the parent after both children have exited (children leave
// with _exit and never run destructors of parent objects).
class Channel {
public:
	virtual ~Channel() = default;
	virtual std::unique_ptr<Tx> open_tx() = 0; // in the sending child
	virtual std::unique_ptr<Rx> open_rx() = 0; // in the receiving child
	// Fan-in: the sending end of producer @index (0 .. producers - 1), in
	// its own child. Mechanisms whose senders are all alike keep this.
	virtual std::unique_ptr<Tx> open_producer(unsigned index)
	{
		(void)index;
		return open_tx();
	}
	size_t buffer = 0; // effective buffer bytes (0: unknown)
	std::string note;  // e.g. limits that were adjusted
	// After a successful run of @messages, in the parent, before the
	// channel goes: what the mechanism itself counted (shmq: wake system
	// calls), appended to the row's note; empty for nothing.
	virtual std::string summary(uint64_t messages) { (void)messages; return {}; }
};

// FanIn: ChannelConfig::producers senders (processes) stream into one
// receiver over one channel.
enum class Workload { PingPong, Stream, Batch, FanIn };
const char *workload_name(Workload w);

// One result line: mechanism x workload x size.
struct Row {
	std::string mechanism;
	Workload workload = Workload::Stream;
	size_t size = 0;
	std::string status; // "ok", "skipped", "failed"
	std::string note;
	unsigned batch = 1;
	size_t buffer = 0;
	unsigned repeats = 1;  // runs made; the row is the median one
	// The row's main figure (main_metric()) of every run, in run order, and
	// their spread; median is the reported run's (of an even count, the
	// worse of the two middle runs). Empty unless status is "ok".
	std::vector<double> runs;
	double run_min = 0, run_median = 0, run_max = 0;
	uint64_t messages = 0; // timed messages (ping-pong: round trips)
	uint64_t bytes = 0;
	double seconds = 0;
	double msgs_per_s = 0, gb_per_s = 0;		     // stream, batch
	double rtt_median_us = 0, rtt_p99_us = 0, rtt_mean_us = 0; // ping-pong
	double rtt_min_us = 0;
};

// The figure runs are compared by: the round trip's median for ping-pong,
// messages per second otherwise.
inline const char *main_metric(Workload w)
{
	return w == Workload::PingPong ? "rtt_median_us" : "msgs_per_s";
}
inline double main_figure(const Row &r)
{
	return r.workload == Workload::PingPong ? r.rtt_median_us : r.msgs_per_s;
}

struct Limits {
	double duration_s = 0.3; // timed part of each run (when count == 0)
	uint64_t count = 0;	 // timed messages / round trips (0: by duration)
	uint64_t warmup = 0;	 // untimed messages before
	int inject = 0;		 // tests the verification: 1 corrupt a byte, 2 drop a message
};

class Mechanism {
public:
	virtual ~Mechanism() = default;
	[[nodiscard]] virtual const char *name() const = 0;
	[[nodiscard]] virtual const char *describe() const = 0;
	[[nodiscard]] virtual bool is_shmq() const { return false; }
	// Why it cannot run at all here (empty: it can). Asked once per process.
	virtual std::string unavailable() { return {}; }
	// Whether a workload means anything for it (memcpy: stream only). Fan-in
	// needs a channel that several processes may send to: opt in.
	[[nodiscard]] virtual bool applies(Workload w) const { return w != Workload::FanIn; }
	// Builds one channel (parent, before fork). Throws Skip or Failure.
	virtual std::unique_ptr<Channel> make_channel(const ChannelConfig &cfg) = 0;
	// In-process mechanisms measure here and never get channels.
	[[nodiscard]] virtual bool in_process() const { return false; }
	virtual void run_in_process(const ChannelConfig &, const Limits &, Row &) {}
};

// Base of the single-process reference rows (memcpy, fill-check): stream
// only, never a channel. run_one_process() is the shared timing loop.
class InProcessStreamMechanism : public Mechanism {
public:
	[[nodiscard]] bool applies(Workload w) const override { return w == Workload::Stream; }
	std::unique_ptr<Channel> make_channel(const ChannelConfig &) override
	{
		throw Failure(std::string(name()) + " runs in one process");
	}
	[[nodiscard]] bool in_process() const override { return true; }
};

uint64_t now_ns(); // CLOCK_MONOTONIC

// Calls @one (one message of @n bytes) lim.warmup times, then measures calls
// until the limits are reached, reading the clock every 64 messages (every
// message from 4 KiB), and fills @row's counts for a @region-byte buffer.
template <class OneMessage>
void run_one_process(const Limits &lim, size_t n, size_t region, Row &row, OneMessage &&one)
{
	for (uint64_t i = 0; i < lim.warmup; ++i)
		one();
	const unsigned check = n >= 4096 ? 1 : 64;
	const uint64_t t0 = now_ns();
	uint64_t done = 0, t1 = t0;
	for (;;) {
		for (unsigned k = 0; k < check; ++k)
			one();
		done += check;
		t1 = now_ns();
		if (lim.count ? done >= lim.count : double(t1 - t0) >= lim.duration_s * 1e9)
			break;
	}
	row.messages = done;
	row.bytes = done * n;
	row.seconds = double(t1 - t0) / 1e9;
	row.buffer = region;
}

using Factory = std::unique_ptr<Mechanism> (*)();
struct RegistryEntry {
	int order; // table order: shmq first, the physical limit last
	std::string name;
	Factory make;
};
std::vector<RegistryEntry> &registry();
struct Registration {
	Registration(int order, const char *name, Factory make)
	{
		registry().push_back({order, name, make});
	}
};

// Helpers for mechanisms.
inline void cpu_relax()
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	asm volatile("yield" ::: "memory");
#endif
}
// 64-byte aligned heap buffer.
struct Buffer {
	explicit Buffer(size_t n);
	Buffer(const Buffer &) = delete;
	Buffer &operator=(const Buffer &) = delete;
	~Buffer();
	std::byte *data() const { return p; }
	size_t size() const { return n; }
	std::byte *p = nullptr;
	size_t n = 0;
};
// Reads a small integer from a /proc file; -1 when it cannot.
long long read_proc_number(const char *path);
// Writes a /proc number and restores the old value when the program exits.
bool write_proc_number_restored(const char *path, long long value);

} // namespace shmq_bench

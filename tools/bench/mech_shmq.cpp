// SPDX-License-Identifier: MIT
// shmq through the real kernel module: a queue is created through
// /dev/shmq-control for every channel (and destroyed after the run); the
// children open it as Producer and Consumer. Without the module (no
// /dev/shmq-control) every shmq row is skipped: a ring on plain shared memory
// without the kernel's wait/wake is a different mechanism, not a stand-in.
//
//   shmq-copy       send() / receive(): one copy on each side, like the
//                   kernel-copy mechanisms; batch: reserve + memcpy +
//                   commit_deferred, flush per batch
//   shmq-zc         reserve/commit and peek/release: the message is filled
//                   and checked in the ring itself; batch: commit_deferred
//                   and flush once per batch
//   shmq-copy-spin  shmq-copy with OpenOptions::spin (busy-poll, then sleep)
//   shmq-zc-spin    shmq-zc with OpenOptions::spin
//   shmq-epoll      shmq-copy, but the consumer waits in edge-triggered
//                   epoll_wait on its fd and takes messages with
//                   try_receive until EAGAIN, as an event loop would
//   shmq-lanes      shmq-zc on a lane queue (issue 10: create_queue with
//                   max_producers = the workload's producers, each of
//                   capacity bytes): fan-in, one producer process per lane;
//                   stream, a lane queue of 1 lane against shmq-zc on
//                   today's single-producer queue. The consumer also checks
//                   that every lane's messages keep one Message::sender()
//

// Every shmq row notes the SHMQ_IOC_WAKE calls the run made (both sides,
// warm-up included: the queue's sysfs counter) per timed message: the
// figure that wake suppression (docs/design.md, "Pollers") keeps down.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <sys/epoll.h>
#include <unistd.h>

#include <shmq/shmq.hpp>

#include "bench.hpp"

namespace shmq_bench {

namespace {

const char kControl[] = "/dev/shmq-control";

[[noreturn]] void fail_shmq(const std::string &what, const shmq::Error &e)
{
	throw Failure(what + ": " + e.message());
}

shmq::OpenOptions options(const ChannelConfig &cfg, bool spin)
{
	shmq::OpenOptions o;
	o.spin = spin ? cfg.spin : 0;
	return o;
}

class ShmqTx final : public Tx {
public:
	ShmqTx(shmq::Producer p, bool zc, size_t n) : p_(std::move(p)), zc_(zc), buf_(zc ? 0 : n) {}
	std::byte *begin(size_t n) override
	{
		if (!zc_)
			return buf_.data();
		auto r = p_.reserve(n);
		if (!r)
			fail_shmq("reserve", r.error());
		res_ = std::move(*r);
		return res_.data().data();
	}
	void commit(size_t n, bool more) override
	{
		if (!zc_ && !more) {
			if (auto r = p_.send({buf_.data(), n}); !r)
				fail_shmq("send", r.error());
			return;
		}
		if (!zc_) { // copying, but part of a batch: defer the publication
			auto r = p_.reserve(n);
			if (!r)
				fail_shmq("reserve", r.error());
			res_ = std::move(*r);
			std::memcpy(res_.data().data(), buf_.data(), n);
		}
		auto r = more ? p_.commit_deferred(std::move(res_), n)
			      : p_.commit(std::move(res_), n);
		if (!r)
			fail_shmq("commit", r.error());
	}

private:
	shmq::Producer p_;
	bool zc_;
	Buffer buf_;
	shmq::Reservation res_;
};

class ShmqRx final : public Rx {
public:
	ShmqRx(shmq::Consumer c, bool zc, size_t n, bool epoll)
		: c_(std::move(c)), zc_(zc), buf_(zc ? 0 : n),
		  lane_pid_(c_.info().lanes ? c_.info().max_producers : 0, 0)
	{
		if (!epoll)
			return;
		ep_ = ::epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event ev = {};
		ev.events = EPOLLIN | EPOLLET;
		if (ep_ < 0 || ::epoll_ctl(ep_, EPOLL_CTL_ADD, c_.fd(), &ev) != 0)
			throw Failure(std::string("epoll: ") + std::strerror(errno));
	}
	~ShmqRx() override
	{
		if (ep_ >= 0)
			::close(ep_);
	}
	std::span<const std::byte> receive() override
	{
		if (ep_ >= 0) {
			for (;;) {
				auto r = c_.try_receive({buf_.data(), buf_.size()});
				if (r)
					return {buf_.data(), *r};
				if (r.error().code() != EAGAIN)
					fail_shmq("try_receive", r.error());
				// EAGAIN armed the fd: the next message wakes us.
				struct epoll_event ev;
				if (::epoll_wait(ep_, &ev, 1, -1) < 0 && errno != EINTR)
					throw Failure(std::string("epoll_wait: ") + std::strerror(errno));
			}
		}
		if (!zc_) {
			auto r = c_.receive({buf_.data(), buf_.size()});
			if (!r)
				fail_shmq("receive", r.error());
			return {buf_.data(), r.value()};
		}
		auto m = c_.peek();
		if (!m)
			fail_shmq("peek", m.error());
		if (!lane_pid_.empty())
			check_sender(*m);
		return m->data();
	}
	void release() override
	{
		if (zc_)
			if (auto r = c_.release(); !r)
				fail_shmq("release", r.error());
	}

private:
	// A lane queue: each lane has one producer process for the whole run,
	// so its messages must all name the same sender.
	void check_sender(const shmq::Message &m)
	{
		if (m.lane() >= lane_pid_.size())
			throw Failure("lane " + std::to_string(m.lane()) + " out of range");
		int32_t &pid = lane_pid_[m.lane()];
		if (pid == 0)
			pid = m.sender().pid;
		else if (m.sender().pid != pid)
			throw Failure("lane " + std::to_string(m.lane()) + ": sender pid " +
				      std::to_string(m.sender().pid) + ", was " + std::to_string(pid));
	}
	shmq::Consumer c_;
	bool zc_;
	Buffer buf_;
	std::vector<int32_t> lane_pid_; // lane queues: the sender of each lane
	int ep_ = -1;
};

class ShmqChannel final : public Channel {
public:
	ShmqChannel(const ChannelConfig &cfg, bool zc, bool spin, bool epoll, bool lanes)
		: cfg_(cfg), zc_(zc), spin_(spin), epoll_(epoll)
	{
		name_ = "shmq-bench-" + cfg.tag;
		shmq::CreateOptions co;
		co.capacity = cfg.capacity;
		co.max_producers = lanes ? cfg.producers : 0; // 0: single-producer queue
		co.control = kControl;
		if (auto r = shmq::create_queue(name_, co); !r) {
			if (r.error().code() == EFBIG || r.error().code() == ENOSPC)
				throw Skip("create_queue: " + r.error().message());
			fail_shmq("create_queue " + name_, r.error());
		}
		created_ = true;
		buffer = cfg.capacity;
		if (lanes)
			note = std::to_string(cfg.producers) + (cfg.producers == 1 ? " lane" : " lanes");
	}
	~ShmqChannel() override
	{
		if (created_)
			(void)shmq::destroy_queue(name_, kControl);
	}
	std::unique_ptr<Tx> open_tx() override
	{
		auto p = shmq::Producer::open(name_, options(cfg_, spin_));
		if (!p)
			fail_shmq("Producer::open " + name_, p.error());
		if (cfg_.msg_size > p->info().max_message)
			throw Failure("message larger than the queue's max_message");
		return std::make_unique<ShmqTx>(std::move(p.value()), zc_, cfg_.msg_size);
	}
	std::unique_ptr<Rx> open_rx() override
	{
		auto c = shmq::Consumer::open(name_, options(cfg_, spin_));
		if (!c)
			fail_shmq("Consumer::open " + name_, c.error());
		return std::make_unique<ShmqRx>(std::move(c.value()), zc_, cfg_.msg_size, epoll_);
	}
	std::string summary(uint64_t messages) override
	{
		FILE *f = std::fopen(("/sys/class/shmq/" + name_ + "/wakes").c_str(), "r");
		unsigned long long wakes = 0;
		const bool ok = f && std::fscanf(f, "%llu", &wakes) == 1;
		if (f)
			std::fclose(f);
		if (!ok || !messages)
			return {};
		char buf[96];
		std::snprintf(buf, sizeof buf, "%.3f wakes/msg (%llu)", double(wakes) / double(messages),
			      wakes);
		return buf;
	}

private:
	ChannelConfig cfg_;
	bool zc_, spin_, epoll_;
	std::string name_;
	bool created_ = false;
};

class ShmqMechanism final : public Mechanism {
public:
	ShmqMechanism(const char *n, const char *d, bool zc, bool spin, bool epoll = false,
		      bool lanes = false)
		: name_(n), desc_(d), zc_(zc), spin_(spin), epoll_(epoll), lanes_(lanes)
	{
	}
	const char *name() const override { return name_; }
	const char *describe() const override { return desc_; }
	bool is_shmq() const override { return true; }
	// A lane queue: fan-in, and streaming from its one producer (the
	// comparison with the single-producer queue); the others: no fan-in.
	bool applies(Workload w) const override
	{
		return lanes_ ? w == Workload::FanIn || w == Workload::Stream : w != Workload::FanIn;
	}
	std::string unavailable() override
	{
		if (::access(kControl, F_OK) != 0)
			return "no module";
		if (::access(kControl, R_OK | W_OK) != 0)
			return "no access to /dev/shmq-control";
		return {};
	}
	std::unique_ptr<Channel> make_channel(const ChannelConfig &cfg) override
	{
		// The kernel caps a record at capacity/4.
		if (cfg.msg_size + 8 > cfg.capacity / 4)
			throw Skip("message larger than max_message (capacity/4 - 8)");
		return std::make_unique<ShmqChannel>(cfg, zc_, spin_, epoll_, lanes_);
	}

private:
	const char *name_, *desc_;
	bool zc_, spin_, epoll_, lanes_;
};

const Registration reg_copy(10, "shmq-copy", [] {
	return std::unique_ptr<Mechanism>(new ShmqMechanism(
		"shmq-copy", "shmq send/receive (copying), blocking", false, false));
});
const Registration reg_epoll(15, "shmq-epoll", [] {
	return std::unique_ptr<Mechanism>(new ShmqMechanism(
		"shmq-epoll", "shmq send / try_receive + edge-triggered epoll_wait", false, false, true));
});
const Registration reg_zc(20, "shmq-zc", [] {
	return std::unique_ptr<Mechanism>(new ShmqMechanism(
		"shmq-zc", "shmq reserve/commit + peek/release (zero-copy), blocking", true, false));
});
const Registration reg_lanes(25, "shmq-lanes", [] {
	return std::unique_ptr<Mechanism>(new ShmqMechanism(
		"shmq-lanes", "shmq-zc on a lane queue, a lane per producer (fanin; stream: 1 lane)",
		true, false, false, true));
});
const Registration reg_copy_spin(30, "shmq-copy-spin", [] {
	return std::unique_ptr<Mechanism>(new ShmqMechanism(
		"shmq-copy-spin", "shmq send/receive with OpenOptions::spin", false, true));
});
const Registration reg_zc_spin(40, "shmq-zc-spin", [] {
	return std::unique_ptr<Mechanism>(new ShmqMechanism(
		"shmq-zc-spin", "shmq zero-copy with OpenOptions::spin", true, true));
});

} // namespace

} // namespace shmq_bench

// SPDX-License-Identifier: MIT
// Boost.Interprocess message_queue (Boost 1.74, header-only; -lrt -pthread).
//
// What it is: a bounded queue of fixed-size slots in a POSIX shared memory
// object (/dev/shm/<name>), guarded by one process-shared pthread mutex with
// two process-shared condition variables (on Linux Boost uses the real
// pthread objects, BOOST_INTERPROCESS_POSIX_PROCESS_SHARED, not its spin
// emulation). send() locks, copies the message into a slot, unlocks and
// signals a receiver only when one is blocked (Boost's circular-index build,
// the default); receive() locks, copies the slot out, unlocks. So it is a
// shared-memory queue with one copy on each side and a lock per message,
// sleeping in futex(2) through the condition variables: no zero-copy API, no
// batch API (one send() per message in the batch workload too).
//
// The parent creates the queue (create_only; max_msg_size = the message size,
// so 1 MiB messages fit; depth = capacity / size like posix-mq, at least 2)
// and removes it after the run; each child opens it by name (open_only), as
// two unrelated programs would.
#include <algorithm>
#include <string>

#include <boost/interprocess/ipc/message_queue.hpp>

#include "bench.hpp"

namespace shmq_bench {

namespace {

namespace bip = boost::interprocess;

std::unique_ptr<bip::message_queue> open_queue(const std::string &name)
{
	try {
		return std::make_unique<bip::message_queue>(bip::open_only, name.c_str());
	} catch (const bip::interprocess_exception &e) {
		throw Failure("message_queue open " + name + ": " + e.what());
	}
}

class BoostTx final : public Tx {
public:
	BoostTx(const std::string &name, size_t n) : q_(open_queue(name)), buf_(n) {}
	std::byte *begin(size_t) override { return buf_.data(); }
	void commit(size_t n, bool) override
	{
		try {
			q_->send(buf_.data(), n, 0);
		} catch (const bip::interprocess_exception &e) {
			throw Failure(std::string("message_queue send: ") + e.what());
		}
	}

private:
	std::unique_ptr<bip::message_queue> q_;
	Buffer buf_;
};

class BoostRx final : public Rx {
public:
	BoostRx(const std::string &name, size_t n) : q_(open_queue(name)), buf_(n) {}
	std::span<const std::byte> receive() override
	{
		bip::message_queue::size_type got = 0;
		unsigned prio = 0;
		try {
			q_->receive(buf_.data(), buf_.size(), got, prio);
		} catch (const bip::interprocess_exception &e) {
			throw Failure(std::string("message_queue receive: ") + e.what());
		}
		return {buf_.data(), static_cast<size_t>(got)};
	}
	void release() override {}

private:
	std::unique_ptr<bip::message_queue> q_;
	Buffer buf_;
};

class BoostChannel final : public Channel {
public:
	explicit BoostChannel(const ChannelConfig &cfg)
		: name_("shmq-bench-bip-" + cfg.tag), size_(cfg.msg_size)
	{
		const size_t depth = std::clamp<size_t>(cfg.capacity / cfg.msg_size, 2, 65536);
		bip::message_queue::remove(name_.c_str()); // a leftover of a killed run
		try {
			bip::message_queue q(bip::create_only, name_.c_str(), depth, cfg.msg_size);
			created_ = true;
			buffer = depth * cfg.msg_size;
			note = "depth " + std::to_string(depth);
		} catch (const bip::interprocess_exception &e) {
			throw Failure("message_queue create " + name_ + " (" + std::to_string(depth) +
				      " x " + std::to_string(cfg.msg_size) + " bytes): " + e.what());
		}
	}
	~BoostChannel() override
	{
		if (created_)
			bip::message_queue::remove(name_.c_str());
	}
	std::unique_ptr<Tx> open_tx() override { return std::make_unique<BoostTx>(name_, size_); }
	std::unique_ptr<Rx> open_rx() override { return std::make_unique<BoostRx>(name_, size_); }

private:
	std::string name_;
	size_t size_;
	bool created_ = false;
};

class BoostMechanism final : public Mechanism {
public:
	const char *name() const override { return "boost-mq"; }
	const char *describe() const override
	{
		return "Boost.Interprocess message_queue: slots in /dev/shm, process-shared "
		       "mutex + condvars, copy in and out (no batch or zero-copy API)";
	}
	std::unique_ptr<Channel> make_channel(const ChannelConfig &cfg) override
	{
		return std::make_unique<BoostChannel>(cfg);
	}
};

const Registration reg(140, "boost-mq", [] { return std::unique_ptr<Mechanism>(new BoostMechanism); });

} // namespace

} // namespace shmq_bench

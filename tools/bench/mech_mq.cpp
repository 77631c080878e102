// SPDX-License-Identifier: MIT
// POSIX message queues (mq_open). One mq_send()/mq_receive() per message:
// the API has no batching. The queue is unlinked as soon as it is open, so
// nothing is left behind; both children inherit the descriptor.
//
// Limits: a queue's message size must be <= /proc/sys/fs/mqueue/msgsize_max
// and its depth <= msg_max unless the process has CAP_SYS_RESOURCE (then up
// to 16 MiB / 65536), and the queue's memory counts against
// RLIMIT_MSGQUEUE. We raise what we may and skip what we cannot.
//
// Fan-in: every producer child sends to the same queue (the descriptor each
// inherited), which is one buffer shared by all: its depth is the producers'
// capacities together.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include <fcntl.h>
#include <mqueue.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.hpp"

namespace shmq_bench {

namespace {

class MqTx final : public Tx {
public:
	MqTx(mqd_t q, size_t n) : q_(q), buf_(n) {}
	~MqTx() override { ::mq_close(q_); }
	std::byte *begin(size_t) override { return buf_.data(); }
	void commit(size_t n, bool) override
	{
		while (::mq_send(q_, reinterpret_cast<const char *>(buf_.data()), n, 0) < 0)
			if (errno != EINTR)
				fail_errno("mq_send");
	}

private:
	mqd_t q_;
	Buffer buf_;
};

class MqRx final : public Rx {
public:
	MqRx(mqd_t q, size_t n) : q_(q), buf_(n) {}
	~MqRx() override { ::mq_close(q_); }
	std::span<const std::byte> receive() override
	{
		for (;;) {
			const ssize_t r = ::mq_receive(q_, reinterpret_cast<char *>(buf_.data()),
						       buf_.size(), nullptr);
			if (r >= 0)
				return {buf_.data(), static_cast<size_t>(r)};
			if (errno != EINTR)
				fail_errno("mq_receive");
		}
	}
	void release() override {}

private:
	mqd_t q_;
	Buffer buf_;
};

class MqChannel final : public Channel {
public:
	explicit MqChannel(const ChannelConfig &cfg) : cfg_(cfg)
	{
		const std::string name = "/shmq-bench-" + cfg.tag;
		long depth = static_cast<long>(
			std::clamp<size_t>(cfg.producers * cfg.capacity / cfg.msg_size, 2, 65536));
		raise_rlimit(depth);
		bool raised_size = false, raised_depth = false;
		for (;;) {
			struct mq_attr a = {};
			a.mq_maxmsg = depth;
			a.mq_msgsize = static_cast<long>(cfg.msg_size);
			q_ = ::mq_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &a);
			if (q_ != static_cast<mqd_t>(-1))
				break;
			const int e = errno;
			if (e == EINVAL) {
				// Without CAP_SYS_RESOURCE the sysctl limits apply:
				// raise them for this run if we may (restored at exit).
				const long long msg_max = read_proc_number("/proc/sys/fs/mqueue/msg_max");
				const long long size_max =
					read_proc_number("/proc/sys/fs/mqueue/msgsize_max");
				if (msg_max > 0 && depth > msg_max) {
					if (!raised_depth) {
						raised_depth = true;
						if (write_proc_number_restored("/proc/sys/fs/mqueue/msg_max",
									       depth)) {
							add_note("raised fs.mqueue.msg_max");
							continue;
						}
					}
					depth = static_cast<long>(msg_max);
					add_note("depth capped at fs.mqueue.msg_max");
					continue;
				}
				if (size_max > 0 && static_cast<long long>(cfg.msg_size) > size_max) {
					if (!raised_size) {
						raised_size = true;
						if (write_proc_number_restored(
							    "/proc/sys/fs/mqueue/msgsize_max",
							    static_cast<long long>(cfg.msg_size))) {
							add_note("raised fs.mqueue.msgsize_max");
							continue;
						}
					}
					throw Skip("message larger than fs.mqueue.msgsize_max (" +
						   std::to_string(size_max) + ") and it cannot be raised");
				}
				errno = e;
				fail_errno("mq_open " + name);
			}
			if (e == EMFILE) { // the queue's memory exceeds RLIMIT_MSGQUEUE
				struct rlimit rl = {};
				(void)::getrlimit(RLIMIT_MSGQUEUE, &rl);
				if (depth > 1) {
					depth /= 2;
					if (note.find("RLIMIT") == std::string::npos)
						add_note("depth limited by RLIMIT_MSGQUEUE");
					continue;
				}
				throw Skip("RLIMIT_MSGQUEUE (" + std::to_string(rl.rlim_cur) +
					   " bytes) is too small for one message");
			}
			errno = e;
			fail_errno("mq_open " + name);
		}
		::mq_unlink(name.c_str());
		buffer = static_cast<size_t>(depth) * cfg.msg_size;
		add_note("depth " + std::to_string(depth));
	}
	~MqChannel() override
	{
		if (q_ != static_cast<mqd_t>(-1))
			::mq_close(q_);
	}
	std::unique_ptr<Tx> open_tx() override
	{
		return std::make_unique<MqTx>(std::exchange(q_, static_cast<mqd_t>(-1)), cfg_.msg_size);
	}
	std::unique_ptr<Rx> open_rx() override
	{
		return std::make_unique<MqRx>(std::exchange(q_, static_cast<mqd_t>(-1)), cfg_.msg_size);
	}

private:
	void add_note(const std::string &s) { note += (note.empty() ? "" : "; ") + s; }
	void raise_rlimit(long depth)
	{
		// The kernel charges each queue about depth * (msgsize + a
		// pointer); ask for twice that (ping-pong opens two queues).
		const rlim_t want = static_cast<rlim_t>(depth) * (cfg_.msg_size + 64) * 4;
		struct rlimit rl;
		if (::getrlimit(RLIMIT_MSGQUEUE, &rl) == 0 && rl.rlim_cur < want) {
			rl.rlim_cur = want;
			if (rl.rlim_max < want)
				rl.rlim_max = want; // needs CAP_SYS_RESOURCE
			(void)::setrlimit(RLIMIT_MSGQUEUE, &rl);
		}
	}
	ChannelConfig cfg_;
	mqd_t q_ = static_cast<mqd_t>(-1);
};

class MqMechanism final : public Mechanism {
public:
	const char *name() const override { return "posix-mq"; }
	const char *describe() const override
	{
		return "POSIX message queue; mq_send/mq_receive per message (no batch API)";
	}
	bool applies(Workload) const override { return true; } // any number of senders
	std::unique_ptr<Channel> make_channel(const ChannelConfig &cfg) override
	{
		return std::make_unique<MqChannel>(cfg);
	}
};

const Registration reg(130, "posix-mq", [] { return std::unique_ptr<Mechanism>(new MqMechanism); });

} // namespace

} // namespace shmq_bench

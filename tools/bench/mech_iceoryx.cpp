// SPDX-License-Identifier: MIT
// Eclipse iceoryx 2.0.3 (Debian package iceoryx, libiceoryx-posh-dev):
// zero-copy publish/subscribe through shared memory managed by the RouDi
// daemon.
//
// What a user writes: an UntypedPublisher that loan()s a chunk of exactly the
// message size from RouDi's mempools, fills it in place and publish()es it; an
// UntypedSubscriber that take()s the chunk, reads it in place and release()s
// it, sleeping in a WaitSet (attached to SubscriberState::HAS_DATA) while its
// queue is empty. Lossless and bounded like every other mechanism here: the
// publisher uses ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER and the subscriber
// QueueFullPolicy::BLOCK_PRODUCER (the defaults, DISCARD_OLDEST_DATA, would
// drop messages: a fast wrong answer that the verification would fail).
//
// What iceoryx 2.0.3 makes impossible or different, exactly:
// - A publisher blocked by a full subscriber queue does not sleep: 2.0.3's
//   ChunkDistributor::deliverToAllStoredQueues busy-waits with
//   std::this_thread::yield() until the queue has room (only the subscriber
//   side has a blocking wait). The stream rows therefore burn the sender's
//   CPU whenever the receiver is the slower side.
// - Subscriber queues hold at most 256 chunks (MAX_SUBSCRIBER_QUEUE_CAPACITY,
//   a build constant of the Debian package): depth = min(capacity / size,
//   256, what the mempool allows); the note says when it was capped.
// - No batch publication: every publish() pushes to the subscriber queue and
//   posts the WaitSet's semaphore (glibc sem_post enters the kernel only when
//   the subscriber sleeps); the batch workload runs like the stream one.
// - There is one RouDi per machine (fixed names: /tmp/roudi,
//   /tmp/iox-unique-roudi.lock, /dev/shm/iceoryx_mgmt; 2.0 has no domain id):
//   when another RouDi is already running the iceoryx rows are skipped rather
//   than run against a configuration that may not fit 1 MiB chunks.
// - Chunks come from fixed mempools sized when RouDi starts: messages larger
//   than the largest pool (1 MiB of payload here) are skipped.
// - The runtime must be created after fork(), once per process
//   (PoshRuntime::initRuntime), so the children register with RouDi
//   themselves; subscriptions are connected by RouDi's discovery loop (every
//   100 ms), so the sender waits until its publisher has the subscriber
//   before the run starts (untimed). Children leave with _exit() without
//   deregistering; RouDi's process monitoring removes them (1.5 s later).
// - RouDi 2.0.3 aborts at shutdown (an assertion on
//   POSH__ROUDI_PROCESS_SHUTDOWN_FAILED) when a process it still has
//   registered is already gone (kill() fails with ESRCH), leaving its
//   segments and sockets behind. So shmq-bench waits (at most 5 s) until the
//   RouDi log (level debug) shows every registered child removed before it
//   sends SIGTERM, and removes what RouDi may have left in any case.
//
// Fan-in: one publisher per producer child on the same service, one
// subscriber (iceoryx 2.0.3 is built ManyToManyPolicy: n publishers per
// service). The subscriber's one queue (at most 256 chunks) is shared by
// them all; each publisher waits until it has the subscriber.
//
// RouDi: started by shmq-bench itself on the first iceoryx run and stopped
// (SIGTERM, then SIGKILL after 15 s) when shmq-bench exits, with a config
// generated into a temporary directory (mempools of 128 B .. 1 MiB payload;
// /dev/shm/iceoryx_mgmt 63 MiB + /dev/shm/<group> 68 MiB, zeroed at start)
// and its log next to it; the directory, the sockets of the children's runtimes and anything RouDi
// left in /dev/shm and /tmp are removed afterwards. iox-roudi is looked up in
// $SHMQ_BENCH_IOX_ROUDI, then $PATH, then /usr/bin.
#if !__has_include(<iceoryx_posh/runtime/posh_runtime.hpp>)
#error "iceoryx 2.0 headers missing (Debian libiceoryx-posh-dev): run tools/install-deps.sh"
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iceoryx_hoofs/log/logmanager.hpp>
#include <iceoryx_posh/iceoryx_posh_types.hpp>
#include <iceoryx_posh/mepoo/chunk_header.hpp>
#include <iceoryx_posh/popo/untyped_publisher.hpp>
#include <iceoryx_posh/popo/untyped_subscriber.hpp>
#include <iceoryx_posh/popo/wait_set.hpp>
#include <iceoryx_posh/runtime/posh_runtime.hpp>

#include "bench.hpp"

namespace shmq_bench {

namespace {

// Mempools of the generated RouDi config: payload bytes, chunks. Every cell
// uses at most two channels of one pool; a channel holds at most its queue
// depth + 8 loaned (MAX_CHUNKS_ALLOCATED_PER_PUBLISHER_SIMULTANEOUSLY) + 1
// taken chunks.
struct Pool {
	uint32_t size, count;
};
constexpr Pool kPools[] = {
	{128, 2048}, {1024, 2048}, {16 << 10, 600}, {64 << 10, 100}, {256 << 10, 40}, {1 << 20, 40},
};
constexpr uint32_t kPerChannelExtra = iox::MAX_CHUNKS_ALLOCATED_PER_PUBLISHER_SIMULTANEOUSLY + 2;
constexpr double kRoudiStartTimeout = 120; // s; it zeroes its segments (slow under TCG)
constexpr double kConnectTimeout = 30;	  // s; publisher waiting for its subscriber

std::string runtime_prefix(pid_t bench) { return "shmq-bench-iox-" + std::to_string(bench) + "-"; }

// The runtime name is also the name of the child's socket in /tmp.
pid_t g_bench_pid = 0; // the parent's pid, set before the children fork

void init_runtime_once()
{
	static bool done = false;
	if (done)
		return;
	done = true;
	iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kWarn,
							    iox::log::LogLevelOutput::kHideLogLevel);
	const std::string name = runtime_prefix(g_bench_pid) + std::to_string(::getpid());
	iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name));
}

iox::capro::ServiceDescription service(const std::string &tag)
{
	using iox::capro::IdString_t;
	return {IdString_t(iox::cxx::TruncateToCapacity, "shmq-bench"),
		IdString_t(iox::cxx::TruncateToCapacity, tag.c_str()),
		IdString_t(iox::cxx::TruncateToCapacity, "message")};
}

class IoxTx final : public Tx {
public:
	explicit IoxTx(const std::string &tag)
	{
		init_runtime_once();
		iox::popo::PublisherOptions o;
		o.historyCapacity = 0;
		o.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
		pub_.emplace(service(tag), o);
		// RouDi connects the subscriber in its discovery loop.
		const uint64_t t0 = now_ns();
		while (!pub_->hasSubscribers()) {
			if (now_ns() - t0 > uint64_t(kConnectTimeout * 1e9))
				throw Failure("iceoryx: no subscriber connected to the publisher after " +
					      std::to_string(int(kConnectTimeout)) + " s");
			std::this_thread::sleep_for(std::chrono::milliseconds(1));
		}
	}
	~IoxTx() override
	{
		if (chunk_)
			pub_->release(chunk_);
	}
	std::byte *begin(size_t n) override
	{
		auto r = pub_->loan(static_cast<uint32_t>(n));
		if (r.has_error())
			throw Failure("iceoryx loan of " + std::to_string(n) + " bytes failed (AllocationError " +
				      std::to_string(static_cast<int>(r.get_error())) + ")");
		chunk_ = r.value();
		return static_cast<std::byte *>(chunk_);
	}
	void commit(size_t, bool) override
	{
		pub_->publish(chunk_); // may spin (yield) while the queue is full
		chunk_ = nullptr;
	}

private:
	std::optional<iox::popo::UntypedPublisher> pub_;
	void *chunk_ = nullptr;
};

class IoxRx final : public Rx {
public:
	IoxRx(const std::string &tag, uint64_t depth)
	{
		init_runtime_once();
		iox::popo::SubscriberOptions o;
		o.queueCapacity = depth;
		o.historyRequest = 0;
		o.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
		sub_.emplace(service(tag), o);
		ws_.emplace();
		if (ws_->attachState(*sub_, iox::popo::SubscriberState::HAS_DATA).has_error())
			throw Failure("iceoryx: WaitSet attachState failed");
	}
	~IoxRx() override
	{
		if (chunk_)
			sub_->release(chunk_);
		ws_.reset(); // detaches from the subscriber: before it goes
	}
	std::span<const std::byte> receive() override
	{
		for (;;) {
			auto r = sub_->take();
			if (!r.has_error()) {
				chunk_ = r.value();
				const auto *h = iox::mepoo::ChunkHeader::fromUserPayload(chunk_);
				return {static_cast<const std::byte *>(chunk_), h->userPayloadSize()};
			}
			if (r.get_error() != iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE)
				throw Failure("iceoryx take: too many chunks held");
			(void)ws_->wait();
		}
	}
	void release() override
	{
		sub_->release(chunk_);
		chunk_ = nullptr;
	}

private:
	std::optional<iox::popo::UntypedSubscriber> sub_;
	std::optional<iox::popo::WaitSet<>> ws_;
	const void *chunk_ = nullptr;
};

class IoxChannel final : public Channel {
public:
	IoxChannel(const ChannelConfig &cfg, const Pool &pool) : tag_(cfg.tag)
	{
		// Two channels, or one with a publisher per producer.
		const uint64_t by_pool = (pool.count - 2 * kPerChannelExtra * cfg.producers) / 2;
		const uint64_t want = std::max<uint64_t>(1, cfg.capacity / cfg.msg_size);
		depth_ = std::min<uint64_t>({want, iox::MAX_SUBSCRIBER_QUEUE_CAPACITY, by_pool});
		buffer = depth_ * cfg.msg_size;
		note = "queue " + std::to_string(depth_);
		if (depth_ < want)
			note += depth_ == iox::MAX_SUBSCRIBER_QUEUE_CAPACITY
					? " (capped: iceoryx MAX_SUBSCRIBER_QUEUE_CAPACITY)"
					: " (capped by the mempool)";
		note += "; pool " + std::to_string(pool.size) + " B";
	}
	std::unique_ptr<Tx> open_tx() override { return std::make_unique<IoxTx>(tag_); }
	std::unique_ptr<Rx> open_rx() override { return std::make_unique<IoxRx>(tag_, depth_); }

private:
	std::string tag_;
	uint64_t depth_;
};

// ---------------------------------------------------------------------------
// RouDi, owned by the parent process

std::string find_roudi()
{
	if (const char *e = std::getenv("SHMQ_BENCH_IOX_ROUDI"); e && *e)
		return ::access(e, X_OK) == 0 ? e : "";
	std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
	path += ":/usr/bin:/bin";
	std::stringstream ss(path);
	for (std::string dir; std::getline(ss, dir, ':');) {
		if (dir.empty())
			continue;
		const std::string f = dir + "/iox-roudi";
		if (::access(f.c_str(), X_OK) == 0)
			return f;
	}
	return "";
}

std::string tail_of(const std::string &file, size_t max = 600)
{
	std::ifstream in(file);
	std::stringstream ss;
	ss << in.rdbuf();
	std::string s = ss.str();
	if (s.size() > max)
		s = "..." + s.substr(s.size() - max);
	for (char &c : s)
		if (c == '\n')
			c = '|';
	return s;
}

bool file_contains(const std::string &file, const char *what)
{
	std::ifstream in(file);
	for (std::string line; std::getline(in, line);)
		if (line.find(what) != std::string::npos)
			return true;
	return false;
}

void remove_if_exists(const std::string &p) { (void)::unlink(p.c_str()); }

class Roudi {
public:
	~Roudi() { stop(); }

	// Starts RouDi once; throws Skip/Failure (remembered for later cells).
	void ensure(const std::string &bin)
	{
		if (pid_ > 0)
			return;
		if (!error_.empty()) {
			if (error_skip_)
				throw Skip(error_);
			throw Failure(error_);
		}
		try {
			start(bin);
		} catch (const Skip &e) {
			error_ = e.what();
			error_skip_ = true;
			throw;
		} catch (const std::exception &e) {
			error_ = e.what();
			throw;
		}
	}

	void stop()
	{
		if (pid_ > 0) {
			// Let RouDi's monitoring remove the exited children first
			// (1.5 s after their last heartbeat): see the top comment.
			const uint64_t t0 = now_ns();
			while (count_in_log("Registered new application") > count_in_log("--> removing it") &&
			       now_ns() - t0 < 5'000'000'000ULL)
				::usleep(50000);
			::kill(pid_, SIGTERM);
			int st = 0;
			bool gone = false;
			for (int i = 0; i < 1500 && !gone; ++i) {
				gone = ::waitpid(pid_, &st, WNOHANG) == pid_;
				if (!gone)
					::usleep(10000);
			}
			if (!gone) {
				::kill(pid_, SIGKILL);
				::waitpid(pid_, &st, 0);
			}
			if (!gone || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
				std::fprintf(stderr, "shmq-bench: iox-roudi did not stop cleanly (%s); its files "
						     "were removed. Log: %s\n",
					     !gone ? "killed after 15 s" : "abnormal exit", tail_of(log_, 300).c_str());
			pid_ = -1;
			cleanup_after(::getpid());
		}
		if (!dir_.empty()) {
			remove_if_exists(dir_ + "/roudi.toml");
			remove_if_exists(log_);
			::rmdir(dir_.c_str());
			dir_.clear();
		}
	}

private:
	static constexpr const char *kLock = "/tmp/iox-unique-roudi.lock";

	void start(const std::string &bin)
	{
		// One RouDi per machine: its lock file is flock()ed while it runs.
		const int lk = ::open(kLock, O_RDONLY | O_CLOEXEC);
		if (lk >= 0) {
			const bool busy = ::flock(lk, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
			::close(lk);
			if (busy)
				throw Skip("another RouDi is running (iceoryx 2.0 allows one per machine)");
		}
		// No RouDi runs: sockets of earlier runtimes named like ours are
		// stale (a shmq-bench killed with SIGKILL leaves them).
		cleanup_after(0);
		char tmpl[] = "/tmp/shmq-bench-iox-XXXXXX";
		if (!::mkdtemp(tmpl))
			fail_errno("mkdtemp");
		dir_ = tmpl;
		log_ = dir_ + "/roudi.log";
		const std::string conf = dir_ + "/roudi.toml";
		{
			std::ofstream f(conf);
			f << "# generated by shmq-bench for its iceoryx rows\n[general]\nversion = 1\n\n"
			     "[[segment]]\n";
			for (const Pool &p : kPools)
				f << "\n[[segment.mempool]]\nsize = " << p.size << "\ncount = " << p.count << "\n";
			if (!f.good())
				throw Failure("cannot write " + conf);
		}
		const int logfd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (logfd < 0)
			fail_errno("open " + log_);
		std::fflush(nullptr);
		const pid_t parent = ::getpid();
		const pid_t pid = ::fork();
		if (pid < 0) {
			::close(logfd);
			fail_errno("fork");
		}
		if (pid == 0) {
			// Its own process group (a terminal ^C goes to shmq-bench,
			// which stops it cleanly), gone with shmq-bench, and none of
			// the signals shmq-bench blocks stay blocked across exec.
			::setpgid(0, 0);
			::prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (::getppid() != parent)
				::_exit(127);
			sigset_t none;
			sigemptyset(&none);
			::sigprocmask(SIG_SETMASK, &none, nullptr);
			struct rlimit no_core = {0, 0}; // it may abort (see stop())
			::setrlimit(RLIMIT_CORE, &no_core);
			::dup2(logfd, 1);
			::dup2(logfd, 2);
			const int devnull = ::open("/dev/null", O_RDONLY);
			if (devnull >= 0)
				::dup2(devnull, 0);
			::execl(bin.c_str(), bin.c_str(), "-c", conf.c_str(), "-l", "debug", "-m", "on",
				"-k", "2", static_cast<char *>(nullptr));
			std::fprintf(stderr, "exec %s: %s\n", bin.c_str(), std::strerror(errno));
			::_exit(127);
		}
		::close(logfd);
		pid_ = pid;
		const uint64_t t0 = now_ns();
		for (;;) {
			if (file_contains(log_, "RouDi is ready for clients"))
				break;
			int st = 0;
			if (::waitpid(pid_, &st, WNOHANG) == pid_) {
				pid_ = -1;
				cleanup_after(::getpid());
				throw Failure("iox-roudi exited at start (" + tail_of(log_) + ")");
			}
			if (now_ns() - t0 > uint64_t(kRoudiStartTimeout * 1e9)) {
				stop();
				throw Failure("iox-roudi not ready after " +
					      std::to_string(int(kRoudiStartTimeout)) + " s");
			}
			::usleep(5000);
		}
	}

	// What a stopped (or killed) RouDi and the exited children leave: the
	// sockets and locks of the runtimes of shmq-bench @bench (0: of any).
	static void cleanup_after(pid_t bench)
	{
		remove_if_exists("/tmp/roudi");
		remove_if_exists("/tmp/roudi.lock");
		remove_if_exists(kLock);
		remove_if_exists("/dev/shm/iceoryx_mgmt");
		if (const struct group *g = ::getgrgid(::getegid()))
			remove_if_exists(std::string("/dev/shm/") + g->gr_name);
		const std::string prefix = bench ? runtime_prefix(bench) : "shmq-bench-iox-";
		if (DIR *d = ::opendir("/tmp")) {
			while (const struct dirent *e = ::readdir(d)) {
				const std::string_view n(e->d_name);
				if (!n.starts_with(prefix))
					continue;
				// <prefix><pid>[-<pid>][.lock]: never our temp dirs
				const auto rest = n.substr(prefix.size());
				if (!rest.empty() && rest.find_first_not_of("0123456789-.lock") == rest.npos)
					remove_if_exists(std::string("/tmp/") + e->d_name);
			}
			::closedir(d);
		}
	}

	int count_in_log(const char *what) const
	{
		std::ifstream in(log_);
		int n = 0;
		for (std::string line; std::getline(in, line);)
			n += line.find(what) != std::string::npos;
		return n;
	}

	pid_t pid_ = -1;
	std::string dir_, log_, error_;
	bool error_skip_ = false;
};

class IoxMechanism final : public Mechanism {
public:
	const char *name() const override { return "iceoryx"; }
	const char *describe() const override
	{
		return "iceoryx 2.0 publish/subscribe: loan/publish, take/release in RouDi's "
		       "mempools (zero-copy), WaitSet wait; RouDi started by shmq-bench";
	}
	std::string unavailable() override
	{
		bin_ = find_roudi();
		return bin_.empty() ? "iox-roudi not found (package iceoryx; or SHMQ_BENCH_IOX_ROUDI)" : "";
	}
	bool applies(Workload) const override { return true; } // fan-in: n publishers
	std::unique_ptr<Channel> make_channel(const ChannelConfig &cfg) override
	{
		const Pool *pool = nullptr;
		for (const Pool &p : kPools)
			if (!pool && cfg.msg_size <= p.size)
				pool = &p;
		if (!pool)
			throw Skip("message larger than the largest mempool (" +
				   std::to_string(kPools[std::size(kPools) - 1].size) + " bytes)");
		g_bench_pid = ::getpid();
		roudi_.ensure(bin_);
		return std::make_unique<IoxChannel>(cfg, *pool);
	}

private:
	std::string bin_;
	Roudi roudi_;
};

const Registration reg(240, "iceoryx", [] { return std::unique_ptr<Mechanism>(new IoxMechanism); });

} // namespace

} // namespace shmq_bench

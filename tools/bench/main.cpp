// SPDX-License-Identifier: MIT
// shmq-bench: compare shmq with other ways of moving messages between two
// processes on one machine, under identical workloads, and verify every
// message (sequence number, length, checksum, every payload byte).
//
// For every workload x size x mechanism ("cell") the parent builds the
// channels, forks two children (pinned to two different CPUs when there are
// two; fan-in: --producers senders, all pinned to the first CPU, and the
// receiver on the second), lets them run the workload, and collects their
// results through a shared page. A watchdog kills both children when one fails or the cell
// overruns its time limit. Children never return into the parent's code:
// they leave with _exit().
#include "../cli_parse.hpp"
#include "../cli_version.hpp"
#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <getopt.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.hpp"

namespace shmq_bench {

namespace {

const char kUsage[] =
	"usage: shmq-bench [options]\n"
	"Measures message passing between two processes (fork) on this machine with\n"
	"identical workloads for every mechanism, and verifies every message.\n"
	"\n"
	"  --quick              smoke run: tiny counts, every mechanism (a few seconds)\n"
	"  --duration SEC       timed part of every run (default 0.3)\n"
	"  --count N            N messages (round trips) per run instead of a duration\n"
	"  --mechanisms LIST    comma-separated names, 'all' (default), or a prefix\n"
	"                       ending in '*' (shmq*); see --list\n"
	"  --workloads LIST     pingpong,stream,batch,fanin (default: all four); fanin:\n"
	"                       --producers senders stream into one receiver, each\n"
	"                       producer's messages checked in its own order\n"
	"  --producers N        senders of the fanin workload (2..8, default 4)\n"
	"  --sizes LIST         message sizes incl. the 32-byte header, K/M suffixes\n"
	"                       (default 64,1K,64K,1M)\n"
	"  --batch N            messages per wake-up in the batch workload (default 16)\n"
	"  --capacity BYTES     buffer of every mechanism (default: max(1M, 4 x message),\n"
	"                       rounded up to a power of two)\n"
	"  --spin N             OpenOptions::spin of the shmq-*-spin variants (default 1000)\n"
	"  --ref LIST           mechanisms the others are compared with (default\n"
	"                       shmq-copy,shmq-zc)\n"
	"  --json FILE          write all rows as JSON\n"
	"  --csv FILE           write all rows as CSV\n"
	"  --timeout SEC        kill a run after this long (default 30 + 4 x duration)\n"
	"  --repeat N           run every cell N times, report the median run, and every\n"
	"                       run's figure with their min and max (default 1)\n"
	"  --no-pin             do not pin the two processes to different CPUs\n"
	"  --inject KIND        test the verification: 'corrupt' flips a payload byte,\n"
	"                       'drop' skips a message; every run must then fail\n"
	"  --list               list the mechanisms and whether they can run here\n"
	"  --version            versions of shmq-bench, libshmq and the loaded module\n"
	"Options take --opt VALUE or --opt=VALUE; '--' ends them.\n"
	"Exit status: 0 every run verified, 1 a run failed (error or wrong data),\n"
	"2 usage error, 130 interrupted.\n";

struct Options {
	bool quick = false;
	double duration = 0.3;
	uint64_t count = 0;
	std::vector<std::string> mechanisms;
	std::vector<Workload> workloads = {Workload::PingPong, Workload::Stream, Workload::Batch,
					   Workload::FanIn};
	unsigned producers = 4;
	std::vector<size_t> sizes = {64, 1 << 10, 64 << 10, 1 << 20};
	unsigned batch = 16;
	size_t capacity = 0;
	uint32_t spin = 1000;
	std::vector<std::string> refs = {"shmq-copy", "shmq-zc"};
	std::string json, csv;
	double timeout = 0;
	bool pin = true;
	bool list = false;
	unsigned repeat = 1;
	int inject = 0;
};

[[noreturn]] void usage_error(const std::string &why)
{
	std::fprintf(stderr, "shmq-bench: %s (see 'shmq-bench --help')\n", why.c_str());
	std::exit(2);
}

std::vector<std::string> split(std::string_view s)
{
	std::vector<std::string> out;
	size_t start = 0;
	while (start <= s.size()) {
		const size_t comma = s.find(',', start);
		const size_t end = comma == std::string_view::npos ? s.size() : comma;
		if (end > start)
			out.emplace_back(s.substr(start, end - start));
		if (comma == std::string_view::npos)
			break;
		start = comma + 1;
	}
	return out;
}

using shmq::cli::parse_size;
using shmq::cli::parse_u64;

std::optional<double> parse_double(std::string_view s)
{
	std::string t(s);
	char *end = nullptr;
	errno = 0;
	const double v = std::strtod(t.c_str(), &end);
	if (t.empty() || errno || *end || !(v > 0) || !std::isfinite(v))
		return std::nullopt;
	return v;
}

Options parse(int argc, char **argv)
{
	Options o;
	// getopt_long: --opt VALUE or --opt=VALUE, unique abbreviations, '--'
	// ends the options (shmq-bench takes no other arguments).
	static const char *const kValued[] = {"duration", "count",    "mechanisms", "workloads", "sizes",
					      "batch",	  "capacity", "spin",	    "repeat",	 "inject",
					      "ref",	  "json",     "csv",	    "timeout",	 "producers"};
	static const char *const kFlags[] = {"quick", "no-pin", "list", "help", "version"};
	std::vector<struct option> lo;
	for (const char *n : kValued)
		lo.push_back({n, required_argument, nullptr, 0x100 + static_cast<int>(lo.size())});
	for (const char *n : kFlags)
		lo.push_back({n, no_argument, nullptr, 0x100 + static_cast<int>(lo.size())});
	lo.push_back({nullptr, 0, nullptr, 0});
	opterr = 0;
	for (int c; (c = getopt_long(argc, argv, "+:h", lo.data(), nullptr)) != -1;) {
		if (c == '?') {
			std::string w = optopt ? std::string("-") + char(optopt) : std::string(argv[optind - 1]);
			usage_error("unknown option '" + w.substr(0, w.find('=')) + "'");
		}
		if (c == ':')
			usage_error("option '--" + std::string(lo[size_t(optopt - 0x100)].name) + "' needs a value");
		const std::string_view opt = c == 'h' ? "help" : lo[size_t(c - 0x100)].name;
		const std::optional<std::string_view> given =
			optarg && c != 'h' && lo[size_t(c - 0x100)].has_arg ? std::optional<std::string_view>(optarg)
									       : std::nullopt;
		if (opt == "help") {
			std::fputs(kUsage, stdout);
			std::exit(0);
		}
		if (opt == "version") {
			shmq::cli::print_version("shmq-bench");
			std::exit(0);
		}
		auto value = [&](std::string_view name) -> std::optional<std::string_view> {
			return opt == name.substr(2) ? given : std::nullopt;
		};
		auto bad = [&](std::string_view what) {
			usage_error("bad " + std::string(what) + " '" + std::string(given.value_or("")) + "'");
		};
		if (opt == "quick")
			o.quick = true;
		else if (opt == "no-pin")
			o.pin = false;
		else if (opt == "list")
			o.list = true;
		else if (auto v = value("--duration")) {
			auto d = parse_double(*v);
			if (!d)
				bad("--duration");
			o.duration = *d;
		} else if (auto v = value("--count")) {
			auto n = parse_u64(*v);
			if (!n || *n == 0)
				bad("--count");
			o.count = *n;
		} else if (auto v = value("--mechanisms"))
			o.mechanisms = split(*v);
		else if (auto v = value("--workloads")) {
			o.workloads.clear();
			for (auto &w : split(*v)) {
				if (w == "pingpong")
					o.workloads.push_back(Workload::PingPong);
				else if (w == "stream")
					o.workloads.push_back(Workload::Stream);
				else if (w == "batch")
					o.workloads.push_back(Workload::Batch);
				else if (w == "fanin")
					o.workloads.push_back(Workload::FanIn);
				else
					usage_error("unknown workload '" + w + "' (pingpong, stream, batch, fanin)");
			}
		} else if (auto v = value("--sizes")) {
			o.sizes.clear();
			for (auto &s : split(*v)) {
				auto n = parse_size(s);
				if (!n || *n < kMinMessage || *n > (64u << 20))
					usage_error("bad size '" + s + "' (32 bytes .. 64M)");
				o.sizes.push_back(*n);
			}
		} else if (auto v = value("--batch")) {
			auto n = parse_u64(*v);
			if (!n || *n == 0 || *n > 4096)
				bad("--batch");
			o.batch = static_cast<unsigned>(*n);
		} else if (auto v = value("--capacity")) {
			auto n = parse_size(*v);
			if (!n || *n < 4096 || *n > (1ull << 30))
				bad("--capacity");
			o.capacity = std::bit_ceil(*n);
		} else if (auto v = value("--spin")) {
			auto n = parse_u64(*v);
			if (!n || *n > UINT32_MAX)
				bad("--spin");
			o.spin = static_cast<uint32_t>(*n);
		} else if (auto v = value("--producers")) {
			auto n = parse_u64(*v);
			if (!n || *n < 2 || *n > kMaxProducers)
				bad("--producers");
			o.producers = static_cast<unsigned>(*n);
		} else if (auto v = value("--repeat")) {
			auto n = parse_u64(*v);
			if (!n || *n == 0 || *n > 100)
				bad("--repeat");
			o.repeat = static_cast<unsigned>(*n);
		} else if (auto v = value("--inject")) {
			if (*v == "corrupt")
				o.inject = 1;
			else if (*v == "drop")
				o.inject = 2;
			else
				bad("--inject");
		} else if (auto v = value("--ref"))
			o.refs = split(*v);
		else if (auto v = value("--json"))
			o.json = *v;
		else if (auto v = value("--csv"))
			o.csv = *v;
		else if (auto v = value("--timeout")) {
			auto d = parse_double(*v);
			if (!d)
				bad("--timeout");
			o.timeout = *d;
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '" + std::string(argv[optind]) + "'");
	if (o.sizes.empty() || o.workloads.empty())
		usage_error("nothing to measure");
	if (o.timeout == 0)
		o.timeout = 30 + 4 * o.duration;
	return o;
}

// ---------------------------------------------------------------------------
// Geometry and counts

size_t capacity_for(size_t size, const Options &o)
{
	if (o.capacity)
		return o.capacity;
	return std::max<size_t>(1 << 20, std::bit_ceil(4 * (size + 8) + 64));
}

Limits limits_for(Workload w, size_t size, size_t capacity, const Options &o)
{
	Limits l;
	l.duration_s = o.duration;
	l.count = o.count;
	l.inject = o.inject;
	if (o.quick) {
		const uint64_t cap = w == Workload::PingPong ? 100 : 200;
		l.count = o.count ? o.count : std::clamp<uint64_t>((8u << 20) / size, 16, cap);
		l.warmup = 4;
		return l;
	}
	if (w == Workload::PingPong)
		l.warmup = std::clamp<uint64_t>((32u << 20) / size, 4, 200);
	else // enough to touch every page of the buffer once
		l.warmup = std::clamp<uint64_t>(capacity / (size + 8) + 1, 4, 20000);
	return l;
}

// Fan-in: the limits of each of the @producers senders (their shares of
// the count and of the warm-up; every one runs for the whole duration).
Limits fanin_share(Limits l, unsigned producers)
{
	if (l.count)
		l.count = std::max<uint64_t>(1, l.count / producers);
	l.warmup = std::max<uint64_t>(std::min<uint64_t>(l.warmup, 4), l.warmup / producers);
	return l;
}

// ---------------------------------------------------------------------------
// The two children

// Children of a cell: two, or the fan-in's producers and its receiver.
constexpr unsigned kMaxChildren = kMaxProducers + 1;

struct Shared {
	std::atomic<uint32_t> ready;
	std::atomic<uint32_t> warm_done;
	uint32_t children; // set before the fork
	uint64_t t_start, t_end, messages;
	double median_ns, p99_ns, mean_ns, min_ns;
	char err[kMaxChildren][512];
};

void barrier(Shared *sh)
{
	sh->ready.fetch_add(1);
	while (sh->ready.load() < sh->children)
		::sched_yield();
}

void send_one(Tx &tx, size_t n, uint64_t seq, uint32_t flags, bool more)
{
	std::byte *p = tx.begin(n);
	fill_message(p, n, seq, flags);
	tx.commit(n, more);
}

// --inject: make the receiver see a wrong message where it expects @seq
// (numbered seq | tag).
void inject(Tx &tx, size_t n, uint64_t &seq, int kind, uint64_t tag = 0)
{
	if (kind == 2) { // drop: the receiver sees seq + 1 instead
		++seq;
		return;
	}
	std::byte *p = tx.begin(n);
	fill_message(p, n, seq | tag, 0);
	p[n - 1] ^= std::byte{0x40};
	tx.commit(n, false);
	++seq;
}

// Which sender of a channel: fan-in's producer @index numbers its messages
// seq | producer_tag(index) and leaves the start time to the receiver.
struct SenderRole {
	unsigned index = 0;
	bool fan_in = false;
};

// Stream, batch and fan-in: a sender (lim: its own share of the messages).
void stream_sender(Channel &ch, const ChannelConfig &cfg, const Limits &lim, Shared *sh,
		   SenderRole role = {})
{
	auto tx = role.fan_in ? ch.open_producer(role.index) : ch.open_tx();
	barrier(sh);
	const size_t n = cfg.msg_size;
	const uint64_t tag = role.fan_in ? producer_tag(role.index) : 0;
	uint64_t seq = 0;
	for (; seq < lim.warmup; ++seq)
		send_one(*tx, n, seq | tag, 0, false);
	while (sh->warm_done.load(std::memory_order_acquire) == 0)
		::sched_yield();
	const uint64_t t0 = now_ns();
	if (!role.fan_in)
		sh->t_start = t0;
	const unsigned b = cfg.batch;
	const uint64_t end = lim.count ? lim.warmup + lim.count : UINT64_MAX;
	// Look at the clock every few hundred bytes' worth of work at least.
	const uint64_t check = n >= 4096 ? 1 : std::max<uint64_t>(1, 16 / b);
	const uint64_t limit_ns = static_cast<uint64_t>(lim.duration_s * 1e9);
	for (uint64_t nb = 0;; ++nb) {
		const bool final_batch =
			!lim.count && nb % check == 0 && now_ns() - t0 >= limit_ns;
		for (unsigned j = 0; j < b; ++j) {
			const bool last = lim.count ? seq + 1 == end : final_batch && j + 1 == b;
			if (lim.inject && seq == lim.warmup + 1 && role.index == 0)
				inject(*tx, n, seq, lim.inject, tag);
			send_one(*tx, n, seq | tag, last ? kFlagLast : 0, j + 1 < b && !last);
			++seq;
			if (last)
				return;
		}
	}
}

void stream_receiver(Channel &ch, const ChannelConfig &cfg, const Limits &lim, Shared *sh)
{
	auto rx = ch.open_rx();
	barrier(sh);
	const size_t n = cfg.msg_size;
	uint64_t seq = 0;
	for (; seq < lim.warmup; ++seq) {
		(void)check_message(rx->receive(), n, seq);
		rx->release();
	}
	sh->warm_done.store(1, std::memory_order_release);
	for (;;) {
		const uint32_t f = check_message(rx->receive(), n, seq);
		rx->release();
		++seq;
		if (f & kFlagLast)
			break;
	}
	sh->t_end = now_ns();
	sh->messages = seq - lim.warmup;
}

// Fan-in: the receiver of cfg.producers senders, each sending lim.warmup
// untimed messages first. Checks every message against the next sequence
// number of the producer it names; done when every producer sent its last.
void fanin_receiver(Channel &ch, const ChannelConfig &cfg, const Limits &lim, Shared *sh)
{
	auto rx = ch.open_rx();
	barrier(sh);
	const size_t n = cfg.msg_size;
	const unsigned np = cfg.producers;
	std::vector<uint64_t> next(np, 0);
	std::vector<bool> ended(np, false);
	unsigned left = np;
	uint64_t got = 0;
	const auto one = [&] {
		const auto m = rx->receive();
		if (m.size() < kMinMessage)
			throw Failure("fan-in: a message of " + std::to_string(m.size()) + " bytes");
		const unsigned p = producer_of(header_seq(m.data()));
		if (p >= np || ended[p])
			throw Failure("fan-in: a message from producer " + std::to_string(p) +
				      (p >= np ? " (there are " + std::to_string(np) + ")" : " after its last"));
		const uint32_t f = check_message(m, n, next[p] | producer_tag(p));
		rx->release();
		++next[p];
		++got;
		if (f & kFlagLast) {
			ended[p] = true;
			--left;
		}
	};
	const uint64_t warm = lim.warmup * np;
	while (got < warm)
		one();
	sh->t_start = now_ns();
	sh->warm_done.store(1, std::memory_order_release);
	while (left)
		one();
	sh->t_end = now_ns();
	sh->messages = got - warm;
}

// Ping-pong: the side that measures.
void pinger(Channel &ab, Channel &ba, const ChannelConfig &cfg, const Limits &lim, Shared *sh)
{
	auto tx = ab.open_tx();
	auto rx = ba.open_rx();
	barrier(sh);
	const size_t n = cfg.msg_size;
	std::vector<uint64_t> rtt;
	rtt.reserve(lim.count ? lim.count : 1 << 20);
	const uint64_t limit_ns = static_cast<uint64_t>(lim.duration_s * 1e9);
	uint64_t t0 = 0, a = now_ns();
	for (uint64_t seq = 0;; ++seq) {
		const bool timed = seq >= lim.warmup;
		if (seq == lim.warmup)
			t0 = sh->t_start = a;
		const bool last = lim.count ? seq + 1 == lim.warmup + lim.count
					    : timed && a - t0 >= limit_ns;
		if (lim.inject && seq == lim.warmup + 1) {
			uint64_t s2 = seq;
			inject(*tx, n, s2, lim.inject);
			if (lim.inject == 2)
				send_one(*tx, n, s2, 0, false);
		} else
			send_one(*tx, n, seq, last ? kFlagLast : 0, false);
		(void)check_message(rx->receive(), n, seq | kReplyBit);
		rx->release();
		const uint64_t b = now_ns();
		if (timed)
			rtt.push_back(b - a);
		a = b;
		if (last)
			break;
	}
	sh->t_end = a;
	sh->messages = rtt.size();
	std::sort(rtt.begin(), rtt.end());
	double sum = 0;
	for (uint64_t v : rtt)
		sum += double(v);
	const size_t k = rtt.size();
	sh->median_ns = double(rtt[k / 2]);
	sh->p99_ns = double(rtt[std::min(k - 1, static_cast<size_t>(std::ceil(0.99 * double(k))) - 1)]);
	sh->mean_ns = sum / double(k);
	sh->min_ns = double(rtt[0]);
}

void ponger(Channel &ab, Channel &ba, const ChannelConfig &cfg, Shared *sh)
{
	auto rx = ab.open_rx();
	auto tx = ba.open_tx();
	barrier(sh);
	const size_t n = cfg.msg_size;
	for (uint64_t seq = 0;; ++seq) {
		const uint32_t f = check_message(rx->receive(), n, seq);
		rx->release();
		send_one(*tx, n, seq | kReplyBit, f, false);
		if (f & kFlagLast)
			break;
	}
}

std::vector<int> usable_cpus()
{
	std::vector<int> cpus;
	cpu_set_t set;
	if (::sched_getaffinity(0, sizeof set, &set) == 0)
		for (int c = 0; c < CPU_SETSIZE; ++c)
			if (CPU_ISSET(c, &set))
				cpus.push_back(c);
	return cpus;
}

sigset_t g_sigs; // SIGCHLD, SIGINT, SIGTERM: blocked in the parent
bool g_interrupted = false;

[[noreturn]] void child(int role, int cpu, pid_t parent, Shared *sh, const std::function<void()> &body)
{
	::sigprocmask(SIG_UNBLOCK, &g_sigs, nullptr);
	::prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (::getppid() != parent)
		::_exit(1);
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		(void)::sched_setaffinity(0, sizeof set, &set);
	}
	int rc = 0;
	try {
		body();
	} catch (const std::exception &e) {
		std::snprintf(sh->err[role], sizeof sh->err[role], "%s", e.what());
		rc = 1;
	}
	::_exit(rc);
}

// Waits for the children; kills the others when one fails, all on timeout
// or interrupt. Returns an empty string when all exited with status 0.
std::string reap(const std::vector<pid_t> &pid, Shared *sh, double timeout_s,
		 const std::vector<std::string> &names)
{
	const size_t n = pid.size();
	const uint64_t deadline = now_ns() + static_cast<uint64_t>(timeout_s * 1e9);
	std::vector<bool> alive(n, true);
	std::string why;
	auto kill_all = [&] {
		for (size_t i = 0; i < n; ++i)
			if (alive[i])
				::kill(pid[i], SIGKILL);
	};
	const auto gone = [&](size_t i) { return std::strstr(sh->err[i], " has gone") != nullptr; };
	while (std::find(alive.begin(), alive.end(), true) != alive.end()) {
		for (size_t i = 0; i < n; ++i) {
			int st = 0;
			if (!alive[i] || ::waitpid(pid[i], &st, WNOHANG) != pid[i])
				continue;
			alive[i] = false;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
				continue;
			// A child that failed because its peer went away (EPIPE:
			// "... has gone") failed only in consequence of another's
			// failure: report the other's reason when there is one, so
			// that the cause does not depend on which exit is reaped first.
			if (sh->err[i][0] && gone(i))
				for (size_t j = 0; j < n && why.empty(); ++j)
					if (j != i && sh->err[j][0] && !gone(j))
						why = names[j] + ": " + sh->err[j];
			if (why.empty()) {
				const std::string &who = names[i];
				if (sh->err[i][0])
					why = who + ": " + sh->err[i];
				else if (WIFSIGNALED(st))
					why = who + " killed by signal " + std::to_string(WTERMSIG(st));
				else
					why = who + " exited with status " + std::to_string(WEXITSTATUS(st));
			}
			kill_all();
		}
		if (std::find(alive.begin(), alive.end(), true) == alive.end())
			break;
		const uint64_t now = now_ns();
		if (now >= deadline) {
			if (why.empty())
				why = "timed out after " + std::to_string(int(timeout_s)) + " s";
			kill_all();
			continue;
		}
		const uint64_t left = std::min<uint64_t>(deadline - now, 100000000);
		struct timespec ts = {static_cast<time_t>(left / 1000000000),
				      static_cast<long>(left % 1000000000)};
		const int sig = ::sigtimedwait(&g_sigs, nullptr, &ts);
		if (sig == SIGINT || sig == SIGTERM) {
			g_interrupted = true;
			if (why.empty())
				why = "interrupted";
			kill_all();
		}
	}
	return why;
}

Row run_cell(Mechanism &m, Workload w, size_t size, const Options &o, unsigned cell,
	     const std::vector<int> &cpus)
{
	Row row;
	row.mechanism = m.name();
	row.workload = w;
	row.size = size;
	ChannelConfig cfg;
	cfg.msg_size = size;
	cfg.capacity = capacity_for(size, o);
	cfg.batch = w == Workload::Batch ? o.batch : 1;
	cfg.spin = o.spin;
	cfg.producers = w == Workload::FanIn ? o.producers : 1;
	row.batch = cfg.batch;
	const Limits all = limits_for(w, size, cfg.capacity, o);
	const Limits lim = w == Workload::FanIn ? fanin_share(all, cfg.producers) : all;

	if (m.in_process()) {
		try {
			m.run_in_process(cfg, lim, row);
			row.status = "ok";
		} catch (const std::exception &e) {
			row.status = "failed";
			row.note = e.what();
		}
		return row;
	}

	std::unique_ptr<Channel> ch[2];
	try {
		const std::string base = std::to_string(::getpid()) + "-" + std::to_string(cell);
		cfg.tag = base + "a";
		ch[0] = m.make_channel(cfg);
		if (w == Workload::PingPong) {
			cfg.tag = base + "b";
			ch[1] = m.make_channel(cfg);
		}
	} catch (const Skip &e) {
		row.status = "skipped";
		row.note = e.what();
		return row;
	} catch (const std::exception &e) {
		row.status = "failed";
		row.note = e.what();
		return row;
	}
	row.buffer = ch[0]->buffer;
	row.note = ch[0]->note;

	void *mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			   -1, 0);
	if (mem == MAP_FAILED) {
		row.status = "failed";
		row.note = std::string("mmap: ") + std::strerror(errno);
		return row;
	}
	Shared *sh = new (mem) Shared{};
	const int cpu0 = o.pin && cpus.size() >= 2 ? cpus[0] : -1;
	const int cpu1 = o.pin && cpus.size() >= 2 ? cpus[1] : -1;
	const pid_t parent = ::getpid();
	// Fan-in: producers 0 .. np-1 (all on cpu0), then the receiver (cpu1).
	const bool fan_in = w == Workload::FanIn;
	const unsigned np = fan_in ? cfg.producers : 1;
	std::vector<std::string> names;
	if (fan_in) {
		for (unsigned i = 0; i < np; ++i)
			names.push_back("producer " + std::to_string(i));
		names.push_back("receiver");
	} else if (w == Workload::PingPong)
		names = {"pinger", "ponger"};
	else
		names = {"sender", "receiver"};
	sh->children = static_cast<uint32_t>(names.size());
	std::fflush(nullptr);
	std::vector<pid_t> pid;
	std::string why;
	for (unsigned role = 0; role < names.size(); ++role) {
		const pid_t p = ::fork();
		if (p < 0) {
			why = std::string("fork: ") + std::strerror(errno);
			for (pid_t q : pid) {
				::kill(q, SIGKILL);
				::waitpid(q, nullptr, 0);
			}
			break;
		}
		if (p == 0) {
			const bool sender = role < np;
			std::function<void()> body;
			if (w == Workload::PingPong)
				body = sender ? std::function<void()>([&] { pinger(*ch[0], *ch[1], cfg, lim, sh); })
					      : std::function<void()>([&] { ponger(*ch[0], *ch[1], cfg, sh); });
			else if (fan_in)
				body = sender ? std::function<void()>([&] {
					stream_sender(*ch[0], cfg, lim, sh, SenderRole{role, true});
				})
					      : std::function<void()>([&] { fanin_receiver(*ch[0], cfg, lim, sh); });
			else
				body = sender ? std::function<void()>([&] { stream_sender(*ch[0], cfg, lim, sh); })
					      : std::function<void()>([&] { stream_receiver(*ch[0], cfg, lim, sh); });
			child(static_cast<int>(role), sender ? cpu0 : cpu1, parent, sh, body);
		}
		pid.push_back(p);
	}
	if (why.empty())
		why = reap(pid, sh, o.timeout, names);
	const std::string counted = why.empty() ? ch[0]->summary(sh->messages) : std::string();
	ch[0].reset();
	ch[1].reset();

	if (!why.empty()) {
		row.status = "failed";
		row.note = why;
	} else {
		row.status = "ok";
		if (!counted.empty())
			row.note += (row.note.empty() ? "" : "; ") + counted;
		row.messages = sh->messages;
		row.bytes = sh->messages * size;
		row.seconds = double(sh->t_end - sh->t_start) / 1e9;
		if (w == Workload::PingPong) {
			row.rtt_median_us = sh->median_ns / 1e3;
			row.rtt_p99_us = sh->p99_ns / 1e3;
			row.rtt_mean_us = sh->mean_ns / 1e3;
			row.rtt_min_us = sh->min_ns / 1e3;
		}
	}
	::munmap(mem, sizeof(Shared));
	return row;
}

void finish(Row &r)
{
	if (r.status != "ok" || r.workload == Workload::PingPong || r.seconds <= 0)
		return;
	r.msgs_per_s = double(r.messages) / r.seconds;
	r.gb_per_s = double(r.bytes) / r.seconds / 1e9;
}

// --repeat: the median run by the row's main figure, with every run's
// figure and their spread; any failure wins.
Row run_repeated(Mechanism &m, Workload w, size_t size, const Options &o, unsigned &cell,
		 const std::vector<int> &cpus)
{
	std::vector<Row> runs;
	std::vector<double> figures; // in run order
	for (unsigned i = 0; i < o.repeat && !g_interrupted; ++i) {
		Row r = run_cell(m, w, size, o, cell++, cpus);
		finish(r);
		if (r.status != "ok")
			return r;
		runs.push_back(r);
		figures.push_back(main_figure(r));
	}
	if (runs.empty()) {
		Row r;
		r.mechanism = m.name();
		r.workload = w;
		r.size = size;
		r.status = "failed";
		r.note = "interrupted";
		return r;
	}
	std::sort(runs.begin(), runs.end(), [](const Row &a, const Row &b) {
		return a.workload == Workload::PingPong ? a.rtt_median_us < b.rtt_median_us
							: a.msgs_per_s > b.msgs_per_s;
	});
	Row r = runs[runs.size() / 2];
	r.repeats = static_cast<unsigned>(runs.size());
	r.runs = figures;
	r.run_min = *std::min_element(figures.begin(), figures.end());
	r.run_max = *std::max_element(figures.begin(), figures.end());
	r.run_median = main_figure(r);
	return r;
}

// ---------------------------------------------------------------------------
// Output

std::string size_name(size_t n)
{
	if (n >= (1 << 20) && n % (1 << 20) == 0)
		return std::to_string(n >> 20) + " MiB";
	if (n >= 1024 && n % 1024 == 0)
		return std::to_string(n >> 10) + " KiB";
	return std::to_string(n) + " B";
}

std::string si(double v)
{
	char b[32];
	if (v >= 1e9)
		std::snprintf(b, sizeof b, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		std::snprintf(b, sizeof b, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		std::snprintf(b, sizeof b, "%.1fk", v / 1e3);
	else
		std::snprintf(b, sizeof b, "%.0f", v);
	return b;
}

// How many times better @ref is than @r (> 1: the reference wins).
std::optional<double> advantage(const Row &ref, const Row &r)
{
	if (ref.status != "ok" || r.status != "ok")
		return std::nullopt;
	if (r.workload == Workload::PingPong)
		return ref.rtt_median_us > 0 ? std::optional(r.rtt_median_us / ref.rtt_median_us)
					     : std::nullopt;
	return r.msgs_per_s > 0 ? std::optional(ref.msgs_per_s / r.msgs_per_s) : std::nullopt;
}

void print_group(Workload w, size_t size, const std::vector<Row> &rows,
		 const std::vector<std::string> &refs)
{
	const bool pp = w == Workload::PingPong;
	std::printf("\n%s, %s%s\n", workload_name(w), size_name(size).c_str(),
		    pp ? " (round trip)"
		    : w == Workload::Batch ? " (one-way, batched)"
		    : w == Workload::FanIn ? " (one-way, several producers -> 1 consumer, msgs/s of all)"
					   : " (one-way)");
	if (pp)
		std::printf("  %-15s %10s %10s %10s %10s %10s %10s", "mechanism", "median us", "min run",
			    "max run", "p99 us", "mean us", "trips");
	else
		std::printf("  %-15s %10s %10s %10s %10s %10s %10s", "mechanism", "msgs/s", "min run",
			    "max run", "GB/s", "messages", "buffer");
	std::vector<const Row *> ref_rows;
	for (auto &name : refs) {
		const Row *found = nullptr;
		for (auto &r : rows)
			if (r.mechanism == name)
				found = &r;
		ref_rows.push_back(found);
		std::printf(" %11.11s", ("/" + name).c_str());
	}
	std::printf("\n");
	for (auto &r : rows) {
		std::printf("  %-15s ", r.mechanism.c_str());
		if (r.status != "ok") {
			std::printf("%s (%s)\n", r.status.c_str(), r.note.c_str());
			continue;
		}
		if (pp)
			std::printf("%10.2f %10.2f %10.2f %10.2f %10.2f %10llu", r.rtt_median_us, r.run_min,
				    r.run_max, r.rtt_p99_us, r.rtt_mean_us,
				    static_cast<unsigned long long>(r.messages));
		else
			std::printf("%10s %10s %10s %10.3f %10llu %10s", si(r.msgs_per_s).c_str(),
				    si(r.run_min).c_str(), si(r.run_max).c_str(), r.gb_per_s,
				    static_cast<unsigned long long>(r.messages),
				    r.buffer ? size_name(r.buffer).c_str() : "-");
		for (const Row *ref : ref_rows) {
			auto adv = ref ? advantage(*ref, r) : std::nullopt;
			if (adv && ref != &r)
				std::printf(" %10.2fx", *adv);
			else
				std::printf(" %11s", "-");
		}
		if (!r.note.empty())
			std::printf("  [%s]", r.note.c_str());
		std::printf("\n");
		if (r.runs.size() > 1) { // every run, in run order
			std::string line = pp ? "    runs (median us):" : "    runs (msgs/s):";
			for (double v : r.runs) {
				char b[32];
				if (pp)
					std::snprintf(b, sizeof b, " %.2f", v);
				else
					std::snprintf(b, sizeof b, " %s", si(v).c_str());
				line += b;
			}
			std::printf("%s\n", line.c_str());
		}
	}
	std::fflush(stdout);
}

std::string json_str(const std::string &s)
{
	std::string o = "\"";
	for (unsigned char c : s) {
		if (c == '"' || c == '\\') {
			o += '\\';
			o += static_cast<char>(c);
		} else if (c < 0x20) {
			char b[8];
			std::snprintf(b, sizeof b, "\\u%04x", c);
			o += b;
		} else
			o += static_cast<char>(c);
	}
	return o + "\"";
}

std::string num(double v)
{
	char b[40];
	std::snprintf(b, sizeof b, "%.6g", v);
	return b;
}

// {"metric": ..., "runs": [every run's figure], "min", "median", "max"}, or
// null for a row that was not measured.
std::string spread_json(const Row &r)
{
	if (r.status != "ok" || r.runs.empty())
		return "null";
	std::string o = std::string("{\"metric\": \"") + main_metric(r.workload) + "\", \"runs\": [";
	for (size_t i = 0; i < r.runs.size(); ++i)
		o += (i ? ", " : "") + num(r.runs[i]);
	return o + "], \"min\": " + num(r.run_min) + ", \"median\": " + num(r.run_median) +
	       ", \"max\": " + num(r.run_max) + "}";
}

bool write_json(const std::string &path, const std::vector<Row> &rows, const Options &o,
		bool module)
{
	FILE *f = std::fopen(path.c_str(), "w");
	if (!f)
		return false;
	struct utsname u = {};
	::uname(&u);
	// format 2: rows have "spread" (format 1 had everything else as it is)
	std::fprintf(f, "{\n  \"tool\": \"shmq-bench\",\n  \"format\": 2,\n");
	std::fprintf(f, "  \"host\": {\"kernel\": %s, \"machine\": %s, \"cpus\": %ld, \"module\": %s},\n",
		     json_str(u.release).c_str(), json_str(u.machine).c_str(),
		     ::sysconf(_SC_NPROCESSORS_ONLN), module ? "true" : "false");
	std::fprintf(f, "  \"options\": {\"quick\": %s, \"duration_s\": %s, \"count\": %llu, "
			"\"batch\": %u, \"spin\": %u, \"pin\": %s, \"repeat\": %u, \"producers\": %u},\n",
		     o.quick ? "true" : "false", num(o.duration).c_str(),
		     static_cast<unsigned long long>(o.count), o.batch, o.spin, o.pin ? "true" : "false",
		     o.repeat, o.producers);
	std::fprintf(f, "  \"rows\": [\n");
	for (size_t i = 0; i < rows.size(); ++i) {
		const Row &r = rows[i];
		std::fprintf(f,
			     "    {\"mechanism\": %s, \"workload\": \"%s\", \"size\": %zu, "
			     "\"status\": \"%s\", \"note\": %s, \"batch\": %u, \"buffer\": %zu, "
			     "\"repeats\": %u, "
			     "\"messages\": %llu, \"bytes\": %llu, \"seconds\": %s, "
			     "\"msgs_per_s\": %s, \"gb_per_s\": %s, \"rtt_median_us\": %s, "
			     "\"rtt_p99_us\": %s, \"rtt_mean_us\": %s, \"rtt_min_us\": %s, "
			     "\"spread\": %s}%s\n",
			     json_str(r.mechanism).c_str(), workload_name(r.workload), r.size,
			     r.status.c_str(), json_str(r.note).c_str(), r.batch, r.buffer, r.repeats,
			     static_cast<unsigned long long>(r.messages),
			     static_cast<unsigned long long>(r.bytes), num(r.seconds).c_str(),
			     num(r.msgs_per_s).c_str(), num(r.gb_per_s).c_str(),
			     num(r.rtt_median_us).c_str(), num(r.rtt_p99_us).c_str(),
			     num(r.rtt_mean_us).c_str(), num(r.rtt_min_us).c_str(), spread_json(r).c_str(),
			     i + 1 < rows.size() ? "," : "");
	}
	std::fprintf(f, "  ]\n}\n");
	return std::fclose(f) == 0;
}

std::string csv_str(const std::string &s)
{
	if (s.find_first_of(",\"\n") == std::string::npos)
		return s;
	std::string o = "\"";
	for (char c : s) {
		if (c == '"')
			o += '"';
		o += c;
	}
	return o + "\"";
}

bool write_csv(const std::string &path, const std::vector<Row> &rows)
{
	FILE *f = std::fopen(path.c_str(), "w");
	if (!f)
		return false;
	std::fprintf(f, "mechanism,workload,size,status,note,batch,buffer,repeats,messages,bytes,seconds,"
			"msgs_per_s,gb_per_s,rtt_median_us,rtt_p99_us,rtt_mean_us,rtt_min_us\n");
	for (const Row &r : rows)
		std::fprintf(f, "%s,%s,%zu,%s,%s,%u,%zu,%u,%llu,%llu,%s,%s,%s,%s,%s,%s,%s\n",
			     csv_str(r.mechanism).c_str(), workload_name(r.workload), r.size,
			     r.status.c_str(), csv_str(r.note).c_str(), r.batch, r.buffer, r.repeats,
			     static_cast<unsigned long long>(r.messages),
			     static_cast<unsigned long long>(r.bytes), num(r.seconds).c_str(),
			     num(r.msgs_per_s).c_str(), num(r.gb_per_s).c_str(),
			     num(r.rtt_median_us).c_str(), num(r.rtt_p99_us).c_str(),
			     num(r.rtt_mean_us).c_str(), num(r.rtt_min_us).c_str());
	return std::fclose(f) == 0;
}

bool selected(const std::string &name, const std::vector<std::string> &want)
{
	if (want.empty())
		return true;
	for (auto &w : want) {
		if (w == "all" || w == name)
			return true;
		if (w.size() > 1 && w.back() == '*' && name.starts_with(w.substr(0, w.size() - 1)))
			return true;
	}
	return false;
}

int run(int argc, char **argv)
{
	const Options o = parse(argc, argv);

	auto &reg = registry();
	std::sort(reg.begin(), reg.end(), [](auto &a, auto &b) { return a.order < b.order; });
	for (auto &w : o.mechanisms) {
		bool known = w == "all";
		for (auto &e : reg)
			known |= selected(e.name, {w});
		if (!known) {
			std::string names;
			for (auto &e : reg)
				names += " " + e.name;
			usage_error("unknown mechanism '" + w + "' (known:" + names + ")");
		}
	}
	struct Mech {
		std::unique_ptr<Mechanism> m;
		std::string unavailable;
	};
	std::vector<Mech> mechs;
	bool module = false;
	for (auto &e : reg) {
		auto m = e.make();
		std::string why = m->unavailable();
		if (m->is_shmq() && why.empty())
			module = true;
		if (o.list) {
			std::printf("%-15s %s%s\n", m->name(), m->describe(),
				    why.empty() ? "" : (" [unavailable: " + why + "]").c_str());
			continue;
		}
		if (selected(e.name, o.mechanisms))
			mechs.push_back({std::move(m), why});
	}
	if (o.list)
		return 0;

	sigemptyset(&g_sigs);
	sigaddset(&g_sigs, SIGCHLD);
	sigaddset(&g_sigs, SIGINT);
	sigaddset(&g_sigs, SIGTERM);
	::sigprocmask(SIG_BLOCK, &g_sigs, nullptr);
	const std::vector<int> cpus = usable_cpus();

	struct utsname u = {};
	::uname(&u);
	std::printf("shmq-bench: %s %s, %zu CPUs usable, %s; %s per run; batch %u; "
		    "fan-in %u producers; processes %s\n",
		    u.release, u.machine, cpus.size(),
		    module ? "shmq module present" : "no shmq module (shmq rows skipped)",
		    o.quick ? "quick counts" : o.count ? (std::to_string(o.count) + " messages").c_str()
						       : (num(o.duration) + " s").c_str(),
		    o.batch, o.producers, o.pin && cpus.size() >= 2 ? "pinned to 2 CPUs" : "not pinned");
	std::printf("Every message is verified (sequence, length, checksum, every byte).\n"
		    "Columns /REF: how many times faster REF is than the row (>1: REF wins;\n"
		    "latency: row median / REF median; throughput: REF msgs/s / row msgs/s).\n"
		    "Rows are the median of %u run%s; min run, max run: the lowest and highest\n"
		    "figure (median us, msgs/s) of those runs%s.\n",
		    o.repeat, o.repeat == 1 ? "" : "s",
		    o.repeat > 1 ? ", every run's figure on the line below" : "");

	std::vector<Row> all;
	unsigned cell = 0;
	bool failed = false;
	for (Workload w : o.workloads) {
		for (size_t size : o.sizes) {
			std::vector<Row> group;
			for (auto &mc : mechs) {
				if (g_interrupted)
					break;
				if (!mc.m->applies(w))
					continue;
				Row r;
				if (!mc.unavailable.empty()) {
					r.mechanism = mc.m->name();
					r.workload = w;
					r.size = size;
					r.batch = w == Workload::Batch ? o.batch : 1;
					r.status = "skipped";
					r.note = mc.unavailable;
				} else {
					r = run_repeated(*mc.m, w, size, o, cell, cpus);
				}
				finish(r);
				failed |= r.status == "failed";
				group.push_back(r);
				// A pending SIGINT/SIGTERM between runs.
				struct timespec zero = {0, 0};
				const int sig = ::sigtimedwait(&g_sigs, nullptr, &zero);
				if (sig == SIGINT || sig == SIGTERM)
					g_interrupted = true;
			}
			if (!group.empty())
				print_group(w, size, group, o.refs);
			all.insert(all.end(), group.begin(), group.end());
			if (g_interrupted)
				break;
		}
		if (g_interrupted)
			break;
	}
	bool refs_measured = false;
	for (auto &r : all)
		for (auto &ref : o.refs)
			refs_measured |= r.mechanism == ref && r.status == "ok";
	if (!refs_measured)
		std::printf("\nNo reference mechanism (--ref) was measured%s: no ratios.\n",
			    module ? "" : " (the shmq module is absent; e.g. --ref ring-futex)");
	if (!o.json.empty() && !write_json(o.json, all, o, module)) {
		std::fprintf(stderr, "shmq-bench: cannot write %s: %s\n", o.json.c_str(),
			     std::strerror(errno));
		failed = true;
	}
	if (!o.csv.empty() && !write_csv(o.csv, all)) {
		std::fprintf(stderr, "shmq-bench: cannot write %s: %s\n", o.csv.c_str(),
			     std::strerror(errno));
		failed = true;
	}
	size_t nfail = 0, nskip = 0, nok = 0;
	for (auto &r : all)
		(r.status == "ok" ? nok : r.status == "skipped" ? nskip : nfail)++;
	std::printf("\n%zu runs verified, %zu skipped, %zu failed%s\n", nok, nskip, nfail,
		    g_interrupted ? " (interrupted)" : "");
	if (g_interrupted)
		return 130;
	return failed ? 1 : 0;
}

} // namespace

} // namespace shmq_bench

int main(int argc, char **argv) { return shmq_bench::run(argc, argv); }

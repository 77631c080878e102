// SPDX-License-Identifier: MIT
// shmqctl: create, destroy, list, inspect, send to and receive from shmq
// queues. Statically linked so that it runs in a minimal (busybox) system;
// user and group names therefore come from /etc/passwd and /etc/group
// directly, not through NSS.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <getopt.h>
#include <initializer_list>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <thread>
#include <ctime>
#include <unistd.h>
#include <vector>

#include "cli_parse.hpp"
#include "cli_version.hpp"
#include <shmq/shmq.hpp>
#include <shmq/uapi.h>

namespace {

constexpr int kExitFail = 1, kExitUsage = 2;

struct Global {
	std::string dev_dir = "/dev/shmq";
	std::string control = "/dev/shmq-control";
	std::string sys_dir = "/sys/class/shmq";
	std::string module_dir = "/sys/module/shmq";
};
Global g;

const char kGlobalUsage[] =
	"usage: shmqctl [--dev-dir DIR] [--control PATH] [--sysfs DIR] COMMAND [ARGS]\n"
	"\n"
	"Commands:\n"
	"  create NAME --size BYTES [--producers N]\n"
	"                             create a queue (root: needs /dev/shmq-control); with\n"
	"                             --producers, a lane queue that N producers share\n"
	"  destroy NAME               destroy a queue\n"
	"  list [--json]              list queues like ls -l: mode, owner, group, size, use, peers\n"
	"  stat [--json] NAME         show everything the kernel knows about one queue,\n"
	"                             its producers lane by lane\n"
	"  top [-d SECS] [-n ITER]    live view of all queues, busiest first\n"
	"  send NAME [--timeout MS] [--fail-without-consumer] [--] [MESSAGE...]\n"
	"                             send the arguments, or each line of stdin, as messages\n"
	"  recv NAME [--count N] [--timeout MS] [--sender]\n"
	"                             receive messages, one per line on stdout\n"
	"\n"
	"Options:\n"
	"  --dev-dir DIR     queue device directory (default /dev/shmq)\n"
	"  --control PATH    control device (default /dev/shmq-control)\n"
	"  --sysfs DIR       where sysfs is mounted (default /sys)\n"
	"  -h, --help        this help; 'shmqctl COMMAND --help' for a command\n"
	"  --version         versions of shmqctl, libshmq and the loaded module\n"
	"\n"
	"Options of a command may come before or after its NAME; '--' ends them, so\n"
	"that a message (or an old queue name) starting with '-' is taken as it is:\n"
	"shmqctl send orders -- -5, shmqctl stat -- -rf.\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 usage error.\n";

const char kCreateUsage[] =
	"usage: shmqctl create NAME --size BYTES [--producers N]\n"
	"Create queue NAME with a ring of BYTES data bytes: a power of two, at least\n"
	"4096, with an optional suffix K, M or G (powers of 1024), e.g. 64K or 1M.\n"
	"--producers N (1 to 1024, and at most the module's max_producers parameter):\n"
	"a lane queue, which N producers may send to at once, each into a lane of its\n"
	"own of BYTES bytes; the consumer sees one queue and the kernel-proven sender of\n"
	"every message (shmqctl recv --sender). Without it, a queue of one producer at a\n"
	"time.\n"
	"Names: 1 to 63 characters of [A-Za-z0-9_.-], not starting with '.' or '-'.\n"
	"The device /dev/shmq/NAME appears; its mode and group (udev rules) decide who\n"
	"may send (write permission) and receive (read permission).\n";
const char kDestroyUsage[] =
	"usage: shmqctl destroy NAME\n"
	"Remove queue NAME. Its device disappears at once; attached peers see EIDRM\n"
	"when the ring is empty, and the memory is freed when the last one lets go.\n"
	"A name starting with '-' (made by an older module) goes after '--'.\n";
const char kListUsage[] =
	"usage: shmqctl list [--json]\n"
	"List the queues (from /sys/class/shmq) like ls -l: mode, owner and group of\n"
	"/dev/shmq/NAME, capacity, bytes used and their share of the capacity, and the\n"
	"pids of the attached producer and consumer ('-' when none). The last line\n"
	"gives the module's totals (/sys/module/shmq/usage) against its limits.\n"
	"--json: one JSON object {\"queues\": [...], \"usage\": {...}, \"parameters\": {...}},\n"
	"one object per queue as 'shmqctl stat --json' prints it.\n";
const char kStatUsage[] =
	"usage: shmqctl stat [--json] NAME\n"
	"Show every attribute of /sys/class/shmq/NAME (sizes also in KiB/MiB/GiB, pids\n"
	"with their command names), and the owner, group and mode of /dev/shmq/NAME.\n"
	"docs/abi.md defines each attribute. Then the producers, one line per lane in\n"
	"use (from /sys/class/shmq/NAME/lanes): lane, state (attached; draining: its\n"
	"producer has gone and its messages wait for the consumer; dropped), pid, uid,\n"
	"gid, bytes queued in the lane, and the producer's command name.\n"
	"--json: one JSON object: \"name\", \"node\" (the device node, null if missing)\n"
	"and every attribute file as it is (numbers as numbers), but \"lanes\": an array\n"
	"of {\"lane\", \"state\", \"generation\", \"pid\", \"uid\", \"gid\", \"bytes_queued\"}.\n"
	"A name starting with '-' (made by an older module) goes after '--'.\n";
const char kTopUsage[] =
	"usage: shmqctl top [-d SECS] [-n ITER]\n"
	"Show all queues every SECS seconds (default 1, fractions allowed), busiest\n"
	"first: bytes passed per second (the consumer's counter), bytes published per\n"
	"second, fill level, and waits, wakes, full and empty events per second, all\n"
	"from counter deltas over the interval. Stops after ITER screens (default:\n"
	"until interrupted). On a terminal each screen replaces the last; otherwise\n"
	"the screens are printed one after another.\n";
const char kSendUsage[] =
	"usage: shmqctl send NAME [--timeout MS] [--fail-without-consumer] [--] [MESSAGE...]\n"
	"Send each MESSAGE argument as one message; without arguments, send each line\n"
	"of standard input (without its newline) as one message. Waits while the ring\n"
	"is full, for at most MS milliseconds per message if --timeout is given.\n"
	"Queue semantics: a consumer that goes away (or was never there) does not stop\n"
	"send; it waits while the ring is full until a consumer drains it.\n"
	"--fail-without-consumer: fail instead (exit status 1) when the ring is full and\n"
	"the consumer has gone.\n"
	"Arguments after '--' are messages even if they start with '-' (shmqctl send\n"
	"orders -- -5); an unknown option is an error, never a message.\n";
const char kRecvUsage[] =
	"usage: shmqctl recv NAME [--count N] [--timeout MS] [--sender]\n"
	"Receive N messages (default 1; 0 = until the timeout passes without a\n"
	"message, or the producers have gone) and print each on its own line.\n"
	"Waits at most MS milliseconds for each message (default: forever).\n"
	"--sender (lane queues only): print each message as 'UID PID<TAB>TEXT', the\n"
	"sender's uid and pid as the kernel recorded them when it opened the queue\n"
	"(uid 4294967295: not mapped in our user namespace; pid 0: not visible in our\n"
	"pid namespace, or exited before recv first saw it), and a line 'END UID PID'\n"
	"when a producer has gone and all its messages were received. Refused on a\n"
	"queue without lanes, which does not record senders.\n"
	"A lane whose producer wrote corrupt records is reported on stderr with its\n"
	"sender, dropped, and the other lanes are received on.\n";

[[noreturn]] void die(std::string_view cmd, std::string_view reason, int status = kExitFail)
{
	std::fflush(stdout);
	std::fprintf(stderr, "shmqctl: %.*s: %.*s\n", static_cast<int>(cmd.size()), cmd.data(),
		     static_cast<int>(reason.size()), reason.data());
	std::exit(status);
}

[[noreturn]] void usage_error(std::string_view cmd, std::string_view reason)
{
	die(cmd, std::string(reason) + " (see 'shmqctl " + std::string(cmd) + " --help')",
	    kExitUsage);
}

// ---------------------------------------------------------------------------
// Arguments: getopt_long for the global options and for every command.

// An option of a command: long name, short letter (0: none), whether it
// takes a value.
struct Opt {
	const char *name;
	char letter;
	bool value;
};

struct Parsed {
	std::vector<std::pair<std::string, std::string>> opts; // (long name, value), in order
	std::vector<std::string> operands;			// in order, those after "--" too
	std::optional<std::string> last(const char *name) const
	{
		std::optional<std::string> v;
		for (auto &[n, val] : opts)
			if (n == name)
				v = val;
		return v;
	}
	bool has(const char *name) const { return last(name).has_value(); }
};

// Parses @argv[1..@argc) for command @cmd (argv[0]): options anywhere
// before "--", in any order with the operands (in order also when
// POSIXLY_CORRECT is set); -h/--help anywhere before "--" prints @usage and
// exits 0. An unknown option or one without its value is a usage error
// (status 2) that says how to pass an @operands word ("NAME or MESSAGE";
// nullptr: the command takes none) starting with '-'. @next: the options
// before the command; parsing stops at the first operand, left at
// argv[*next].
Parsed parse_args(const char *cmd, int argc, char **argv, std::initializer_list<Opt> opts,
		  const char *usage, const char *operands, int *next = nullptr)
{
	std::vector<Opt> all(opts);
	all.push_back({"help", 'h', false});
	std::vector<struct option> lo;
	std::string shorts = next ? "+:" : "-:"; // ':': report a missing value as ':'
	for (size_t i = 0; i < all.size(); ++i) {
		lo.push_back({all[i].name, all[i].value ? required_argument : no_argument, nullptr,
			      0x100 + static_cast<int>(i)});
		if (all[i].letter) {
			shorts += all[i].letter;
			if (all[i].value)
				shorts += ':';
		}
	}
	lo.push_back({nullptr, 0, nullptr, 0});
	auto by_code = [&](int c) -> const Opt * {
		if (c >= 0x100 && c < 0x100 + static_cast<int>(all.size()))
			return &all[size_t(c - 0x100)];
		for (auto &o : all)
			if (o.letter && o.letter == c)
				return &o;
		return nullptr;
	};
	const std::string see = next ? "see 'shmqctl --help'" : std::string("see 'shmqctl ") + cmd + " --help'";
	auto fail = [&](const std::string &why) {
		std::fflush(stdout);
		if (next)
			std::fprintf(stderr, "shmqctl: %s (%s)\n", why.c_str(), see.c_str());
		else if (operands)
			std::fprintf(stderr, "shmqctl: %s: %s (%s; a %s that starts with '-' goes "
					     "after '--')\n", cmd, why.c_str(), see.c_str(), operands);
		else
			std::fprintf(stderr, "shmqctl: %s: %s (%s)\n", cmd, why.c_str(), see.c_str());
		std::exit(kExitUsage);
	};
	Parsed p;
	opterr = 0;
	optind = 0; // glibc: start afresh (the ordering is chosen at the start)
	for (;;) {
		const int at = optind ? optind : 1;
		const int c = getopt_long(argc, argv, shorts.c_str(), lo.data(), nullptr);
		if (c == -1)
			break;
		if (c == 1) { // an operand, in order
			p.operands.emplace_back(optarg);
			continue;
		}
		if (c == '?') {
			std::string word;
			if (optopt >= 0x100) { // a long option given =value it takes none
				if (const Opt *o = by_code(optopt))
					fail(std::string("option '--") + o->name + "' takes no value");
				fail("cannot parse the arguments");
			}
			if (optopt) { // a short option: the word it was in
				word = at < argc && argv[at][0] == '-' && std::strchr(argv[at], optopt)
					       ? argv[at]
					       : std::string("-") + char(optopt);
			} else { // a long one: the word without its =value
				word = argv[optind - 1];
				word = word.substr(0, word.find('='));
			}
			fail("unknown option '" + word + "'");
		}
		const Opt *o = by_code(c == ':' ? optopt : c);
		if (!o)
			fail("cannot parse the arguments");
		if (c == ':') {
			const bool long_form = optopt >= 0x100;
			fail(std::string("option '") + (long_form ? "--" + std::string(o->name)
								: std::string("-") + o->letter) +
			     "' needs a value");
		}
		if (std::string_view(o->name) == "help") {
			std::fputs(usage, stdout);
			std::exit(0);
		}
		p.opts.emplace_back(o->name, o->value && optarg ? optarg : "");
	}
	if (next) {
		*next = optind;
		return p;
	}
	for (int i = optind; i < argc; ++i)
		p.operands.emplace_back(argv[i]);
	return p;
}

using shmq::cli::parse_size;
using shmq::cli::parse_u64;

// Name of @id in an /etc/passwd- or /etc/group-style file, or the number.
std::string id_name(const char *file, unsigned id)
{
	std::ifstream in(file);
	std::string line;
	while (std::getline(in, line)) {
		// name:x:id:...
		const size_t a = line.find(':');
		if (a == std::string::npos)
			continue;
		const size_t b = line.find(':', a + 1);
		if (b == std::string::npos)
			continue;
		const size_t c = line.find(':', b + 1);
		auto v = parse_u64(std::string_view(line).substr(b + 1, c == std::string::npos ? std::string::npos : c - b - 1));
		if (v && *v == id)
			return line.substr(0, a);
	}
	return std::to_string(id);
}

// One sysfs attribute, trimmed; empty if absent.
std::string sys_attr(const std::string &name, const char *attr)
{
	std::ifstream in(g.sys_dir + "/" + name + "/" + attr);
	std::string v;
	std::getline(in, v);
	while (!v.empty() && (v.back() == '\n' || v.back() == ' '))
		v.pop_back();
	return v;
}

std::string describe(const shmq::Error &e) { return e.message(); }

// ---------------------------------------------------------------------------
// Reading the kernel's view: /sys/class/shmq/NAME/* and /sys/module/shmq/usage/*

bool module_loaded()
{
	struct stat st;
	return ::stat(g.module_dir.c_str(), &st) == 0 || ::stat(g.sys_dir.c_str(), &st) == 0;
}

[[noreturn]] void die_not_loaded()
{
	std::fflush(stdout);
	std::fprintf(stderr, "shmqctl: the shmq module is not loaded (no %s): load it with "
			     "'modprobe shmq' or 'insmod shmq.ko'\n", g.sys_dir.c_str());
	std::exit(kExitFail);
}

// The message for a queue that does not exist (or the module being absent).
[[noreturn]] void die_no_queue(const std::string &name)
{
	if (!module_loaded())
		die_not_loaded();
	std::fflush(stdout);
	std::fprintf(stderr, "shmqctl: no queue named %s (see shmqctl list)\n", name.c_str());
	std::exit(kExitFail);
}

bool queue_exists(const std::string &name)
{
	struct stat st;
	return ::stat((g.sys_dir + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::optional<uint64_t> sys_num(const std::string &name, const char *attr)
{
	return parse_u64(sys_attr(name, attr));
}

std::optional<uint64_t> usage_num(const char *attr)
{
	std::ifstream in(g.module_dir + "/usage/" + attr);
	std::string v;
	std::getline(in, v);
	return parse_u64(v);
}

std::optional<uint64_t> param_num(const char *attr)
{
	std::ifstream in(g.module_dir + "/parameters/" + attr);
	std::string v;
	std::getline(in, v);
	return parse_size(v);
}

// 1536 -> "1.5K", 1048576 -> "1M", 100 -> "100": ls -lh style.
std::string short_bytes(uint64_t n)
{
	static const char *units[] = {"", "K", "M", "G", "T", "P", "E"};
	if (n < 1024)
		return std::to_string(n);
	double v = double(n);
	unsigned u = 0;
	while (v >= 1024 && u < 6) {
		v /= 1024;
		++u;
	}
	char buf[32];
	if (v < 10 && v != double(uint64_t(v)))
		std::snprintf(buf, sizeof buf, "%.1f%s", v, units[u]);
	else
		std::snprintf(buf, sizeof buf, "%.0f%s", v, units[u]);
	return buf;
}

// "1048576 bytes (1.0 MiB)"; below 1 KiB just "100 bytes".
std::string long_bytes(uint64_t n)
{
	static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	std::string s = std::to_string(n) + (n == 1 ? " byte" : " bytes");
	if (n < 1024)
		return s;
	double v = double(n) / 1024;
	unsigned u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		++u;
	}
	char buf[32];
	std::snprintf(buf, sizeof buf, " (%.1f %s)", v, units[u]);
	return s + buf;
}

std::string percent(uint64_t part, uint64_t whole)
{
	if (!whole)
		return "-";
	char buf[16];
	std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * double(part) / double(whole));
	return buf;
}

// ls -l style "crw-rw----".
std::string mode_string(mode_t m)
{
	std::string s = S_ISCHR(m) ? "c" : S_ISDIR(m) ? "d" : S_ISREG(m) ? "-" : "?";
	const char *rwx = "rwxrwxrwx";
	for (int i = 0; i < 9; ++i)
		s += (m & (0400 >> i)) ? rwx[i] : '-';
	if (m & S_ISUID)
		s[3] = (m & S_IXUSR) ? 's' : 'S';
	if (m & S_ISGID)
		s[6] = (m & S_IXGRP) ? 's' : 'S';
	if (m & S_ISVTX)
		s[9] = (m & S_IXOTH) ? 't' : 'T';
	return s;
}

// A process's command name, "" if gone or hidden.
std::string comm_of(uint64_t pid)
{
	std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
	std::string c;
	std::getline(in, c);
	return c;
}

std::vector<std::string> queue_names()
{
	DIR *d = opendir(g.sys_dir.c_str());
	if (!d) {
		if (errno == ENOENT)
			die_not_loaded();
		die("list", g.sys_dir + ": " + std::strerror(errno));
	}
	std::vector<std::string> names;
	while (struct dirent *e = readdir(d))
		if (e->d_name[0] != '.')
			names.emplace_back(e->d_name);
	closedir(d);
	std::sort(names.begin(), names.end());
	return names;
}

// Everything about one queue at one moment (missing attributes stay 0).
struct Sample {
	std::string name;
	uint64_t capacity = 0, used = 0, published = 0, passed = 0;
	uint64_t waits = 0, wakes = 0, full = 0, empty = 0;
	uint64_t producer_pid = 0, consumer_pid = 0;
};

Sample sample(const std::string &name)
{
	Sample s;
	s.name = name;
	auto get = [&](const char *a) { return sys_num(name, a).value_or(0); };
	s.capacity = get("capacity");
	s.used = get("bytes_used");
	s.published = get("bytes_published");
	s.passed = get("bytes_passed");
	s.waits = get("waits");
	s.wakes = get("wakes");
	s.full = get("full_events");
	s.empty = get("empty_events");
	s.producer_pid = get("producer_pid");
	s.consumer_pid = get("consumer_pid");
	return s;
}

std::string pid_or_dash(uint64_t pid) { return pid ? std::to_string(pid) : "-"; }

std::string usage_line()
{
	auto q = usage_num("queues"), mem = usage_num("memory_bytes");
	auto maxq = param_num("max_queues"), maxm = param_num("max_total_memory");
	std::string s = "total: " + (q ? std::to_string(*q) : "?") + " queues";
	if (maxq)
		s += " of max " + std::to_string(*maxq);
	s += ", ring memory " + (mem ? short_bytes(*mem) : "?");
	if (maxm)
		s += " of max " + short_bytes(*maxm);
	return s;
}

// The queue NAME of @cmd: the first operand (a usage error if missing),
// removed from @ops. @fresh: a name for a new queue, checked by the rule
// (validate_name); otherwise also a name an older module accepted, with a
// leading '-' (such a queue can be looked at, used and destroyed).
std::string take_name(const char *cmd, std::vector<std::string> &ops, bool fresh = false)
{
	if (ops.empty())
		usage_error(cmd, "missing queue NAME");
	std::string name = ops.front();
	ops.erase(ops.begin());
	std::string probe = name;
	if (!fresh && !probe.empty() && probe[0] == '-')
		probe[0] = 'x'; // the rest of the rule still holds
	if (auto v = shmq::validate_name(probe); !v)
		usage_error(cmd, v.error().what());
	return name;
}

void no_more(const char *cmd, const std::vector<std::string> &ops)
{
	if (!ops.empty())
		usage_error(cmd, "unexpected argument '" + ops.front() + "'");
}

std::optional<uint64_t> ms_option(const char *cmd, const Parsed &p, const char *opt)
{
	auto v = p.last(opt);
	if (!v)
		return std::nullopt;
	auto ms = parse_u64(*v);
	if (!ms)
		usage_error(cmd, "bad --" + std::string(opt) + " '" + *v + "': milliseconds expected");
	return ms;
}

shmq::Timeout timeout_from_ms(std::optional<uint64_t> ms)
{
	if (!ms)
		return shmq::Timeout::infinite();
	// Unsigned milliseconds: Timeout::after saturates a huge count to
	// infinite (a signed milliseconds would wrap to a negative one: none).
	return shmq::Timeout::after(std::chrono::duration<uint64_t, std::milli>(*ms));
}

int cmd_create(int argc, char **argv)
{
	Parsed p = parse_args("create", argc, argv, {{"size", 0, true}, {"producers", 0, true}},
			      kCreateUsage, "NAME");
	const std::string name = take_name("create", p.operands, true);
	no_more("create", p.operands);
	std::optional<uint64_t> size;
	if (auto v = p.last("size")) {
		size = parse_size(*v);
		if (!size)
			usage_error("create", "bad size '" + *v +
						      "': use a number with an optional K, M or G suffix");
	}
	if (!size)
		usage_error("create", "missing --size BYTES");
	if (*size < SHMQ_MIN_CAPACITY || (*size & (*size - 1)) != 0)
		usage_error("create", "size " + std::to_string(*size) +
					      " is not a power of two of at least 4096 (e.g. 4K, 64K, 1M)");
	// 0: a queue of one producer (SHMQ_IOC_CREATE), as without the option.
	uint32_t producers = 0;
	if (auto v = p.last("producers")) {
		const std::string range = "1 to " + std::to_string(SHMQ_MAX_PRODUCERS);
		auto n = parse_u64(*v);
		if (!n)
			usage_error("create", "bad --producers '" + *v + "': a number of producers from " +
						      range + " expected");
		if (*n < 1 || *n > SHMQ_MAX_PRODUCERS)
			usage_error("create", "--producers " + *v + " is out of range: a lane queue has " +
						      range + " producers (without --producers, one producer "
						      "at a time)");
		producers = static_cast<uint32_t>(*n);
	}
	// The module may be loaded with a lower ceiling: say which, rather than
	// the kernel's bare EINVAL.
	if (producers) {
		const auto ceiling = param_num("max_producers");
		if (ceiling && producers > *ceiling)
			die("create", name + ": --producers " + std::to_string(producers) +
					      " is above the module's max_producers parameter, " +
					      std::to_string(*ceiling) + " (" + g.module_dir +
					      "/parameters/max_producers): ask for fewer, or raise the "
					      "parameter as root");
	}
	shmq::CreateOptions opt;
	opt.capacity = *size;
	opt.max_producers = producers;
	opt.control = g.control;
	if (auto r = shmq::create_queue(name, opt); !r)
		die("create", name + ": " + describe(r.error()));
	return 0;
}

int cmd_destroy(int argc, char **argv)
{
	Parsed p = parse_args("destroy", argc, argv, {}, kDestroyUsage, "NAME");
	const std::string name = take_name("destroy", p.operands);
	no_more("destroy", p.operands);
	if (auto r = shmq::destroy_queue(name, g.control); !r) {
		if (r.error().code() == ENOENT && !queue_exists(name))
			die_no_queue(name);
		die("destroy", name + ": " + describe(r.error()));
	}
	return 0;
}

std::string queue_json(const std::string &name);
std::string dir_json(const std::string &dir);

int cmd_list(int argc, char **argv)
{
	Parsed p = parse_args("list", argc, argv, {{"json", 0, false}}, kListUsage, nullptr);
	no_more("list", p.operands);
	if (p.has("json")) {
		std::string out = "{\"queues\": [";
		const auto names = queue_names();
		for (size_t i = 0; i < names.size(); ++i)
			out += std::string(i ? ",\n  " : "\n  ") + queue_json(names[i]);
		out += names.empty() ? "],\n" : "\n],\n";
		out += " \"usage\": " + dir_json(g.module_dir + "/usage") + ",\n";
		out += " \"parameters\": " + dir_json(g.module_dir + "/parameters") + "}\n";
		std::fputs(out.c_str(), stdout);
		return 0;
	}
	const auto names = queue_names();
	struct Row {
		std::string cols[9];
	};
	std::vector<Row> rows;
	rows.push_back({{"MODE", "OWNER", "GROUP", "CAPACITY", "USED", "USED%", "PRODUCER", "CONSUMER",
			 "NAME"}});
	for (auto &n : names) {
		Row r;
		struct stat st;
		if (::stat((g.dev_dir + "/" + n).c_str(), &st) == 0) {
			r.cols[0] = mode_string(st.st_mode);
			r.cols[1] = id_name("/etc/passwd", st.st_uid);
			r.cols[2] = id_name("/etc/group", st.st_gid);
		} else {
			r.cols[0] = "?---------";
			r.cols[1] = r.cols[2] = "-";
		}
		const Sample s = sample(n);
		r.cols[3] = short_bytes(s.capacity);
		r.cols[4] = short_bytes(s.used);
		r.cols[5] = percent(s.used, s.capacity);
		r.cols[6] = pid_or_dash(s.producer_pid);
		r.cols[7] = pid_or_dash(s.consumer_pid);
		r.cols[8] = n;
		rows.push_back(r);
	}
	size_t w[9] = {};
	for (auto &r : rows)
		for (int i = 0; i < 9; ++i)
			w[i] = std::max(w[i], r.cols[i].size());
	for (auto &r : rows) {
		std::string line;
		for (int i = 0; i < 9; ++i) {
			const bool right = i >= 3 && i <= 7;
			std::string c = r.cols[i];
			if (i < 8) {
				const std::string pad(w[i] - c.size(), ' ');
				c = right ? pad + c : c + pad;
				c += "  ";
			}
			line += c;
		}
		std::printf("%s\n", line.c_str());
	}
	std::printf("%s\n", usage_line().c_str());
	return 0;
}

// The attributes stat knows how to present, in this order; others found in
// the directory are printed after them as they are.
enum class Kind { Bytes, Count, Pid, Uid, Time, Plain };
struct AttrSpec {
	const char *name;
	Kind kind;
};
const AttrSpec kAttrs[] = {
	{"capacity", Kind::Bytes},	  {"max_message", Kind::Bytes},
	{"bytes_used", Kind::Bytes},	  {"producers", Kind::Count},
	{"max_producers", Kind::Count},	  {"producer_pid", Kind::Pid},
	{"consumers", Kind::Count},	  {"consumer_pid", Kind::Pid},
	{"bytes_published", Kind::Bytes}, {"bytes_passed", Kind::Bytes},
	{"waits", Kind::Count},		  {"wakes", Kind::Count},
	{"full_events", Kind::Count},	  {"empty_events", Kind::Count},
	{"created_by_uid", Kind::Uid},	  {"created_at", Kind::Time},
};

// One line of /sys/class/shmq/NAME/lanes (kernel/sysfs.c, docs/abi.md):
// "LANE STATE GENERATION PID UID GID BYTES_QUEUED", one per lane (a 0.6
// module: per lane not free), padded with spaces.
struct LaneRow {
	uint32_t lane = 0;
	std::string state; // free, attached, draining or dropped
	uint32_t generation = 0;
	int64_t pid = 0;	     // 0: exited, or not visible in our pid namespace
	uint32_t uid = UINT32_MAX; // UINT32_MAX: not mapped (the library's Sender too)
	uint32_t gid = UINT32_MAX;
	uint64_t queued = 0;
};

// A uid or gid as the kernel prints it: "%d" of the id cast to int, so -1
// where unmapped and a large id (2^31 and up) as a negative number; also
// taken unsigned. Both map to the uint32 the id is.
std::optional<uint32_t> parse_id(std::string_view w)
{
	int64_t v = 0;
	auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
	if (w.empty() || ec != std::errc() || p != w.data() + w.size() || v < INT32_MIN ||
	    v > int64_t{UINT32_MAX})
		return std::nullopt;
	return static_cast<uint32_t>(v);
}

// Extra words after the seven are ignored (a newer module may add some).
std::optional<LaneRow> parse_lane_line(const std::string &line)
{
	std::vector<std::string> w;
	size_t i = 0;
	while (i < line.size()) {
		while (i < line.size() && line[i] == ' ')
			++i;
		const size_t b = i;
		while (i < line.size() && line[i] != ' ')
			++i;
		if (i > b)
			w.push_back(line.substr(b, i - b));
	}
	if (w.size() < 7)
		return std::nullopt;
	LaneRow r;
	const auto lane = parse_u64(w[0]), gen = parse_u64(w[2]), pid = parse_u64(w[3]),
		   queued = parse_u64(w[6]);
	const auto uid = parse_id(w[4]), gid = parse_id(w[5]);
	if (!lane || *lane > UINT32_MAX || !gen || *gen > UINT32_MAX || !pid || !uid || !gid ||
	    !queued || w[1].empty())
		return std::nullopt;
	r.lane = static_cast<uint32_t>(*lane);
	r.state = w[1];
	r.generation = static_cast<uint32_t>(*gen);
	r.pid = static_cast<int64_t>(*pid);
	r.uid = *uid;
	r.gid = *gid;
	r.queued = *queued;
	return r;
}

// The lines of a file (without their newlines); nullopt if it cannot be read.
std::optional<std::vector<std::string>> file_lines(const std::string &path)
{
	std::ifstream in(path);
	if (!in)
		return std::nullopt;
	std::vector<std::string> lines;
	std::string l;
	while (std::getline(in, l))
		if (!l.empty())
			lines.push_back(l);
	if (in.bad())
		return std::nullopt;
	return lines;
}

// The lines of the lanes attribute @path of the lanes in use: free lanes
// left out, the padding taken off; nullopt if it cannot be read.
std::optional<std::vector<std::string>> lanes_in_use(const std::string &path)
{
	auto lines = file_lines(path);
	if (!lines)
		return lines;
	std::vector<std::string> used;
	for (auto &l : *lines) {
		while (!l.empty() && l.back() == ' ')
			l.pop_back();
		const auto r = parse_lane_line(l);
		if (!r || r->state != "free")
			used.push_back(std::move(l));
	}
	return used;
}

// ---------------------------------------------------------------------------
// JSON of list --json and stat --json

// A JSON string. Bytes outside printable ASCII are escaped (\u00XX), so that
// the output is valid JSON whatever a file holds.
std::string json_str(std::string_view v)
{
	std::string o = "\"";
	for (unsigned char c : v) {
		if (c == '"' || c == '\\') {
			o += '\\';
			o += static_cast<char>(c);
		} else if (c == '\n') {
			o += "\\n";
		} else if (c == '\t') {
			o += "\\t";
		} else if (c < 0x20 || c >= 0x7f) {
			char b[8];
			std::snprintf(b, sizeof b, "\\u%04x", c);
			o += b;
		} else {
			o += static_cast<char>(c);
		}
	}
	return o + "\"";
}

// The contents of one attribute file as JSON: a number when it is one
// decimal number, else a string; null when it cannot be read.
std::string attr_json(const std::string &path)
{
	std::ifstream in(path);
	std::string v;
	if (!in || !std::getline(in, v))
		return in.eof() ? "\"\"" : "null";
	while (!v.empty() && (v.back() == '\n' || v.back() == ' '))
		v.pop_back();
	if (auto n = parse_u64(v))
		return std::to_string(*n);
	return json_str(v);
}

// The lanes attribute as a JSON array, one object per lane in use; a line this
// shmqctl cannot parse is kept as a string. null when it cannot be read.
std::string lanes_json(const std::string &path)
{
	const auto lines = lanes_in_use(path);
	if (!lines)
		return "null";
	std::string o = "[";
	for (const auto &l : *lines) {
		if (o.size() > 1)
			o += ", ";
		const auto r = parse_lane_line(l);
		if (!r) {
			o += json_str(l);
			continue;
		}
		o += "{\"lane\": " + std::to_string(r->lane) + ", \"state\": " + json_str(r->state) +
		     ", \"generation\": " + std::to_string(r->generation) +
		     ", \"pid\": " + std::to_string(r->pid) + ", \"uid\": " + std::to_string(r->uid) +
		     ", \"gid\": " + std::to_string(r->gid) +
		     ", \"bytes_queued\": " + std::to_string(r->queued) + "}";
	}
	return o + "]";
}

// The regular files of @dir (but uevent), the attributes stat knows first
// in its order when @known_first, the others sorted.
std::vector<std::string> attr_files(const std::string &dir, bool known_first)
{
	std::vector<std::string> files;
	if (DIR *d = opendir(dir.c_str())) {
		while (struct dirent *e = readdir(d)) {
			const std::string f = e->d_name;
			struct stat fs;
			if (f[0] == '.' || f == "uevent" || ::stat((dir + "/" + f).c_str(), &fs) != 0 ||
			    !S_ISREG(fs.st_mode))
				continue;
			files.push_back(f);
		}
		closedir(d);
	}
	auto rank = [&](const std::string &f) {
		if (known_first)
			for (size_t i = 0; i < std::size(kAttrs); ++i)
				if (f == kAttrs[i].name)
					return i;
		return std::size(kAttrs);
	};
	std::sort(files.begin(), files.end(), [&](const std::string &a, const std::string &b) {
		const size_t ra = rank(a), rb = rank(b);
		return ra != rb ? ra < rb : a < b;
	});
	return files;
}

// {"file": value, ...} of every attribute file of @dir; {} if there is none.
std::string dir_json(const std::string &dir)
{
	std::string o = "{";
	for (const auto &f : attr_files(dir, false))
		o += (o.size() > 1 ? ", " : "") + json_str(f) + ": " + attr_json(dir + "/" + f);
	return o + "}";
}

// One queue: "name", "node" (the device node, null if missing) and every
// attribute file of /sys/class/shmq/NAME as it is.
std::string queue_json(const std::string &name)
{
	std::string o = "{\"name\": " + json_str(name) + ", \"node\": ";
	struct stat st;
	const std::string node = g.dev_dir + "/" + name;
	if (::stat(node.c_str(), &st) == 0) {
		char m[8];
		std::snprintf(m, sizeof m, "%04o", unsigned(st.st_mode & 07777));
		o += "{\"path\": " + json_str(node) + ", \"type\": " + json_str(mode_string(st.st_mode)) +
		     ", \"mode\": " + json_str(m) + ", \"uid\": " + std::to_string(st.st_uid) +
		     ", \"owner\": " + json_str(id_name("/etc/passwd", st.st_uid)) +
		     ", \"gid\": " + std::to_string(st.st_gid) +
		     ", \"group\": " + json_str(id_name("/etc/group", st.st_gid)) + "}";
	} else {
		o += "null";
	}
	const std::string dir = g.sys_dir + "/" + name;
	for (const auto &f : attr_files(dir, true))
		o += ", " + json_str(f) + ": " +
		     (f == "lanes" ? lanes_json(dir + "/" + f) : attr_json(dir + "/" + f));
	return o + "}";
}

std::string present(const std::string &name, const AttrSpec &a, const std::string &raw,
		    uint64_t capacity)
{
	auto v = parse_u64(raw);
	if (!v)
		return raw;
	switch (a.kind) {
	case Kind::Bytes: {
		std::string s = long_bytes(*v);
		if (std::string_view(a.name) == "bytes_used")
			s += ", " + percent(*v, capacity) + " of the capacity";
		return s;
	}
	case Kind::Pid: {
		if (!*v) {
			// producer_pid -> producers: attached although the pid is 0
			// means the opener exited and a process that inherited its
			// file or mapping holds the attachment (docs/abi.md).
			const std::string side = std::string(a.name).substr(0, std::string(a.name).find('_'));
			if (sys_num(name, (side + "s").c_str()).value_or(0) != 0)
				return "0 (the process that attached has exited; one that inherited "
				       "its file or mapping keeps the attachment)";
			return "0 (none attached)";
		}
		const std::string c = comm_of(*v);
		return raw + (c.empty() ? "" : " (" + c + ")");
	}
	case Kind::Uid:
		return raw + " (" + id_name("/etc/passwd", unsigned(*v)) + ")";
	case Kind::Time: {
		const time_t t = time_t(*v);
		struct tm tm;
		char buf[64];
		if (gmtime_r(&t, &tm) && std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm))
			return raw + " (" + buf + ")";
		return raw;
	}
	default:
		(void)name;
		return raw;
	}
}

int cmd_stat(int argc, char **argv)
{
	Parsed p = parse_args("stat", argc, argv, {{"json", 0, false}}, kStatUsage, "NAME");
	const std::string name = take_name("stat", p.operands);
	no_more("stat", p.operands);
	if (!queue_exists(name))
		die_no_queue(name);
	if (p.has("json")) {
		std::printf("%s\n", queue_json(name).c_str());
		return 0;
	}
	const uint64_t capacity = sys_num(name, "capacity").value_or(0);
	std::vector<std::pair<std::string, std::string>> lines;
	lines.emplace_back("name", name);
	struct stat st;
	const std::string node = g.dev_dir + "/" + name;
	if (::stat(node.c_str(), &st) == 0) {
		char m[8];
		std::snprintf(m, sizeof m, "%04o", unsigned(st.st_mode & 07777));
		lines.emplace_back("device", node + " " + mode_string(st.st_mode) + " (" + m + ") owner " +
						     id_name("/etc/passwd", st.st_uid) + " group " +
						     id_name("/etc/group", st.st_gid));
	} else {
		lines.emplace_back("device", node + " missing (" + std::strerror(errno) +
						     "; is udev running?)");
	}
	std::vector<std::string> known = {"lanes"}; // a table, below
	for (const auto &a : kAttrs) {
		known.push_back(a.name);
		const std::string raw = sys_attr(name, a.name);
		if (raw.empty())
			continue; // an older module without this attribute
		lines.emplace_back(a.name, present(name, a, raw, capacity));
	}
	// Attributes this shmqctl does not know yet (a newer module).
	if (DIR *d = opendir((g.sys_dir + "/" + name).c_str())) {
		std::vector<std::string> extra;
		while (struct dirent *e = readdir(d)) {
			const std::string f = e->d_name;
			struct stat fs;
			if (f[0] == '.' || f == "uevent" || f == "dev" ||
			    std::find(known.begin(), known.end(), f) != known.end())
				continue;
			if (::stat((g.sys_dir + "/" + name + "/" + f).c_str(), &fs) != 0 ||
			    !S_ISREG(fs.st_mode))
				continue;
			extra.push_back(f);
		}
		closedir(d);
		std::sort(extra.begin(), extra.end());
		for (auto &f : extra)
			lines.emplace_back(f, sys_attr(name, f.c_str()));
	}
	lines.emplace_back("messages", "not counted by the kernel (the fast path makes no system "
				       "call; see docs/abi.md)");
	// The producers, lane by lane (an older module has no lanes file).
	std::vector<std::vector<std::string>> table;
	if (const auto rows = lanes_in_use(g.sys_dir + "/" + name + "/lanes")) {
		const auto max = sys_num(name, "max_producers");
		const std::string of = max ? " of " + std::to_string(*max) + " (max_producers)" : "";
		lines.emplace_back("lanes", rows->empty() ? "none in use" + of
							  : std::to_string(rows->size()) + " in use" + of);
		if (!rows->empty())
			table.push_back({"LANE", "STATE", "PID", "UID", "GID", "BYTES", "COMMAND"});
		for (const auto &l : *rows) {
			const auto r = parse_lane_line(l);
			if (!r) {
				table.push_back({l}); // as it is: a format this shmqctl does not know
				continue;
			}
			auto id = [](const char *file, uint32_t v) {
				if (v == UINT32_MAX)
					return std::string("unmapped");
				const std::string n = id_name(file, v);
				return n == std::to_string(v) ? n : std::to_string(v) + "(" + n + ")";
			};
			const std::string comm = r->pid ? comm_of(uint64_t(r->pid)) : "";
			table.push_back({std::to_string(r->lane), r->state, std::to_string(r->pid),
					 id("/etc/passwd", r->uid), id("/etc/group", r->gid),
					 std::to_string(r->queued), comm.empty() ? "-" : comm});
		}
	}
	size_t w = 0;
	for (auto &l : lines)
		w = std::max(w, l.first.size());
	for (auto &l : lines)
		std::printf("%-*s %s\n", int(w + 1), (l.first + ":").c_str(), l.second.c_str());
	// Indented by two, columns two apart; a raw line as it is.
	std::vector<size_t> cw(table.empty() ? 0 : table.front().size(), 0);
	for (auto &row : table)
		if (row.size() == cw.size())
			for (size_t i = 0; i < row.size(); ++i)
				cw[i] = std::max(cw[i], row[i].size());
	for (auto &row : table) {
		std::string out = " ";
		for (size_t i = 0; i < row.size(); ++i) {
			out += " " + row[i];
			if (row.size() == cw.size() && i + 1 < row.size())
				out += std::string(cw[i] - row[i].size() + 1, ' ');
		}
		std::printf("%s\n", out.c_str());
	}
	return 0;
}

// ---------------------------------------------------------------------------
// top

std::string rate(uint64_t delta, double secs, bool bytes)
{
	const double r = secs > 0 ? double(delta) / secs : 0;
	if (bytes)
		return short_bytes(uint64_t(r + 0.5)) + "/s";
	char buf[32];
	std::snprintf(buf, sizeof buf, r < 10 && r != 0 ? "%.1f" : "%.0f", r);
	return buf;
}

int cmd_top(int argc, char **argv)
{
	Parsed p = parse_args("top", argc, argv, {{"delay", 'd', true}, {"iterations", 'n', true}},
			      kTopUsage, nullptr);
	no_more("top", p.operands);
	double interval = 1.0;
	uint64_t iterations = 0;
	if (auto v = p.last("delay")) {
		char *end = nullptr;
		errno = 0;
		interval = std::strtod(v->c_str(), &end);
		if (v->empty() || errno || *end || !(interval >= 0.01) || interval > 86400)
			usage_error("top", "bad -d '" + *v + "': seconds between 0.01 and 86400 expected");
	}
	if (auto v = p.last("iterations")) {
		auto n = parse_u64(*v);
		if (!n || !*n)
			usage_error("top", "bad -n '" + *v + "': a number of screens >= 1 expected");
		iterations = *n;
	}
	const bool tty = isatty(STDOUT_FILENO);
	using clock = std::chrono::steady_clock;
	std::map<std::string, Sample> prev;
	for (auto &n : queue_names())
		prev[n] = sample(n);
	auto t_prev = clock::now();
	for (uint64_t it = 1; iterations == 0 || it <= iterations; ++it) {
		std::this_thread::sleep_for(std::chrono::duration<double>(interval));
		const auto t_now = clock::now();
		const double secs = std::chrono::duration<double>(t_now - t_prev).count();
		std::map<std::string, Sample> cur;
		for (auto &n : queue_names())
			cur[n] = sample(n);
		struct Line {
			Sample s;
			uint64_t d_passed, d_published, d_waits, d_wakes, d_full, d_empty;
		};
		std::vector<Line> lines;
		for (auto &[n, s] : cur) {
			// A queue new in this interval started from zero. Counters that
			// went backwards (recreated queue, or a peer writing garbage into
			// its counter) count as no progress.
			const Sample p = prev.count(n) ? prev[n] : Sample{};
			auto d = [](uint64_t a, uint64_t b) { return a >= b ? a - b : 0; };
			lines.push_back({s, d(s.passed, p.passed), d(s.published, p.published),
					 d(s.waits, p.waits), d(s.wakes, p.wakes), d(s.full, p.full),
					 d(s.empty, p.empty)});
		}
		std::stable_sort(lines.begin(), lines.end(), [](const Line &a, const Line &b) {
			if (a.d_passed != b.d_passed)
				return a.d_passed > b.d_passed;
			return a.d_published > b.d_published;
		});
		std::string out;
		if (tty)
			out += "\033[H\033[2J";
		char head[160];
		const std::time_t now = std::time(nullptr);
		struct tm tm;
		char tbuf[16] = "";
		if (localtime_r(&now, &tm))
			std::strftime(tbuf, sizeof tbuf, "%H:%M:%S", &tm);
		std::snprintf(head, sizeof head, "shmqctl top - %s, screen %llu%s, interval %.2fs\n", tbuf,
			      static_cast<unsigned long long>(it),
			      iterations ? (" of " + std::to_string(iterations)).c_str() : "", secs);
		out += head;
		out += usage_line() + "\n";
		size_t w = 4;
		for (auto &l : lines)
			w = std::max(w, l.s.name.size());
		char row[512];
		std::snprintf(row, sizeof row, "%-*s %11s %11s %6s %8s %8s %8s %8s %8s %8s\n", int(w), "NAME",
			      "PASSED", "PUBLISHED", "USED%", "WAITS/s", "WAKES/s", "FULL/s", "EMPTY/s",
			      "PRODUCER", "CONSUMER");
		out += row;
		for (auto &l : lines) {
			std::snprintf(row, sizeof row, "%-*s %11s %11s %6s %8s %8s %8s %8s %8s %8s\n", int(w),
				      l.s.name.c_str(), rate(l.d_passed, secs, true).c_str(),
				      rate(l.d_published, secs, true).c_str(),
				      percent(l.s.used, l.s.capacity).c_str(), rate(l.d_waits, secs, false).c_str(),
				      rate(l.d_wakes, secs, false).c_str(), rate(l.d_full, secs, false).c_str(),
				      rate(l.d_empty, secs, false).c_str(), pid_or_dash(l.s.producer_pid).c_str(),
				      pid_or_dash(l.s.consumer_pid).c_str());
			out += row;
		}
		if (lines.empty())
			out += "(no queues)\n";
		if (!tty && (iterations == 0 || it < iterations))
			out += "\n";
		std::fputs(out.c_str(), stdout);
		if (std::fflush(stdout) != 0 || std::ferror(stdout))
			return kExitFail; // reader went away (e.g. | head)
		prev = std::move(cur);
		t_prev = t_now;
	}
	return 0;
}

int cmd_send(int argc, char **argv)
{
	Parsed a = parse_args("send", argc, argv,
			      {{"timeout", 0, true}, {"fail-without-consumer", 0, false}}, kSendUsage,
			      "NAME or MESSAGE");
	const std::string name = take_name("send", a.operands);
	const std::optional<uint64_t> timeout_ms = ms_option("send", a, "timeout");
	const bool fail_without_consumer = a.has("fail-without-consumer");
	const std::vector<std::string> &msgs = a.operands;
	// Queue semantics (issue 10): the messages wait for a consumer, and a
	// full ring waits for one to drain it, however often consumers come
	// and go. --fail-without-consumer: 0.4's pipe semantics (EPIPE).
	shmq::OpenOptions oo;
	oo.dev_dir = g.dev_dir;
	oo.ignore_hangup = !fail_without_consumer;
	auto p = shmq::Producer::open(name, oo);
	if (!p) {
		const int e = p.error().code();
		if (e == ENOENT && !queue_exists(name))
			die_no_queue(name);
		// The library's sentence is about a queue of one producer.
		if (e == EBUSY) {
			const auto lanes = sys_num(name, "max_producers");
			if (lanes && *lanes > 1)
				die("send", name + ": every lane of the queue is taken (max_producers " +
						    std::to_string(*lanes) + "): each is attached to a producer or "
						    "still holds messages of one that has gone, until the "
						    "consumer receives them (see 'shmqctl stat " + name + "')");
		}
		die("send", name + ": " + describe(p.error()));
	}
	auto send_one = [&](const std::string &m) {
		auto r = p->send(std::as_bytes(std::span(m.data(), m.size())), timeout_from_ms(timeout_ms));
		if (!r) {
			if (r.error().code() == EPIPE)
				die("send", name + ": the ring is full and the consumer has gone "
						   "(--fail-without-consumer; without it send waits for a consumer "
						   "to drain the queue)");
			die("send", name + ": " + describe(r.error()));
		}
	};
	if (!msgs.empty()) {
		for (const auto &m : msgs)
			send_one(m);
	} else {
		std::string line;
		while (std::getline(std::cin, line))
			send_one(line);
	}
	return 0;
}

// What recv writes to stdout: flushed at once, a failure to write (full
// disk, closed pipe) is fatal.
void put_out(const std::string &s)
{
	std::fwrite(s.data(), 1, s.size(), stdout);
	if (std::fflush(stdout) != 0 || std::ferror(stdout))
		die("recv", std::string("writing to stdout: ") + std::strerror(errno));
}

std::string sender_words(const shmq::Sender &s)
{
	return std::to_string(s.uid) + " " + std::to_string(s.pid);
}

int cmd_recv(int argc, char **argv)
{
	Parsed a = parse_args("recv", argc, argv,
			      {{"count", 0, true}, {"timeout", 0, true}, {"sender", 0, false}}, kRecvUsage,
			      "NAME");
	const std::string name = take_name("recv", a.operands);
	no_more("recv", a.operands);
	uint64_t count = 1;
	if (auto v = a.last("count")) {
		auto n = parse_u64(*v);
		if (!n)
			usage_error("recv", "bad --count '" + *v + "': a number of messages expected");
		count = *n;
	}
	const std::optional<uint64_t> timeout_ms = ms_option("recv", a, "timeout");
	const bool with_sender = a.has("sender");
	auto c = shmq::Consumer::open(name, {.dev_dir = g.dev_dir});
	if (!c) {
		if (c.error().code() == ENOENT && !queue_exists(name))
			die_no_queue(name);
		die("recv", name + ": " + describe(c.error()));
	}
	// Only a lane queue records senders; the library's "unknown" sender on
	// any other would look like a sender the kernel vouches for.
	if (with_sender && !c->info().lanes)
		die("recv", name + ": --sender needs a lane queue (made by 'shmqctl create NAME --size "
				   "BYTES --producers N'): a queue of one producer does not record who "
				   "sent each message");
	// Lane events: END lines (--sender), and the sender of a corrupt lane
	// for the warning. The library notes an end only after the lane's last
	// message was released, so an END line follows that lane's messages.
	std::vector<shmq::LaneEvent> events(64);
	std::map<uint32_t, shmq::LaneEvent> corrupt; // by lane: the latest report
	auto take_events = [&] {
		std::string out;
		for (size_t n = events.size(); n == events.size();) {
			n = c->events(events);
			for (size_t i = 0; i < n; ++i) {
				const shmq::LaneEvent &ev = events[i];
				if (ev.kind == shmq::LaneEvent::Kind::ended && with_sender)
					out += "END " + sender_words(ev.sender) + "\n";
				else if (ev.kind == shmq::LaneEvent::Kind::corrupt)
					corrupt[ev.lane] = ev;
			}
		}
		if (!out.empty())
			put_out(out);
	};
	// A producer that wrote garbage into its lane: say who, drop the lane
	// (the kernel detaches it; its producer gets ECONNRESET) and go on.
	auto drop_corrupt = [&](uint32_t lane) {
		std::string who = "sender unknown";
		if (auto it = corrupt.find(lane); it != corrupt.end())
			who = "uid " + std::to_string(it->second.sender.uid) + ", pid " +
			      std::to_string(it->second.sender.pid);
		std::string what = "lane " + std::to_string(lane) + " (" + who +
				   ") is corrupt: its producer wrote invalid records";
		if (auto d = c->drop_lane(lane); d || d.error().code() == ENOENT)
			what += "; dropped it, receiving from the other lanes";
		else
			what += "; dropping it failed (" + describe(d.error()) +
				"), receiving from the other lanes";
		std::fflush(stdout);
		std::fprintf(stderr, "shmqctl: recv: %s: warning: %s\n", name.c_str(), what.c_str());
		corrupt.erase(lane);
	};
	uint64_t got = 0;
	while (count == 0 || got < count) {
		auto m = c->peek(timeout_from_ms(timeout_ms));
		take_events();
		if (!m) {
			const int e = m.error().code();
			if (e == EBADMSG && m.error().lane() >= 0) {
				drop_corrupt(static_cast<uint32_t>(m.error().lane()));
				continue;
			}
			if (count == 0 && (e == ETIMEDOUT || e == EPIPE || e == EIDRM))
				break;
			std::string why = name + ": " + describe(m.error());
			if (count > 1)
				why += " (received " + std::to_string(got) + " of " + std::to_string(count) + ")";
			die("recv", why);
		}
		std::string line;
		if (with_sender)
			line = sender_words(m->sender()) + "\t";
		line.append(reinterpret_cast<const char *>(m->data().data()), m->size());
		line += '\n';
		put_out(line);
		// Released only once written: a message is not lost to a full disk.
		if (auto r = c->release(); !r)
			die("recv", name + ": " + describe(r.error()));
		++got;
	}
	take_events();
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	int next = 0;
	const Parsed p = parse_args("shmqctl", argc, argv,
				    {{"dev-dir", 0, true}, {"control", 0, true}, {"sysfs", 0, true},
				     {"version", 0, false}},
				    kGlobalUsage, nullptr, &next);
	for (const auto &[opt, v] : p.opts) {
		if (opt == "version") {
			shmq::cli::print_version("shmqctl");
			return 0;
		}
		if (opt == "dev-dir") {
			g.dev_dir = v;
		} else if (opt == "control") {
			g.control = v;
		} else if (opt == "sysfs") {
			g.sys_dir = v + "/class/shmq";
			g.module_dir = v + "/module/shmq";
		}
	}
	if (next >= argc) {
		std::fputs("shmqctl: missing command (see 'shmqctl --help')\n", stderr);
		return kExitUsage;
	}
	const std::string_view cmd = argv[next];
	const int cargc = argc - next;
	char **cargv = argv + next;
	if (cmd == "create")
		return cmd_create(cargc, cargv);
	if (cmd == "destroy")
		return cmd_destroy(cargc, cargv);
	if (cmd == "list")
		return cmd_list(cargc, cargv);
	if (cmd == "stat")
		return cmd_stat(cargc, cargv);
	if (cmd == "top")
		return cmd_top(cargc, cargv);
	if (cmd == "send")
		return cmd_send(cargc, cargv);
	if (cmd == "recv")
		return cmd_recv(cargc, cargv);
	if (cmd == "help") {
		std::fputs(kGlobalUsage, stdout);
		return 0;
	}
	std::fprintf(stderr, "shmqctl: %.*s: unknown command (see 'shmqctl --help')\n",
		     static_cast<int>(cmd.size()), cmd.data());
	return kExitUsage;
}

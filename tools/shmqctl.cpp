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
	"  create NAME --size BYTES   create a queue (root: needs /dev/shmq-control)\n"
	"  destroy NAME               destroy a queue\n"
	"  list                       list queues like ls -l: mode, owner, group, size, use, peers\n"
	"  stat NAME                  show everything the kernel knows about one queue\n"
	"  top [-d SECS] [-n ITER]    live view of all queues, busiest first\n"
	"  send NAME [MESSAGE...]     send the arguments, or each line of stdin, as messages\n"
	"  recv NAME [--count N] [--timeout MS]\n"
	"                             receive messages, one per line on stdout\n"
	"\n"
	"Options:\n"
	"  --dev-dir DIR     queue device directory (default /dev/shmq)\n"
	"  --control PATH    control device (default /dev/shmq-control)\n"
	"  --sysfs DIR       where sysfs is mounted (default /sys)\n"
	"  -h, --help        this help; 'shmqctl COMMAND --help' for a command\n"
	"  --version         versions of shmqctl, libshmq and the loaded module\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 usage error.\n";

const char kCreateUsage[] =
	"usage: shmqctl create NAME --size BYTES\n"
	"Create queue NAME with a ring of BYTES data bytes: a power of two, at least\n"
	"4096, with an optional suffix K, M or G (powers of 1024), e.g. 64K or 1M.\n"
	"Names: 1 to 63 characters of [A-Za-z0-9_.-], not starting with '.' or '-'.\n"
	"The device /dev/shmq/NAME appears; its mode and group (udev rules) decide who\n"
	"may send (write permission) and receive (read permission).\n";
const char kDestroyUsage[] =
	"usage: shmqctl destroy NAME\n"
	"Remove queue NAME. Its device disappears at once; attached peers see EIDRM\n"
	"when the ring is empty, and the memory is freed when the last one lets go.\n";
const char kListUsage[] =
	"usage: shmqctl list\n"
	"List the queues (from /sys/class/shmq) like ls -l: mode, owner and group of\n"
	"/dev/shmq/NAME, capacity, bytes used and their share of the capacity, and the\n"
	"pids of the attached producer and consumer ('-' when none). The last line\n"
	"gives the module's totals (/sys/module/shmq/usage) against its limits.\n";
const char kStatUsage[] =
	"usage: shmqctl stat NAME\n"
	"Show every attribute of /sys/class/shmq/NAME (sizes also in KiB/MiB/GiB, pids\n"
	"with their command names), and the owner, group and mode of /dev/shmq/NAME.\n"
	"docs/abi.md defines each attribute.\n";
const char kTopUsage[] =
	"usage: shmqctl top [-d SECS] [-n ITER]\n"
	"Show all queues every SECS seconds (default 1, fractions allowed), busiest\n"
	"first: bytes passed per second (the consumer's counter), bytes published per\n"
	"second, fill level, and waits, wakes, full and empty events per second, all\n"
	"from counter deltas over the interval. Stops after ITER screens (default:\n"
	"until interrupted). On a terminal each screen replaces the last; otherwise\n"
	"the screens are printed one after another.\n";
const char kSendUsage[] =
	"usage: shmqctl send NAME [--timeout MS] [MESSAGE...]\n"
	"Send each MESSAGE argument as one message; without arguments, send each line\n"
	"of standard input (without its newline) as one message. Waits while the ring\n"
	"is full, for at most MS milliseconds per message if --timeout is given.\n";
const char kRecvUsage[] =
	"usage: shmqctl recv NAME [--count N] [--timeout MS]\n"
	"Receive N messages (default 1; 0 = until the timeout passes without a\n"
	"message, or the producer goes away) and print each on its own line.\n"
	"Waits at most MS milliseconds for each message (default: forever).\n";

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

bool is_help(std::string_view a) { return a == "--help" || a == "-h"; }

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

// Splits "NAME [options...]" for commands taking a queue name.
std::string take_name(std::string_view cmd, std::vector<std::string_view> &args, const char *usage)
{
	for (auto a : args) {
		if (a == "--")
			break;
		if (is_help(a)) {
			std::fputs(usage, stdout);
			std::exit(0);
		}
	}
	if (args.empty() || args[0].starts_with("-"))
		usage_error(cmd, "missing queue NAME");
	std::string name(args[0]);
	args.erase(args.begin());
	if (auto v = shmq::validate_name(name); !v)
		usage_error(cmd, v.error().what());
	return name;
}

// The value of option @opt at args[i] ("--opt V" or "--opt=V"), advancing i.
std::optional<std::string_view> option_value(std::string_view cmd, std::vector<std::string_view> &args,
					     size_t &i, std::string_view opt)
{
	const std::string_view a = args[i];
	if (a == opt) {
		if (i + 1 >= args.size())
			usage_error(cmd, std::string(opt) + " needs a value");
		return args[++i];
	}
	if (a.size() > opt.size() && a.starts_with(opt) && a[opt.size()] == '=')
		return a.substr(opt.size() + 1);
	return std::nullopt;
}

shmq::Timeout timeout_from_ms(std::optional<uint64_t> ms)
{
	if (!ms)
		return shmq::Timeout::infinite();
	return shmq::Timeout::after(std::chrono::milliseconds(*ms));
}

int cmd_create(std::vector<std::string_view> args)
{
	const std::string name = take_name("create", args, kCreateUsage);
	std::optional<uint64_t> size;
	for (size_t i = 0; i < args.size(); ++i) {
		if (auto v = option_value("create", args, i, "--size")) {
			size = parse_size(*v);
			if (!size)
				usage_error("create", "bad size '" + std::string(*v) +
							      "': use a number with an optional K, M or G suffix");
		} else {
			usage_error("create", "unexpected argument '" + std::string(args[i]) + "'");
		}
	}
	if (!size)
		usage_error("create", "missing --size BYTES");
	if (*size < SHMQ_MIN_CAPACITY || (*size & (*size - 1)) != 0)
		usage_error("create", "size " + std::to_string(*size) +
					      " is not a power of two of at least 4096 (e.g. 4K, 64K, 1M)");
	if (auto r = shmq::create_queue(name, *size, g.control); !r)
		die("create", name + ": " + describe(r.error()));
	return 0;
}

int cmd_destroy(std::vector<std::string_view> args)
{
	const std::string name = take_name("destroy", args, kDestroyUsage);
	if (!args.empty())
		usage_error("destroy", "unexpected argument '" + std::string(args[0]) + "'");
	if (auto r = shmq::destroy_queue(name, g.control); !r) {
		if (r.error().code() == ENOENT && !queue_exists(name))
			die_no_queue(name);
		die("destroy", name + ": " + describe(r.error()));
	}
	return 0;
}

int cmd_list(std::vector<std::string_view> args)
{
	for (auto a : args) {
		if (is_help(a)) {
			std::fputs(kListUsage, stdout);
			return 0;
		}
		usage_error("list", "unexpected argument '" + std::string(a) + "'");
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
	{"capacity", Kind::Bytes},	 {"max_message", Kind::Bytes},
	{"bytes_used", Kind::Bytes},	 {"producers", Kind::Count},
	{"producer_pid", Kind::Pid},	 {"consumers", Kind::Count},
	{"consumer_pid", Kind::Pid},	 {"bytes_published", Kind::Bytes},
	{"bytes_passed", Kind::Bytes},	 {"waits", Kind::Count},
	{"wakes", Kind::Count},		 {"full_events", Kind::Count},
	{"empty_events", Kind::Count},	 {"created_by_uid", Kind::Uid},
	{"created_at", Kind::Time},
};

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
		if (!*v)
			return "0 (none attached)";
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

int cmd_stat(std::vector<std::string_view> args)
{
	const std::string name = take_name("stat", args, kStatUsage);
	if (!args.empty())
		usage_error("stat", "unexpected argument '" + std::string(args[0]) + "'");
	if (!queue_exists(name))
		die_no_queue(name);
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
	std::vector<std::string> known;
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
	size_t w = 0;
	for (auto &l : lines)
		w = std::max(w, l.first.size());
	for (auto &l : lines)
		std::printf("%-*s %s\n", int(w + 1), (l.first + ":").c_str(), l.second.c_str());
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

int cmd_top(std::vector<std::string_view> args)
{
	double interval = 1.0;
	uint64_t iterations = 0;
	for (size_t i = 0; i < args.size(); ++i) {
		if (is_help(args[i])) {
			std::fputs(kTopUsage, stdout);
			return 0;
		}
		std::optional<std::string_view> v;
		if ((v = option_value("top", args, i, "-d")) || (v = option_value("top", args, i, "--delay"))) {
			char *end = nullptr;
			const std::string t(*v);
			errno = 0;
			interval = std::strtod(t.c_str(), &end);
			if (t.empty() || errno || *end || !(interval >= 0.01) || interval > 86400)
				usage_error("top", "bad -d '" + t + "': seconds between 0.01 and 86400 expected");
		} else if ((v = option_value("top", args, i, "-n")) ||
			   (v = option_value("top", args, i, "--iterations"))) {
			auto n = parse_u64(*v);
			if (!n || !*n)
				usage_error("top", "bad -n '" + std::string(*v) + "': a number of screens >= 1 expected");
			iterations = *n;
		} else {
			usage_error("top", "unexpected argument '" + std::string(args[i]) + "'");
		}
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

int cmd_send(std::vector<std::string_view> args)
{
	const std::string name = take_name("send", args, kSendUsage);
	std::optional<uint64_t> timeout_ms;
	std::vector<std::string_view> msgs;
	bool options_done = false;
	for (size_t i = 0; i < args.size(); ++i) {
		if (!options_done && args[i] == "--") {
			options_done = true;
			continue;
		}
		if (!options_done) {
			if (auto v = option_value("send", args, i, "--timeout")) {
				timeout_ms = parse_u64(*v);
				if (!timeout_ms)
					usage_error("send", "bad --timeout '" + std::string(*v) +
								    "': milliseconds expected");
				continue;
			}
		}
		msgs.push_back(args[i]);
	}
	auto p = shmq::Producer::open(name, {.dev_dir = g.dev_dir});
	if (!p) {
		if (p.error().code() == ENOENT && !queue_exists(name))
			die_no_queue(name);
		die("send", name + ": " + describe(p.error()));
	}
	auto send_one = [&](std::string_view m) {
		auto r = p->send(std::as_bytes(std::span(m.data(), m.size())), timeout_from_ms(timeout_ms));
		if (!r)
			die("send", name + ": " + describe(r.error()));
	};
	if (!msgs.empty()) {
		for (auto m : msgs)
			send_one(m);
	} else {
		std::string line;
		while (std::getline(std::cin, line))
			send_one(line);
	}
	return 0;
}

int cmd_recv(std::vector<std::string_view> args)
{
	const std::string name = take_name("recv", args, kRecvUsage);
	uint64_t count = 1;
	std::optional<uint64_t> timeout_ms;
	for (size_t i = 0; i < args.size(); ++i) {
		if (auto v = option_value("recv", args, i, "--count")) {
			auto n = parse_u64(*v);
			if (!n)
				usage_error("recv", "bad --count '" + std::string(*v) + "'");
			count = *n;
		} else if (auto t = option_value("recv", args, i, "--timeout")) {
			timeout_ms = parse_u64(*t);
			if (!timeout_ms)
				usage_error("recv", "bad --timeout '" + std::string(*t) +
							    "': milliseconds expected");
		} else {
			usage_error("recv", "unexpected argument '" + std::string(args[i]) + "'");
		}
	}
	auto c = shmq::Consumer::open(name, {.dev_dir = g.dev_dir});
	if (!c) {
		if (c.error().code() == ENOENT && !queue_exists(name))
			die_no_queue(name);
		die("recv", name + ": " + describe(c.error()));
	}
	uint64_t got = 0;
	while (count == 0 || got < count) {
		auto m = c->peek(timeout_from_ms(timeout_ms));
		if (!m) {
			const int e = m.error().code();
			if (count == 0 && (e == ETIMEDOUT || e == EPIPE || e == EIDRM))
				break;
			std::string why = name + ": " + describe(m.error());
			if (count > 1)
				why += " (received " + std::to_string(got) + " of " + std::to_string(count) + ")";
			die("recv", why);
		}
		std::fwrite(m->data().data(), 1, m->size(), stdout);
		std::fputc('\n', stdout);
		if (std::fflush(stdout) != 0 || std::ferror(stdout))
			die("recv", std::string("writing to stdout: ") + std::strerror(errno));
		// Released only once written: a message is not lost to a full disk.
		if (auto r = c->release(); !r)
			die("recv", name + ": " + describe(r.error()));
		++got;
	}
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	std::vector<std::string_view> args(argv + 1, argv + argc);
	size_t i = 0;
	for (; i < args.size() && args[i].starts_with("-"); ++i) {
		if (is_help(args[i])) {
			std::fputs(kGlobalUsage, stdout);
			return 0;
		}
		if (args[i] == "--version") {
			shmq::cli::print_version("shmqctl");
			return 0;
		}
		if (auto v = option_value("shmqctl", args, i, "--dev-dir"))
			g.dev_dir = *v;
		else if (auto c = option_value("shmqctl", args, i, "--control"))
			g.control = *c;
		else if (auto y = option_value("shmqctl", args, i, "--sysfs")) {
			g.sys_dir = std::string(*y) + "/class/shmq";
			g.module_dir = std::string(*y) + "/module/shmq";
		}
		else {
			std::fprintf(stderr, "shmqctl: unknown option '%.*s' (see 'shmqctl --help')\n",
				     static_cast<int>(args[i].size()), args[i].data());
			return kExitUsage;
		}
	}
	if (i == args.size()) {
		std::fputs("shmqctl: missing command (see 'shmqctl --help')\n", stderr);
		return kExitUsage;
	}
	const std::string_view cmd = args[i];
	std::vector<std::string_view> rest(args.begin() + static_cast<long>(i) + 1, args.end());
	if (cmd == "create")
		return cmd_create(rest);
	if (cmd == "destroy")
		return cmd_destroy(rest);
	if (cmd == "list")
		return cmd_list(rest);
	if (cmd == "stat")
		return cmd_stat(rest);
	if (cmd == "top")
		return cmd_top(rest);
	if (cmd == "send")
		return cmd_send(rest);
	if (cmd == "recv")
		return cmd_recv(rest);
	if (cmd == "help") {
		std::fputs(kGlobalUsage, stdout);
		return 0;
	}
	std::fprintf(stderr, "shmqctl: %.*s: unknown command (see 'shmqctl --help')\n",
		     static_cast<int>(cmd.size()), cmd.data());
	return kExitUsage;
}

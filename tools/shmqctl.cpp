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
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>
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
};
Global g;

const char kGlobalUsage[] =
	"usage: shmqctl [--dev-dir DIR] [--control PATH] COMMAND [ARGS]\n"
	"\n"
	"Commands:\n"
	"  create NAME --size BYTES   create a queue (root: needs /dev/shmq-control)\n"
	"  destroy NAME               destroy a queue\n"
	"  list                       list queues with size, usage, peers and permissions\n"
	"  stat NAME                  show everything known about one queue\n"
	"  send NAME [MESSAGE...]     send the arguments, or each line of stdin, as messages\n"
	"  recv NAME [--count N] [--timeout MS]\n"
	"                             receive messages, one per line on stdout\n"
	"\n"
	"Options:\n"
	"  --dev-dir DIR     queue device directory (default /dev/shmq)\n"
	"  --control PATH    control device (default /dev/shmq-control)\n"
	"  -h, --help        this help; 'shmqctl COMMAND --help' for a command\n"
	"  --version         versions of shmqctl, libshmq and the loaded module\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 usage error.\n";

const char kCreateUsage[] =
	"usage: shmqctl create NAME --size BYTES\n"
	"Create queue NAME with a ring of BYTES data bytes: a power of two, at least\n"
	"4096, with an optional suffix K, M or G (powers of 1024), e.g. 64K or 1M.\n"
	"Names: 1 to 63 characters of [A-Za-z0-9_.-], not starting with '.'.\n"
	"The device /dev/shmq/NAME appears; its mode and group (udev rules) decide who\n"
	"may send (write permission) and receive (read permission).\n";
const char kDestroyUsage[] =
	"usage: shmqctl destroy NAME\n"
	"Remove queue NAME. Its device disappears at once; attached peers see EIDRM\n"
	"when the ring is empty, and the memory is freed when the last one lets go.\n";
const char kListUsage[] =
	"usage: shmqctl list\n"
	"List the queues (from /sys/class/shmq): name, capacity, bytes used, attached\n"
	"producers and consumers, and owner, group and mode of /dev/shmq/NAME.\n";
const char kStatUsage[] =
	"usage: shmqctl stat NAME\n"
	"Show capacity, largest message, bytes used, attached peers and their pids,\n"
	"and the device node's owner, group and mode.\n";
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

std::string human(uint64_t bytes)
{
	static const char *units[] = {"", "K", "M", "G", "T"};
	unsigned u = 0;
	while (u < 4 && bytes >= 1024 && bytes % 1024 == 0) {
		bytes /= 1024;
		++u;
	}
	return std::to_string(bytes) + units[u];
}

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

struct NodeInfo {
	bool ok = false;
	std::string owner, group, mode;
};

NodeInfo node_info(const std::string &name)
{
	NodeInfo n;
	struct stat st;
	if (::stat((g.dev_dir + "/" + name).c_str(), &st) != 0)
		return n;
	n.ok = true;
	n.owner = id_name("/etc/passwd", st.st_uid);
	n.group = id_name("/etc/group", st.st_gid);
	char m[8];
	std::snprintf(m, sizeof m, "%04o", static_cast<unsigned>(st.st_mode & 07777));
	n.mode = m;
	return n;
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
	if (auto r = shmq::destroy_queue(name, g.control); !r)
		die("destroy", name + ": " + describe(r.error()));
	return 0;
}

std::vector<std::string> queue_names(std::string_view cmd)
{
	DIR *d = opendir(g.sys_dir.c_str());
	if (!d)
		die(cmd, g.sys_dir + ": " + std::strerror(errno) +
				 (errno == ENOENT ? " (is the shmq module loaded? modprobe shmq)" : ""));
	std::vector<std::string> names;
	while (struct dirent *e = readdir(d))
		if (e->d_name[0] != '.')
			names.emplace_back(e->d_name);
	closedir(d);
	std::sort(names.begin(), names.end());
	return names;
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
	const auto names = queue_names("list");
	size_t w = 4;
	for (auto &n : names)
		w = std::max(w, n.size());
	std::printf("%-*s %10s %10s %9s %9s %-8s %-8s %s\n", static_cast<int>(w), "NAME", "CAPACITY",
		    "USED", "PRODUCERS", "CONSUMERS", "OWNER", "GROUP", "MODE");
	for (auto &n : names) {
		const NodeInfo ni = node_info(n);
		std::printf("%-*s %10s %10s %9s %9s %-8s %-8s %s\n", static_cast<int>(w), n.c_str(),
			    sys_attr(n, "capacity").c_str(), sys_attr(n, "bytes_used").c_str(),
			    sys_attr(n, "producers").c_str(), sys_attr(n, "consumers").c_str(),
			    ni.ok ? ni.owner.c_str() : "-", ni.ok ? ni.group.c_str() : "-",
			    ni.ok ? ni.mode.c_str() : "-");
	}
	return 0;
}

int cmd_stat(std::vector<std::string_view> args)
{
	const std::string name = take_name("stat", args, kStatUsage);
	if (!args.empty())
		usage_error("stat", "unexpected argument '" + std::string(args[0]) + "'");
	struct stat st;
	if (::stat((g.sys_dir + "/" + name).c_str(), &st) != 0)
		die("stat", name + ": no such queue" +
				    (errno == ENOENT ? std::string(" (shmqctl list shows the queues)")
						     : std::string(": ") + std::strerror(errno)));
	const std::string cap = sys_attr(name, "capacity");
	const auto capn = parse_u64(cap);
	std::printf("name:         %s\n", name.c_str());
	std::printf("capacity:     %s bytes%s\n", cap.c_str(),
		    capn ? (" (" + human(*capn) + ")").c_str() : "");
	if (capn && *capn >= 16)
		std::printf("max_message:  %llu bytes\n",
			    static_cast<unsigned long long>(*capn / 4 - sizeof(shmq_record)));
	std::printf("bytes_used:   %s\n", sys_attr(name, "bytes_used").c_str());
	for (const char *a : {"producers", "producer_pid", "consumers", "consumer_pid"}) {
		const std::string v = sys_attr(name, a);
		if (!v.empty())
			std::printf("%-13s %s\n", (std::string(a) + ":").c_str(), v.c_str());
	}
	const NodeInfo ni = node_info(name);
	if (ni.ok)
		std::printf("device:       %s/%s owner %s group %s mode %s\n", g.dev_dir.c_str(),
			    name.c_str(), ni.owner.c_str(), ni.group.c_str(), ni.mode.c_str());
	else
		std::printf("device:       %s/%s missing (udev not running?)\n", g.dev_dir.c_str(),
			    name.c_str());
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
	if (!p)
		die("send", name + ": " + describe(p.error()));
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
	if (!c)
		die("recv", name + ": " + describe(c.error()));
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

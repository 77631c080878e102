// SPDX-License-Identifier: MIT
// shmq-demo: stream checked messages between two processes through a real
// shmq queue and report throughput, verification and the device's
// permissions. Statically linked for minimal (busybox) systems, so user and
// group names come from /etc/passwd and /etc/group directly.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <csignal>
#include <fstream>
#include <getopt.h>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "cli_parse.hpp"
#include "cli_version.hpp"
#include <shmq/shmq.hpp>
#include <shmq/uapi.h>

namespace {

const char kUsage[] =
	"usage: shmq-demo [--queue NAME] [--size BYTES] [--count N] [--msg-size BYTES]\n"
	"                 [--spin N] [--dev-dir DIR] | --version\n"
	"Creates queue NAME (default shmq-demo) of BYTES (default 1M; K/M/G suffixes)\n"
	"or uses it if it exists, forks a consumer and a producer, streams N messages\n"
	"(default 1000000) of --msg-size bytes (default 64, at least 16) each carrying\n"
	"a sequence number and a checksum, verifies every one in the consumer, prints\n"
	"throughput and the device node's owner, group and mode, and destroys the queue\n"
	"if it created it. --spin N busy-polls N times before sleeping in the kernel.\n"
	"Options take --opt VALUE or --opt=VALUE; '--' ends them.\n"
	"Exit status: 0 all verified, 1 failure or verification error, 2 usage error.\n";

struct Options {
	std::string queue = "shmq-demo";
	uint64_t size = 1 << 20;
	uint64_t count = 1000000;
	uint64_t msg_size = 64;
	uint32_t spin = 0;
	std::string dev_dir = "/dev/shmq";
};

// Written by the children, read by the parent (MAP_SHARED anonymous).
struct Shared {
	uint64_t start_ns;	 // producer: before its first send
	uint64_t end_ns;	 // consumer: after its last release
	uint64_t received;	 // messages that arrived
	uint64_t bytes;		 // their payload bytes
	uint64_t out_of_order;	 // sequence number not the expected one
	uint64_t corrupt;	 // wrong size or checksum
	char producer_err[256];	 // first error of each child, if any
	char consumer_err[256];
};

[[noreturn]] void usage_error(const std::string &why)
{
	std::fprintf(stderr, "shmq-demo: %s (see 'shmq-demo --help')\n", why.c_str());
	std::exit(2);
}

using shmq::cli::parse_size;
using shmq::cli::parse_u64;

Options parse(int argc, char **argv)
{
	Options o;
	enum { kQueue = 0x100, kSize, kCount, kMsgSize, kSpin, kDevDir, kHelp, kVersion };
	static const struct option lo[] = {
		{"queue", required_argument, nullptr, kQueue},	  {"size", required_argument, nullptr, kSize},
		{"count", required_argument, nullptr, kCount},	  {"msg-size", required_argument, nullptr, kMsgSize},
		{"spin", required_argument, nullptr, kSpin},	  {"dev-dir", required_argument, nullptr, kDevDir},
		{"help", no_argument, nullptr, kHelp},		  {"version", no_argument, nullptr, kVersion},
		{nullptr, 0, nullptr, 0},
	};
	auto need = [&](std::optional<uint64_t> v, const char *what) {
		if (!v)
			usage_error("bad --" + std::string(what) + " '" + optarg + "'");
		return *v;
	};
	opterr = 0;
	// getopt_long: --opt value or --opt=value, unique abbreviations, '--'
	// ends the options (shmq-demo takes no other arguments).
	for (int c; (c = getopt_long(argc, argv, "+:h", lo, nullptr)) != -1;) {
		switch (c) {
		case 'h':
		case kHelp:
			std::fputs(kUsage, stdout);
			std::exit(0);
		case kVersion:
			shmq::cli::print_version("shmq-demo");
			std::exit(0);
		case kQueue:
			o.queue = optarg;
			break;
		case kSize:
			o.size = need(parse_size(optarg), "size");
			break;
		case kCount:
			o.count = need(parse_u64(optarg), "count");
			break;
		case kMsgSize:
			o.msg_size = need(parse_size(optarg), "msg-size");
			break;
		case kSpin:
			o.spin = static_cast<uint32_t>(std::min<uint64_t>(need(parse_u64(optarg), "spin"), UINT32_MAX));
			break;
		case kDevDir:
			o.dev_dir = optarg;
			break;
		case ':':
			usage_error("option '" + std::string(argv[optind - 1]) + "' needs a value");
		default: {
			std::string w = optopt ? std::string("-") + char(optopt) : std::string(argv[optind - 1]);
			usage_error("unknown option '" + w.substr(0, w.find('=')) + "'");
		}
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '" + std::string(argv[optind]) + "'");
	if (auto v = shmq::validate_name(o.queue); !v)
		usage_error(v.error().what());
	if (o.size < SHMQ_MIN_CAPACITY || (o.size & (o.size - 1)) != 0)
		usage_error("--size " + std::to_string(o.size) +
			    " is not a power of two of at least 4096 (e.g. 64K, 1M)");
	if (o.msg_size < 16)
		usage_error("--msg-size must be at least 16 (sequence number and checksum)");
	if (o.msg_size > o.size / 4 - sizeof(shmq_record))
		usage_error("--msg-size " + std::to_string(o.msg_size) +
			    " is above the queue's largest message (size/4 - 8 = " +
			    std::to_string(o.size / 4 - sizeof(shmq_record)) + ")");
	return o;
}

uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

// Over bytes [16, n): word at a time, then the tail bytes.
uint64_t checksum(const std::byte *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ n;
	size_t i = 16;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		std::memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < n; ++i)
		h = (h ^ static_cast<uint8_t>(p[i])) * 0x100000001b3ULL;
	return h;
}

// Message @seq: [seq][checksum][payload derived from seq].
void fill(std::byte *m, size_t n, uint64_t seq)
{
	uint64_t x = mix(seq) | 1;
	for (size_t i = 16; i < n; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		std::memcpy(m + i, &x, std::min<size_t>(8, n - i));
	}
	const uint64_t sum = checksum(m, n);
	std::memcpy(m, &seq, 8);
	std::memcpy(m + 8, &sum, 8);
}

void set_err(char *dst, const std::string &s)
{
	if (!dst[0])
		std::snprintf(dst, 256, "%s", s.c_str());
}

int run_producer(const Options &o, Shared *sh)
{
	auto p = shmq::Producer::open(o.queue, {.dev_dir = o.dev_dir, .spin = o.spin});
	if (!p) {
		set_err(sh->producer_err, "open: " + p.error().message());
		return 1;
	}
	std::vector<std::byte> buf(o.msg_size);
	sh->start_ns = shmq::monotonic_now_ns();
	for (uint64_t seq = 0; seq < o.count; ++seq) {
		// Zero-copy: fill the message in the ring itself.
		auto r = p->reserve(o.msg_size, shmq::Timeout::after(std::chrono::seconds(60)));
		if (!r) {
			set_err(sh->producer_err, "message " + std::to_string(seq) + ": " +
							  r.error().message());
			return 1;
		}
		fill(r->data().data(), o.msg_size, seq);
		if (auto c = p->commit(std::move(*r)); !c) {
			set_err(sh->producer_err, "commit: " + c.error().message());
			return 1;
		}
	}
	return 0;
}

int run_consumer(const Options &o, Shared *sh)
{
	auto c = shmq::Consumer::open(o.queue, {.dev_dir = o.dev_dir, .spin = o.spin});
	if (!c) {
		set_err(sh->consumer_err, "open: " + c.error().message());
		return 1;
	}
	uint64_t expect = 0;
	while (sh->received < o.count) {
		auto m = c->peek(shmq::Timeout::after(std::chrono::seconds(60)));
		if (!m) {
			set_err(sh->consumer_err, "after " + std::to_string(sh->received) +
							  " messages: " + m.error().message());
			break;
		}
		const std::byte *d = m->data().data();
		const size_t n = m->size();
		uint64_t seq = UINT64_MAX, sum = 0;
		if (n >= 16) {
			std::memcpy(&seq, d, 8);
			std::memcpy(&sum, d + 8, 8);
		}
		if (n != o.msg_size || sum != checksum(d, n)) {
			if (!sh->corrupt++)
				set_err(sh->consumer_err, "message " + std::to_string(sh->received) +
								  ": wrong size or checksum");
		} else if (seq != expect) {
			if (!sh->out_of_order++)
				set_err(sh->consumer_err, "expected message " + std::to_string(expect) +
								  ", got " + std::to_string(seq));
		}
		expect = seq + 1;
		sh->bytes += n;
		++sh->received;
		if (auto r = c->release(); !r) {
			set_err(sh->consumer_err, "release: " + r.error().message());
			break;
		}
	}
	sh->end_ns = shmq::monotonic_now_ns();
	// Anything beyond the count is a duplicate or an invention.
	if (auto extra = c->try_peek(); extra) {
		++sh->corrupt;
		set_err(sh->consumer_err, "a message arrived beyond the expected count");
	}
	return sh->consumer_err[0] ? 1 : 0;
}

std::string id_name(const char *file, unsigned id)
{
	std::ifstream in(file);
	std::string line;
	while (std::getline(in, line)) {
		const size_t a = line.find(':');
		const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
		if (b == std::string::npos)
			continue;
		const size_t c = line.find(':', b + 1);
		auto v = parse_u64(std::string_view(line).substr(
			b + 1, c == std::string::npos ? std::string::npos : c - b - 1));
		if (v && *v == id)
			return line.substr(0, a);
	}
	return std::to_string(id);
}

// The capacity the kernel reports for an existing queue (sysfs), or 0.
uint64_t queue_capacity(const std::string &name)
{
	std::ifstream f("/sys/class/shmq/" + name + "/capacity");
	uint64_t cap = 0;
	f >> cap;
	return f ? cap : 0;
}

pid_t spawn(int (*fn)(const Options &, Shared *), const Options &o, Shared *sh)
{
	const pid_t pid = fork();
	if (pid == 0) {
		std::fflush(stdout);
		_exit(fn(o, sh));
	}
	return pid;
}

bool reap(pid_t pid, const char *who)
{
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return false;
	if (WIFSIGNALED(st)) {
		std::fprintf(stderr, "shmq-demo: the %s was killed by signal %d\n", who, WTERMSIG(st));
		return false;
	}
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

} // namespace

int main(int argc, char **argv)
{
	const Options o = parse(argc, argv);
	const std::string node = o.dev_dir + "/" + o.queue;

	bool created = false;
	if (auto r = shmq::create_queue(o.queue, o.size); r) {
		created = true;
	} else if (r.error().code() != EEXIST) {
		struct stat st;
		if (::stat(node.c_str(), &st) != 0) {
			std::fprintf(stderr, "shmq-demo: creating queue %s: %s\n", o.queue.c_str(),
				     r.error().message().c_str());
			return 1;
		}
		// Not allowed to create (not root), but the queue exists: use it.
	}
	// udev (if any) creates the node asynchronously: give it a moment.
	for (int i = 0; i < 500; ++i) {
		struct stat st;
		if (::stat(node.c_str(), &st) == 0)
			break;
		usleep(10000);
	}

	void *mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			 -1, 0);
	if (mem == MAP_FAILED) {
		std::perror("shmq-demo: mmap");
		return 1;
	}
	auto *sh = new (mem) Shared{};

	std::fflush(stdout);
	const pid_t cons = spawn(run_consumer, o, sh);
	const pid_t prod = spawn(run_producer, o, sh);
	const bool prod_ok = reap(prod, "producer");
	if (!prod_ok && cons > 0)
		kill(cons, SIGTERM); // it would wait for messages that never come
	const bool cons_ok = reap(cons, "consumer");

	const double secs = sh->end_ns > sh->start_ns ? (sh->end_ns - sh->start_ns) / 1e9 : 0;
	const bool verified = prod_ok && cons_ok && sh->received == o.count && !sh->corrupt &&
			      !sh->out_of_order;
	const uint64_t capacity = created ? o.size : queue_capacity(o.queue);
	std::printf("queue:        %s (%s, %llu bytes)\n", o.queue.c_str(),
		    created ? "created" : "existing", static_cast<unsigned long long>(capacity));
	std::printf("messages:     %llu of %llu\n", static_cast<unsigned long long>(sh->received),
		    static_cast<unsigned long long>(o.count));
	std::printf("bytes:        %llu\n", static_cast<unsigned long long>(sh->bytes));
	std::printf("elapsed:      %.3f s\n", secs);
	std::printf("messages/s:   %.0f\n", secs > 0 ? sh->received / secs : 0.0);
	std::printf("MB/s:         %.1f\n", secs > 0 ? sh->bytes / secs / 1e6 : 0.0);
	if (verified)
		std::printf("verification: OK (%llu messages in order, none lost, duplicated or "
			    "corrupt)\n",
			    static_cast<unsigned long long>(sh->received));
	else
		std::printf("verification: FAILED (%llu received, %llu out of order, %llu corrupt)\n",
			    static_cast<unsigned long long>(sh->received),
			    static_cast<unsigned long long>(sh->out_of_order),
			    static_cast<unsigned long long>(sh->corrupt));
	if (sh->producer_err[0])
		std::printf("producer:     %s\n", sh->producer_err);
	if (sh->consumer_err[0])
		std::printf("consumer:     %s\n", sh->consumer_err);
	struct stat st;
	if (::stat(node.c_str(), &st) == 0)
		std::printf("device:       %s owner %s group %s mode %04o\n", node.c_str(),
			    id_name("/etc/passwd", st.st_uid).c_str(),
			    id_name("/etc/group", st.st_gid).c_str(),
			    static_cast<unsigned>(st.st_mode & 07777));
	else
		std::printf("device:       %s: %s\n", node.c_str(), std::strerror(errno));
	std::fflush(stdout);

	if (created) {
		if (auto r = shmq::destroy_queue(o.queue); !r)
			std::fprintf(stderr, "shmq-demo: destroying queue %s: %s\n", o.queue.c_str(),
				     r.error().message().c_str());
	}
	return verified ? 0 : 1;
}

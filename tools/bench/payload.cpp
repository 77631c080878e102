// SPDX-License-Identifier: MIT
// Message contents and their verification, plus small helpers shared by the
// mechanisms. The fill and check loops are the same for every mechanism, so
// they cost every mechanism the same; they are written to vectorize.
#pragma GCC optimize("O3")

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "bench.hpp"

namespace shmq_bench {

namespace {

constexpr uint64_t kStep = 0x9E3779B97F4A7C15ULL;

uint64_t seed_of(uint64_t seq, size_t n)
{
	return (seq + 1) * 0xD6E8FEB86659FD93ULL ^ (uint64_t{n} << 32);
}

inline uint64_t load64(const std::byte *p)
{
	uint64_t v;
	std::memcpy(&v, p, 8);
	return v;
}
inline void store64(std::byte *p, uint64_t v) { std::memcpy(p, &v, 8); }

// Payload byte j of the tail (the bytes after the last whole word).
inline std::byte tail_byte(uint64_t seed, size_t j)
{
	return static_cast<std::byte>((seed >> (8 * (j % 8))) ^ j);
}

} // namespace

void fill_message(std::byte *p, size_t n, uint64_t seq, uint32_t flags)
{
	const uint64_t seed = seed_of(seq, n);
	std::byte *pl = p + sizeof(MsgHeader);
	const size_t words = (n - sizeof(MsgHeader)) / 8;
	uint64_t sum = 0;
	for (size_t i = 0; i < words; ++i) {
		const uint64_t w = seed + i * kStep;
		store64(pl + 8 * i, w);
		sum += w;
	}
	for (size_t j = words * 8; j < n - sizeof(MsgHeader); ++j) {
		pl[j] = tail_byte(seed, j);
		sum += static_cast<uint64_t>(pl[j]);
	}
	MsgHeader h{seq, static_cast<uint32_t>(n), flags, sum, kMagic};
	std::memcpy(p, &h, sizeof h);
}

uint32_t header_len(const std::byte *p)
{
	MsgHeader h;
	std::memcpy(&h, p, sizeof h);
	return h.len;
}

uint64_t header_seq(const std::byte *p)
{
	MsgHeader h;
	std::memcpy(&h, p, sizeof h);
	return h.seq;
}

uint32_t check_message(std::span<const std::byte> m, size_t n, uint64_t seq)
{
	char why[256];
	if (m.size() != n) {
		std::snprintf(why, sizeof why, "message %llu: %zu bytes received, %zu expected",
			      static_cast<unsigned long long>(seq), m.size(), n);
		throw Failure(why);
	}
	MsgHeader h;
	std::memcpy(&h, m.data(), sizeof h);
	if (h.magic != kMagic || h.len != n || h.seq != seq) {
		std::snprintf(why, sizeof why,
			      "message %llu: bad header (seq %llu, len %u, magic %s): lost, "
			      "duplicated or reordered message",
			      static_cast<unsigned long long>(seq),
			      static_cast<unsigned long long>(h.seq), h.len,
			      h.magic == kMagic ? "ok" : "wrong");
		throw Failure(why);
	}
	const uint64_t seed = seed_of(seq, n);
	const std::byte *pl = m.data() + sizeof(MsgHeader);
	const size_t words = (n - sizeof(MsgHeader)) / 8;
	uint64_t sum = 0, diff = 0;
	for (size_t i = 0; i < words; ++i) {
		const uint64_t w = load64(pl + 8 * i);
		sum += w;
		diff |= w ^ (seed + i * kStep);
	}
	for (size_t j = words * 8; j < n - sizeof(MsgHeader); ++j) {
		sum += static_cast<uint64_t>(pl[j]);
		diff |= static_cast<uint64_t>(pl[j] ^ tail_byte(seed, j));
	}
	if (diff != 0 || sum != h.sum) {
		size_t at = 0;
		for (size_t i = 0; i < words; ++i)
			if (load64(pl + 8 * i) != seed + i * kStep) {
				at = sizeof(MsgHeader) + 8 * i;
				break;
			}
		std::snprintf(why, sizeof why,
			      "message %llu: payload corrupt (checksum %s, first bad word at byte %zu)",
			      static_cast<unsigned long long>(seq), sum == h.sum ? "ok" : "wrong", at);
		throw Failure(why);
	}
	return h.flags;
}

// ---------------------------------------------------------------------------

void fail_errno(const std::string &what)
{
	const int e = errno;
	throw Failure(what + ": " + std::strerror(e));
}

const char *workload_name(Workload w)
{
	switch (w) {
	case Workload::PingPong:
		return "pingpong";
	case Workload::Stream:
		return "stream";
	case Workload::Batch:
		return "batch";
	case Workload::FanIn:
		return "fanin";
	}
	return "?";
}

std::vector<RegistryEntry> &registry()
{
	static std::vector<RegistryEntry> r;
	return r;
}

uint64_t now_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

Buffer::Buffer(size_t len) : n(len)
{
	p = static_cast<std::byte *>(::operator new(len ? len : 1, std::align_val_t{64}));
	std::memset(p, 0, len); // fault the pages in before any timing
}
Buffer::~Buffer() { ::operator delete(p, std::align_val_t{64}); }

long long read_proc_number(const char *path)
{
	FILE *f = std::fopen(path, "r");
	if (!f)
		return -1;
	long long v = -1;
	if (std::fscanf(f, "%lld", &v) != 1)
		v = -1;
	std::fclose(f);
	return v;
}

namespace {
std::vector<std::pair<std::string, long long>> &restore_list()
{
	static std::vector<std::pair<std::string, long long>> l;
	return l;
}
void restore_proc_numbers()
{
	for (auto &[path, v] : restore_list()) {
		if (FILE *f = std::fopen(path.c_str(), "w")) {
			std::fprintf(f, "%lld\n", v);
			std::fclose(f);
		}
	}
}
} // namespace

bool write_proc_number_restored(const char *path, long long value)
{
	const long long old = read_proc_number(path);
	if (old < 0)
		return false;
	FILE *f = std::fopen(path, "w");
	if (!f)
		return false;
	const bool ok = std::fprintf(f, "%lld\n", value) > 0 && std::fflush(f) == 0;
	const bool closed = std::fclose(f) == 0;
	if (!ok || !closed)
		return false;
	// Construct the list before registering the handler: statics are
	// destroyed in reverse order of that, so the list outlives the handler.
	auto &list = restore_list();
	static bool registered = false;
	if (!registered) {
		registered = true;
		std::atexit(restore_proc_numbers);
	}
	bool known = false;
	for (auto &e : list)
		known |= e.first == path;
	if (!known)
		list.emplace_back(path, old);
	return read_proc_number(path) == value;
}

} // namespace shmq_bench

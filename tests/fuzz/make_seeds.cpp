// SPDX-License-Identifier: MIT
// Writes the seed corpus of consumer_fuzz.cpp into the directory given as
// argument: rings filled by the real Producer (empty, one message, several
// messages with a PAD at the wrap, full, a lone PAD, counters about to
// wrap past 2^64, producer gone, queue destroyed), each followed by
// consumer operations. The input format is described in consumer_fuzz.cpp.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "../native/shm_ring.hpp"

using namespace shmq;
using shmq::test::ShmRing;

namespace {

enum Op : uint8_t {
	kTryPeek = 0,
	kTryReceive = 1,
	kRelease = 2,
	kPeekNone = 3,
	kReceiveNone = 4,
	kTailAdd = 5,
	kPoke = 6,
	kSend = 7,
	kReopen = 8,
	kStatus = 9,
	kTailSet = 10,
	kPokeAbs = 11
};

struct Seed {
	std::vector<uint8_t> ops;
	void op(Op o) { ops.push_back(o); }
	void op16(Op o, uint16_t v)
	{
		ops.push_back(o);
		ops.push_back(static_cast<uint8_t>(v));
		ops.push_back(static_cast<uint8_t>(v >> 8));
	}
};

int written = 0;

void put64(std::vector<uint8_t> &v, uint64_t x)
{
	for (int i = 0; i < 8; i++)
		v.push_back(static_cast<uint8_t>(x >> (8 * i)));
}

// Serializes @s's ring (its data area from head's offset on, as far as the
// records reach plus 16 bytes) and @ops.
void dump(const std::string &dir, const char *name, ShmRing &s, uint8_t status, const Seed &ops)
{
	const uint64_t cap = s.ring.capacity, head = s.head(), tail = s.tail();
	std::vector<uint8_t> v;
	v.push_back(cap == 4096 ? 0 : 1);
	v.push_back(status);
	put64(v, head);
	put64(v, tail - head);
	const uint64_t n = std::min(cap, tail - head + 16);
	v.push_back(static_cast<uint8_t>(n));
	v.push_back(static_cast<uint8_t>(n >> 8));
	for (uint64_t i = 0; i < n; i++)
		v.push_back(static_cast<uint8_t>(s.ring.data[(head + i) & (cap - 1)]));
	v.insert(v.end(), ops.ops.begin(), ops.ops.end());
	const std::string path = dir + "/" + name;
	FILE *f = fopen(path.c_str(), "wb");
	if (!f || fwrite(v.data(), 1, v.size(), f) != v.size() || fclose(f) != 0) {
		perror(path.c_str());
		exit(1);
	}
	++written;
}

void send(Producer &p, size_t n)
{
	std::vector<std::byte> m(n, std::byte{0x5a});
	if (!p.try_send(m).has_value()) {
		fprintf(stderr, "make_seeds: send of %zu bytes failed\n", n);
		exit(1);
	}
}

Seed drain(int n)
{
	Seed s;
	for (int i = 0; i < n; i++)
		s.op16(kTryReceive, 4096);
	s.op(kTryPeek);
	return s;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	const std::string dir = argv[1];
	{
		ShmRing s(4096);
		Seed o;
		o.op(kTryPeek);
		o.op16(kTryReceive, 100);
		o.op(kPeekNone);
		o.op(kRelease);
		o.op16(kSend, 5);
		o.op(kTryPeek);
		o.op(kRelease);
		dump(dir, "empty", s, 0, o);
		dump(dir, "empty-producer-gone", s, 1, o);
		dump(dir, "empty-destroyed", s, 2, o);
	}
	{
		ShmRing s(4096);
		auto p = s.producer();
		send(p, 5);
		Seed o;
		o.op(kTryPeek);
		o.op(kReopen); // crash between peek and release
		o.op(kRelease);
		o.op(kTryPeek);
		o.op(kRelease);
		o.op(kTryPeek);
		dump(dir, "one-message-peek-crash-release", s, 0, o);
		Seed small;
		small.op16(kTryReceive, 4);
		small.op(kRelease);
		small.op16(kReceiveNone, 5);
		dump(dir, "one-message-buffer-too-small", s, 4, small);
	}
	for (uint64_t cap : {uint64_t{4096}, uint64_t{8192}}) {
		// Messages across the wrap: a PAD at the ring end.
		ShmRing s(cap);
		s.set_counters(cap - 64, cap - 64);
		auto p = s.producer();
		send(p, 24);
		send(p, 40); // does not fit the 32 bytes left: PAD, then offset 0
		send(p, 100);
		dump(dir, cap == 4096 ? "pad-at-wrap-4k" : "pad-at-wrap-8k", s, 0, drain(4));
	}
	{
		// Full: messages until EAGAIN.
		ShmRing s(4096);
		auto p = s.producer();
		std::vector<std::byte> m(200, std::byte{1});
		while (p.try_send(m).has_value()) {
		}
		// then 8-byte empty messages until exactly full
		while (p.try_send(std::span<const std::byte>{}).has_value()) {
		}
		if (s.tail() - s.head() != 4096) {
			fprintf(stderr, "make_seeds: the ring is not full\n");
			return 1;
		}
		dump(dir, "full", s, 8, drain(30));
	}
	{
		// A lone PAD at the end, and then an empty ring.
		ShmRing s(4096);
		s.set_header(4096 - 64, 56, SHMQ_REC_PAD);
		s.set_counters(4096, 4096 - 64);
		Seed o;
		o.op(kTryPeek);
		o.op16(kSend, 10);
		o.op(kPeekNone);
		o.op(kRelease);
		dump(dir, "lone-pad", s, 0, o);
	}
	{
		// Counters about to run past 2^64.
		ShmRing s(4096);
		const uint64_t start = 0 - uint64_t{4096 + 48}; // 2^64 - 4144
		s.set_counters(start, start);
		auto p = s.producer();
		for (int i = 0; i < 5; i++)
			send(p, 30 + 7 * i);
		dump(dir, "counters-wrap-2^64", s, 0, drain(6));
	}
	{
		// Producer traffic and corruption between consumer calls.
		ShmRing s(4096);
		auto p = s.producer();
		send(p, 16);
		Seed o;
		o.op(kTryPeek);
		o.op16(kSend, 300);
		o.op(kRelease);
		o.op16(kPokeAbs, 32); // overwrite the second record's header
		for (int i = 0; i < 8; i++)
			o.ops.push_back(0xff);
		o.op(kTryPeek);
		o.op16(kTailAdd, 8);
		o.op(kTryPeek);
		o.ops.push_back(kStatus);
		o.ops.push_back(1);
		o.op(kPeekNone);
		dump(dir, "producer-interleaved", s, 0, o);
	}
	{
		// The producer rewrites the header of a message the consumer
		// has peeked but not released (here with garbage).
		ShmRing s(4096);
		s.set_counters(4096 - 64, 4096 - 64);
		auto p = s.producer();
		send(p, 8);
		send(p, 24);
		Seed o;
		o.op(kTryPeek);
		o.ops.push_back(kPoke);
		o.ops.push_back(0); // at head
		for (int i = 0; i < 8; i++)
			o.ops.push_back(0xee);
		o.op(kTryPeek);
		o.op(kRelease);
		o.op(kTryPeek);
		o.op(kRelease);
		dump(dir, "rewrite-peeked-header", s, 0, o);
	}
	printf("make_seeds: %d seeds in %s\n", written, dir.c_str());
	return 0;
}

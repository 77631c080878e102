// SPDX-License-Identifier: MIT
// An outside program built against an INSTALLED libshmq (tests/install/run.sh
// builds it through pkg-config and through CMake, shared and static). Needs no
// module: it checks the version and the library's errors where there is none.
//   app EXPECTED_VERSION
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <shmq/shmq.hpp>
#include <shmq/uapi.h>
#include <shmq/version.h>

static int failures;

static void check(bool ok, const char *what, const char *detail = "")
{
	std::printf("%s: %s%s%s\n", ok ? "ok" : "FAILED", what, *detail ? ": " : "", detail);
	if (!ok)
		++failures;
}

int main(int argc, char **argv)
{
	const char *want = argc > 1 ? argv[1] : SHMQ_VERSION_STRING;
	check(std::strcmp(shmq::version(), want) == 0, "shmq::version() is the expected version",
	      shmq::version());
	check(std::strcmp(SHMQ_VERSION_STRING, want) == 0, "<shmq/version.h> is the expected version",
	      SHMQ_VERSION_STRING);
	check(SHMQ_VERSION_NUMBER == ((SHMQ_VERSION_MAJOR << 16) | (SHMQ_VERSION_MINOR << 8) |
				       SHMQ_VERSION_PATCH),
	      "SHMQ_VERSION_NUMBER agrees with its parts");

	shmq::Producer idle;
	check(!idle.is_open(), "a default Producer is not open");
	// The fast paths are inline in the header; on a closed object they
	// fall back to the library's exported slow paths.
	std::byte b[8] = {};
	auto s = idle.try_send(b);
	check(!s && s.error().code() == EBADF, "inline try_send on a closed Producer: EBADF");
	auto rv = idle.try_reserve(8);
	check(!rv && rv.error().code() == EBADF, "inline try_reserve on a closed Producer: EBADF");
	shmq::Consumer cidle;
	auto m = cidle.try_peek();
	check(!m && m.error().code() == EBADF, "inline try_peek on a closed Consumer: EBADF");
	auto rn = cidle.try_receive(b);
	check(!rn && rn.error().code() == EBADF, "inline try_receive on a closed Consumer: EBADF");
	check(!cidle.release() && cidle.release().error().code() == EBADF,
	      "inline release on a closed Consumer: EBADF");
	check(shmq::Timeout::after(std::chrono::seconds::max()).deadline_ns() == UINT64_MAX,
	      "Timeout::after(seconds::max()) is infinite");
	bool thrown = false;
	try {
		(void)s.value();
	} catch (const shmq::bad_expected_access<shmq::Error> &e) {
		thrown = e.error().code() == EBADF;
	}
	check(thrown, "Result::value() on an error throws bad_expected_access<Error>");

	shmq::OpenOptions o;
	o.dev_dir = "/nonexistent/shmq-install-test";
	auto p = shmq::Producer::open("orders", o);
	check(!p && p.error().code() == ENOENT && std::strstr(p.error().what(), "modprobe shmq"),
	      "Producer::open without the module: ENOENT naming modprobe",
	      p ? "opened?" : p.error().message().c_str());

	// /dev/null opens but answers SHMQ_IOC_LAYOUT with ENOTTY.
	o.dev_dir = "/dev";
	auto c = shmq::Consumer::open("null", o);
	check(!c && c.error().code() == ENOTTY, "Consumer::open of a non-queue device: ENOTTY",
	      c ? "opened?" : c.error().message().c_str());

	auto r = shmq::create_queue("orders", SHMQ_MIN_CAPACITY, "/nonexistent/shmq-control");
	check(!r && r.error().code() == ENOENT, "create_queue without the control device: ENOENT",
	      r ? "created?" : r.error().message().c_str());

	auto n = shmq::validate_name(".hidden");
	check(!n && n.error().code() == EINVAL, "validate_name('.hidden'): EINVAL");

	std::printf("%s\n", failures ? "FAILED" : "PASSED");
	return failures ? 1 : 0;
}

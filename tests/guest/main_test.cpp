// SPDX-License-Identifier: MIT
// main() of shmq-guest-tests.
//
// Registers the ZModule* tests (rmmod / reload) dynamically, after every
// statically registered suite, so they run last whatever the link order,
// and ignores SIGPIPE so a dead child cannot kill the runner.
#include "shmq_test.hpp"

void register_zmodule_tests(); // zmodule_test.cpp

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, nullptr, _IOLBF, 0);
	testing::InitGoogleTest(&argc, argv);
	register_zmodule_tests();
	printf("shmq-guest-tests: uid %d, SHMQ_TEST_USER=%s, slow mode %s\n", int(getuid()),
	       getenv("SHMQ_TEST_USER") ? getenv("SHMQ_TEST_USER") : "(unset)",
	       shmqt::slow_mode() ? "on (SHMQ_TEST_SLOW or SHMQ_DEBUG_KERNEL)" : "off");
	return RUN_ALL_TESTS();
}

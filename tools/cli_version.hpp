// SPDX-License-Identifier: MIT
// "--version" of shmqctl, shmq-demo and shmq-bench: the tool's version, the
// linked libshmq's and the loaded module's (all from the top-level VERSION
// file, so they differ only when pieces of different releases are mixed).
#pragma once

#include <cstdio>
#include <fstream>
#include <string>

#include <shmq/shmq.hpp>
#include <shmq/version.h>

namespace shmq::cli {

inline void print_version(const char *tool)
{
	std::printf("%s (shmq) %s\n", tool, SHMQ_VERSION_STRING);
	std::printf("libshmq %s\n", shmq::version());
	std::ifstream f("/sys/module/shmq/version");
	std::string mod;
	if (f && std::getline(f, mod) && !mod.empty())
		std::printf("shmq.ko %s (loaded)\n", mod.c_str());
	else
		std::printf("shmq.ko not loaded\n");
}

} // namespace shmq::cli

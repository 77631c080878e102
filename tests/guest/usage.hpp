// SPDX-License-Identifier: MIT
// The module's global usage, for tests that prove nothing leaked (Kill,
// Hostile, Race): a snapshot before, one after, and they must match.
//
// Sources, best first:
//  - /sys/module/shmq/usage/{queues,memory_bytes} when the module has them
//    (memory includes destroyed queues that are still open or mapped);
//  - otherwise the number of entries in /sys/class/shmq/ (queues in the
//    namespace).
// Always also /sys/module/shmq/refcnt: every open queue file, ring file
// (hence every mapping) and control file holds one module reference, so a
// leaked file or mapping shows there even where memory_bytes is missing.
#pragma once

#include "shmq_test.hpp"

#include <dirent.h>

namespace shmqt {

struct Usage {
	bool sysfs_usage = false; // /sys/module/shmq/usage exists
	long long queues = -1;
	long long memory = -1;	  // -1: not available
	long long refcnt = -1;

	std::string source() const
	{
		return sysfs_usage ? "/sys/module/shmq/usage/{queues,memory_bytes} + /sys/module/shmq/refcnt"
				   : "/sys/class/shmq/* entries + /sys/module/shmq/refcnt "
				     "(no /sys/module/shmq/usage in this module)";
	}
	std::string describe() const
	{
		return strprintf("queues %lld, memory_bytes %lld, module refcnt %lld", queues, memory, refcnt);
	}
	bool operator==(const Usage &o) const
	{
		return queues == o.queues && memory == o.memory && refcnt == o.refcnt;
	}
};

inline long long read_ll(const std::string &path)
{
	std::string s;
	if (!read_file(path, &s))
		return -1;
	s = trim(s);
	char *end = nullptr;
	errno = 0;
	long long v = strtoll(s.c_str(), &end, 10);
	if (errno || end == s.c_str())
		return -1;
	return v;
}

inline long long count_class_entries()
{
	DIR *d = opendir("/sys/class/shmq");
	if (!d)
		return -1;
	long long n = 0;
	while (struct dirent *e = readdir(d))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

inline Usage read_usage()
{
	Usage u;
	u.sysfs_usage = path_exists("/sys/module/shmq/usage/queues");
	if (u.sysfs_usage) {
		u.queues = read_ll("/sys/module/shmq/usage/queues");
		u.memory = read_ll("/sys/module/shmq/usage/memory_bytes");
	} else {
		u.queues = count_class_entries();
	}
	u.refcnt = read_ll("/sys/module/shmq/refcnt");
	return u;
}

// Waits (files of killed processes are released as they exit, a little
// after waitpid in some paths) until the usage equals @base again.
inline bool usage_back_to(const Usage &base, Usage *now, unsigned ms = 5000)
{
	return eventually(ms, [&] {
		*now = read_usage();
		return *now == base;
	});
}

} // namespace shmqt

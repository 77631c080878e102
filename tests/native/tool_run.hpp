// SPDX-License-Identifier: MIT
// Running the tools (shmqctl, shmq-demo, shmq-bench) from native tests.
#pragma once

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

// $ENV, else the tool NAME built next to this test binary: $(BUILD)/tests/X
// -> $(BUILD)/tools/NAME.
inline std::string build_tool(const char *name, const char *env)
{
	if (const char *e = getenv(env); e && *e)
		return e;
	char buf[PATH_MAX];
	const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n <= 0)
		return name;
	std::string self(buf, size_t(n));
	return self.substr(0, self.rfind('/')) + "/../tools/" + name;
}

struct Ran {
	int status = -1; // exit status; -1: did not exit normally
	std::string out, err;
};

inline std::string slurp(const std::string &path)
{
	std::ifstream in(path);
	return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs @argv (argv[0] looked up in PATH if it has no '/'), stdin /dev/null.
inline Ran run(const std::vector<std::string> &argv)
{
	static unsigned seq;
	const std::string base = "/tmp/shmqctl-native-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
	const std::string o = base + ".out", e = base + ".err";
	fflush(nullptr);
	const pid_t pid = fork();
	if (pid == 0) {
		const int in = ::open("/dev/null", O_RDONLY);
		const int fo = ::open(o.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		const int fe = ::open(e.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (in < 0 || fo < 0 || fe < 0 || dup2(in, 0) < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
			_exit(126);
		std::vector<char *> a;
		for (auto &s : argv)
			a.push_back(const_cast<char *>(s.c_str()));
		a.push_back(nullptr);
		execvp(a[0], a.data());
		_exit(127);
	}
	Ran r;
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	if (WIFEXITED(st))
		r.status = WEXITSTATUS(st);
	r.out = slurp(o);
	r.err = slurp(e);
	unlink(o.c_str());
	unlink(e.c_str());
	return r;
}

} // namespace

// SPDX-License-Identifier: MIT
// The library's version: the top-level VERSION file, via shmq/version.h.
#include <shmq/shmq.hpp>
#include <shmq/version.h>

namespace shmq {

const char *version() noexcept { return SHMQ_VERSION_STRING; }

} // namespace shmq

// SPDX-License-Identifier: MIT
// SHMQ_API marks the declarations libshmq.so exports. The library is built
// with -fvisibility=hidden -fvisibility-inlines-hidden and a version script
// (lib/libshmq.map), so everything else, shmq::detail included, stays
// inside it; `make check-exports` fails when that is no longer true.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define SHMQ_API __attribute__((visibility("default")))
#else
#define SHMQ_API
#endif

#!/usr/bin/env bash
# lib/check-exports.sh LIBSHMQ_SO: fails unless the shared library exports
# exactly the public API: C++ symbols of namespace shmq outside
# shmq::detail (classes marked SHMQ_API, <shmq/export.hpp>), the C API
# shmq_mq_*, and the version node of lib/libshmq.map. Everything else
# (shmq::detail, instantiations of std templates, helpers) must stay
# inside: libshmq is built with -fvisibility=hidden and that version
# script. Run by `make check-exports` and tests/install/run.sh.
set -euo pipefail
so=${1:?usage: check-exports.sh path/to/libshmq.so}
[ -f "$so" ] || { echo "check-exports: no $so" >&2; exit 1; }
syms=$(nm -D --defined-only "$so" | awk '{ print $NF }' | sed 's/@.*//' | c++filt)
[ -n "$syms" ] || { echo "check-exports: $so exports nothing" >&2; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -Ev '^(shmq::|shmq_mq_[a-z_]+$|SHMQ_[0-9_.]+$)' || true)
detail=$(printf '%s\n' "$syms" | grep -E '(^|[^A-Za-z_])shmq::detail::' || true)
# Weak (W/V) or unique (u) definitions are inline functions or template
# instantiations that leaked: a program would bind them to our copy, built
# for our object layout, instead of its own.
weak=$(nm -D --defined-only "$so" | awk '$2 ~ /^[WVu]$/ { print $NF }' | sed 's/@.*//' | c++filt || true)
rc=0
if [ -n "$weak" ]; then
	echo "check-exports: $so exports weak (inline) definitions:" >&2
	printf '%s\n' "$weak" | sed 's/^/  /' >&2
	rc=1
fi
if [ -n "$detail" ]; then
	echo "check-exports: $so exports internals of shmq::detail:" >&2
	printf '%s\n' "$detail" | sed 's/^/  /' >&2
	rc=1
fi
if [ -n "$bad" ]; then
	echo "check-exports: $so exports symbols outside the public API:" >&2
	printf '%s\n' "$bad" | sed 's/^/  /' >&2
	rc=1
fi
for want in 'shmq::version()' 'shmq_mq_open' 'shmq::Producer::open('; do
	printf '%s\n' "$syms" | grep -qF "$want" || { echo "check-exports: $so does not export $want" >&2; rc=1; }
done
[ $rc = 0 ] && echo "check-exports: $so exports only the public API ($(printf '%s\n' "$syms" | wc -l) symbols)"
exit $rc

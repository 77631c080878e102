#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build shmq.ko for one kernel.
#
#   kernel/build-module.sh [--check] KDIR [OUTDIR]
#
# KDIR    a kernel build tree (e.g. /lib/modules/VER/build, a Debian
#         /usr/src/linux-headers-VER, or the debug kernel's build/)
# OUTDIR  where to build; default: build/module/KVER in the repository,
#         KVER being the kernel's UTS_RELEASE (what vermagic checks)
# --check build with W=1 and sparse (C=2) and fail on any warning
#
# Kbuild of 6.1/6.12 has no separate output directory for external modules,
# so the sources, the ABI header and version.h are copied to OUTDIR and built there.
# Prints the path of the resulting shmq.ko on its last line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

check=0
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 [--check] KDIR [OUTDIR]" >&2
	exit 2
fi
kdir=$1
uts="$kdir/include/generated/utsrelease.h"
if [ ! -f "$kdir/Makefile" ] || [ ! -f "$uts" ]; then
	echo "build-module: $kdir is not a configured kernel build tree" >&2
	exit 1
fi
kver=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$uts")
out=${2:-$repo/build/module/$kver}

# Copy only what changed, so that make rebuilds only when needed.
sync_file() {
	mkdir -p "$(dirname "$2")"
	cmp -s "$1" "$2" || cp "$1" "$2"
}
mkdir -p "$out"
out=$(cd "$out" && pwd)
for f in "$here"/Kbuild "$here"/*.c "$here"/*.h; do
	[ -e "$f" ] || continue
	sync_file "$f" "$out/$(basename "$f")"
done
sync_file "$repo/include/shmq/uapi.h" "$out/include/shmq/uapi.h"
sync_file "$repo/include/shmq/version.h" "$out/include/shmq/version.h"

args=(-C "$kdir" M="$out")
if [ "$check" = 1 ]; then
	args+=(W=1 C=2)
fi
log="$out/build.log"
set +e
make "${args[@]}" modules 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" != 0 ]; then
	tail -n 40 "$log" >&2
	echo "build-module: build failed for $kver (log: $log)" >&2
	exit "$rc"
fi
if [ "$check" = 1 ] && grep -Eq 'warning:|error:|WARNING:' "$log"; then
	echo "build-module: warnings for $kver (W=1 C=2):" >&2
	grep -E 'warning:|error:|WARNING:' "$log" >&2
	exit 1
fi
echo "$out/shmq.ko"

#!/bin/sh
# Writes include/shmq/version.h from the VERSION file (the one version string
# of shmq: module, library, tools, pkg-config, CMake, DKMS). Rewrites the
# header only when its content changes, so that nothing rebuilds needlessly.
#   tools/gen-version.sh VERSIONFILE HEADER
set -eu
v=$(cat "$1")
case $v in
*[!0-9.]* | .* | *. | *..* | "")
	echo "gen-version: $1: '$v' is not MAJOR.MINOR.PATCH" >&2; exit 1 ;;
esac
IFS=. read -r major minor patch rest <<EOV
$v
EOV
if [ -z "$patch" ] || [ -n "$rest" ]; then
	echo "gen-version: $1: '$v' is not MAJOR.MINOR.PATCH" >&2; exit 1
fi
tmp=$2.tmp.$$
cat >"$tmp" <<EOH
/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note OR MIT */
/* Generated from the top-level VERSION file by tools/gen-version.sh (make
 * regenerates it when VERSION changes): edit VERSION, not this file.
 * Used by the module (MODULE_VERSION), libshmq (shmq::version()) and the
 * tools; valid C and C++, in the kernel and in user space. */
#ifndef SHMQ_VERSION_H
#define SHMQ_VERSION_H

#define SHMQ_VERSION_STRING	"$v"
#define SHMQ_VERSION_MAJOR	$major
#define SHMQ_VERSION_MINOR	$minor
#define SHMQ_VERSION_PATCH	$patch
/* (major << 16) | (minor << 8) | patch, for #if comparisons */
#define SHMQ_VERSION_NUMBER	(($major << 16) | ($minor << 8) | $patch)

#endif /* SHMQ_VERSION_H */
EOH
if cmp -s "$tmp" "$2"; then rm -f "$tmp"; else mv "$tmp" "$2"; fi

#!/usr/bin/env bash
# kernels.sh BUILD [LABEL...]
# Prints the test matrix's kernels, one per line:
#   LABEL KVER IMAGE KDIR DEBUG
# LABEL is 6.1, 6.12 or 6.1-debug; KVER the kernel release (uname -r in the
# guest); IMAGE the bzImage; KDIR the Kbuild tree to build the module with;
# DEBUG 1 for the debug kernel. Versions are resolved from the installed
# files (the newest /boot/vmlinuz-SERIES.*-amd64 that has matching
# /usr/src/linux-headers-*), never hard-coded. With LABELs, only those.
# A kernel that is not available is skipped with a note on stderr.
# The debug kernel comes from $DEBUG_KERNEL_DIR (default: ../shared/kernels/
# 6.1-debug next to the repository); its build.tar.xz is unpacked under BUILD.
set -euo pipefail
build=$1; shift
root=$(cd "$(dirname "$0")/../.." && pwd)
want=${*:-6.1 6.12 6.1-debug}
note() { echo "note: $*" >&2; }

debian() { # LABEL SERIES
	local label=$1 series=$2 img kver best=''
	for img in /boot/vmlinuz-"$series".*-amd64; do
		[ -f "$img" ] || continue
		kver=${img#/boot/vmlinuz-}
		[ -f "/usr/src/linux-headers-$kver/Makefile" ] || continue
		best=$(printf '%s\n%s\n' "$best" "$kver" | sed '/^$/d' | sort -V | tail -n1)
	done
	if [ -z "$best" ]; then
		note "no Debian $series kernel with headers installed: skipping $label (tools/install-deps.sh installs it)"
		return
	fi
	echo "$label $best /boot/vmlinuz-$best /usr/src/linux-headers-$best 0"
}

debug() {
	local dir=${DEBUG_KERNEL_DIR:-$root/../shared/kernels/6.1-debug}
	if [ ! -f "$dir/bzImage" ] || [ ! -f "$dir/build.tar.xz" ] || [ ! -f "$dir/release" ]; then
		note "debug kernel not found in $dir: skipping 6.1-debug"
		return
	fi
	dir=$(cd "$dir" && pwd)
	local kver dest=$build/kernels/6.1-debug
	kver=$(tr -d ' \n' <"$dir/release")
	# unpack once per build.tar.xz (stamp holds its size and mtime)
	local stamp
	stamp=$(stat -c '%s %Y' "$dir/build.tar.xz")
	if [ "$(cat "$dest/.stamp" 2>/dev/null)" != "$stamp" ]; then
		rm -rf "$dest"; mkdir -p "$dest"
		tar -xJf "$dir/build.tar.xz" -C "$dest"
		echo "$stamp" >"$dest/.stamp"
	fi
	echo "6.1-debug $kver $dir/bzImage $dest/build 1"
}

for w in $want; do
	case $w in
		6.1) debian 6.1 6.1 ;;
		6.12) debian 6.12 6.12 ;;
		6.1-debug|debug) debug ;;
		*) note "unknown kernel label '$w' (known: 6.1 6.12 6.1-debug)" ;;
	esac
done

#!/usr/bin/env bash
# Installs, from Debian's packages only, everything the build, the demo and the
# tests need: compilers and GoogleTest, QEMU for the guests, busybox and udev
# for the guest userland, sparse, the 6.1 and 6.12 kernels with headers, and
# jq and gnuplot for shmq-bench's results.
# Idempotent: installs only what is missing (apt-get update runs first).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: run as root (apt-get needs it)" >&2
	exit 1
fi
pkgs=(build-essential g++ make libgtest-dev qemu-system-x86 busybox-static udev
      sparse cpio xz-utils zstd kmod bc linux-image-amd64 linux-headers-amd64
      linux-image-6.12-amd64 linux-headers-6.12-amd64
      jq gnuplot-nox)   # jq: the bench smoke run and make bench's report; gnuplot: its chart
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
export DEBIAN_FRONTEND=noninteractive
if [ "${#missing[@]}" -gt 0 ] || [ "${CI:-}" = true ]; then
	apt-get update -q
fi
if [ "${#missing[@]}" -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

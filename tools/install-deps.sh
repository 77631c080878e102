#!/usr/bin/env bash
# Installs, from Debian's packages only, everything the build, the demo and the
# tests need: compilers and GoogleTest, QEMU for the guests, busybox and udev
# for the guest userland, sparse, clang with libFuzzer (tests/fuzz), the
# 6.1 and 6.12 kernels with headers; cmake, pkgconf and dkms for the install
# tests (tests/install/run.sh); jq and gnuplot for shmq-bench's results;
# valgrind for make bench-instr (callgrind instruction counts).
# Idempotent: installs only what is missing (apt-get update runs first).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: run as root (apt-get needs it)" >&2
	exit 1
fi
pkgs=(build-essential g++ make libgtest-dev qemu-system-x86 busybox-static udev
      sparse cpio xz-utils zstd kmod bc clang libclang-rt-14-dev
      linux-image-amd64 linux-headers-amd64
      linux-image-6.12-amd64 linux-headers-6.12-amd64
      cmake pkgconf dkms
      jq gnuplot-nox    # jq: the bench smoke run and make bench's report; gnuplot: its chart
      valgrind)         # make bench-instr: callgrind, and <valgrind/callgrind.h> to bracket sections
# shmq-bench's comparison mechanisms (tools/bench/mech_{zmq,boost,iceoryx}.cpp):
# ZeroMQ, Boost.Interprocess (headers), iceoryx 2.0 (libraries + iox-roudi).
pkgs+=(libzmq3-dev libboost-dev iceoryx libiceoryx-posh-dev libiceoryx-hoofs-dev)
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

#!/usr/bin/env bash
# make bench-instr: instructions per message of libshmq's fast paths and of a
# hand-written ring, counted by callgrind in one run of shmq-bench-instr
# (tools/bench/instr/instr.cpp). Prints a table; extra arguments go to
# shmq-bench-instr (--messages N --batch N --size BYTES --capacity BYTES).
#   tools/bench/instr/run.sh BUILD/tools/shmq-bench-instr [options]
set -euo pipefail
bin=${1:?usage: run.sh PATH/TO/shmq-bench-instr [options]}
shift
command -v valgrind >/dev/null ||
	{ echo "bench-instr: valgrind is not installed (tools/install-deps.sh installs it)" >&2; exit 1; }
messages=320000
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	[ "${args[i]}" = --messages ] && messages=${args[i + 1]}
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmq-bench-instr.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" --dump-instr=no \
	"$bin" "$@" >"$tmp/stdout" 2>"$tmp/valgrind.log" ||
	{ cat "$tmp/stdout" "$tmp/valgrind.log" >&2; echo "bench-instr: the run failed" >&2; exit 1; }
cat "$tmp/stdout"
printf '%-10s %12s %12s\n' section instructions per-message
ring=
for f in "$tmp"/cg.out.*; do
	name=$(sed -n 's/^desc: Trigger: Client Request: //p' "$f")
	[ -n "$name" ] || continue
	ir=$(sed -n 's/^summary: //p' "$f")
	[ -n "$ir" ] || ir=$(sed -n 's/^totals: //p' "$f")
	per=$(awk -v ir="$ir" -v n="$messages" 'BEGIN { printf "%.1f", ir / n }')
	[ "$name" = ring ] && ring=$per
	printf '%-10s %12s %12s\n' "$name" "$ir" "$per"
	echo "$name $per" >>"$tmp/rows"
done
[ -n "$ring" ] || { echo "bench-instr: no ring section in the dumps" >&2; exit 1; }
awk -v ring="$ring" '$1 != "ring" { printf "%s / ring: %.2fx\n", $1, $2 / ring }' "$tmp/rows"

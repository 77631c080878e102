#!/usr/bin/env bash
# make bench-instr: instructions per message of libshmq's fast paths and of a
# hand-written ring, counted by callgrind in one run of shmq-bench-instr
# (tools/bench/instr/instr.cpp). Prints a table, the ratios and the lane
# queue target (8 lanes at most 1.3x 1 lane); extra arguments go to
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
printf '%-13s %12s %12s\n' section instructions per-message
ring=
for f in "$tmp"/cg.out.*; do
	name=$(sed -n 's/^desc: Trigger: Client Request: //p' "$f")
	[ -n "$name" ] || continue
	ir=$(sed -n 's/^summary: //p' "$f")
	[ -n "$ir" ] || ir=$(sed -n 's/^totals: //p' "$f")
	per=$(awk -v ir="$ir" -v n="$messages" 'BEGIN { printf "%.1f", ir / n }')
	[ "$name" = ring ] && ring=$per
	printf '%-13s %12s %12s\n' "$name" "$ir" "$per"
	echo "$name $per" >>"$tmp/rows"
done
[ -n "$ring" ] || { echo "bench-instr: no ring section in the dumps" >&2; exit 1; }
# per(NAME): the per-message count of section NAME
per() { awk -v n="$1" '$1 == n { print $2 }' "$tmp/rows"; }
# both sides: against the hand ring; consumer only (*-rx): against ring-rx
awk -v ring="$ring" '$1 != "ring" && $1 !~ /-rx$/ { printf "%s / ring: %.2fx\n", $1, $2 / ring }' "$tmp/rows"
zcp=$(per zero-copy) cp=$(per copy) rcp=$(per ring-copy)
[ -n "$zcp" ] && [ -n "$cp" ] && [ -n "$rcp" ] ||
	{ echo "bench-instr: missing zero-copy, copy or ring-copy sections in the dumps" >&2; exit 1; }
# The fast-path targets (issue 10), printed like the lane target below.
awk -v zc="$zcp" -v ring="$ring" -v cp="$cp" -v rcp="$rcp" 'BEGIN {
	print "Fast path targets (instructions per message, producer and consumer, same run):"
	printf "  %s  zero-copy / ring: %.2fx, %+.1f instructions (target <= 1.00x)\n", (zc <= ring ? "MET    " : "NOT MET"), zc / ring, zc - ring
	printf "  %s  copy / ring-copy: %.2fx, %+.1f instructions (target <= 1.00x)\n", (cp <= rcp ? "MET    " : "NOT MET"), cp / rcp, cp - rcp
}'
rx=$(per ring-rx)
[ -n "$rx" ] || { echo "bench-instr: no ring-rx section in the dumps" >&2; exit 1; }
awk -v ring="$rx" '$1 != "ring-rx" && $1 ~ /-rx$/ { printf "%s / ring-rx: %.2fx\n", $1, $2 / ring }' "$tmp/rows"
# Lane queues (issue 10), consumer side: the target, printed as
# tools/bench/targets.sh prints its targets (MET / NOT MET, never a failure:
# instruction counts are exact, but a benchmark does not fail the build).
l1=$(per lanes1-rx) l8=$(per lanes8-rx) zc=$(per zero-copy-rx)
[ -n "$l1" ] && [ -n "$l8" ] && [ -n "$zc" ] ||
	{ echo "bench-instr: missing lane sections in the dumps" >&2; exit 1; }
awk -v l1="$l1" -v l8="$l8" -v zc="$zc" 'BEGIN {
	print "Lane queue targets (consumer instructions per message, same run):"
	x = l8 / l1
	printf "  %s  lanes8-rx / lanes1-rx: %.2fx (target <= 1.30x)\n", (x <= 1.3 ? "MET    " : "NOT MET"), x
	printf "  info     lanes1-rx / zero-copy-rx (1 lane vs the single-producer Consumer): %.2fx (%+.1f instructions)\n", l1 / zc, l1 - zc
}'

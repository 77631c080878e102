#!/usr/bin/env bash
# bench.sh [native] [guest] [report]: the body of `make bench` (default: all
# three, in this order).
#   native  shmq-bench on this machine: every mechanism that does not need the
#           module, the reference for what emulation distorts
#   guest   for each kernel of BENCH_KERNELS: build shmq.ko, pack an initramfs
#           with shmq-bench (and what it needs), boot QEMU with BENCH_SMP vCPUs
#           in mode "bench" (tests/guest/init), run every mechanism compiled
#           into shmq-bench, shmq included, in that one guest run; its table,
#           JSON and CSV come back through the second serial port
#   report  ratios of shmq to every other mechanism and the targets
#           (tools/bench/targets.sh), the chart (tools/bench/chart.sh)
# Everything goes to $BUILD/bench/: native.{txt,json,csv},
# guest-KVER.{txt,json,csv} (merged rounds), targets.txt, ratios.csv,
# chart.png; the boot's logs and every round's JSON/CSV to $BUILD/bench/KVER/.
#
# Environment (tools/bench/bench.mk passes the paths):
#   BUILD, BENCH_BIN             required
#   MODULE_BUILD                 as in run-matrix.sh
#   BENCH_KERNELS                labels of kernels.sh (default "6.1")
#   BENCH_SMP                    vCPUs of the guest (default 2: producer and
#                                consumer on different CPUs)
#   BENCH_GUEST_ARGS             shmq-bench options in the guest
#   BENCH_ROUNDS                 complete guest runs; the merged guest-KVER.json
#                                has the median round of every cell (default 5)
#   BENCH_NATIVE_ARGS            shmq-bench options natively
#   BENCH_NICE                   niceness of QEMU and of the native run
#                                (default -10, as root): two
#                                vCPU threads that the host deschedules for
#                                milliseconds turn every hand-off into a wait
#                                for the host's scheduler
#   BENCH_APPEND                 extra guest kernel command-line words
#                                (experiments, e.g. idle=poll)
#   BENCH_GUEST_TIMEOUT          host-side limit per boot, seconds (default 1800)
# Extra files for the guest: tools/bench/guest-files lists host paths (one a
# line, '#' comments, $BUILD expanded; a missing file is a note, not an error)
# that are packed at their own path with their ldd closure (e.g. a daemon a
# mechanism starts); tools/bench/guest-pre.sh, if present, runs in the guest
# (busybox sh) after insmod and before shmq-bench. shmq-bench itself may be
# dynamic: mkinitramfs.sh copies its ldd closure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
cd "$root"
: "${BUILD:?}" "${BENCH_BIN:?}"
MODULE_BUILD=${MODULE_BUILD:-$root/kernel/build-module.sh}
BENCH_KERNELS=${BENCH_KERNELS:-6.1}
BENCH_SMP=${BENCH_SMP:-2}
# Under TCG everything is 3-30x slower and the host's load comes and goes:
# short runs (0.15 s per cell) in BENCH_ROUNDS complete rounds, the median
# round per cell, so that a burst of load hits different mechanisms in
# different rounds; a full guest run (3 workloads x 4 sizes x every mechanism
# x 5 rounds) takes 3 minutes on a quiet host, 6-7 on a busy one (before the
# fanin workload was added, which adds 5 mechanisms x 4 sizes). The
# /shmq-lanes column of every round's table is the fan-in ratio per round.
BENCH_GUEST_ARGS=${BENCH_GUEST_ARGS:---duration 0.15 --ref shmq-zc,shmq-copy,ring-futex,shmq-lanes}
BENCH_NATIVE_ARGS=${BENCH_NATIVE_ARGS:---duration 0.3 --repeat 3 --ref ring-futex,pipe}
BENCH_ROUNDS=${BENCH_ROUNDS:-5}
BENCH_NICE=${BENCH_NICE:--10}
BENCH_GUEST_TIMEOUT=${BENCH_GUEST_TIMEOUT:-1800}
out=$BUILD/bench
mkdir -p "$out"
rel() { realpath --relative-to="$root" "$1" 2>/dev/null || echo "$1"; }
steps=${*:-native guest report}
status=0

if [ ! -x "$BENCH_BIN" ]; then
	echo "bench: $BENCH_BIN not built" >&2
	exit 1
fi

# ---------------------------------------------------------------- native
run_native() {
	# every mechanism but shmq's (those need the module: the guest has it)
	local mechs
	mechs=$("$BENCH_BIN" --list | awk '$1 !~ /^shmq/ { printf "%s%s", sep, $1; sep = "," }')
	echo "== bench: natively on $(uname -r) ($(nproc) CPUs), mechanisms $mechs"
	# shellcheck disable=SC2086  # BENCH_NATIVE_ARGS is a list of options
	nice -n "$BENCH_NICE" "$BENCH_BIN" $BENCH_NATIVE_ARGS --mechanisms "$mechs" \
		--json "$out/native.json" --csv "$out/native.csv" | tee "$out/native.txt"
	local rc=${PIPESTATUS[0]}
	[ "$rc" = 0 ] || { echo "bench: native run failed (status $rc)"; status=1; }
}

# ---------------------------------------------------------------- guest
# extract RESULT.txt DIR: DIR/round-N.{json,csv} from the FILE blocks, DIR/
# output.txt: everything else the guest printed (the tables of every round)
extract() {
	awk -v dir="$2" '
		{ sub(/\r$/, "") }
		/^@@SHMQ FILE / { split($3, a, "-"); f = dir "/round-" a[2] "." a[1]; printf "" >f; infile = 1; next }
		/^@@SHMQ ENDFILE/ { close(f); infile = 0; next }
		infile { print >f; next }
		/^@@SHMQ / { next }
		{ print >(dir "/output.txt") }' "$1"
}

# merge OUT.json ROUND.json...: one row per cell, the median round, with the
# spread of every round's runs (tools/bench/merge.jq says how)
merge() {
	local o=$1; shift
	jq -s -f "$root/tools/bench/merge.jq" "$@" >"$o"
}

# csv JSON: the rows as shmq-bench --csv writes them
csv() {
	jq -r '"mechanism,workload,size,status,note,batch,buffer,repeats,messages,bytes,seconds,msgs_per_s,gb_per_s,rtt_median_us,rtt_p99_us,rtt_mean_us,rtt_min_us",
		(.rows[] | [.mechanism, .workload, .size, .status, .note, .batch, .buffer, .repeats, .messages, .bytes,
			.seconds, .msgs_per_s, .gb_per_s, .rtt_median_us, .rtt_p99_us, .rtt_mean_us, .rtt_min_us] | @csv)' "$1"
}

# table JSON: the merged rows as a table, with shmq-zc's advantage over each
table() {
	jq -r '
		def fmt: if . >= 1e6 then "\(. / 1e4 | round / 100)M" elif . >= 1e3 then "\(. / 100 | round / 10)k" else "\(. * 100 | round / 100)" end;
		def sz: if . >= 1048576 then "\(. / 1048576) MiB" elif . >= 1024 then "\(. / 1024) KiB" else "\(.) B" end;
		. as $d
		| "Median of \(.rounds) rounds per cell; last column: how many times better shmq-zc is (> 1: shmq wins)",
		  (([.rows[] | [.workload, .size]] | unique_by(.) | sort_by(.[0] != "pingpong", .[0] != "stream", .[1]))[] as [$w, $s]
		   | (first($d.rows[] | select(.mechanism == "shmq-zc" and .workload == $w and .size == $s and .status == "ok")) // null) as $z
		   | "", "\($w), \($s | sz)" + (if $w == "pingpong" then "   (round-trip median us, p99 us)" else "   (msgs/s, GB/s)" end),
		     ($d.rows[] | select(.workload == $w and .size == $s)
		      | if .status != "ok" then "  \(.mechanism | .[0:16] | . + " " * (16 - length)) \(.status) (\(.note))"
			else "  \(.mechanism | .[0:16] | . + " " * (16 - length)) " +
			  (if $w == "pingpong" then "\(.rtt_median_us | fmt)  \(.rtt_p99_us | fmt)" else "\(.msgs_per_s | fmt)  \(.gb_per_s * 1000 | round / 1000)" end)
			  + (if $z == null or .mechanism == "shmq-zc" then "" elif $w == "pingpong" then "   x\(.rtt_median_us / $z.rtt_median_us * 100 | round / 100)"
			     else "   x\($z.msgs_per_s / .msgs_per_s * 100 | round / 100)" end)
			  + (if .note != "" then "  [\(.note)]" else "" end) end))' "$1"
}

run_guest() {
	local label=$1 kver image kdir debug
	read -r label kver image kdir debug < <("$here/kernels.sh" "$BUILD" "$label") || {
		echo "bench: kernel '$1' not available (tools/install-deps.sh installs it)"; status=1; return; }
	local wd=$BUILD/guest/$kver rd=$out/$kver
	mkdir -p "$wd" "$rd"
	echo "== bench: $kver ($label): module, kernel image, initramfs"
	if ! "$MODULE_BUILD" "$kdir" "$wd/module" >"$wd/module-build.log" 2>&1; then
		tail -n 30 "$wd/module-build.log"; echo "bench: module build for $kver failed"; status=1; return
	fi
	local kimg=$image
	if grep -q '^CONFIG_KASAN=y' "$kdir/.config" 2>/dev/null; then
		:
	elif [ -s "$wd/vmlinux" ] && [ ! "$image" -nt "$wd/vmlinux" ] && [ ! -e "$wd/pvh-broken" ]; then
		kimg=$wd/vmlinux
	elif "$here/extract-vmlinux.sh" "$image" "$wd/vmlinux" 2>/dev/null; then
		kimg=$wd/vmlinux
	fi
	# files the mechanisms need in the guest (tools/bench/guest-files)
	local extra=() f
	if [ -r "$root/tools/bench/guest-files" ]; then
		while read -r f; do
			f=${f%%#*}; f=${f//\$BUILD/$BUILD}; f=${f//\$(BUILD)/$BUILD}
			for f in $f; do
				if [ -e "$f" ]; then extra+=("$f"); else echo "   note: $f (tools/bench/guest-files) missing: not in the guest"; fi
			done
		done <"$root/tools/bench/guest-files"
	fi
	MKINITRAMFS_EXTRA="${extra[*]}" "$here/mkinitramfs.sh" "$rd/initramfs.cpio" \
		"$wd/module/shmq.ko" "$BENCH_BIN" || { echo "bench: initramfs for $kver failed"; status=1; return; }
	rm -rf "$rd/conf"; mkdir -p "$rd/conf/etc"
	local q=${BENCH_GUEST_ARGS//\'/\'\\\'\'}
	printf "LABEL='%s bench'\nBENCH_ARGS='%s'\nBENCH_ROUNDS=%s\nDEBUG_KERNEL=%s\nVCPUS=%s\n" \
		"$kver" "$q" "$BENCH_ROUNDS" "$debug" "$BENCH_SMP" >"$rd/conf/etc/shmq-run.conf"
	[ -r "$root/tools/bench/guest-pre.sh" ] && cp "$root/tools/bench/guest-pre.sh" "$rd/conf/etc/shmq-bench-pre.sh"
	(cd "$rd/conf" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) >"$rd/conf.cpio"
	cp "$rd/initramfs.cpio" "$rd/initrd"
	head -c $(( (4 - $(stat -c %s "$rd/initrd") % 4) % 4 )) /dev/zero >>"$rd/initrd"
	cat "$rd/conf.cpio" >>"$rd/initrd"
	rm -f "$rd/conf.cpio" "$rd/initramfs.cpio"
	echo "== bench: booting $kver in QEMU (TCG, $BENCH_SMP vCPUs), shmq-bench $BENCH_GUEST_ARGS"
	echo "   (logs: $(rel "$rd")/; every figure below is emulated: compare only ratios within the run)"
	local rc=0
	rm -f "$rd/result.txt"
	nice -n "$BENCH_NICE" "$here/boot.sh" "$kimg" "$rd/initrd" "$rd" --smp "$BENCH_SMP" --mem 1G \
		--timeout "$BENCH_GUEST_TIMEOUT" --append "shmqmode=bench ${BENCH_APPEND:-}" &
	local bpid=$!
	# the table as the guest prints it
	while [ ! -e "$rd/result.txt" ] && kill -0 $bpid 2>/dev/null; do sleep 1; done
	tail -n +1 -F --pid=$bpid "$rd/result.txt" 2>/dev/null |
		sed -u -n '/^@@SHMQ FILE/,/^@@SHMQ ENDFILE/d; /^@@SHMQ DONE/d; s/^@@SHMQ /   guest: /; p'
	wait $bpid || rc=$?
	rm -f "$rd/initrd"
	rm -f "$rd"/round-* "$rd/output.txt"
	extract "$rd/result.txt" "$rd"
	local rounds=("$rd"/round-*.json)
	if [ -e "${rounds[0]}" ]; then
		merge "$out/guest-$kver.json" "${rounds[@]}"
		csv "$out/guest-$kver.json" >"$out/guest-$kver.csv"
		{ cat "$rd/output.txt"; echo; table "$out/guest-$kver.json"; } >"$out/guest-$kver.txt"
		[ ${#rounds[@]} -gt 1 ] && { echo; table "$out/guest-$kver.json"; }
	fi
	local brc; brc=$(sed -n 's/^@@SHMQ BENCH rc=\([0-9]*\).*/\1/p' "$rd/result.txt")
	if [ "$rc" != 85 ] && [ "$rc" != 87 ]; then
		echo "bench: the $kver guest stopped unexpectedly (QEMU status $rc); last console lines:"
		tail -n 20 "$rd/console.log" | sed 's/^/   /'
		status=1
	elif [ "$brc" != 0 ]; then
		echo "bench: shmq-bench failed in the $kver guest (status ${brc:-none})"
		status=1
	fi
	if ! jq -e '.rows | length > 0' "$out/guest-$kver.json" >/dev/null 2>&1; then
		echo "bench: no usable JSON from the $kver guest ($(rel "$out/guest-$kver.json"))"
		status=1
	else
		echo "== bench: $kver: $(rel "$out/guest-$kver.json"), .csv, .txt ($(cat "$rd/seconds")s)"
	fi
}

for step in $steps; do
	case $step in
	native) run_native ;;
	guest)
		# One harness at a time per build directory (build/guest/KVER/).
		exec 9>"$BUILD/.guest-harness.lock"
		flock -n 9 || { echo "note: another make test/demo/bench is using $BUILD: waiting for it"; flock 9; }
		for k in $BENCH_KERNELS; do run_guest "$k"; done
		exec 9>&-
		;;
	report)
		"$root/tools/bench/targets.sh" "$out" | tee "$out/targets.txt" || status=1
		"$root/tools/bench/chart.sh" "$out" || status=1
		;;
	*) echo "bench.sh: unknown step '$step' (native, guest, report)" >&2; exit 2 ;;
	esac
done
exit $status

#!/usr/bin/env bash
# run-matrix.sh: the body of `make test` after the build (tests/tests.mk).
# Runs the native tests, then for every kernel of the matrix (kernels.sh):
# builds shmq.ko for it, packs a guest initramfs, boots it with 1 vCPU (full
# suite as root, the unprivileged suites as a member and an outsider of group
# shmq) and with 2 vCPUs (the concurrency tests), judges each boot
# (parse-run.awk) and prints per-run counts, failure excerpts and finally
# exactly "N passed, N failed". Exit status 1 if anything failed.
#
# Environment (tests/tests.mk passes the paths):
#   BUILD          build directory (absolute)                       required
#   GUEST_TESTS    static gtest binary for the guest                required
#   NATIVE_TESTS   host gtest binaries (each skipped with a note if missing)
#   FUZZ_BIN       the consumer fuzzer (tests/fuzz/fuzz.mk), run for FUZZ_SECONDS
#                  (default 60, 0: off) after the native tests, with FUZZ_SEEDS and
#                  FUZZ_REGRESSIONS (inputs that once failed, tests/fuzz/regressions);
#                  FUZZ_MISSING is the failure to report when it could not be built
#   GUEST_TOOLS    further binaries for the guest (shmqctl, shmq-demo)
#   MODULE_BUILD   command "MODULE_BUILD KDIR OUTDIR" leaving OUTDIR/shmq.ko
#                  (default: kernel/build-module.sh)
#   KERNELS        labels to run (default "6.1 6.12 6.1-debug")
#   GUEST_SMP      vCPU counts to boot each kernel with (default "1 2")
#   GUEST_JOBS     CPU slots for guests running at once (default: nproc);
#                  a 1-vCPU guest takes one slot, a 2-vCPU guest two
#   GUEST_FILTER   gtest filter for the root suite of every boot (default:
#                  everything but Unpriv* with 1 vCPU, SMP2_FILTER with more)
#   SMP2_FILTER    default '*Stress*:*Wait*:*Peer*:*Kill*:*Race*:*Hostile*'
#   ROOT_TIMEOUT / UNPRIV_TIMEOUT   in-guest limits per suite, seconds
#                  (default 480 / 120 on a stock kernel, DEBUG_ROOT_TIMEOUT /
#                  DEBUG_UNPRIV_TIMEOUT = 1200 / 300 on the debug kernel); a
#                  suite that hangs is killed and the boot goes on to the gates
#   GUEST_HOST_TIMEOUT  host-side limit per boot, for a guest that hangs as a
#                  whole (default: the root suite's limit + 300 s, + 600 s on
#                  the debug kernel); never beyond TEST_DEADLINE
#   TEST_DEADLINE  seconds after the start of this script by which every
#                  boot must have ended (default 3000), so that even a matrix
#                  of hanging guests ends within CI's limit
#   DEBUG_KERNEL_DIR   where the debug kernel lives (see kernels.sh)
#   GUEST_CONF     shell lines appended to every boot's /etc/shmq-run.conf,
#                  e.g. "export SHMQ_X=1" or "MODULE_PARAMS='queues=unpriv:64K x=1'"
#   GUEST_HOST_TIMEOUT  host-side limit per boot, seconds (default: the
#                  in-guest limits of its suites + 300, times DEBUG_SLOWDOWN)
#   INSTALL_TEST   the install test script (default tests/install/run.sh;
#                  empty: skipped), run after the native tests
#   BENCH_SMOKE    kernel labels whose boot with the most vCPUs also runs a
#                  short shmq-bench smoke run after the suites (gate "bench":
#                  runs, verifies every message, exits 0, JSON parses; never
#                  judged on time). Default "6.1", or none when GUEST_FILTER
#                  is set; needs shmq-bench and jq among GUEST_TOOLS
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
cd "$root"
: "${BUILD:?}" "${GUEST_TESTS:?}"
MODULE_BUILD=${MODULE_BUILD:-$root/kernel/build-module.sh}
GUEST_SMP=${GUEST_SMP:-1 2}
GUEST_JOBS=${GUEST_JOBS:-$(nproc)}
SMP2_FILTER=${SMP2_FILTER:-*Stress*:*Wait*:*Peer*:*Kill*:*Race*:*Hostile*}
ROOT_TIMEOUT=${ROOT_TIMEOUT:-480}
UNPRIV_TIMEOUT=${UNPRIV_TIMEOUT:-120}
DEBUG_ROOT_TIMEOUT=${DEBUG_ROOT_TIMEOUT:-1200}
DEBUG_UNPRIV_TIMEOUT=${DEBUG_UNPRIV_TIMEOUT:-300}
TEST_DEADLINE=${TEST_DEADLINE:-3000}
if [ -n "${GUEST_FILTER:-}" ]; then BENCH_SMOKE=${BENCH_SMOKE-}; else BENCH_SMOKE=${BENCH_SMOKE-6.1}; fi
SMOKE_SMP=$(printf '%s\n' $GUEST_SMP | sort -n | tail -n1)
# One harness at a time per build directory: runs share build/guest/KVER/.
mkdir -p "$BUILD"
exec 9>"$BUILD/.guest-harness.lock"
if ! flock -n 9; then
	echo "note: another make test/demo is using $BUILD: waiting for it"
	flock 9
fi
T0=$(date +%s)
out=$BUILD/test-results
rm -rf "$out"; mkdir -p "$out"
rel() { realpath --relative-to="$root" "$1" 2>/dev/null || echo "$1"; }

# ---------------------------------------------------------------- judging
# record NAME SUMMARYFILE SECONDS LOGS...: print one run's verdict
total_pass=0 total_fail=0
record() {
	local name=$1 sum=$2 secs=$3; shift 3
	local p f s
	read -r _ p f s < <(grep '^COUNT ' "$sum")
	total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
	printf '%-32s %4d passed, %d failed%s   (%ss)\n' "$name:" "$p" "$f" \
		"$( [ "$s" -gt 0 ] && echo ", $s skipped")" "$secs"
	printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$p" "$f" "$s" "$secs" >>"$out/summary"
	local l
	for l in "$@"; do
		case $l in *result.txt) sed -n 's/^@@SHMQ NOTE timing: /      in the guest: /p' "$l" 2>/dev/null ;; esac
		# figures the tests report (report_figure in shmq_test.hpp):
		# shown per run, summed per key at the end
		case $l in *result.txt|*.log)
			grep -a '^@@SHMQ FIGURE ' "$l" 2>/dev/null | while read -r _ _ key n text; do
				printf '      figure: %s %s (%s)\n' "$n" "$text" "$key"
				printf '%s\t%s\t%s\t%s\n' "$key" "$n" "$name" "$text" >>"$out/figures"
			done ;;
		esac
	done
	if [ "$f" -gt 0 ]; then
		echo "---- $name: failures"
		sed -n 's/^FAIL /  FAILED: /p' "$sum" | head -n 50
		if grep -q '^EXCERPT ' "$sum"; then
			echo "---- $name: excerpt"
			sed -n 's/^EXCERPT /  /p' "$sum" | head -n 150
		fi
		local log
		for log in "$@"; do
			case $log in
			*console.log)
				[ -s "$log" ] || continue
				echo "---- $name: last lines of $(rel "$log")"
				tail -n 30 "$log" | sed 's/^/  /' ;;
			esac
		done
		echo "---- $name: full logs: $(for l in "$@"; do printf '%s ' "$(rel "$l")"; done)"
	fi
}

# ---------------------------------------------------------------- native
nat=0
for nb in ${NATIVE_TESTS:-}; do
	[ -x "$nb" ] || { echo "note: native test binary $(rel "$nb") missing: skipped"; continue; }
	nat=1
	name=native; case $nb in *-asan) name=native-asan ;; esac
	echo "== $name tests: $(rel "$nb")"
	s=$(date +%s)
	{
		echo "@@SHMQ BEGIN $name"
		GTEST_COLOR=no ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "$nb" 2>&1; rc=$?
		echo; echo "@@SHMQ END $name rc=$rc"
	} >"$out/$name.log"
	awk -v plan=$name -f "$here/parse-run.awk" "$out/$name.log" >"$out/$name.sum"
	record "$name" "$out/$name.sum" $(( $(date +%s) - s )) "$out/$name.log"
done
[ $nat = 1 ] || echo "note: no native test binary: native tests skipped"

# ---------------------------------------------------------------- fuzz
# libFuzzer on the consumer's record parsing (tests/fuzz/fuzz.mk) for
# FUZZ_SECONDS, with the native tests (skipped with them, or FUZZ_SECONDS=0).
# One result: pass when nothing was found, else a failure naming the input.
if [ -n "${FUZZ_BIN:-}" ] && [ $nat = 1 ] && [ "${FUZZ_SECONDS:-60}" != 0 ]; then
	name=fuzz; s=$(date +%s); log=$out/fuzz.log
	echo "== $name: $(rel "$FUZZ_BIN") for ${FUZZ_SECONDS:-60}s"
	if [ -n "${FUZZ_MISSING:-}" ] || [ ! -x "$FUZZ_BIN" ]; then
		{ echo "COUNT 0 1 0"
		  echo "FAIL fuzz: ${FUZZ_MISSING:-the fuzzer $(rel "$FUZZ_BIN") was not built}"; } >"$out/$name.sum"
		: >"$log"
	else
		corpus=$BUILD/fuzz/corpus arts=$BUILD/fuzz/artifacts # both kept across runs
		mkdir -p "$corpus" "$arts"
		dict=$root/tests/fuzz/consumer.dict
		"$FUZZ_BIN" -max_total_time="${FUZZ_SECONDS:-60}" -timeout=10 -rss_limit_mb=2048 \
			-max_len=8448 -use_value_profile=1 -dict="$dict" -print_final_stats=1 \
			-artifact_prefix="$arts/" "$corpus" ${FUZZ_SEEDS:+"$FUZZ_SEEDS"} \
			${FUZZ_REGRESSIONS:+"$FUZZ_REGRESSIONS"} >"$log" 2>&1
		rc=$?
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
		[ -n "$execs" ] && echo "@@SHMQ FIGURE fuzz_executions $execs libFuzzer executions of the consumer record parser" >>"$log"
		crash=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
		if [ "$rc" = 0 ] && [ -z "$crash" ]; then
			echo "COUNT 1 0 0" >"$out/$name.sum"
		else
			{ echo "COUNT 0 1 0"
			  if [ -n "$crash" ]; then
				echo "FAIL fuzz: libFuzzer found a failing input $(rel "$crash"); reproduce: SHMQ_FUZZ_TRACE=1 $(rel "$FUZZ_BIN") $(rel "$crash")"
			  else
				echo "FAIL fuzz: libFuzzer exited with status $rc and no failing input (see $(rel "$log"))"
			  fi
			  grep -E 'property violated|ERROR: |SUMMARY: |^ *#[0-9]+ ' "$log" | head -n 30 | sed 's/^/EXCERPT /'
			} >"$out/$name.sum"
		fi
	fi
	record "$name" "$out/$name.sum" $(( $(date +%s) - s )) "$log"
fi

# ---------------------------------------------------------------- install
# make install into a temporary DESTDIR, outside projects (pkg-config, CMake)
# against the installed copy, make uninstall, dkms build (tests/install/run.sh).
# INSTALL_TEST= (empty) skips it.
INSTALL_TEST=${INSTALL_TEST-$root/tests/install/run.sh}
if [ -n "$INSTALL_TEST" ]; then
	echo "== install tests: $(rel "$INSTALL_TEST")"
	s=$(date +%s)
	{
		echo "@@SHMQ BEGIN install"
		BUILD="$BUILD" bash "$INSTALL_TEST" 2>&1; rc=$?
		echo; echo "@@SHMQ END install rc=$rc"
	} >"$out/install.log"
	awk -v plan=install -f "$here/parse-run.awk" "$out/install.log" >"$out/install.sum"
	record install "$out/install.sum" $(( $(date +%s) - s )) "$out/install.log"
fi

# ---------------------------------------------------------------- prepare kernels
guest_bins=("$GUEST_TESTS")
for b in ${GUEST_TOOLS:-}; do
	if [ -x "$b" ]; then guest_bins+=("$b"); else echo "note: guest tool $b missing: not in the guest"; fi
done
if [ ! -x "$GUEST_TESTS" ]; then
	echo "error: guest test binary $GUEST_TESTS missing" >&2
	exit 1
fi

mapfile -t kernels < <("$here/kernels.sh" "$BUILD" ${KERNELS:-})
jobs_list=()   # "weight label kver smp image debug workdir"
for k in "${kernels[@]}"; do
	read -r label kver image kdir debug <<<"$k"
	wd=$BUILD/guest/$kver
	mkdir -p "$wd"
	echo "== $kver ($label): module, kernel image, initramfs"
	s=$(date +%s)
	if ! "$MODULE_BUILD" "$kdir" "$wd/module" >"$wd/module-build.log" 2>&1 || [ ! -f "$wd/module/shmq.ko" ]; then
		{ echo "COUNT 0 1 0"; echo "FAIL module build for $kver failed (see $(rel "$wd/module-build.log"))"
		  tail -n 40 "$wd/module-build.log" | sed 's/^/EXCERPT /'; } >"$wd/module.sum"
		record "$kver module" "$wd/module.sum" $(( $(date +%s) - s )) "$wd/module-build.log"
		continue
	fi
	grep -iE 'warning|error' "$wd/module-build.log" | sed 's/^/  module build: /' | head -n 20
	# PVH boot of the ELF vmlinux when it can be extracted (cached by mtime).
	# A KASAN kernel crashes in its PVH entry path (instrumented code runs
	# before the shadow exists): boot its bzImage. run_boot also falls back
	# to the bzImage when a PVH boot dies before printing anything.
	if grep -q '^CONFIG_KASAN=y' "$kdir/.config" 2>/dev/null; then
		rm -f "$wd/vmlinux"
		echo "   KASAN kernel: booting its bzImage (no PVH entry)"
	elif [ ! -s "$wd/vmlinux" ] || [ "$image" -nt "$wd/vmlinux" ]; then
		rm -f "$wd/vmlinux" "$wd/pvh-broken"
		"$here/extract-vmlinux.sh" "$image" "$wd/vmlinux" || echo "note: booting the bzImage of $kver"
	fi
	if ! "$here/mkinitramfs.sh" "$wd/initramfs.cpio" "$wd/module/shmq.ko" "${guest_bins[@]}"; then
		{ echo "COUNT 0 1 0"; echo "FAIL initramfs for $kver could not be built"; } >"$wd/module.sum"
		record "$kver initramfs" "$wd/module.sum" 0
		continue
	fi
	for smp in $GUEST_SMP; do
		w=$smp; [ "$w" -gt "$GUEST_JOBS" ] && w=$GUEST_JOBS
		jobs_list+=("$w $label $kver $smp $image $debug $wd")
	done
done

# ---------------------------------------------------------------- one boot
# run_boot LABEL KVER SMP IMAGE DEBUG WORKDIR: boots and writes WORKDIR/smpN/run.sum
run_boot() {
	local label=$1 kver=$2 smp=$3 image=$4 debug=$5 wd=$6
	local rd=$wd/smp$smp filter unpriv
	rm -rf "$rd"; mkdir -p "$rd/conf/etc"
	if [ "$smp" = 1 ]; then
		filter=${GUEST_FILTER:--Unpriv*}; unpriv='member outsider'
	else
		filter=${GUEST_FILTER:-$SMP2_FILTER}; unpriv=''
	fi
	local rt=$ROOT_TIMEOUT ut=$UNPRIV_TIMEOUT margin=300
	[ "$debug" = 1 ] && rt=$DEBUG_ROOT_TIMEOUT ut=$DEBUG_UNPRIV_TIMEOUT margin=600
	local host_tmo=${GUEST_HOST_TIMEOUT:-$((rt + margin))}
	local smoke=0 gates="insmod udev rmmod dmesg taint"
	[ "$debug" = 1 ] && gates="$gates kmemleak"
	case " $BENCH_SMOKE " in *" $label "*) [ "$smp" = "$SMOKE_SMP" ] && smoke=1 gates="$gates bench" ;; esac
	local left=$((TEST_DEADLINE - ($(date +%s) - T0)))
	[ "$left" -lt 60 ] && left=60
	[ "$host_tmo" -gt "$left" ] && host_tmo=$left
	cat >"$rd/conf/etc/shmq-run.conf" <<EOF
LABEL='$kver smp$smp'
ROOT_FILTER='$filter'
UNPRIV_USERS='$unpriv'
ROOT_TIMEOUT=$rt
UNPRIV_TIMEOUT=$ut
DEBUG_KERNEL=$debug
VCPUS=$smp
BENCH_SMOKE=$smoke
${GUEST_CONF:-}
EOF
	# per-boot settings: a second cpio appended at a 4-byte aligned offset
	(cd "$rd/conf" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) >"$rd/conf.cpio"
	cp "$wd/initramfs.cpio" "$rd/initrd"
	local sz; sz=$(stat -c %s "$rd/initrd")
	head -c $(( (4 - sz % 4) % 4 )) /dev/zero >>"$rd/initrd"
	cat "$rd/conf.cpio" >>"$rd/initrd"
	local mem=1G; [ "$debug" = 1 ] && mem=2G
	local kimg=$image rc boot
	[ -s "$wd/vmlinux" ] && [ ! -e "$wd/pvh-broken" ] && kimg=$wd/vmlinux
	"$here/boot.sh" "$kimg" "$rd/initrd" "$rd" --smp "$smp" --mem "$mem" \
		--timeout "$host_tmo" --append "shmqmode=test"
	rc=$?
	if [ "$kimg" != "$image" ] && [ "$rc" = 0 ] && [ ! -s "$rd/console.log" ]; then
		touch "$wd/pvh-broken"
		echo "   note: $kver died silently in its PVH entry: booting its bzImage instead"
		"$here/boot.sh" "$image" "$rd/initrd" "$rd" --smp "$smp" --mem "$mem" \
			--timeout "$host_tmo" --append "shmqmode=test"
		rc=$?
	fi
	case $rc in
		85) boot=PASS ;;
		124|137) boot="FAIL host timeout after ${host_tmo}s (guest hung)" ;;
		0) boot="FAIL guest rebooted: kernel panic? (panic=-1)" ;;
		*) boot="FAIL qemu exited with status $rc: $(tail -n 3 "$rd/qemu.out" 2>/dev/null | tr '\n' ' ')" ;;
	esac
	awk -v plan="root $unpriv" -v gates="$gates" -v boot="$boot" \
		-f "$here/parse-run.awk" "$rd/result.txt" >"$rd/run.sum" 2>/dev/null ||
		echo "COUNT 0 1 0" >"$rd/run.sum"
	rm -f "$rd/initrd" "$rd/conf.cpio"
}

# ---------------------------------------------------------------- schedule
# Greedy: start the first queued boot that fits into the free CPU slots
# (the list is ordered slowest first), otherwise wait for one to end.
order=()
for j in "${jobs_list[@]}"; do
	read -r w label kver smp image debug wd <<<"$j"
	order+=("$((debug * 10 + (smp > 1 ? 1 : 2))) $j")
done
mapfile -t queue < <(printf '%s\n' "${order[@]}" | sed '/^$/d' | sort -k1,1nr -s | cut -d' ' -f2-)
free=$GUEST_JOBS
declare -A pid_w=() pid_job=()
echo "== booting ${#queue[@]} guests, up to $GUEST_JOBS CPU slots at a time (logs: $(rel "$BUILD/guest")/KVER/smpN/)"
while [ ${#queue[@]} -gt 0 ] || [ ${#pid_w[@]} -gt 0 ]; do
	started=0
	for i in "${!queue[@]}"; do
		read -r w label kver smp image debug wd <<<"${queue[$i]}"
		[ "$w" -le "$free" ] || continue
		run_boot "$label" "$kver" "$smp" "$image" "$debug" "$wd" &
		pid_w[$!]=$w; pid_job[$!]="$kver smp$smp|$wd/smp$smp"
		free=$((free - w)); unset "queue[$i]"; queue=("${queue[@]}")
		echo "   started $kver smp$smp"
		started=1; break
	done
	[ $started = 1 ] && continue
	wait -n -p done_pid
	[ -n "${done_pid:-}" ] || continue
	free=$((free + pid_w[$done_pid]))
	IFS='|' read -r name rd <<<"${pid_job[$done_pid]}"
	unset "pid_w[$done_pid]" "pid_job[$done_pid]"
	record "$name" "$rd/run.sum" "$(cat "$rd/seconds" 2>/dev/null || echo '?')" \
		"$rd/result.txt" "$rd/console.log"
done

echo "== timings (boot + run, seconds; wall clock of the whole test: $(( $(date +%s) - T0 ))s)"
[ -f "$out/summary" ] && awk -F'\t' '$1 ~ / smp[0-9]+$/ { printf "   %-32s %6ss  %s\n", $1, $5, ($3 > 0 ? "FAILED" : "ok") }' "$out/summary"
if [ -s "$out/figures" ]; then
	echo "== figures over all runs (key: total, runs; see each run above)"
	awk -F'\t' '{ sum[$1] += $2; if (!(($1, $3) in seen)) { seen[$1, $3] = 1; runs[$1]++ }
		if (!($1 in text)) { text[$1] = $4; order[++n] = $1 } }
		END { for (i = 1; i <= n; i++) { k = order[i]; printf "   %-28s %10d in %d runs  (%s)\n", k, sum[k], runs[k], text[k] } }' "$out/figures"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]

#!/usr/bin/env bash
# boot.sh KERNEL INITRD OUTDIR [options]
# Boots one QEMU guest (TCG: this host has no KVM) and waits for it.
#   KERNEL   an ELF vmlinux (booted through its PVH entry) or a bzImage
#   INITRD   the initramfs (with /etc/shmq-run.conf appended)
#   OUTDIR   gets console.log (ttyS0: kernel + init messages), result.txt
#            (ttyS1: the report), qemu.rc, seconds, qemu.cmd
# options:
#   --smp N          vCPUs (N > 1 uses multi-threaded TCG)   default 1
#   --mem SIZE       guest memory                             default 1G
#   --timeout SECS   host-side limit (a hung guest is killed) default 1200
#   --boot-timeout SECS  if init has not reported on ttyS1 by then, the boot
#                    hung (seen: the debug kernel stalling in its RCU self
#                    tests under TCG on a loaded host): kill it and boot
#                    once more. 0 = no such watchdog            default 300
#   --append WORDS   extra kernel command line words (no dots in words for init)
#   --interactive    console on this terminal instead of console.log
#   --result-stdio   ttyS1 on this terminal instead of result.txt (demo)
# A guest whose kernel panics before init reports (before shmq.ko is loaded)
# is booted once more, with a note; a later panic is never retried.
# Exit status: QEMU's. 85 = init finished and left through isa-debug-exit;
# 124 = host timeout; 0 = the guest rebooted (panic=-1: a kernel panic).
set -euo pipefail
kernel=$1 initrd=$2 out=$3; shift 3
smp=1 mem=1G tmo=1200 boot_tmo=300 append='' interactive=0 result_stdio=0
while [ $# -gt 0 ]; do
	case $1 in
		--smp) smp=$2; shift ;;
		--mem) mem=$2; shift ;;
		--timeout) tmo=$2; shift ;;
		--boot-timeout) boot_tmo=$2; shift ;;
		--append) append=$2; shift ;;
		--interactive) interactive=1 ;;
		--result-stdio) result_stdio=1 ;;
		*) echo "boot.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
mkdir -p "$out"
rm -f "$out/console.log" "$out/result.txt" "$out/qemu.rc" "$out/seconds"

args=(qemu-system-x86_64 -nodefaults -no-user-config -machine pc
      -m "$mem" -display none -no-reboot
      -device isa-debug-exit,iobase=0xf4,iosize=0x04
      -kernel "$kernel" -initrd "$initrd")
if [ "$smp" -gt 1 ]; then
	args+=(-accel tcg,thread=multi -smp "$smp")
else
	args+=(-accel tcg -smp 1)
fi
if [ $interactive = 1 ]; then
	args+=(-chardev stdio,id=con,signal=on -serial chardev:con)
else
	args+=(-serial "file:$out/console.log")
fi
if [ $result_stdio = 1 ]; then
	args+=(-chardev stdio,id=res,signal=on -serial chardev:res)
else
	args+=(-serial "file:$out/result.txt")
fi
args+=(-append "console=ttyS0 panic=-1 no_timer_check $append")
printf '%q ' "${args[@]}" >"$out/qemu.cmd"; echo >>"$out/qemu.cmd"

# run_watched: one boot in the background; returns QEMU's status, or 125
# when init did not write its first report line within boot_tmo seconds.
run_watched() {
	timeout -k 10 "$tmo" "${args[@]}" </dev/null >"$out/qemu.out" 2>&1 &
	local pid=$! waited=0
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$boot_tmo" -gt 0 ] && [ "$waited" -ge "$boot_tmo" ] &&
		   ! grep -q '^@@SHMQ ' "$out/result.txt" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			return 125
		fi
		sleep 1
		waited=$((waited + 1))
	done
	wait "$pid"
}

start=$(date +%s.%N)
rc=0
if [ $interactive = 1 ] || [ $result_stdio = 1 ]; then
	timeout --foreground -k 10 "$tmo" "${args[@]}" || rc=$?
else
	run_watched || rc=$?
	if [ "$rc" = 125 ]; then
		mv "$out/console.log" "$out/console-hung-boot.log" 2>/dev/null
		echo "boot.sh: no report from init after ${boot_tmo}s: boot hung, booting again" \
			>>"$out/qemu.out"
		echo "   note: $(basename "$out") boot hung before init (console-hung-boot.log): booting again" >&2
		rm -f "$out/result.txt"
		rc=0
		run_watched || rc=$?
	fi
	# A panic before init wrote its first report line happened in the
	# kernel's own boot, before shmq.ko was loaded (init loads it after
	# "@@SHMQ PLAN"). Seen once in CI: 6.12 under multi-threaded TCG oopsed
	# in an interrupt during cpu_latency_qos_init. That says nothing about
	# the module: keep the log and boot once more. A panic after init
	# started is never retried, nor one whose console shows the module
	# (its messages "shmq: ", a "[shmq]" frame, "Modules linked in: shmq").
	if [ "$rc" = 0 ] && ! grep -q '^@@SHMQ ' "$out/result.txt" 2>/dev/null &&
	   grep -q 'Kernel panic' "$out/console.log" 2>/dev/null &&
	   ! grep -qE 'shmq: |\[shmq\]|Modules linked in:.*shmq' "$out/console.log"; then
		mv "$out/console.log" "$out/console-panic-before-init.log"
		echo "boot.sh: kernel panicked before init ran: booting again" >>"$out/qemu.out"
		echo "   note: $(basename "$out") kernel panicked in its own boot, before init and before shmq.ko" \
			"(console-panic-before-init.log: $(grep -m1 -E 'BUG:|Oops|general protection|Kernel panic' \
			"$out/console-panic-before-init.log" | sed 's/^\[[^]]*\] //')): booting again" >&2
		rm -f "$out/result.txt"
		rc=0
		run_watched || rc=$?
	fi
fi
end=$(date +%s.%N)
echo "$rc" >"$out/qemu.rc"
awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f\n", b - a }' >"$out/seconds"
exit "$rc"

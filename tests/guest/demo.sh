#!/usr/bin/env bash
# demo.sh [--shell]: the body of `make demo` (and `make guest-shell`).
# Runs shmq-demo against the real module:
#  - natively when this machine can load modules (root, /proc/modules, the
#    running kernel's build tree): build, insmod, run, rmmod;
#  - otherwise in a QEMU guest with DEMO_KERNEL (default the Debian 6.1
#    kernel, see kernels.sh), 2 vCPUs, the demo's output streamed here.
# --shell: boot the guest with the module loaded and a shell on this terminal.
# Environment: BUILD, GUEST_TOOLS (shmqctl, shmq-demo), GUEST_TESTS
# (optional), MODULE_BUILD, DEMO_ARGS, DEMO_KERNEL, DEMO_FORCE_GUEST=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
cd "$root"
: "${BUILD:?}"
MODULE_BUILD=${MODULE_BUILD:-$root/kernel/build-module.sh}
# One harness at a time per build directory: runs share build/guest/KVER/.
mkdir -p "$BUILD"
exec 9>"$BUILD/.guest-harness.lock"
if ! flock -n 9; then
	echo "note: another make test/demo is using $BUILD: waiting for it"
	flock 9
fi
shell=0; [ "${1:-}" = --shell ] && shell=1
demo_bin='' bins=()
for b in ${GUEST_TOOLS:-} ${GUEST_TESTS:-}; do
	[ -x "$b" ] || continue
	bins+=("$b")
	case $b in */shmq-demo) demo_bin=$b ;; esac
done
if [ -z "$demo_bin" ] && [ $shell = 0 ]; then
	echo "demo: shmq-demo not built (GUEST_TOOLS=${GUEST_TOOLS:-})" >&2
	exit 1
fi

# ---- native: only where modules can be loaded here
kver=$(uname -r)
if [ $shell = 0 ] && [ -z "${DEMO_FORCE_GUEST:-}" ] && [ "$(id -u)" = 0 ] && [ -e /proc/modules ] &&
	[ -f "/lib/modules/$kver/build/Makefile" ]; then
	echo "== demo: this kernel ($kver) loads modules: running natively"
	"$MODULE_BUILD" "/lib/modules/$kver/build" "$BUILD/module-native/$kver" >/dev/null
	if grep -q '^shmq ' /proc/modules; then
		echo "demo: a shmq module is already loaded; using it"
		loaded=0
	else
		insmod "$BUILD/module-native/$kver/shmq.ko"
		loaded=1
		trap '[ $loaded = 1 ] && rmmod shmq' EXIT
		command -v udevadm >/dev/null && udevadm settle || sleep 1
	fi
	# shellcheck disable=SC2086  # DEMO_ARGS is a list of arguments
	"$demo_bin" ${DEMO_ARGS:-}
	exit $?
fi

# ---- in a QEMU guest
label=${DEMO_KERNEL:-6.1}
read -r label kver image kdir debug < <("$here/kernels.sh" "$BUILD" "$label") || {
	echo "demo: kernel '$label' not available (run tools/install-deps.sh)" >&2; exit 1; }
wd=$BUILD/guest/$kver
mkdir -p "$wd"
echo "== demo: building shmq.ko for $kver"
"$MODULE_BUILD" "$kdir" "$wd/module" >"$wd/module-build.log" 2>&1 || {
	tail -n 30 "$wd/module-build.log" >&2; echo "demo: module build failed" >&2; exit 1; }
kimg=$image
if grep -q '^CONFIG_KASAN=y' "$kdir/.config" 2>/dev/null; then
	:
elif [ -s "$wd/vmlinux" ] && [ ! "$image" -nt "$wd/vmlinux" ] && [ ! -e "$wd/pvh-broken" ]; then
	kimg=$wd/vmlinux
elif "$here/extract-vmlinux.sh" "$image" "$wd/vmlinux" 2>/dev/null; then
	kimg=$wd/vmlinux
fi
"$here/mkinitramfs.sh" "$wd/demo.cpio" "$wd/module/shmq.ko" "${bins[@]}"
rd=$wd/demo
rm -rf "$rd"; mkdir -p "$rd/conf/etc"
q=${DEMO_ARGS:-}; q=${q//\'/\'\\\'\'}
printf "LABEL='%s %s'\nDEMO_ARGS='%s'\nDEBUG_KERNEL=%s\nVCPUS=2\n" "$kver" "$( [ $shell = 1 ] && echo shell || echo demo)" "$q" "$debug" \
	>"$rd/conf/etc/shmq-run.conf"
(cd "$rd/conf" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) >"$rd/conf.cpio"
cp "$wd/demo.cpio" "$rd/initrd"
head -c $(( (4 - $(stat -c %s "$rd/initrd") % 4) % 4 )) /dev/zero >>"$rd/initrd"
cat "$rd/conf.cpio" >>"$rd/initrd"
mem=1G
if [ $shell = 1 ]; then
	echo "== guest shell: kernel $kver, module loaded; 'exit' powers off (Ctrl-C kills QEMU)"
	rc=0
	"$here/boot.sh" "$kimg" "$rd/initrd" "$rd" --smp 2 --mem "$mem" --timeout 86400 \
		--interactive --append "shmqmode=shell" || rc=$?
	exit 0
fi
echo "== demo: booting $kver in QEMU (TCG, 2 vCPUs; kernel log: $(realpath --relative-to="$root" "$rd")/console.log)"
rc=0
"$here/boot.sh" "$kimg" "$rd/initrd" "$rd" --smp 2 --mem "$mem" --timeout "${DEMO_TIMEOUT:-900}" \
	--result-stdio --append "shmqmode=demo" || rc=$?
case $rc in
	85) exit 0 ;;
	87) exit 1 ;;
	124) echo "demo: the guest did not finish within ${DEMO_TIMEOUT:-900}s" >&2 ;;
	*) echo "demo: the guest stopped unexpectedly (QEMU status $rc); last kernel messages:" >&2
	   tail -n 20 "$rd/console.log" >&2 ;;
esac
exit 1

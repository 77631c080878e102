#!/usr/bin/env bash
# mkinitramfs.sh OUT.cpio KO [BINARY...]
# Builds the guest's userland as an uncompressed newc cpio (an uncompressed
# archive unpacks faster under emulation than the guest could decompress it):
#   /init                 tests/guest/init
#   /bin/busybox + links  busybox-static, every applet
#   /usr/bin/udevadm      + systemd-udevd link, its ldd closure, udev.conf
#   /etc/udev/rules.d/    udev/60-shmq.rules
#   /etc/passwd, group    root; group shmq (gid 2500); users member (2001, in
#                         group shmq) and outsider (2002, not in it)
#   /lib/modules/shmq.ko  KO (the module for the guest's kernel)
#   /bin/<name>           each BINARY, debug info stripped (dynamic ones get
#                         their ldd closure too)
#   $MKINITRAMFS_EXTRA    further host files or directories (absolute paths,
#                         space-separated), each at its own path, with the
#                         ldd closure of the executables among them
# Per-boot settings are appended later as a second cpio (/etc/shmq-run.conf).
set -euo pipefail
out=$1 ko=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
stage=$(mktemp -d "${out}.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc/udev/rules.d,lib/modules,lib64,lib/x86_64-linux-gnu,dev,proc,sys,run,tmp,root,var}
ln -s ../run "$stage/var/run"
mknod -m 600 "$stage/dev/console" c 5 1
mknod -m 666 "$stage/dev/null" c 1 3
chmod 1777 "$stage/tmp"

install -m 755 "$here/init" "$stage/init"

bb=$(command -v busybox)
ldd "$bb" >/dev/null 2>&1 && { echo "mkinitramfs: $bb is not static (install busybox-static)" >&2; exit 1; }
install -m 755 "$bb" "$stage/bin/busybox"
for a in $("$bb" --list); do
	[ -e "$stage/bin/$a" ] || ln -s busybox "$stage/bin/$a"
done

# copy_closure FILE: the shared libraries FILE needs, at their own paths
copy_closure() {
	local lib
	for lib in $(ldd "$1" 2>/dev/null | grep -oE '/[^ ]+' || true); do
		mkdir -p "$stage$(dirname "$lib")"
		[ -e "$stage$lib" ] || cp -L "$lib" "$stage$lib"
	done
}
udevadm=$(command -v udevadm || echo /usr/bin/udevadm)
install -m 755 "$udevadm" "$stage/usr/bin/udevadm"
ln -s udevadm "$stage/usr/bin/systemd-udevd"
copy_closure "$udevadm"
install -m 644 /etc/udev/udev.conf "$stage/etc/udev/udev.conf"
install -m 644 "$root/udev/60-shmq.rules" "$stage/etc/udev/rules.d/60-shmq.rules"

cat >"$stage/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
member:x:2001:2001:shmq test user in group shmq:/tmp:/bin/sh
outsider:x:2002:2002:shmq test user outside group shmq:/tmp:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$stage/etc/group" <<'EOF'
root:x:0:
shmq:x:2500:member
member:x:2001:
outsider:x:2002:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nshadow: files\n' >"$stage/etc/nsswitch.conf"
printf '/bin/sh\n' >"$stage/etc/shells"

install -m 644 "$ko" "$stage/lib/modules/shmq.ko"

for b in "$@"; do
	n=$(basename "$b")
	strip --strip-debug -o "$stage/bin/$n" "$b" 2>/dev/null || cp "$b" "$stage/bin/$n"
	chmod 755 "$stage/bin/$n"
	copy_closure "$b"
done

for f in ${MKINITRAMFS_EXTRA:-}; do
	[ -e "$f" ] || { echo "mkinitramfs: $f (MKINITRAMFS_EXTRA) does not exist" >&2; exit 1; }
	mkdir -p "$stage$(dirname "$f")"
	cp -rL "$f" "$stage$f"
	if [ -d "$f" ]; then
		find "$f" -type f -perm -u+x | while read -r x; do copy_closure "$x"; done
	else
		copy_closure "$f"
	fi
done

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out.tmp"
mv "$out.tmp" "$out"

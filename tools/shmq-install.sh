#!/usr/bin/env bash
# The body of `make install`, `make uninstall`, `make dkms-install`,
# `make dkms-uninstall` and `make dkms-check` (see install.mk, which passes
# every path in the environment).
#
#   tools/shmq-install.sh install | uninstall | dkms-install | dkms-uninstall | dkms-check
#
# install writes a manifest ($MANIFEST, under DESTDIR) listing every file and
# symlink it put and every directory it had to create; uninstall removes
# exactly those (directories only when empty) and the manifest itself. The
# system group `shmq` is created by install when missing and never removed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
: "${VERSION:?}" "${PREFIX:?}" "${BUILD:?}"
DESTDIR=${DESTDIR:-}
# DESTDIR without a trailing slash, so that "$D$path" has exactly one
D=${DESTDIR%/}

note() { echo "note: $*"; }
die() { echo "shmq-install: $*" >&2; exit 1; }

declare -a entries=()	# "d|f|l PATH" in the order they were made
declare -A seen=()
add_entry() {
	[ -n "${seen[$1]:-}" ] && return 0
	seen[$1]=1
	entries+=("$1")
}

# mkdir -p that records each directory it creates (below DESTDIR).
mkdir_rec() {
	local path=$1 parts=() p=""
	local IFS=/
	read -ra parts <<<"${path#/}"
	[ -n "$D" ] && mkdir -p "$D"
	for c in "${parts[@]}"; do
		[ -n "$c" ] || continue
		p="$p/$c"
		if [ ! -d "$D$p" ]; then
			mkdir "$D$p"
			add_entry "d $p"
		fi
	done
}

# inst MODE SRC DEST: install one file (DEST is a full path without DESTDIR)
inst() {
	mkdir_rec "$(dirname "$3")"
	install -m "$1" "$2" "$D$3"
	add_entry "f $3"
	echo "  $3"
}

# link TARGET DEST: a relative symlink
link() {
	mkdir_rec "$(dirname "$2")"
	ln -sfn "$1" "$D$2"
	add_entry "l $2"
	echo "  $2 -> $1"
}

# relpath FROM_DIR TO_PATH: TO_PATH relative to FROM_DIR (both absolute)
relpath() { realpath -m --relative-to="$1" "$2"; }

# subst FILE.in OUT: replace the @VAR@ placeholders
subst() {
	sed -e "s|@VERSION@|$VERSION|g" \
	    -e "s|@SOVERSION@|$SOVERSION|g" \
	    -e "s|@PREFIX@|$PREFIX|g" \
	    -e "s|@PC_LIBDIR@|$pc_libdir|g" \
	    -e "s|@PC_INCLUDEDIR@|$pc_includedir|g" \
	    -e "s|@CMAKE_TO_PREFIX@|$(relpath "$CMAKEDIR" "$PREFIX")|g" \
	    -e "s|@PREFIX_TO_LIBDIR@|$(relpath "$PREFIX" "$LIBDIR")|g" \
	    -e "s|@PREFIX_TO_INCLUDEDIR@|$(relpath "$PREFIX" "$INCLUDEDIR")|g" \
	    "$1" >"$2"
	if grep -q '@[A-Z_]*@' "$2"; then
		die "$1: placeholder left: $(grep -o '@[A-Z_]*@' "$2" | sort -u | tr '\n' ' ')"
	fi
}

# ${prefix}-relative paths in shmq.pc, so that PKG_CONFIG_SYSROOT_DIR and
# pkg-config --define-variable=prefix=... work
pc_rel() {
	case $1 in
	"$PREFIX"/*) echo "\${prefix}/${1#"$PREFIX"/}" ;;
	*) echo "$1" ;;
	esac
}

do_install() {
	: "${BINDIR:?}" "${LIBDIR:?}" "${INCLUDEDIR:?}" "${MANDIR:?}" "${DOCDIR:?}" \
	  "${PKGCONFIGDIR:?}" "${CMAKEDIR:?}" "${UDEVRULESDIR:?}" "${MANIFEST:?}" "${SOVERSION:?}"
	local lib=$BUILD/lib gen=$BUILD/install
	local so=libshmq.so.$VERSION soname=libshmq.so.$SOVERSION
	for f in "$lib/libshmq.a" "$lib/$so" "$BUILD/tools/shmqctl" "$BUILD/tools/shmq-bench"; do
		[ -f "$f" ] || die "$f is missing (make install builds it first; run make install, not this script)"
	done
	# A re-install keeps what an earlier install listed and is still there
	# (directories it created, files this version no longer installs).
	if [ -f "$D$MANIFEST" ]; then
		local t p
		while read -r t p; do
			[ "$p" = "$MANIFEST" ] && continue
			case $t in
			d) [ -d "$D$p" ] && add_entry "d $p" ;;
			f | l) { [ -e "$D$p" ] || [ -L "$D$p" ]; } && add_entry "$t $p" ;;
			esac
		done <"$D$MANIFEST"
	fi
	echo "install: shmq $VERSION into ${DESTDIR:+DESTDIR=$DESTDIR }PREFIX=$PREFIX"

	if [ -n "${MODULE:-}" ]; then
		[ -f "$MODULE" ] || die "module $MODULE is missing"
		inst 0644 "$MODULE" "$MODULEDIR/shmq.ko"
	else
		note "no kernel module installed (INSTALL_MODULE=0)"
	fi

	inst 0755 "$BUILD/tools/shmqctl" "$BINDIR/shmqctl"
	inst 0755 "$BUILD/tools/shmq-bench" "$BINDIR/shmq-bench"

	local h
	for h in "$root"/include/shmq/*.h "$root"/include/shmq/*.hpp; do
		[ -f "$h" ] && inst 0644 "$h" "$INCLUDEDIR/shmq/$(basename "$h")"
	done

	inst 0644 "$lib/libshmq.a" "$LIBDIR/libshmq.a"
	inst 0755 "$lib/$so" "$LIBDIR/$so"
	link "$so" "$LIBDIR/$soname"
	link "$soname" "$LIBDIR/libshmq.so"

	mkdir -p "$gen"
	pc_libdir=$(pc_rel "$LIBDIR") pc_includedir=$(pc_rel "$INCLUDEDIR")
	subst "$root/shmq.pc.in" "$gen/shmq.pc"
	inst 0644 "$gen/shmq.pc" "$PKGCONFIGDIR/shmq.pc"
	subst "$root/cmake/shmqConfig.cmake.in" "$gen/shmqConfig.cmake"
	subst "$root/cmake/shmqConfigVersion.cmake.in" "$gen/shmqConfigVersion.cmake"
	inst 0644 "$gen/shmqConfig.cmake" "$CMAKEDIR/shmqConfig.cmake"
	inst 0644 "$gen/shmqConfigVersion.cmake" "$CMAKEDIR/shmqConfigVersion.cmake"

	inst 0644 "$root/udev/60-shmq.rules" "$UDEVRULESDIR/60-shmq.rules"

	local m sec
	for m in "$root"/docs/man/*.[1-8]; do
		[ -f "$m" ] || continue
		sec=${m##*.}
		inst 0644 "$m" "$MANDIR/man$sec/$(basename "$m")"
	done

	inst 0644 "$root/README.md" "$DOCDIR/README.md"
	for m in "$root"/docs/*.md; do
		[ -f "$m" ] && inst 0644 "$m" "$DOCDIR/$(basename "$m")"
	done
	inst 0644 "$root/udev/shmq.conf.example" "$DOCDIR/shmq.conf.example"

	# The manifest lists itself last, so that uninstall removes it too.
	mkdir_rec "$(dirname "$MANIFEST")"
	add_entry "f $MANIFEST"
	printf '%s\n' "${entries[@]}" >"$D$MANIFEST"
	chmod 0644 "$D$MANIFEST"
	echo "  $MANIFEST (what make uninstall removes)"

	post_install_system_steps
}

post_install_system_steps() {
	if [ -n "$D" ]; then
		note "DESTDIR set: not creating group shmq (on the target: groupadd --system shmq)"
		[ -n "${MODULE:-}" ] && note "DESTDIR set: no depmod (on the target: depmod -a $KVER)"
		note "DESTDIR set: no ldconfig and no udev reload"
		return 0
	fi
	if getent group shmq >/dev/null; then
		echo "install: group shmq exists"
	elif command -v groupadd >/dev/null; then
		groupadd --system shmq
		echo "install: created system group shmq (queue devices are group shmq, mode 0660)"
	else
		note "groupadd not found: create the system group shmq yourself"
	fi
	run_depmod
	if command -v ldconfig >/dev/null; then ldconfig; fi
	reload_udev
}

run_depmod() {
	[ -n "${MODULE:-}" ] || return 0
	if [ -n "$D" ]; then
		note "DESTDIR set: no depmod (on the target: depmod -a $KVER)"
	elif ! command -v depmod >/dev/null; then
		note "depmod not found: run depmod -a $KVER once it is there"
	elif [ ! -d "/lib/modules/$KVER/kernel" ]; then
		# only headers here: the kernel package runs depmod when it comes
		note "kernel $KVER is not installed here (headers only): no depmod"
	else
		depmod -a "$KVER"
		echo "depmod -a $KVER: module index updated"
	fi
}

reload_udev() {
	[ -z "$D" ] || return 0
	if command -v udevadm >/dev/null && [ -S /run/udev/control ]; then
		udevadm control --reload-rules && echo "install: udev rules reloaded"
	else
		note "udevd not running: the rules apply from its next start"
	fi
}

do_uninstall() {
	: "${MANIFEST:?}"
	if [ ! -f "$D$MANIFEST" ]; then
		die "no manifest $D$MANIFEST: nothing installed with DESTDIR='$DESTDIR' PREFIX=$PREFIX (use the same DESTDIR and PREFIX as make install)"
	fi
	echo "uninstall: shmq from ${DESTDIR:+DESTDIR=$DESTDIR }PREFIX=$PREFIX (manifest $MANIFEST)"
	local t p dirs=() had_module=""
	while read -r t p; do
		case $t in
		f | l)
			[ "$p" = "$MANIFEST" ] && continue
			case $p in */extra/shmq.ko) had_module=$p ;; esac
			if [ -e "$D$p" ] || [ -L "$D$p" ]; then rm -f "$D$p"; echo "  removed $p"; fi ;;
		d) dirs+=("$p") ;;
		*) die "$MANIFEST: bad line '$t $p'" ;;
		esac
	done <"$D$MANIFEST"
	rm -f "$D$MANIFEST"
	echo "  removed $MANIFEST"
	local i
	for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do
		p=${dirs[i]}
		[ -d "$D$p" ] || continue
		if rmdir "$D$p" 2>/dev/null; then
			echo "  removed directory $p"
		else
			note "kept $p: it holds files that make install did not put there"
		fi
	done
	if [ -n "$had_module" ]; then
		KVER=$(echo "$had_module" | sed -n 's|^/lib/modules/\([^/]*\)/extra/shmq.ko$|\1|p')
		MODULE=$had_module run_depmod
	fi
	[ -z "$D" ] && command -v ldconfig >/dev/null && ldconfig
	reload_udev
	note "the system group shmq is left in place (groupdel shmq removes it)"
}

# The files DKMS builds from, laid out flat: Kbuild finds include/shmq/.
dkms_tree() {
	local dst=$1
	mkdir -p "$dst/include/shmq"
	# Every source Kbuild's shmq-y names, and the internal header.
	cp "$root/kernel/Kbuild" "$root"/kernel/*.c "$root"/kernel/*.h "$dst/"
	cp "$root/include/shmq/uapi.h" "$root/include/shmq/version.h" "$dst/include/shmq/"
	cp "$root/VERSION" "$dst/"
	sed -e "s|@VERSION@|$VERSION|g" "$root/kernel/dkms.conf.in" >"$dst/dkms.conf"
}

do_dkms_install() {
	command -v dkms >/dev/null || die "dkms is not installed (apt-get install dkms)"
	: "${KVER:?}"
	local src=/usr/src/shmq-$VERSION
	if dkms status -m shmq -v "$VERSION" 2>/dev/null | grep -q .; then
		echo "dkms-install: shmq/$VERSION is already added: removing it first"
		dkms remove -m shmq -v "$VERSION" --all
	fi
	rm -rf "$src"
	dkms_tree "$src"
	echo "dkms-install: sources in $src"
	dkms add -m shmq -v "$VERSION"
	dkms build -m shmq -v "$VERSION" -k "$KVER"
	dkms install -m shmq -v "$VERSION" -k "$KVER"
	dkms status -m shmq -v "$VERSION"
	echo "dkms-install: DKMS rebuilds shmq for every kernel (headers) installed from now on"
}

do_dkms_uninstall() {
	command -v dkms >/dev/null || die "dkms is not installed"
	if dkms status -m shmq -v "$VERSION" 2>/dev/null | grep -q .; then
		dkms remove -m shmq -v "$VERSION" --all
	else
		note "shmq/$VERSION is not in DKMS"
	fi
	rm -rf "/usr/src/shmq-$VERSION"
}

# dkms build in private trees (nothing under /var/lib/dkms or /usr/src is
# touched) for every kernel in DKMS_KVERS; checks modinfo's version.
do_dkms_check() {
	command -v dkms >/dev/null || die "dkms is not installed (apt-get install dkms)"
	: "${DKMS_KVERS:?no kernel: install linux-headers or set DKMS_KVERS}"
	local rc=0 k ko v
	dkms_tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmq-dkms.XXXXXX"); local t=$dkms_tmp
	trap 'rm -rf "$dkms_tmp"' EXIT
	dkms_tree "$t/src/shmq-$VERSION"
	mkdir -p "$t/tree"
	# dkms signs with /var/lib/dkms/mok.key, creating it if missing: use a
	# throw-away key so that the check leaves /var/lib/dkms alone
	export mok_signing_key=$t/mok.key mok_certificate=$t/mok.pub
	for k in $DKMS_KVERS; do
		if [ ! -e "/lib/modules/$k/build/Makefile" ]; then
			echo "dkms-check: $k: no /lib/modules/$k/build (install linux-headers-$k)"; rc=1; continue
		fi
		if ! { [ -d "$t/tree/shmq/$VERSION" ] ||
		       dkms add -m shmq -v "$VERSION" --dkmstree "$t/tree" --sourcetree "$t/src"; } \
			>"$t/build-$k.log" 2>&1 ||
		   ! dkms build -m shmq -v "$VERSION" -k "$k" --dkmstree "$t/tree" \
			--sourcetree "$t/src" >>"$t/build-$k.log" 2>&1; then
			tail -n 30 "$t/build-$k.log"
			echo "dkms-check: $k: dkms build FAILED"; rc=1; continue
		fi
		ko=$(find "$t/tree/shmq/$VERSION/$k" -name 'shmq.ko*' | head -n 1)
		v=$( [ -n "$ko" ] && modinfo -F version "$ko" 2>/dev/null || true)
		if [ "$v" = "$VERSION" ]; then
			echo "dkms-check: $k: built, modinfo version $v"
		else
			echo "dkms-check: $k: built module '${ko:-none}' has version '$v', want $VERSION"; rc=1
		fi
	done
	return $rc
}

case ${1:-} in
install) do_install ;;
uninstall) do_uninstall ;;
dkms-install) do_dkms_install ;;
dkms-uninstall) do_dkms_uninstall ;;
dkms-check) do_dkms_check ;;
*) die "usage: $0 install|uninstall|dkms-install|dkms-uninstall|dkms-check" ;;
esac

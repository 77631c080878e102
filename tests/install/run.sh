#!/usr/bin/env bash
# tests/install/run.sh: make install into a temporary DESTDIR (PREFIX=/usr),
# then prove the installed copy from outside the source tree: files and
# symlinks, soname, module version, tools' --version, an outside program
# built through pkg-config and through CMake (shared and static) and run,
# make uninstall leaving DESTDIR empty, and dkms build for the Debian
# kernels installed here. Prints gtest-like lines ("[ RUN      ]",
# "[       OK ]", "[  FAILED  ]", "[  SKIPPED ]") that
# tests/guest/parse-run.awk counts; exit status 1 if anything failed.
#
# Environment: BUILD (default build/ of the repository), KDIR for the module
# (default: the newest Debian 6.1 header tree), KEEP=1 keeps the temp dir.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
VERSION=$(cat "$root/VERSION")
# The soname's number, as lib/lib.mk makes it: MAJOR, or MAJOR.MINOR
# before 1.0 (each 0.x release may break the ABI).
MAJOR=${VERSION%%.*}
if [ "$MAJOR" = 0 ]; then
	SOV=$(echo "$VERSION" | cut -d. -f1-2)
else
	SOV=$MAJOR
fi
KDIR=${KDIR:-$(ls -d /usr/src/linux-headers-6.1.*-amd64 2>/dev/null | sort -V | tail -n 1)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmq-install-test.XXXXXX")
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
mkdir -p "$dest"
unset MAKEFLAGS MAKELEVEL MFLAGS
mk() { make --no-print-directory -C "$root" BUILD="$BUILD" "$@"; }

failed=0 passed=0 skipped=0
# t NAME FUNCTION: one test; its output is shown only when it fails
t() {
	local name=$1 fn=$2 s rc log=$tmp/$1.log
	echo "[ RUN      ] Install.$name"
	s=$(date +%s%N)
	"$fn" >"$log" 2>&1; rc=$?
	local ms=$(( ($(date +%s%N) - s) / 1000000 ))
	if [ $rc = 77 ]; then
		sed 's/^/  /' "$log"
		echo "[  SKIPPED ] Install.$name ($ms ms)"; skipped=$((skipped + 1))
	elif [ $rc = 0 ]; then
		echo "[       OK ] Install.$name ($ms ms)"; passed=$((passed + 1))
	else
		tail -n 40 "$log" | sed 's/^/  /'
		echo "[  FAILED  ] Install.$name ($ms ms)"; failed=$((failed + 1))
	fi
}
fail() { echo "$*"; return 1; }

test_version_header() {
	cp "$root/include/shmq/version.h" "$tmp/version.h"
	sh "$root/tools/gen-version.sh" "$root/VERSION" "$tmp/version.h" || return 1
	cmp "$root/include/shmq/version.h" "$tmp/version.h" ||
		fail "include/shmq/version.h is stale: it does not match VERSION $VERSION"
	grep -q "^#define SHMQ_VERSION_STRING	\"$VERSION\"$" "$tmp/version.h"
}

module_args=()
test_make_install() {
	if [ -n "$KDIR" ] && [ -f "$KDIR/Makefile" ]; then
		module_args=(KDIR="$KDIR")
	else
		echo "no Debian 6.1 header tree: installing without the module"
		module_args=(INSTALL_MODULE=0)
	fi
	mk -j2 install DESTDIR="$dest" PREFIX=/usr "${module_args[@]}" || return 1
	local f missing=0
	for f in usr/bin/shmqctl usr/bin/shmq-bench usr/lib/libshmq.a "usr/lib/libshmq.so.$VERSION" \
		usr/include/shmq/shmq.hpp usr/include/shmq/uapi.h usr/include/shmq/version.h \
		usr/lib/pkgconfig/shmq.pc usr/lib/cmake/shmq/shmqConfig.cmake \
		usr/lib/cmake/shmq/shmqConfigVersion.cmake usr/lib/udev/rules.d/60-shmq.rules \
		usr/share/doc/shmq/shmq.conf.example usr/share/shmq/install-manifest; do
		[ -f "$dest/$f" ] || { echo "missing: /$f"; missing=1; }
	done
	for f in "$root"/include/shmq/*.h*; do
		[ -f "$dest/usr/include/shmq/$(basename "$f")" ] || { echo "missing header: $(basename "$f")"; missing=1; }
	done
	for f in "$root"/docs/man/*.[1-8]; do
		[ -f "$f" ] || continue
		[ -f "$dest/usr/share/man/man${f##*.}/$(basename "$f")" ] ||
			{ echo "missing man page: $(basename "$f")"; missing=1; }
	done
	# every installed file and symlink is in the manifest, and nothing else
	(cd "$dest" && find . ! -type d | sed 's|^\.||' | sort) >"$tmp/found"
	grep -E '^[fl] ' "$dest/usr/share/shmq/install-manifest" | cut -d' ' -f2- | sort >"$tmp/listed"
	diff "$tmp/listed" "$tmp/found" || { echo "manifest and DESTDIR disagree (< manifest, > found)"; missing=1; }
	return $missing
}

test_soname() {
	local l=$dest/usr/lib
	[ "$(readlink "$l/libshmq.so.$SOV")" = "libshmq.so.$VERSION" ] || fail "libshmq.so.$SOV link"
	[ "$(readlink "$l/libshmq.so")" = "libshmq.so.$SOV" ] || fail "libshmq.so link"
	readelf -d "$l/libshmq.so.$VERSION" | grep -F "Library soname: [libshmq.so.$SOV]" ||
		fail "soname of libshmq.so.$VERSION is not libshmq.so.$SOV"
	nm -D --defined-only "$l/libshmq.so.$VERSION" |
		awk -v s="_ZN4shmq7versionEv@@SHMQ_$SOV" '$NF == s { f = 1 } END { exit !f }' ||
		fail "libshmq.so does not export shmq::version() (version node SHMQ_$SOV, lib/libshmq.map, named after the soname)"
}

# Only the public API is exported: no shmq::detail, no std instantiations.
test_exports() {
	bash "$root/lib/check-exports.sh" "$dest/usr/lib/libshmq.so.$VERSION"
}

test_module() {
	[ "${module_args[0]:-}" = INSTALL_MODULE=0 ] && { echo "no header tree: no module"; return 77; }
	local kver ko v
	kver=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$KDIR/include/generated/utsrelease.h")
	ko=$dest/lib/modules/$kver/extra/shmq.ko
	[ -f "$ko" ] || fail "no $ko"
	v=$(modinfo -F version "$ko")
	[ "$v" = "$VERSION" ] || fail "modinfo version '$v', want $VERSION"
	modinfo -F vermagic "$ko" | grep -q "^$kver " || fail "vermagic is not $kver"
}

test_tools_version() {
	local tool first
	for tool in shmqctl shmq-bench; do
		"$dest/usr/bin/$tool" --version | tee "$tmp/$tool.version"
		first=$(head -n 1 "$tmp/$tool.version")
		[ "$first" = "$tool (shmq) $VERSION" ] || fail "$tool --version: '$first'"
		grep -qx "libshmq $VERSION" "$tmp/$tool.version" || fail "$tool --version: no libshmq line"
	done
}

pc_env=(PKG_CONFIG_LIBDIR="$dest/usr/lib/pkgconfig" PKG_CONFIG_PATH= PKG_CONFIG_SYSROOT_DIR="$dest"
	PKG_CONFIG_ALLOW_SYSTEM_LIBS=1 PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1)

# run_outside BINARY SHARED(1/0): run it, check what it links
run_outside() {
	local bin=$1 shared=$2
	if [ "$shared" = 1 ]; then
		readelf -d "$bin" | grep -F "Shared library: [libshmq.so.$SOV]" || fail "$bin: no NEEDED libshmq.so.$SOV"
		LD_LIBRARY_PATH=$dest/usr/lib ldd "$bin" | grep -F "$dest/usr/lib/libshmq.so.$SOV" ||
			fail "$bin: libshmq.so.$SOV does not resolve into DESTDIR"
		LD_LIBRARY_PATH=$dest/usr/lib "$bin" "$VERSION" || fail "$bin failed"
	else
		if readelf -d "$bin" | grep -F libshmq; then fail "$bin: links libshmq dynamically"; fi
		"$bin" "$VERSION" || fail "$bin failed"
	fi
}

test_pkg_config() {
	local v
	v=$(env "${pc_env[@]}" pkg-config --modversion shmq) || fail "pkg-config finds no shmq"
	[ "$v" = "$VERSION" ] || fail "pkg-config --modversion: '$v'"
	env "${pc_env[@]}" pkg-config --cflags --libs shmq
	env "${pc_env[@]}" pkg-config --cflags shmq | grep -qF -- "-I$dest/usr/include" || fail "Cflags outside DESTDIR"
	mkdir -p "$tmp/pc"
	env "${pc_env[@]}" make --no-print-directory -f "$here/pkgconfig.mk" O="$tmp/pc" || return 1
	run_outside "$tmp/pc/app-pc-shared" 1 || return 1
	run_outside "$tmp/pc/app-pc-static" 0
}

test_cmake() {
	command -v cmake >/dev/null || { echo "cmake not installed"; return 77; }
	cmake -S "$here" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$dest/usr" -DSHMQ_WANT="$VERSION" \
		-DSHMQ_EXACT=EXACT -DCMAKE_BUILD_TYPE=Release | tee "$tmp/cm.log" || return 1
	grep -qF "shmq $VERSION from $dest/usr/lib/cmake/shmq" "$tmp/cm.log" || fail "found another shmq"
	cmake --build "$tmp/cm" -j2 || return 1
	run_outside "$tmp/cm/app-cmake-shared" 1 || return 1
	run_outside "$tmp/cm/app-cmake-static" 0 || return 1
	# the version file refuses the next major, and before 1.0 an older
	# minor release (another ABI)
	local want
	for want in "$((MAJOR + 1)).0" $([ "$MAJOR" = 0 ] && echo "0.$(( $(echo "$VERSION" | cut -d. -f2) - 1 ))"); do
		rm -rf "$tmp/cm2"
		if cmake -S "$here" -B "$tmp/cm2" -DCMAKE_PREFIX_PATH="$dest/usr" \
			-DSHMQ_WANT="$want" >"$tmp/cm2.log" 2>&1; then
			fail "find_package(shmq $want) accepted $VERSION"
		fi
		grep -q "not compatible\|considered but not accepted\|version: $VERSION" "$tmp/cm2.log" ||
			{ cat "$tmp/cm2.log"; fail "no version mismatch message"; }
	done
}

test_uninstall() {
	# a second install over the first lists the same in its manifest
	local m=$dest/usr/share/shmq/install-manifest
	cp "$m" "$tmp/manifest.1" || return 1
	mk install DESTDIR="$dest" PREFIX=/usr "${module_args[@]}" >/dev/null || return 1
	diff "$tmp/manifest.1" "$m" || fail "the manifest of a re-install differs"
	mk uninstall DESTDIR="$dest" PREFIX=/usr || return 1
	local left
	left=$(cd "$dest" && find . -mindepth 1)
	[ -z "$left" ] || fail "left in DESTDIR after make uninstall: $left"
}

# make install / make uninstall without DESTDIR, as on a real system, inside a
# private mount namespace: overlays over /etc, /usr/local, the udev rules and
# /lib/modules catch every write, so the host is never changed. Checks the
# group, ldconfig, depmod/modinfo, pkg-config's default path, and that
# uninstall leaves no file behind in /usr/local, the rules or the module tree.
test_system_install() {
	[ "$(id -u)" = 0 ] || { echo "needs root"; return 77; }
	command -v unshare >/dev/null || { echo "no unshare"; return 77; }
	unshare -m true 2>/dev/null || { echo "unshare -m not permitted here"; return 77; }
	[ "${module_args[0]:-}" = INSTALL_MODULE=0 ] && { echo "no header tree"; return 77; }
	local kver
	kver=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$KDIR/include/generated/utsrelease.h")
	cat >"$tmp/sys.sh" <<EOS
set -eu
mount --make-rprivate /
i=0
for d in /etc /usr/local /usr/lib/udev/rules.d \$(realpath /lib/modules); do
	i=\$((i + 1)); mkdir -p "$tmp/ovl/\$i.u" "$tmp/ovl/\$i.w"
	mount -t overlay overlay -o "lowerdir=\$d,upperdir=$tmp/ovl/\$i.u,workdir=$tmp/ovl/\$i.w" "\$d"
	echo "\$d" >"$tmp/ovl/\$i.name"
done
had_group=\$(getent group shmq || true)
make --no-print-directory -C "$root" BUILD="$BUILD" install KVER="$kver" KDIR="$KDIR"
getent group shmq || { echo "FAIL: no group shmq after install"; exit 1; }
ldconfig -p | grep -F "libshmq.so.$SOV " | grep -qF /usr/local/lib/ || { echo "FAIL: libshmq.so.$SOV not in the ld.so cache"; exit 1; }
[ "\$(pkg-config --modversion shmq)" = "$VERSION" ] || { echo "FAIL: pkg-config without any path finds no shmq $VERSION"; exit 1; }
if [ -d "/lib/modules/$kver/kernel" ]; then
	[ "\$(modinfo -k "$kver" -n shmq)" = "/lib/modules/$kver/extra/shmq.ko" ] || { echo "FAIL: modinfo -k $kver shmq: not the installed module (depmod?)"; exit 1; }
fi
make --no-print-directory -C "$root" BUILD="$BUILD" uninstall KVER="$kver"
if ldconfig -p | grep -q libshmq; then echo "FAIL: libshmq still in the ld.so cache"; exit 1; fi
getent group shmq >/dev/null || { echo "FAIL: uninstall removed the group"; exit 1; }
[ -n "\$had_group" ] || echo "(group shmq created by install, kept by uninstall, as documented)"
left=""
for n in 2 3 4; do
	d=\$(cat "$tmp/ovl/\$n.name")
	# directories copied up and the index depmod rewrites are not leftovers
	l=\$(cd "$tmp/ovl/\$n.u" && find . ! -type d ! -name 'modules.*' | sed "s|^\\.|\$d|")
	left="\$left\$l"
done
[ -z "\$left" ] || { echo "FAIL: left after make uninstall: \$left"; exit 1; }
echo "system install and uninstall: ok"
EOS
	unshare -m bash "$tmp/sys.sh"
}

test_dkms() {
	command -v dkms >/dev/null || { echo "dkms not installed (tools/install-deps.sh installs it)"; return 77; }
	local kvers
	kvers=$(for d in /usr/src/linux-headers-6.1.*-amd64 /usr/src/linux-headers-6.12.*-amd64; do
		[ -f "$d/include/generated/utsrelease.h" ] &&
			sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$d/include/generated/utsrelease.h"
	done | xargs)
	[ -n "$kvers" ] || { echo "no Debian header trees"; return 77; }
	local before after
	before=$(ls -lA /var/lib/dkms /usr/src 2>&1)
	mk dkms-check DKMS_KVERS="$kvers" || return 1
	after=$(ls -lA /var/lib/dkms /usr/src 2>&1)
	[ "$before" = "$after" ] || fail "make dkms-check changed /var/lib/dkms or /usr/src"
}

t VersionHeaderMatchesVERSION test_version_header
t MakeInstallDestdir test_make_install
t SonameAndSymlinks test_soname
t ExportsOnlyThePublicApi test_exports
t ModuleVersionAndVermagic test_module
t ToolsReportVersion test_tools_version
t OutsideProjectPkgConfig test_pkg_config
t OutsideProjectCMake test_cmake
t ReinstallThenUninstallLeavesDestdirEmpty test_uninstall
t SystemInstallInPrivateMountNamespace test_system_install
t DkmsBuildDebianKernels test_dkms
echo "install tests: $passed passed, $failed failed, $skipped skipped"
[ $failed = 0 ]

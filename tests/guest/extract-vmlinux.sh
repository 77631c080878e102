#!/usr/bin/env bash
# extract-vmlinux.sh BZIMAGE OUT
# Writes the ELF vmlinux compressed inside an x86 bzImage to OUT, so that QEMU
# can boot it directly through its PVH entry point (-kernel vmlinux) and the
# guest does not spend seconds decompressing itself under emulation.
# The payload is located by the boot protocol's setup header (payload_offset,
# payload_length), not by scanning for magic bytes; its format is recognised by
# its magic (xz, zstd, gzip, lzma, lz4, bzip2, lzo). Exits non-zero, leaving no
# OUT, when the result is not an ELF with a PVH entry note: the caller then
# boots the bzImage itself.
set -euo pipefail
in=$1 out=$2
die() { echo "extract-vmlinux: $in: $*" >&2; rm -f "$out.tmp" "$out.payload"; exit 1; }
u8()  { od -An -tu1 -j "$1" -N1 "$in" | tr -d ' \n'; }
u32() { od -An -tu4 -j "$1" -N4 "$in" | tr -d ' \n'; } # little endian host
[ "$(dd if="$in" bs=1 skip=$((0x202)) count=4 status=none)" = HdrS ] || die "no bzImage setup header"
setup_sects=$(u8 $((0x1f1))); [ "$setup_sects" = 0 ] && setup_sects=4
pm=$(( (setup_sects + 1) * 512 ))        # start of the protected-mode part
poff=$(u32 $((0x248))); plen=$(u32 $((0x24c)))
[ "$plen" -gt 0 ] || die "boot protocol too old (no payload_length)"
dd if="$in" of="$out.payload" iflag=skip_bytes,count_bytes skip=$((pm + poff)) count="$plen" bs=1M status=none
magic=$(od -An -tx1 -N6 "$out.payload" | tr -d ' \n')
# The kernel build appends the uncompressed size (le32) to every payload
# (gzip's own trailer holds it too); use it to check the result.
size=$(od -An -tu4 -j $((plen - 4)) -N4 "$out.payload" | tr -d ' \n')
case $magic in
	fd377a585a00) dec=(xz -dcq --single-stream) ;;
	28b52ffd*)    dec=(zstd -dcq) ;;
	1f8b*)        dec=(gzip -dcq) ;;
	5d0000*)      dec=(xz -dcq --format=lzma) ;;
	02214c18*)    dec=(lz4 -dcq) ;;
	425a68*)      dec=(bzip2 -dcq) ;;
	894c5a*)      dec=(lzop -dcq) ;;
	7f454c46*)    dec=(cat) ;;   # uncompressed
	*) die "unknown payload format (magic $magic)" ;;
esac
command -v "${dec[0]}" >/dev/null || die "${dec[0]} not installed"
# Decompressors may complain about the size trailer after the stream: judge
# the output, not their exit status.
"${dec[@]}" <"$out.payload" >"$out.tmp" 2>/dev/null || true
rm -f "$out.payload"
[ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || die "payload is not an ELF file"
got=$(stat -c %s "$out.tmp")
[ "$magic" = 7f454c46 ] || [ "$got" = "$size" ] || die "decompressed $got bytes, expected $size"
# PVH entry: ELF note "Xen", type XEN_ELFNOTE_PHYS32_ENTRY (18).
readelf -n "$out.tmp" 2>/dev/null | grep -A0 -E '^\s+Xen\s' | grep -qE '0x0*12\b|PHYS32' \
	|| die "no PVH entry note (CONFIG_PVH off?)"
mv "$out.tmp" "$out"

#!/bin/bash
# mkinitramfs.sh: build the test guest's initramfs: busybox-static, the kernel modules the tests
# need (resolved with their dependencies through modules.dep, decompressed for busybox insmod),
# /init (init beside this script), /lib/vhosttest.sh (lib.sh), the built-in tests (tests/*.sh) and
# the static C helpers beside this script (*.c, built with the host's cc into /usr/bin).
#
# Cache: ${VHOST_GUEST_CACHE:-<repo>/.build/guest}; the kernel comes from fetch-kernel.sh.
# Output (stdout, last lines, key=value): kver=, kernel=, modules=, initrd=.
# Rebuilds only when an input changed (kernel version, busybox, this script, init, lib.sh,
# tests/*.sh, *.c); otherwise it only prints the paths. Safe to run concurrently (flock).
# Exit status: 0 ok; 69 (EX_UNAVAILABLE) when a tool or the kernel cannot be had (tests skip);
# 1 for any other failure (tests fail).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export VHOST_GUEST_CACHE=${VHOST_GUEST_CACHE:-$REPO/.build/guest}
CACHE=$VHOST_GUEST_CACHE
OUT=$CACHE/initramfs.cpio.gz

# Modules loaded at boot, in this order (dependencies first are added automatically). Names
# built into the kernel are skipped. fw_cfg passes scripts in; vsock's virtio transport is the
# guest side of vhost-vsock / vhost-user-vsock. virtio_input and evdev give a vhost-user-input
# device its /dev/input/eventN (the input sample's test; the trixie cloud kernel has no uinput).
MODULES="virtio virtio_pci virtio_blk virtio_net virtio-rng virtiofs fuse qemu_fw_cfg
  vsock vmw_vsock_virtio_transport tun vhost vhost_net vhost_vsock vdpa vduse vhost_vdpa overlay
  virtio_input evdev
  ${VHOST_GUEST_EXTRA_MODULES:-}"
# Host programs copied in with the shared libraries they need (ldd), beside busybox: ethtool
# changes a virtio-net NIC's queue pairs (ethtool -L). A missing optional program is left out
# with a warning (the tests that need it say so). Add more with VHOST_GUEST_EXTRA_BINARIES.
BINARIES="ethtool ${VHOST_GUEST_EXTRA_BINARIES:-}"
# Static helpers compiled from the C sources beside this script (cc -static, gcc and libc6-dev
# from tools/install-test-deps.sh): blkgen, a block writer with many O_DIRECT writes in flight
# (the blk crash test). Without a C compiler they are left out with a warning (the tests that
# need them skip and say so).
helpers=()
for c in "$HERE"/*.c; do [ -f "$c" ] && helpers+=("$c"); done

log() { echo "mkinitramfs: $*" >&2; }
die() { echo "mkinitramfs: error: $*" >&2; exit 1; }
unavailable() { echo "mkinitramfs: unavailable: $*" >&2; exit 69; }

kinfo=$("$HERE/fetch-kernel.sh") || exit $?
kver=$(sed -n 's/^kver=//p' <<<"$kinfo")
moddir=$(sed -n 's/^modules=//p' <<<"$kinfo")
[ -n "$kver" ] && [ -f "$moddir/modules.dep" ] || die "no modules.dep for kernel '$kver' in '$moddir'"

BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || unavailable "$BUSYBOX missing (install busybox-static: tools/install-test-deps.sh)"
command -v cpio >/dev/null || unavailable "cpio missing (tools/install-test-deps.sh)"
command -v xz >/dev/null || unavailable "xz missing (tools/install-test-deps.sh)"

exec 9>"$CACHE/.mkinitramfs.lock"
flock -w 900 9 || die "timed out waiting for $CACHE/.mkinitramfs.lock"

bins=()
for b in $BINARIES; do
  if p=$(command -v "$b"); then bins+=("$(readlink -f "$p")"); else log "warning: '$b' not found on the host; the guest will not have it"; fi
done
cc=$(command -v cc || true)
[ -n "$cc" ] || [ ${#helpers[@]} -eq 0 ] || log "warning: no C compiler (cc); the guest will not have: ${helpers[*]##*/}"
stamp=$( { echo "$kver $MODULES ${bins[*]:-} cc=${cc:+$("$cc" --version | head -1)}"; sha256sum "$BUSYBOX" ${bins[@]+"${bins[@]}"} "$HERE/mkinitramfs.sh" "$HERE/init" "$HERE/lib.sh" "$HERE"/tests/*.sh ${helpers[@]+"${helpers[@]}"}; } |
         sha256sum | cut -d' ' -f1)
if [ -f "$OUT" ] && [ "$(cat "$OUT.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$kinfo"; echo "initrd=$OUT"; exit 0
fi

W=$(mktemp -d "$CACHE/initramfs.tmp.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,lib,modules,tests,lower,ovl,host}
cp "$BUSYBOX" "$W/bin/busybox"
# Link every applet except busybox itself (a self-link would make /bin/busybox a loop).
for applet in $("$W/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$W/bin/$applet"
done

# Resolve modules (deps first) from modules.dep; NAME matches NAME.ko* with - and _ equivalent.
declare -A seen=()
order=()
add_module() {
  local rel=$1 dep
  [ -n "${seen[$rel]:-}" ] && return 0
  seen[$rel]=1
  for dep in $(awk -v m="$rel:" '$1 == m { $1 = ""; print; exit }' "$moddir/modules.dep"); do
    add_module "$dep"
  done
  order+=("$rel")
}
builtin=()
for name in $MODULES; do
  pattern="/${name//[-_]/[-_]}\\.ko(\\.(xz|zst|gz))?:"
  rel=$(grep -oE "^[^:]*$pattern" "$moddir/modules.dep" | head -1 | tr -d :) || true
  if [ -n "$rel" ]; then add_module "$rel"; continue; fi
  if grep -qE "/${name//[-_]/[-_]}\\.ko\$" "$moddir/modules.builtin"; then builtin+=("$name"); continue; fi
  die "module '$name' is neither in modules.dep nor built into kernel $kver"
done
: > "$W/modules/order"
for rel in "${order[@]}"; do
  base=$(basename "$rel")
  case "$base" in
    *.ko.xz)  xz -dc "$moddir/$rel" > "$W/modules/${base%.xz}"; base=${base%.xz} ;;
    *.ko.zst) zstd -qdc "$moddir/$rel" > "$W/modules/${base%.zst}"; base=${base%.zst} ;;
    *.ko.gz)  gzip -dc "$moddir/$rel" > "$W/modules/${base%.gz}"; base=${base%.gz} ;;
    *)        cp "$moddir/$rel" "$W/modules/$base" ;;
  esac
  echo "$base" >> "$W/modules/order"
done

# Host programs and their libraries at the same paths (the loader path is in each binary).
for b in ${bins[@]+"${bins[@]}"}; do
  install -D -m 755 "$b" "$W/usr/sbin/$(basename "$b")"
  for lib in $(ldd "$b" | grep -oE '/[^ ]+'); do
    [ -e "$W$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$W$lib"
  done
done

if [ -n "$cc" ]; then
  for c in ${helpers[@]+"${helpers[@]}"}; do
    h=$(basename "$c" .c)
    "$cc" -O2 -static -pthread -s -Wall -Wextra -o "$W/usr/bin/$h" "$c" || die "cannot build $c with $cc (is libc6-dev installed?)"
  done
fi

install -m 755 "$HERE/init" "$W/init"
install -m 644 "$HERE/lib.sh" "$W/lib/vhosttest.sh"
for t in "$HERE"/tests/*.sh; do install -m 644 "$t" "$W/tests/"; done

(cd "$W" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -6) > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "$stamp" > "$OUT.stamp"
log "wrote $OUT ($(stat -c %s "$OUT") bytes); modules: $(tr '\n' ' ' < "$W/modules/order"); built in: ${builtin[*]:-none}"
echo "$kinfo"
echo "initrd=$OUT"

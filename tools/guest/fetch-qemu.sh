#!/bin/bash
# fetch-qemu.sh: download QEMU 10.x (qemu-system-x86, qemu-system-common, qemu-system-data from
# Debian bookworm-backports) and unpack it into a cache dir, without installing anything on the
# host: a private apt state under the cache dir (sources taken from this machine's apt
# configuration, suite replaced by bookworm-backports), `apt-get download`, `dpkg -x`. The system's
# QEMU (7.2) is left untouched; this one is a second front-end for the tests.
#
# Cache: ${VHOST_QEMU_CACHE:-<repo>/.build/qemu10}; the tree lands in $CACHE/root.
# Env:   VHOST_QEMU_SUITE (default bookworm-backports).
# Output (stdout, last lines, one key=value per line):
#   qemu=       the qemu-system-x86_64 binary
#   datadir=    its firmware/data dir (usr/share/qemu): pass `-L <datadir>` (see below)
#   moduledir=  its module dir: export QEMU_MODULE_DIR=<moduledir> when running it, otherwise it
#               tries to load the host's 7.2 modules from /usr/lib/x86_64-linux-gnu/qemu and fails
#               (e.g. `-device help`, or a device that lives in a module)
#   libdir=     only if the binary needs shared libraries bookworm lacks: they were fetched into
#               this dir; run with LD_LIBRARY_PATH=<libdir>
#   wrapper=    a shell wrapper that sets all of the above and execs the binary with -L <datadir>
#   version=    x.y.z
# Running it: QEMU_MODULE_DIR=<moduledir> [LD_LIBRARY_PATH=<libdir>] <qemu> -L <datadir> ...
# (or just <wrapper> ...). Debian builds QEMU non-relocatable: without -L it reads the host's
# /usr/share/qemu (7.2's option ROMs); it finds bios-256k.bin in /usr/share/seabios either way.
# Use -nodefaults (the tests do): QEMU >= 8.2's AHCI with bookworm's SeaBIOS 1.16.2 stalls the
# boot for 32 s on q35's default empty CD-ROM ("Timeout at ahci_command"); SeaBIOS 1.16.3 is fine.
# Idempotent: a second run only prints the cached paths. Safe to run concurrently (flock).
# Exit status: 0 ok; 69 (EX_UNAVAILABLE) when a tool or the download cannot be had (tests skip);
# 1 for any other failure (tests fail).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${VHOST_QEMU_CACHE:-$REPO/.build/qemu10}
SUITE=${VHOST_QEMU_SUITE:-bookworm-backports}
QDIR=$CACHE/root
# The modules packages matter even with -display none: without them QEMU 10 falls back to the
# host's (7.2) module dir for ui-opengl, *-gl, spice, qxl..., refuses them ("Only modules from
# the same build can be loaded") and aborts, e.g. on `-device help`.
PKGS="qemu-system-x86 qemu-system-common qemu-system-data qemu-system-modules-opengl qemu-system-modules-spice"
MULTIARCH=x86_64-linux-gnu

log() { echo "fetch-qemu: $*" >&2; }
die() { echo "fetch-qemu: error: $*" >&2; exit 1; }
unavailable() { echo "fetch-qemu: unavailable: $*" >&2; exit 69; }

report() {
  echo "qemu=$QDIR/usr/bin/qemu-system-x86_64"
  echo "datadir=$QDIR/usr/share/qemu"
  echo "moduledir=$QDIR/usr/lib/$MULTIARCH/qemu"
  if [ -d "$QDIR/extralibs" ]; then echo "libdir=$QDIR/extralibs"; fi
  echo "wrapper=$QDIR/qemu-system-x86_64"
  echo "version=$(cat "$QDIR/VERSION")"
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.fetch-qemu.lock"
flock -w 900 9 || die "timed out waiting for $CACHE/.fetch-qemu.lock"

# VERSION is written last, so its presence means a complete unpack (of the same package list).
if [ -f "$QDIR/VERSION" ] && [ "$(cat "$QDIR/PKGS" 2>/dev/null)" = "$PKGS" ]; then report; exit 0; fi

for tool in apt-get apt-cache dpkg dpkg-deb ldd; do
  command -v "$tool" >/dev/null || unavailable "'$tool' not found"
done

# Mirror URI: the first Debian archive source of this machine (deb822 or one-line format).
. "$HERE/../debian-mirror.sh"
uri=$(debian_mirror_uri)
[ -n "$uri" ] || unavailable "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"

APT=$CACHE/apt-$SUITE
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
# The backports suite alone would not resolve dependencies, but only `apt-get download` is used
# (no dependency resolution); the library check below decides what else is needed, and looks the
# missing libraries up in the base suite too (hence both suites in the private sources).
base=${SUITE%-backports}
{
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $SUITE main"
  [ "$base" = "$SUITE" ] || echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $base main"
} > "$APT/sources.list"
O=(-o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
   -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache"
   -o APT::Sandbox::User=root -o Acquire::Retries=3)

log "apt-get update ($SUITE main from $uri, private state in $APT)"
timeout 600 apt-get "${O[@]}" update -qq >&2 || unavailable "apt-get update of $SUITE failed"

# The candidate version of qemu-system-x86 in $SUITE (the highest; backports outranks base here
# because nothing pins it down in the private state: pick it explicitly).
ver=$(apt-cache "${O[@]}" madison qemu-system-x86 2>/dev/null |
      awk -F'|' -v s="$SUITE" '$3 ~ s"/" {gsub(/ /, "", $2); print $2; exit}')
[ -n "$ver" ] || unavailable "qemu-system-x86 not found in $SUITE"
case "$ver" in *:10.*) ;; *) unavailable "qemu-system-x86 in $SUITE is $ver, not 10.x" ;; esac

cd "$APT/debs"
for p in $PKGS; do
  if ! ls ./"${p}"_*.deb >/dev/null 2>&1; then
    log "downloading $p=$ver"
    timeout 900 apt-get "${O[@]}" download -qq "$p=$ver" >&2 || unavailable "apt-get download $p=$ver failed"
  fi
done

# Unpack into a scratch dir and rename at the end so an interrupted run leaves no half tree.
tmp=$(mktemp -d "$CACHE/root.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for p in $PKGS; do
  deb=$(ls ./"${p}"_*.deb | head -1)
  log "unpacking $deb"
  dpkg -x "$deb" "$tmp"
done
bin=$tmp/usr/bin/qemu-system-x86_64
[ -x "$bin" ] || die "no usr/bin/qemu-system-x86_64 in the unpacked packages"

# Shared libraries the binary and its modules need that the host lacks (e.g. libvirglrenderer1
# for hw-display-virtio-gpu-gl): fetch the packages that ship them into $tmp/extralibs, repeating
# for the fetched libraries' own needs. Package names follow Debian's soname policy
# (libfoo.so.N -> libfooN / libfoo-N), which is enough here without apt-file.
mods=$tmp/usr/lib/$MULTIARCH/qemu
missing_libs() {
  local f
  for f in "$bin" "$mods"/*.so "$tmp"/extralibs/*.so*; do
    if [ -e "$f" ]; then ldd "$f" 2>/dev/null || true; fi
  done | awk '/=> not found/ {print $1}' | sort -u
}
mkdir -p "$tmp/extralibs" "$APT/libdebs"
for _ in 1 2 3 4 5; do
  missing=$(LD_LIBRARY_PATH=$tmp/extralibs missing_libs)
  [ -n "$missing" ] || break
  log "libraries missing on the host: $(echo $missing)"
  for so in $missing; do
    stem=${so%%.so*}; n=${so##*.so.}; n=${n%%.*}
    found=
    for cand in "$stem$n" "$stem-$n"; do
      if apt-cache "${O[@]}" show "$cand" >/dev/null 2>&1; then found=$cand; break; fi
    done
    [ -n "$found" ] || unavailable "no package found for $so (needed by QEMU $ver)"
    if ! ls "$APT/libdebs/${found}"_*.deb >/dev/null 2>&1; then
      log "downloading $found (for $so)"
      (cd "$APT/libdebs" && timeout 300 apt-get "${O[@]}" download -qq "$found" >&2) || unavailable "apt-get download $found failed"
    fi
    x=$(mktemp -d "$CACHE/lib.tmp.XXXXXX")
    dpkg -x "$(ls "$APT/libdebs/${found}"_*.deb | head -1)" "$x"
    find "$x" -name "$so*" \( -type f -o -type l \) -exec cp -a {} "$tmp/extralibs/" \;
    rm -rf "$x"
    [ -e "$tmp/extralibs/$so" ] || unavailable "$found does not contain $so"
  done
done
still=$(LD_LIBRARY_PATH=$tmp/extralibs missing_libs)
[ -z "$still" ] || unavailable "libraries still missing after fetching: $(echo $still)"
rmdir "$tmp/extralibs" 2>/dev/null || true

# Sanity checks: it runs and reports a 10.x version, and module loading works (`-device help`
# loads every QOM module: it aborts when one comes from another build).
run=(env QEMU_MODULE_DIR="$tmp/usr/lib/$MULTIARCH/qemu")
if [ -d "$tmp/extralibs" ]; then run+=(LD_LIBRARY_PATH="$tmp/extralibs"); fi
vline=$("${run[@]}" "$bin" --version | head -1) || die "$bin --version failed"
version=$(sed -n 's/^QEMU emulator version \([0-9][0-9.]*\).*/\1/p' <<<"$vline")
case "$version" in 10.*) ;; *) die "unexpected version line: $vline" ;; esac
devs=$("${run[@]}" "$bin" -nodefaults -device help 2>"$tmp/device-help.err") ||
  die "$bin -device help failed: $(head -3 "$tmp/device-help.err")"
grep -q '"vhost-user-blk-pci"' <<<"$devs" || die "$bin -device help lists no vhost-user-blk-pci"
rm -f "$tmp/device-help.err"

# Wrapper with the environment and data dir set; exec keeps the PID (the tests signal QEMU).
{
  echo '#!/bin/sh'
  echo "# QEMU $version unpacked by fetch-qemu.sh: its own modules, data dir (then the host's)."
  echo "QEMU_MODULE_DIR='$QDIR/usr/lib/$MULTIARCH/qemu'; export QEMU_MODULE_DIR"
  if [ -d "$tmp/extralibs" ]; then echo "LD_LIBRARY_PATH='$QDIR/extralibs'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}; export LD_LIBRARY_PATH"; fi
  echo "exec '$QDIR/usr/bin/qemu-system-x86_64' -L '$QDIR/usr/share/qemu' \"\$@\""
} > "$tmp/qemu-system-x86_64"
chmod 755 "$tmp/qemu-system-x86_64"
echo "$PKGS" > "$tmp/PKGS"

echo "$version" > "$tmp/VERSION"
rm -rf "$QDIR"
mv "$tmp" "$QDIR"
trap - EXIT
log "QEMU $version ($ver) ready in $QDIR"
report

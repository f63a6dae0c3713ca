#!/bin/bash
# fetch-kernel.sh: download Debian trixie's cloud kernel (linux-image-*-cloud-amd64) for the test
# guest and unpack it into the guest cache, without installing anything on the host: a private
# apt state under the cache dir (sources taken from this machine's apt configuration, suite
# replaced by trixie), `apt-get download`, `dpkg -x`, `depmod -b`.
#
# Cache: ${VHOST_GUEST_CACHE:-<repo>/.build/guest}; the kernel lands in $CACHE/kernel.
# Env:   VHOST_GUEST_SUITE (default trixie), VHOST_GUEST_FLAVOR (default cloud-amd64).
# Output (stdout, last lines, one key=value per line): kver=, kernel=, modules=.
# Idempotent: a second run only prints the cached paths. Safe to run concurrently (flock).
# Exit status: 0 ok; 69 (EX_UNAVAILABLE) when a tool or the download cannot be had (tests skip);
# 1 for any other failure (tests fail).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${VHOST_GUEST_CACHE:-$REPO/.build/guest}
SUITE=${VHOST_GUEST_SUITE:-trixie}
FLAVOR=${VHOST_GUEST_FLAVOR:-cloud-amd64}
KDIR=$CACHE/kernel

log() { echo "fetch-kernel: $*" >&2; }
die() { echo "fetch-kernel: error: $*" >&2; exit 1; }
unavailable() { echo "fetch-kernel: unavailable: $*" >&2; exit 69; }

report() {
  local kver; kver=$(cat "$KDIR/KVER")
  echo "kver=$kver"
  echo "kernel=$KDIR/boot/vmlinuz-$kver"
  echo "modules=$KDIR/lib/modules/$kver"
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.fetch-kernel.lock"
flock -w 900 9 || die "timed out waiting for $CACHE/.fetch-kernel.lock"

# KVER is written last, so its presence means a complete unpack.
if [ -f "$KDIR/KVER" ]; then report; exit 0; fi

for tool in apt-get apt-cache dpkg depmod; do
  command -v "$tool" >/dev/null || unavailable "'$tool' not found (run tools/install-test-deps.sh)"
done

# Mirror URI: the first Debian archive source of this machine (deb822 or one-line format).
. "$HERE/../debian-mirror.sh"
uri=$(debian_mirror_uri)
[ -n "$uri" ] || unavailable "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"

APT=$CACHE/apt-$SUITE
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $SUITE main" > "$APT/sources.list"
O=(-o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
   -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache"
   -o APT::Sandbox::User=root -o Acquire::Retries=3)

log "apt-get update ($SUITE main from $uri, private state in $APT)"
timeout 600 apt-get "${O[@]}" update -qq >&2 || unavailable "apt-get update of $SUITE failed"

# linux-image-$FLAVOR is a metapackage; its dependency names the versioned image package.
pkg=$(apt-cache "${O[@]}" depends "linux-image-$FLAVOR" 2>/dev/null |
      awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$pkg" ] || unavailable "cannot resolve linux-image-$FLAVOR in $SUITE"

cd "$APT/debs"
if ! ls ./"$pkg"_*.deb >/dev/null 2>&1; then
  log "downloading $pkg"
  timeout 900 apt-get "${O[@]}" download -qq "$pkg" >&2 || unavailable "apt-get download $pkg failed"
fi
deb=$(ls ./"$pkg"_*.deb | head -1)

# Unpack into a scratch dir and rename at the end so an interrupted run leaves no half kernel.
tmp=$(mktemp -d "$CACHE/kernel.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "unpacking $deb"
dpkg -x "$deb" "$tmp"
kver=${pkg#linux-image-}; kver=${kver%-unsigned}
[ -f "$tmp/boot/vmlinuz-$kver" ] || die "$deb has no boot/vmlinuz-$kver"
# Trixie ships modules under usr/lib/modules; depmod -b expects BASE/lib/modules.
[ -d "$tmp/lib/modules" ] || { mkdir -p "$tmp/lib"; ln -sfn ../usr/lib/modules "$tmp/lib/modules"; }
# The package ships no modules.dep: build it.
depmod -b "$tmp" "$kver" || die "depmod -b failed"
echo "$kver" > "$tmp/KVER"
rm -rf "$KDIR"
mv "$tmp" "$KDIR"
trap - EXIT
log "kernel $kver ready in $KDIR"
report

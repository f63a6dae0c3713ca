#!/bin/bash
# fetch-virtiofsd-rs.sh [DEST]: unpack Debian trixie's Rust virtiofsd (built on rust-vmm's
# vhost-user-backend) and the trixie libraries it needs (glibc 2.39+) into DEST, default
# <repo>/.build/peers/trixie-root. Nothing is installed system-wide: apt runs with a private
# state folder (sources, lists, cache) beside DEST and the .debs are unpacked with dpkg -x.
# Run it with DEST/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path
# DEST/usr/lib/x86_64-linux-gnu DEST/usr/libexec/virtiofsd ...
# Idempotent: exits at once when DEST/usr/libexec/virtiofsd exists.
# Exit status: 0 with the binary in place; 1 with the reason on stderr.
set -euo pipefail

REPO=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
DEST=${1:-$REPO/.build/peers/trixie-root}
BIN=$DEST/usr/libexec/virtiofsd
LOADER=$DEST/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
[ -x "$BIN" ] && [ -e "$LOADER" ] && exit 0

if [ "$(uname -m)" != x86_64 ]; then
  echo "fetch-virtiofsd-rs: only x86_64 is handled (this is $(uname -m))" >&2
  exit 1
fi

STATE=$(dirname "$DEST")/apt-trixie
mkdir -p "$STATE/lists/partial" "$STATE/cache/archives/partial"
. "$(dirname "${BASH_SOURCE[0]}")/../debian-mirror.sh"
URI=$(debian_mirror_uri)
[ -n "$URI" ] || URI=http://deb.debian.org/debian
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
if [ ! -e "$KEYRING" ]; then
  echo "fetch-virtiofsd-rs: $KEYRING missing (package debian-archive-keyring)" >&2
  exit 1
fi
echo "deb [signed-by=$KEYRING] $URI trixie main" > "$STATE/sources.list"
OPTS=(-o Dir::Etc::SourceList="$STATE/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o Dir::State::Lists="$STATE/lists" -o Dir::Cache="$STATE/cache" -o Debug::NoLocking=1)
[ "$(id -u)" -eq 0 ] && OPTS+=(-o APT::Sandbox::User=root)

if ! timeout 300 apt-get "${OPTS[@]}" update -qq 2>"$STATE/update.err"; then
  echo "fetch-virtiofsd-rs: apt-get update for trixie failed: $(tr '\n' ' ' < "$STATE/update.err")" >&2
  exit 1
fi

rm -f "$STATE"/cache/*.deb
cd "$STATE/cache"
for p in virtiofsd libc6 libgcc-s1 libcap-ng0 libseccomp2; do
  if ! timeout 120 apt-get "${OPTS[@]}" download -qq "$p" 2>"$STATE/download.err"; then
    echo "fetch-virtiofsd-rs: apt-get download $p (trixie) failed: $(tr '\n' ' ' < "$STATE/download.err")" >&2
    exit 1
  fi
done

TMP=$DEST.tmp.$$
rm -rf "$TMP"
mkdir -p "$TMP"
for d in "$STATE"/cache/*.deb; do
  dpkg -x "$d" "$TMP"
done
rm -rf "$DEST"
mv "$TMP" "$DEST"
if [ ! -x "$BIN" ] || [ ! -e "$LOADER" ]; then
  echo "fetch-virtiofsd-rs: unpacked, but $BIN or $LOADER is missing" >&2
  exit 1
fi
echo "fetch-virtiofsd-rs: $(ls "$STATE"/cache/*.deb | xargs -n1 basename | tr '\n' ' ')-> $DEST"

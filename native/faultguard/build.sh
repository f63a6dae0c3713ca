#!/usr/bin/env bash
# Builds libvhostfaultguard.so (linux-x64) from vhost_fault_guard.c, reproducibly: the same gcc
# (Debian 12: gcc 12.2.0, which tools/install-test-deps.sh installs) gives the same bytes, and
# FaultGuardBinaryTests checks that the checked-in library is exactly what this script builds.
# Usage: native/faultguard/build.sh [OUTPUT]  (default: the checked-in copy under src/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../../src/VhostUserBackend/runtimes/linux-x64/native/libvhostfaultguard.so}"
mkdir -p "$(dirname "$out")"
cd "$here"
gcc -std=c11 -O2 -fPIC -shared -fvisibility=hidden \
    -Wall -Wextra -Werror -ffile-prefix-map="$here"=. \
    -Wl,--build-id=none -Wl,-z,relro,-z,now -Wl,--hash-style=gnu -s \
    -o "$out" vhost_fault_guard.c

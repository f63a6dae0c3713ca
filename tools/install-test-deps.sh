#!/bin/bash
# install-test-deps.sh: install the Debian packages the test suite needs (QEMU, busybox, kernel
# module tools, a C compiler). Idempotent: packages already installed are left alone, and
# `apt-get update` runs once, only when something is missing. Prints what it installed.
# Exit status: 0 when every package is present afterwards; 1 with a message on stderr otherwise.
set -uo pipefail

PACKAGES=(
  qemu-system-x86      # qemu-system-x86_64 (TCG guest for the integration tests)
  qemu-system-common   # virtiofsd, qemu-storage-daemon
  qemu-utils           # qemu-img, qemu-io
  busybox-static       # the guest initramfs userland
  cpio                 # initramfs archive
  xz-utils             # decompress the kernel's .ko.xz modules
  iproute2             # ip, vdpa
  kmod                 # depmod for the unpacked guest kernel
  gcc                  # small static C helpers
  libc6-dev
  linux-libc-dev       # <linux/vhost.h> for layout cross-checks
  dpdk-dev             # dpdk-testpmd: the vhost-user-net peer (net_vhost PMD)
  librte-net-vhost23   # the net_vhost PMD testpmd loads
  librte-mempool-ring23 # mbuf pool driver testpmd loads
  debian-archive-keyring # verifies the trixie index tools/peers/fetch-virtiofsd-rs.sh reads
  afl++                # afl-fuzz: the bounded fuzzing smoke run of .ci/run (fuzz/run.sh)
  ethtool              # copied into the guest initramfs: ethtool -L changes virtio-net queue pairs
  systemd              # systemd-socket-activate: the socket-activation test starts a sample the way systemd does
)

missing=()
for p in "${PACKAGES[@]}"; do
  # dpkg -s succeeds for removed-but-not-purged packages too, so check the status line.
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

# The Rust virtiofsd peer (trixie package, unpacked under .build/peers, nothing installed):
# fetched here so the first test run does not pay for it; the tests fetch it too (and skip with
# the reason when that fails), so a failure here is only a warning.
fetch_virtiofsd_rs() {
  local script
  script="$(dirname "$(readlink -f "$0")")/peers/fetch-virtiofsd-rs.sh"
  if [ -x "$script" ] && ! "$script"; then
    echo "install-test-deps: warning: $script failed; the Rust virtiofsd tests will skip" >&2
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-test-deps: all ${#PACKAGES[@]} packages already installed"
  fetch_virtiofsd_rs
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: missing packages: ${missing[*]}; run as root (or install them with apt-get)" >&2
  exit 1
fi

echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg instead of failing at once on the lock.
APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
if ! timeout 600 apt-get "${APT_OPTS[@]}" update -qq; then
  echo "install-test-deps: 'apt-get update' failed; cannot install ${missing[*]}" >&2
  exit 1
fi
if ! timeout 1200 apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${missing[@]}"; then
  echo "install-test-deps: 'apt-get install ${missing[*]}' failed" >&2
  exit 1
fi

still=()
for p in "${missing[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
  echo "install-test-deps: still missing after apt-get: ${still[*]}" >&2
  exit 1
fi
echo "install-test-deps: installed ${missing[*]}"
fetch_virtiofsd_rs

#!/bin/sh
# run-kernel-tests.sh DOTNET [xunit args...]: runs INSIDE the test guest (host root, vhost modules
# loaded). Creates the VDUSE block device the vDPA tests use (qemu-storage-daemon vduse-blk export
# of an 8 MiB image whose sector 0 holds a known pattern, then `vdpa dev add`, which binds it to
# vhost_vdpa as /dev/vhost-vdpa-0), runs Vhost.KernelTests.dll with one VHOSTTEST line per test,
# removes the device and exits with the tests' status.
DOTNET=${1:?usage: run-kernel-tests.sh DOTNET [xunit args]}; shift
HERE=$(cd "$(dirname "$0")" && pwd)
IMG=/run/kernel-tests-disk.img
truncate -s 8M "$IMG" && printf 'KGUEST-VDPA-SECTOR0-PATTERN' | dd of="$IMG" conv=notrunc 2>/dev/null
QSD=
if [ -e /dev/vduse/control ] && command -v qemu-storage-daemon >/dev/null && command -v vdpa >/dev/null; then
  qemu-storage-daemon --blockdev driver=file,node-name=file0,filename="$IMG" \
    --blockdev driver=raw,node-name=disk0,file=file0 \
    --export type=vduse-blk,id=exp0,node-name=disk0,name=vduse0,writable=on,num-queues=1,queue-size=64 >/run/qsd.log 2>&1 &
  QSD=$!
  for _ in $(seq 100); do [ -e /dev/vduse/vduse0 ] && break; sleep 0.1; done
  vdpa dev add name vduse0 mgmtdev vduse >>/run/qsd.log 2>&1
  for _ in $(seq 50); do [ -e /dev/vhost-vdpa-0 ] && break; sleep 0.1; done
  export VHOST_KERNEL_TESTS_EXPECT_VDPA=1
fi
"$DOTNET" "$HERE/Vhost.KernelTests.dll" --guest-results -noColor "$@"
rc=$?
if [ -n "$QSD" ]; then vdpa dev del vduse0 2>/dev/null; kill "$QSD" 2>/dev/null; wait "$QSD" 2>/dev/null; fi
exit $rc

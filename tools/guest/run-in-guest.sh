#!/bin/bash
# run-in-guest.sh CMD...: run a host command inside the test guest, for a developer at a shell
# (the tests use QemuGuest.RunInGuestAsync, which does the same). The guest's root is the host's
# / over virtiofs (read-only, tmpfs overlay: writes are discarded); its kernel has the vhost-net,
# vhost-vsock, tun, vDPA and VDUSE modules loaded. CMD runs in the current directory; its output
# is printed and its exit status is this script's. Needs root (virtiofsd).
# Env: VHOST_GUEST_MEM (MiB, default 1024), VHOST_GUEST_TIMEOUT (s, default 300),
#      VHOST_GUEST_KEEP=1 (keep the work dir with console.log), VHOST_GUEST_CACHE.
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: $0 CMD..." >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
info=$("$HERE/mkinitramfs.sh") || exit $?
kernel=$(sed -n 's/^kernel=//p' <<<"$info"); initrd=$(sed -n 's/^initrd=//p' <<<"$info")
mem=${VHOST_GUEST_MEM:-1024}; tmo=${VHOST_GUEST_TIMEOUT:-300}
W=$(mktemp -d /tmp/vhost-guest-XXXXXX)
vfs=
cleanup() { [ -n "$vfs" ] && kill "$vfs" 2>/dev/null; [ "${VHOST_GUEST_KEEP:-0}" = 1 ] && echo "work dir: $W" >&2 || rm -rf "$W"; }
trap cleanup EXIT
{
  printf 'cd %q || exit 97\n' "$PWD"
  echo 'export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1'
  printf '%q ' "$@"; echo
} > "$W/script.sh"
timeout "$tmo" /usr/lib/qemu/virtiofsd --socket-path="$W/hostroot.sock" -o source=/ -o cache=always -o sandbox=chroot 2>"$W/virtiofsd.log" &
vfs=$!
for _ in $(seq 100); do [ -S "$W/hostroot.sock" ] && break; sleep 0.05; done
[ -S "$W/hostroot.sock" ] || { echo "run-in-guest: virtiofsd did not start: $(cat "$W/virtiofsd.log")" >&2; exit 125; }
timeout "$tmo" qemu-system-x86_64 -accel tcg -nodefaults -machine q35,memory-backend=vhost-mem \
  -object memory-backend-memfd,id=vhost-mem,size=${mem}M,share=on -m ${mem}M -smp 1 \
  -display none -monitor none -no-reboot -serial file:"$W/console.log" -serial file:"$W/output.log" \
  -fw_cfg name=opt/vhosttest/script,file="$W/script.sh" \
  -chardev socket,id=vhost-hostroot,path="$W/hostroot.sock" -device vhost-user-fs-pci,chardev=vhost-hostroot,tag=hostroot \
  -kernel "$kernel" -initrd "$initrd" -append "console=ttyS0 panic=-1 quiet vhosttest=script vhostroot=hostroot"
rc=$?
tr -d '\r' < "$W/output.log" | grep -v '^VHOSTTEST-\(BEGIN\|END\) '
status=$(tr -d '\r' < "$W/output.log" | sed -n 's/^VHOSTTEST-END exit=\([0-9]*\).*/\1/p' | tail -1)
[ -n "$status" ] && exit "$status"
echo "run-in-guest: the guest did not finish the command (qemu exit $rc); console tail:" >&2
tr -d '\r' < "$W/console.log" | tail -20 >&2
exit 125

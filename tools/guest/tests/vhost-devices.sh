# Built-in test "vhost-devices": the kernel's vhost and VDUSE character devices exist after the
# modules were loaded by /init.
. /run/vhosttest/lib.sh
for d in /dev/vhost-net /dev/vhost-vsock /dev/vduse/control /dev/net/tun; do
  if [ -c "$d" ]; then vt_pass "dev:$d" "char $(stat -c '%t:%T' "$d")"; else vt_fail "dev:$d" "missing"; fi
done

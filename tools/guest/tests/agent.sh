# The guest agent: runs the commands the host writes to the virtio-serial port org.vhost.agent,
# one per line ("ID BASE64", the command base64-encoded so it may span lines), one after the
# other, and reports on the output port:
#   VHOSTAGENT-READY                  the agent listens (once per boot: a reset shows it again)
#   VHOSTAGENT-OUT ID LINE            each line the command printed (stdout and stderr)
#   VHOSTAGENT-DONE ID STATUS         the command's exit status
# The command runs under sh -c with stdin from /dev/null; a command that leaves a job in the
# background must redirect the job's output (the agent waits for its output pipe to close).
# The line "exit" ends the agent with status 0, and the guest powers off.
. /run/vhosttest/lib.sh
port=
for i in $(seq 200); do
  for d in /sys/class/virtio-ports/*; do
    [ "$(cat "$d/name" 2>/dev/null)" = org.vhost.agent ] && port=/dev/${d##*/}
  done
  [ -n "$port" ] && [ -c "$port" ] && break
  port=; sleep 0.05
done
[ -n "$port" ] || { vt_fail agent "no virtio-serial port named org.vhost.agent"; exit 1; }
exec 3<"$port"
echo "VHOSTAGENT-READY"
# A virtio-serial port reads as end-of-file while no host is connected (before the host's first
# connection, during a migration): wait and read again.
while true; do
while IFS= read -r line <&3; do
  [ "$line" = exit ] && exit 0
  id=${line%% *}
  if ! cmd=$(echo "${line#* }" | base64 -d 2>/dev/null); then
    echo "VHOSTAGENT-DONE $id 126"; continue
  fi
  { sh -c "$cmd" </dev/null 2>&1; echo "VHOSTAGENT-RC $?"; } | while IFS= read -r l; do
    case "$l" in
      *"VHOSTAGENT-RC "*)
        # A last output line without a newline arrives glued to the status line.
        [ -n "${l%VHOSTAGENT-RC *}" ] && echo "VHOSTAGENT-OUT $id ${l%VHOSTAGENT-RC *}"
        echo "VHOSTAGENT-DONE $id ${l##*VHOSTAGENT-RC }" ;;
      *) echo "VHOSTAGENT-OUT $id $l" ;;
    esac
  done
done
sleep 0.05
done

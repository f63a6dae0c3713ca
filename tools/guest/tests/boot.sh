# Built-in test "boot": the guest came up, ran /init and can report. No devices needed.
. /run/vhosttest/lib.sh
vt_pass boot "kernel=$(uname -r) uptime=$(vt_uptime) mem=$(awk '/MemTotal/ {print $2 "kB"}' /proc/meminfo)"

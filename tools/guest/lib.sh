# Helpers for guest test scripts: `. /run/vhosttest/lib.sh` (present in both the initramfs and,
# under vhostroot=, the host root). Each prints one result line in the harness's fixed format:
#   VHOSTTEST <name> PASS|FAIL|SKIP <detail>
# <name> must not contain spaces. vt_check runs a command and reports PASS when it exits 0.
vt_pass() { n=$1; shift; echo "VHOSTTEST $n PASS $*"; }
vt_fail() { n=$1; shift; echo "VHOSTTEST $n FAIL $*"; }
vt_skip() { n=$1; shift; echo "VHOSTTEST $n SKIP $*"; }
vt_check() { n=$1; shift; if "$@"; then vt_pass "$n" "$*"; else vt_fail "$n" "exit $?: $*"; fi; }
vt_uptime() { cut -d' ' -f1 /proc/uptime; }

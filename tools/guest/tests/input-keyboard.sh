# Built-in test "input-keyboard": a virtio-input keyboard named $INPUT_NAME (the vhost-user-input
# sample) types a line into the guest. Reports the device as the guest sees it (name, serial, ids,
# capabilities: all from the device's config space), turns caps lock on through the event device
# (an EV_LED event written to /dev/input/eventN goes to the device's status queue), then decodes
# the key presses that arrive (US layout, shift) until Enter is released, or INPUT_WAIT seconds.
. /run/vhosttest/lib.sh
dev=
for _ in $(seq 100); do
  for e in /sys/class/input/event*; do
    [ "$(cat "$e/device/name" 2>/dev/null)" = "$INPUT_NAME" ] && dev=$e && break 2
  done
  sleep 0.1
done
[ -n "$dev" ] || { vt_fail input-device "no input device named '$INPUT_NAME': $(cat /sys/class/input/*/name 2>/dev/null | tr '\n' ';')"; exit 1; }
node=/dev/input/${dev##*/}
vt_pass input-device "$node"
vt_pass input-name "$(cat "$dev/device/name")"
vt_pass input-serial "$(cat "$dev/device/uniq")"
vt_pass input-ids "bus=$(cat "$dev/device/id/bustype") vendor=$(cat "$dev/device/id/vendor") product=$(cat "$dev/device/id/product") version=$(cat "$dev/device/id/version")"
vt_pass input-caps "ev=$(cat "$dev/device/capabilities/ev") led=$(cat "$dev/device/capabilities/led")"
cat "$node" > /tmp/events &
reader=$!
sleep 0.2
# struct input_event (x86_64: 16-byte timeval, u16 type, u16 code, s32 value): EV_LED LED_CAPSL 1, then SYN_REPORT.
z='\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000'
printf "${z}\021\000\001\000\001\000\000\000${z}\000\000\000\000\000\000\000\000" > "$node" && vt_pass input-led-written "caps-lock on"
decode() {
  od -An -v -tu2 -w24 /tmp/events | awk '
    function put(start, lo, hi,  i) { for (i = 1; i <= length(lo); i++) { n[start + i - 1] = substr(lo, i, 1); s[start + i - 1] = substr(hi, i, 1) } }
    BEGIN { put(2, "1234567890-=", "!@#$%^&*()_+"); put(16, "qwertyuiop[]", "QWERTYUIOP{}"); put(30, "asdfghjkl;\047`", "ASDFGHJKL:\"~");
            put(43, "\\zxcvbnm,./", "|ZXCVBNM<>?"); n[57] = " "; s[57] = " "; n[15] = "\t"; s[15] = "\t" }
    $9 != 1 { next }
    $11 == 1 { presses++ } $11 == 0 { releases++ }
    $10 == 42 || $10 == 54 { shift = ($11 != 0); next }
    $10 == 28 { if ($11 == 0) done = 1; next }
    $11 == 1 && !done { out = out ((shift ? s[$10] : n[$10]) == "" ? "?" : (shift ? s[$10] : n[$10])) }
    END { printf "%d %d %d %s\n", done, presses, releases, out }'
}
for _ in $(seq $((${INPUT_WAIT:-20} * 10))); do
  r=$(decode)
  [ "${r%% *}" = 1 ] && break
  sleep 0.1
done
kill $reader 2>/dev/null
set -f; set -- $r
[ "$1" = 1 ] && vt_pass input-enter "released" || vt_fail input-enter "no Enter release in $(($(wc -c < /tmp/events) / 24)) events"
vt_pass input-keys "presses=$2 releases=$3"
vt_pass input-typed "[${r#* * * }]"

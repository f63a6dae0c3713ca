#!/bin/bash
# benchmarks/run.sh: the vhost-user samples side by side with the C peers, on this machine, in one run.
#   net: DPDK testpmd net_virtio_user (the front-end, no VM, no hugepages) against
#        (a) testpmd net_vhost and (b) samples/VhostUserNet (sink for dequeue, source for enqueue),
#        notification-driven and --poll, JIT and NativeAOT.
#   blk: vhost-probe blk (the .NET front-end) against qemu-storage-daemon and samples/VhostUserBlk,
#        both serving a tmpfs-backed raw image; 4 KiB random read/write at QD1/QD32, 1 MiB sequential.
#   disk: the same on an image on the real disk ($OUT, not tmpfs), O_DIRECT on both sides:
#        qemu-storage-daemon cache.direct=on with aio=io_uring and aio=native against
#        vhost-user-blk --direct; 4 KiB random read/write at QD1/QD32/QD128, 1 MiB sequential.
# Prints one table (also written to $OUT/table.md). Not part of .ci/run. Needs dpdk-testpmd
# (dpdk-dev librte-net-vhost23 librte-net-virtio23 librte-mempool-ring23) and qemu-storage-daemon.
#
# Environment: RUNS (3) runs per case, alternating back-ends; NET_SECS (8) seconds per net run;
# BLK_SECS (4) seconds per blk run; AOT (1) also the NativeAOT-published samples; PARTS ("net blk");
# POLL_US (1000000) --poll window of the polling figures; BUILD (1) build/publish first;
# CASES (all) an extended regex selecting blk/disk cases by name (e.g. 'qd1$').
# Pinning: back-end (any) on CPU $BE_CPU (1), front-end's forwarding/load thread on CPU $FE_CPU (0).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}; NET_SECS=${NET_SECS:-8}; BLK_SECS=${BLK_SECS:-4}; AOT=${AOT:-1}; PARTS=${PARTS:-"net blk disk"}
POLL_US=${POLL_US:-1000000}; BUILD=${BUILD:-1}; BE_CPU=${BE_CPU:-1}; FE_CPU=${FE_CPU:-0}
OUT=${OUT:-$ROOT/.build/bench}; W=$(mktemp -d /dev/shm/vhost-bench.XXXXXX)
mkdir -p "$OUT"; RES=$OUT/results.tsv; : > "$RES"
trap 'rm -rf "$W"' EXIT
TICK=$(getconf CLK_TCK)
log() { echo "[$(date +%T) load $(cut -d' ' -f1 /proc/loadavg)] $*" >&2; }

JIT_NET=$ROOT/samples/VhostUserNet/bin/Release/net10.0/vhost-user-net
JIT_BLK=$ROOT/samples/VhostUserBlk/bin/Release/net10.0/vhost-user-blk
PROBE=$ROOT/samples/VhostProbe/bin/Release/net10.0/vhost-probe
AOT_NET=$OUT/aot/net/vhost-user-net
AOT_BLK=$OUT/aot/blk/vhost-user-blk
if [ "$BUILD" = 1 ]; then
  log "building (Release)"
  for p in VhostUserNet VhostUserBlk VhostProbe; do
    dotnet build "samples/$p/$p.csproj" -c Release -v q -nologo >"$OUT/build-$p.log" 2>&1 || { cat "$OUT/build-$p.log"; exit 1; }
  done
  if [ "$AOT" = 1 ]; then
    log "publishing NativeAOT"
    dotnet publish samples/VhostUserNet/VhostUserNet.csproj -c Release -r linux-x64 -p:PublishAot=true -o "$OUT/aot/net" -v q -nologo >"$OUT/publish-net.log" 2>&1 || { cat "$OUT/publish-net.log"; exit 1; }
    dotnet publish samples/VhostUserBlk/VhostUserBlk.csproj -c Release -r linux-x64 -p:PublishAot=true -o "$OUT/aot/blk" -v q -nologo >"$OUT/publish-blk.log" 2>&1 || { cat "$OUT/publish-blk.log"; exit 1; }
  fi
fi

# --- helpers ---------------------------------------------------------------------------------
wait_sock() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; return 1; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }   # utime+stime, all threads
now() { date +%s.%N; }
# statistics line of a sample (VHOST_SAMPLE_STATS=1, SIGUSR1): "gc0 gc1 gc2 allocated"
stats_mark() { kill -USR1 "$1" 2>/dev/null; sleep 0.2; }
stats_delta() { grep '^vhost-stats' "$1" | tail -2 | sed 's/[a-z0-9]*=//g' | awk '{for(i=2;i<=5;i++){v[NR,i]=$i}} END{if(NR==2) printf "%d/%d/%d %d", v[2,2]-v[1,2], v[2,3]-v[1,3], v[2,4]-v[1,4], v[2,5]-v[1,5]; else printf "- -"}'; }
# steady-state Mpps of one testpmd log: per-second samples of KEY (Rx-pps/Tx-pps) > 1000, minus the first (ramp-up) and
# last (ramp-down) one, median
steady_mpps() { grep -E "$2-pps" "$1" | awk '$2>1000{print $2}' | awk '{a[NR]=$1} END{for(i=2;i<NR;i++) print a[i]}' | sort -n | awk '{a[NR]=$1} END{if(NR==0){print 0; exit} m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f\n", m/1e6}'; }
record() { printf '%s\n' "$*" >> "$RES"; }   # part case backend value cpu_per_io gc alloc load

EAL="--no-pci --no-huge -m 512"
APP="--total-num-mbufs=32768 --stats-period 1"

# One net run. $1 dir (dequeue|enqueue), $2 backend (dpdk|jit|aot), $3 notify|poll
net_run() {
  local dir=$1 be=$2 mode=$3 sock=$W/net.sock fe_mode key bpid bin smode poll=0 load
  rm -f "$sock"
  if [ "$dir" = dequeue ]; then fe_mode=txonly; key=Tx; smode=sink; else fe_mode=rxonly; key=Rx; smode=source; fi
  load=$(cut -d' ' -f1 /proc/loadavg)
  if [ "$be" = dpdk ]; then
    local be_mode=rxonly; [ "$dir" = enqueue ] && be_mode=txonly
    # main lcore on the front-end's CPU (idle), forwarding lcore on BE_CPU
    dpdk-testpmd -l $FE_CPU,$BE_CPU --main-lcore $FE_CPU $EAL --file-prefix vbb$$ \
      --vdev "net_vhost0,iface=$sock,queues=1" -- --forward-mode=$be_mode --auto-start $APP > "$W/be.log" 2>&1 &
    bpid=$!
  else
    bin=$JIT_NET; [ "$be" = aot ] && bin=$AOT_NET
    [ "$mode" = poll ] && poll=$POLL_US
    VHOST_SAMPLE_STATS=1 taskset -c $BE_CPU "$bin" -s "$sock" --mode $smode --poll $poll --frame-size 64 > "$W/be.log" 2>&1 &
    bpid=$!
  fi
  wait_sock "$sock" || { kill -TERM $bpid; wait $bpid; return 1; }
  # front-end: main lcore on BE_CPU (it only prints stats), forwarding lcore on FE_CPU; 64-byte frames (txonly default)
  timeout -s INT "$((NET_SECS + 4))" dpdk-testpmd -l $FE_CPU,$BE_CPU --main-lcore $BE_CPU $EAL --file-prefix vbf$$ \
    --vdev "net_virtio_user0,path=$sock,queues=1" -- --forward-mode=$fe_mode --auto-start $APP > "$W/fe.log" 2>&1 &
  local fpid=$! c0 c1 t0 t1 label=$be-$mode; [ "$be" = dpdk ] && label=dpdk
  # testpmd needs ~3 s to start (512 MiB of no-huge memory); bracket the steady part
  [ "$be" != dpdk ] && stats_mark $bpid   # warms the statistics handler up
  sleep 4; [ "$be" != dpdk ] && stats_mark $bpid; c0=$(cpu_ticks $bpid); t0=$(now)
  sleep $((NET_SECS - 1)); [ "$be" != dpdk ] && stats_mark $bpid; c1=$(cpu_ticks $bpid); t1=$(now)
  wait $fpid
  kill -INT $bpid 2>/dev/null; kill -TERM $bpid 2>/dev/null; wait $bpid 2>/dev/null
  local mpps gc=- alloc=-
  mpps=$(steady_mpps "$W/fe.log" $key)
  if [ "$be" != dpdk ]; then read -r gc alloc < <(stats_delta "$W/be.log"); fi
  local cpu; cpu=$(awk -v c=$((c1 - c0)) -v t=$TICK -v a=$t0 -v b=$t1 'BEGIN{printf "%.2f", c/t/(b-a)}')
  cp "$W/fe.log" "$OUT/net-$dir-$label-fe.log"; cp "$W/be.log" "$OUT/net-$dir-$label-be.log"
  log "net $dir $be $mode: $mpps Mpps (backend CPU $cpu cores, gc $gc, alloc $alloc B)"
  record "net	$dir	$label	$mpps	$cpu	$gc	$alloc	$load"
  rm -rf /var/run/dpdk/vbb$$ /var/run/dpdk/vbf$$ 2>/dev/null
}

# blk workloads: name op pattern bs qd
BLK_CASES=("randread-4k-qd1 read random 4096 1" "randwrite-4k-qd1 write random 4096 1" \
           "randread-4k-qd32 read random 4096 32" "randwrite-4k-qd32 write random 4096 32" \
           "seqread-1m-qd4 read sequential 1048576 4" "seqwrite-1m-qd4 write sequential 1048576 4")
IMG=$W/disk.img

DISK_CASES=("randread-4k-qd1 read random 4096 1" "randwrite-4k-qd1 write random 4096 1" \
            "randread-4k-qd32 read random 4096 32" "randwrite-4k-qd32 write random 4096 32" \
            "randread-4k-qd128 read random 4096 128" "randwrite-4k-qd128 write random 4096 128" \
            "seqread-1m-qd4 read sequential 1048576 4" "seqwrite-1m-qd4 write sequential 1048576 4" \
            "randread-4k-4q-qd32 read random 4096 32 4" "randwrite-4k-4q-qd32 write random 4096 32 4")
DISK_IMG=$OUT/disk.img
if [ -n "${CASES:-}" ]; then   # CASES: an extended regex over case names, e.g. CASES='qd1$'
  mapfile -t BLK_CASES < <(printf '%s\n' "${BLK_CASES[@]}" | awk -v re="$CASES" '$1 ~ re')
  mapfile -t DISK_CASES < <(printf '%s\n' "${DISK_CASES[@]}" | awk -v re="$CASES" '$1 ~ re')
fi

blk_start() { # $1 backend (qsd|qsd-uring|qsd-native|jit|jit-poll|aot|aot-poll); $IMG, $DIRECT; sets BPID
  local sock=$W/blk.sock
  rm -f "$sock"
  local aio=native nq=${BLK_QUEUES:-1}; [ "$1" = qsd-uring ] && aio=io_uring
  case $1 in
    qsd-uring|qsd-native) taskset -c $BE_CPU qemu-storage-daemon --blockdev "driver=file,node-name=file0,filename=$IMG,cache.direct=on,aio=$aio" \
           --blockdev driver=raw,node-name=disk0,file=file0 \
           --export "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=$sock,writable=on,num-queues=$nq" > "$W/blk-be.log" 2>&1 & ;;
    qsd) taskset -c $BE_CPU qemu-storage-daemon --blockdev "driver=file,node-name=file0,filename=$IMG,cache.direct=off,aio=threads" \
           --blockdev driver=raw,node-name=disk0,file=file0 \
           --export "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=$sock,writable=on,num-queues=1" > "$W/blk-be.log" 2>&1 & ;;
    jit|jit-poll|aot|aot-poll)
      local bin=$JIT_BLK poll=0; [[ $1 == aot* ]] && bin=$AOT_BLK; [[ $1 == *-poll ]] && poll=$POLL_US
      local direct=(); [ "${DIRECT:-0}" = 1 ] && direct=(--direct)
      VHOST_SAMPLE_STATS=1 taskset -c $BE_CPU "$bin" --socket-path "$sock" --blk-file "$IMG" "${direct[@]}" --num-queues "$nq" --poll $poll > "$W/blk-be.log" 2>&1 & ;;
  esac
  BPID=$!
  wait_sock "$sock"
}

blk_run() { # $1 backend, $2 case line, $3 part (blk|disk)
  local be=$1 part=${3:-blk}; read -r name op pat bs qd nq <<<"$2"
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  taskset -c $FE_CPU "$PROBE" blk -s "$W/blk.sock" --op "$op" --pattern "$pat" --block-size "$bs" --queue-depth "$qd" --queue-size 256 --queues "${nq:-1}" --seconds "$BLK_SECS" --json > "$W/probe.json" 2>"$W/probe.err" &
  local ppid=$! c0 c1 t0 t1
  sleep 1; [[ $be != qsd* ]] && stats_mark $BPID && stats_mark $BPID; c0=$(cpu_ticks $BPID); t0=$(now)
  sleep "$(awk -v s="$BLK_SECS" 'BEGIN{print s-1.7}')"; [[ $be != qsd* ]] && stats_mark $BPID; c1=$(cpu_ticks $BPID); t1=$(now)
  wait $ppid || { log "probe failed: $(cat "$W/probe.err")"; return 1; }
  local iops mbs errs
  iops=$(grep '"iops"' "$W/probe.json" | tr -dc '0-9.'); mbs=$(grep '"mb_per_s"' "$W/probe.json" | tr -dc '0-9.'); errs=$(grep '"errors"' "$W/probe.json" | tr -dc '0-9')
  # backend CPU microseconds per I/O over the bracketed interval (IOPS taken as steady over the run)
  local cpuio; cpuio=$(awk -v c=$((c1 - c0)) -v t=$TICK -v a=$t0 -v b=$t1 -v i="$iops" 'BEGIN{printf "%.2f", (c/t)*1e6/(i*(b-a))}')
  local gc=- alloc=-
  local p50 p99
  p50=$(sed -n 's/.*"latency_p50_us": *\([0-9.]*\).*/\1/p' "$W/probe.json"); p99=$(sed -n 's/.*"latency_p99_us": *\([0-9.]*\).*/\1/p' "$W/probe.json")
  if [[ $be != qsd* ]]; then read -r gc alloc < <(stats_delta "$W/blk-be.log"); fi
  log "$part $name $be: $iops IOPS $mbs MB/s, p50 ${p50:-?} us p99 ${p99:-?} us, $cpuio us CPU/IO, errors $errs, gc $gc alloc $alloc"
  record "$part	$name	$be	$iops	$cpuio	$gc	$alloc	$load	$mbs	${p50:--}	${p99:--}"
}

# --- net -------------------------------------------------------------------------------------
NET_BACKENDS="dpdk:- jit:notify jit:poll"; [ "$AOT" = 1 ] && NET_BACKENDS="$NET_BACKENDS aot:notify aot:poll"
if [[ " $PARTS " == *" net "* ]]; then
  for dir in dequeue enqueue; do
    for r in $(seq "$RUNS"); do
      for bm in $NET_BACKENDS; do net_run "$dir" "${bm%%:*}" "${bm##*:}"; done
    done
  done
fi

# --- blk -------------------------------------------------------------------------------------
DEF_BLK="qsd jit jit-poll"; [ "$AOT" = 1 ] && DEF_BLK="$DEF_BLK aot aot-poll"
BLK_BACKENDS=${BLK_BACKENDS:-$DEF_BLK}
if [[ " $PARTS " == *" blk "* ]]; then
  truncate -s 256M "$IMG"; dd if=/dev/urandom of="$IMG" bs=1M count=256 conv=notrunc status=none
  for r in $(seq "$RUNS"); do
    for be in $BLK_BACKENDS; do   # alternating: every back-end once per round
      blk_start "$be" || exit 1
      for c in "${BLK_CASES[@]}"; do blk_run "$be" "$c"; done
      cp "$W/blk-be.log" "$OUT/blk-$be-be.log"
      kill -TERM $BPID; wait $BPID 2>/dev/null
    done
  done
fi

# --- disk: O_DIRECT on the real disk ---------------------------------------------------------
DISK_BACKENDS=${DISK_BACKENDS:-"qsd-uring qsd-native jit"}
if [[ " $PARTS " == *" disk "* ]]; then
  IMG=$DISK_IMG DIRECT=1 BLK_QUEUES=4   # every back-end serves 4 queues; a case drives 1 or 4
  truncate -s 1G "$IMG"; dd if=/dev/urandom of="$IMG" bs=1M count=1024 conv=notrunc oflag=direct status=none
  for r in $(seq "$RUNS"); do
    for be in $DISK_BACKENDS; do
      blk_start "$be" || exit 1
      for c in "${DISK_CASES[@]}"; do blk_run "$be" "$c" disk; done
      cp "$W/blk-be.log" "$OUT/disk-$be-be.log"
      kill -TERM $BPID; wait $BPID 2>/dev/null
    done
  done
  rm -f "$DISK_IMG"; unset DIRECT BLK_QUEUES; IMG=$W/disk.img
fi

# --- table -----------------------------------------------------------------------------------
python3 - "$RES" <<'EOF' | tee "$OUT/table.md"
import sys, statistics as st
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1]) if l.strip()]
def med(xs): return st.median(xs) if xs else float('nan')
print("| part | case | back-end | median | min | max | ratio | back-end CPU | GC gen0/1/2 (max) | alloc B (max) | load (1-min) per run |")
print("|---|---|---|---:|---:|---:|---:|---:|---|---:|---|")
groups = {}
for r in rows: groups.setdefault((r[0], r[1]), {}).setdefault(r[2], []).append(r)
for (part, case), bes in groups.items():
    ref = {'net': 'dpdk', 'blk': 'qsd', 'disk': 'qsd-uring'}[part]
    refv = med([float(r[3]) for r in bes.get(ref, [])])
    for be, rs in bes.items():
        v = [float(r[3]) for r in rs]; cpu = med([float(r[4]) for r in rs])
        gcs = [r[5] for r in rs if r[5] != '-']; al = [int(r[6]) for r in rs if r[6] != '-']
        unit = 'Mpps' if part == 'net' else 'IOPS'
        fmt = (lambda x: f"{x:.2f}") if part == 'net' else (lambda x: f"{x:.0f}")
        extra = f" ({med([float(r[8]) for r in rs]):.0f} MB/s)" if part != 'net' else ''
        if part == 'disk' and len(rs[0]) > 10 and rs[0][9] != '-':
            extra += f", p50/p99 {med([float(r[9]) for r in rs]):.0f}/{med([float(r[10]) for r in rs]):.0f} us"
        # net: back-end CPU time per packet (cores used / Mpps), the figure the load disturbs least
        nspp = [float(r[4]) / float(r[3]) * 1000 for r in rs if float(r[3]) > 0]
        cpus = f"{cpu:.2f} cores, {med(nspp):.0f} ns/pkt" if part == 'net' else f"{cpu:.2f} us/IO"
        ratio = f"{med(v)/refv:.2f}x" if refv == refv and refv > 0 else '-'
        print(f"| {part} | {case} | {be} | {fmt(med(v))} {unit}{extra} | {fmt(min(v))} | {fmt(max(v))} | {ratio} | {cpus} | {max(gcs) if gcs else '-'} | {max(al) if al else '-'} | {','.join(r[7] for r in rs)} |")
EOF

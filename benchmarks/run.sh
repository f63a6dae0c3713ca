#!/bin/bash
# benchmarks/run.sh: the vhost-user samples side by side with the C peers, on this machine, in one run.
#   net: DPDK testpmd net_virtio_user (the front-end, no VM, no hugepages) against
#        (a) testpmd net_vhost and (b) samples/VhostUserNet (sink for dequeue, source for enqueue),
#        notification-driven and --poll, JIT and NativeAOT.
#   fwd: port-to-port forwarding, the equal-work case: one testpmd front-end with two net_virtio_user ports in io
#        forwarding (--tx-first: one burst per port, then the frames circulate) against a two-port back-end:
#        (a) testpmd with two net_vhost ports in io forwarding, (b) vhost-user-net --mode switch (MAC learning) and
#        (c) --mode cross (port 0 <-> 1, no learning), two sockets; 64 B and 1518 B frames (--txpkts);
#        notification-driven and --poll, JIT and NativeAOT. Mpps = the sum of both front-end ports' RX rates.
#   blk: vhost-probe blk (the .NET front-end) against qemu-storage-daemon and samples/VhostUserBlk,
#        both serving a tmpfs-backed raw image; 4 KiB random read/write at QD1/QD32, 1 MiB sequential.
#   disk: the same on an image on the real disk ($OUT, not tmpfs), O_DIRECT on both sides:
#        qemu-storage-daemon cache.direct=on with aio=io_uring and aio=native against
#        vhost-user-blk --direct; 4 KiB random read/write at QD1/QD32/QD128, 1 MiB sequential.
# Prints one table (also written to $OUT/table.md). Not part of .ci/run. Needs dpdk-testpmd
# (dpdk-dev librte-net-vhost23 librte-net-virtio23 librte-mempool-ring23) and qemu-storage-daemon.
#
# Environment: RUNS (3) runs per case, alternating back-ends; NET_SECS (8) seconds per net run;
# BLK_SECS (4) seconds per blk run; AOT (1) also the NativeAOT-published samples; PARTS ("net fwd blk disk");
# FWD_RUNS (RUNS, at least 5) rounds per fwd case; FWD_SECS (NET_SECS) seconds per fwd run; FWD_FRAMES ("64 1518");
# NET_BACKENDS (dpdk:- then {jit,aot}:{notify,poll}); FWD_BACKENDS (dpdk:- then {jit,aot}-{switch,cross}:{notify,poll});
# FWD_UNICAST (1): the front-end ports get fixed MACs (02:00:00:00:00:10, :11) and each is the other's testpmd peer, so
# every frame is unicast to a MAC the switch has learned (0: testpmd's default peers 02:00:00:00:00:00/01, which no port
# has, so the switch floods every frame); MARGIN (25) and RERUNS (3), see the noise method;
# POLL_US (1000000) --poll window of the polling figures; BUILD (1) build/publish first;
# CASES (all) an extended regex selecting blk/disk cases by name (e.g. 'qd1$'); blk backends jit-threads/aot-threads
# run the sample with --io threads (synchronous preadv/pwritev on I/O threads instead of io_uring);
# WARMUP_SECS (1) seconds of every blk/disk case, unmeasured, after each back-end starts: the JIT samples compile their
# hot paths at tier 1 on a background thread in the first seconds, which a 3 s case would otherwise count as
# per-I/O CPU (measured: 76 against 41-45 us per 1 MiB write; every back-end gets the same warm-up).
# Pinning: back-end (any) on CPU $BE_CPU (1), front-end's forwarding/load thread on CPU $FE_CPU (0).
#
# Noise method (net and fwd): a round runs every back-end of a case once, the reference (DPDK) first; RUNS rounds
# interleave the back-ends (A B C A B C ...). After the rounds, a round whose reference fell more than MARGIN % below
# the reference's median is marked disturbed (kept in results.tsv, left out of the table) and run again, RERUNS
# extra rounds per case at most. The table gives median, min, max, the ratio of the medians and the median of the
# per-round (paired) ratios, the runs kept and the disturbed ones, and the 1-minute load of every run (* disturbed).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}; NET_SECS=${NET_SECS:-8}; BLK_SECS=${BLK_SECS:-4}; AOT=${AOT:-1}; PARTS=${PARTS:-"net fwd blk disk"}
FWD_RUNS=${FWD_RUNS:-$(( RUNS > 5 ? RUNS : 5 ))}; FWD_SECS=${FWD_SECS:-$NET_SECS}; FWD_FRAMES=${FWD_FRAMES:-"64 1518"}
FWD_UNICAST=${FWD_UNICAST:-1}
MARGIN=${MARGIN:-25}; RERUNS=${RERUNS:-3}
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
# steady-state Mpps of one testpmd log ($1): the per-second samples of KEY ($2: Rx or Tx, "KEY-pps"), summed over the
# log's $3 ports (1); of the samples from the first to the last one above 1000 pps (a stall in between counts), the
# first (ramp-up) and last (ramp-down) are dropped; the median of the rest
steady_mpps() {
  grep -E "$2-pps" "$1" | awk -v n="${3:-1}" '{s+=$2} NR%n==0{print s; s=0}' \
    | awk '{a[NR]=$1; if($1>1000){if(!f)f=NR; l=NR}} END{for(i=f+1;i<l;i++) print a[i]}' \
    | sort -n | awk '{a[NR]=$1} END{if(NR==0){print 0; exit} m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f\n", m/1e6}'
}
# part case backend value cpu_per_io gc alloc load, then round status (net, fwd) or MB/s p50 p99 (blk, disk)
record() { printf '%s\n' "$*" >> "$RES"; }

# Brackets the steady part of a run driven by a testpmd front-end, stops the front-end (SIGINT) and then the
# back-end. testpmd needs ~3 s to start on a quiet machine (512 MiB of no-huge memory) and much longer under load, so
# the bracket starts 1 s after the front-end's first statistics block (forwarding has started), lasts $4 - 1 s, and
# the front-end runs 1 s more. $1 back-end pid, $2 front-end pid, $3 1 for a sample (statistics line), $4 seconds,
# $5 the back-end's log, $6 the front-end's log. Sets CORES (the back-end's CPU in cores), GC and ALLOC.
bracket_run() {
  local c0 c1 t0 t1 i
  [ "$3" = 1 ] && stats_mark "$1"   # warms the statistics handler up
  for i in $(seq 600); do grep -q 'Port statistics' "$6" 2>/dev/null && break; kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
  sleep 1; [ "$3" = 1 ] && stats_mark "$1"; c0=$(cpu_ticks "$1"); t0=$(now)
  sleep $(($4 - 1)); [ "$3" = 1 ] && stats_mark "$1"; c1=$(cpu_ticks "$1"); t1=$(now)
  sleep 1; kill -INT "$2" 2>/dev/null; wait "$2"
  kill -INT "$1" 2>/dev/null; kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null
  CORES=$(awk -v c=$((c1 - c0)) -v t=$TICK -v a=$t0 -v b=$t1 'BEGIN{printf "%.2f", c/t/(b-a)}'); GC=-; ALLOC=-
  if [ "$3" = 1 ]; then read -r GC ALLOC < <(stats_delta "$5"); fi
}

# Noise method (see the top): $1 part, $2 case (as recorded), $3 the reference's label, $4 rounds, then the command
# that runs one round (every back-end once, the reference first); it gets the round number appended.
noise_rounds() {
  local part=$1 case=$2 ref=$3 n=$4 r next reruns=0 bad; shift 4
  for r in $(seq "$n"); do "$@" "$r"; done
  next=$((n + 1))
  while :; do
    bad=$(disturbed_rounds "$part" "$case" "$ref")
    [ -z "$bad" ] && break
    for r in $bad; do
      mark_disturbed "$part" "$case" "$r"
      log "$part $case: round $r disturbed (the reference fell more than $MARGIN % below its median)"
    done
    [ "$reruns" -ge "$RERUNS" ] && { log "$part $case: $RERUNS rounds rerun already; no more"; break; }
    for r in $bad; do
      [ "$reruns" -ge "$RERUNS" ] && break
      log "$part $case: round $next replaces a disturbed round"
      "$@" "$next"; next=$((next + 1)); reruns=$((reruns + 1))
    done
  done
}
# rounds of part $1, case $2 whose reference ($3) result is below (100 - MARGIN) % of the median of its kept results
disturbed_rounds() {
  python3 - "$RES" "$1" "$2" "$3" "$MARGIN" <<'EOF'
import sys, statistics as st
res, part, case, ref, margin = sys.argv[1:6]
rows = [l.rstrip('\n').split('\t') for l in open(res) if l.strip()]
refs = [(r[8], float(r[3])) for r in rows if r[0] == part and r[1] == case and r[2] == ref and len(r) > 9 and r[9] == 'ok']
if len(refs) >= 2:
    m = st.median(v for _, v in refs)
    print(' '.join(rnd for rnd, v in refs if v < m * (1 - float(margin) / 100)))
EOF
}
mark_disturbed() { # $1 part, $2 case, $3 round
  awk -F'\t' -v OFS='\t' -v p="$1" -v c="$2" -v r="$3" '$1==p && $2==c && $9==r {$10="disturbed"} {print}' "$RES" > "$RES.tmp" && mv "$RES.tmp" "$RES"
}

EAL="--no-pci --no-huge -m 512"
APP="--total-num-mbufs=32768 --stats-period 1"

# One net run. $1 dir (dequeue|enqueue), $2 backend (dpdk|jit|aot), $3 notify|poll, $4 round
net_run() {
  local dir=$1 be=$2 mode=$3 round=${4:-1} sock=$W/net.sock fe_mode key bpid bin smode poll=0 load
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
  timeout -s INT "$((NET_SECS + 90))" dpdk-testpmd -l $FE_CPU,$BE_CPU --main-lcore $BE_CPU $EAL --file-prefix vbf$$ \
    --vdev "net_virtio_user0,path=$sock,queues=1" -- --forward-mode=$fe_mode --auto-start $APP > "$W/fe.log" 2>&1 &
  local fpid=$! label=$be-$mode sample=1; [ "$be" = dpdk ] && { label=dpdk; sample=0; }
  bracket_run $bpid $fpid $sample "$NET_SECS" "$W/be.log" "$W/fe.log"
  local mpps
  mpps=$(steady_mpps "$W/fe.log" $key)
  cp "$W/fe.log" "$OUT/net-$dir-$label-fe.log"; cp "$W/be.log" "$OUT/net-$dir-$label-be.log"
  log "net $dir $be $mode round $round: $mpps Mpps (backend CPU $CORES cores, gc $GC, alloc $ALLOC B)"
  record "net	$dir	$label	$mpps	$CORES	$GC	$ALLOC	$load	$round	ok"
  rm -rf /var/run/dpdk/vbb$$ /var/run/dpdk/vbf$$ 2>/dev/null
}
net_round() { local bm; for bm in $NET_BACKENDS; do net_run "$1" "${bm%%:*}" "${bm##*:}" "$2"; done; }   # $1 dir, $2 round

# One fwd run. $1 frame bytes, $2 backend (dpdk | jit-switch | jit-cross | aot-switch | aot-cross), $3 notify|poll, $4 round.
# Front-end: both virtio_user ports on one forwarding lcore (FE_CPU), io forwarding port 0 -> 1 and 1 -> 0, started
# with one burst of testpmd txonly frames (--txpkts bytes) on each port; back-end: both ports on BE_CPU.
fwd_run() {
  local frames=$1 be=$2 mode=$3 round=$4 s0=$W/fwd0.sock s1=$W/fwd1.sock bpid bin poll=0 load label=dpdk sample=0
  rm -f "$s0" "$s1"
  load=$(cut -d' ' -f1 /proc/loadavg)
  if [ "$be" = dpdk ]; then
    dpdk-testpmd -l $FE_CPU,$BE_CPU --main-lcore $FE_CPU $EAL --file-prefix vbb$$ \
      --vdev "net_vhost0,iface=$s0,queues=1" --vdev "net_vhost1,iface=$s1,queues=1" -- --forward-mode=io --auto-start $APP > "$W/be.log" 2>&1 &
    bpid=$!
  else
    label=$be-$mode; sample=1
    bin=$JIT_NET; [[ $be == aot-* ]] && bin=$AOT_NET
    [ "$mode" = poll ] && poll=$POLL_US
    VHOST_SAMPLE_STATS=1 taskset -c $BE_CPU "$bin" -s "$s0" -s "$s1" --mode "${be#*-}" --poll $poll > "$W/be.log" 2>&1 &
    bpid=$!
  fi
  { wait_sock "$s0" && wait_sock "$s1"; } || { kill -TERM $bpid; wait $bpid; return 1; }
  # FWD_UNICAST: a frame sent on port i is addressed to port i^1's MAC, and io forwarding keeps its addresses
  local m0="" m1="" peers=()
  if [ "$FWD_UNICAST" = 1 ]; then
    m0=,mac=02:00:00:00:00:10; m1=,mac=02:00:00:00:00:11; peers=(--eth-peer=0,02:00:00:00:00:11 --eth-peer=1,02:00:00:00:00:10)
  fi
  timeout -s INT "$((FWD_SECS + 90))" dpdk-testpmd -l $FE_CPU,$BE_CPU --main-lcore $BE_CPU $EAL --file-prefix vbf$$ \
    --vdev "net_virtio_user0,path=$s0,queues=1$m0" --vdev "net_virtio_user1,path=$s1,queues=1$m1" \
    -- --forward-mode=io --tx-first --txpkts="$frames" "${peers[@]}" --auto-start $APP > "$W/fe.log" 2>&1 &
  local fpid=$!
  bracket_run $bpid $fpid $sample "$FWD_SECS" "$W/be.log" "$W/fe.log"
  local mpps; mpps=$(steady_mpps "$W/fe.log" Rx 2)
  cp "$W/fe.log" "$OUT/fwd-${frames}B-$label-r$round-fe.log"; cp "$W/be.log" "$OUT/fwd-${frames}B-$label-r$round-be.log"
  # the front-end's shutdown (GET_VRING_BASE and the rest) must not break the sample: flag an error or a dropped connection
  if [ $sample = 1 ] && grep -E ' (fail|crit|warn): |Unhandled' "$W/be.log" | grep -qv 'cannot be sealed'; then
    log "fwd: the back-end logged a failure or warning (see $OUT/fwd-${frames}B-$label-r$round-be.log): $(grep -E ' (fail|crit|warn): |Unhandled' "$W/be.log" | grep -v 'cannot be sealed' | head -2 | tr '\n' ' ')"
  fi
  log "fwd ${frames}B $label round $round: $mpps Mpps (backend CPU $CORES cores, gc $GC, alloc $ALLOC B)"
  record "fwd	${frames}B	$label	$mpps	$CORES	$GC	$ALLOC	$load	$round	ok"
  rm -rf /var/run/dpdk/vbb$$ /var/run/dpdk/vbf$$ 2>/dev/null
}
fwd_round() { local bm; for bm in $FWD_BACKENDS; do fwd_run "$1" "${bm%%:*}" "${bm##*:}" "$2"; done; }   # $1 frames, $2 round

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

blk_start() { # $1 backend (qsd|qsd-uring|qsd-native|jit|jit-poll|jit-threads|aot|aot-poll|aot-threads); $IMG, $DIRECT; sets BPID
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
    jit|jit-poll|aot|aot-poll|jit-threads|aot-threads)
      local bin=$JIT_BLK poll=0; [[ $1 == aot* ]] && bin=$AOT_BLK; [[ $1 == *-poll ]] && poll=$POLL_US
      local direct=() io=(); [ "${DIRECT:-0}" = 1 ] && direct=(--direct); [[ $1 == *-threads ]] && io=(--io threads)
      VHOST_SAMPLE_STATS=1 taskset -c $BE_CPU "$bin" --socket-path "$sock" --blk-file "$IMG" "${direct[@]}" "${io[@]}" --num-queues "$nq" --poll $poll > "$W/blk-be.log" 2>&1 & ;;
  esac
  BPID=$!
  wait_sock "$sock"
}

probe_blk() { # $1 seconds, $2 case line; the probe's JSON on stdout
  local name op pat bs qd nq; read -r name op pat bs qd nq <<<"$2"
  taskset -c $FE_CPU "$PROBE" blk -s "$W/blk.sock" --op "$op" --pattern "$pat" --block-size "$bs" --queue-depth "$qd" --queue-size 256 --queues "${nq:-1}" --seconds "$1" --json
}

blk_warm() { # $@ case lines: each run WARMUP_SECS, unmeasured
  local c
  [ "${WARMUP_SECS:-1}" = 0 ] && return 0
  for c in "$@"; do
    probe_blk "${WARMUP_SECS:-1}" "$c" > /dev/null 2>"$W/probe.err" || { log "warm-up probe failed: $(cat "$W/probe.err")"; return 1; }
  done
}

blk_run() { # $1 backend, $2 case line, $3 part (blk|disk)
  local be=$1 part=${3:-blk}; read -r name op pat bs qd nq <<<"$2"
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  probe_blk "$BLK_SECS" "$2" > "$W/probe.json" 2>"$W/probe.err" &
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
DEF_NET="dpdk:- jit:notify jit:poll"; [ "$AOT" = 1 ] && DEF_NET="$DEF_NET aot:notify aot:poll"
NET_BACKENDS=${NET_BACKENDS:-$DEF_NET}
if [[ " $PARTS " == *" net "* ]]; then
  for dir in dequeue enqueue; do noise_rounds net "$dir" dpdk "$RUNS" net_round "$dir"; done
fi

# --- fwd: port-to-port forwarding, the equal-work case ------------------------------------------
DEF_FWD="dpdk:- jit-switch:notify jit-switch:poll jit-cross:notify jit-cross:poll"
[ "$AOT" = 1 ] && DEF_FWD="$DEF_FWD aot-switch:notify aot-switch:poll aot-cross:notify aot-cross:poll"
FWD_BACKENDS=${FWD_BACKENDS:-$DEF_FWD}
if [[ " $PARTS " == *" fwd "* ]]; then
  for f in $FWD_FRAMES; do noise_rounds fwd "${f}B" dpdk "$FWD_RUNS" fwd_round "$f"; done
fi

# --- blk -------------------------------------------------------------------------------------
DEF_BLK="qsd jit jit-poll"; [ "$AOT" = 1 ] && DEF_BLK="$DEF_BLK aot aot-poll"
BLK_BACKENDS=${BLK_BACKENDS:-$DEF_BLK}
if [[ " $PARTS " == *" blk "* ]]; then
  truncate -s 256M "$IMG"; dd if=/dev/urandom of="$IMG" bs=1M count=256 conv=notrunc status=none
  for r in $(seq "$RUNS"); do
    for be in $BLK_BACKENDS; do   # alternating: every back-end once per round
      blk_start "$be" || exit 1
      blk_warm "${BLK_CASES[@]}" || exit 1
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
      blk_warm "${DISK_CASES[@]}" || exit 1
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
REF = {'net': 'dpdk', 'fwd': 'dpdk', 'blk': 'qsd', 'disk': 'qsd-uring'}
def rounds(part): return part in ('net', 'fwd')   # rows carry a round and a status (noise method)
print("| part | case | back-end | median | min | max | ratio of medians | paired ratio (median) | runs kept (disturbed) | back-end CPU | GC gen0/1/2 (max) | alloc B (max) | load (1-min) per run |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
groups = {}
for r in rows: groups.setdefault((r[0], r[1]), {}).setdefault(r[2], []).append(r)
for (part, case), bes in groups.items():
    kept = lambda rs: [r for r in rs if not rounds(part) or r[9] == 'ok']
    refrows = kept(bes.get(REF[part], []))
    refv = med([float(r[3]) for r in refrows])
    for be, every in bes.items():
        rs = kept(every)
        loads = ','.join(r[7] + ('*' if rounds(part) and r[9] != 'ok' else '') for r in every)
        if not rs:
            print(f"| {part} | {case} | {be} | - | - | - | - | - | 0 ({len(every)}) | - | - | - | {loads} |")
            continue
        v = [float(r[3]) for r in rs]; cpu = med([float(r[4]) for r in rs])
        gcs = [r[5] for r in rs if r[5] != '-']; al = [int(r[6]) for r in rs if r[6] != '-']
        unit = 'Mpps' if part in ('net', 'fwd') else 'IOPS'
        fmt = (lambda x: f"{x:.3f}" if x < 0.1 else f"{x:.2f}") if unit == 'Mpps' else (lambda x: f"{x:.0f}")
        extra = f" ({med([float(r[8]) for r in rs]):.0f} MB/s)" if unit == 'IOPS' else ''
        if part == 'disk' and len(rs[0]) > 10 and rs[0][9] != '-':
            extra += f", p50/p99 {med([float(r[9]) for r in rs]):.0f}/{med([float(r[10]) for r in rs]):.0f} us"
        # net, fwd: back-end CPU time per packet (cores used / Mpps), the figure the load disturbs least
        nspp = [float(r[4]) / float(r[3]) * 1000 for r in rs if float(r[3]) > 0]
        cpus = f"{cpu:.2f} cores, {med(nspp):.0f} ns/pkt" if unit == 'Mpps' else f"{cpu:.2f} us/IO"
        ratio = f"{med(v)/refv:.2f}x" if refv == refv and refv > 0 else '-'
        # paired: each run against the reference's run of the same round (blk, disk: the same position)
        if rounds(part):
            byround = {r[8]: float(r[3]) for r in refrows}
            pairs = [float(r[3]) / byround[r[8]] for r in rs if byround.get(r[8], 0) > 0]
        else:
            pairs = [float(a[3]) / float(b[3]) for a, b in zip(rs, refrows) if float(b[3]) > 0]
        paired = f"{med(pairs):.2f}x" if pairs else '-'
        print(f"| {part} | {case} | {be} | {fmt(med(v))} {unit}{extra} | {fmt(min(v))} | {fmt(max(v))} | {ratio} | {paired} | {len(rs)} ({len(every) - len(rs)}) | {cpus} | {max(gcs) if gcs else '-'} | {max(al) if al else '-'} | {loads} |")
EOF

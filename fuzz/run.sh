#!/usr/bin/env bash
# Long fuzzing runs with AFL++ (afl-fuzz) and SharpFuzz: fuzz/run.sh TARGET SECONDS
#   TARGET: message | split-chain | packed-chain | inflight | packed-inflight | config | net-state | postcopy | shmem-map | iotlb  (fuzz/Vhost.Fuzz.Targets)
# Builds fuzz/Vhost.Fuzz into $FUZZ_WORK/TARGET/bin, instruments the code under test with the
# local tool `sharpfuzz` (SharpFuzz.CommandLine 2.3.0, .config/dotnet-tools.json), runs afl-fuzz
# for SECONDS on fuzz/corpus/TARGET, then prints execs, execs/s, wall time, crashes and hangs.
# Findings stay in $FUZZ_WORK/TARGET/findings (default FUZZ_WORK=/tmp/vhost-fuzz); every crash
# or hang belongs in fuzz/regressions/TARGET/ with a fix (CorpusReplayTests replays them).
# FUZZ_NO_BUILD=1 reuses fuzz/Vhost.Fuzz/bin/Release/net10.0 instead of building.
# Needs afl++ (Debian: apt-get install afl++). Extra afl-fuzz options: AFL_EXTRA="...".
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 2 ]; then
  echo "usage: fuzz/run.sh TARGET SECONDS   (targets: message split-chain packed-chain inflight packed-inflight config net-state postcopy shmem-map iotlb)" >&2
  exit 2
fi
target=$1 seconds=$2
[ -d "fuzz/corpus/$target" ] || { echo "no corpus fuzz/corpus/$target" >&2; exit 2; }
command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found: apt-get install afl++" >&2; exit 2; }

work=${FUZZ_WORK:-/tmp/vhost-fuzz}/$target
bin=$work/bin
rm -rf "$work"
mkdir -p "$bin"

dotnet tool restore >/dev/null
if [ "${FUZZ_NO_BUILD:-}" = 1 ]; then
  # Reuse the last `dotnet build -c Release` output (several runs in a row, or a build in parallel).
  cp -r fuzz/Vhost.Fuzz/bin/Release/net10.0/. "$bin/"
else
  dotnet build fuzz/Vhost.Fuzz/Vhost.Fuzz.csproj -c Release -o "$bin" -nologo -v q >/dev/null
fi

# Instrument the code under test in place (not the harness, not the BCL). The targets assembly
# carries the blk sample's config-space code (namespace VhostUserBlk) for the `config` target and
# the net sample's port state (namespace VhostUserNet) for `net-state`.
dotnet sharpfuzz "$bin/Vhost.dll"
dotnet sharpfuzz "$bin/VhostUserBackend.dll"
dotnet sharpfuzz "$bin/Vhost.Fuzz.Targets.dll" VhostUserBlk VhostUserNet

# dotnet itself is not instrumented (SharpFuzz reports coverage over its own channel); the
# machine's core_pattern may pipe cores elsewhere; no UI in logs. The .NET start-up is slow:
# a 10 s timeout for the first run, each exec bounded by the targets' own 2 s waits.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_AFFINITY=1 DOTNET_TieredPGO=0
start=$(date +%s)
# shellcheck disable=SC2086
afl-fuzz -i "fuzz/corpus/$target" -o "$work/findings" -t 10000 -m none -V "$seconds" ${AFL_EXTRA:-} \
  -- dotnet "$bin/Vhost.Fuzz.dll" "$target" >"$work/afl.log" 2>&1 || {
  echo "afl-fuzz failed; its log ($work/afl.log) ends:" >&2; tail -30 "$work/afl.log" >&2; exit 1; }
wall=$(( $(date +%s) - start ))

stats=$work/findings/default/fuzzer_stats
get() { sed -n "s/^$1 *: *//p" "$stats"; }
crashes=$(find "$work/findings/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
hangs=$(find "$work/findings/default/hangs" -type f -name 'id:*' 2>/dev/null | wc -l)
echo "target=$target wall_s=$wall fuzz_s=$(get run_time) execs=$(get execs_done) execs_per_s=$(get execs_per_sec)" \
     "corpus=$(get corpus_count) edges=$(get edges_found) crashes=$crashes hangs=$hangs"
if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
  echo "findings: $work/findings/default/crashes and hangs (replay: dotnet $bin/Vhost.Fuzz.dll $target FILE)"
fi

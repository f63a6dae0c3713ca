#!/usr/bin/env bash
# Regenerates the public API baseline (src/*/PublicAPI.Unshipped.txt) from the code: every public
# symbol missing from the baseline is added (RS0016's code fix) and every listed symbol that is
# gone is removed (RS0017's). Run it after adding or changing public API, review the diff, commit.
# Usage: tools/update-public-api.sh [project.csproj ...]   (default: every library under src/)
set -euo pipefail
cd "$(dirname "$0")/.."
projects=("$@")
if [ ${#projects[@]} -eq 0 ]; then
  mapfile -t projects < <(ls src/*/*.csproj)
fi
for p in "${projects[@]}"; do
  dir=$(dirname "$p")
  for f in PublicAPI.Shipped.txt PublicAPI.Unshipped.txt; do
    [ -f "$dir/$f" ] || printf '#nullable enable\n' > "$dir/$f"
  done
  echo "== $p"
  # RS0017 first (drop removed symbols), then RS0016 (add new ones).
  dotnet format analyzers "$p" --diagnostics RS0017 --severity warn -v:q || true
  dotnet format analyzers "$p" --diagnostics RS0016 --severity warn -v:q || true
  # Keep the file sorted (the code fix inserts in order, merges may not).
  { head -n1 "$dir/PublicAPI.Unshipped.txt"; tail -n +2 "$dir/PublicAPI.Unshipped.txt" | LC_ALL=C sort -u; } > "$dir/PublicAPI.Unshipped.txt.new"
  mv "$dir/PublicAPI.Unshipped.txt.new" "$dir/PublicAPI.Unshipped.txt"
done

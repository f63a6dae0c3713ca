#!/usr/bin/env bash
# Regenerates the public API baseline (src/*/PublicAPI.Unshipped.txt) from the code: every public
# symbol the analyzer reports as undeclared (RS0016) is added and every declared symbol that no
# longer exists (RS0017) is removed. Run it after changing public API, review the diff, commit.
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
  log=$(mktemp)
  dotnet build "$p" -c Release -tl:off --nologo -p:TreatWarningsAsErrors=false -p:WarningsAsErrors= >"$log" 2>&1 || true
  added=$(grep -E "(warning|error) RS0016" "$log" | grep -F "$dir/" | sed -E "s/.*Symbol '(.*)' is not part of the declared public API.*/\1/" | LC_ALL=C sort -u || true)
  removed=$(grep -E "(warning|error) RS0017" "$log" | grep -F "$dir/" | sed -E "s/.*Symbol '(.*)' is part of the declared API, but is either not public or could not be found.*/\1/" | LC_ALL=C sort -u || true)
  rm -f "$log"
  f="$dir/PublicAPI.Unshipped.txt"
  ADDED="$added" REMOVED="$removed" python3 - "$f" <<'PY'
import os, sys
path = sys.argv[1]
lines = open(path).read().splitlines()
header, body = lines[0], set(l for l in lines[1:] if l.strip())
added = set(l for l in os.environ["ADDED"].splitlines() if l.strip())
removed = set(l for l in os.environ["REMOVED"].splitlines() if l.strip())
body = (body | added) - removed
with open(path, "w") as out:
    out.write("\n".join([header] + sorted(body)) + "\n")
print(f"   added {len(added)}, removed {len(removed)}")
PY
done

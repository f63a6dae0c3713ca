#!/usr/bin/env bash
# The test command: installs the system packages the tests need (once, before any test starts),
# builds the whole solution with warnings as errors, and runs every test project.
# Extra arguments go to `dotnet test` (for example: ./test.sh --filter "FullyQualifiedName~Scm").
set -euo pipefail
cd "$(dirname "$0")"

if [ -x tools/install-test-deps.sh ]; then
  tools/install-test-deps.sh
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
dotnet build Vhost.sln -c Release -warnaserror -tl:off --nologo -v:minimal
dotnet test Vhost.sln -c Release --no-build -tl:off --nologo "$@"

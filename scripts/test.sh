#!/usr/bin/env bash
# Sets up what is missing, builds, runs the whole test suite, and ends with the line "N passed, M failed".
# Extra arguments go to Expecto (e.g. --filter-test-list log-Sobolev).
set -uo pipefail
cd "$(dirname "$0")/.."
# With the packages only the tests use (slurm-wlm, munge, python3-numpy) in the same apt-get run; where the cluster
# cannot start (not root, no packages), those tests are reported as skipped with the reason.
ATTRIBUTION_SETUP_TESTS=1 bash scripts/setup.sh || exit 1
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
log=$(mktemp)
dotnet build tests/Attribution.Tests -c Release 2>&1 | tail -3
# sequenced: tests share TorchSharp's global state (initialisation seed, thread-local tensor counts)
dotnet run --project tests/Attribution.Tests -c Release --no-build -- --sequenced --colours 0 --no-spinner --summary "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary=$(grep -E 'EXPECTO! [0-9]+ tests run' "$log" | tail -1)
if [ -n "$summary" ]; then
  passed=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$summary")
  failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$summary")
  errored=$(sed -E 's/.* ([0-9]+) errored.*/\1/' <<<"$summary")
  ignored=$(sed -E 's/.* ([0-9]+) ignored.*/\1/' <<<"$summary")
  if [ "$ignored" -gt 0 ]; then
    echo "$passed passed, $((failed + errored)) failed, $ignored skipped"
  else
    echo "$passed passed, $((failed + errored)) failed"
  fi
else
  echo "0 passed, 1 failed"
  [ "$status" != 0 ] || status=1
fi
rm -f "$log"
exit "$status"

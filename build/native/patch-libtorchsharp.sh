#!/usr/bin/env bash
# Makes TorchSharp's native glue load on systems whose libstdc++ predates GLIBCXX_3.4.32 (Debian 12).
#
#   patch-libtorchsharp.sh OUTPUT_DIR WORK_DIR
#
# Patches every copy of libLibTorchSharp.so below OUTPUT_DIR (never the NuGet cache), idempotently:
#   1. the GLIBCXX_3.4.32 requirement in .gnu.version_r is marked weak;
#   2. _ZSt21ios_base_library_initv loses its symbol version;
#   3. a NEEDED entry on libstdcxx_compat.so, a tiny library defining that symbol, is added.
# Does nothing when the system libstdc++ already provides GLIBCXX_3.4.32.
set -euo pipefail
out=${1:?output dir}; work=${2:?work dir}
here=$(cd "$(dirname "$0")" && pwd)
marker=GLIBCXX_3.4.32
symbol=_ZSt21ios_base_library_initv

libstdcxx=$( (ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}') || true)
[ -n "$libstdcxx" ] || libstdcxx=$(ls /usr/lib/x86_64-linux-gnu/libstdc++.so.6 2>/dev/null || true)
if [ -n "$libstdcxx" ] && grep -qa "$marker" "$libstdcxx"; then exit 0; fi

mapfile -t libs < <(find "$out" -name libLibTorchSharp.so -type f 2>/dev/null)
[ "${#libs[@]}" -gt 0 ] || exit 0

need() { command -v "$1" >/dev/null || { echo "error: '$1' is needed to make TorchSharp load on this system: apt-get install -y $2" >&2; exit 1; }; }
need patchelf patchelf; need gcc gcc; need g++ g++

mkdir -p "$work"
[ "$work/elf_weak_verneed" -nt "$here/elf_weak_verneed.c" ] || gcc -O2 -o "$work/elf_weak_verneed" "$here/elf_weak_verneed.c"
[ "$work/libstdcxx_compat.so" -nt "$here/ios_base_library_init.cpp" ] || \
  g++ -O2 -shared -fPIC -Wl,-soname,libstdcxx_compat.so -o "$work/libstdcxx_compat.so" "$here/ios_base_library_init.cpp"

for lib in "${libs[@]}"; do
  dir=$(dirname "$lib")
  cp -f "$work/libstdcxx_compat.so" "$dir/libstdcxx_compat.so"
  if patchelf --print-needed "$lib" | grep -qx libstdcxx_compat.so; then continue; fi
  tmp="$lib.patching"
  cp -f "$lib" "$tmp"
  "$work/elf_weak_verneed" "$tmp" "$marker"
  patchelf --clear-symbol-version "$symbol" "$tmp"
  patchelf --add-needed libstdcxx_compat.so "$tmp"
  mv -f "$tmp" "$lib"   # atomic: a half-patched library is never left in place
done

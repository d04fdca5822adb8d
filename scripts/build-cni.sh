#!/usr/bin/env bash
# Builds the CNI plugin to install, dist/bin/berth-cni: the C shim (src/cni/shim/berth-cni.c),
# compiled, which starts in a fraction of Perl's time. Without a C compiler it copies the Perl shim
# (bin/berth-cni, same behaviour) there instead and says so, so dist/bin/berth-cni always exists.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/bin/berth-cni
mkdir -p "$(dirname "$out")"
compiler=
for c in "${CC:-}" cc gcc clang; do
  if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1; then compiler=$c; break; fi
done
# Built beside and renamed over, so a shim that is running (a runtime's call, a test) is never rewritten.
# Linked statically when libc.a is there (libc6-dev): no dynamic loader at each call, ~0.5-1 ms
# less per CNI call on this machine; else dynamically.
if [ -n "$compiler" ]; then
  flags=(-std=c11 -O2 -Wall -Wextra -Werror -o "$out.tmp" src/cni/shim/berth-cni.c)
  "$compiler" -static "${flags[@]}" 2>/dev/null || "$compiler" "${flags[@]}"
else
  echo "build-cni: no C compiler (cc, gcc or clang; set CC for another): $out is the Perl shim bin/berth-cni, which costs a Perl start-up per CNI call (install gcc and libc6-dev for the compiled one)" >&2
  cp bin/berth-cni "$out.tmp"
  chmod 755 "$out.tmp"
fi
mv -f "$out.tmp" "$out"

#!/usr/bin/env bash
# Installs what berth needs on a fresh Debian machine (idempotent): system packages, npm
# dependencies, and the TypeScript build. Every other script calls this first.
set -euo pipefail
cd "$(dirname "$0")/.."

# iproute2 (ip, for tests), nftables (libnftables, which the daemon loads), util-linux (nsenter,
# unshare), busybox-static (container commands in tests and the demo), curl, dnsutils, socat and
# dnsmasq-base (test clients and servers; dnsmasq plays the upstream resolver in a test namespace),
# the CNI reference plugins and iptables (chaining tests), docker.io (its docker CLI, for the API
# end-to-end test; berth never starts its daemon), etcd-server (the cluster store: tests and the demo
# start their own members inside sandbox namespaces), wireguard-go (encrypted overlays: this kernel
# has no WireGuard), tcpdump (the encryption test captures the underlay) and chromium (the topology
# page is tested in a real browser, driven by puppeteer-core), gcc and libc6-dev (the compiled CNI
# shim, scripts/build-cni.sh; better-sqlite3 needs a compiler too when it builds from source).
PACKAGES=(iproute2 nftables libnftables1 util-linux busybox-static curl dnsutils socat dnsmasq-base
  containernetworking-plugins iptables docker.io etcd-server wireguard-go tcpdump chromium bird2 dnsperf
  gcc libc6-dev)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages with a service (etcd-server, docker.io) must not start it in the machine's own
  # namespace: a policy-rc.d that refuses every start, for the length of the install only.
  policy=/usr/sbin/policy-rc.d
  own_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  if [ -n "$own_policy" ]; then rm -f "$policy"; fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies (better-sqlite3 compiles from source: about 2 minutes)"
  npm ci --no-audit --no-fund --loglevel=error
fi
npx tsc -p tsconfig.json
bash scripts/build-cni.sh

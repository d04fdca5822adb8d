#!/usr/bin/env bash
# The benchmark: berth side by side with netavark (+ aardvark-dns) and the CNI reference plugins,
# in sandbox namespaces. Installs the peers it measures (and etcdctl, whose watch §8 times the
# announcement by), then runs `npm run bench -- "$@"`
# (--quick for a few samples; --smoke for CI: quick, and fails if a section fails).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PEERS=(netavark aardvark-dns containernetworking-plugins iperf3 iptables dnsutils etcd-client)
missing=()
for p in "${PEERS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# §5's floor, a small C DNS responder; without a compiler §5 says it was not measured.
if command -v cc >/dev/null 2>&1; then
  cc -std=c11 -O2 -Wall -Wextra -Werror -o dist/bench/tools/dns-floor bench/tools/c/dns-floor.c
fi
node dist/bench/run.js "$@"

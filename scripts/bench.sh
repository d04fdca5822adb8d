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
node dist/bench/run.js "$@"

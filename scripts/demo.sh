#!/usr/bin/env bash
# berth's demo: a sandbox "host" namespace with a berth daemon in it, a web and a database
# container on a user-defined network (web reaches db by name), a published port reached from a
# LAN peer, a host-mode and a none-mode container, a macvlan container the LAN reaches directly and
# two containers on a ptp network, two dual-stack containers talking over IPv6, and `berth trace`
# naming why one container cannot reach another; prints the topology; then the multi-host part (three hosts,
# etcd, web on one reaches db on another by name over an overlay); removes everything.
# It never touches this machine's own network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null

HOST=berth-demo-$$
LAN=berth-demo-lan-$$
ROOT=$(mktemp -d /tmp/berth-demo-XXXX)
SOCK=$ROOT/berth.sock
export BERTH_HOST=unix://$SOCK
BERTH="node $PWD/bin/berth"
BB=/bin/busybox
DAEMON_PID=

cleanup() {
  set +e
  if [ -n "$DAEMON_PID" ]; then
    $BERTH rm -f $($BERTH ps -aq 2>/dev/null) >/dev/null 2>&1
    kill "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null
  fi
  for m in "$ROOT"/state/run/netns/* "$ROOT"/state/run/netns-pool/*; do [ -e "$m" ] && umount -l "$m"; done
  mountpoint -q "$ROOT/state/run" 2>/dev/null && umount -l "$ROOT/state/run"
  ip netns del "$LAN" 2>/dev/null
  ip netns del "$HOST" 2>/dev/null
  rm -rf "$ROOT"
  echo "== cleaned up: namespaces $HOST and $LAN, daemon, mounts and $ROOT removed"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
in_host() { nsenter --net=/run/netns/$HOST -- "$@"; }

step "sandbox host namespace $HOST, and a LAN peer $LAN (192.168.200.2) linked to it"
ip netns add "$HOST"
ip netns add "$LAN"
ip -n "$HOST" link set lo up
ip -n "$HOST" link add lan0 type veth peer name eth0 netns "$LAN"
ip -n "$HOST" addr add 192.168.200.1/24 dev lan0 && ip -n "$HOST" link set lan0 up
ip -n "$LAN" addr add 192.168.200.2/24 dev eth0 && ip -n "$LAN" link set eth0 up && ip -n "$LAN" link set lo up
echo "nameserver 192.168.200.2" > "$ROOT/resolv.conf"

step "berth daemon, running inside $HOST"
nsenter --net=/run/netns/$HOST -- node bin/berth daemon --root "$ROOT/state" --host "$BERTH_HOST" \
  --resolv-conf "$ROOT/resolv.conf" --log-level warn &
DAEMON_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
$BERTH network ls

step "a user-defined network, and a database and a web container on it"
$BERTH network create shop
$BERTH run -d --name db --network shop -- $BB nc -ll -p 5432 -e /bin/echo "db says: 42 rows" >/dev/null
mkdir -p "$ROOT/www" && echo "<h1>hello from the web container</h1>" > "$ROOT/www/index.html"
$BERTH run -d --name web --network shop -p 8080:80 -- $BB httpd -f -p 80 -h "$ROOT/www" >/dev/null
$BERTH run -d --name hostmode --network host -- $BB sleep 3600 >/dev/null
$BERTH run -d --name offline --network none -- $BB sleep 3600 >/dev/null
$BERTH ps

step "web reaches db by name, through berth's DNS"
$BERTH exec web -- $BB nc -w 2 db 5432

step "a LAN peer reaches web's published port 8080 at the host's address"
nsenter --net=/run/netns/$LAN -- curl -s --max-time 3 http://192.168.200.1:8080/

step "a macvlan network: a container straight on the LAN, reached at its own address (no NAT)"
$BERTH network create -d macvlan --subnet 192.168.200.0/24 --gateway 192.168.200.2 --ip-range 192.168.200.128/25 -o parent=lan0 lan >/dev/null
$BERTH run -d --name lanbox --network lan -- $BB httpd -f -p 80 -h "$ROOT/www" >/dev/null
LANBOX=$($BERTH inspect lanbox | grep -o '"IPAddress": "192\.168\.200\.[0-9]*' | sed -n 1p | cut -d'"' -f4)
echo "lanbox is $LANBOX on the LAN (the host's own 192.168.200.1 is reserved, never handed out)"
for _ in $(seq 20); do nsenter --net=/run/netns/$LAN -- curl -s --max-time 2 "http://$LANBOX/" && break; sleep 0.2; done

step "a ptp network: a veth per container and no bridge, routed through the host; names still resolve"
$BERTH network create -d ptp --subnet 10.99.0.0/24 p2p >/dev/null
$BERTH run -d --name p1 --network p2p -- $BB sleep 3600 >/dev/null
$BERTH run -d --name p2 --network p2p -- $BB sleep 3600 >/dev/null
$BERTH exec p2 -- ip -4 route
$BERTH exec p2 -- $BB ping -c 1 -W 2 p1 | sed -n 1,2p

step "dual stack: an --ipv6 network; its containers reach each other over IPv6, by name (AAAA)"
$BERTH network create --ipv6 --subnet 10.98.0.0/24 --subnet fd98::/64 dual >/dev/null
$BERTH run -d --name v6a --network dual -- $BB sleep 3600 >/dev/null
$BERTH run -d --name v6b --network dual -- $BB sleep 3600 >/dev/null
$BERTH exec v6b -- ip -6 -br addr show dev eth0
$BERTH exec v6b -- $BB ping -6 -c 1 -W 2 v6a | sed -n 1,2p

step "berth trace: why can't p1 (ptp network) reach web (shop network)? the first failing hop and its fix"
$BERTH trace p1 web || true
echo "-- and a path that works:"
$BERTH trace web db:5432/tcp | tail -n 3

step "topology"
echo "-- network namespaces under berth's run directory:"; ls "$ROOT/state/run/netns"
echo "-- host namespace links (bridges and veth ports):"; in_host ip -br link
echo "-- ports of each bridge:"; in_host bridge link
for c in db web; do
  echo "-- $c: $(nsenter --net="$($BERTH inspect $c | grep -o '"SandboxKey": "[^"]*' | cut -d'"' -f4)" -- ip -br -4 addr | tr -s ' ' | tr '\n' ';')"
done
echo "-- hostmode sees the host's links: $($BERTH exec hostmode -- ip -o link | wc -l) links"
echo "-- offline (none) has: $($BERTH exec offline -- ip -o link | awk -F': ' '{print $2}' | tr '\n' ' ')"
echo "-- berth's nftables tables in the host namespace:"; in_host nft list tables

step "multi-host: three hosts, etcd, an overlay network (scripts/demo-cluster.sh)"
bash scripts/demo-cluster.sh

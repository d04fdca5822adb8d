#!/usr/bin/env bash
# berth's multi-host demo (scripts/demo.sh runs it last): three simulated hosts (namespaces on an
# underlay bridge), a three-member etcd cluster on their underlay addresses, a berth daemon per
# host joined to it, and an overlay network across them: web on host 1 reaches db on host 2 by
# name, over VXLAN. Never touches this machine's own network namespace; removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null

TAG=bdc$$
ROOT=$(mktemp -d /tmp/berth-demo-cluster-XXXX)
BB=/bin/busybox
UL=$TAG-ul
PIDS=()
STORE=etcd://192.168.77.1:2379,192.168.77.2:2379,192.168.77.3:2379
CLUSTER=m1=http://192.168.77.1:2380,m2=http://192.168.77.2:2380,m3=http://192.168.77.3:2380

cleanup() {
  set +e
  for i in 1 2 3; do
    [ -S "$ROOT/h$i.sock" ] && BERTH_HOST=unix://$ROOT/h$i.sock node bin/berth rm -f $(BERTH_HOST=unix://$ROOT/h$i.sock node bin/berth ps -aq 2>/dev/null) >/dev/null 2>&1
  done
  # Daemons first (started last), then the etcd members they talk to.
  for ((k = ${#PIDS[@]} - 1; k >= 0; k--)); do kill "${PIDS[k]}" 2>/dev/null; wait "${PIDS[k]}" 2>/dev/null; done
  for i in 1 2 3; do
    for m in "$ROOT"/h$i/run/netns/* "$ROOT"/h$i/run/netns-pool/*; do [ -e "$m" ] && umount -l "$m"; done
    mountpoint -q "$ROOT/h$i/run" 2>/dev/null && umount -l "$ROOT/h$i/run"
    ip netns del "$TAG-h$i" 2>/dev/null
  done
  ip netns del "$UL" 2>/dev/null
  rm -rf "$ROOT"
  echo "== cleaned up: hosts, underlay, etcd members, daemons, mounts and $ROOT removed"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
berth_on() { local i=$1; shift; BERTH_HOST=unix://$ROOT/h$i.sock node bin/berth "$@"; }

step "three hosts on an underlay (192.168.77.0/24), each with an etcd member"
ip netns add "$UL"
ip -n "$UL" link add ul type bridge && ip -n "$UL" link set ul up
for i in 1 2 3; do
  ip netns add "$TAG-h$i"
  ip -n "$TAG-h$i" link set lo up
  ip -n "$UL" link add h$i type veth peer name eth0 netns "$TAG-h$i"
  ip -n "$UL" link set h$i master ul up
  ip -n "$TAG-h$i" addr add 192.168.77.$i/24 dev eth0 && ip -n "$TAG-h$i" link set eth0 up
  nsenter --net=/run/netns/$TAG-h$i -- etcd --name m$i --data-dir "$ROOT/etcd$i" \
    --listen-client-urls http://192.168.77.$i:2379 --advertise-client-urls http://192.168.77.$i:2379 \
    --listen-peer-urls http://192.168.77.$i:2380 --initial-advertise-peer-urls http://192.168.77.$i:2380 \
    --initial-cluster "$CLUSTER" --initial-cluster-token "$TAG" >"$ROOT/etcd$i.log" 2>&1 &
  PIDS+=($!)
done
for _ in $(seq 100); do
  nsenter --net=/run/netns/$TAG-h1 -- curl -s -m 1 http://192.168.77.1:2379/health | grep -q '"health":"true"' && break; sleep 0.2
done
echo "etcd: $(nsenter --net=/run/netns/$TAG-h1 -- curl -s -m 1 http://192.168.77.1:2379/health)"

step "a berth daemon per host: berth daemon --cluster-store $STORE --advertise-addr 192.168.77.N"
echo "search demo.test" > "$ROOT/resolv.conf"
for i in 1 2 3; do
  nsenter --net=/run/netns/$TAG-h$i -- node bin/berth daemon --root "$ROOT/h$i" --host "unix://$ROOT/h$i.sock" \
    --resolv-conf "$ROOT/resolv.conf" --cluster-store "$STORE" --advertise-addr 192.168.77.$i --log-level warn &
  PIDS+=($!)
done
for i in 1 2 3; do for _ in $(seq 100); do [ -S "$ROOT/h$i.sock" ] && break; sleep 0.1; done; done

step "an overlay network made on host 1, listed by every host"
berth_on 1 network create -d overlay --subnet 10.77.0.0/24 shop >/dev/null
sleep 0.3
for i in 1 2 3; do echo "host $i: $(berth_on $i network ls | grep shop)"; done

step "db on host 2, web on host 1; web reaches db by name across hosts"
berth_on 2 run -d --name db --network shop -- $BB nc -ll -p 5432 -e /bin/echo "db on host 2 says: 42 rows" >/dev/null
berth_on 1 run -d --name web --network shop -- $BB sleep 3600 >/dev/null
for _ in $(seq 20); do berth_on 1 exec web -- $BB nc -w 2 db 5432 && break; sleep 0.2; done
berth_on 1 exec web -- $BB ping -c 2 -W 2 db | sed -n 1,3p

step "what host 1 programmed for db (three kernel entries), and the VXLAN device"
DBMAC=$(berth_on 2 inspect db | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].NetworkSettings.Networks.shop.MacAddress))')
echo "db's MAC is $DBMAC; on host 1:"
nsenter --net=/run/netns/$TAG-h1 -- bridge fdb show | grep "$DBMAC"
VX=$(nsenter --net=/run/netns/$TAG-h1 -- ip -o link show type vxlan | awk -F': ' '{print $2}' | sed -n 1p)
nsenter --net=/run/netns/$TAG-h1 -- ip neigh show dev "$VX"
nsenter --net=/run/netns/$TAG-h1 -- ip -d link show "$VX" | sed -n '1p;3p'
echo "web's MTU: $(berth_on 1 exec web -- ip -o link show eth0 | grep -o 'mtu [0-9]*') (the underlay's 1500 − 50 for VXLAN)"

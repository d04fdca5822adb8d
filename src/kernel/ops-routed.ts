/**
 * Kernel operations of routed networks, Calico's model: a veth pair per container, no bridge and
 * no address on the host end. The container has its address as a /32, a link route to 169.254.1.1
 * and every other route via it; the host end answers ARP for 169.254.1.1 (proxy ARP: the host
 * routes that address elsewhere, so the kernel answers for it with the veth's MAC) and the host
 * has a /32 route to the container. Everything is routed at L3: containers never learn each
 * other's MACs. Routes between hosts are BIRD's business (src/cluster/bgp/).
 */
import * as nl from './netlink/codec.js';
import { writeSysctl } from './ops.js';
import { disableIpv6, host, linkByName } from './link-steps.js';
import { attachL3Veth } from './l3-veth.js';

/** The containers' gateway: link-local, never assigned to anything (Calico's). */
const ROUTED_GATEWAY = '169.254.1.1';

export interface RoutedAttachSpec {
  netnsPath: string;
  hostVeth: string;
  /** berth's mark on the host end (`berth:<owner>:endpoint:<id>`). */
  alias: string;
  ifname: string;
  mac: string;
  ip: string;
  /** The network's pool, routed via the gateway even when another interface has the default route. */
  pool: string;
  poolPrefix: number;
  mtu?: number;
  defaultRoute: boolean;
  createSandbox?: boolean;
}

/** Proxy ARP on the host end, answered at once; forwarding; route_localnet for ports published on 127.0.0.1. */
function hostEndSysctls(veth: string): void {
  writeSysctl({ key: `net/ipv4/conf/${veth}/proxy_arp`, value: '1' });
  writeSysctl({ key: `net/ipv4/neigh/${veth}/proxy_delay`, value: '0' });
  writeSysctl({ key: `net/ipv4/conf/${veth}/forwarding`, value: '1' });
  writeSysctl({ key: `net/ipv4/conf/${veth}/route_localnet`, value: '1' });
}

/**
 * The pair (l3-veth.ts); the host end gets its sysctls, mark and /32 route, no address; the
 * container end its /32, the route to 169.254.1.1 and the pool's route via it.
 */
export function attachRouted(spec: RoutedAttachSpec): void {
  attachL3Veth(spec, [{ ip: spec.ip, hostPrefix: 32, subnet: spec.pool, prefix: spec.poolPrefix, gateway: ROUTED_GATEWAY }], (sock, hostEnd) => {
    disableIpv6(spec.hostVeth);
    hostEndSysctls(spec.hostVeth);
    sock.transact(
      [nl.setAlias(hostEnd.index, spec.alias), nl.newRoute({ dst: spec.ip, prefix: 32, oifIndex: hostEnd.index })],
      [`mark ${spec.hostVeth}`, `route ${spec.ip}/32 via ${spec.hostVeth}`],
    );
  });
}

/** Puts the host's /32 route to the container back (and the host end's sysctls, if the veth was remade elsewhere). */
export function restoreRoutedRoute(spec: { hostVeth: string; ip: string }): void {
  const sock = host();
  const veth = linkByName(sock, spec.hostVeth);
  if (!veth) throw new Error(`cannot restore the route to ${spec.ip}: veth ${spec.hostVeth} is missing`);
  hostEndSysctls(spec.hostVeth);
  sock.transact([nl.newRoute({ dst: spec.ip, prefix: 32, oifIndex: veth.index })], [`route ${spec.ip}/32 via ${spec.hostVeth}`]);
}

/**
 * The host-gw backend, as Flannel's: a plain route per peer, `<subnet> via <PublicIP> dev
 * <underlay>`, with no encapsulation at all. It needs every host on one L2 segment: a peer whose
 * PublicIP is not on a prefix directly connected to the underlay interface cannot be a next hop,
 * and is refused by name (the route would otherwise point at an unreachable gateway, or at a
 * router that sends the packets back out with nothing to route them by).
 */
import { invalid } from '../../errors.js';
import { cidrContains, cidrFromAddress, parseCidr, parseIpv4 } from '../../ipam/ipv4.js';
import type { HostSubnetBackend, LocalHost, PeerLease } from './backend.js';
import type { BackendDeps } from './backends.js';

/** The connected prefix (`192.168.90.0/24`) that holds `ip`, if any (pure). */
export function segmentOf(prefixes: readonly { address: string; prefix: number }[], ip: string): string | undefined {
  const target = parseIpv4(ip);
  for (const p of prefixes) {
    const cidr = cidrFromAddress(parseIpv4(p.address), p.prefix);
    // A /32 (or /31 point-to-point) address connects no segment others sit on.
    if (p.prefix < 31 && cidrContains(cidr, target)) return cidr.text;
  }
  return undefined;
}

export function createHostGwBackend({ kernel }: BackendDeps): HostSubnetBackend {
  let local: LocalHost | undefined;

  const checkAdjacent = async (peer: PeerLease): Promise<void> => {
    const prefixes = await kernel.call('connectedPrefixes', { ifname: local!.underlay.ifname });
    if (segmentOf(prefixes, peer.publicIp)) return;
    const mine = prefixes.map((p) => cidrFromAddress(parseIpv4(p.address), p.prefix).text).join(', ') || 'none';
    throw invalid(
      `host-gw cannot reach host ${peer.publicIp} (subnet ${peer.subnet}): it is not on this host's L2 segment (${local!.underlay.ifname}: ${mine}), and host-gw routes only to directly connected next hops; use --backend vxlan for hosts on different segments`,
    );
  };

  return {
    type: 'host-gw',
    mtu: (underlayMtu) => underlayMtu,

    async start(l) {
      local = l;
      // Flannel's host-gw leases carry no BackendData.
      return null;
    },

    async addPeer(peer) {
      parseCidr(peer.subnet);
      await checkAdjacent(peer);
      await kernel.call('addGwRoute', { ifname: local!.underlay.ifname, subnet: peer.subnet, gateway: peer.publicIp });
    },

    async removePeer(peer) {
      await kernel.call('removeGwRoute', { subnet: peer.subnet });
    },

    async repair(peers) {
      if (!local) return [];
      const repaired: string[] = [];
      const now = await kernel.call('gwRoutes', { ifname: local.underlay.ifname });
      const prefixes = await kernel.call('connectedPrefixes', { ifname: local.underlay.ifname });
      const wanted = peers.filter((p) => segmentOf(prefixes, p.publicIp));
      for (const p of wanted) {
        if (now.some((r) => r.subnet === p.subnet && r.gateway === p.publicIp)) continue;
        await kernel.call('addGwRoute', { ifname: local.underlay.ifname, subnet: p.subnet, gateway: p.publicIp });
        repaired.push(p.subnet);
      }
      for (const r of now) {
        if (wanted.some((p) => p.subnet === r.subnet)) continue;
        await kernel.call('removeGwRoute', { subnet: r.subnet });
        repaired.push(`-${r.subnet}`);
      }
      return repaired;
    },

    async stop({ remove }) {
      if (remove && local) {
        for (const r of await kernel.call('gwRoutes', { ifname: local.underlay.ifname })) await kernel.call('removeGwRoute', { subnet: r.subnet });
      }
      local = undefined;
    },
  };
}

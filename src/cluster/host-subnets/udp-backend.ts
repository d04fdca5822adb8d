/**
 * The `udp` backend (Flannel's first design): one TUN device, `berthudp0`, with a route for the
 * whole cluster CIDR (this host's own subnet, on its bridge, is more specific), and a packet pump
 * in the daemon that carries every IP packet the device receives in one UDP datagram to port 8285
 * of the host leasing the destination's subnet, and writes what peers send back into the device.
 * It needs nothing of the kernel but TUN, so it works where VXLAN is missing; it costs a trip
 * through user space per packet each way (docs/host-subnets-udp.md has the figures).
 *
 * The device's own address is its subnet's network address as a /32 (as Flannel's devices have):
 * the host's own packets to other subnets then leave with a source inside this host's subnet,
 * which peers accept (they drop any inner source outside the sender's subnet), and a /32 adds no
 * subnet route that would compete with the bridge's.
 */
import { aliasPrefix } from '../../constants.js';
import { pathsUnder } from '../../engine/context.js';
import { BerthError, invalid } from '../../errors.js';
import { cidrContains, formatIpv4, parseCidr, parseIpv4, type Cidr } from '../../ipam/ipv4.js';
import { TunProxy, type Counters } from '../../kernel/tun.js';
import type { TunDeviceSpec } from '../../kernel/tun-device.js';
import type { HostSubnetBackend, LocalHost, PeerLease } from './backend.js';

export const UDP_DEVICE = 'berthudp0';
export const UDP_PORT = 8285;
/** An outer IPv4 header (20) and a UDP header (8). */
export const UDP_OVERHEAD = 28;

interface Started {
  local: LocalHost;
  subnet: Cidr;
  cluster: Cidr;
  device: TunDeviceSpec;
  proxy: TunProxy;
  /** Peers by subnet text: what repair restores if the pump must be restarted. */
  peers: Map<string, PeerLease>;
}

export interface UdpBackend extends HostSubnetBackend {
  /** The pump's counters (packets, bytes, drops by reason); zeros before start. */
  counters(): Counters | undefined;
}

export function createUdpBackend(): UdpBackend {
  let state: Started | undefined;

  const started = (what: string): Started => {
    if (!state) throw new BerthError('unavailable', `the udp backend cannot ${what} before it has started`);
    return state;
  };

  const startProxy = async (s: Omit<Started, 'proxy' | 'peers'>) =>
    TunProxy.start({
      device: s.device,
      local: { network: s.subnet.network, prefix: s.subnet.prefix },
      bind: { ip: parseIpv4(s.local.publicIp, 'underlay address'), port: UDP_PORT },
    });

  return {
    type: 'udp',

    mtu: (underlayMtu) => underlayMtu - UDP_OVERHEAD,

    async start(local) {
      if (state) return null;
      const cluster = parseCidr(local.clusterCidr, 'cluster CIDR');
      const subnet = parseCidr(local.subnet, "this host's subnet");
      if (!cidrContains(cluster, subnet.network) || subnet.prefix < cluster.prefix) {
        throw invalid(`this host's subnet ${subnet.text} is not inside the cluster CIDR ${cluster.text}: lease a subnet of the cluster CIDR`);
      }
      const mtu = local.underlay.mtu - UDP_OVERHEAD;
      if (mtu < 576) throw invalid(`the underlay ${local.underlay.ifname} has MTU ${local.underlay.mtu}: the udp backend needs at least ${576 + UDP_OVERHEAD} (IPv4's minimum plus ${UDP_OVERHEAD} of encapsulation)`);
      const owner = pathsUnder(local.root).owner;
      const device: TunDeviceSpec = {
        name: UDP_DEVICE,
        // A kind of its own: the reconciler removes only network- and endpoint-marked links it cannot place.
        mark: `${aliasPrefix(owner, 'tunnel')}udp`,
        mtu,
        address: formatIpv4(subnet.network),
        route: { dst: formatIpv4(cluster.network), prefix: cluster.prefix },
      };
      const base = { local, subnet, cluster, device };
      let proxy: TunProxy;
      try {
        proxy = await startProxy(base);
      } catch (err) {
        throw asBerthError(err, `the udp backend could not start on ${local.publicIp}:${UDP_PORT}`);
      }
      state = { ...base, proxy, peers: new Map() };
      // Flannel's udp backend publishes no BackendData: a peer's address and subnet are all it needs.
      return null;
    },

    async addPeer(peer) {
      const s = started(`add peer ${peer.subnet}`);
      const { subnet, publicIp } = checkPeer(s, peer);
      await s.proxy.setPeer(subnet, publicIp);
      s.peers.set(peer.subnet, peer);
    },

    async removePeer(peer) {
      const s = started(`remove peer ${peer.subnet}`);
      s.peers.delete(peer.subnet);
      await s.proxy.deletePeer(parseCidr(peer.subnet, `subnet of peer ${peer.publicIp}`).network);
    },

    async repair(peers) {
      const s = started('repair');
      const kernel = s.proxy.alive ? await s.proxy.repair() : undefined;
      const repaired: string[] = [];
      if (kernel) {
        repaired.push(...kernel);
      } else {
        // The device was deleted (or the pump died): a new pump makes it again and learns every peer.
        await s.proxy.stop({ remove: false }).catch(() => undefined);
        s.proxy = await startProxy(s);
        s.peers.clear();
        repaired.push(`TUN device ${s.device.name}`);
      }
      for (const peer of peers) {
        if (s.peers.get(peer.subnet)?.publicIp === peer.publicIp) continue;
        const { subnet, publicIp } = checkPeer(s, peer);
        await s.proxy.setPeer(subnet, publicIp);
        s.peers.set(peer.subnet, peer);
        if (kernel) repaired.push(`peer ${peer.subnet} via ${peer.publicIp}`);
      }
      return repaired;
    },

    async stop(opts) {
      const s = state;
      if (!s) return;
      state = undefined;
      await s.proxy.stop(opts);
    },

    counters: () => state?.proxy.counters(),
  };
}

/** A peer this backend can reach: a udp host, a subnet of the cluster's size, not this host's own. */
export function checkPeer(s: { subnet: Cidr; cluster: Cidr }, peer: PeerLease): { subnet: number; publicIp: number } {
  if (peer.backendType !== 'udp') {
    throw invalid(`peer ${peer.publicIp} (subnet ${peer.subnet}) uses the ${peer.backendType} backend and this host udp: every host of a cluster must run the same --backend`);
  }
  const subnet = parseCidr(peer.subnet, `subnet of peer ${peer.publicIp}`);
  const publicIp = parseIpv4(peer.publicIp, `underlay address of peer ${peer.subnet}`);
  if (subnet.prefix !== s.subnet.prefix || !cidrContains(s.cluster, subnet.network)) {
    throw invalid(`peer ${peer.publicIp} leases ${subnet.text}, which is not a /${s.subnet.prefix} of the cluster CIDR ${s.cluster.text} like this host's ${s.subnet.text}: its lease does not belong to this cluster`);
  }
  if (subnet.network === s.subnet.network) throw invalid(`peer ${peer.publicIp} leases ${subnet.text}, this host's own subnet: two hosts hold one lease`);
  return { subnet: subnet.network, publicIp };
}

function asBerthError(err: unknown, what: string): BerthError {
  if (err instanceof BerthError) return err;
  const errno = (err as { errno?: number }).errno;
  const message = (err as Error).message;
  // EADDRINUSE (98): another process (a Flannel, another berth) holds the port.
  const hint = errno === 98 ? `: UDP port ${UDP_PORT} is taken on this host; stop whatever holds it (ss -ulpn sport = ${UDP_PORT})` : '';
  return new BerthError(errno === 17 ? 'conflict' : 'unavailable', `${what}: ${message}${hint}`, { cause: err });
}

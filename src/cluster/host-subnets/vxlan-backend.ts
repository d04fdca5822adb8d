/**
 * The vxlan backend, as Flannel's today (no miss handling): one VXLAN device per host (`berth.1`,
 * VNI 1, Flannel's port 8472, learning off, the subnet's network address as a /32), and per peer
 * three entries programmed from the etcd watch: neighbour subnetIP → VtepMAC, FDB VtepMAC →
 * PublicIP, route subnet via subnetIP onlink (last).
 *
 * The VtepMAC derives from the host's PublicIP, so a restart or a reboot never changes it: peers
 * programmed with the old one would otherwise send into the void until the lease is rewritten
 * (Flannel's stale-VtepMAC bug, flannel#1036, #1795).
 */
import { createHash } from 'node:crypto';
import { HOST_SUBNETS_VXLAN_PREFIX, aliasPrefix } from '../../constants.js';
import { invalid } from '../../errors.js';
import { formatIpv4, parseCidr } from '../../ipam/ipv4.js';
import type { HostVxlanSpec, VxlanPeerEntry } from '../../kernel/ops-host-subnets.js';
import { VXLAN_OVERHEAD_IPV4 } from '../../kernel/netlink/vxlan.js';
import { pathsUnder } from '../../engine/context.js';
import type { HostSubnetBackend, LocalHost, PeerLease } from './backend.js';
import type { BackendDeps } from './backends.js';

export const HOST_VNI = 1;
/** Linux's default VXLAN port, and Flannel's: overlay networks use IANA's 4789, so the two never meet. */
export const HOST_VXLAN_PORT = 8472;
export const HOST_VXLAN_DEVICE = `${HOST_SUBNETS_VXLAN_PREFIX}${HOST_VNI}`;

/** A locally administered unicast MAC derived from the PublicIP. */
export function vtepMacOf(publicIp: string): string {
  const b = createHash('sha256').update(`berth vtep ${publicIp}`).digest().subarray(0, 6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** What the kernel needs for a peer; refuses a lease this backend cannot reach, naming it. */
export function vxlanEntryOf(peer: PeerLease): VxlanPeerEntry {
  const what = `host ${peer.publicIp} (subnet ${peer.subnet})`;
  if (peer.backendType !== 'vxlan') throw invalid(`${what} uses backend ${peer.backendType || 'unknown'}, not vxlan: every host of a cluster uses the backend in /coreos.com/network/config`);
  const mac = peer.backendData?.['VtepMAC'];
  const vni = peer.backendData?.['VNI'];
  if (typeof mac !== 'string' || !MAC.test(mac)) throw invalid(`${what} published no usable VtepMAC (${JSON.stringify(peer.backendData)})`);
  if (vni !== undefined && vni !== HOST_VNI) throw invalid(`${what} uses VNI ${String(vni)}, not ${HOST_VNI}`);
  const subnet = parseCidr(peer.subnet);
  return { subnet: subnet.text, gateway: formatIpv4(subnet.network), mac: mac.toLowerCase(), vtep: peer.publicIp };
}

export function createVxlanBackend({ kernel }: BackendDeps): HostSubnetBackend {
  let spec: HostVxlanSpec | undefined;
  let started = false;
  const ensure = async (): Promise<boolean> => (await kernel.call('ensureHostVxlan', spec!)).created;

  return {
    type: 'vxlan',
    mtu: (underlayMtu) => underlayMtu - VXLAN_OVERHEAD_IPV4,

    async start(local: LocalHost) {
      const mac = vtepMacOf(local.publicIp);
      spec = {
        name: HOST_VXLAN_DEVICE,
        mark: `${aliasPrefix(pathsUnder(local.root).owner, 'host-subnets')}vxlan`,
        vni: HOST_VNI,
        port: HOST_VXLAN_PORT,
        mac,
        local: local.publicIp,
        underlay: local.underlay.ifname,
        mtu: local.underlay.mtu - VXLAN_OVERHEAD_IPV4,
        address: formatIpv4(parseCidr(local.subnet).network),
      };
      await ensure();
      started = true;
      return { VNI: HOST_VNI, VtepMAC: mac };
    },

    async addPeer(peer) {
      await kernel.call('addVxlanPeer', { dev: HOST_VXLAN_DEVICE, peer: vxlanEntryOf(peer) });
    },

    async removePeer(peer) {
      const subnet = parseCidr(peer.subnet);
      const mac = peer.backendData?.['VtepMAC'];
      await kernel.call('removeVxlanEntries', { dev: HOST_VXLAN_DEVICE, routes: [subnet.text], neighbours: [formatIpv4(subnet.network)], macs: typeof mac === 'string' && MAC.test(mac) ? [mac.toLowerCase()] : [] });
    },

    async repair(peers) {
      if (!started) return [];
      const repaired: string[] = [];
      if (await ensure()) repaired.push(HOST_VXLAN_DEVICE);
      const now = await kernel.call('hostVxlanEntries', { dev: HOST_VXLAN_DEVICE });
      const wanted = new Map<string, VxlanPeerEntry>();
      for (const p of peers) {
        try {
          wanted.set(p.subnet, vxlanEntryOf(p));
        } catch {
          /* refused when it came; still refused */
        }
      }
      for (const e of wanted.values()) {
        const whole =
          now.neighbours.some((n) => n.ip === e.gateway && n.mac === e.mac) &&
          now.fdb.some((f) => f.mac === e.mac && f.vtep === e.vtep) &&
          now.routes.some((r) => r.subnet === e.subnet && r.gateway === e.gateway);
        if (whole) continue;
        await kernel.call('addVxlanPeer', { dev: HOST_VXLAN_DEVICE, peer: e });
        repaired.push(e.subnet);
      }
      // Entries of peers that are gone (their lease expired while this daemon was down).
      const macs = new Set([...wanted.values()].map((e) => e.mac));
      const gateways = new Set([...wanted.values()].map((e) => e.gateway));
      const stale = {
        routes: now.routes.filter((r) => !wanted.has(r.subnet)).map((r) => r.subnet),
        neighbours: now.neighbours.filter((n) => !gateways.has(n.ip)).map((n) => n.ip),
        macs: now.fdb.filter((f) => !macs.has(f.mac) && f.mac !== spec!.mac && f.vtep !== '0.0.0.0').map((f) => f.mac),
      };
      if (stale.routes.length + stale.neighbours.length + stale.macs.length > 0) {
        await kernel.call('removeVxlanEntries', { dev: HOST_VXLAN_DEVICE, ...stale });
        repaired.push(...[...stale.routes, ...stale.neighbours, ...stale.macs].map((x) => `-${x}`));
      }
      return repaired;
    },

    async stop({ remove }) {
      if (remove && spec) await kernel.call('deleteVxlan', { name: spec.name, mark: spec.mark });
      started = false;
    },
  };
}

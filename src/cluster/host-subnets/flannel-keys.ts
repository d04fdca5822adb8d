/**
 * Flannel's key layout and JSON in etcd, written exactly as Flannel writes them (flannel-io/flannel
 * pkg/subnet/etcd/registry.go, pkg/subnet/subnet.go), so tools that read Flannel's keys see berth's
 * hosts, and the subnet arithmetic of leasing (Flannel's SubnetMin/SubnetMax). Pure code.
 *
 *   /coreos.com/network/config                 {"Network":"10.5.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}
 *   /coreos.com/network/subnets/10.5.34.0-24   {"PublicIP":"…","PublicIPv6":null,"BackendType":"vxlan","BackendData":{…}}
 */
import { invalid } from '../../errors.js';
import { cidrFromAddress, cidrsOverlap, formatIpv4, parseCidr, type Cidr } from '../../ipam/ipv4.js';
import type { BackendType, PeerLease } from './backend.js';

export const PREFIX = '/coreos.com/network';
export const CONFIG_KEY = `${PREFIX}/config`;
export const SUBNETS = `${PREFIX}/subnets/`;

export const BACKEND_TYPES: readonly BackendType[] = ['vxlan', 'host-gw', 'udp'];

/** `10.5.34.0/24` → `/coreos.com/network/subnets/10.5.34.0-24` (Flannel's MakeSubnetKey). */
export function subnetKey(subnet: string): string {
  return `${SUBNETS}${subnet.replace('/', '-')}`;
}

/** The subnet a lease key names, or undefined for any other key (a dual-stack `…&v6` one included). */
export function subnetOfKey(key: string): string | undefined {
  if (!key.startsWith(SUBNETS)) return undefined;
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})-(\d{1,2})$/.exec(key.slice(SUBNETS.length));
  if (!m) return undefined;
  try {
    return parseCidr(`${m[1]}/${m[2]}`).text;
  } catch {
    return undefined;
  }
}

export interface NetworkConfig {
  network: string;
  subnetLen: number;
  backendType: string;
}

/** Flannel's config JSON; field order as Flannel's json.Marshal writes it. */
export function configJson(c: NetworkConfig): string {
  return JSON.stringify({ Network: c.network, SubnetLen: c.subnetLen, Backend: { Type: c.backendType } });
}

/**
 * Reads a config another host (or Flannel itself) wrote. SubnetLen is optional there (Flannel's
 * default is 24, or the network's prefix + 2 when the network is smaller than a /22).
 */
export function parseConfig(text: string): NetworkConfig {
  let raw: { Network?: unknown; SubnetLen?: unknown; Backend?: { Type?: unknown } };
  try {
    raw = JSON.parse(text);
  } catch {
    throw invalid(`the cluster store's ${CONFIG_KEY} is not JSON: ${text.slice(0, 100)}`);
  }
  if (typeof raw.Network !== 'string') throw invalid(`the cluster store's ${CONFIG_KEY} has no Network: ${text.slice(0, 100)}`);
  const network = parseCidr(raw.Network, `Network in ${CONFIG_KEY}`);
  const subnetLen = typeof raw.SubnetLen === 'number' && raw.SubnetLen > 0 ? raw.SubnetLen : network.prefix < 22 ? 24 : network.prefix + 2;
  const backendType = typeof raw.Backend?.Type === 'string' ? raw.Backend.Type : 'udp';
  return { network: network.text, subnetLen, backendType };
}

/** A lease's value as Flannel writes it (LeaseAttrs; no BackendV6Data on an IPv4-only lease). */
export function leaseJson(l: Omit<PeerLease, 'subnet'>): string {
  return JSON.stringify({ PublicIP: l.publicIp, PublicIPv6: null, BackendType: l.backendType, BackendData: l.backendData });
}

/** A lease read from etcd, or undefined when its value is not one (logged by the caller). */
export function parseLease(key: string, text: string): PeerLease | undefined {
  const subnet = subnetOfKey(key);
  if (!subnet) return undefined;
  try {
    const raw = JSON.parse(text) as { PublicIP?: unknown; BackendType?: unknown; BackendData?: unknown };
    if (typeof raw.PublicIP !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}$/.test(raw.PublicIP)) return undefined;
    const data = raw.BackendData && typeof raw.BackendData === 'object' ? (raw.BackendData as Record<string, unknown>) : null;
    return { subnet, publicIp: raw.PublicIP, backendType: typeof raw.BackendType === 'string' ? raw.BackendType : '', backendData: data };
  } catch {
    return undefined;
  }
}

/**
 * Checks the daemon's --cluster-cidr and --host-subnet-size: an IPv4 network with room for at
 * least one host subnet besides the first (Flannel never leases the subnet holding the network
 * address), and host subnets with room for a gateway and containers.
 */
export function checkClusterCidr(cidrText: string, size: number): Cidr {
  const cidr = parseCidr(cidrText, '--cluster-cidr');
  if (!Number.isInteger(size) || size < 8 || size > 28) throw invalid(`--host-subnet-size ${size} is out of range: use a prefix length from 8 to 28 (24 gives each host 254 addresses)`);
  if (size <= cidr.prefix) {
    throw invalid(`--cluster-cidr ${cidr.text} is too small for --host-subnet-size ${size}: each host leases a /${size} of it; use a shorter prefix than /${size} (e.g. /${Math.max(8, size - 8)}) or a longer --host-subnet-size`);
  }
  return cidr;
}

/** Every subnet a host may lease: Flannel's SubnetMin (the second subnet) to SubnetMax (the last). */
export function leasableSubnets(cidr: Cidr, size: number): Cidr[] {
  const count = 2 ** (size - cidr.prefix);
  const step = 2 ** (32 - size);
  const out: Cidr[] = [];
  for (let i = 1; i < count; i++) out.push(cidrFromAddress(cidr.network + i * step, size));
  return out;
}

/** The first address of a subnet: its gateway on the host's bridge. */
export function gatewayOf(subnet: Cidr): string {
  return formatIpv4(subnet.network + 1);
}

/** Free subnets: neither leased nor overlapping a route or address of the host. */
export function freeSubnets(cidr: Cidr, size: number, leased: ReadonlySet<string>, hostTaken: readonly Cidr[]): Cidr[] {
  return leasableSubnets(cidr, size).filter((s) => !leased.has(s.text) && !hostTaken.some((t) => cidrsOverlap(t, s)));
}

/* subnet.env: Flannel's local record of the lease, plus what berth needs to re-claim it */

export interface SubnetEnv {
  network: string;
  /** The host's subnet (`10.5.34.0/24`); the file holds its gateway form, `10.5.34.1/24`. */
  subnet: string;
  mtu: number;
  ipMasq: boolean;
  backend: string;
  /** The etcd lease the subnet's key rides on. */
  leaseId: string;
}

export function formatSubnetEnv(e: SubnetEnv): string {
  const s = parseCidr(e.subnet);
  return [
    `FLANNEL_NETWORK=${e.network}`,
    `FLANNEL_SUBNET=${gatewayOf(s)}/${s.prefix}`,
    `FLANNEL_MTU=${e.mtu}`,
    `FLANNEL_IPMASQ=${e.ipMasq}`,
    `BERTH_BACKEND=${e.backend}`,
    `BERTH_LEASE_ID=${e.leaseId}`,
    '',
  ].join('\n');
}

/** Reads subnet.env; undefined if it is missing a field berth needs (a first start, or a hand-edited file). */
export function parseSubnetEnv(text: string): SubnetEnv | undefined {
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) vars.set(m[1]!, m[2]!);
  }
  const gw = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(vars.get('FLANNEL_SUBNET') ?? '');
  const network = vars.get('FLANNEL_NETWORK');
  const leaseId = vars.get('BERTH_LEASE_ID');
  if (!gw || !network || !leaseId) return undefined;
  try {
    const ip = gw[1]!.split('.').reduce((n, p) => n * 256 + Number(p), 0);
    return {
      network,
      subnet: cidrFromAddress(ip, Number(gw[2])).text,
      mtu: Number(vars.get('FLANNEL_MTU') ?? 0),
      ipMasq: vars.get('FLANNEL_IPMASQ') === 'true',
      backend: vars.get('BERTH_BACKEND') ?? '',
      leaseId,
    };
  } catch {
    return undefined;
  }
}

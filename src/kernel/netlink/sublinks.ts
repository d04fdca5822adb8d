/**
 * RTM_NEWLINK requests for links stacked on a parent: macvlan, ipvlan and 802.1Q vlan.
 * Pure code like codec.ts. The bytes match what iproute2 6.1 sends for the equivalent
 * `ip link add link PARENT name NAME [mtu N] [address MAC] [netns NS] [up] type KIND ...`
 * (test/unit/kernel/sublinks.test.ts holds the captures), so a request that fails can be
 * replayed and compared with `ip` by hand. Constants follow linux/if_link.h.
 */
import { str, tlv, u16, u32 } from './tlv.js';
import { NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, RTM_NEWLINK, IFF_UP, macBytes, type NetlinkRequest } from './codec.js';

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINK = 5;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_MACVLAN_MODE = 1;
const IFLA_IPVLAN_MODE = 1;
const IFLA_IPVLAN_FLAGS = 2;
const IFLA_VLAN_ID = 1;

export const MACVLAN_MODES = { private: 1, vepa: 2, bridge: 4, passthru: 8 } as const;
export const IPVLAN_MODES = { l2: 0, l3: 1, l3s: 2 } as const;
export const IPVLAN_FLAGS = { bridge: 0, private: 1, vepa: 2 } as const;
export type MacvlanMode = keyof typeof MACVLAN_MODES;
export type IpvlanMode = keyof typeof IPVLAN_MODES;
export type IpvlanFlag = keyof typeof IPVLAN_FLAGS;

const VLAN_ID_MIN = 1;
const VLAN_ID_MAX = 4094;

/**
 * iproute2 sends IFLA_INFO_KIND without its terminating NUL (codec.ts includes it); the kernel
 * reads the kind by length, so both work, and this matches iproute2's bytes.
 */
const kindAttr = (kind: string) => tlv(IFLA_INFO_KIND, Buffer.from(kind));
/**
 * iproute2 nests IFLA_LINKINFO and IFLA_INFO_DATA without NLA_F_NESTED (codec.ts sets it); the
 * kernel parses both attributes leniently and accepts either, and leaving it off keeps our bytes
 * identical to iproute2's.
 */
const nest = (type: number, children: Buffer[]) => tlv(type, Buffer.concat(children));

export interface SublinkCommon {
  name: string;
  /** Index of the parent in the namespace the request is sent to. */
  parentIndex: number;
  mtu?: number;
  up?: boolean;
}

/**
 * Generic attributes first, in the order `ip` emits them for `mtu … address … netns …`, then
 * IFLA_LINK, IFLA_IFNAME and IFLA_LINKINFO, which iproute2 appends after parsing the command line.
 */
function newSublink(spec: SublinkCommon & { mac?: string; netnsFd?: number }, kind: string, data: Buffer[]): NetlinkRequest {
  const attrs: Buffer[] = [];
  if (spec.mtu) attrs.push(u32(IFLA_MTU, spec.mtu));
  if (spec.mac) attrs.push(tlv(IFLA_ADDRESS, macBytes(spec.mac)));
  if (spec.netnsFd !== undefined) attrs.push(u32(IFLA_NET_NS_FD, spec.netnsFd));
  attrs.push(
    u32(IFLA_LINK, spec.parentIndex),
    str(IFLA_IFNAME, spec.name),
    nest(IFLA_LINKINFO, [kindAttr(kind), nest(IFLA_INFO_DATA, data)]),
  );
  const up = spec.up ? IFF_UP : 0;
  const ifinfo = Buffer.alloc(16);
  ifinfo.writeUInt32LE(up, 8);
  ifinfo.writeUInt32LE(up, 12);
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    body: Buffer.concat([ifinfo, ...attrs]),
  };
}

function lookup<T extends Record<string, number>>(table: T, value: string, what: string): number {
  if (!Object.hasOwn(table, value)) {
    throw new Error(`unknown ${what} "${value}": expected one of ${Object.keys(table).join(', ')}`);
  }
  return table[value as keyof T];
}

export interface MacvlanSpec extends SublinkCommon {
  mode: MacvlanMode;
  mac?: string;
  /**
   * Namespace to create the link in (an open fd of it). The parent stays where it is and is
   * still named by its index in the sender's namespace; a macvlan may be created up there.
   */
  netnsFd?: number;
}

export function newMacvlan(spec: MacvlanSpec): NetlinkRequest {
  const mode = lookup(MACVLAN_MODES, spec.mode, 'macvlan mode');
  return newSublink(spec, 'macvlan', [u32(IFLA_MACVLAN_MODE, mode)]);
}

export interface IpvlanSpec extends SublinkCommon {
  mode: IpvlanMode;
  /** Defaults to bridge, which iproute2 also sends explicitly when no flag is given. */
  flag?: IpvlanFlag;
  netnsFd?: number;
}

export function newIpvlan(spec: IpvlanSpec): NetlinkRequest {
  const mode = lookup(IPVLAN_MODES, spec.mode, 'ipvlan mode');
  const flag = lookup(IPVLAN_FLAGS, spec.flag ?? 'bridge', 'ipvlan flag');
  return newSublink(spec, 'ipvlan', [u16(IFLA_IPVLAN_MODE, mode), u16(IFLA_IPVLAN_FLAGS, flag)]);
}

export interface VlanSpec extends SublinkCommon {
  vlanId: number;
}

/** An 802.1Q vlan; ids 0 and 4095 are reserved by the standard. */
export function newVlan(spec: VlanSpec): NetlinkRequest {
  if (!Number.isInteger(spec.vlanId) || spec.vlanId < VLAN_ID_MIN || spec.vlanId > VLAN_ID_MAX) {
    throw new Error(`vlan id ${spec.vlanId} is out of range: use an integer from ${VLAN_ID_MIN} to ${VLAN_ID_MAX}`);
  }
  return newSublink(spec, 'vlan', [u16(IFLA_VLAN_ID, spec.vlanId)]);
}

/**
 * rtnetlink route requests of host subnets: a route to another host's subnet, via its VXLAN
 * gateway (`onlink`: the gateway is not on any prefix of the device) or via its underlay address.
 * Each carries berth's own route protocol number, so berth can tell its peer routes from routes
 * someone else made to the same prefix (a reconcile removes only its own). Pure code like codec.ts.
 */
import { tlv, u32 } from './tlv.js';
import { NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, RTM_DELROUTE, RTM_NEWROUTE, ipv4Bytes, type NetlinkRequest } from './codec.js';

/**
 * The route protocol of berth's peer routes (`ip route show proto 0xb5`). Unassigned in
 * iproute2's rt_protos; Flannel uses the kernel's default (boot), so the two cannot be confused.
 */
export const RTPROT_BERTH = 0xb5;

const AF_INET = 2;
const RT_TABLE_MAIN = 254;
const RT_SCOPE_UNIVERSE = 0;
const RTN_UNICAST = 1;
const RTNH_F_ONLINK = 4;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;

function rtmsg(prefix: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(AF_INET, 0);
  b.writeUInt8(prefix, 1);
  b.writeUInt8(RT_TABLE_MAIN, 4);
  b.writeUInt8(RTPROT_BERTH, 5);
  b.writeUInt8(RT_SCOPE_UNIVERSE, 6);
  b.writeUInt8(RTN_UNICAST, 7);
  b.writeUInt32LE(flags, 8);
  return b;
}

export interface PeerRoute {
  dst: string;
  prefix: number;
  gateway: string;
  oifIndex: number;
  /** The gateway is reached on the device without a prefix covering it (VXLAN's `onlink`). */
  onlink?: boolean;
}

/** `ip route replace DST/PREFIX via GATEWAY dev OIF [onlink] proto 0xb5`. */
export function replacePeerRoute(r: PeerRoute): NetlinkRequest {
  return {
    type: RTM_NEWROUTE,
    flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
    body: Buffer.concat([rtmsg(r.prefix, r.onlink ? RTNH_F_ONLINK : 0), tlv(RTA_DST, ipv4Bytes(r.dst)), u32(RTA_OIF, r.oifIndex), tlv(RTA_GATEWAY, ipv4Bytes(r.gateway))]),
  };
}

/** Deletes berth's route to DST/PREFIX (the protocol must match: a route someone else made stays). */
export function deletePeerRoute(r: { dst: string; prefix: number }): NetlinkRequest {
  return { type: RTM_DELROUTE, flags: NLM_F_REQUEST | NLM_F_ACK, body: Buffer.concat([rtmsg(r.prefix, 0), tlv(RTA_DST, ipv4Bytes(r.dst))]) };
}

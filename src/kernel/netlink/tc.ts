/**
 * rtnetlink requests of traffic control, as far as berth needs them: a `clsact` qdisc on a link
 * and an eBPF classifier (cls_bpf, direct action) on its egress hook, as
 * `tc qdisc add dev D clsact; tc filter add dev D egress prio 1 handle 1 bpf da fd N name NAME`.
 * Pure code like codec.ts; constants follow linux/rtnetlink.h, linux/pkt_sched.h and
 * linux/pkt_cls.h.
 */
import { NLA_F_NESTED, str, tlv, u32 } from './tlv.js';
import { NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, parseAttrs, type NetlinkRequest } from './codec.js';

const RTM_NEWQDISC = 36;
const RTM_NEWTFILTER = 44;
const RTM_GETTFILTER = 46;
const TCA_KIND = 1;
const TCA_OPTIONS = 2;
const TCA_BPF_FD = 6;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
const TCA_BPF_ID = 11;
const TCA_BPF_FLAG_ACT_DIRECT = 1;

const TC_H_CLSACT = 0xfffffff1;
const TC_H_MIN_EGRESS = 0xfff3;
/** clsact's egress hook, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS). */
export const CLSACT_EGRESS = ((TC_H_CLSACT & 0xffff0000) | TC_H_MIN_EGRESS) >>> 0;
const CLSACT_HANDLE = 0xffff0000;
/** ETH_P_ALL in network byte order, as tcm_info's low 16 bits carry a filter's protocol. */
const ETH_P_ALL_BE = 0x0300;
const TCMSG_LEN = 20;


function tcmsg(ifindex: number, handle: number, parent: number, info = 0): Buffer {
  const b = Buffer.alloc(TCMSG_LEN);
  b.writeInt32LE(ifindex, 4);
  b.writeUInt32LE(handle >>> 0, 8);
  b.writeUInt32LE(parent >>> 0, 12);
  b.writeUInt32LE(info >>> 0, 16);
  return b;
}

/** The clsact qdisc (EEXIST if the link has it already). */
export function newClsact(ifindex: number): NetlinkRequest {
  return { type: RTM_NEWQDISC, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body: Buffer.concat([tcmsg(ifindex, CLSACT_HANDLE, TC_H_CLSACT), str(TCA_KIND, 'clsact')]) };
}

/**
 * The eBPF program `fd` as the link's egress classifier in direct-action mode (its return value is
 * the verdict), at priority `prio`, handle 1: replaces the one there, so a restore is one message.
 */
export function newEgressBpfFilter(spec: { ifindex: number; fd: number; name: string; prio: number }): NetlinkRequest {
  const options = tlv(TCA_OPTIONS | NLA_F_NESTED, Buffer.concat([u32(TCA_BPF_FD, spec.fd), str(TCA_BPF_NAME, spec.name), u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT)]));
  return {
    type: RTM_NEWTFILTER,
    flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
    body: Buffer.concat([tcmsg(spec.ifindex, 1, CLSACT_EGRESS, ((spec.prio << 16) | ETH_P_ALL_BE) >>> 0), str(TCA_KIND, 'bpf'), options]),
  };
}

/** The classifiers on a link's egress hook. */
export function dumpEgressFilters(ifindex: number): NetlinkRequest {
  return { type: RTM_GETTFILTER, flags: NLM_F_REQUEST | NLM_F_DUMP, body: tcmsg(ifindex, 0, CLSACT_EGRESS) };
}

export interface FilterInfo {
  ifindex: number;
  kind: string;
  /** A bpf classifier's name (TCA_BPF_NAME) and program id. */
  name?: string;
  programId?: number;
}

const cString = (b: Buffer) => b.toString('utf8', 0, b.indexOf(0) >= 0 ? b.indexOf(0) : b.length);

/** One classifier from a dump (the dump also lists each priority's chain head, with no options). */
export function parseFilter(body: Buffer): FilterInfo {
  const attrs = parseAttrs(body.subarray(TCMSG_LEN));
  const kind = attrs.get(TCA_KIND);
  const options = attrs.get(TCA_OPTIONS);
  const bpf = options ? parseAttrs(options) : undefined;
  const name = bpf?.get(TCA_BPF_NAME);
  return { ifindex: body.readInt32LE(4), kind: kind ? cString(kind) : '', name: name ? cString(name) : undefined, programId: bpf?.get(TCA_BPF_ID)?.readUInt32LE(0) };
}

/**
 * nf_tables set elements on the wire (pure): the NEWSETELEM and DELSETELEM messages berth sends
 * for a change of a few elements, in one nfnetlink batch, which the kernel applies as one
 * transaction. libnftables (nft.ts) parses a script and first reads the cache of every table on
 * the host, berth's and everyone else's: 0.3 ms per change beside berth's own ruleset here, 1.8 ms
 * beside 3,000 rules of another table (a Docker or Kubernetes host has more). A batch of
 * elements costs the same whatever else the host holds. Layouts follow
 * linux/netfilter/nfnetlink.h, linux/netfilter/nf_tables.h and libnftnl's udata.
 */
import { ipv6Bytes, parseIpv6 } from '../../ipam/ipv6.js';
import { NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST, encodeMessage, ipv4Bytes } from './codec.js';
import { nest, str, tlv } from './tlv.js';

export const NETLINK_NETFILTER = 12;
const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_DELSETELEM = 14;

const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_LIST_ELEM = 1;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_DATA = 2;
const NFTA_SET_ELEM_USERDATA = 6;
const NFTA_DATA_VALUE = 1;
/** libnftnl's udata type for an element's comment (what `nft list` shows as `comment "…"`). */
const NFTNL_UDATA_SET_ELEM_COMMENT = 0;
/** nft refuses longer comments; the kernel would take them. */
export const MAX_COMMENT = 128;

/** nfgen_family: the table's family. */
export const NFPROTO = { ip: 2, ip6: 10, bridge: 7, inet: 1 } as const;
export type NftFamily = keyof typeof NFPROTO;

/** One field of a concatenated key or value, in the set's own type. */
export type Field = { ipv4: string } | { ipv6: string } | { proto: 'tcp' | 'udp' } | { port: number };

const PROTO_NUMBER = { tcp: 6, udp: 17 } as const;

function fieldBytes(f: Field): Buffer {
  if ('ipv4' in f) return ipv4Bytes(f.ipv4);
  if ('ipv6' in f) return ipv6Bytes(parseIpv6(f.ipv6));
  if ('proto' in f) return Buffer.from([PROTO_NUMBER[f.proto]]);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(f.port);
  return b;
}

/**
 * A concatenation (`inet_proto . inet_service`): each field in network byte order, starting a new
 * 32-bit register, zero-padded to it, as nft lays a key out for the kernel.
 */
export function concat(fields: readonly Field[]): Buffer {
  return Buffer.concat(
    fields.map((f) => {
      const raw = fieldBytes(f);
      const slot = Buffer.alloc((raw.length + 3) & ~3);
      raw.copy(slot);
      return slot;
    }),
  );
}

/** libnftnl's user data for an element: its comment, NUL-terminated, as one type-length-value. */
export function commentUserdata(comment: string): Buffer {
  const text = Buffer.from(`${comment}\0`);
  if (text.length > MAX_COMMENT) throw new Error(`element comment longer than ${MAX_COMMENT - 1} bytes: ${comment}`);
  return Buffer.concat([Buffer.from([NFTNL_UDATA_SET_ELEM_COMMENT, text.length]), text]);
}

export interface SetElement {
  key: readonly Field[];
  /** A map element's value. */
  data?: readonly Field[];
  /** Its owner, shown by `nft list` (adds only). */
  comment?: string;
}

/** Elements added to or deleted from one set of one table. */
export interface SetElementChange {
  op: 'add' | 'delete';
  family: NftFamily;
  table: string;
  set: string;
  elements: readonly SetElement[];
}

/**
 * One change per set and operation, in the order each first appears: a message per element would
 * cost an ACK each (a container publishing a range of 1,000 ports is 2,000 elements). Callers put
 * every delete before every add, so a key deleted and added again keeps that order.
 */
export function groupBySet(changes: readonly SetElementChange[]): SetElementChange[] {
  const groups = new Map<string, SetElementChange & { elements: SetElement[] }>();
  for (const c of changes) {
    const key = `${c.op}\n${c.family}\n${c.table}\n${c.set}`;
    const g = groups.get(key);
    if (g) g.elements.push(...c.elements);
    else groups.set(key, { ...c, elements: [...c.elements] });
  }
  return [...groups.values()];
}

function nfgenmsg(family: number, resId: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt8(family, 0);
  b.writeUInt8(0, 1); // NFNETLINK_V0
  b.writeUInt16BE(resId, 2);
  return b;
}

const message = (type: number, flags: number, seq: number, body: Buffer) => encodeMessage({ type, flags, body }, seq);

function elementAttrs(e: SetElement, op: SetElementChange['op']): Buffer {
  const attrs = [nest(NFTA_SET_ELEM_KEY, [tlv(NFTA_DATA_VALUE, concat(e.key))])];
  // A delete names the key only, as `nft delete element` does.
  if (op === 'add' && e.data) attrs.push(nest(NFTA_SET_ELEM_DATA, [tlv(NFTA_DATA_VALUE, concat(e.data))]));
  if (op === 'add' && e.comment !== undefined) attrs.push(tlv(NFTA_SET_ELEM_USERDATA, commentUserdata(e.comment)));
  return nest(NFTA_LIST_ELEM, attrs);
}

/** A nested attribute's length is 16 bits: a set's elements go in messages of at most this much. */
const MAX_ELEMENTS_BYTES = 60_000;

/**
 * The batch for `changes`, applied in order as one transaction: begin, the changes' messages (each
 * asking for an ACK, numbered from `firstSeq` + 1; a change with more elements than one attribute
 * holds takes several), end. Adds are `add element` (no error for an element already there as
 * is); deleting an element that is not there fails the whole batch. `messages` says which change
 * each numbered message carries.
 */
export function setElementsBatch(changes: readonly SetElementChange[], firstSeq: number): { bytes: Buffer; messages: { seq: number; change: SetElementChange }[] } {
  const batchHeader = nfgenmsg(0, NFNL_SUBSYS_NFTABLES);
  const parts = [message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, firstSeq, batchHeader)];
  const messages: { seq: number; change: SetElementChange }[] = [];
  for (const c of changes) {
    const type = (NFNL_SUBSYS_NFTABLES << 8) | (c.op === 'add' ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
    const flags = NLM_F_REQUEST | NLM_F_ACK | (c.op === 'add' ? NLM_F_CREATE : 0);
    const send = (elements: Buffer[]) => {
      const seq = firstSeq + 1 + messages.length;
      const body = Buffer.concat([nfgenmsg(NFPROTO[c.family], 0), str(NFTA_SET_ELEM_LIST_TABLE, c.table), str(NFTA_SET_ELEM_LIST_SET, c.set), nest(NFTA_SET_ELEM_LIST_ELEMENTS, elements)]);
      parts.push(message(type, flags, seq, body));
      messages.push({ seq, change: c });
    };
    let chunk: Buffer[] = [];
    let size = 0;
    for (const e of c.elements) {
      const encoded = elementAttrs(e, c.op);
      if (size + encoded.length > MAX_ELEMENTS_BYTES && chunk.length > 0) {
        send(chunk);
        chunk = [];
        size = 0;
      }
      chunk.push(encoded);
      size += encoded.length;
    }
    if (chunk.length > 0) send(chunk);
  }
  parts.push(message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, firstSeq + messages.length + 1, batchHeader));
  return { bytes: Buffer.concat(parts), messages };
}

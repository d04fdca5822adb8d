/**
 * Kernel operations of the path tracer (issue 15): read-only looks at what berth built, in the host
 * namespace or inside a container's. Nothing here changes the kernel; the tracer's temporary
 * nftables table goes through the `nft` operation like every other nftables change.
 */
import * as fs from 'node:fs';
import * as nl from './netlink/codec.js';
import { NetlinkSocket } from './netlink/socket.js';
import { host } from './link-steps.js';
import { withNetns } from './netns.js';
import { NftContext } from './nft.js';

const RTM_GETNEIGH = 30;
const AF_BRIDGE = 7;
const IFF_LOWER_UP = 0x10000;
const RTA_DST = 1;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const NDA_MASTER = 9;
const ENETUNREACH = 101;
const EHOSTUNREACH = 113;

/** Route types (rtm_type) the tracer tells apart. */
const ROUTE_TYPES: Record<number, string> = { 1: 'unicast', 2: 'local', 3: 'broadcast', 6: 'blackhole', 7: 'unreachable', 8: 'prohibit' };

/** Neighbour states (ndm_state), as `ip neigh` names them. */
const NUD: [number, string][] = [
  [0x01, 'INCOMPLETE'],
  [0x02, 'REACHABLE'],
  [0x04, 'STALE'],
  [0x08, 'DELAY'],
  [0x10, 'PROBE'],
  [0x20, 'FAILED'],
  [0x40, 'NOARP'],
  [0x80, 'PERMANENT'],
];

/** Runs a look in the host namespace, or in the namespace at `netnsPath` with a socket made there. */
function inNamespace<T>(netnsPath: string | undefined, fn: (sock: NetlinkSocket) => T): T {
  if (!netnsPath) return fn(host());
  return withNetns(netnsPath, () => {
    const sock = new NetlinkSocket();
    try {
      return fn(sock);
    } finally {
      sock.close();
    }
  });
}

export interface TraceLink {
  index: number;
  name: string;
  up: boolean;
  /** IFF_LOWER_UP: the link has carrier (a veth whose peer is up). */
  carrier: boolean;
  mtu?: number;
  mac?: string;
  master?: number;
  kind?: string;
}

function links(sock: NetlinkSocket): TraceLink[] {
  return sock.dump(nl.dumpLinks(), 'list links').map((m) => {
    const l = nl.parseLink(m.body);
    return { index: l.index, name: l.name, up: l.up, carrier: (l.flags & IFF_LOWER_UP) !== 0, mtu: l.mtu, mac: l.mac, master: l.master, kind: l.kind };
  });
}

/** The links of a namespace with their state and MTU. */
export function traceLinks(spec: { netnsPath?: string }): TraceLink[] {
  if (spec.netnsPath && !fs.existsSync(spec.netnsPath)) throw new Error(`network namespace ${spec.netnsPath} is gone`);
  return inNamespace(spec.netnsPath, links);
}

export type TraceRoute =
  | { ok: true; type: string; dst: string; gateway?: string; oif?: number; oifName?: string; prefsrc?: string }
  | { ok: false; errno: number; error: string };

/** `ip route get DST` (RTM_GETROUTE): the route the kernel would take for `dst`, in the given namespace. */
export function traceRoute(spec: { netnsPath?: string; dst: string }): TraceRoute {
  return inNamespace(spec.netnsPath, (sock) => {
    const family = nl.familyOf(spec.dst);
    const bytes = family === nl.FAMILY_INET ? nl.ipv4Bytes(spec.dst) : ipv6Bytes(spec.dst);
    const rtm = Buffer.alloc(12);
    rtm.writeUInt8(family, 0);
    rtm.writeUInt8(bytes.length * 8, 1);
    const attr = Buffer.alloc(4 + ((bytes.length + 3) & ~3));
    attr.writeUInt16LE(4 + bytes.length, 0);
    attr.writeUInt16LE(RTA_DST, 2);
    bytes.copy(attr, 4);
    let reply: nl.Message | undefined;
    try {
      [[reply]] = sock.transact([{ type: nl.RTM_GETROUTE, flags: nl.NLM_F_REQUEST, body: Buffer.concat([rtm, attr]) }], [`route get ${spec.dst}`]) as [[nl.Message | undefined]];
    } catch (err) {
      const errno = (err as { errno?: number }).errno ?? 0;
      if (errno === ENETUNREACH || errno === EHOSTUNREACH) return { ok: false, errno, error: errno === ENETUNREACH ? 'network is unreachable' : 'no route to host' };
      throw err;
    }
    if (!reply) return { ok: false, errno: 0, error: 'the kernel gave no route' };
    const route = nl.parseRoute(reply.body);
    const type = ROUTE_TYPES[reply.body.readUInt8(7)] ?? `type ${reply.body.readUInt8(7)}`;
    const oifName = route?.oif !== undefined ? links(sock).find((l) => l.index === route.oif)?.name : undefined;
    return { ok: true, type, dst: spec.dst, gateway: route?.gateway, oif: route?.oif, oifName, prefsrc: route?.prefsrc };
  });
}

function ipv6Bytes(ip: string): Buffer {
  const [head, tail] = ip.includes('::') ? (ip.split('::') as [string, string]) : [ip, undefined];
  const groups = (s: string) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function stateName(state: number): string {
  return NUD.filter(([bit]) => state & bit).map(([, name]) => name).join(',') || 'NONE';
}

export interface TraceNeighbour {
  index: number;
  ip?: string;
  mac?: string;
  state: string;
  /** Bridge FDB entries: the bridge the port belongs to; VXLAN entries: the remote VTEP. */
  master?: number;
  remote?: string;
}

function neighbourDump(sock: NetlinkSocket, family: number): TraceNeighbour[] {
  const req = Buffer.alloc(12);
  req.writeUInt8(family, 0);
  return sock.dump({ type: RTM_GETNEIGH, flags: nl.NLM_F_REQUEST | nl.NLM_F_DUMP, body: req }, 'list neighbours').map((m) => {
    const attrs = nl.parseAttrs(m.body.subarray(12));
    const dst = attrs.get(NDA_DST);
    const ll = attrs.get(NDA_LLADDR);
    const ip = dst?.length === 4 ? [...dst].join('.') : dst?.length === 16 ? [...Array(8).keys()].map((i) => dst.readUInt16BE(i * 2).toString(16)).join(':') : undefined;
    return {
      index: m.body.readInt32LE(4),
      state: stateName(m.body.readUInt16LE(8)),
      ...(ll?.length === 6 && { mac: [...ll].map((x) => x.toString(16).padStart(2, '0')).join(':') }),
      ...(family === AF_BRIDGE ? { ...(ip && { remote: ip }), ...(attrs.get(NDA_MASTER) && { master: attrs.get(NDA_MASTER)!.readUInt32LE(0) }) } : { ...(ip && { ip }) }),
    };
  });
}

/** The neighbour (ARP / NDP) entries of a namespace for `ip`, on any interface. */
export function traceNeighbours(spec: { netnsPath?: string; ip: string }): TraceNeighbour[] {
  const family = nl.familyOf(spec.ip);
  return inNamespace(spec.netnsPath, (sock) => neighbourDump(sock, family).filter((n) => n.ip === spec.ip || (family === nl.FAMILY_INET6 && n.ip !== undefined && sameIpv6(n.ip, spec.ip))));
}

function sameIpv6(a: string, b: string): boolean {
  return ipv6Bytes(a).equals(ipv6Bytes(b));
}

/** The host's bridge forwarding entries for `mac`: a bridge's own (master) and a VXLAN device's (its remote VTEP). */
export function traceFdb(spec: { mac: string }): TraceNeighbour[] {
  const mac = spec.mac.toLowerCase();
  return neighbourDump(host(), AF_BRIDGE).filter((n) => n.mac === mac);
}

/**
 * Sockets listening on (TCP) or bound to (UDP) `port` inside a namespace, from
 * /proc/thread-self/net: this thread's view follows the namespace it entered.
 */
export function traceListeners(spec: { netnsPath?: string; protocol: 'tcp' | 'udp'; port: number }): string[] {
  const read = () =>
    ['', '6'].flatMap((v) => {
      let text: string;
      try {
        text = fs.readFileSync(`/proc/thread-self/net/${spec.protocol}${v}`, 'utf8');
      } catch {
        return [];
      }
      return text
        .split('\n')
        .slice(1)
        .map((line) => line.trim().split(/\s+/))
        .filter((f) => f.length > 3 && (spec.protocol === 'udp' || f[3] === '0A'))
        .map((f) => f[1]!)
        .filter((local) => parseInt(local.split(':')[1]!, 16) === spec.port)
        .map((local) => procAddress(local.split(':')[0]!));
    });
  return spec.netnsPath ? withNetns(spec.netnsPath, read) : read();
}

/** /proc/net/tcp's hex address (host byte order on little-endian machines). */
function procAddress(hex: string): string {
  if (hex.length === 8) return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
  const words = [0, 8, 16, 24].map((i) => hex.slice(i, i + 8).match(/../g)!.reverse().join(''));
  return words.join('').match(/.{4}/g)!.map((g) => parseInt(g, 16).toString(16)).join(':');
}

let jsonNft: NftContext | undefined;

/** An nftables `list …` command in the host namespace, answered as JSON (read-only: nothing else is run). */
export function traceNftList(spec: { command: string }): unknown {
  if (!/^list (chain|table|ruleset)\b[\w\s.-]*$/.test(spec.command)) throw new Error(`not a list command: ${spec.command}`);
  jsonNft ??= new NftContext(true);
  return JSON.parse(jsonNft.run(spec.command) || '{}');
}

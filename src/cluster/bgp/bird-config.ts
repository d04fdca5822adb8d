/**
 * BIRD's configuration, written from berth's state (pure: tested with golden text). As Calico's
 * confd writes it: each of this host's blocks is a blackhole route in a static protocol, and only
 * those are exported over BGP, so peers learn one prefix per block while the /32 routes to the
 * containers (more specific, and never in BIRD) win on the host itself. Hosts of a cluster peer in
 * a full iBGP mesh (same ASN); `--bgp-peer` routers are peered with as given.
 *
 * Routes learned over BGP go into the kernel's main table with protocol `bird`: BIRD's kernel
 * protocol only ever touches routes it put there, and they persist while BIRD restarts. BIRD
 * binds to the host's underlay address only (strict bind), never to every address.
 */
import { invalid } from '../../errors.js';

export interface BgpPeer {
  address: string;
  asn: number;
}

export interface BirdConfigInput {
  /** This host's underlay address: BIRD's router id and the only address it listens on. */
  routerId: string;
  asn: number;
  /** The other hosts of the cluster (iBGP, this host's ASN). */
  mesh: readonly string[];
  /** Routers and other speakers the user named (--bgp-peer). */
  peers: readonly BgpPeer[];
  /** The prefixes this host advertises: its blocks of routed networks (or a host-local pool). */
  advertise: readonly string[];
}

/** Hold time and keepalive (s): a dead peer's routes go within HOLD, not the default 240 s. */
export const HOLD_SECONDS = 9;
export const KEEPALIVE_SECONDS = 3;
/** How long peers keep this host's routes while BIRD restarts (a daemon restart). */
export const GRACEFUL_RESTART_SECONDS = 60;

/** The kernel route protocol number BIRD marks its routes with (RTPROT_BIRD). */
export const RTPROT_BIRD = 12;

export const protocolName = (kind: 'mesh' | 'peer', address: string) => `${kind}_${address.replaceAll('.', '_')}`;

export function birdConfig(input: BirdConfigInput): string {
  const peerAddresses = new Set(input.peers.map((p) => p.address));
  const mesh = [...new Set(input.mesh)].filter((a) => a !== input.routerId && !peerAddresses.has(a)).sort();
  const blocks = [...new Set(input.advertise)].sort();
  const lines = [
    '# Written by berth from its cluster state; every change is applied with `birdc configure`. Do not edit.',
    `router id ${input.routerId};`,
    'log stderr { info, remote, warning, error, auth, fatal, bug };',
    '# After a restart, the kernel table is synced once peers resent their routes, or after this.',
    'graceful restart wait 10;',
    '',
    'protocol device {}',
    '',
    '# Learned routes into the main table (protocol bird); kept there while BIRD restarts.',
    'protocol kernel berth_kernel {',
    '  ipv4 { import none; export filter { if source = RTS_BGP then accept; if proto = "berth_blocks" then accept; reject; }; };',
    '  persist;',
    '  graceful restart;',
    '}',
    '',
    "# This host's blocks: blackholes beneath the containers' /32 routes, advertised as they are.",
    'protocol static berth_blocks {',
    '  ipv4;',
    ...blocks.map((b) => `  route ${b} blackhole;`),
    '}',
    '',
    'template bgp berth_peer {',
    `  local ${input.routerId} as ${input.asn};`,
    '  strict bind yes;',
    '  direct;',
    `  hold time ${HOLD_SECONDS};`,
    `  keepalive time ${KEEPALIVE_SECONDS};`,
    '  connect retry time 2;',
    '  graceful restart on;',
    `  graceful restart time ${GRACEFUL_RESTART_SECONDS};`,
    '  ipv4 { import all; export where proto = "berth_blocks"; next hop self; gateway direct; };',
    '}',
  ];
  for (const a of mesh) lines.push('', `protocol bgp ${protocolName('mesh', a)} from berth_peer { neighbor ${a} as ${input.asn}; }`);
  for (const p of [...input.peers].sort((x, y) => x.address.localeCompare(y.address))) {
    lines.push('', `protocol bgp ${protocolName('peer', p.address)} from berth_peer { neighbor ${p.address} as ${p.asn}; }`);
  }
  return `${lines.join('\n')}\n`;
}

/** One BGP session as `birdc show protocols` reports it. */
export interface BgpSession {
  name: string;
  kind: 'mesh' | 'peer';
  address: string;
  /** BIRD's state: up, start, down… */
  state: string;
  /** `Established`, `Active`, `Connect`, and the last error if any. */
  info: string;
}

/** Parses `birdc show protocols` into the BGP sessions (berth's own names only). */
export function parseProtocols(text: string): BgpSession[] {
  const out: BgpSession[] = [];
  for (const line of text.split('\n')) {
    const m = /^(mesh|peer)_(\d+)_(\d+)_(\d+)_(\d+)\s+BGP\s+\S+\s+(\S+)\s+\S+(?:\s+(.*))?$/.exec(line.trim());
    if (!m) continue;
    out.push({ name: `${m[1]}_${m[2]}_${m[3]}_${m[4]}_${m[5]}`, kind: m[1] as 'mesh' | 'peer', address: `${m[2]}.${m[3]}.${m[4]}.${m[5]}`, state: m[6]!, info: (m[7] ?? '').trim() });
  }
  return out;
}

/** A `--bgp-asn` value: 1 to 4294967294 (4-byte ASNs), but not AS_TRANS (23456) nor 65535. */
export function parseAsn(text: string, what = '--bgp-asn'): number {
  const n = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 4294967294) || n === 65535 || n === 23456) {
    throw invalid(`${what} ${text} is not a usable AS number: give a whole number from 1 to 4294967294 other than 23456 and 65535 (private ones: 64512-65534, 4200000000-4294967294)`);
  }
  return n;
}

/** A `--bgp-peer IP:ASN` value. */
export function parsePeer(text: string): BgpPeer {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\S+)$/.exec(text);
  if (!m || m[1]!.split('.').some((o) => Number(o) > 255)) throw invalid(`--bgp-peer ${text} is not IP:ASN: give the router's IPv4 address and its AS number, e.g. 192.168.90.1:65000`);
  return { address: m[1]!, asn: parseAsn(m[2]!, `--bgp-peer ${text}: AS number`) };
}

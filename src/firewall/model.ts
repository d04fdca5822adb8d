/**
 * The firewall's input: what the engine wants, in the few facts the rules need. The engine derives
 * it from the store; the ruleset builder turns it into nftables text. Values arrive as strings from
 * the store, so this module also checks and normalises them: every value ends up spliced into nft
 * text, and a malformed one must fail here, loudly, rather than as an nft syntax error in the
 * middle of a transaction, or worse, as a rule that means something else.
 */
import { invalid } from '../errors.js';
import * as ipam from '../ipam/ipv4.js';
import type { Cidr } from '../ipam/ipv4.js';
import * as ipv6 from '../ipam/ipv6.js';
import type { Cidr6 } from '../ipam/ipv6.js';

export interface FirewallNetwork {
  id: string;
  /**
   * The network's interface on the host: its bridge (a Linux interface name, at most 15 bytes), or
   * for a network with one host link per container (ptp) a name prefix ending in `*` that matches
   * all of them.
   */
  bridge: string;
  /** IPv4 CIDR, e.g. `10.77.0.0/24`, and gateway; absent on an IPv6-only network. */
  subnet?: string;
  gateway?: string;
  /** IPv6 CIDR of a dual-stack or IPv6-only network, e.g. `fd00:1::/64`: its rules go to table `ip6 berth`. */
  subnet6?: string;
  gateway6?: string;
  /** Internal networks cannot leave the host and get no published ports. */
  internal: boolean;
  /** Inter-container communication on the same bridge; false drops container-to-container traffic. */
  icc: boolean;
  /** NAT outbound traffic to the address of the interface it leaves through. */
  masquerade: boolean;
  /**
   * IPv4 CIDRs this network exchanges traffic with un-NATed, new connections accepted both ways
   * (a fan network's overlay: the other hosts' slices).
   */
  routedPeers?: string[];
}

export interface PublishedPort {
  containerId: string;
  protocol: 'tcp' | 'udp';
  /** Host address the port is published on; `0.0.0.0` means every IPv4 host address, `::` every IPv6 one. */
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

/** Where a network's embedded resolver listens (the port is chosen at run time, not 53). */
export interface DnsListener {
  networkId: string;
  bridge: string;
  /** The network's gateway address, which containers use as their nameserver. */
  address: string;
  port: number;
}

/** The host end of a container's veth on an `icc=false` network. */
export interface IccOffPort {
  containerId: string;
  port: string;
}

export interface FirewallState {
  networks: FirewallNetwork[];
  ports: PublishedPort[];
  dns?: DnsListener[];
  iccOffPorts?: IccOffPort[];
}

/** The wildcard host address of a published port. */
export const ANY_HOST_IP = '0.0.0.0';
/** The IPv6 wildcard: the port on every IPv6 address of the host. */
export const ANY_HOST_IP6 = '::';

/** A network whose fields have been checked, with its subnets in canonical form. */
export interface CheckedNetwork extends FirewallNetwork {
  prefix?: Cidr;
  prefix6?: Cidr6;
}

/** True if `ip` (either family, canonical) lies in one of the network's subnets. */
export function networkHolds(n: CheckedNetwork, ip: string): boolean {
  if (ip.includes(':')) return n.prefix6 !== undefined && ipv6.cidr6Contains(n.prefix6, ipv6.parseIpv6(ip));
  const v4 = parseIpv4(ip);
  return v4 !== undefined && n.prefix !== undefined && ipam.cidrContains(n.prefix, v4);
}

/** Canonical IPv6 text, or undefined when malformed. */
function parseIpv6Text(text: string): string | undefined {
  try {
    return ipv6.canonicalIpv6(text);
  } catch {
    return undefined;
  }
}

/** An IPv6 container subnet: a ULA or global prefix, never link-local, multicast or loopback. */
function parseSubnet6(text: string, what: string): Cidr6 {
  let cidr: Cidr6;
  try {
    const slash = text.indexOf('/');
    const ip = ipv6.parseIpv6(text.slice(0, slash));
    cidr = ipv6.cidr6FromAddress(ip, Number(text.slice(slash + 1)));
    if (slash < 0 || !/^\d{1,3}$/.test(text.slice(slash + 1)) || cidr.prefix < 1 || cidr.prefix > 128) throw new Error('bad');
  } catch {
    throw invalid(`${what}: subnet "${text}" is not an IPv6 CIDR such as fd00:77::/64`);
  }
  if (ipv6.isSpecialIpv6(cidr.network) || cidr.prefix < 8) throw invalid(`${what}: IPv6 subnet ${cidr.text} is link-local, multicast, loopback or too wide; pick a ULA prefix`);
  return cidr;
}

// Ids end up in nft element comments ("network <id>"), which are quoted and at most 128 bytes.
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
// Stricter than Linux (which allows nearly any byte): the name is spliced into quoted nft strings.
const IFNAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
/** An interface name, or a prefix of one followed by `*` (nft matches it as a wildcard). */
const IFACE_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$|^[A-Za-z0-9_][A-Za-z0-9_.-]{0,13}\*$/;

/** Dotted-quad IPv4 as a number, or undefined when malformed (the caller words the error). */
export function parseIpv4(text: string): number | undefined {
  try {
    return ipam.parseIpv4(text);
  } catch {
    return undefined;
  }
}

const LOOPBACK = ipam.cidrFromAddress(0x7f000000, 8);
const MULTICAST = ipam.cidrFromAddress(0xe0000000, 4);

/** Parses `a.b.c.d/n`; host bits are cleared, since nft wants the network address of an interval. */
function parseSubnet(text: string, what: string): Cidr {
  const slash = text.indexOf('/');
  const address = slash < 0 ? undefined : parseIpv4(text.slice(0, slash));
  const lengthText = slash < 0 ? '' : text.slice(slash + 1);
  const length = /^\d{1,2}$/.test(lengthText) ? Number(lengthText) : NaN;
  if (address === undefined || !(length >= 1 && length <= 32)) {
    throw invalid(`${what}: subnet "${text}" is not an IPv4 CIDR such as 10.77.0.0/24`);
  }
  const prefix = ipam.cidrFromAddress(address, length);
  // A container subnet inside 127/8 would defeat the loopback guard; one spanning multicast
  // would masquerade multicast. /0 would masquerade the whole host's traffic.
  if (ipam.cidrsOverlap(prefix, LOOPBACK) || ipam.cidrsOverlap(prefix, MULTICAST)) {
    throw invalid(`${what}: subnet ${prefix.text} overlaps loopback or multicast space; pick a private range`);
  }
  return prefix;
}

function checkId(id: string, what: string): void {
  if (!ID_PATTERN.test(id)) {
    throw invalid(`${what}: id "${id}" must be 1-100 characters of letters, digits, "_", "." or "-"`);
  }
}

function checkPortNumber(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid(`${what} ${port} is not a port number between 1 and 65535`);
  }
}

/** Checks a network and returns it with its subnet canonical; throws BerthError('invalid'). */
export function checkNetwork(net: FirewallNetwork): CheckedNetwork {
  checkId(net.id, 'network');
  const what = `network ${net.id}`;
  if (!IFACE_PATTERN.test(net.bridge) || net.bridge === 'lo') {
    throw invalid(`${what}: interface "${net.bridge}" must be 1-15 characters of letters, digits, "_", "." or "-" (or a prefix of one and "*")`);
  }
  if (net.subnet === undefined && net.subnet6 === undefined) throw invalid(`${what}: no subnet of either family`);
  let checked: CheckedNetwork = { ...net };
  if (net.subnet !== undefined) {
    const prefix = parseSubnet(net.subnet, what);
    const gateway = parseIpv4(net.gateway ?? '');
    if (gateway === undefined || !ipam.cidrContains(prefix, gateway)) {
      throw invalid(`${what}: gateway "${net.gateway}" is not an IPv4 address inside ${prefix.text}`);
    }
    checked = { ...checked, subnet: prefix.text, gateway: ipam.formatIpv4(gateway), prefix };
  }
  if (net.subnet6 === undefined) return checked;
  const prefix6 = parseSubnet6(net.subnet6, what);
  const gateway6 = net.gateway6 === undefined ? undefined : parseIpv6Text(net.gateway6);
  if (net.gateway6 !== undefined && (gateway6 === undefined || !ipv6.cidr6Contains(prefix6, ipv6.parseIpv6(gateway6)))) {
    throw invalid(`${what}: IPv6 gateway "${net.gateway6}" is not an IPv6 address inside ${prefix6.text}`);
  }
  return { ...checked, subnet6: prefix6.text, prefix6, ...(gateway6 && { gateway6 }) };
}

/** Checks a published port and returns it with its addresses canonical; throws BerthError('invalid'). */
export function checkPublishedPort(port: PublishedPort): PublishedPort {
  checkId(port.containerId, 'container');
  const what = `port of container ${port.containerId}`;
  if (port.protocol !== 'tcp' && port.protocol !== 'udp') {
    throw invalid(`${what}: protocol "${String(port.protocol)}" must be tcp or udp`);
  }
  checkPortNumber(port.hostPort, `${what}: host port`);
  checkPortNumber(port.containerPort, `${what}: container port`);
  if (port.hostIp.includes(':') || port.containerIp.includes(':')) return checkPublishedPort6(port, what);
  const hostIp = parseIpv4(port.hostIp);
  if (hostIp === undefined) {
    throw invalid(`${what}: host address "${port.hostIp}" is not IPv4 (use ${ANY_HOST_IP} for every address)`);
  }
  const containerIp = parseIpv4(port.containerIp);
  if (containerIp === undefined || containerIp === 0 || ipam.cidrContains(LOOPBACK, containerIp)) {
    throw invalid(`${what}: container address "${port.containerIp}" is not a usable IPv4 address`);
  }
  return { ...port, hostIp: ipam.formatIpv4(hostIp), containerIp: ipam.formatIpv4(containerIp) };
}

/** The IPv6 twin: both addresses IPv6 (nft's IPv6 DNAT cannot reach an IPv4 container). */
function checkPublishedPort6(port: PublishedPort, what: string): PublishedPort {
  const hostIp = parseIpv6Text(port.hostIp);
  if (hostIp === undefined) throw invalid(`${what}: host address "${port.hostIp}" is not IPv6 while its container address ${port.containerIp} is (use ${ANY_HOST_IP6} for every address)`);
  const containerIp = parseIpv6Text(port.containerIp);
  if (containerIp === undefined || containerIp === '::' || containerIp === '::1') {
    throw invalid(`${what}: container address "${port.containerIp}" is not a usable IPv6 address (the host address ${hostIp} is IPv6)`);
  }
  return { ...port, hostIp, containerIp };
}

/** Checks a resolver listener; throws BerthError('invalid'). */
export function checkDnsListener(l: DnsListener): DnsListener {
  checkId(l.networkId, 'network');
  const what = `DNS resolver of network ${l.networkId}`;
  if (!IFACE_PATTERN.test(l.bridge)) throw invalid(`${what}: interface "${l.bridge}" is not an interface name or prefix`);
  checkPortNumber(l.port, `${what}: port`);
  // An IPv6-only network's resolver listens on its IPv6 gateway.
  if (l.address.includes(':')) {
    const address6 = parseIpv6Text(l.address);
    if (address6 === undefined) throw invalid(`${what}: address "${l.address}" is not an IP address`);
    return { ...l, address: address6 };
  }
  const address = parseIpv4(l.address);
  if (address === undefined) throw invalid(`${what}: address "${l.address}" is not IPv4`);
  return { ...l, address: ipam.formatIpv4(address) };
}

export function checkIccOffPort(p: IccOffPort): IccOffPort {
  checkId(p.containerId, 'container');
  if (!IFNAME_PATTERN.test(p.port)) throw invalid(`container ${p.containerId}: port name "${p.port}" is not an interface name`);
  return p;
}

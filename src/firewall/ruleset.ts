/**
 * Pure builder of berth's nftables ruleset: desired state in, `nft -f` text out. The applier sends
 * the text to libnftables in one transaction; nothing here touches the kernel.
 *
 * Shape of the design:
 * - The rules are fixed. Every fact about a network or a published port is an element of a named
 *   set or map (see names.ts), so adding a network or a port is a few element adds, and a packet's
 *   lookup costs the same with 1 or 10,000 ports (Docker and CNI portmap add rules per port).
 * - `buildRuleset` makes berth's tables match the state in one transaction that works whether or
 *   not the tables exist: `add` creates what is missing (and is a no-op otherwise), then `flush`
 *   empties berth's own chains, sets and maps and everything is added back. The tables are never
 *   deleted, so conntrack entries and NAT bindings of live connections survive a reload, and the
 *   user's chain is never flushed.
 * - `networkElements` / `portElements` are the incremental path: element adds or deletes only.
 *   nft rejects deleting an element that is absent (and nft 1.0.6 has no `destroy`), so a delete
 *   script must be applied only for an object whose add was applied.
 */
import { conflict, invalid } from '../errors.js';
import { cidrsOverlap } from '../ipam/ipv4.js';
import { cidrs6Overlap } from '../ipam/ipv6.js';
import { BindingIndex } from './port-clash.js';
import type { Field, SetElementChange } from '../kernel/netlink/nftables.js';
import type { DeclaredSet } from './legacy-sets.js';
import {
  ANY_HOST_IP,
  ANY_HOST_IP6,
  checkDnsListener,
  checkIccOffPort,
  checkNetwork,
  checkPublishedPort,
  networkHolds,
  type CheckedNetwork,
  type DnsListener,
  type FirewallNetwork,
  type IccOffPort,
  type FirewallState,
  type PublishedPort,
} from './model.js';
import {
  BRIDGE_CHAINS,
  BRIDGE_FAMILY,
  BRIDGE_SETS,
  DOCKER_BRIDGES,
  FORWARD_MARK,
  IP_CHAINS,
  IP_FAMILY,
  IP6_FAMILY,
  IP_SETS,
  TABLE,
  type TableFamily,
} from './names.js';

export type ElementOp = 'add' | 'delete';

/** How berth declares its sets and maps in `ip berth` and `ip6 berth` (to find ones an older berth declared otherwise). */
export function declaredSets(): DeclaredSet[] {
  return SETS.filter((s) => s.family === IP_FAMILY || s.family === IP6_FAMILY).map((s) => ({ family: s.family, name: s.name, type: s.type.split(' : ')[0]!, interval: s.interval }));
}

interface RuleSpec {
  /** Why the rule exists; written above it in the generated script. */
  why: string;
  rule: string;
}

interface ChainSpec {
  family: TableFamily;
  name: string;
  /** Base chain declaration (`type … hook … priority …; policy …;`); absent for regular chains. */
  base?: string;
  /** False for the user's chain: created when missing, never flushed. */
  owned: boolean;
  why: string;
  rules: RuleSpec[];
}

interface SetSpec {
  family: TableFamily;
  name: string;
  kind: 'set' | 'map';
  type: string;
  interval: boolean;
  /** Each element carries a packet and byte counter (accounting for the metrics). */
  counter?: boolean;
}

/** Packets and bytes of one counted element, carried over a rebuild (see buildRuleset). */
export interface ElementCounter {
  packets: number;
  bytes: number;
}

/** How a counted element is named in `BuildOptions.counters`: family, set and key as nft text. */
export function counterKey(family: TableFamily, set: string, key: string): string {
  return `${family} ${set} ${key}`;
}

/** One element of a berth set or map, as nft text. */
interface Element {
  family: TableFamily;
  set: string;
  key: string;
  value?: string;
  /** Owner of the element, visible in `nft list`, so a reconciler can tell whose it is. */
  comment: string;
}

const LOOPBACK_NET = '127.0.0.0/8';

/**
 * The sets and maps of `ip berth` and of its IPv6 twin `ip6 berth` (only dual-stack and IPv6-only
 * networks have elements there): the same names and shapes, with the family's address type.
 */
function familySets(family: typeof IP_FAMILY | typeof IP6_FAMILY, addr: 'ipv4_addr' | 'ipv6_addr'): SetSpec[] {
  const set = (name: string, type: string, interval: boolean, counter?: true): SetSpec => ({ family, name, kind: 'set', type, interval, ...(counter && { counter }) });
  const map = (name: string, type: string, interval: boolean): SetSpec => ({ family, name, kind: 'map', type, interval });
  return [
    set(IP_SETS.bridges, 'ifname . ifname', true),
    set(IP_SETS.sameBridge, 'ifname . ifname', true),
    set(IP_SETS.containerSubnets, addr, true),
    set(IP_SETS.masqSubnets, addr, true),
    set(IP_SETS.internalBridges, 'ifname . ifname', true),
    set(IP_SETS.iccOffBridges, 'ifname . ifname', true),
    map(IP_SETS.dnatAny, `inet_proto . inet_service : ${addr} . inet_service`, false),
    map(IP_SETS.dnatIp, `${addr} . inet_proto . inet_service : ${addr} . inet_service`, false),
    // The resolver listens on the IPv4 gateway, or on the IPv6 one of an IPv6-only network.
    map(IP_SETS.dnsRedirect, `ifname . ${addr} : inet_service`, true),
    set(IP_SETS.dnsSockets, `${addr} . inet_service`, false),
    set(IP_SETS.dnsClients, `ifname . ${addr} . inet_service`, true),
    // Per-element counters for the metrics (see the accounting rules below).
    set(IP_SETS.trafficFromNetwork, 'ifname . ifname', true, true),
    set(IP_SETS.trafficToNetwork, 'ifname . ifname', true, true),
    set(IP_SETS.portTrafficAny, 'inet_proto . inet_service', false, true),
    set(IP_SETS.portTrafficIp, `${addr} . inet_proto . inet_service`, false, true),
  ];
}

const SETS: readonly SetSpec[] = [
  ...familySets(IP_FAMILY, 'ipv4_addr'),
  ...familySets(IP6_FAMILY, 'ipv6_addr'),
  { family: IP_FAMILY, name: IP_SETS.routedPeers, kind: 'set', type: 'ipv4_addr . ipv4_addr', interval: true },
  { family: BRIDGE_FAMILY, name: BRIDGE_SETS.iccOffSubnets, kind: 'set', type: 'ipv4_addr', interval: true },
  { family: BRIDGE_FAMILY, name: BRIDGE_SETS.iccOffPorts, kind: 'set', type: 'ifname', interval: false },
];

const C = IP_CHAINS;
const S = IP_SETS;

/*
 * Accounting rules: a lookup with no verdict, so every packet goes on, and the matching element's
 * counter counts it. The port rules key on conntrack's original tuple (what the client asked
 * for), so both directions of a published port's connections count, after DNAT rewrote them.
 */
const COUNT_FROM_NETWORK: RuleSpec = {
  why: "Counts every packet arriving from a network's containers, per network (the metrics); no verdict.",
  rule: `iifname . iifname @${S.trafficFromNetwork}`,
};
const COUNT_TO_NETWORK: RuleSpec = {
  why: "Counts every packet the host sends into a network (forwarded or its own), per network; no verdict.",
  rule: `oifname . oifname @${S.trafficToNetwork}`,
};
function countPorts(daddr: 'ip' | 'ip6'): RuleSpec[] {
  // `meta l4proto { tcp, udp }` gives nft the protocol context `ct original proto-dst` needs.
  const dnat = 'meta l4proto { tcp, udp } ct status dnat';
  return [
    { why: 'Counts forwarded packets of connections to ports published on every address, per port, both ways.', rule: `${dnat} meta l4proto . ct original proto-dst @${S.portTrafficAny}` },
    { why: 'The same for ports published on one host address.', rule: `${dnat} ct original ${daddr} daddr . meta l4proto . ct original proto-dst @${S.portTrafficIp}` },
  ];
}

/**
 * The chains of `ip6 berth`: those of `ip berth` that carry over to IPv6, with the same names, so
 * a dual-stack network is judged the same way in both families. raw-prerouting only counts, without
 * the loopback guard: the kernel itself drops ::1 arriving on any interface but lo (IPv6 has no route_localnet). The
 * resolver listens on the IPv4 gateway, or on the IPv6 one of an IPv6-only network: the DNS redirect
 * and input rules carry over for those. For the same reason as raw-prerouting a
 * port published on [::1] is reachable from nowhere (the host's own connection is DNAT'd, but the
 * reply, un-NATed to ::1, arrives on the bridge and the kernel drops it; Docker serves [::1] with
 * its userland proxy): no ::1 masquerade rule, as ip berth has for 127.0.0.1.
 */
const CHAINS6: readonly ChainSpec[] = [
  {
    family: IP6_FAMILY,
    name: C.rawPrerouting,
    base: 'type filter hook prerouting priority raw; policy accept;',
    owned: true,
    why: 'Accounting only (no guard: the kernel drops ::1 from outside lo by itself), before NAT, as in ip berth.',
    rules: [COUNT_FROM_NETWORK],
  },
  {
    family: IP6_FAMILY,
    name: C.natPrerouting,
    base: 'type nat hook prerouting priority dstnat; policy accept;',
    owned: true,
    why: 'IPv6 published ports, for packets that arrive on an interface.',
    rules: [
      { why: "Publish only on the host's own addresses; traffic routed through the host to others is untouched.", rule: `fib daddr type local jump ${C.publishedPorts}` },
      {
        why: "An IPv6-only network's containers ask its IPv6 gateway on port 53: redirected to the resolver's own port, as in ip berth.",
        rule: `meta l4proto { tcp, udp } th dport 53 redirect to : iifname . ip6 daddr map @${S.dnsRedirect}`,
      },
    ],
  },
  {
    family: IP6_FAMILY,
    name: C.natOutput,
    base: 'type nat hook output priority -100; policy accept;',
    owned: true,
    why: 'IPv6 published ports, for connections the host opens itself.',
    rules: [{ why: 'The host reaches published ports on its own addresses, ::1 included.', rule: `fib daddr type local jump ${C.publishedPorts}` }],
  },
  {
    family: IP6_FAMILY,
    name: C.publishedPorts,
    owned: true,
    why: 'One hash lookup per map, whatever the number of published ports; a miss falls through.',
    rules: [
      { why: 'Ports bound to one host address match only that destination address.', rule: `dnat ip6 to ip6 daddr . meta l4proto . th dport map @${S.dnatIp}` },
      { why: 'Ports bound to :: match every local IPv6 address.', rule: `dnat ip6 to meta l4proto . th dport map @${S.dnatAny}` },
    ],
  },
  {
    family: IP6_FAMILY,
    name: C.natPostrouting,
    base: 'type nat hook postrouting priority srcnat; policy accept;',
    owned: true,
    why: 'Source NAT (NAT66, as Docker ≥ 27 does by default). A LAN peer reaching a published port keeps its own address.',
    rules: [
      {
        why: 'Hairpin: a container reaching a published port via a host address may land on its own bridge; masquerading brings the reply back through the host.',
        rule: `oifname . oifname @${S.bridges} ct status dnat ip6 saddr @${S.containerSubnets} masquerade`,
      },
      { why: 'Containers reach beyond the host through the address of the interface they leave by.', rule: `oifname . oifname != @${S.bridges} ip6 saddr @${S.masqSubnets} masquerade` },
    ],
  },
  {
    family: IP6_FAMILY,
    name: C.forwardMark,
    base: 'type filter hook forward priority -1; policy accept;',
    owned: true,
    why: 'Marks the IPv6 traffic berth judges, as in ip berth (Docker judges its own bridges); counts published ports.',
    rules: [
      { why: 'Into a berth bridge.', rule: `oifname . oifname @${S.bridges} meta mark set meta mark | ${hex(FORWARD_MARK)}` },
      { why: "Out of a berth bridge, except into Docker's bridges.", rule: `iifname . iifname @${S.bridges} ${DOCKER_BRIDGES.map((b) => `oifname != "${b}"`).join(' ')} meta mark set meta mark | ${hex(FORWARD_MARK)}` },
      ...countPorts('ip6'),
    ],
  },
  {
    family: IP6_FAMILY,
    name: C.forward,
    base: 'type filter hook forward priority filter; policy accept;',
    owned: true,
    why: "Policy accept: berth judges only IPv6 traffic into or out of its dual-stack bridges, by ip berth's rules.",
    rules: [
      { why: "The user's IPv6 policy comes first (this table's own user-forward chain).", rule: `jump ${C.userForward}` },
      { why: 'Internal networks cannot leave their bridge.', rule: `iifname . iifname @${S.internalBridges} iifname . oifname != @${S.sameBridge} drop` },
      { why: 'icc=false holds through the host too (hairpin via a host address).', rule: `iifname . iifname @${S.iccOffBridges} iifname . oifname @${S.sameBridge} drop` },
      { why: 'Replies to connections containers opened, and related ICMPv6 errors.', rule: `oifname . oifname @${S.bridges} ct state established,related accept` },
      { why: 'Published ports, after DNAT.', rule: `oifname . oifname @${S.bridges} ct status dnat accept` },
      { why: 'Containers of one network talk to each other (only seen here with br_netfilter).', rule: `iifname . oifname @${S.sameBridge} accept` },
      { why: 'Nothing else enters a berth bridge: networks are isolated, and a LAN peer cannot reach container addresses directly.', rule: `oifname . oifname @${S.bridges} drop` },
    ],
  },
  {
    family: IP6_FAMILY,
    name: C.input,
    base: 'type filter hook input priority filter; policy accept;',
    owned: true,
    why: "Policy accept: only berth's resolver sockets on IPv6 gateways are judged here.",
    rules: [
      {
        why: 'A resolver answers only containers of its own network, as in ip berth.',
        rule: `meta l4proto { tcp, udp } ip6 daddr . th dport @${S.dnsSockets} iifname . ip6 daddr . th dport != @${S.dnsClients} drop`,
      },
    ],
  },
  {
    family: IP6_FAMILY,
    name: C.filterPostrouting,
    base: 'type filter hook postrouting priority filter; policy accept;',
    owned: true,
    why: 'Keeps IPv6 published-port traffic out of internal networks, forwarded or from the host.',
    rules: [COUNT_TO_NETWORK, { why: 'Internal networks get no published ports.', rule: `oifname . oifname @${S.internalBridges} ct status dnat ct direction original drop` }],
  },
  {
    family: IP6_FAMILY,
    name: C.userForward,
    owned: false,
    why: "The user's IPv6 policy; berth creates it when missing and never flushes it (see USER_CHAIN_POLICY).",
    rules: [],
  },
];

/*
 * The rules. Order within a chain matters: the first terminal verdict wins. Chain priorities are
 * numeric where nft 1.0.6 has no name for them (`dstnat` is refused on the output hook).
 */
const CHAINS: readonly ChainSpec[] = [
  {
    family: IP_FAMILY,
    name: C.rawPrerouting,
    base: 'type filter hook prerouting priority raw; policy accept;',
    owned: true,
    why: 'Runs before conntrack and NAT, so it sees addresses as the sender wrote them.',
    rules: [
      COUNT_FROM_NETWORK,
      {
        why:
          'Loopback addresses are host-only. berth sets route_localnet=1 on its bridges (host -> 127.0.0.1:PORT ' +
          'needs it), so the kernel no longer drops 127/8 from containers as martians; and Docker 20.10 DNATed ' +
          '127.0.0.1 sent by a LAN peer. Only lo may carry them.',
        rule: `iifname != "lo" ip daddr ${LOOPBACK_NET} drop`,
      },
      {
        why: 'route_localnet=1 also lets a container spoof a loopback source; no real container packet has one.',
        rule: `iifname . iifname @${S.bridges} ip saddr ${LOOPBACK_NET} drop`,
      },
    ],
  },
  {
    family: IP_FAMILY,
    name: C.natPrerouting,
    base: 'type nat hook prerouting priority dstnat; policy accept;',
    owned: true,
    why: 'Published ports, for packets that arrive on an interface.',
    rules: [
      {
        why: 'Never DNAT 127/8 arriving from outside, so a port bound to 127.0.0.1 stays reachable from the host only.',
        rule: `ip daddr ${LOOPBACK_NET} return`,
      },
      {
        why: "Publish only on the host's own addresses; traffic routed through the host to others is untouched.",
        rule: `fib daddr type local jump ${C.publishedPorts}`,
      },
      {
        why:
          "Containers ask their gateway on port 53; the network's resolver listens on a port of its own, so a " +
          "host DNS server on *:53 keeps its port, and only queries arriving on the network's own bridge for its " +
          'own gateway are redirected (a map miss leaves the packet alone).',
        rule: `meta l4proto { tcp, udp } th dport 53 redirect to : iifname . ip daddr map @${S.dnsRedirect}`,
      },
    ],
  },
  {
    family: IP_FAMILY,
    name: C.natOutput,
    base: 'type nat hook output priority -100; policy accept;',
    owned: true,
    why: 'Published ports, for connections the host opens itself (they never pass prerouting).',
    rules: [
      {
        why: "The host reaches published ports on its own addresses, 127.0.0.1 included.",
        rule: `fib daddr type local jump ${C.publishedPorts}`,
      },
    ],
  },
  {
    family: IP_FAMILY,
    name: C.publishedPorts,
    owned: true,
    why: 'One hash lookup per map, whatever the number of published ports; a miss falls through.',
    rules: [
      {
        why: 'Ports bound to one host address match only that destination address.',
        rule: `dnat ip to ip daddr . meta l4proto . th dport map @${S.dnatIp}`,
      },
      {
        why: 'Ports bound to 0.0.0.0 match every local address.',
        rule: `dnat ip to meta l4proto . th dport map @${S.dnatAny}`,
      },
    ],
  },
  {
    family: IP_FAMILY,
    name: C.natPostrouting,
    base: 'type nat hook postrouting priority srcnat; policy accept;',
    owned: true,
    why: 'Source NAT. A LAN peer reaching a published port matches none of these and keeps its own address.',
    rules: [
      {
        why:
          'Hairpin: a container reaching a published port via a host address may land on its own bridge, and ' +
          "the reply would then bypass the host's conntrack; masquerading makes the reply come back through it.",
        rule: `oifname . oifname @${S.bridges} ct status dnat ip saddr @${S.containerSubnets} masquerade`,
      },
      {
        why: 'Host -> 127.0.0.1:PORT after DNAT still has a loopback source, which a container cannot answer.',
        rule: `oifname . oifname @${S.bridges} ip saddr ${LOOPBACK_NET} masquerade`,
      },
      {
        why: "Other hosts' container subnets (a cluster's, a fan's) are reached un-NATed, so the receiver sees the sender's address.",
        rule: `ip saddr . ip daddr @${S.routedPeers} return`,
      },
      {
        why: 'Containers reach beyond the host through the address of the interface they leave by.',
        rule: `oifname . oifname != @${S.bridges} ip saddr @${S.masqSubnets} masquerade`,
      },
    ],
  },
  {
    family: IP_FAMILY,
    name: C.forwardMark,
    base: 'type filter hook forward priority -1; policy accept;',
    owned: true,
    why:
      "Runs before every filter-priority forward chain, Docker's included: marks the traffic berth judges, " +
      'so that one rule in DOCKER-USER lets it past the DROP policy Docker gives its FORWARD chain.',
    rules: [
      {
        why: 'Into a berth bridge: published ports and replies (berth drops the rest in its forward chain).',
        rule: `oifname . oifname @${S.bridges} meta mark set meta mark | ${hex(FORWARD_MARK)}`,
      },
      {
        why: "Out of a berth bridge, except into Docker's bridges, whose containers Docker alone decides about.",
        rule: `iifname . iifname @${S.bridges} ${DOCKER_BRIDGES.map((b) => `oifname != "${b}"`).join(' ')} meta mark set meta mark | ${hex(FORWARD_MARK)}`,
      },
      // This chain has no verdicts, so every forwarded packet reaches these lookups.
      ...countPorts('ip'),
    ],
  },
  {
    family: IP_FAMILY,
    name: C.forward,
    base: 'type filter hook forward priority filter; policy accept;',
    owned: true,
    why:
      "Policy accept: berth judges only traffic into or out of its bridges and never breaks the host's other " +
      'traffic. Same-bridge traffic reaches this hook only when br_netfilter is active.',
    rules: [
      {
        why: "The user's policy comes first, for all forwarded traffic including published ports.",
        rule: `jump ${C.userForward}`,
      },
      {
        why: 'Internal networks cannot leave their bridge.',
        rule: `iifname . iifname @${S.internalBridges} iifname . oifname != @${S.sameBridge} drop`,
      },
      {
        why:
          'icc=false: containers of the network cannot reach each other through the host either (hairpin via ' +
          'a host address is routed here). With br_netfilter active such a DNAT to the same bridge is bridged ' +
          'instead, and bridge berth drops it, so icc=false means the same in both cases.',
        rule: `iifname . iifname @${S.iccOffBridges} iifname . oifname @${S.sameBridge} drop`,
      },
      {
        why: 'Replies to connections containers opened, and related ICMP errors.',
        rule: `oifname . oifname @${S.bridges} ct state established,related accept`,
      },
      {
        why: 'Published ports: from the LAN, and from containers of any network (hairpin) after DNAT.',
        rule: `oifname . oifname @${S.bridges} ct status dnat accept`,
      },
      {
        why: 'Containers of one network talk to each other (only seen here with br_netfilter; icc=false is above).',
        rule: `iifname . oifname @${S.sameBridge} accept`,
      },
      {
        why: "Containers on other hosts of a cluster or fan open connections to this host's containers, routed, not published.",
        rule: `oifname . oifname @${S.bridges} ip daddr . ip saddr @${S.routedPeers} accept`,
      },
      {
        why:
          'Nothing else enters a berth bridge: networks are isolated from each other, and a LAN peer cannot ' +
          'reach container addresses directly.',
        rule: `oifname . oifname @${S.bridges} drop`,
      },
    ],
  },
  {
    family: IP_FAMILY,
    name: C.input,
    base: 'type filter hook input priority filter; policy accept;',
    owned: true,
    why: "Policy accept: only berth's resolver sockets are judged here.",
    rules: [
      {
        why:
          'A resolver answers only containers of its own network: a LAN peer that routes the gateway address to ' +
          'the host, the host itself, or a container of another network gets nothing (no name or PTR leaks, no ' +
          'open resolver or reflector).',
        rule: `meta l4proto { tcp, udp } ip daddr . th dport @${S.dnsSockets} iifname . ip daddr . th dport != @${S.dnsClients} drop`,
      },
    ],
  },
  {
    family: IP_FAMILY,
    name: C.filterPostrouting,
    base: 'type filter hook postrouting priority filter; policy accept;',
    owned: true,
    why:
      'Sees forwarded and host-originated packets with their final output interface (the output hook ' +
      'still reports the pre-DNAT route, e.g. lo for 127.0.0.1).',
    rules: [
      COUNT_TO_NETWORK,
      {
        why:
          'Internal networks get no published ports: not from the LAN, the host, or hairpin on their own bridge. ' +
          "Only the original direction: the resolver's replies to redirected queries carry dnat status too.",
        rule: `oifname . oifname @${S.internalBridges} ct status dnat ct direction original drop`,
      },
    ],
  },
  {
    family: IP_FAMILY,
    name: C.userForward,
    owned: false,
    why: "The user's policy; berth creates it when missing and never flushes it (see USER_CHAIN_POLICY).",
    rules: [],
  },
  {
    family: BRIDGE_FAMILY,
    name: BRIDGE_CHAINS.forward,
    base: 'type filter hook forward priority filter; policy accept;',
    owned: true,
    why:
      'The bridge forward hook sees only frames between two ports of one bridge: traffic to the gateway ' +
      "goes through the bridge's input hook and routed published-port traffic through its output hook, so " +
      'both stay untouched. This works with or without br_netfilter (which, when active, bridges a DNAT to ' +
      'the same bridge through this hook).',
    rules: [
      {
        why:
          'icc=false: containers of the network cannot reach each other, directly or (with br_netfilter) via a ' +
          'published port. ARP still passes, as with Docker.',
        rule: `ip daddr @${BRIDGE_SETS.iccOffSubnets} drop`,
      },
      {
        why:
          'icc=false below IPv4: between their containers nothing but IPv4 and ARP passes, so neither IPv6 (global, ' +
          "or link-local, which has no subnet to match) nor any other protocol bypasses the rule above. A dual-stack " +
          "container's neighbour discovery with its gateway is unaffected: that goes to the bridge, not between ports.",
        rule: `iifname @${BRIDGE_SETS.iccOffPorts} meta protocol != { ip, arp } drop`,
      },
    ],
  },
];

const FAMILIES: readonly TableFamily[] = [IP_FAMILY, IP6_FAMILY, BRIDGE_FAMILY];
const ALL_CHAINS: readonly ChainSpec[] = [...CHAINS, ...CHAINS6];

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** Comment lines of at most ~100 columns, so the generated script reads well in a terminal. */
function commentLines(text: string): string[] {
  const lines: string[] = [];
  let line = '#';
  for (const word of text.split(' ')) {
    if (line.length + 1 + word.length > 100 && line !== '#') {
      lines.push(line);
      line = '#';
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines;
}

/**
 * Every drop counts what it dropped: `berth trace` names the rule that dropped its probe and how
 * many packets it has dropped since the ruleset was loaded (one counter per drop rule, not per flow).
 */
function counted(rule: string): string {
  return rule.endsWith(' drop') ? `${rule.slice(0, -' drop'.length)} counter drop` : rule;
}

function quote(name: string): string {
  return `"${name}"`;
}

/** The elements that represent one network. */
function networkElementList(net: CheckedNetwork): Element[] {
  const comment = `network ${net.id}`;
  const bridge = quote(net.bridge);
  const out: Element[] = net.subnet ? network4ElementList(net.subnet, net, bridge, comment) : [];
  if (net.subnet6) out.push(...network6ElementList(net, bridge, comment));
  return out;
}

/** The IPv4 side of a network, in `ip berth` (and its icc=false subnet in `bridge berth`). */
function network4ElementList(subnet: string, net: CheckedNetwork, bridge: string, comment: string): Element[] {
  const pair = `${bridge} . ${bridge}`;
  const out: Element[] = [
    { family: IP_FAMILY, set: S.bridges, key: pair, comment },
    { family: IP_FAMILY, set: S.sameBridge, key: pair, comment },
    { family: IP_FAMILY, set: S.containerSubnets, key: subnet, comment },
    { family: IP_FAMILY, set: S.trafficFromNetwork, key: pair, comment },
    { family: IP_FAMILY, set: S.trafficToNetwork, key: pair, comment },
  ];
  // Internal networks never leave the host, so there is nothing to masquerade.
  if (net.masquerade && !net.internal) out.push({ family: IP_FAMILY, set: S.masqSubnets, key: subnet, comment });
  if (net.internal) out.push({ family: IP_FAMILY, set: S.internalBridges, key: pair, comment });
  else for (const peer of net.routedPeers ?? []) out.push({ family: IP_FAMILY, set: S.routedPeers, key: `${subnet} . ${peer}`, comment });
  if (!net.icc) {
    out.push({ family: IP_FAMILY, set: S.iccOffBridges, key: pair, comment });
    out.push({ family: BRIDGE_FAMILY, set: BRIDGE_SETS.iccOffSubnets, key: subnet, comment });
  }
  return out;
}

/** The IPv6 side of a dual-stack network, in `ip6 berth`. */
function network6ElementList(net: CheckedNetwork, bridge: string, comment: string): Element[] {
  const pair = `${bridge} . ${bridge}`;
  const out: Element[] = [
    { family: IP6_FAMILY, set: S.bridges, key: pair, comment },
    { family: IP6_FAMILY, set: S.sameBridge, key: pair, comment },
    { family: IP6_FAMILY, set: S.containerSubnets, key: net.subnet6!, comment },
    { family: IP6_FAMILY, set: S.trafficFromNetwork, key: pair, comment },
    { family: IP6_FAMILY, set: S.trafficToNetwork, key: pair, comment },
  ];
  if (net.masquerade && !net.internal) out.push({ family: IP6_FAMILY, set: S.masqSubnets, key: net.subnet6!, comment });
  if (net.internal) out.push({ family: IP6_FAMILY, set: S.internalBridges, key: pair, comment });
  if (!net.icc) out.push({ family: IP6_FAMILY, set: S.iccOffBridges, key: pair, comment });
  return out;
}

/**
 * The two elements of one published port, its DNAT map element and its counter, under the same
 * key, as typed fields: rendered as nft text for a ruleset (portElementList) and as bytes for the
 * kernel (portElementChanges), from this one decision.
 */
function portElementParts(port: PublishedPort) {
  const v6 = port.containerIp.includes(':');
  const addr = (ip: string): Field => (v6 ? { ipv6: ip } : { ipv4: ip });
  const anyHost = port.hostIp === ANY_HOST_IP || port.hostIp === ANY_HOST_IP6;
  const service: Field[] = [{ proto: port.protocol }, { port: port.hostPort }];
  const family: TableFamily = v6 ? IP6_FAMILY : IP_FAMILY;
  return {
    family,
    dnat: anyHost ? S.dnatAny : S.dnatIp,
    counted: anyHost ? S.portTrafficAny : S.portTrafficIp,
    key: anyHost ? service : [addr(port.hostIp), ...service],
    value: [addr(port.containerIp), { port: port.containerPort }],
    comment: `container ${port.containerId}`,
  };
}

/** A concatenation as nft writes it: `tcp . 8080`. */
const fieldsText = (fields: readonly Field[]) =>
  fields.map((f) => ('ipv4' in f ? f.ipv4 : 'ipv6' in f ? f.ipv6 : 'proto' in f ? f.proto : String(f.port))).join(' . ');

function portElementList(port: PublishedPort): Element[] {
  const { family, dnat, counted, key, value, comment } = portElementParts(port);
  return [
    { family, set: dnat, key: fieldsText(key), value: fieldsText(value), comment },
    { family, set: counted, key: fieldsText(key), comment },
  ];
}

/** The three elements of one network's resolver: the redirect, the socket, and who may reach it. */
function dnsElementList(l: DnsListener): Element[] {
  const comment = `network ${l.networkId}`;
  const bridge = quote(l.bridge);
  const family = l.address.includes(':') ? IP6_FAMILY : IP_FAMILY;
  return [
    { family, set: S.dnsRedirect, key: `${bridge} . ${l.address}`, value: String(l.port), comment },
    { family, set: S.dnsSockets, key: `${l.address} . ${l.port}`, comment },
    { family, set: S.dnsClients, key: `${bridge} . ${l.address} . ${l.port}`, comment },
  ];
}

function iccOffPortElement(p: IccOffPort): Element {
  return { family: BRIDGE_FAMILY, set: BRIDGE_SETS.iccOffPorts, key: quote(p.port), comment: `container ${p.containerId}` };
}

function elementText(e: Element, counters?: ReadonlyMap<string, ElementCounter>): string {
  // An element added without `counter` gets a zeroed one from its set; a rebuild states the
  // values read just before it, so a reload does not reset what the metrics report.
  const kept = counters?.get(counterKey(e.family, e.set, e.key));
  const counter = kept ? ` counter packets ${kept.packets} bytes ${kept.bytes}` : '';
  return `${e.key}${counter} comment ${quote(e.comment)}${e.value === undefined ? '' : ` : ${e.value}`}`;
}

function renderIncremental(elements: Element[], op: ElementOp): string {
  // Deletes name the key only; the reverse order undoes adds last-first.
  const lines =
    op === 'add'
      ? elements.map((e) => `add element ${e.family} ${TABLE} ${e.set} { ${elementText(e)} }`)
      : [...elements].reverse().map((e) => `delete element ${e.family} ${TABLE} ${e.set} { ${e.key} }`);
  return `${lines.join('\n')}\n`;
}

/**
 * Element adds (or deletes) for one network; O(1) in the number of other networks and ports.
 * Apply `delete` only for a network whose `add` was applied.
 */
export function networkElements(net: FirewallNetwork, op: ElementOp): string {
  return renderIncremental(networkElementList(checkNetwork(net)), op);
}

/**
 * The element add (or delete) for one published port; O(1) in the number of other ports. The
 * engine must check, as `buildRuleset` does, that the container address lies in a berth network
 * and that the binding does not clash with another: this function sees one port only.
 */
export function portElements(port: PublishedPort, op: ElementOp): string {
  return renderIncremental(portElementList(checkPublishedPort(port)), op);
}

/**
 * The same change as portElements, as set elements for the kernel (kernel/nft-elements.ts): the
 * DNAT map element and the counter element under one key, removed in the reverse order.
 */
export function portElementChanges(port: PublishedPort, op: ElementOp): SetElementChange[] {
  const { family, dnat, counted, key, value, comment } = portElementParts(checkPublishedPort(port));
  const changes: SetElementChange[] = [
    { op, family, table: TABLE, set: dnat, elements: [{ key, data: value, comment }] },
    { op, family, table: TABLE, set: counted, elements: [{ key, comment }] },
  ];
  return op === 'add' ? changes : changes.reverse();
}

/** Element adds (or deletes) for one network's resolver. */
export function dnsElements(listener: DnsListener, op: ElementOp): string {
  return renderIncremental(dnsElementList(checkDnsListener(listener)), op);
}

/** Element adds (or deletes) for container ports on icc=false networks. */
export function iccOffPortElements(ports: IccOffPort[], op: ElementOp): string {
  return renderIncremental(ports.map(checkIccOffPort).map(iccOffPortElement), op);
}

function checkNetworks(networks: CheckedNetwork[]): void {
  const ids = new Set<string>();
  const bridges = new Map<string, string>();
  for (const n of networks) {
    if (ids.has(n.id)) throw conflict(`network ${n.id} appears twice in the firewall state`);
    ids.add(n.id);
    const other = bridges.get(n.bridge);
    if (other !== undefined) throw conflict(`networks ${other} and ${n.id} both use bridge ${n.bridge}`);
    bridges.set(n.bridge, n.id);
  }
  // Sorted by start address, two prefixes overlap only if one contains the next one's start.
  const byBase = networks.filter((n) => n.prefix).sort((a, b) => a.prefix!.network - b.prefix!.network || a.prefix!.prefix - b.prefix!.prefix);
  for (let i = 1; i < byBase.length; i++) {
    const a = byBase[i - 1]!;
    const b = byBase[i]!;
    if (cidrsOverlap(a.prefix!, b.prefix!)) {
      throw conflict(`networks ${a.id} (${a.subnet}) and ${b.id} (${b.subnet}) overlap; give each its own subnet`);
    }
  }
  const dual = networks.filter((n) => n.prefix6).sort((a, b) => (a.prefix6!.network < b.prefix6!.network ? -1 : a.prefix6!.network > b.prefix6!.network ? 1 : a.prefix6!.prefix - b.prefix6!.prefix));
  for (let i = 1; i < dual.length; i++) {
    const a = dual[i - 1]!;
    const b = dual[i]!;
    if (cidrs6Overlap(a.prefix6!, b.prefix6!)) throw conflict(`networks ${a.id} (${a.subnet6}) and ${b.id} (${b.subnet6}) overlap; give each its own IPv6 subnet`);
  }
}

function checkPorts(ports: PublishedPort[], networks: CheckedNetwork[]): void {
  const bindings = new BindingIndex<PublishedPort>();
  for (const port of ports) {
    // A DNAT target outside every berth bridge would escape the forward rules and turn the host
    // into an open port forwarder.
    if (!networks.some((n) => networkHolds(n, port.containerIp))) {
      throw invalid(`port ${port.hostPort}/${port.protocol} of container ${port.containerId}: ${port.containerIp} is in no berth network`);
    }
    const other = bindings.clashWith(port);
    if (other) {
      throw conflict(
        `${port.hostIp}:${port.hostPort}/${port.protocol} of container ${port.containerId} clashes with ${other.hostIp}:${other.hostPort}/${other.protocol} of container ${other.containerId}; a host port is bound once`,
      );
    }
    bindings.add(port);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function setRef(spec: { family: TableFamily; name: string }): string {
  return `${spec.family} ${TABLE} ${spec.name}`;
}

function renderElementBlock(family: TableFamily, set: string, elements: Element[], counters?: ReadonlyMap<string, ElementCounter>): string[] {
  if (elements.length === 0) return [];
  const body = elements.map((e, i) => `\t${elementText(e, counters)}${i < elements.length - 1 ? ',' : ''}`);
  return [`add element ${family} ${TABLE} ${set} {`, ...body, '}'];
}

export interface BuildOptions {
  /** Sets (`family name`) an older berth declared with another type or flags: deleted and declared anew. */
  recreateSets?: readonly string[];
  /** Counters of counted elements (by counterKey) to carry over the flush, read just before it. */
  counters?: ReadonlyMap<string, ElementCounter>;
}

/**
 * One `nft -f` transaction that makes berth's tables match `state` exactly. Valid whether or not the
 * tables exist; leaves other tables and the user's chain alone. Throws BerthError ('invalid' or
 * 'conflict') for a state that cannot be expressed.
 */
export function buildRuleset(state: FirewallState, opts: BuildOptions = {}): string {
  const networks = state.networks.map(checkNetwork).sort((a, b) => compare(a.id, b.id));
  checkNetworks(networks);
  const ports = state.ports.map(checkPublishedPort);
  checkPorts(ports, networks);
  const portElements = ports.flatMap(portElementList).sort((a, b) => compare(a.key, b.key));
  const dns = (state.dns ?? []).map(checkDnsListener).sort((a, b) => compare(a.networkId, b.networkId));
  const iccPorts = (state.iccOffPorts ?? []).map(checkIccOffPort).sort((a, b) => compare(a.port, b.port));
  const elements = [...networks.flatMap(networkElementList), ...portElements, ...dns.flatMap(dnsElementList), ...iccPorts.map(iccOffPortElement)];

  const out: string[] = [
    '# berth firewall: one transaction. "add" creates what is missing and leaves what exists; "flush"',
    '# empties only berth\'s own chains, sets and maps. Tables are never deleted, so conntrack state',
    `# survives, and chain ${C.userForward} (the user's policy) is never flushed.`,
  ];
  for (const family of FAMILIES) {
    const chains = ALL_CHAINS.filter((c) => c.family === family);
    const sets = SETS.filter((s) => s.family === family);
    out.push('', `add table ${family} ${TABLE}`);
    for (const chain of chains) {
      out.push(`add chain ${setRef(chain)}${chain.base === undefined ? '' : ` { ${chain.base} }`}`);
    }
    const recreate = (set: SetSpec) => (opts.recreateSets ?? []).includes(`${family} ${set.name}`);
    const declare = (set: SetSpec) => `add ${set.kind} ${setRef(set)} { type ${set.type};${set.interval ? ' flags interval;' : ''}${set.counter ? ' counter;' : ''} }`;
    for (const set of sets) if (!recreate(set)) out.push(declare(set));
    for (const chain of chains) if (chain.owned) out.push(`flush chain ${setRef(chain)}`);
    // A set whose flags changed (an older berth made it without intervals) cannot be redeclared:
    // it goes once no rule refers to it, and comes back with the flags of this version.
    for (const set of sets) if (recreate(set)) out.push(`delete ${set.kind} ${setRef(set)}`, declare(set));
    for (const set of sets) if (!recreate(set)) out.push(`flush ${set.kind} ${setRef(set)}`);
    for (const chain of chains) {
      out.push('', ...commentLines(`${chain.name}: ${chain.why}`));
      for (const rule of chain.rules) out.push(...commentLines(rule.why), `add rule ${setRef(chain)} ${counted(rule.rule)}`);
    }
    for (const set of sets) {
      const block = renderElementBlock(
        family,
        set.name,
        elements.filter((e) => e.family === family && e.set === set.name),
        opts.counters,
      );
      if (block.length > 0) out.push('', ...block);
    }
  }
  return `${out.join('\n')}\n`;
}


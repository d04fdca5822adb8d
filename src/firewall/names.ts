/**
 * Names of every nftables object berth owns. They live here, and only here, so the ruleset builder,
 * the applier, the reconciler and the docs agree on them, and so an operator reading
 * `nft list ruleset` can tell berth's objects from everyone else's.
 *
 * berth keeps to three tables of its own and never touches any other table:
 * - `ip berth`: NAT, published ports and isolation for routed IPv4 traffic;
 * - `ip6 berth`: the same for the IPv6 side of dual-stack networks (NAT66, IPv6 published ports);
 * - `bridge berth`: `icc=false`, which has to act on frames bridged between two ports of one
 *   bridge, a path the `ip` hooks only see when br_netfilter is active.
 */

/** Name of both berth tables (one per family). */
export const TABLE = 'berth';

/** Family of the table that holds NAT, published ports and isolation for IPv4. */
export const IP_FAMILY = 'ip';

/** Family of its IPv6 twin: the same chains and set names, with IPv6 addresses. */
export const IP6_FAMILY = 'ip6';

/** Family of the table that enforces `icc=false` between ports of one bridge. */
export const BRIDGE_FAMILY = 'bridge';

export type TableFamily = typeof IP_FAMILY | typeof IP6_FAMILY | typeof BRIDGE_FAMILY;

/** Chains of `ip berth`. All but `userForward` are flushed and rewritten by `buildRuleset`. */
export const IP_CHAINS = {
  /** Base chain, prerouting at raw priority: keeps 127.0.0.0/8 host-only, before conntrack and NAT. */
  rawPrerouting: 'raw-prerouting',
  /** Base chain, nat prerouting: DNAT of published ports for packets arriving from outside. */
  natPrerouting: 'nat-prerouting',
  /** Base chain, nat output: DNAT of published ports for connections the host itself opens. */
  natOutput: 'nat-output',
  /** Regular chain both DNAT base chains jump to: the two published-port map lookups. */
  publishedPorts: 'published-ports',
  /** Base chain, nat postrouting: outbound masquerade, hairpin and host-loopback masquerade. */
  natPostrouting: 'nat-postrouting',
  /** Base chain, filter forward (policy accept): judges only traffic into or out of berth bridges. */
  forward: 'forward',
  /**
   * Base chain, forward hook just before filter priority: marks berth's forwarded traffic with
   * FORWARD_MARK, so the one rule berth adds to Docker's DOCKER-USER chain can let it past Docker's
   * FORWARD policy DROP (see docker-user.ts). It only marks; verdicts stay in `forward`.
   */
  forwardMark: 'forward-mark',
  /** Base chain, filter input: the embedded resolver answers only containers of its own network. */
  input: 'input',
  /** Base chain, filter postrouting: keeps published-port traffic, forwarded or not, out of internal networks. */
  filterPostrouting: 'filter-postrouting',
  /**
   * Regular chain for the user's own policy; `forward` jumps here first. berth creates it when it is
   * missing and never flushes, rewrites or deletes it. See USER_CHAIN_POLICY.
   */
  userForward: 'user-forward',
} as const;

/**
 * Packet mark bit of berth's forwarded traffic (into a berth bridge, or out of one to anything but
 * a Docker bridge). One bit, OR-ed in, so other users of the mark keep theirs; it avoids the bits
 * kube-proxy (0x4000, 0x8000) and Docker's swarm use.
 */
export const FORWARD_MARK = 0x00400000;

/** Docker's bridges (docker0 and br-<network id>): berth leaves Docker's isolation of them to Docker. */
export const DOCKER_BRIDGES = ['docker0', 'br-*'] as const;

/** Chains of `bridge berth`. */
export const BRIDGE_CHAINS = {
  /** Base chain, bridge forward: drops IPv4 between two ports of an `icc=false` bridge. */
  forward: 'forward',
} as const;

/**
 * Sets and maps of `ip berth`. Each network or published port is a handful of elements in them, so
 * adding one is an element add (no rule rewrite) and a packet's lookup is a hash or interval-tree
 * lookup whose cost does not depend on how many networks or ports exist.
 */
/*
 * Interface sets are `ifname . ifname`, each interface written twice (`"br" . "br"`) and matched as
 * `oifname . oifname @set`: a ptp network's host links are one wildcard (`"bpt0a1b2c*"`), and
 * nft 1.0.6 cannot add or delete an element beside a wildcard in a one-field interval set ("interval
 * overlaps with an existing one"), while concatenated sets (pipapo) take them, so a network's
 * elements stay incremental whatever other networks exist.
 */
export const IP_SETS = {
  /** `ifname . ifname`: the bridge of every berth network. */
  bridges: 'bridges',
  /** `ifname . ifname`: one `"br" . "br"` pair per bridge, so a rule can test "same bridge". */
  sameBridge: 'same_bridge',
  /** `ipv4_addr` intervals: every berth network's subnet (hairpin masquerade). */
  containerSubnets: 'container_subnets',
  /** `ipv4_addr` intervals: subnets of non-internal networks with masquerade on. */
  masqSubnets: 'masq_subnets',
  /**
   * `ipv4_addr . ipv4_addr` intervals: a network's subnet and a CIDR it is routed to without NAT
   * (other hosts' container subnets, in a Flannel-style cluster or a fan). One element per pair,
   * keyed local-first: outbound traffic looks it up as saddr . daddr (no masquerade), inbound as
   * daddr . saddr (new connections accepted), so a pair never opens one network to another's peers.
   */
  routedPeers: 'routed_peers',
  /** `ifname . ifname`: bridges of internal networks. */
  internalBridges: 'internal_bridges',
  /** `ifname . ifname`: bridges of `icc=false` networks (routed same-bridge traffic, e.g. hairpin). */
  iccOffBridges: 'icc_off_bridges',
  /** Map `inet_proto . inet_service : ipv4_addr . inet_service`: ports published on every host address. */
  dnatAny: 'dnat_any',
  /** Map `ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service`: ports published on one host address. */
  dnatIp: 'dnat_ip',
  /**
   * Map `ifname . ipv4_addr : inet_service`: a network's bridge and gateway to the port its
   * resolver listens on. Containers ask gateway:53; the query is redirected there.
   */
  dnsRedirect: 'dns_redirect',
  /** `ipv4_addr . inet_service`: every resolver socket (gateway . port). */
  dnsSockets: 'dns_sockets',
  /** `ifname . ipv4_addr . inet_service`: who may reach a resolver socket: its own network's bridge. */
  dnsClients: 'dns_clients',
  /*
   * Accounting (the metrics): sets declared with `counter`, so each element carries its own packet
   * and byte counter, bumped by a lookup in a rule that has no verdict. One rule per set, whatever
   * the number of networks or ports.
   */
  /** `ifname . ifname`: every network's interface; counts what arrives from its containers (prerouting). */
  trafficFromNetwork: 'traffic_from_network',
  /** `ifname . ifname`: every network's interface; counts what the host sends to its containers (postrouting). */
  trafficToNetwork: 'traffic_to_network',
  /** `inet_proto . inet_service`: ports published on every address; counts their forwarded packets, both ways. */
  portTrafficAny: 'port_traffic_any',
  /** `ipv4_addr . inet_proto . inet_service`: ports published on one address, likewise. */
  portTrafficIp: 'port_traffic_ip',
} as const;

/** The sets whose elements carry counters (in `ip berth` and `ip6 berth`), read by the metrics. */
export const COUNTER_SETS = [IP_SETS.trafficFromNetwork, IP_SETS.trafficToNetwork, IP_SETS.portTrafficAny, IP_SETS.portTrafficIp] as const;

/** Sets of `bridge berth`. */
export const BRIDGE_SETS = {
  /**
   * `ipv4_addr` intervals: subnets of `icc=false` networks. The bridge family cannot name the bridge
   * a frame crosses without the `nft_meta_bridge` module (`meta ibrname`), which many kernels lack
   * (this one: CONFIG_NFT_BRIDGE_META unset), so the rule keys on the destination subnet instead;
   * a berth subnet lives on exactly one bridge, so this names the same bridge.
   */
  iccOffSubnets: 'icc_off_subnets',
  /**
   * `ifname`: host ends of the veths of containers on `icc=false` networks. Frames between two such
   * ports that are neither IPv4 nor ARP (IPv6 link-local above all) are dropped, so icc=false
   * cannot be bypassed below IPv4. Keyed by port for the same reason as above.
   */
  iccOffPorts: 'icc_off_ports',
} as const;

/**
 * The user's policy chain, for the README. berth's promise and its rules of use, in one place.
 */
export const USER_CHAIN_POLICY = `\
berth's firewall lives in two nftables tables of its own, "ip berth" and "bridge berth". berth
rewrites their chains, sets and maps whenever it reloads its firewall, with one exception: the chain
"user-forward" in table "ip berth". berth creates that chain when it is missing and never flushes,
rewrites or deletes it, so rules you put there survive daemon restarts and reloads.

berth's forward chain jumps to user-forward before any of its own rules, for every forwarded IPv4
packet, including traffic to published ports (after their DNAT) and traffic that has nothing to do
with berth. In user-forward:
  - "drop" (or "reject") stops the packet for good;
  - "return", or reaching the end of the chain, hands the packet back to berth's rules
    (isolation, internal networks, published ports);
  - "accept" ends berth's forward chain for that packet, skipping berth's isolation rules. Other
    tables' chains still judge it: nftables drops a packet if any base chain drops it.

Published ports are DNAT'd before the forward hook, so there "ip daddr" and "tcp dport" are the
container's address and port. Match what the client asked for with conntrack's original tuple; nft
needs the protocol stated first:
  nft add rule ip berth user-forward iifname "eth0" ip saddr != 192.168.1.0/24 \\
      meta l4proto tcp ct original proto-dst 8080 drop
  nft add rule ip berth user-forward ct original ip daddr 203.0.113.7 ct status dnat drop

Connections the host opens itself to a published port do not cross the forward hook, so
user-forward does not see them. "nft flush ruleset" removes user-forward with everything else;
berth recreates it empty on its next reload.
`;

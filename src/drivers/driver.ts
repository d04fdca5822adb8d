/**
 * The seam every network type plugs into. The engine, API, CLI and CNI handle networks and
 * endpoints as records and ask the network's driver for everything that depends on its type:
 * which options it takes, what it makes in the kernel, how an endpoint joins a sandbox, and what
 * it contributes to the firewall, DNS and the reconciler. A driver is a folder under src/drivers/
 * plus one line in registry.ts; its kernel work is kernel operations (src/kernel/), called by name.
 *
 * Addresses cross this interface as strings (CIDR text, dotted or colon notation), so a second
 * address family adds fields, not types. A driver keeps no state of its own: everything it needs
 * is in the records, so two daemons (or a cluster-scoped store, later) see the same network.
 */
import type { FirewallNetwork } from '../firewall/model.js';
import type { HostView } from '../kernel/ops.js';
import type { EngineContext } from '../engine/context.js';
import type { EndpointRecord, NetworkLink, NetworkRecord } from '../store/store.js';

/** What the user asked for, before the driver has looked at it. */
export interface NetworkDraft {
  id: string;
  name: string;
  internal: boolean;
  options: Record<string, string>;
  /** The IPv4 subnet and gateway chosen for the network (IPAM runs before the driver plans); absent on an IPv6-only one. */
  subnet?: string;
  gateway?: string;
  /** The IPv6 subnet and gateway of a dual-stack network (chosen before the driver plans, too). */
  subnet6?: string;
  gateway6?: string;
  /** `--aux-address` reservations, by name. */
  auxAddresses: Record<string, string>;
}

/** The driver's answer: the options as stored (normalised) and the links the network uses. */
export interface NetworkPlan {
  options: Record<string, string>;
  links: NetworkLink[];
  /** Addresses the driver reserves for itself (a host shim's), added to the auxiliary ones. */
  auxAddresses?: Record<string, string>;
}

/** Where an endpoint goes: the sandbox's namespace and what the engine decided for it. */
export interface JoinSpec {
  netnsPath: string;
  /** The first interface of a sandbox carries its default route. */
  defaultRoute: boolean;
  /** Make the namespace first (saves a kernel round trip for a new container). */
  createSandbox?: boolean;
}

export interface LeaveSpec {
  netnsPath: string;
  /** Where the default route moves if it leaves with this interface. */
  nextDefaultRoute?: { ifname: string; gateway: string; gateway6?: string };
}

/**
 * Where a network's embedded resolver answers its containers: in the host namespace on `address`,
 * for queries arriving on `ifname` (a bridge network's gateway), or, for a network whose
 * containers cannot reach the host (macvlan, ipvlan), inside each container's own namespace on
 * `address` (127.0.0.11, as Docker's resolver).
 */
export type DnsPlacement = { in: 'host'; address: string; ifname: string } | { in: 'sandbox'; address: string };

/** Where an in-sandbox resolver listens (Docker's address). */
export const SANDBOX_DNS_ADDRESS = '127.0.0.11';

/** What the reconciler found and did for one network. */
export interface RepairReport {
  restored: string[];
  unrestorable: string[];
  reattached: string[];
}

export interface NetworkDriver {
  readonly name: string;
  /**
   * 'global' networks live in the cluster store and exist on every host of the cluster (Docker's
   * scope for KV-store overlays); the rest are this host's alone. 'either': global when the
   * daemon has a cluster store as the network is created, local otherwise (the record's
   * `berth.scope` option says which).
   */
  readonly scope?: 'local' | 'global' | 'either';
  /** Option keys this driver takes (besides berth's common ones). */
  readonly options: readonly string[];
  /**
   * Whether a key outside `options` is refused. Docker's bridge driver keeps unknown keys (and
   * tools pass their own), so the bridge driver does too; newer drivers refuse them.
   */
  readonly strictOptions: boolean;
  /**
   * For a driver whose IPv4 subnet follows from its options and the host (a fan network's is the
   * host's slice of the overlay): that subnet and its gateway. The engine takes them as if the
   * user had given them, and refuses a --subnet or --gateway that differs. Throws a BerthError
   * naming what is wrong when the options or the host give none.
   */
  subnetFor?(ctx: EngineContext, options: Record<string, string>, view: HostView): { subnet: string; gateway: string };
  /**
   * IPv4 ranges the network routes beyond its own subnet (a fan network's whole overlay: the
   * other hosts' slices), which no other network may use.
   */
  routedRanges?(net: NetworkRecord): string[];
  /** Validates the options against the host and the other networks; throws a BerthError naming what is wrong. */
  plan(ctx: EngineContext, draft: NetworkDraft, view: HostView): NetworkPlan;
  /** Makes (or restores) what the network owns in the kernel; idempotent. True if something was made. */
  ensure(ctx: EngineContext, net: NetworkRecord): Promise<boolean>;
  /** Removes what the network owns; never a link it did not make. */
  remove(ctx: EngineContext, net: NetworkRecord): Promise<void>;
  /** The endpoint's host-side link name (null if it has none), fixed before the kernel work. */
  hostLinkOf(net: NetworkRecord, endpointId: string): string | null;
  /**
   * Holds an address of a cluster network for a new endpoint, where the driver decides where it
   * comes from (routed: this host's blocks); without it, cluster-ipam's claimAddress does.
   */
  claimAddress?(ctx: EngineContext, net: NetworkRecord, endpointId: string, requested: number | undefined, localInUse: ReadonlySet<number>): Promise<string>;
  /**
   * Plugs the endpoint into its sandbox; on failure leaves nothing of it in the kernel. Returns the
   * interface's MAC when it is not the one on record (a macvlan passthru child has its parent's).
   */
  join(ctx: EngineContext, net: NetworkRecord, endpoint: EndpointRecord, spec: JoinSpec): Promise<{ mac?: string } | void>;
  /** Unplugs it; idempotent. Slow kernel work is returned to be started last, unawaited (see leaveNetwork). */
  leave(ctx: EngineContext, net: NetworkRecord | undefined, endpoint: EndpointRecord, spec: LeaveSpec | null): () => void;
  /** The facts berth's firewall needs; undefined if the network takes no part in it. */
  firewall(net: NetworkRecord): FirewallNetwork | undefined;
  /** Where the resolver listens; undefined if the network gets no embedded DNS. */
  dns(net: NetworkRecord): DnsPlacement | undefined;
  /** Puts the network's endpoints back in place after ensure() restored what they hang off. */
  repair(ctx: EngineContext, net: NetworkRecord, endpoints: EndpointRecord[], view: HostView, report: RepairReport): Promise<void>;
}

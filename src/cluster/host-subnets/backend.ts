/**
 * The seam between per-host subnet leasing (Flannel's model: every host leases one subnet of the
 * cluster CIDR in etcd, and its default bridge takes it) and the ways traffic reaches another
 * host's subnet: `vxlan` (a VXLAN device and three kernel entries per peer), `host-gw` (a route per
 * peer via its underlay address) and `udp` (a TUN device and encapsulation in the daemon).
 *
 * The lease manager owns etcd and the peer list; a backend owns only what it makes in the kernel
 * (and, for udp, its socket). It learns of peers one at a time, in watch order, never concurrently.
 */

/** One host's lease as Flannel writes it under `<prefix>/subnets/10.5.34.0-24`. */
export interface PeerLease {
  /** The leased subnet, CIDR text (`10.5.34.0/24`). */
  subnet: string;
  /** The host's underlay address (Flannel's PublicIP). */
  publicIp: string;
  /** Flannel's BackendType (`vxlan`, `host-gw`, `udp`). */
  backendType: string;
  /** Flannel's BackendData: for vxlan `{ VNI, VtepMAC }`; null or `{}` for the others. */
  backendData: Record<string, unknown> | null;
}

/** What a backend learns about this host when it starts. */
export interface LocalHost {
  /** This host's leased subnet, CIDR text. */
  subnet: string;
  /** The whole cluster CIDR (routes to other hosts' subnets fall inside it). */
  clusterCidr: string;
  publicIp: string;
  /** The interface holding publicIp, and its MTU. */
  underlay: { ifname: string; mtu: number };
  /** berth's state root, for anything a backend persists (a VTEP MAC, say). */
  root: string;
}

export type BackendType = 'vxlan' | 'host-gw' | 'udp';

export interface HostSubnetBackend {
  readonly type: BackendType;
  /** The MTU containers on this host's bridge get (the underlay's minus the encapsulation). */
  mtu(underlayMtu: number): number;
  /** Makes the backend's device(s); idempotent. Returns the BackendData this host publishes. */
  start(local: LocalHost): Promise<Record<string, unknown> | null>;
  /**
   * Programs the path to a peer's subnet. Throws a BerthError naming the peer and the reason when
   * it cannot be reached this way (host-gw: not on this host's L2 segment); nothing is left behind.
   */
  addPeer(peer: PeerLease): Promise<void>;
  /** Removes what addPeer made; idempotent. */
  removePeer(peer: PeerLease): Promise<void>;
  /** Restores what addPeer made for each peer (the reconciler calls it); returns what it repaired. */
  repair(peers: readonly PeerLease[]): Promise<string[]>;
  /** Stops the backend (a daemon shutdown keeps kernel state, as Flannel does, unless `remove`). */
  stop(opts: { remove: boolean }): Promise<void>;
}

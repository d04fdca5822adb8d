/**
 * The udp backend's forwarding decisions, pure so they can be tested without a kernel: which peer
 * an IP packet read from the TUN device goes to, and whether a datagram received on the UDP socket
 * may be written to the TUN device. Addresses are unsigned 32-bit numbers (see ipam/ipv4.ts).
 *
 * Every host leases a subnet of one prefix length (Flannel's SubnetLen), so the longest match is
 * a single Map lookup keyed by the destination masked to that length.
 */

/** Why a packet was not forwarded; each reason has its own counter. */
export type DropReason =
  /** Not an IPv4 packet, or shorter than its header. */
  | 'malformed'
  /** From the TUN device: no peer leases the destination's subnet. */
  | 'noPeer'
  /** From the UDP socket: the sender is not a known peer's underlay address (no open relay). */
  | 'unknownSender'
  /** From the UDP socket: the inner source is outside the sending peer's subnet (spoofed). */
  | 'spoofed'
  /** From the UDP socket: the inner destination is not in this host's subnet (no relaying). */
  | 'notLocal';

export const DROP_REASONS: readonly DropReason[] = ['malformed', 'noPeer', 'unknownSender', 'spoofed', 'notLocal'];

const IPV4_HEADER = 20;

export const maskOf = (prefix: number) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

/** The IPv4 source and destination of a packet, or undefined if it is not a whole IPv4 header. */
export function ipv4Ends(pkt: Uint8Array, len: number): { src: number; dst: number } | undefined {
  if (len < IPV4_HEADER || pkt[0]! >> 4 !== 4) return undefined;
  const src = ((pkt[12]! << 24) | (pkt[13]! << 16) | (pkt[14]! << 8) | pkt[15]!) >>> 0;
  const dst = ((pkt[16]! << 24) | (pkt[17]! << 16) | (pkt[18]! << 8) | pkt[19]!) >>> 0;
  return { src, dst };
}

export interface Peer {
  /** The peer's subnet (network address). */
  subnet: number;
  /** Its underlay address, where its datagrams come from and ours go. */
  publicIp: number;
}

export class PeerTable {
  private readonly mask: number;
  private readonly localNet: number;
  private readonly bySubnet = new Map<number, Peer>();
  private readonly byPublicIp = new Map<number, Peer>();

  /** `local` is this host's subnet; every peer's has the same prefix length. */
  constructor(local: { network: number; prefix: number }) {
    this.mask = maskOf(local.prefix);
    this.localNet = local.network;
  }

  get size(): number {
    return this.bySubnet.size;
  }

  /**
   * Adds or replaces the peer leasing `subnet`. A host that changed its lease (or its address)
   * replaces its old entry: one underlay address speaks for one subnet, else the anti-spoofing
   * check would not know which subnet to hold it to.
   */
  set(peer: Peer): void {
    const old = this.bySubnet.get(peer.subnet);
    if (old) this.byPublicIp.delete(old.publicIp);
    const sameHost = this.byPublicIp.get(peer.publicIp);
    if (sameHost) this.bySubnet.delete(sameHost.subnet);
    this.bySubnet.set(peer.subnet, peer);
    this.byPublicIp.set(peer.publicIp, peer);
  }

  /** Removes the peer leasing `subnet`; idempotent. */
  delete(subnet: number): boolean {
    const old = this.bySubnet.get(subnet);
    if (!old) return false;
    this.bySubnet.delete(subnet);
    this.byPublicIp.delete(old.publicIp);
    return true;
  }

  has(subnet: number): boolean {
    return this.bySubnet.has(subnet);
  }

  /** A packet read from the TUN device: the peer to send it to, or why it is dropped. */
  outbound(pkt: Uint8Array, len: number): Peer | DropReason {
    const ends = ipv4Ends(pkt, len);
    if (!ends) return 'malformed';
    return this.bySubnet.get((ends.dst & this.mask) >>> 0) ?? 'noPeer';
  }

  /** A datagram from `sender` (its source address): null if it may go to the TUN device, else why not. */
  inbound(sender: number, pkt: Uint8Array, len: number): DropReason | null {
    const peer = this.byPublicIp.get(sender);
    if (!peer) return 'unknownSender';
    const ends = ipv4Ends(pkt, len);
    if (!ends) return 'malformed';
    if ((ends.src & this.mask) >>> 0 !== peer.subnet) return 'spoofed';
    if ((ends.dst & this.mask) >>> 0 !== this.localNet) return 'notLocal';
    return null;
  }
}

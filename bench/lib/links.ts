/**
 * Wiring between bench namespaces with `ip`: a peer namespace joined to a host namespace by a veth
 * pair on a /24 (host .1, peer .2, default route via the host; optionally also a /64, ::1 and ::2),
 * a bare veth pair between two namespaces (the data-plane limit), and a LAN NIC for a host
 * namespace (the parent of macvlan networks). Names are `bb-`-prefixed and registered with the scope.
 */
import { runOk } from './exec.js';
import { PREFIX, type Scope } from './scope.js';

export interface PeerNs {
  name: string;
  nsPath: string;
  address: string;
  hostAddress: string;
  /** Set when the link has IPv6 too (addPeer's prefix6). */
  address6?: string;
  hostAddress6?: string;
}

let counter = 0;

/**
 * `hostNs` is a path (/run/netns/NAME or a berth sandbox's); the peer is a new `bb-` namespace.
 * `prefix6` (like `fd54:1::`) puts the link on that /64 too, for IPv6.
 */
export async function addPeer(scope: Scope, hostNsName: string, peerName: string, prefix3: string, prefix6?: string): Promise<PeerNs> {
  const nsPath = await scope.netns(peerName);
  const hostEnd = `${PREFIX}p${process.pid % 10000}${counter++}`.slice(0, 15);
  await runOk('ip', ['-n', hostNsName, 'link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peerName]);
  const peer: PeerNs = { name: peerName, nsPath, address: `${prefix3}.2`, hostAddress: `${prefix3}.1` };
  for (const [ns, dev, addr] of [
    [hostNsName, hostEnd, peer.hostAddress],
    [peerName, 'eth0', peer.address],
  ] as const) {
    await runOk('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
    await runOk('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  }
  await runOk('ip', ['-n', peerName, 'route', 'add', 'default', 'via', peer.hostAddress]);
  if (prefix6) {
    peer.hostAddress6 = `${prefix6}1`;
    peer.address6 = `${prefix6}2`;
    // nodad: a tentative address (duplicate address detection) takes no traffic for about a second.
    await runOk('ip', ['-n', hostNsName, '-6', 'addr', 'add', `${peer.hostAddress6}/64`, 'dev', hostEnd, 'nodad']);
    await runOk('ip', ['-n', peerName, '-6', 'addr', 'add', `${peer.address6}/64`, 'dev', 'eth0', 'nodad']);
    await runOk('ip', ['-n', peerName, '-6', 'route', 'add', 'default', 'via', peer.hostAddress6]);
  }
  return peer;
}

/** Two fresh namespaces joined directly by a veth pair: the fastest path two namespaces can have. */
export async function vethPair(scope: Scope, a: string, b: string, prefix3: string): Promise<{ a: PeerNs; b: PeerNs }> {
  const aPath = await scope.netns(a);
  const bPath = await scope.netns(b);
  await runOk('ip', ['-n', a, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b]);
  await runOk('ip', ['-n', a, 'addr', 'add', `${prefix3}.1/24`, 'dev', 'eth0']);
  await runOk('ip', ['-n', b, 'addr', 'add', `${prefix3}.2/24`, 'dev', 'eth0']);
  await runOk('ip', ['-n', a, 'link', 'set', 'eth0', 'up']);
  await runOk('ip', ['-n', b, 'link', 'set', 'eth0', 'up']);
  return {
    a: { name: a, nsPath: aPath, address: `${prefix3}.1`, hostAddress: `${prefix3}.2` },
    b: { name: b, nsPath: bPath, address: `${prefix3}.2`, hostAddress: `${prefix3}.1` },
  };
}

/**
 * A NIC of `hostNsName` on a LAN, for drivers that put containers straight on it (macvlan): a veth
 * named `nic` with the host's own address `.2` of the /24, whose peer (the wire, `nic` + `w`) is in
 * the same namespace; both up. The pair goes with the namespace, so the scope has nothing more to
 * remove.
 */
export async function lanNic(hostNsName: string, nic: string, prefix3: string): Promise<void> {
  const wire = `${nic}w`;
  if (!nic.startsWith(PREFIX) || wire.length > 15) throw new Error(`NIC name ${nic} must start with ${PREFIX} and leave room for its peer's (15 characters)`);
  await runOk('ip', ['-n', hostNsName, 'link', 'add', nic, 'type', 'veth', 'peer', 'name', wire]);
  await runOk('ip', ['-n', hostNsName, 'addr', 'add', `${prefix3}.2/24`, 'dev', nic]);
  for (const dev of [wire, nic]) await runOk('ip', ['-n', hostNsName, 'link', 'set', dev, 'up']);
}

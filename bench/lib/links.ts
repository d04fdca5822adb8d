/**
 * Wiring between bench namespaces with `ip`: a peer namespace joined to a host namespace by a veth
 * pair on a /24 (host .1, peer .2, default route via the host), a bare veth pair between two
 * namespaces (the data-plane limit), and a LAN NIC for a host namespace (the parent of macvlan
 * networks). Names are `bb-`-prefixed and registered with the scope.
 */
import { runOk } from './exec.js';
import { PREFIX, type Scope } from './scope.js';

export interface PeerNs {
  name: string;
  nsPath: string;
  address: string;
  hostAddress: string;
}

let counter = 0;

/** `hostNs` is a path (/run/netns/NAME or a berth sandbox's); the peer is a new `bb-` namespace. */
export async function addPeer(scope: Scope, hostNsName: string, peerName: string, prefix3: string): Promise<PeerNs> {
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

/**
 * Kernel operation of the topology page (issue 15): a read-only look at the links and addresses
 * that really exist, in the host namespace and in each container's, so the page can tell what the
 * store says from what the kernel has (a veth host end that is missing or down).
 */
import * as fs from 'node:fs';
import * as nl from './netlink/codec.js';
import { NetlinkSocket } from './netlink/socket.js';
import { withNetns } from './netns.js';
import { host } from './link-steps.js';

export interface SeenLink {
  name: string;
  index: number;
  up: boolean;
  kind?: string;
  mac?: string;
  mtu?: number;
  /** The name of the link's master (a veth's bridge), if it has one. */
  master?: string;
  /** Addresses on the link, both families, as `ADDRESS/PREFIX`. */
  addresses: string[];
}

/** One namespace's links, or why it could not be read (gone, not a namespace). */
export type SeenNamespace = { links: SeenLink[] } | { error: string };

export interface TopologyLookSpec {
  /** Container namespaces to look into (bind mounts or /proc/PID/ns/net). */
  netnsPaths: string[];
}

export interface TopologyLook {
  host: SeenLink[];
  namespaces: Record<string, SeenNamespace>;
}

function linksOf(sock: NetlinkSocket): SeenLink[] {
  const links = sock.dump(nl.dumpLinks(), 'list links').map((m) => nl.parseLink(m.body));
  const nameOf = new Map(links.map((l) => [l.index, l.name]));
  const addresses = new Map<number, string[]>();
  for (const family of [nl.FAMILY_INET, nl.FAMILY_INET6] as nl.Family[]) {
    for (const m of sock.dump(nl.dumpAddresses(family), 'list addresses')) {
      const a = nl.parseAddress(m.body);
      if (a) addresses.set(a.index, [...(addresses.get(a.index) ?? []), `${a.address}/${a.prefix}`]);
    }
  }
  return links.map((l) => ({
    name: l.name,
    index: l.index,
    up: l.up,
    ...(l.kind && { kind: l.kind }),
    ...(l.mac && { mac: l.mac }),
    ...(l.mtu !== undefined && { mtu: l.mtu }),
    ...(l.master && nameOf.has(l.master) && { master: nameOf.get(l.master)! }),
    addresses: addresses.get(l.index) ?? [],
  }));
}

/** The host's links and each asked-for namespace's; a namespace that cannot be read says why. */
export function topologyLook(spec: TopologyLookSpec): TopologyLook {
  const namespaces: Record<string, SeenNamespace> = {};
  for (const p of new Set(spec.netnsPaths)) {
    if (!fs.existsSync(p)) {
      namespaces[p] = { error: `namespace ${p} does not exist` };
      continue;
    }
    try {
      namespaces[p] = {
        links: withNetns(p, () => {
          const sock = new NetlinkSocket();
          try {
            return linksOf(sock);
          } finally {
            sock.close();
          }
        }),
      };
    } catch (err) {
      namespaces[p] = { error: (err as Error).message };
    }
  }
  return { host: linksOf(host()), namespaces };
}

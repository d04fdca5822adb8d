/**
 * How berth tells its own bridges from the host's (pure code). A bridge berth makes gets the MAC
 * `02:42:` + 4 bytes of a hash of its mark (its IFLA_IFALIAS, which names the owner and the
 * network id). The MAC is fixed, so the bridge keeps it when ports come and go and when the
 * reconciler restores a deleted bridge (containers' ARP entries for the gateway stay valid), and it
 * is set in the very message that creates the bridge, so it marks the bridge as berth's even if a
 * crash comes before the alias (which the kernel ignores at creation) is set.
 */
import { createHash } from 'node:crypto';

export function bridgeMac(mark: string): string {
  const bytes = createHash('sha256').update(mark).digest().subarray(0, 4);
  return ['02', '42', ...[...bytes].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** Whether a link is a bridge berth made under `mark`: it carries the mark, or (a crash before the alias) its MAC. */
export function isOwnBridge(link: { kind?: string; alias?: string; mac?: string }, mark: string): boolean {
  return link.kind === 'bridge' && (link.alias === mark || (!link.alias && link.mac === bridgeMac(mark)));
}

export function foreignBridgeMessage(name: string): string {
  return `bridge ${name} already exists on the host and berth did not create it: berth never takes over, re-addresses or deletes a link of the host; choose another name with -o com.docker.network.bridge.name=NAME, or leave the option out`;
}

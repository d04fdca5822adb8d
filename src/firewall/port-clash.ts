/**
 * The one rule for when two published ports clash, shared by the engine (which refuses a new
 * binding) and the ruleset builder (which refuses a state): same protocol and host port, and
 * either the same host address or one of them on the wildcard address of the other's family (a
 * wildcard binding takes the port on every address of its family). Keeping a single rule is what guarantees that a binding the engine
 * accepted can always be rebuilt from the store.
 */
import { ANY_HOST_IP, ANY_HOST_IP6 } from './model.js';

export interface HostBinding {
  protocol: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
}

/** A wildcard covers the addresses of its own family: `0.0.0.0` the IPv4 ones, `::` the IPv6 ones. */
const isWildcard = (ip: string) => ip === ANY_HOST_IP || ip === ANY_HOST_IP6;
const sameFamily = (a: string, b: string) => a.includes(':') === b.includes(':');

export function bindingsClash(a: HostBinding, b: HostBinding): boolean {
  return (
    a.protocol === b.protocol &&
    a.hostPort === b.hostPort &&
    (a.hostIp === b.hostIp || (sameFamily(a.hostIp, b.hostIp) && (isWildcard(a.hostIp) || isWildcard(b.hostIp))))
  );
}

/** Bindings indexed by protocol and port, so a clash check is O(bindings on that port). */
export class BindingIndex<T extends HostBinding> {
  private readonly byPort = new Map<string, T[]>();

  /** The first held binding that clashes with `b`, if any. */
  clashWith(b: HostBinding): T | undefined {
    return this.byPort.get(`${b.protocol}/${b.hostPort}`)?.find((held) => bindingsClash(held, b));
  }

  add(b: T): void {
    const key = `${b.protocol}/${b.hostPort}`;
    const list = this.byPort.get(key);
    if (list) list.push(b);
    else this.byPort.set(key, [b]);
  }
}

/**
 * The daemon's held host ports (see kernel/port-hold.ts): one bound socket per published binding,
 * so no host process can take a published port. They are bound on the daemon's own thread, which
 * never leaves the host namespace: a bind is a couple of system calls, where a round trip to the
 * kernel thread costs more and would wait behind whatever that thread is doing (a setup's veth).
 * The store is the truth; the held set follows it:
 * bindings are held when they are chosen, released when their container lets them go, and
 * `sync` (start-up, reconcile) makes the held set equal the store's bindings again, which also
 * releases any hold a failed operation left behind.
 */
import type { PortRecord } from '../store/store.js';
import type { HostBinding } from '../firewall/port-clash.js';
import { releasePort, tryHoldPort } from '../kernel/port-hold.js';
import type { EngineContext } from './context.js';

const key = (b: HostBinding) => `${b.protocol}/${b.hostIp}/${b.hostPort}`;

export class PortHolds {
  private readonly held = new Map<string, number>();

  /**
   * Holds the binding; false when another process has the port bound. A binding already held
   * here (a failed operation's leftover the store no longer has) is simply kept.
   */
  acquire(b: HostBinding): boolean {
    if (this.held.has(key(b))) return true;
    const fd = tryHoldPort(b.protocol, b.hostIp, b.hostPort);
    if (fd === 'busy') return false;
    this.held.set(key(b), fd);
    return true;
  }

  release(bindings: HostBinding[]): void {
    for (const b of bindings) {
      const fd = this.held.get(key(b));
      if (fd === undefined) continue;
      this.held.delete(key(b));
      releasePort(fd);
    }
  }

  /** Makes the held set the store's bindings; returns the bindings another process holds. */
  sync(ports: PortRecord[]): PortRecord[] {
    const wanted = new Set(ports.map(key));
    for (const [k, fd] of this.held) {
      if (wanted.has(k)) continue;
      this.held.delete(k);
      releasePort(fd);
    }
    return ports.filter((p) => !this.acquire(p));
  }
}

const registry = new WeakMap<EngineContext, PortHolds>();

/** The held ports of one engine (one daemon). */
export function portHolds(ctx: EngineContext): PortHolds {
  let holds = registry.get(ctx);
  if (!holds) registry.set(ctx, (holds = new PortHolds()));
  return holds;
}

/**
 * Published ports: turning `-p` requests into concrete bindings. A binding is refused when berth
 * already publishes the same host address/port/protocol (the error names the container holding
 * it) or when a host process is listening there. Ephemeral ports come from Linux's default
 * ephemeral range, lowest free first.
 */
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import { conflict, invalid } from '../errors.js';
import type { ContainerConfig, PortRecord } from '../store/store.js';
import type { EngineContext } from './context.js';

const EPHEMERAL_FIRST = 32768;
const EPHEMERAL_LAST = 60999;

type Requested = ContainerConfig['ports'][number];

/** True when a host process already holds the port (we bind it for an instant to find out). */
export function hostPortBusy(protocol: 'tcp' | 'udp', hostIp: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (protocol === 'udp') {
      const sock = dgram.createSocket('udp4');
      sock.once('error', () => resolve(true));
      sock.bind({ address: hostIp, port, exclusive: true }, () => sock.close(() => resolve(false)));
      return;
    }
    const server = net.createServer();
    server.once('error', () => resolve(true));
    server.listen({ host: hostIp, port, exclusive: true }, () => server.close(() => resolve(false)));
  });
}

function holderMessage(ctx: EngineContext, held: PortRecord, what: string): string {
  const name = ctx.store.container(held.containerId)?.name ?? held.containerId;
  return `Bind for ${what} failed: port is already allocated to container ${name}: choose another host port or remove ${name}`;
}

/** Host addresses a binding may use: 0.0.0.0, loopback, or an address of the host namespace. */
async function hostAddresses(ctx: EngineContext): Promise<Set<string>> {
  return new Set((await ctx.kernel.call('addresses', {})).map((a) => a.address));
}

export async function resolveBindings(
  ctx: EngineContext,
  containerId: string,
  requested: Requested[],
  containerIp: string,
): Promise<PortRecord[]> {
  if (requested.length === 0) return [];
  // Only a binding to a specific host address needs the host's address list (a netlink dump).
  const needsAddresses = requested.some((r) => r.hostIp !== '0.0.0.0' && !r.hostIp.startsWith('127.'));
  const addresses = needsAddresses ? await hostAddresses(ctx) : new Set<string>();
  const out: PortRecord[] = [];
  const claimed = new Set<string>();
  const key = (p: string, ip: string, port: number) => `${p}/${ip}/${port}`;
  const isTaken = async (protocol: 'tcp' | 'udp', hostIp: string, port: number) =>
    claimed.has(key(protocol, hostIp, port)) ||
    claimed.has(key(protocol, '0.0.0.0', port)) ||
    ctx.store.portHolder(protocol, hostIp, port) !== undefined ||
    ctx.store.portHolder(protocol, '0.0.0.0', port) !== undefined ||
    (await hostPortBusy(protocol, hostIp, port));

  for (const req of requested) {
    if (req.hostIp !== '0.0.0.0' && !req.hostIp.startsWith('127.') && !addresses.has(req.hostIp)) {
      throw invalid(`host IP ${req.hostIp} in -p ${req.hostIp}:${req.hostPort || ''}:${req.containerPort} is not an address of this host: use 0.0.0.0, 127.0.0.1 or one of: ${[...addresses].join(', ')}`);
    }
    let port = req.hostPort;
    if (port === 0) {
      const [first, last] = req.hostPortRange ?? [EPHEMERAL_FIRST, EPHEMERAL_LAST];
      port = 0;
      for (let p = first; p <= last; p++) {
        if (!(await isTaken(req.protocol, req.hostIp, p))) {
          port = p;
          break;
        }
      }
      if (port === 0) throw conflict(`no free host port in ${first}-${last} for ${req.containerPort}/${req.protocol}`);
    } else {
      const what = `${req.hostIp}:${port}`;
      const held =
        ctx.store.portHolder(req.protocol, req.hostIp, port) ??
        (req.hostIp === '0.0.0.0' ? anyHolder(ctx, req.protocol, port) : ctx.store.portHolder(req.protocol, '0.0.0.0', port));
      if (held) throw conflict(holderMessage(ctx, held, what));
      if (claimed.has(key(req.protocol, req.hostIp, port))) throw conflict(`host port ${what}/${req.protocol} is published twice in this command`);
      if (await hostPortBusy(req.protocol, req.hostIp, port)) {
        throw conflict(`cannot publish ${what}/${req.protocol}: a host process is already listening there (bind: address already in use)`);
      }
    }
    claimed.add(key(req.protocol, req.hostIp, port));
    out.push({ containerId, protocol: req.protocol, hostIp: req.hostIp, hostPort: port, containerPort: req.containerPort, containerIp });
  }
  return out;
}

/** A 0.0.0.0 binding clashes with a binding of the same port on any specific address. */
function anyHolder(ctx: EngineContext, protocol: string, port: number): PortRecord | undefined {
  return ctx.store.portHolderAnyIp(protocol, port);
}

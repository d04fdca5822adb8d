/**
 * This host's WireGuard tunnel to the other hosts, for encrypted overlays: their VXLAN runs
 * between hosts' tunnel addresses instead of their underlay addresses, so every frame crosses the
 * underlay inside WireGuard. Made on demand (the first encrypted network), with:
 * - a key pair kept in ROOT/wireguard.json, mode 0600: the private key never leaves the host;
 *   the public key, tunnel address and port go into the host's record in etcd;
 * - a tunnel address held in etcd with compare-and-swap (on the host's lease), from 10.254.0.0/16;
 * - the device from the userspace implementation, wireguard-go, one process per host (the
 *   kernel on this machine has no WireGuard), configured through its UAPI socket in one write
 *   whenever the set of peers changes.
 * The process outlives a daemon restart (it is not the daemon's child in any way that matters),
 * so a quick restart does not interrupt encrypted traffic; it stops with the last encrypted network.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError } from '../errors.js';
import { aliasPrefix } from '../constants.js';
import { cidrContains, formatIpv4, parseCidr, parseIpv4 } from '../ipam/ipv4.js';
import type { Kernel } from '../kernel/kernel.js';
import type { Logger } from '../log.js';
import { isAlive, processStartTime, terminate } from '../runtime/process.js';
import type { ClusterAgent } from './agent.js';
import * as K from './keys.js';
import { UAPI_DIR, WIREGUARD_OVERHEAD_IPV4, WIREGUARD_PORT, generateKeyPair, parseGet, publicKeyOf, setMessage, uapi, type KeyPair } from './wireguard-uapi.js';

export const TUNNEL_CIDR = '10.254.0.0/16';
const WIREGUARD_GO = 'wireguard-go';

interface TunnelState extends KeyPair {
  address?: string;
  pid?: number;
  pidStart?: string;
}

/** Where wireguard-go is, if anywhere on PATH. */
export function wireguardGoPath(): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir, WIREGUARD_GO);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

export class Tunnel {
  readonly ifname: string;
  private state: TunnelState | undefined;
  private active = false;
  private starting: Promise<void> | undefined;

  constructor(
    private readonly agent: ClusterAgent,
    private readonly deps: { root: string; owner: string; kernel: Kernel; log: Logger },
  ) {
    this.ifname = `bwg${deps.owner.slice(0, 8)}`;
  }

  /** Refuses an encrypted network up front when this host has no WireGuard implementation. */
  static checkAvailable(): void {
    if (!wireguardGoPath()) {
      throw new BerthError(
        'unavailable',
        "-o encrypted needs WireGuard, and this host has no implementation berth can drive: install wireguard-go (Debian: apt-get install wireguard-go); this kernel's WireGuard module is not used",
      );
    }
  }

  get address(): string | undefined {
    return this.active ? this.state?.address : undefined;
  }

  /** The MTU inside the tunnel on this host. */
  get mtu(): number {
    return this.agent.underlay.mtu - WIREGUARD_OVERHEAD_IPV4;
  }

  private get statePath(): string {
    return path.join(this.deps.root, 'wireguard.json');
  }

  private get socketPath(): string {
    return path.join(UAPI_DIR, `${this.ifname}.sock`);
  }

  /** Brings the tunnel up (idempotent): keys, address, device, peers, and the host record. */
  ensure(): Promise<void> {
    if (this.active) return Promise.resolve();
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async start(): Promise<void> {
    Tunnel.checkAvailable();
    const state = this.loadState();
    state.address = await this.claimAddress(state.address);
    this.state = state;
    this.saveState();
    await this.ensureProcess();
    await this.deps.kernel.call('configureTunnelLink', {
      name: this.ifname,
      // A kind of its own: the reconciler removes network-marked links no network record names.
      mark: `${aliasPrefix(this.deps.owner, 'tunnel')}${this.agent.hostId}`,
      address: state.address,
      prefix: parseCidr(TUNNEL_CIDR).prefix,
      mtu: this.mtu,
    });
    this.active = true;
    await this.syncPeers();
    await this.agent.updateHost({ tunnel: { publicKey: state.publicKey, address: state.address, port: WIREGUARD_PORT } });
    this.deps.log.info('WireGuard tunnel up', { device: this.ifname, address: state.address, port: WIREGUARD_PORT });
  }

  /** Every other host with a tunnel becomes a peer; one UAPI write replaces the whole set. */
  async syncPeers(): Promise<void> {
    // Before the first list (a restart's reconcile) no peer is known yet: configuring none would
    // cut the running tunnel; the listing's hostsChanged configures them.
    if (!this.active || !this.state || !this.agent.listed) return;
    const peers = this.agent
      .hostList()
      .filter((h) => h.id !== this.agent.hostId && h.tunnel)
      .map((h) => ({ publicKey: h.tunnel!.publicKey, endpoint: h.address, port: h.tunnel!.port, allowedIps: [`${h.tunnel!.address}/32`] }));
    const current = parseGet(await uapi(this.socketPath, 'get=1\n\n'));
    const change = setMessage({ privateKey: this.state.privateKey, listenPort: WIREGUARD_PORT, peers }, current);
    if (change) await uapi(this.socketPath, change);
  }

  /** Whether a wireguard-go of this host's still runs (a previous daemon started it). */
  hasProcess(): boolean {
    const s = this.state ?? this.loadState();
    return Boolean(s.pid && isAlive(s.pid, s.pidStart ?? null));
  }

  /** Stops the tunnel (the last encrypted network went): process, device, address, record. */
  async stop(): Promise<void> {
    if (!this.state) this.state = this.loadState();
    this.active = false;
    if (this.state.pid && isAlive(this.state.pid, this.state.pidStart ?? null)) await terminate(this.state.pid, this.state.pidStart ?? null, 2000);
    if (this.state.address) await this.agent.etcd.delete(K.tunnelKey(this.state.address)).catch(() => undefined);
    this.state = { privateKey: this.state.privateKey, publicKey: this.state.publicKey };
    this.saveState();
    await this.agent.updateHost({ tunnel: undefined });
    this.deps.log.info('WireGuard tunnel down', { device: this.ifname });
  }

  private loadState(): TunnelState {
    try {
      const s = JSON.parse(fs.readFileSync(this.statePath, 'utf8')) as TunnelState;
      if (publicKeyOf(s.privateKey) === s.publicKey) return s;
    } catch {
      /* first use, or a damaged file: a new key pair */
    }
    return generateKeyPair();
  }

  private saveState(): void {
    fs.writeFileSync(`${this.statePath}.tmp`, JSON.stringify(this.state), { mode: 0o600 });
    fs.renameSync(`${this.statePath}.tmp`, this.statePath);
  }

  /** The previous address if it is still ours (or free), else the lowest free one. */
  private async claimAddress(previous: string | undefined): Promise<string> {
    const cidr = parseCidr(TUNNEL_CIDR);
    const value = this.agent.hostId;
    const { kvs } = await this.agent.etcd.list(K.TUNNELS);
    const held = new Map(kvs.map((kv) => [kv.key.slice(K.TUNNELS.length), kv.value]));
    const candidates: string[] = [];
    if (previous && cidrContains(cidr, parseIpv4(previous))) candidates.push(previous);
    for (let ip = cidr.network + 1; ip < cidr.network + 2 ** (32 - cidr.prefix) - 1 && candidates.length < 64; ip++) {
      const a = formatIpv4(ip);
      if (!held.has(a) || held.get(a) === value) candidates.push(a);
    }
    for (const a of candidates) {
      const key = K.tunnelKey(a);
      if (held.get(a) === value) {
        await this.agent.etcd.put(key, value, this.agent.leaseId);
        return a;
      }
      if (held.has(a)) continue;
      const txn = await this.agent.etcd.txn([{ key, target: 'CREATE', value: 0 }], [{ put: { key, value, lease: this.agent.leaseId } }]);
      if (txn.succeeded) return a;
    }
    throw new BerthError('unavailable', `no tunnel address left in ${TUNNEL_CIDR} for this host`);
  }

  /** Reuses a running wireguard-go for the device, or starts one and waits for its socket. */
  private async ensureProcess(): Promise<void> {
    const s = this.state!;
    const mark = await this.deps.kernel.call('linkMark', { name: this.ifname });
    if (s.pid && isAlive(s.pid, s.pidStart ?? null) && mark.exists && fs.existsSync(this.socketPath)) return;
    if (mark.exists && mark.alias && !mark.alias.startsWith(aliasPrefix(this.deps.owner, 'tunnel'))) {
      throw new BerthError('conflict', `link ${this.ifname} exists on the host and berth did not create it`);
    }
    const log = fs.openSync(path.join(this.deps.root, 'wireguard-go.log'), 'a');
    try {
      // Foreground (-f) in a session of its own: berth keeps its PID, and a daemon that dies does not take it along.
      const child = spawn(wireguardGoPath()!, ['-f', this.ifname], { detached: true, stdio: ['ignore', log, log], env: { ...process.env, LOG_LEVEL: 'error' } });
      child.unref();
      s.pid = child.pid;
      s.pidStart = child.pid ? processStartTime(child.pid) : undefined;
    } finally {
      fs.closeSync(log);
    }
    const deadline = Date.now() + 5000;
    while (!fs.existsSync(this.socketPath)) {
      if (Date.now() > deadline || !s.pid || !isAlive(s.pid, s.pidStart ?? null)) {
        const tail = fs.readFileSync(path.join(this.deps.root, 'wireguard-go.log'), 'utf8').slice(-500);
        throw new BerthError('unavailable', `wireguard-go did not bring up ${this.ifname}: ${tail || 'no output'}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    this.saveState();
  }
}

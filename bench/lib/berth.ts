/**
 * berth as the bench drives it: a test Sandbox (its own "host" namespace, root and socket) and the
 * daemon's HTTP API through src/api/client.ts from this process, so no CLI start-up is measured.
 *
 * Network-only containers (`start?detach=0`) have no process; the daemon's reaper frees such a
 * container 30 s after creation unless a PID is reported. Long-lived ones (scale, data plane) are
 * therefore given the PID of a process the bench owns: a server running in the container, or one
 * placeholder `sleep` per sandbox.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { ApiClient } from '../../src/api/client.js';
import { Sandbox } from '../../test/helpers/sandbox.js';
import { msSince } from './stats.js';
import { BUSYBOX } from './paths.js';
import { sleep } from './exec.js';
import type { Scope } from './scope.js';

export interface PortSpec {
  hostPort: number;
  containerPort: number;
}

export interface Timed {
  id: string;
  ms: number;
}

export interface ContainerInfo {
  id: string;
  name: string;
  netns: string;
  ip: string;
  /** On a dual-stack network. */
  ip6?: string;
}

interface InspectShape {
  Id: string;
  Name: string;
  NetworkSettings: { SandboxKey: string; IPAddress: string; Networks: Record<string, { IPAddress: string; GlobalIPv6Address?: string }> };
}

/** Every API call is bounded: a daemon that hangs fails the section instead of the whole run. */
const API_TIMEOUT_MS = 60_000;

class BoundedClient {
  constructor(private readonly client: ApiClient) {}

  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${method} ${path}: no answer from the daemon in ${API_TIMEOUT_MS / 1000} s`)), API_TIMEOUT_MS);
    });
    return Promise.race([this.client.request<T>(method, path, body), timeout]).finally(() => clearTimeout(timer));
  }
}

export interface SetupOptions {
  name?: string;
  network: string;
  ports?: PortSpec[];
  netOnly: boolean;
  cmd?: string[];
}

/** The one request of a setup: berth's create?start=1 creates and starts (detach=0: network only). */
export function setupRequest(opts: SetupOptions): { path: string; body: unknown } {
  return {
    path: `/containers/create?start=1&detach=${opts.netOnly ? 0 : 1}`,
    body: {
      name: opts.name,
      cmd: opts.cmd ?? [BUSYBOX, 'sleep', '3600'],
      networkMode: opts.network,
      ports: (opts.ports ?? []).map((p) => ({ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: p.hostPort, containerPort: p.containerPort })),
    },
  };
}

export class BerthHost {
  readonly api: BoundedClient;
  private placeholder: ChildProcess | undefined;

  private constructor(
    readonly sb: Sandbox,
    private readonly scope: Scope,
  ) {
    this.api = new BoundedClient(new ApiClient(`unix://${sb.socket}`));
  }

  /** A sandbox whose daemon starts after `beforeStart` (e.g. writing sb.resolvConf). */
  static async create(scope: Scope, tag: string, beforeStart?: (sb: Sandbox) => Promise<void>, daemonArgs: string[] = []): Promise<BerthHost> {
    const host = await BerthHost.createStopped(scope, tag);
    await beforeStart?.(host.sb);
    await host.sb.startDaemon(daemonArgs);
    return host;
  }

  /** The sandbox without its daemon (start it with startTimed()). */
  static async createStopped(scope: Scope, tag: string): Promise<BerthHost> {
    const sb = await Sandbox.create(tag, { startDaemon: false });
    // Killing the daemon first lets destroy() skip `berth rm -f` of every container: the
    // namespaces, mounts and rules go with the sandbox anyway.
    scope.defer(`sandbox ${sb.name}`, async () => {
      await sb.stopDaemon('SIGKILL');
      await sb.destroy();
    });
    return new BerthHost(sb, scope);
  }

  get hostNsName(): string {
    return this.sb.name;
  }

  get hostNs(): string {
    return this.sb.hostNs;
  }

  /** A bridge network by default; `driver` and `options` as `berth network create -d DRIVER -o K=V`. */
  async createNetwork(name: string, subnet: string, opts: { driver?: string; gateway?: string; options?: Record<string, string>; subnet6?: string } = {}): Promise<string> {
    const r = await this.api.request<{ Id: string }>('POST', '/networks/create', {
      Name: name,
      Driver: opts.driver,
      Options: opts.options,
      ...(opts.subnet6 && { EnableIPv6: true }),
      IPAM: { Config: [{ Subnet: subnet, Gateway: opts.gateway }, ...(opts.subnet6 ? [{ Subnet: opts.subnet6 }] : [])] },
    });
    return r.Id;
  }

  /** create + start; `netOnly` starts with ?detach=0 (network set up, no process spawned). */
  async setup(opts: SetupOptions): Promise<Timed> {
    const { path, body } = setupRequest(opts);
    const t0 = process.hrtime.bigint();
    const { Id } = await this.api.request<{ Id: string }>('POST', path, body);
    return { id: Id, ms: msSince(t0) };
  }

  /**
   * rm -f as the caller sees it. The daemon answers before the kernel side of the teardown ends
   * (it logs `container rm settled` when it has); untimed, this then waits for that line, so the
   * next system's operation does not start behind berth's leftover work, as it never starts
   * behind a peer's (their teardown returns when their process has exited).
   */
  async teardown(id: string): Promise<number> {
    const from = this.sb.daemonLog.length;
    const t0 = process.hrtime.bigint();
    await this.api.request('DELETE', `/containers/${id}?force=1`);
    const ms = msSince(t0);
    const settled = `"msg":"container rm settled","container":"${id}"`;
    for (let i = 0; i < 400 && this.sb.daemonLog.indexOf(settled, from) < 0; i++) await sleep(1);
    return ms;
  }

  async info(id: string): Promise<ContainerInfo> {
    const c = await this.api.request<InspectShape>('GET', `/containers/${id}/json`);
    const firstNet = Object.values(c.NetworkSettings.Networks)[0];
    return { id: c.Id, name: c.Name.replace(/^\//, ''), netns: c.NetworkSettings.SandboxKey, ip: firstNet?.IPAddress || c.NetworkSettings.IPAddress, ip6: firstNet?.GlobalIPv6Address || undefined };
  }

  /** Tells the daemon that `pid` is the container's process, so the reaper keeps it. */
  async adopt(id: string, pid: number): Promise<void> {
    await this.api.request('POST', `/containers/${id}/pid`, { pid });
  }

  /** One long-lived process per sandbox that network-only containers can name as theirs. */
  placeholderPid(): number {
    if (!this.placeholder || this.placeholder.exitCode !== null) {
      this.placeholder = this.scope.spawn(BUSYBOX, ['sleep', '3600']);
    }
    return this.placeholder.pid!;
  }

  rssKb(): number | undefined {
    const pid = this.sb.daemonPid;
    if (!pid) return undefined;
    try {
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Restarts the daemon and returns the time from spawn until /_ping answers. */
  async restartTimed(extraEnv: Record<string, string> = {}): Promise<number> {
    await this.sb.stopDaemon('SIGTERM');
    return this.startTimed(extraEnv);
  }

  async startTimed(extraEnv: Record<string, string> = {}): Promise<number> {
    const saved: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(extraEnv)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    const t0 = process.hrtime.bigint();
    let started: Promise<void>;
    try {
      started = this.sb.startDaemon();
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    let failure: unknown;
    started.catch((err: unknown) => (failure = err));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (failure) throw failure;
      if (Date.now() > deadline) throw new Error('daemon did not answer /_ping within 60 s');
      try {
        await this.api.request('GET', '/_ping');
        break;
      } catch {
        await sleep(2);
      }
    }
    const ms = msSince(t0);
    await started;
    return ms;
  }

  /** Processes in the sandbox host namespace (the daemon and anything it spawned there). */
  processesInHostNs(): number {
    let ino: number;
    try {
      ino = fs.statSync(this.sb.hostNs).ino;
    } catch {
      return NaN;
    }
    let n = 0;
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (fs.statSync(`/proc/${pid}/ns/net`).ino === ino) n++;
      } catch {
        /* exited meanwhile */
      }
    }
    return n;
  }
}

/**
 * CNI plugins driven directly, as a runtime (libcni) drives them: each plugin exec'd with the
 * CNI_* variables and its config on stdin, in chain order for ADD (each gets the previous result
 * as prevResult; portMappings injected for plugins that declare the capability) and in reverse for
 * DEL (each gets the cached final ADD result). The execs run inside a sandbox host namespace
 * through an agent; the container namespaces are `bb-` namespaces the bench adds.
 *
 * Three chains use this: the reference chain bridge + host-local + portmap + firewall (the anchors'
 * cni-full.conflist, with its own bridge, subnet and host-local dataDir), the macvlan plugin with
 * host-local, and berth's own plugin (dist/bin/berth-cni, a compiled shim that forwards to the daemon) once
 * it is built.
 */
import * as path from 'node:path';
import { Agent } from '../lib/agent-client.js';
import { run, runOk } from '../lib/exec.js';
import { BERTH_CNI, CNI_PATH } from '../lib/paths.js';
import { deleteNetns, type Scope } from '../lib/scope.js';

export type PluginConf = Record<string, unknown> & { type: string; capabilities?: { portMappings?: boolean } };

export interface ChainSpec {
  tag: string;
  name: string;
  plugins: PluginConf[];
  /** Where each plugin type's binary is. */
  binary: (type: string) => string;
}

export interface ChainTiming {
  ms: number;
  perPlugin: Record<string, number>;
}

export function referenceChain(tag: string, prefix2: string, dataDir: string): ChainSpec {
  return {
    tag,
    name: `bb-${tag}`,
    binary: (type) => path.join(CNI_PATH, type),
    plugins: [
      {
        type: 'bridge',
        bridge: `bb-${tag}br`.slice(0, 15),
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: `${prefix2}.0.0/16`, gateway: `${prefix2}.0.1` }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'firewall', backend: 'iptables' },
    ],
  };
}

/**
 * The macvlan plugin (mode bridge) on `master`, a link of the chain's host namespace, with
 * host-local on a /24 whose gateway is .1; containers get .10 and up (below: the host's own).
 */
export function macvlanChain(tag: string, master: string, prefix3: string, dataDir: string): ChainSpec {
  return {
    tag,
    name: `bb-${tag}`,
    binary: (type) => path.join(CNI_PATH, type),
    plugins: [
      {
        type: 'macvlan',
        master,
        mode: 'bridge',
        ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: `${prefix3}.0/24`, gateway: `${prefix3}.1`, rangeStart: `${prefix3}.10` }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
    ],
  };
}

/** berth's plugin, talking to the daemon at `socket`, attaching to berth network `network`. */
export function berthChain(tag: string, socket: string, network: string): ChainSpec {
  return {
    tag,
    name: `bb-${tag}`,
    binary: () => BERTH_CNI,
    plugins: [{ type: 'berth', network, host: `unix://${socket}`, capabilities: { portMappings: true } }],
  };
}

export class CniChain {
  private agent!: Agent;
  private readonly results = new Map<number, unknown>();
  private readonly live = new Set<number>();

  constructor(
    private readonly scope: Scope,
    readonly spec: ChainSpec,
  ) {}

  /** `hostNs`: run the plugins there (a new `bb-TAG-host` namespace when omitted). */
  async init(hostNs?: string): Promise<void> {
    const ns = hostNs ?? (await this.scope.netns(`bb-${this.spec.tag}-host`));
    this.agent = await Agent.start(this.scope, ns);
    this.scope.defer(`${this.spec.tag} containers`, async () => {
      for (const i of this.live) await deleteNetns(this.netnsName(i));
    });
  }

  netnsName(i: number): string {
    return `bb-${this.spec.tag}-c${i}`;
  }

  netnsPath(i: number): string {
    return `/run/netns/${this.netnsName(i)}`;
  }

  async createNetns(i: number): Promise<number> {
    const r = await runOk('ip', ['netns', 'add', this.netnsName(i)]);
    this.live.add(i);
    return r.ms;
  }

  async deleteNetns(i: number): Promise<void> {
    await run('ip', ['netns', 'del', this.netnsName(i)]);
    this.live.delete(i);
  }

  private env(command: 'ADD' | 'DEL', i: number): Record<string, string> {
    return {
      CNI_COMMAND: command,
      CNI_CONTAINERID: `bbcni${this.spec.tag}${i}`,
      CNI_NETNS: this.netnsPath(i),
      CNI_IFNAME: 'eth0',
      CNI_PATH: `${CNI_PATH}:${path.dirname(BERTH_CNI)}`,
    };
  }

  /** `hostPort`: the one published port, for plugins that map ports (none when undefined). */
  private conf(p: PluginConf, hostPort: number | undefined, prevResult: unknown): string {
    const conf: Record<string, unknown> = { cniVersion: '1.0.0', name: this.spec.name, ...p };
    if (p.capabilities?.portMappings && hostPort !== undefined) conf.runtimeConfig = { portMappings: [{ hostPort, containerPort: 80, protocol: 'tcp' }] };
    if (prevResult !== undefined) conf.prevResult = prevResult;
    return JSON.stringify(conf);
  }

  /**
   * The process start every plugin pays, from the same agent: /bin/true started and reaped as the
   * plugins are, and through Node's child_process (what the bench's exec cost before).
   */
  async execFloor(): Promise<{ execTrueMs: number; execTrueNodeMs: number }> {
    const [vfork, node] = [await this.agent.exec('/bin/true', []), await this.agent.exec('/bin/true', [], { via: 'node' })];
    if (vfork.code !== 0 || node.code !== 0) throw new Error(`/bin/true failed: ${vfork.stderr}${node.stderr}`);
    return { execTrueMs: vfork.ms, execTrueNodeMs: node.ms };
  }

  async add(i: number, hostPort?: number): Promise<ChainTiming> {
    let prev: unknown;
    const perPlugin: Record<string, number> = {};
    let ms = 0;
    for (const p of this.spec.plugins) {
      const r = await this.agent.exec(this.spec.binary(p.type), [], { input: this.conf(p, hostPort, prev), env: this.env('ADD', i) });
      if (r.code !== 0) throw new Error(`CNI ADD ${p.type} #${i} failed (exit ${r.code}): ${(r.stdout + r.stderr).trim().slice(0, 400)}`);
      perPlugin[p.type] = r.ms;
      ms += r.ms;
      prev = JSON.parse(r.stdout);
    }
    this.results.set(i, prev);
    return { ms, perPlugin };
  }

  async del(i: number, hostPort?: number): Promise<ChainTiming> {
    const prev = this.results.get(i);
    const perPlugin: Record<string, number> = {};
    let ms = 0;
    for (const p of [...this.spec.plugins].reverse()) {
      const r = await this.agent.exec(this.spec.binary(p.type), [], { input: this.conf(p, hostPort, prev), env: this.env('DEL', i) });
      if (r.code !== 0) throw new Error(`CNI DEL ${p.type} #${i} failed (exit ${r.code}): ${(r.stdout + r.stderr).trim().slice(0, 400)}`);
      perPlugin[p.type] = r.ms;
      ms += r.ms;
    }
    this.results.delete(i);
    return { ms, perPlugin };
  }
}

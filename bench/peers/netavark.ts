/**
 * Debian's netavark 1.4 (with aardvark-dns), driven the way Podman drives it: `netavark setup
 * NETNS` / `teardown NETNS` with the network JSON on stdin (the anchors' nv-dns.json shape). It
 * runs inside its own sandbox host namespace through an agent, with its own --config directory;
 * aardvark-dns, which it spawns, sees only the bench's resolv.conf (see lib/agent-client.ts).
 * netavark 1.4 does no IPAM, so the bench assigns the static IPs; it has no nftables driver, so
 * NETAVARK_FW=iptables (iptables-nft here). Besides its bridge it drives its macvlan driver, on a
 * parent link of the host namespace, without DNS (Podman's shape of a `-d macvlan` network).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Agent } from '../lib/agent-client.js';
import { run, runOk } from '../lib/exec.js';
import { AARDVARK, NETAVARK } from '../lib/paths.js';
import { deleteNetns, type Scope } from '../lib/scope.js';

/** A bridge network on a /16 (the default). */
export interface NetavarkBridgeOptions {
  tag: string;
  driver?: 'bridge';
  /** First two octets of the network's /16. */
  prefix2: string;
  dns: boolean;
  /** What aardvark-dns forwards to (its /etc/resolv.conf); an unroutable TEST-NET address by default. */
  upstream?: string;
}

/** A macvlan network (mode bridge) on a /24 whose gateway is .1; containers get .10 and up. */
export interface NetavarkMacvlanOptions {
  tag: string;
  driver: 'macvlan';
  /** The parent link, in the host namespace (up before the first setup). */
  parent: string;
  /** First three octets of the network's /24. */
  prefix3: string;
}

export type NetavarkOptions = NetavarkBridgeOptions | NetavarkMacvlanOptions;

/** The first container address of a macvlan /24 (below it: the gateway and the host's own). */
const MACVLAN_FIRST_HOST = 10;

export class Netavark {
  agent!: Agent;
  hostNs = '';
  private configDir = '';
  readonly network: string;
  readonly bridge: string;
  private readonly live = new Set<number>();

  constructor(
    private readonly scope: Scope,
    readonly opts: NetavarkOptions,
  ) {
    this.network = `bb-${opts.tag}`;
    this.bridge = `bb-${opts.tag}br`.slice(0, 15);
  }

  get hostNsName(): string {
    return `bb-${this.opts.tag}-host`;
  }

  get gateway(): string {
    return this.opts.driver === 'macvlan' ? `${this.opts.prefix3}.1` : `${this.opts.prefix2}.0.1`;
  }

  get subnet(): string {
    return this.opts.driver === 'macvlan' ? `${this.opts.prefix3}.0/24` : `${this.opts.prefix2}.0.0/16`;
  }

  async init(): Promise<void> {
    this.hostNs = await this.scope.netns(this.hostNsName);
    const dir = this.scope.tempDir(`${this.opts.tag}-netavark`);
    this.configDir = path.join(dir, 'config');
    fs.mkdirSync(this.configDir);
    if (this.opts.driver === 'macvlan') {
      this.agent = await Agent.start(this.scope, this.hostNs);
    } else {
      const resolv = path.join(dir, 'resolv.conf');
      fs.writeFileSync(resolv, `nameserver ${this.opts.upstream ?? '192.0.2.53'}\n`);
      this.scope.killPidFileAtClose(path.join(this.configDir, 'aardvark-dns', 'aardvark.pid'));
      this.agent = await Agent.start(this.scope, this.hostNs, { resolvConf: resolv });
    }
    // Containers still set up at the end are removed with their namespaces (registered after the
    // agent, so they go first).
    this.scope.defer(`${this.opts.tag} containers`, async () => {
      for (const i of this.live) await deleteNetns(this.netnsName(i));
    });
  }

  netnsName(i: number): string {
    return `bb-${this.opts.tag}-c${i}`;
  }

  netnsPath(i: number): string {
    return `/run/netns/${this.netnsName(i)}`;
  }

  containerName(i: number): string {
    return `bb-${this.opts.tag}-c${i}`;
  }

  ipOf(i: number): string {
    if (this.opts.driver === 'macvlan') {
      const n = MACVLAN_FIRST_HOST + i;
      if (n > 254) throw new Error(`netavark macvlan container ${i} has no address left in ${this.subnet}`);
      return `${this.opts.prefix3}.${n}`;
    }
    const n = i + 2;
    return `${this.opts.prefix2}.${Math.floor(n / 250)}.${(n % 250) + 2}`;
  }

  private networkInfo(): Record<string, unknown> {
    const common = { id: 'b0'.repeat(32), internal: false, ipv6_enabled: false, name: this.network, subnets: [{ gateway: this.gateway, subnet: this.subnet }] };
    if (this.opts.driver === 'macvlan') {
      return { ...common, dns_enabled: false, driver: 'macvlan', network_interface: this.opts.parent, options: { mode: 'bridge' }, ipam_options: { driver: 'host-local' } };
    }
    return { ...common, dns_enabled: this.opts.dns, driver: 'bridge', network_interface: this.bridge };
  }

  /** `hostPort`: the one published port (macvlan networks publish none). */
  private json(i: number, hostPort?: number): string {
    const id = i.toString(16).padStart(64, '0');
    return JSON.stringify({
      container_id: id,
      container_name: this.containerName(i),
      networks: { [this.network]: { interface_name: 'eth0', static_ips: [this.ipOf(i)], aliases: [this.containerName(i)] } },
      network_info: { [this.network]: this.networkInfo() },
      ...(hostPort === undefined ? {} : { port_mappings: [{ host_ip: '', container_port: 80, host_port: hostPort, range: 1, protocol: 'tcp' }] }),
    });
  }

  /** Creates the container's namespace (as the runtime would; not timed) and returns its cost. */
  async createNetns(i: number): Promise<number> {
    const r = await runOk('ip', ['netns', 'add', this.netnsName(i)]);
    this.live.add(i);
    return r.ms;
  }

  /** `netavark setup`, timed from spawn to exit inside the host namespace. */
  async setup(i: number, hostPort?: number): Promise<number> {
    const r = await this.agent.exec(NETAVARK, ['--config', this.configDir, '--aardvark-binary', AARDVARK, 'setup', this.netnsPath(i)], {
      input: this.json(i, hostPort),
      env: { NETAVARK_FW: 'iptables' },
    });
    if (r.code !== 0) throw new Error(`netavark setup ${i} failed (exit ${r.code}): ${(r.stdout + r.stderr).trim().slice(0, 400)}`);
    return r.ms;
  }

  async teardown(i: number, hostPort?: number): Promise<number> {
    const r = await this.agent.exec(NETAVARK, ['--config', this.configDir, '--aardvark-binary', AARDVARK, 'teardown', this.netnsPath(i)], {
      input: this.json(i, hostPort),
      env: { NETAVARK_FW: 'iptables' },
    });
    if (r.code !== 0) throw new Error(`netavark teardown ${i} failed (exit ${r.code}): ${(r.stdout + r.stderr).trim().slice(0, 400)}`);
    return r.ms;
  }

  async deleteNetns(i: number): Promise<void> {
    await run('ip', ['netns', 'del', this.netnsName(i)]);
    this.live.delete(i);
  }
}

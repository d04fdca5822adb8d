/**
 * A simulated physical LAN for drivers that put containers straight on it (macvlan, ipvlan): a
 * switch (a bridge in a namespace of its own), "NICs" of the sandbox host (veths whose other end is
 * a switch port), and LAN hosts plugged into the switch. Everything lives in namespaces the
 * sandbox owns and removes.
 */
import { must, run, type Sandbox } from './sandbox.js';

export interface LanHost {
  nsPath: string;
  address: string;
}

export class Lan {
  private ports = 0;

  private constructor(
    private readonly sb: Sandbox,
    /** The switch's namespace; its bridge is `sw`. */
    readonly switchNs: string,
    /** First three octets of the LAN's /24. */
    readonly prefix3: string,
  ) {}

  static async create(sb: Sandbox, tag: string, prefix3: string): Promise<Lan> {
    const switchNs = await sb.makeNetns(`${tag}sw`);
    for (const args of [['link', 'add', 'sw', 'type', 'bridge'], ['link', 'set', 'sw', 'up'], ['link', 'set', 'lo', 'up']]) must(await sb.inNs(switchNs, 'ip', args), `switch: ip ${args.join(' ')}`);
    return new Lan(sb, switchNs, prefix3);
  }

  get subnet(): string {
    return `${this.prefix3}.0/24`;
  }

  /** A NIC of the sandbox host on this LAN, up, with `address` (last octet) if given. */
  async addNic(name: string, address?: number): Promise<string> {
    const port = await this.plug(name, this.sb.hostNs);
    if (address !== undefined) must(await this.sb.inHost('ip', ['addr', 'add', `${this.prefix3}.${address}/24`, 'dev', name]), 'nic address');
    must(await this.sb.inHost('ip', ['link', 'set', name, 'up']), 'nic up');
    return port;
  }

  /** A LAN host (its own namespace) at `.address`, with a default route via `.gateway`. */
  async addHost(tag: string, address: number, gateway?: number): Promise<LanHost> {
    const nsPath = await this.sb.makeNetns(tag);
    await this.plug('eth0', nsPath);
    const ip = `${this.prefix3}.${address}`;
    for (const args of [['addr', 'add', `${ip}/24`, 'dev', 'eth0'], ['link', 'set', 'eth0', 'up'], ['link', 'set', 'lo', 'up']]) must(await this.sb.inNs(nsPath, 'ip', args), `lan host: ip ${args.join(' ')}`);
    if (gateway !== undefined) must(await this.sb.inNs(nsPath, 'ip', ['route', 'add', 'default', 'via', `${this.prefix3}.${gateway}`]), 'lan host route');
    return { nsPath, address: ip };
  }

  /** Sets hairpin on the switch port of a NIC (a VEPA-capable switch reflects frames back). */
  async hairpin(port: string, on: boolean): Promise<void> {
    must(await this.sb.inNs(this.switchNs, 'ip', ['link', 'set', port, 'type', 'bridge_slave', 'hairpin', on ? 'on' : 'off']), 'hairpin');
  }

  /** A veth from `ns` (named `name` there) to a new port of the switch; returns the port's name. */
  private async plug(name: string, ns: string): Promise<string> {
    const port = `p${this.ports++}`;
    const base = (p: string) => p.split('/').pop()!;
    must(await run('ip', ['-n', base(this.switchNs), 'link', 'add', port, 'type', 'veth', 'peer', 'name', name, 'netns', base(ns)]), 'veth');
    for (const args of [['link', 'set', port, 'master', 'sw'], ['link', 'set', port, 'up']]) must(await this.sb.inNs(this.switchNs, 'ip', args), `switch port: ip ${args.join(' ')}`);
    return port;
  }
}

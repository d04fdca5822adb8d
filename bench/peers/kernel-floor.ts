/**
 * The kernel floor: the kernel objects of one container (netns, veth with its peer inside, bridge
 * port, address, default route) made the cheapest way available, by berth's own kernel worker
 * (src/kernel) in an agent inside a sandbox host namespace, with nothing else around it. The
 * `withNft` variant adds one nftables map element per container, the cost of a published port.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Agent } from '../lib/agent-client.js';
import type { Scope } from '../lib/scope.js';

export class KernelFloor {
  private agent!: Agent;
  private dir = '';

  constructor(
    private readonly scope: Scope,
    readonly tag: string,
    private readonly prefix2: string,
    private readonly withNft: boolean,
  ) {}

  async init(): Promise<void> {
    const hostNs = await this.scope.netns(`bb-${this.tag}-host`);
    this.dir = path.join(this.scope.tempDir(`${this.tag}-floor`), 'netns');
    // Whatever the agent leaves mounted (if it dies midway) is unmounted here, before the
    // temporary directory is removed.
    const dir = this.dir;
    this.scope.defer(`${this.tag} mounts`, () => {
      if (!fs.existsSync(dir)) return;
      const umount = (p: string) => {
        try {
          execFileSync('umount', ['-l', p], { stdio: 'ignore' });
        } catch {
          /* not mounted */
        }
      };
      for (const f of fs.readdirSync(dir)) umount(path.join(dir, f));
      umount(dir);
    });
    this.agent = await Agent.start(this.scope, hostNs);
    await this.agent.floorInit({ dir: this.dir, bridge: `bb-${this.tag}br`.slice(0, 15), prefix2: this.prefix2, nft: this.withNft });
  }

  setup(i: number) {
    return this.agent.floorSetup(i);
  }

  teardown(i: number) {
    return this.agent.floorTeardown(i);
  }

  async close(): Promise<void> {
    await this.agent.floorClose().catch(() => undefined);
  }
}

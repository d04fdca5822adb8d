/**
 * Learns each Docker endpoint's names (container name, short id, network aliases) from dockerd's
 * API after Join, in the background: Join must answer first, since dockerd lists the container
 * with its endpoint only once the container has started. The names become the endpoint's DNS
 * aliases (engine/docker-plugin.ts), which is how containers of other hosts' dockerds find it by name.
 */
import type { Engine } from '../engine/engine.js';
import * as docker from '../engine/docker-plugin.js';
import type { Logger } from '../log.js';
import type { DockerApi } from './docker-api.js';

/** How often and how long to ask: a container start takes dockerd well under a second here. */
const RETRY_EVERY_MS = 250;
const GIVE_UP_AFTER_MS = 20_000;

export class DockerNames {
  private readonly pending = new Set<string>();
  private closed = false;

  constructor(
    private readonly engine: Engine,
    private readonly api: DockerApi,
    private readonly log: Logger,
  ) {}

  /** Starts learning one endpoint's names; returns at once. */
  learn(dockerNetworkId: string, endpointId: string): void {
    if (this.pending.has(endpointId) || this.closed) return;
    this.pending.add(endpointId);
    void this.poll(dockerNetworkId, endpointId).finally(() => this.pending.delete(endpointId));
  }

  /** Endpoints that joined while dockerd could not be asked (or before a berth restart) get theirs now. */
  learnMissing(): void {
    for (const e of docker.dockerEndpointsWithoutNames(this.engine.ctx)) this.learn(e.dockerNetworkId, e.endpointId);
  }

  close(): void {
    this.closed = true;
  }

  private async poll(dockerNetworkId: string, endpointId: string): Promise<void> {
    const short = endpointId.slice(0, 12);
    const deadline = Date.now() + GIVE_UP_AFTER_MS;
    let lastError = '';
    while (!this.closed && Date.now() < deadline) {
      try {
        const names = await this.api.namesOfEndpoint(dockerNetworkId, endpointId);
        if (names) {
          await this.engine.dockerPlugin('names', { endpoint: short, names: names.join(',') }, (ctx) => docker.dockerSetNames(ctx, endpointId, names));
          return;
        }
        // The endpoint left before dockerd listed it (a container that failed to start).
        if (!this.engine.ctx.store.containerByName(docker.recordName(endpointId))) return;
      } catch (err) {
        lastError = (err as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_EVERY_MS).unref());
    }
    if (!this.closed) {
      this.log.warn("could not learn a Docker endpoint's container name: other hosts reach it by address only", {
        endpoint: short,
        dockerHost: this.api.socketPath,
        ...(lastError ? { error: lastError } : { reason: 'dockerd lists no container with this endpoint' }),
      });
    }
  }
}

/**
 * The little of dockerd's own API berth reads (`berth daemon --docker-host`): which container holds
 * an endpoint, under which names. dockerd 20.10 sends a remote driver only ids, so this is where a
 * Docker endpoint's container name and network aliases come from. Read-only, over dockerd's unix socket.
 */
import * as http from 'node:http';
import { z } from 'zod';
import { invalid } from '../errors.js';
import { DEFAULT_DOCKER_HOST } from '../constants.js';


/** One request's bound: dockerd answers a list in milliseconds unless it is stuck. */
const REQUEST_TIMEOUT_MS = 5000;

const Networks = z.object({
  NetworkSettings: z
    .object({
      Networks: z
        .record(z.object({ EndpointID: z.string().nullish(), Aliases: z.array(z.string()).nullish() }))
        .nullish()
        .transform((v) => v ?? {}),
    })
    .nullish(),
});
const ContainerSummary = Networks.extend({
  Id: z.string(),
  Names: z
    .array(z.string())
    .nullish()
    .transform((v) => v ?? []),
});
const ContainerList = z.array(ContainerSummary);
/** `GET /containers/ID/json`: unlike the list, it carries each network's aliases. */
const ContainerInspect = Networks;

/** Parses `--docker-host`: dockerd's unix socket as `unix:///path` (or a plain path). */
export function dockerSocketOf(host: string): string {
  if (host.startsWith('unix://')) host = host.slice('unix://'.length);
  if (!host.startsWith('/')) throw invalid(`--docker-host ${host}: berth reads dockerd's API over its unix socket: give unix:///PATH (dockerd's -H, ${DEFAULT_DOCKER_HOST} by default)`);
  return host;
}

export class DockerApi {
  constructor(readonly socketPath: string) {}

  private get(path: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req = http.get({ socketPath: this.socketPath, path, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`dockerd answered GET ${path} with ${res.statusCode}: ${text.trim().slice(0, 200)}`));
          try {
            resolve(JSON.parse(text));
          } catch (err) {
            reject(err);
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error(`dockerd did not answer GET ${path} within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
    });
  }

  /**
   * The names Docker's embedded DNS answers for the container holding `endpointId` on `networkId`:
   * its name, its short id and its aliases on that network; undefined while dockerd lists no
   * container with that endpoint (it records the endpoint only once the container has started).
   */
  async namesOfEndpoint(networkId: string, endpointId: string): Promise<string[] | undefined> {
    const filters = encodeURIComponent(JSON.stringify({ network: [networkId] }));
    const list = ContainerList.parse(await this.get(`/containers/json?all=1&filters=${filters}`));
    const c = list.find((c) => endpointOf(c) !== undefined);
    if (!c) return undefined;
    const inspected = ContainerInspect.parse(await this.get(`/containers/${encodeURIComponent(c.Id)}/json`));
    // A legacy link's name (`/other/alias`) belongs to the default bridge, not to this network.
    const own = c.Names.map((n) => n.replace(/^\//, '')).filter((n) => n && !n.includes('/'));
    return [...new Set([...own, c.Id.slice(0, 12), ...(endpointOf(inspected)?.Aliases ?? [])])];

    function endpointOf(x: z.infer<typeof Networks>) {
      return Object.values(x.NetworkSettings?.Networks ?? {}).find((n) => n.EndpointID === endpointId);
    }
  }
}

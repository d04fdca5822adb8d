/** Reading a daemon's Prometheus metrics in tests. */
import { Sandbox, must, run } from './sandbox.js';

/** One sample's value from Prometheus text: the first line of `name` whose labels include `labels`. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => [k, v]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** GET /metrics on the daemon's API socket. */
export async function scrapeSocket(sb: Sandbox): Promise<string> {
  return must(await run('curl', ['-s', '--max-time', '5', '--unix-socket', sb.socket, 'http://berth/metrics']), 'scrape /metrics');
}

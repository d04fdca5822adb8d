/**
 * Small probes for integration tests, run from inside a namespace of a Sandbox: HTTP through
 * curl (with the client address a busybox httpd saw), DNS through dig. Each is bounded in time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Result, Sandbox } from './sandbox.js';

/** A web root whose index says `greeting` and whose /cgi-bin/ip prints the client address the server saw. */
export function webRoot(dir: string, greeting: string): string {
  fs.mkdirSync(path.join(dir, 'cgi-bin'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'index.html'), `${greeting}\n`);
  fs.writeFileSync(path.join(dir, 'cgi-bin', 'ip'), '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "$REMOTE_ADDR"\n', { mode: 0o755 });
  return dir;
}

/** GET `url` from namespace `nsPath`; stdout is the trimmed body. */
export async function httpGet(sb: Sandbox, nsPath: string, url: string, maxTimeS = 2): Promise<Result> {
  const r = await sb.inNs(nsPath, 'curl', ['-s', '--max-time', String(maxTimeS), url], (maxTimeS + 8) * 1000);
  // busybox httpd listens dual-stack and reports IPv4 clients as [::ffff:a.b.c.d].
  return { ...r, stdout: r.stdout.replace(/\[::ffff:([\d.]+)\]/g, '$1').trim() };
}

/** An A query from namespace `nsPath` to `server`: the reply's status and its addresses. */
export async function digA(sb: Sandbox, nsPath: string, server: string, name: string): Promise<{ status: string; answers: string[] }> {
  const r = await sb.inNs(nsPath, 'dig', [`@${server}`, '+tries=1', '+time=2', 'A', name], 10_000);
  const status = /status: (\w+)/.exec(r.stdout)?.[1] ?? `no answer (${r.code})`;
  const answers = [...r.stdout.matchAll(/^\S+\s+\d+\s+IN\s+A\s+([\d.]+)$/gm)].map((m) => m[1]!);
  return { status, answers };
}

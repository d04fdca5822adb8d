/**
 * Processes the bench runs inside namespaces: servers that must be listening before a client
 * starts (killed by PID when the scope closes), and one-shot tools that print one JSON line.
 */
import type { ChildProcess } from 'node:child_process';
import { inNs } from './exec.js';
import { tool } from './paths.js';
import type { Scope } from './scope.js';

/** Starts `cmd` in `nsPath` and resolves once its output matches `ready`. */
export function startServer(scope: Scope, nsPath: string, cmd: string, args: string[], ready: RegExp, timeoutMs = 15_000): Promise<ChildProcess> {
  const child = scope.spawn('nsenter', [`--net=${nsPath}`, '--', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} did not become ready in ${timeoutMs} ms: ${seen.slice(-500)}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      seen += String(d);
      if (ready.test(seen)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code}) before it was ready: ${seen.slice(-500)}`));
    });
  });
}

/** One of the bench's Node servers (tools/NAME.js). */
export function startNodeServer(scope: Scope, nsPath: string, name: string, args: string[]): Promise<ChildProcess> {
  return startServer(scope, nsPath, process.execPath, [tool(name), ...args], /"listening"/);
}

/** Runs one of the bench's Node tools in `nsPath` and returns the JSON it printed. */
export async function runTool<T>(nsPath: string, name: string, args: string[], timeoutMs = 60_000): Promise<T> {
  const r = await inNs(nsPath, process.execPath, [tool(name), ...args], { timeoutMs });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`${name} in ${nsPath} printed no result (exit ${r.code}): ${(r.stderr || r.stdout).slice(-500)}`);
  }
}

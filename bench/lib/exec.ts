/**
 * Running commands from the bench: every run is bounded in time, and its wall time is measured
 * around the child's whole life (spawn to exit), as a runtime exec'ing a plugin sees it.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      resolve({ code: 127, stdout: '', stderr: String(err), ms: 0 });
      return;
    }
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => errOut.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    let settled = false;
    const finish = (code: number, extra = '') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(errOut).toString('utf8') + extra,
        ms: Number(process.hrtime.bigint() - t0) / 1e6,
      });
    };
    child.on('error', (err) => finish(127, String(err)));
    child.on('close', (code, signal) => finish(code ?? 128, signal ? ` (killed by ${signal})` : ''));
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(opts.input ?? '');
  });
}

export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Ran> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  return r;
}

/** Runs a command inside a network namespace given by path (nsenter: no mount namespace change). */
export function inNs(nsPath: string, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Ran> {
  return run('nsenter', [`--net=${nsPath}`, '--', cmd, ...args], opts);
}

export async function inNsOk(nsPath: string, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Ran> {
  const r = await inNs(nsPath, cmd, args, opts);
  if (r.code !== 0) throw new Error(`[${nsPath}] ${cmd} ${args.join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  return r;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

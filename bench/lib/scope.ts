/**
 * Everything a bench section creates is registered here the moment it exists, and `close()` undoes
 * it all in reverse order, even after a failure: processes (by PID, never by name), namespaces
 * (only `bb-` ones), mounts and temporary directories. Errors are collected, not thrown midway,
 * so one failed step never leaves the rest behind.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run, runOk, sleep } from './exec.js';

export const PREFIX = 'bb-';

type Undo = { what: string; fn: () => Promise<unknown> | unknown };

export class Scope {
  private readonly undo: Undo[] = [];
  private closed = false;

  constructor(readonly tag: string) {}

  defer(what: string, fn: () => Promise<unknown> | unknown): void {
    this.undo.push({ what, fn });
  }

  /** A network namespace under /run/netns (the machine's mount namespace; its network is untouched). */
  async netns(name: string): Promise<string> {
    if (!name.startsWith(PREFIX)) throw new Error(`namespace ${name} must start with ${PREFIX}`);
    await runOk('ip', ['netns', 'add', name]);
    this.defer(`netns ${name}`, () => deleteNetns(name));
    await runOk('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return `/run/netns/${name}`;
  }

  tempDir(label: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}${label}-`));
    this.defer(`rm ${dir}`, () => fs.rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  /** A long-running child; killed by its PID at close (its process group too when detached). */
  spawn(cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn(cmd, args, { stdio: 'ignore', ...opts });
    this.track(child, `${cmd} ${args.slice(0, 4).join(' ')}`);
    return child;
  }

  track(child: ChildProcess, what: string): void {
    this.defer(`kill ${what}`, () => killChild(child));
  }

  /** A process someone else started for us (aardvark-dns): killed by the PID it wrote down. */
  killPidFileAtClose(pidFile: string): void {
    this.defer(`kill pid in ${pidFile}`, () => {
      if (!fs.existsSync(pidFile)) return;
      const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 1) killPid(pid);
    });
  }

  async close(): Promise<Error[]> {
    if (this.closed) return [];
    this.closed = true;
    const errors: Error[] = [];
    for (const u of this.undo.reverse()) {
      try {
        await u.fn();
      } catch (err) {
        errors.push(new Error(`cleanup ${u.what}: ${(err as Error).message}`));
      }
    }
    if (errors.length) process.stderr.write(`[bench:${this.tag}] ${errors.map((e) => e.message).join('; ')}\n`);
    return errors;
  }
}

export async function deleteNetns(name: string): Promise<void> {
  if (!name.startsWith(PREFIX)) return;
  if (!fs.existsSync(`/run/netns/${name}`)) return;
  await run('ip', ['netns', 'del', name]);
}

export function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

export async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  await Promise.race([exited, sleep(3000)]);
}

/**
 * Container processes are identified by PID plus start time: a PID alone can be reused by an
 * unrelated process after the container exits.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

/** State (field 3) and start time (field 22) from /proc/PID/stat, or undefined if the process is gone. */
function readStat(pid: number): { state: string; start: string } | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'. Only
  // the fields up to 22 are split off (the reaper reads this for many containers).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 20);
  return { state: fields[0]!, start: fields[19]! };
}

/** Field 22 of /proc/PID/stat (clock ticks since boot), or undefined if the process is gone. */
export function processStartTime(pid: number): string | undefined {
  return readStat(pid)?.start;
}

export function isAlive(pid: number | null, startTime: string | null): boolean {
  if (!pid) return false;
  const now = readStat(pid);
  if (now === undefined) return false;
  if (startTime && now.start !== startTime) return false;
  // A zombie has exited; its parent just has not reaped it yet.
  return now.state !== 'Z';
}

/**
 * Whether a process with this PID exists, by a null signal: one system call, no /proc read. It
 * cannot tell a reused PID from the original (isAlive can); callers check that less often.
 */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A finished process's exit status as a shell (and `docker run` / `docker exec`) reports it: its
 * exit code, or 128 + the number of the signal that ended it (141 for a SIGPIPE, 137 for a SIGKILL).
 */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + ((signal && os.constants.signals[signal]) || os.constants.signals.SIGTERM);
}

/** Sends SIGTERM, waits up to `graceMs`, then SIGKILL; resolves when the process is gone. */
export async function terminate(pid: number, startTime: string | null, graceMs: number): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      if (isAlive(pid, startTime)) process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  await waitGone(pid, startTime, deadline);
  if (!isAlive(pid, startTime)) return;
  signal('SIGKILL');
  await waitGone(pid, startTime, Date.now() + 5000);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls often at first (a killed process is usually gone within a millisecond), then less. */
async function waitGone(pid: number, startTime: string | null, deadline: number): Promise<void> {
  for (let step = 1; isAlive(pid, startTime) && Date.now() < deadline; step = Math.min(step * 2, 50)) await sleep(step);
}

/** PIDs of the processes whose network namespace is the one bound at `nsPath`, lowest first. */
export function processesInNetns(nsPath: string): number[] {
  let target: number;
  try {
    target = fs.statSync(nsPath).ino;
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (fs.statSync(`/proc/${pid}/ns/net`).ino === target) pids.push(pid);
    } catch {
      // Exited meanwhile, or not ours to see.
    }
  }
  return pids.sort((a, b) => a - b);
}

/**
 * Of `pids` (one namespace's processes), the first process of every tree that none of `claimed`
 * (known containers' PIDs) heads: what a `container:NAME` sharer started while no daemon could
 * record its PID looks like in its owner's namespace.
 */
export function unclaimedRoots(pids: number[], claimed: number[]): number[] {
  const inside = new Set(pids);
  const parent = new Map(pids.map((p) => [p, parentOf(p)]));
  const isClaimed = (pid: number): boolean => {
    for (let p = pid, hops = 0; inside.has(p) && hops < pids.length; p = parent.get(p)!, hops++) if (claimed.includes(p)) return true;
    return false;
  };
  return pids.filter((p) => !isClaimed(p) && !inside.has(parent.get(p)!));
}

/** The process of `pids` whose parent is not among them: the container's first process. */
export function rootProcess(pids: number[]): number | undefined {
  const inside = new Set(pids);
  return pids.find((pid) => !inside.has(parentOf(pid)));
}

function parentOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/**
 * SIGKILLs every process in the network namespace bound at `nsPath` (a container's own, under
 * berth's run directory), so none outlives the namespace being dropped: a child that daemonized
 * out of the container's process tree, or a process whose PID was never recorded (a daemon killed
 * between spawn and record). Scans /proc, so it runs on the kernel thread, after a teardown's
 * answer. Returns the PIDs killed.
 */
export function killProcessesInNetns(nsPath: string): number[] {
  const killed: number[] = [];
  for (const pid of processesInNetns(nsPath)) {
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // Exited meanwhile.
    }
  }
  return killed;
}

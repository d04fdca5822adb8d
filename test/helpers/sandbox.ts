/**
 * A sandbox "host" for integration tests: a network namespace of its own with a berth daemon
 * (own root, own socket) running in it, plus optional peer namespaces (a LAN client, an
 * "internet" host) joined to it by veth pairs. Nothing touches the machine's own namespace.
 * `destroy()` removes every namespace, mount and process the sandbox made, even after failures.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BERTH = path.join(REPO, 'bin/berth');

let counter = 0;

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with a time bound; never throws on a non-zero exit. */
export async function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<Result> {
  try {
    const pending = execFileP(cmd, args, {
      env: opts.env ?? process.env,
      timeout: opts.timeoutMs ?? 20_000,
      maxBuffer: 16 << 20,
    });
    // Without input, stdin is closed at once, so nothing waits on it; a command that exits before
    // reading its input is not an error of ours (EPIPE).
    pending.child.stdin?.on('error', () => undefined);
    if (opts.input === undefined) pending.child.stdin?.end();
    else pending.child.stdin?.end(opts.input);
    const { stdout, stderr } = await pending;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; killed?: boolean };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: `${e.stderr ?? ''}${e.killed ? ' (timed out)' : ''}` };
  }
}

export function must(r: Result, what: string): string {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

export interface Peer {
  name: string;
  nsPath: string;
  /** The peer's address on its link to the sandbox host. */
  address: string;
  /** The sandbox host's address on that link. */
  hostAddress: string;
}

const DAEMON_START_MS = 40_000;

export class Sandbox {
  readonly name: string;
  readonly hostNs: string;
  readonly root: string;
  readonly socket: string;
  readonly resolvConf: string;
  private daemon: ChildProcess | undefined;
  private readonly peers: Peer[] = [];
  private readonly background: ChildProcess[] = [];
  daemonLog = '';

  private constructor(tag: string) {
    this.name = `bt${process.pid % 100000}${tag}${counter++}`;
    this.hostNs = `/run/netns/${this.name}`;
    this.root = fs.mkdtempSync(`/tmp/berth-test-${this.name}-`);
    this.socket = path.join(this.root, 'berth.sock');
    this.resolvConf = path.join(this.root, 'host-resolv.conf');
  }

  /** Creates the host namespace and starts a daemon in it. */
  static async create(tag = 's', opts: { startDaemon?: boolean } = {}): Promise<Sandbox> {
    const sb = new Sandbox(tag);
    try {
      must(await run('ip', ['netns', 'add', sb.name]), 'ip netns add');
      must(await sb.inHost('ip', ['link', 'set', 'lo', 'up']), 'lo up');
      fs.writeFileSync(sb.resolvConf, 'search sandbox.test\n');
      if (opts.startDaemon !== false) await sb.startDaemon();
    } catch (err) {
      await sb.destroy();
      throw err;
    }
    return sb;
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, BERTH_HOST: `unix://${this.socket}` };
  }

  /** `entry`: the script node runs, bin/berth as a user would (a test may bypass what it does first). */
  async startDaemon(extraArgs: string[] = [], entry = BERTH): Promise<void> {
    fs.rmSync(this.socket, { force: true });
    const child = spawn(
      'nsenter',
      [`--net=${this.hostNs}`, '--', process.execPath, entry, 'daemon', '--root', path.join(this.root, 'state'), '--host', `unix://${this.socket}`, '--resolv-conf', this.resolvConf, ...extraArgs],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.daemon = child;
    child.stdout!.on('data', (d) => (this.daemonLog += d));
    child.stderr!.on('data', (d) => (this.daemonLog += d));
    // Generous: in CI two suites share 2 cores, and a start beside a heavy one (concurrency's
    // parallel CLIs) has been seen to pass 15 s on a clean clone.
    const deadline = Date.now() + DAEMON_START_MS;
    while (!fs.existsSync(this.socket)) {
      if (child.exitCode !== null) throw new Error(`daemon exited (${child.exitCode}): ${this.daemonLog}`);
      if (Date.now() > deadline) throw new Error(`daemon did not start within ${DAEMON_START_MS / 1000} s: ${this.daemonLog}`);
      await sleep(20);
    }
  }

  /**
   * Starts the daemon and SIGKILLs it `afterMs` later, as a crash during start-up would (opening
   * the store, reconciling). Resolves true if the kill landed before the daemon was ready.
   */
  async startDaemonAndKill(afterMs: number): Promise<boolean> {
    const logFrom = this.daemonLog.length;
    const booting = this.startDaemon().then(
      () => true,
      () => false,
    );
    const killed = sleep(afterMs).then(async () => {
      const child = this.daemon;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
      this.daemon = undefined;
    });
    // startDaemon notices an exit code, not a death by signal: stop waiting for it once the kill is done.
    await Promise.race([booting, killed]);
    await killed;
    return !this.daemonLog.slice(logFrom).includes('daemon ready');
  }

  /** Where the daemon bind-mounts container namespaces (under its tmpfs run directory). */
  get netnsDir(): string {
    return path.join(this.root, 'state', 'run', 'netns');
  }

  get daemonPid(): number | undefined {
    return this.daemon?.pid;
  }

  /** Stops the daemon: SIGTERM (graceful) or SIGKILL (a crash). */
  async stopDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.daemon;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    this.daemon = undefined;
  }

  /** The berth CLI, talking to this sandbox's daemon. */
  berth(...args: string[]): Promise<Result> {
    return run(process.execPath, [BERTH, ...args], { env: this.env, timeoutMs: 120_000 });
  }

  async berthOk(...args: string[]): Promise<string> {
    return must(await this.berth(...args), `berth ${args.join(' ')}`);
  }

  /** Runs a command in the sandbox host's namespace. */
  inHost(cmd: string, args: string[], timeoutMs = 15_000): Promise<Result> {
    return run('nsenter', [`--net=${this.hostNs}`, '--', cmd, ...args], { timeoutMs });
  }

  /** Runs a command in any namespace given by path. */
  inNs(nsPath: string, cmd: string, args: string[], timeoutMs = 15_000): Promise<Result> {
    return run('nsenter', [`--net=${nsPath}`, '--', cmd, ...args], { timeoutMs });
  }

  async inspect(container: string): Promise<ContainerInspect> {
    return (JSON.parse(await this.berthOk('inspect', container)) as ContainerInspect[])[0]!;
  }

  async netnsOf(container: string): Promise<string> {
    return (await this.inspect(container)).NetworkSettings.SandboxKey;
  }

  /** A bare namespace (as a runtime would make for a container), removed in destroy(). */
  async makeNetns(tag: string): Promise<string> {
    const name = `${this.name}${tag}`;
    must(await run('ip', ['netns', 'add', name]), 'ip netns add');
    this.peers.push({ name, nsPath: `/run/netns/${name}`, address: '', hostAddress: '' });
    return `/run/netns/${name}`;
  }

  /**
   * A resolver standing in for the "internet", a LAN or the host's own: dnsmasq in `nsPath`
   * answering the hosts-file lines `hosts` and nothing else (no upstream), on `listenAddress`
   * only, or on every address when it is omitted. Killed (by PID) in destroy().
   */
  serveZone(nsPath: string, hosts: string, listenAddress?: string): ChildProcess {
    const zone = path.join(fs.mkdtempSync(path.join(this.root, 'zone-')), 'hosts');
    fs.writeFileSync(zone, hosts);
    const only = listenAddress ? [`--listen-address=${listenAddress}`, '--bind-interfaces'] : [];
    return this.spawnIn(nsPath, 'dnsmasq', ['--no-daemon', '--no-resolv', '--no-hosts', `--addn-hosts=${zone}`, '--local=/#/', ...only, '--port=53', '--user=root', '--pid-file=']);
  }

  /** Starts a long-running command in a namespace; it is killed (by PID) in destroy(). */
  spawnIn(nsPath: string, cmd: string, args: string[]): ChildProcess {
    const child = spawn('nsenter', [`--net=${nsPath}`, '--', cmd, ...args], { stdio: 'ignore' });
    this.background.push(child);
    return child;
  }

  /**
   * Adds a peer namespace linked to the sandbox host by a veth pair on `subnet` (a /24 given as
   * its first three octets): the host gets .1, the peer .2 with a default route via the host.
   */
  async addPeer(tag: string, prefix3: string): Promise<Peer> {
    const name = `${this.name}${tag}`;
    const peer: Peer = { name, nsPath: `/run/netns/${name}`, address: `${prefix3}.2`, hostAddress: `${prefix3}.1` };
    this.peers.push(peer);
    must(await run('ip', ['netns', 'add', name]), 'ip netns add peer');
    const hostEnd = `${tag}h${counter++}`.slice(0, 15);
    must(await run('ip', ['-n', this.name, 'link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name]), 'veth');
    for (const [ns, dev, addr] of [[this.name, hostEnd, peer.hostAddress], [name, 'eth0', peer.address]] as const) {
      must(await run('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]), 'addr');
      must(await run('ip', ['-n', ns, 'link', 'set', dev, 'up']), 'up');
      must(await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']), 'lo');
    }
    must(await run('ip', ['-n', name, 'route', 'add', 'default', 'via', peer.hostAddress]), 'route');
    return peer;
  }

  /** Removes everything: containers' processes, the daemon, mounts, namespaces, the root. */
  async destroy(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    if (this.daemon) {
      await attempt(async () => {
        const ids = (await this.berth('ps', '-aq')).stdout.split('\n').filter(Boolean);
        if (ids.length) await this.berth('rm', '-f', ...ids);
      });
    }
    for (const child of this.background) await attempt(() => child.exitCode === null && child.kill('SIGKILL'));
    await attempt(() => this.stopDaemon('SIGKILL'));
    await attempt(() => this.killProcessesInOurNamespaces());
    const netnsDir = this.netnsDir;
    await attempt(() => {
      // Only what is still mounted: a daemon killed mid-teardown may leave a file it had unmounted.
      const mounted = new Set(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]));
      // Containers' namespaces, and those the daemon made ahead of time (engine/netns-pool.ts).
      for (const dir of [netnsDir, path.join(path.dirname(netnsDir), 'netns-pool')]) {
        if (!fs.existsSync(dir)) continue;
        for (const f of fs.readdirSync(dir)) if (mounted.has(path.join(dir, f))) execFileSync('umount', ['-l', path.join(dir, f)], { stdio: 'ignore' });
      }
    });
    await attempt(() => {
      const runDir = path.dirname(netnsDir);
      if (fs.existsSync(runDir)) execFileSync('umount', ['-l', runDir], { stdio: 'ignore' });
    });
    for (const p of this.peers) await attempt(() => run('ip', ['netns', 'del', p.name]));
    await attempt(() => run('ip', ['netns', 'del', this.name]));
    await attempt(() => fs.rmSync(this.root, { recursive: true, force: true }));
    if (errors.length) process.stderr.write(`sandbox cleanup: ${errors.map(String).join('; ')}\n`);
  }

  /** Container processes the test started: those whose network namespace is one of ours. */
  private killProcessesInOurNamespaces(): void {
    const ours = new Set<number>();
    const add = (p: string) => {
      try {
        ours.add(fs.statSync(p).ino);
      } catch {
        /* gone */
      }
    };
    add(this.hostNs);
    const netnsDir = this.netnsDir;
    if (fs.existsSync(netnsDir)) for (const f of fs.readdirSync(netnsDir)) add(path.join(netnsDir, f));
    for (const p of this.peers) add(p.nsPath);
    if (ours.size === 0) return;
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (ours.has(fs.statSync(`/proc/${pid}/ns/net`).ino) && Number(pid) !== process.pid) process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* exited meanwhile */
      }
    }
  }
}

export interface ContainerInspect {
  Id: string;
  Name: string;
  State: { Status: string; Running: boolean; Pid: number; ExitCode: number };
  NetworkSettings: {
    SandboxKey: string;
    IPAddress: string;
    GlobalIPv6Address: string;
    MacAddress: string;
    Ports: Record<string, { HostIp: string; HostPort: string }[] | null>;
    Networks: Record<
      string,
      { IPAddress: string; IPPrefixLen: number; Gateway: string; MacAddress: string; NetworkID: string; EndpointID: string; Aliases: string[]; GlobalIPv6Address: string; GlobalIPv6PrefixLen: number; IPv6Gateway: string }
    >;
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or `timeoutMs` passes; returns the last verdict. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 5000, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(stepMs);
  }
}

export const BUSYBOX = '/bin/busybox';

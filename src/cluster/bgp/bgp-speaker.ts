/**
 * berth's BGP speaker: a real BIRD (Debian's bird2), run in the daemon's namespace and supervised
 * by it. BIRD is restarted when it exits (with backoff), reconfigured in place with `birdc
 * configure` when the cluster state changes (sessions stay up), and on daemon stop shut down with
 * `graceful restart`: the kernel keeps the learned routes and the peers keep this host's, so a
 * daemon restart drops no traffic. A host that dies loses its sessions, and its routes go with them.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { BerthError, invalid } from '../../errors.js';
import type { Logger } from '../../log.js';
import { birdConfig, parseProtocols, type BgpPeer, type BgpSession } from './bird-config.js';

const run = promisify(execFile);

export interface BgpOptions {
  asn: number;
  peers: BgpPeer[];
}

/** What BIRD's configuration is made of, read from the engine's state at each refresh. */
export interface BgpSources {
  /** The other hosts of the cluster (their underlay addresses). */
  mesh(): string[];
  /** The prefixes this host advertises. */
  advertise(): Promise<string[]>;
}

export interface BgpStatus {
  asn: number;
  routerId: string;
  running: boolean;
  pid?: number;
  restarts: number;
  advertised: string[];
  sessions: BgpSession[];
  /** Sessions not Established, named for the user (e.g. `peer 192.168.90.1 (AS 65000): Active`). */
  down: string[];
}

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** A BIRD that ran this long was healthy: the next failure starts the backoff afresh. */
const HEALTHY_MS = 60_000;
const STOP_WAIT_MS = 3000;

/** The bird and birdc binaries, or a clear error (`berth doctor` reports the same). */
export function findBird(): { bird: string; birdc: string } {
  const dirs = (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter(Boolean);
  const find = (name: string) => dirs.map((d) => path.join(d, name)).find((p) => fs.existsSync(p));
  const bird = find('bird');
  const birdc = find('birdc');
  if (!bird || !birdc) throw invalid('--bgp-asn needs BIRD 2 (bird and birdc), which is not installed (or not in PATH): apt-get install bird2 (berth runs its own bird; the bird service may stay disabled)');
  return { bird, birdc };
}

export class BgpSpeaker {
  private child: ChildProcess | undefined;
  private stopping = false;
  private backoffMs = BACKOFF_FIRST_MS;
  private restarts = 0;
  private lastConfig = '';
  private advertised: string[] = [];
  private pending: Promise<void> = Promise.resolve();
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly conf: string;
  private readonly socket: string;
  private readonly pidFile: string;
  /** Present while BIRD is down for a graceful restart: the next start recovers (-R). */
  private readonly restartMark: string;
  private stderr = '';

  constructor(
    readonly opts: BgpOptions,
    readonly routerId: string,
    private readonly bin: { bird: string; birdc: string },
    dir: string,
    private readonly sources: BgpSources,
    private readonly log: Logger,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.conf = path.join(dir, 'bird.conf');
    this.socket = path.join(dir, 'bird.ctl');
    this.pidFile = path.join(dir, 'bird.pid');
    this.restartMark = path.join(dir, 'graceful-restart');
  }

  /** Writes the configuration and starts BIRD (a BIRD left by a daemon that crashed is stopped first). */
  async start(): Promise<void> {
    await this.killLeftover();
    await this.writeConfig(await this.render());
    this.spawn();
  }

  /** Rewrites the configuration from the current state; reloads BIRD if it changed. Calls are serialised. */
  refresh(): Promise<void> {
    const next = this.pending.then(async () => {
      if (this.stopping) return;
      const text = await this.render();
      if (text === this.lastConfig) return;
      await this.writeConfig(text);
      if (this.child) await this.birdc(['configure']).catch((err) => this.log.warn('BIRD did not take its new configuration; it runs on the previous one', { error: String(err) }));
    });
    this.pending = next.catch((err) => this.log.warn('could not rewrite BIRD’s configuration', { error: String(err) }));
    return this.pending;
  }

  async status(): Promise<BgpStatus> {
    const sessions = this.child ? parseProtocols(await this.birdc(['show', 'protocols']).catch(() => '')) : [];
    const asnOf = (s: BgpSession) => (s.kind === 'peer' ? this.opts.peers.find((p) => p.address === s.address)?.asn : this.opts.asn);
    const down = sessions.filter((s) => s.info.split(/\s+/)[0] !== 'Established').map((s) => `${s.kind === 'peer' ? 'peer' : 'host'} ${s.address} (AS ${asnOf(s)}): ${s.info || s.state}`);
    return { asn: this.opts.asn, routerId: this.routerId, running: Boolean(this.child), ...(this.child?.pid && { pid: this.child.pid }), restarts: this.restarts, advertised: this.advertised, sessions, down };
  }

  /**
   * Stops BIRD for a daemon restart: `graceful restart` leaves the learned routes in the kernel and
   * has the peers keep this host's for a while; killed by PID if it does not go in time.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    await this.pending;
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    fs.writeFileSync(this.restartMark, '');
    await this.birdc(['graceful', 'restart']).catch(() => undefined);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_WAIT_MS);
    await exited;
    clearTimeout(timer);
  }

  private async render(): Promise<string> {
    this.advertised = (await this.sources.advertise()).sort();
    return birdConfig({ routerId: this.routerId, asn: this.opts.asn, mesh: this.sources.mesh(), peers: this.opts.peers, advertise: this.advertised });
  }

  /** Checked with `bird -p` before it replaces the running one: a bad file never reaches BIRD. */
  private async writeConfig(text: string): Promise<void> {
    const tmp = `${this.conf}.tmp`;
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    try {
      await run(this.bin.bird, ['-p', '-c', tmp]);
    } catch (err) {
      throw new BerthError('internal', `BIRD refused the configuration berth wrote (${tmp}): ${(err as { stderr?: string }).stderr?.trim() || String(err)}`);
    }
    fs.renameSync(tmp, this.conf);
    this.lastConfig = text;
  }

  private spawn(): void {
    const recover = fs.existsSync(this.restartMark);
    fs.rmSync(this.restartMark, { force: true });
    const args = ['-f', '-c', this.conf, '-s', this.socket, '-P', this.pidFile, ...(recover ? ['-R'] : [])];
    const child = spawn(this.bin.bird, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const started = Date.now();
    this.child = child;
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8000);
      for (const line of d.toString().split('\n')) if (line.trim()) this.log.debug('bird', { line: line.trim() });
    });
    child.once('error', (err) => this.log.error('could not start BIRD', { error: String(err) }));
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (this.stopping) return;
      if (Date.now() - started > HEALTHY_MS) this.backoffMs = BACKOFF_FIRST_MS;
      this.log.error('BIRD exited; restarting it', { code, signal, inMs: this.backoffMs, stderr: this.stderr.slice(-1000) });
      this.restartTimer = setTimeout(() => {
        this.restarts++;
        if (!this.stopping) this.spawn();
      }, this.backoffMs).unref();
      this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    });
    this.log.info('BIRD started', { pid: child.pid, asn: this.opts.asn, routerId: this.routerId, recover });
  }

  /** A BIRD still running from a daemon that did not stop cleanly (its pid file, if the process is bird). */
  private async killLeftover(): Promise<void> {
    let pid: number;
    try {
      pid = Number(fs.readFileSync(this.pidFile, 'utf8').trim());
    } catch {
      return;
    }
    const comm = (() => {
      try {
        return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        return '';
      }
    })();
    if (!(pid > 1) || comm !== 'bird') return;
    // It keeps the routes while it hands over: graceful restart, as a clean stop does.
    fs.writeFileSync(this.restartMark, '');
    await this.birdc(['graceful', 'restart']).catch(() => process.kill(pid, 'SIGKILL'));
    for (let i = 0; i < 30 && fs.existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 100));
    if (fs.existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
  }

  private async birdc(args: string[]): Promise<string> {
    const { stdout } = await run(this.bin.birdc, ['-s', this.socket, ...args], { timeout: 5000 });
    return stdout;
  }
}

/**
 * A real Docker daemon (Debian's docker.io) inside a test namespace, with its own data root, exec
 * root, socket, config file and cgroup parent, so it shares nothing with a Docker the machine may
 * run. It programs iptables and docker0 inside that namespace only. `stop()` removes its
 * containers, ends it by PID and unmounts what it mounted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUSYBOX, run, sleep, type Result } from './sandbox.js';

export const DOCKER_IMAGE = 'berth-test/busybox:1';
const PLUGIN_DIR = '/run/docker/plugins';

export class Dockerd {
  private child: ChildProcess | undefined;
  log = '';

  private constructor(
    readonly nsPath: string,
    readonly dir: string,
    /** Seen by this dockerd alone as /run/docker/plugins (see start). */
    readonly pluginDir?: string,
  ) {}

  get socket(): string {
    return Dockerd.socketIn(this.dir);
  }

  /** The API socket of a dockerd started with `dir` (known before it starts). */
  static socketIn(dir: string): string {
    return path.join(dir, 'docker.sock');
  }

  /** Why dockerd cannot run here, or undefined when it can. */
  static unavailable(): string | undefined {
    for (const bin of ['dockerd', 'containerd', 'runc', 'docker', 'iptables']) {
      if (!['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => fs.existsSync(path.join(d, bin)))) return `${bin} is not installed (apt-get install docker.io)`;
    }
    return undefined;
  }

  /** Why a dockerd with a private plugin directory cannot run here, or undefined when it can. */
  static pluginsUnavailable(): string | undefined {
    return Dockerd.unavailable() ?? (fs.existsSync(PLUGIN_DIR) ? undefined : `${PLUGIN_DIR} does not exist: dockerd's plugin directory is bind-mounted over it, in a private mount namespace`);
  }

  /**
   * Starts dockerd in `nsPath` and imports a busybox image made from busybox-static. With
   * `pluginDir`, dockerd runs in a mount namespace of its own where that directory is mounted on
   * /run/docker/plugins (the only place dockerd looks for plugin sockets), so it finds the
   * test's plugins there and the machine's directory is never written.
   */
  static async start(nsPath: string, dir: string, opts: { pluginDir?: string } = {}): Promise<Dockerd> {
    fs.mkdirSync(dir, { recursive: true });
    const d = new Dockerd(nsPath, dir, opts.pluginDir);
    fs.writeFileSync(path.join(dir, 'daemon.json'), '{}\n');
    const dockerd = [
      'dockerd',
      '--config-file', path.join(dir, 'daemon.json'),
      '--data-root', path.join(dir, 'data'),
      '--exec-root', path.join(dir, 'exec'),
      '--pidfile', path.join(dir, 'docker.pid'),
      '-H', `unix://${d.socket}`,
      '--storage-driver', 'vfs',
      '--cgroup-parent', `berth-test-${path.basename(dir)}`,
    ];
    const enter = ['nsenter', `--net=${nsPath}`, '--', ...dockerd];
    // sh and nsenter exec, so the child's PID stays dockerd's.
    const [cmd, ...args] = opts.pluginDir
      ? ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount --bind "$0" /run/docker/plugins && exec "$@"', opts.pluginDir, ...enter]
      : enter;
    d.child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    d.child.stdout!.on('data', (b) => (d.log += b));
    d.child.stderr!.on('data', (b) => (d.log += b));
    const deadline = Date.now() + 30_000;
    while ((await d.docker('version', '--format', '{{.Server.Version}}')).code !== 0) {
      if (d.child.exitCode !== null) throw new Error(`dockerd exited (${d.child.exitCode}): ${d.log.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`dockerd did not start within 30 s: ${d.log.slice(-2000)}`);
      await sleep(200);
    }
    await d.importBusybox();
    return d;
  }

  docker(...args: string[]): Promise<Result> {
    return run('docker', args, { env: { ...process.env, DOCKER_HOST: `unix://${this.socket}` }, timeoutMs: 60_000 });
  }

  private async importBusybox(): Promise<void> {
    if ((await this.docker('image', 'inspect', DOCKER_IMAGE)).code === 0) return; // a restart keeps its images
    const rootfs = path.join(this.dir, 'rootfs');
    fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
    fs.copyFileSync(BUSYBOX, path.join(rootfs, 'bin', 'busybox'));
    fs.symlinkSync('busybox', path.join(rootfs, 'bin', 'sh'));
    const tar = path.join(this.dir, 'rootfs.tar');
    const packed = await run('tar', ['-C', rootfs, '-cf', tar, '.']);
    if (packed.code !== 0) throw new Error(`tar: ${packed.stderr}`);
    const imported = await this.docker('import', tar, DOCKER_IMAGE);
    if (imported.code !== 0) throw new Error(`docker import: ${imported.stderr}`);
  }

  /** Restarts the daemon (it re-applies its iptables rules on start). */
  async restart(): Promise<void> {
    await this.stopDaemon();
    const again = await Dockerd.start(this.nsPath, this.dir, { pluginDir: this.pluginDir });
    this.child = again.child;
  }

  private async stopDaemon(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const pidFile = path.join(this.dir, 'docker.pid');
    const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8')) : undefined;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // nsenter (and unshare's sh) exec dockerd, so the child's PID is dockerd's; the pid file says the same.
    process.kill(pid ?? child.pid!, 'SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
    this.child = undefined;
  }

  async stop(): Promise<void> {
    try {
      if (this.child && this.child.exitCode === null) {
        const ids = (await this.docker('ps', '-aq')).stdout.split('\n').filter(Boolean);
        if (ids.length) await this.docker('rm', '-f', ...ids);
      }
    } finally {
      await this.stopDaemon();
      const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(this.dir));
      for (const m of mounts.sort().reverse()) await run('umount', ['-l', m]);
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

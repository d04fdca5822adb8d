/**
 * Running berth's CNI plugin as a runtime does: the CNI_* variables, the config on stdin, in a
 * sandbox's host namespace; the exit code and stdout (the result or the spec's error JSON) back.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, type Sandbox } from './sandbox.js';

/** The plugin to install: the C shim, compiled by scripts/build-cni.sh (npm run build, setup.sh). */
export const CNI_PLUGIN = path.join(REPO, 'dist/bin/berth-cni');
/** The Perl shim: the fallback where there is no C compiler; it must answer as the compiled one. */
export const CNI_PLUGIN_PERL = path.join(REPO, 'bin/berth-cni');
export const REFERENCE_PLUGINS = '/usr/lib/cni';

/** CNI_PLUGIN, once it is known to be built. */
export function cniPlugin(): string {
  if (!fs.existsSync(CNI_PLUGIN)) throw new Error(`${CNI_PLUGIN} is missing: run bash scripts/build-cni.sh (npm run build and scripts/setup.sh do)`);
  return CNI_PLUGIN;
}

export interface Invocation {
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  /** Sent as is when text or bytes, else as JSON. */
  config: unknown;
  /** Default: CNI_PLUGIN. */
  plugin?: string;
  /** Variables to add, or to drop (undefined), after the runtime's. */
  env?: NodeJS.ProcessEnv;
  /** A command line the plugin runs under, inside the host namespace (e.g. unshare). */
  wrap?: string[];
}

export interface Outcome {
  code: number;
  json: Record<string, unknown> | undefined;
  raw: string;
  stdout: Buffer;
}

/** Runs one plugin in the sandbox's host namespace; killed after timeoutMs. */
export function runCni(sb: Sandbox, inv: Invocation, timeoutMs = 30_000): Promise<Outcome> {
  const plugin = inv.plugin ?? cniPlugin();
  const input = typeof inv.config === 'string' || Buffer.isBuffer(inv.config) ? inv.config : JSON.stringify(inv.config);
  return new Promise((resolve) => {
    const child = spawn('nsenter', [`--net=${sb.hostNs}`, '--', ...(inv.wrap ?? []), plugin], {
      env: {
        PATH: process.env.PATH,
        // Used when the config cannot even be read for its "host" key (malformed JSON).
        BERTH_HOST: `unix://${sb.socket}`,
        CNI_COMMAND: inv.command,
        CNI_CONTAINERID: inv.containerId ?? '',
        CNI_NETNS: inv.netns ?? '',
        CNI_IFNAME: inv.ifname ?? 'eth0',
        CNI_PATH: `${REFERENCE_PLUGINS}:${path.dirname(plugin)}`,
        ...inv.env,
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    // A plugin that exits before reading all its input is judged by what it printed, not by EPIPE.
    child.stdin.on('error', () => undefined);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(chunks);
      const raw = stdout.toString();
      let json: Record<string, unknown> | undefined;
      try {
        json = raw.trim() ? JSON.parse(raw) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? 1, json, raw, stdout });
    });
    child.stdin.end(input);
  });
}

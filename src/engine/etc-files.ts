/**
 * Each container's own /etc/hosts, /etc/resolv.conf and /etc/hostname, kept under its state
 * directory and bind-mounted over the host's inside the container's mount namespace. They are
 * rewritten in place (same inode) on connect/disconnect, so the bind mounts see the change.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_NETWORK } from '../constants.js';
import { parseExtraHost, renderHostsFile } from '../dns/hosts-file.js';
import { defaultBridgeResolvConf, parseResolvConf, renderResolvConf, userNetworkResolvConf } from '../dns/resolv-conf.js';
import type { ContainerRecord } from '../store/store.js';
import { driverOf } from '../drivers/registry.js';
import type { EngineContext } from './context.js';
import { parseNetworkMode } from './containers.js';
import { isDefaultBridge } from './networks.js';

export function etcFilePaths(ctx: EngineContext, containerId: string) {
  const dir = path.join(ctx.paths.containers, containerId);
  return { hosts: path.join(dir, 'hosts'), resolvConf: path.join(dir, 'resolv.conf'), hostname: path.join(dir, 'hostname') };
}

function hostResolvConf(ctx: EngineContext) {
  try {
    return parseResolvConf(fs.readFileSync(ctx.resolvConfPath, 'utf8'));
  } catch {
    return parseResolvConf('');
  }
}

function resolvConfFor(ctx: EngineContext, c: ContainerRecord): string {
  const host = hostResolvConf(ctx);
  const mode = parseNetworkMode(c.config.networkMode);
  const settings = { dnsSearch: c.config.dnsSearch, dnsOptions: c.config.dnsOptions };
  if (mode.kind === 'host' || mode.kind === 'none') {
    const own = { search: settings.dnsSearch?.filter((d) => d !== '.') ?? host.search, options: settings.dnsOptions ?? host.options };
    return renderResolvConf({ ...host, ...own, ...(c.config.dns.length ? { nameservers: c.config.dns } : {}) });
  }
  // The first user-defined network's resolver (on a bridge network, its gateway) answers for it.
  const first = ctx.store.endpointsOfContainer(c.id).map((e) => ctx.store.network(e.networkId)).find((n) => n && !isDefaultBridge(n));
  const resolver = first && driverOf(first)?.dns(first)?.address;
  if (resolver) return renderResolvConf(userNetworkResolvConf(host, resolver, settings));
  return renderResolvConf(defaultBridgeResolvConf(host, { ...settings, ...(c.config.dns.length ? { dns: c.config.dns } : {}) }));
}

/** Writes (or rewrites in place) the container's files; for container:NAME mode, the owner's serve. */
export function writeEtcFiles(ctx: EngineContext, c: ContainerRecord): void {
  if (c.sharesWith) return;
  const files = etcFilePaths(ctx, c.id);
  fs.mkdirSync(path.dirname(files.hosts), { recursive: true, mode: 0o755 });
  const mode = parseNetworkMode(c.config.networkMode);
  // Both addresses of a dual-stack endpoint, as Docker lists them (an IPv6-only one has one).
  const addresses = ctx.store.endpointsOfContainer(c.id).flatMap((e) => [e.ip, e.ip6].filter((ip): ip is string => Boolean(ip)));
  const hosts =
    mode.kind === 'host'
      ? safeRead('/etc/hosts')
      : renderHostsFile({ hostname: c.config.hostname, addresses, extraHosts: c.config.addHosts.map((h) => parseExtraHost(h, hostGatewayOf(ctx, c))) });
  fs.writeFileSync(files.hosts, hosts);
  fs.writeFileSync(files.resolvConf, resolvConfFor(ctx, c));
  fs.writeFileSync(files.hostname, `${c.config.hostname}\n`);
}

/** What `--add-host NAME:host-gateway` stands for: the first network's gateway, else the default bridge's. */
function hostGatewayOf(ctx: EngineContext, c: ContainerRecord): string | undefined {
  const first = ctx.store.endpointsOfContainer(c.id)[0];
  const net = first ? ctx.store.network(first.networkId) : ctx.store.networkByName(DEFAULT_NETWORK);
  return net?.gateway ?? undefined;
}

function safeRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

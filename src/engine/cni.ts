/**
 * Attachments made through the CNI plugin. The runtime owns the container and its namespace; berth
 * owns the interface, the address, the published ports and the DNS names. Each CNI container is a
 * container record named `cni-<CNI_CONTAINERID>` with no process, so it shows in `berth ps` and
 * `berth network inspect` and gets the same IPAM, DNS and ports as a `berth run` container.
 */
import * as fs from 'node:fs';
import { NAME_PATTERN } from '../constants.js';
import { isBerthError } from '../errors.js';
import { parseCidr } from '../ipam/ipv4.js';
import { cidr6Contains, formatIpv6, isIpv6Text, parseCidr6, parseIpv6 } from '../ipam/ipv6.js';
import type { ContainerRecord, NetworkRecord, PortRecord } from '../store/store.js';
import { CniCode, CniError, portRequests, type Attachment, type CniEnv, type PluginConfig } from '../cni/protocol.js';
import { hasDriver } from './networks.js';
import { driverOf } from '../drivers/registry.js';
import type { ContainerNetState, EngineContext } from './context.js';
import { checkDnsOptions, checkDnsSearch, checkDnsServers } from './container-input.js';
import { netState, undoHooks } from './containers.js';
import { leaveNetwork, startJoin } from './endpoints.js';
import { newId } from './ids.js';
import { findNetwork } from './lookup.js';
import { bindingsTo, checkPublishable, resolveBindings } from './ports.js';

export function cniContainerName(containerId: string): string {
  const name = `cni-${containerId.replace(/[^a-zA-Z0-9_.-]/g, '_')}`.slice(0, 128);
  if (!NAME_PATTERN.test(name)) throw new CniError(CniCode.invalidEnvironment, `CNI_CONTAINERID "${containerId}" cannot name a container`);
  return name;
}

function networkOf(ctx: EngineContext, config: PluginConfig): NetworkRecord {
  const ref = config.network ?? config.name;
  const net = findNetwork(ctx.store, ref);
  if (!net || !hasDriver(net)) {
    throw new CniError(CniCode.invalidConfig, `berth network "${ref}" not found: create it with \`berth network create ${ref}\` or set "network" in the plugin config`);
  }
  return net;
}

/** Turns engine errors into CNI errors with the spec's codes; CNI errors pass through. */
function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (isBerthError(err)) {
    const code = err.kind === 'invalid' ? CniCode.invalidConfig : err.kind === 'not-found' ? CniCode.unknownContainer : err.kind === 'conflict' ? CniCode.tryAgainLater : CniCode.ioFailure;
    return new CniError(code, err.message);
  }
  return new CniError(CniCode.ioFailure, (err as Error).message ?? String(err));
}

export async function cniAdd(ctx: EngineContext, env: CniEnv, config: PluginConfig): Promise<Attachment> {
  try {
    const net = networkOf(ctx, config);
    if (!fs.existsSync(env.netns)) throw new CniError(CniCode.invalidEnvironment, `CNI_NETNS ${env.netns} does not exist: pass the path of the container's network namespace`);
    const rc = config.runtimeConfig ?? {};
    const requested = requestedAddresses(rc.ips ?? [], net);
    const dns = rc.dns ?? {};
    checkDnsServers(dns.servers ?? []);
    checkDnsSearch(dns.searches ?? []);
    checkDnsOptions(dns.options ?? []);
    const name = cniContainerName(env.containerId);
    let container = ctx.store.containerByName(name);
    const created = !container;
    if (!container) container = insertCniContainer(ctx, name, env, config, net);
    if (container.netnsPath !== env.netns) {
      throw new CniError(CniCode.invalidEnvironment, `container ${env.containerId} was added in namespace ${container.netnsPath}, not ${env.netns}: DEL it first, or ADD with the same CNI_NETNS`);
    }
    if (ctx.store.endpointsOfContainer(container.id).some((e) => e.ifname === env.ifname)) {
      throw new CniError(CniCode.invalidEnvironment, `interface ${env.ifname} already exists in container ${env.containerId}: DEL it first`);
    }
    try {
      const before = netState(ctx, container.id);
      // The interface is made on the kernel thread while this thread does the ports, firewall and DNS.
      const join = await startJoin(ctx, container, net, { ...requested, aliases: rc.aliases?.[net.name] ?? [], mac: rc.mac, ifname: env.ifname }, env.netns);
      let endpoint = join.endpoint;
      let ports: PortRecord[] = [];
      let hooked: ContainerNetState | undefined;
      try {
        const requests = portRequests(config);
        if (requests.length > 0) checkPublishable(ctx, endpoint);
        ports = await resolveBindings(ctx, container.id, requests, endpoint);
        ctx.store.transaction(() => ports.forEach((p) => ctx.store.insertPort(p)));
        hooked = netState(ctx, container.id);
        await ctx.hooks.containerChanged(container.id, before, hooked);
        endpoint = await join.applied;
      } catch (err) {
        // Undo this interface only (a second interface must not take the first one with it):
        // its ports, its endpoint and veth (a failed join already dropped its own), and whatever
        // the hooks already applied for them.
        const joined = await join.applied.then(() => true, () => false);
        ctx.store.transaction(() => ports.forEach((p) => ctx.store.deletePort(p)));
        if (joined) leaveNetwork(ctx, endpoint, env.netns)();
        await undoHooks(ctx, container.id, hooked, netState(ctx, container.id), ports, 'a failed CNI ADD');
        throw err;
      }
      const resolver = driverOf(net)?.dns(net)?.address;
      return {
        hostLink: endpoint.hostLink,
        ifname: endpoint.ifname,
        mac: endpoint.mac,
        netns: env.netns,
        ...(endpoint.ip && { ip4: { address: endpoint.ip, prefix: parseCidr(net.subnet!).prefix, gateway: net.gateway! } }),
        ...(endpoint.ip6 && net.subnet6 && { ip6: { address: endpoint.ip6, prefix: parseCidr6(net.subnet6).prefix, gateway: net.gateway6! } }),
        // The network's resolver, where its driver gives it one (not on macvlan without the host shim).
        dns: { nameservers: resolver ? [resolver] : [], ...(dns.searches?.length ? { search: dns.searches } : {}), ...(dns.options?.length ? { options: dns.options } : {}) },
      };
    } catch (err) {
      if (created) ctx.store.deleteContainer(container.id);
      throw err;
    }
  } catch (err) {
    throw asCniError(err);
  }
}

/**
 * The `ips` capability: at most one address per family for the interface. Each must lie in the
 * network's subnet of its family and, when given with a prefix, have the subnet's prefix
 * (joinNetwork then checks it is free and in range).
 */
function requestedAddresses(ips: readonly string[], net: NetworkRecord): { ip?: string; ip6?: string } {
  const split = ips.map((text) => {
    const [ip, prefix] = text.split('/') as [string, string | undefined];
    return { text, ip, prefix, v6: isIpv6Text(ip) };
  });
  const v4 = split.filter((a) => !a.v6);
  const v6 = split.filter((a) => a.v6);
  if (v4.length > 1 || v6.length > 1) {
    throw new CniError(CniCode.invalidConfig, `runtimeConfig.ips asks for ${ips.join(', ')}: berth gives an interface at most one IPv4 and one IPv6 address`);
  }
  const out: { ip?: string; ip6?: string } = {};
  if (v4[0]) {
    if (!net.subnet) {
      throw new CniError(CniCode.invalidConfig, `runtimeConfig.ips ${v4[0].text}: network ${net.name} is IPv6-only: drop the IPv4 address from runtimeConfig.ips`);
    }
    const subnet = parseCidr(net.subnet);
    if (v4[0].prefix !== undefined && Number(v4[0].prefix) !== subnet.prefix) {
      throw new CniError(CniCode.invalidConfig, `runtimeConfig.ips ${v4[0].text}: the prefix must be the network's (/${subnet.prefix} on ${net.name}, ${net.subnet})`);
    }
    out.ip = v4[0].ip;
  }
  if (v6[0]) {
    const { text, ip, prefix } = v6[0];
    if (!net.subnet6) {
      throw new CniError(CniCode.invalidConfig, `runtimeConfig.ips ${text}: network ${net.name} has no IPv6: drop the IPv6 address from runtimeConfig.ips, or attach to a dual-stack network (\`berth network create --ipv6 --subnet CIDR --subnet IPV6-CIDR NAME\`)`);
    }
    const subnet = parseCidr6(net.subnet6);
    if (prefix !== undefined && Number(prefix) !== subnet.prefix) {
      throw new CniError(CniCode.invalidConfig, `runtimeConfig.ips ${text}: the prefix must be the network's (/${subnet.prefix} on ${net.name}, ${net.subnet6})`);
    }
    const address = parseIpv6(ip, 'runtimeConfig.ips address');
    if (!cidr6Contains(subnet, address)) {
      throw new CniError(CniCode.invalidConfig, `runtimeConfig.ips ${text}: it is outside network ${net.name}'s IPv6 subnet ${net.subnet6}`);
    }
    out.ip6 = formatIpv6(address);
  }
  return out;
}

function insertCniContainer(ctx: EngineContext, name: string, env: CniEnv, config: PluginConfig, net: NetworkRecord): ContainerRecord {
  const record: ContainerRecord = {
    id: newId(),
    name,
    created: new Date().toISOString(),
    config: {
      cmd: ['(cni)'],
      hostname: name,
      networkMode: net.name,
      dns: config.runtimeConfig?.dns?.servers ?? [],
      ...(config.runtimeConfig?.dns?.searches?.length ? { dnsSearch: config.runtimeConfig.dns.searches } : {}),
      ...(config.runtimeConfig?.dns?.options?.length ? { dnsOptions: config.runtimeConfig.dns.options } : {}),
      addHosts: [],
      ports: [],
      networks: [],
      autoRemove: false,
      cni: { containerId: env.containerId },
    },
    state: 'running',
    pid: null,
    pidStart: null,
    exitCode: null,
    netnsPath: env.netns,
    sharesWith: null,
  };
  ctx.store.insertContainer(record);
  return record;
}

/** Idempotent: unknown containers, interfaces and missing namespaces all succeed. */
export async function cniDel(ctx: EngineContext, env: CniEnv): Promise<void> {
  try {
    const c = ctx.store.containerByName(cniContainerName(env.containerId));
    if (!c) return;
    const endpoint = ctx.store.endpointsOfContainer(c.id).find((e) => e.ifname === env.ifname);
    const before = netState(ctx, c.id);
    let deleteVeth = () => undefined as void;
    if (endpoint) {
      // The namespace ADD recorded, not the caller's: a DEL with another (or no) CNI_NETNS must not
      // delete an interface of that name somewhere else.
      const netns = c.netnsPath ?? '';
      const nsAlive = netns !== '' && fs.existsSync(netns);
      if (env.netns !== '' && env.netns !== netns) ctx.log.warn('CNI DEL names another namespace than ADD did: acting on the recorded one', { containerId: env.containerId, given: env.netns, recorded: netns });
      ctx.store.transaction(() => bindingsTo(ctx.store.portsOfContainer(c.id), endpoint).forEach((p) => ctx.store.deletePort(p)));
      // With the namespace gone the pair went with it, unless the host end lingers: delete that by name.
      deleteVeth = leaveNetwork(ctx, endpoint, nsAlive ? netns : '/nonexistent');
    }
    await ctx.hooks.containerChanged(c.id, before, netState(ctx, c.id));
    if (ctx.store.endpointsOfContainer(c.id).length === 0) ctx.store.deleteContainer(c.id);
    deleteVeth();
  } catch (err) {
    throw asCniError(err);
  }
}

/** Verifies the interface, its addresses and default routes (each family it has) are as ADD left them. */
export async function cniCheck(ctx: EngineContext, env: CniEnv, config: PluginConfig): Promise<void> {
  const net = networkOf(ctx, config);
  const c = ctx.store.containerByName(cniContainerName(env.containerId));
  const endpoint = c && ctx.store.endpointsOfContainer(c.id).find((e) => e.ifname === env.ifname && e.networkId === net.id);
  if (!c || !endpoint) throw new CniError(CniCode.unknownContainer, `container ${env.containerId} has no interface ${env.ifname} on network ${net.name}`);
  if (!fs.existsSync(env.netns)) throw new CniError(CniCode.invalidEnvironment, `CNI_NETNS ${env.netns} does not exist`);
  const view = await ctx.kernel.call('inspect', { netnsPath: env.netns, ipv6: !!endpoint.ip6 });
  const link = view.links.find((l) => l.name === env.ifname);
  const fail = (what: string) => new CniError(100, `CHECK failed for ${env.containerId}/${env.ifname}: ${what}`);
  if (!link) throw fail(`interface ${env.ifname} is missing`);
  if (!link.up) throw fail(`interface ${env.ifname} is down`);
  if (link.mac !== endpoint.mac) throw fail(`MAC is ${link.mac}, expected ${endpoint.mac}`);
  const isFirst = ctx.store.endpointsOfContainer(c.id)[0]?.id === endpoint.id;
  if (endpoint.ip) {
    const prefix = parseCidr(net.subnet!).prefix;
    if (!view.addresses.some((a) => a.index === link.index && a.address === endpoint.ip && a.prefix === prefix)) {
      throw fail(`address ${endpoint.ip}/${prefix} is missing`);
    }
    if (isFirst && !view.routes.some((r) => r.prefix === 0 && r.gateway === net.gateway && r.oif === link.index)) {
      throw fail(`default route via ${net.gateway} is missing`);
    }
  }
  if (!endpoint.ip6 || !net.subnet6) return;
  const prefix6 = parseCidr6(net.subnet6).prefix;
  if (!view.addresses6!.some((a) => a.index === link.index && a.address === endpoint.ip6 && a.prefix === prefix6)) {
    throw fail(`IPv6 address ${endpoint.ip6}/${prefix6} is missing`);
  }
  if (isFirst && !view.routes6!.some((r) => r.prefix === 0 && r.gateway === net.gateway6 && r.oif === link.index)) {
    throw fail(`IPv6 default route via ${net.gateway6} is missing`);
  }
}

/** Removes this network's CNI attachments that the runtime no longer lists as valid. */
export async function cniGc(ctx: EngineContext, config: PluginConfig): Promise<string[]> {
  const net = networkOf(ctx, config);
  const valid = new Set((config['cni.dev/valid-attachments'] ?? []).map((a) => `${a.containerID}\0${a.ifname}`));
  const removed: string[] = [];
  for (const e of ctx.store.endpointsOfNetwork(net.id)) {
    const c = ctx.store.container(e.containerId);
    const cniId = c?.config.cni?.containerId;
    if (!c || cniId === undefined || valid.has(`${cniId}\0${e.ifname}`)) continue;
    await cniDel(ctx, { command: 'DEL', containerId: cniId, netns: c.netnsPath ?? '', ifname: e.ifname, args: '' });
    removed.push(`${cniId}/${e.ifname}`);
  }
  return removed;
}

export function cniStatus(ctx: EngineContext, config: PluginConfig): void {
  networkOf(ctx, config);
}

/**
 * /etc/resolv.conf: parsing the host's, and the files berth writes into containers.
 *
 * - User-defined networks: `nameserver <gateway>` (the embedded resolver), the host's search
 *   domains and `options ndots:0`. The host's nameservers, or the container's `--dns` servers,
 *   become the resolver's upstreams instead of file lines.
 * - Default bridge (no embedded resolver, like Docker): the host's file minus loopback nameservers,
 *   which mean nothing inside another network namespace. When none remain the file has no
 *   nameserver line at all. Docker falls back to 8.8.8.8/8.8.4.4 there; berth does not, because it
 *   must not send a container's queries to a public resolver nobody configured (and on an isolated
 *   host it would only turn a quick failure into a slow timeout).
 */
import { BlockList, isIP } from 'node:net';
import { invalid } from '../errors.js';
import type { Upstream } from './directory.js';

export interface ResolvConf {
  nameservers: string[];
  search: string[];
  options: string[];
}

/** A container's `--dns`, `--dns-search` and `--dns-option`. */
export interface DnsSettings {
  dns?: readonly string[];
  dnsSearch?: readonly string[];
  dnsOptions?: readonly string[];
}

const DNS_PORT = 53;

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Parses resolv.conf the way glibc reads it: `search` and `domain` replace each other (last one
 * wins), `options` accumulate, nameservers that are not addresses are skipped, `#`/`;` start comments.
 */
export function parseResolvConf(text: string): ResolvConf {
  const conf: ResolvConf = { nameservers: [], search: [], options: [] };
  for (const line of text.split('\n')) {
    const [keyword, ...args] = line.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (args.length === 0) continue;
    if (keyword === 'nameserver' && isIP(args[0]!) !== 0) conf.nameservers.push(args[0]!);
    else if (keyword === 'search') conf.search = args;
    else if (keyword === 'domain') conf.search = [args[0]!];
    else if (keyword === 'options') conf.options.push(...args);
  }
  return conf;
}

export function renderResolvConf(conf: ResolvConf): string {
  const lines: string[] = [];
  if (conf.search.length > 0) lines.push(`search ${conf.search.join(' ')}`);
  for (const ns of conf.nameservers) lines.push(`nameserver ${ns}`);
  if (conf.options.length > 0) lines.push(`options ${conf.options.join(' ')}`);
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** The file for a container on a user-defined network, whose resolver listens on `gateway`. */
export function userNetworkResolvConf(host: ResolvConf, gateway: string, settings: Omit<DnsSettings, 'dns'> = {}): ResolvConf {
  if (isIP(gateway) === 0) throw invalid(`DNS gateway "${gateway}" is not an IP address`);
  const options = [...validOptions(settings.dnsOptions) ?? host.options];
  // Single-label names must reach the resolver as they are, where container names live; a ndots the user or host chose is kept, as Docker does.
  if (!options.some((o) => o.startsWith('ndots:'))) options.push('ndots:0');
  return { nameservers: [gateway], search: searchOf(host, settings), options };
}

/** The file for a container on the default bridge: `--dns` servers, else the host's non-loopback ones. */
export function defaultBridgeResolvConf(host: ResolvConf, settings: DnsSettings = {}): ResolvConf {
  const nameservers = validNameservers(settings.dns) ?? host.nameservers.filter((ns) => !isLoopback(ns));
  return { nameservers: [...nameservers], search: searchOf(host, settings), options: [...validOptions(settings.dnsOptions) ?? host.options] };
}

/**
 * Resolver upstreams for a list of nameservers (the host's, or a container's `--dns`), all on port
 * 53. Loopback and scoped (`fe80::1%eth0`) addresses are kept: the resolver forwards from the
 * daemon's namespace, where they mean what the host's resolv.conf meant.
 */
export function upstreamsOf(nameservers: readonly string[]): Upstream[] {
  return nameservers.filter((ns) => isIP(ns) !== 0).map((address) => ({ address, port: DNS_PORT }));
}

/** 127.0.0.0/8 and ::1: addresses that only mean something in the namespace that wrote them. */
export function isLoopback(ip: string): boolean {
  const family = isIP(ip);
  return family !== 0 && LOOPBACK.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/** `--dns-search .` means no search domains at all, as in Docker. */
function searchOf(host: ResolvConf, settings: Omit<DnsSettings, 'dns'>): string[] {
  if (!settings.dnsSearch) return [...host.search];
  return settings.dnsSearch.filter((d) => d !== '.').map((d) => validToken(d, '--dns-search'));
}

function validNameservers(dns: readonly string[] | undefined): string[] | undefined {
  if (!dns) return undefined;
  for (const ns of dns) if (isIP(ns) === 0) throw invalid(`invalid --dns "${ns}": not an IP address`);
  return [...dns];
}

function validOptions(options: readonly string[] | undefined): string[] | undefined {
  return options?.map((o) => validToken(o, '--dns-option'));
}

/** A search domain or option is one word: whitespace would split it, `#` or `;` would cut the line. */
function validToken(value: string, flag: string): string {
  if (!/^[^\s#;]+$/.test(value)) throw invalid(`invalid ${flag} "${value}": must be one word without whitespace, "#" or ";"`);
  return value;
}

/**
 * Checks of what a client asks of a new container, before anything is recorded: each refusal
 * names the flag, the value, what is wrong with it and what would be accepted. The API and the CLI
 * reach the engine with the same fields, so these checks hold for both.
 */
import { isIP } from 'node:net';
import { invalid } from '../errors.js';
import { checkExtraHost } from '../dns/hosts-file.js';
import { formatIpv4, parseIpv4 } from '../ipam/ipv4.js';
import { canonicalIpv6 } from '../ipam/ipv6.js';
import type { ContainerConfig } from '../store/store.js';

export interface ContainerInput {
  hostname?: string;
  dns?: readonly string[];
  dnsSearch?: readonly string[];
  dnsOptions?: readonly string[];
  addHosts?: readonly string[];
  ports?: ContainerConfig['ports'];
}

/** RFC 1123 limits: a label is 1-63 letters, digits and inner hyphens; the name at most 253 characters. */
const LABEL = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
const MAX_NAME = 253;
/** The kernel keeps at most 64 bytes of hostname (__NEW_UTS_LEN): a longer one could only fail at start. */
const MAX_HOSTNAME = 64;
/** A resolv.conf option: a keyword, with a number for those that take one (`ndots:2`, `timeout:1`). */
const RESOLV_OPTION = /^[a-zA-Z0-9][a-zA-Z0-9_-]*(:[0-9]+)?$/;
const ANY_IPV4 = '0.0.0.0';

/** JSON quoting shows a newline or a control character instead of printing it. */
const shown = (v: string) => JSON.stringify(v);

/** Why `name` is not an RFC 1123 host name of at most `max` characters, or undefined when it is one. */
function hostNameProblem(name: string, max = MAX_NAME): string | undefined {
  if (name.length === 0) return 'it is empty';
  if (name.length > max) return `it is ${name.length} characters long (at most ${max})`;
  if (name.startsWith('-')) return "it starts with '-'";
  for (const label of name.split('.')) {
    if (label.length > 63) return `the label "${label.slice(0, 20)}…" is ${label.length} characters long (at most 63)`;
    if (!LABEL.test(label)) return label === '' ? 'it has an empty label (two dots in a row, or a dot at an end)' : `the label ${shown(label)} has characters other than letters, digits and inner '-'`;
  }
  return undefined;
}

export function checkHostname(hostname: string): void {
  const problem = hostNameProblem(hostname, MAX_HOSTNAME);
  if (problem) {
    throw invalid(`invalid --hostname ${shown(hostname)}: ${problem}: a hostname is dot-separated labels of 1-63 letters, digits and '-' (not first or last), at most ${MAX_HOSTNAME} characters (the kernel's limit), e.g. web-1 or web-1.example`);
  }
}

export function checkDnsServers(servers: readonly string[]): void {
  for (const s of servers) {
    if (isIP(s) === 0) throw invalid(`invalid --dns ${shown(s)}: not an IP address: give the address of a DNS server, e.g. --dns 10.0.0.53`);
  }
}

/** `.` alone means no search domains, as in Docker. */
export function checkDnsSearch(domains: readonly string[]): void {
  for (const d of domains) {
    if (d === '.') continue;
    const problem = hostNameProblem(d.endsWith('.') ? d.slice(0, -1) : d);
    if (problem) throw invalid(`invalid --dns-search ${shown(d)}: ${problem}: give a domain name such as example.com (or "." for none)`);
  }
}

export function checkDnsOptions(options: readonly string[]): void {
  for (const o of options) {
    if (!RESOLV_OPTION.test(o)) throw invalid(`invalid --dns-option ${shown(o)}: a resolv.conf option is one word, with :N for those taking a number, e.g. ndots:2, timeout:1 or edns0`);
  }
}

/**
 * A published port's host address: 0.0.0.0 or one IPv4 address in its plain dotted form, or `::`
 * or one IPv6 address in its canonical form (stored bindings compare as text).
 */
export function checkPortHostIps(ports: ContainerConfig['ports']): void {
  for (const p of ports) {
    let canonical: string | undefined;
    try {
      canonical = p.hostIp.includes(':') ? canonicalIpv6(p.hostIp) : formatIpv4(parseIpv4(p.hostIp));
    } catch {
      canonical = undefined;
    }
    if (canonical !== p.hostIp) {
      throw invalid(
        `invalid host IP ${shown(p.hostIp)} for port ${p.containerPort}/${p.protocol}: expected an IPv4 address like 127.0.0.1 (${ANY_IPV4} for every address of the host), or an IPv6 one in canonical form like ::1 (:: for every IPv6 address)${canonical ? ` — did you mean ${canonical}?` : ''}`,
      );
    }
  }
}

export function checkContainerInput(input: ContainerInput): void {
  if (input.hostname !== undefined && input.hostname !== '') checkHostname(input.hostname);
  checkDnsServers(input.dns ?? []);
  checkDnsSearch(input.dnsSearch ?? []);
  checkDnsOptions(input.dnsOptions ?? []);
  for (const h of input.addHosts ?? []) checkExtraHost(h);
  checkPortHostIps(input.ports ?? []);
}

/** `berth network …`: Docker's network commands, sent to the daemon's Docker-compatible API. */
import type { Command } from 'commander';
import { invalid } from '../../errors.js';
import type { ApiClient } from '../../api/client.js';
import type { NetworkView } from '../../engine/views.js';
import { collect, fail, forEachRef, inspectEach, printJson, table } from '../output.js';

/** `k=v` items; with `bareKeys`, a lone `k` means an empty value (Docker's `-o encrypted`, `--label k`). */
function keyValues(list: string[], what: string, bareKeys = false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq < 0 && bareKeys && item.length > 0) {
      out[item] = '';
      continue;
    }
    if (eq <= 0) throw invalid(`invalid ${what} "${item}": expected key=value`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

const enc = encodeURIComponent;

/** `--filter k=v`… as Docker's `?filters=` query: JSON of {key: {value: true}}. */
function filterQuery(list: string[]): string {
  const filters: Record<string, Record<string, boolean>> = {};
  for (const f of list) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw invalid(`invalid filter "${f}": expected key=value`);
    (filters[f.slice(0, eq)] ??= {})[f.slice(eq + 1)] = true;
  }
  return Object.keys(filters).length ? `?filters=${enc(JSON.stringify(filters))}` : '';
}

const isV6 = (text: string) => text.includes(':');

function parseBool(text: string, flag: string): boolean {
  if (text === 'true' || text === 'false') return text === 'true';
  throw invalid(`invalid ${flag} value "${text}": expected true or false`);
}

/**
 * Docker's IPAM configs from repeated --subnet/--gateway/--ip-range: one per subnet, each gateway
 * and range going to the subnet of its own family (berth takes one subnet per family).
 */
function ipamConfigs(subnets: string[], gateways: string[], ranges: string[], aux: Record<string, string>): Record<string, unknown>[] {
  for (const [flag, values] of [['--subnet', subnets], ['--gateway', gateways], ['--ip-range', ranges]] as const) {
    if (values.filter(isV6).length > 1 || values.filter((v) => !isV6(v)).length > 1) {
      throw invalid(`${flag} given twice for one address family: berth networks have one IPv4 and one IPv6 subnet at most`);
    }
  }
  const orphan = [...gateways, ...ranges].find((v) => !subnets.some((s) => isV6(s) === isV6(v)));
  if (orphan !== undefined || (Object.keys(aux).length > 0 && !subnets.some((s) => !isV6(s)))) {
    throw invalid(`--gateway, --ip-range and --aux-address need --subnet: pass the subnet they belong to${orphan ? ` (${orphan} has none of its family)` : ''}`);
  }
  return subnets.map((subnet) => ({
    Subnet: subnet,
    Gateway: gateways.find((g) => isV6(g) === isV6(subnet)),
    IPRange: ranges.find((r) => isV6(r) === isV6(subnet)),
    ...(!isV6(subnet) && { AuxiliaryAddresses: aux }),
  }));
}

export function registerNetworkCommands(program: Command, api: () => ApiClient): void {
  const network = program.command('network').description('Manage networks');

  network
    .command('create')
    .description('Create a network')
    .argument('<name>')
    .option('-d, --driver <driver>', 'driver', 'bridge')
    .option('--subnet <cidr>', 'subnet in CIDR form, e.g. 10.1.0.0/16 (once per family: with --ipv6, also e.g. fd00:1::/64)', collect, [])
    .option('--gateway <ip>', 'gateway address (default: first address of the subnet; once per family)', collect, [])
    .option('--ip-range <cidr>', 'allocate container addresses from this sub-range (once per family)', collect, [])
    .option('--ipv6', 'dual stack: IPv6 besides IPv4 (an IPv6 --subnet, or a /64 of the host\'s ULA prefix)')
    .option('--ipv4 <bool>', 'false for an IPv6-only network (Docker 28)')
    .option('--aux-address <name=ip>', 'reserve an address IPAM must not hand out (repeatable)', collect, [])
    .option('--internal', 'no access to or from outside the host')
    .option('--attachable', 'accepted for Docker compatibility: overlay networks are always attachable')
    .option('--label <k=v>', 'set a label (repeatable)', collect, [])
    .option('-o, --opt <k=v>', 'set a driver option (repeatable)', collect, [])
    .action(async (name: string, o) => {
      try {
        const res = await api().request<{ Id: string }>('POST', '/networks/create', {
          Name: name,
          Driver: o.driver,
          Internal: Boolean(o.internal),
          Attachable: Boolean(o.attachable),
          EnableIPv6: Boolean(o.ipv6),
          ...(o.ipv4 !== undefined && { EnableIPv4: parseBool(o.ipv4, '--ipv4') }),
          IPAM: { Driver: 'default', Config: ipamConfigs(o.subnet, o.gateway, o.ipRange, keyValues(o.auxAddress, 'aux-address')) },
          Options: keyValues(o.opt, 'option', true),
          Labels: keyValues(o.label, 'label', true),
        });
        console.log(res.Id);
      } catch (err) {
        fail(err);
      }
    });

  network
    .command('ls')
    .alias('list')
    .description('List networks')
    .option('-q, --quiet', 'only ids')
    .option('-f, --filter <k=v>', 'filter (name, id, driver, label, type, dangling)', collect, [])
    .option('--format <format>', 'table or json', 'table')
    .option('--no-trunc', 'do not truncate ids')
    .action(async (o) => {
      try {
        const q = filterQuery(o.filter);
        const list = await api().request<NetworkView[]>('GET', `/networks${q}`);
        const id = (n: NetworkView) => (o.trunc ? n.Id.slice(0, 12) : n.Id);
        if (o.quiet) list.forEach((n) => console.log(id(n)));
        else if (o.format === 'json') printJson(list);
        else console.log(table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], list.map((n) => [id(n), n.Name, n.Driver, n.Scope])));
      } catch (err) {
        fail(err);
      }
    });

  network
    .command('inspect')
    .description('Show networks in detail (JSON)')
    .argument('<network...>')
    .action((refs: string[]) => inspectEach(refs, (ref) => api().request('GET', `/networks/${enc(ref)}`)));

  network
    .command('rm')
    .alias('remove')
    .description('Remove networks')
    .argument('<network...>')
    .action((refs: string[]) => forEachRef(refs, (ref) => api().request('DELETE', `/networks/${enc(ref)}`)));

  network
    .command('prune')
    .description('Remove all unused user-defined networks')
    .option('-f, --force', 'do not prompt (berth never prompts)')
    .option('--filter <label=k=v>', 'only networks with this label (label=k or label=k=v)', collect, [])
    .action(async (o) => {
      try {
        const q = filterQuery(o.filter);
        const res = await api().request<{ NetworksDeleted: string[] }>('POST', `/networks/prune${q}`);
        if (res.NetworksDeleted.length) console.log(`Deleted Networks:\n${res.NetworksDeleted.join('\n')}`);
      } catch (err) {
        fail(err);
      }
    });

  network
    .command('connect')
    .description('Connect a running container to a network')
    .argument('<network>')
    .argument('<container>')
    .option('--ip <ip>', 'IPv4 address on that network')
    .option('--ip6 <ip>', 'IPv6 address on that network (a network created with --ipv6)')
    .option('--alias <name>', 'network-scoped alias (repeatable)', collect, [])
    .action(async (net: string, container: string, o) => {
      try {
        await api().request('POST', `/networks/${enc(net)}/connect`, {
          Container: container,
          EndpointConfig: { IPAMConfig: o.ip || o.ip6 ? { IPv4Address: o.ip, IPv6Address: o.ip6 } : null, Aliases: o.alias },
        });
      } catch (err) {
        fail(err);
      }
    });

  network
    .command('disconnect')
    .description('Disconnect a container from a network')
    .argument('<network>')
    .argument('<container>')
    .option('-f, --force', 'succeed even if the container is not connected')
    .action(async (net: string, container: string, o) => {
      try {
        await api().request('POST', `/networks/${enc(net)}/disconnect`, { Container: container, Force: Boolean(o.force) });
      } catch (err) {
        fail(err);
      }
    });
}

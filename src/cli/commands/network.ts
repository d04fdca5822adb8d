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

export function registerNetworkCommands(program: Command, api: () => ApiClient): void {
  const network = program.command('network').description('Manage networks');

  network
    .command('create')
    .description('Create a network')
    .argument('<name>')
    .option('-d, --driver <driver>', 'driver', 'bridge')
    .option('--subnet <cidr>', 'subnet in CIDR form, e.g. 10.1.0.0/16')
    .option('--gateway <ip>', 'gateway address (default: first address of the subnet)')
    .option('--ip-range <cidr>', 'allocate container addresses from this sub-range')
    .option('--aux-address <name=ip>', 'reserve an address IPAM must not hand out (repeatable)', collect, [])
    .option('--internal', 'no access to or from outside the host')
    .option('--attachable', 'accepted for Docker compatibility: overlay networks are always attachable')
    .option('--label <k=v>', 'set a label (repeatable)', collect, [])
    .option('-o, --opt <k=v>', 'set a driver option (repeatable)', collect, [])
    .action(async (name: string, o) => {
      try {
        if (!o.subnet && (o.gateway || o.ipRange || o.auxAddress.length > 0)) throw invalid('--gateway, --ip-range and --aux-address need --subnet: pass the subnet they belong to');
        const res = await api().request<{ Id: string }>('POST', '/networks/create', {
          Name: name,
          Driver: o.driver,
          Internal: Boolean(o.internal),
          Attachable: Boolean(o.attachable),
          IPAM: { Driver: 'default', Config: o.subnet ? [{ Subnet: o.subnet, Gateway: o.gateway, IPRange: o.ipRange, AuxiliaryAddresses: keyValues(o.auxAddress, 'aux-address') }] : [] },
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
    .option('--alias <name>', 'network-scoped alias (repeatable)', collect, [])
    .action(async (net: string, container: string, o) => {
      try {
        await api().request('POST', `/networks/${enc(net)}/connect`, {
          Container: container,
          EndpointConfig: { IPAMConfig: o.ip ? { IPv4Address: o.ip } : null, Aliases: o.alias },
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

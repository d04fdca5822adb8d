/** `berth run|ps|inspect|exec|stop|rm|port`: containers, as far as their networking goes. */
import { spawn, spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import type { ApiClient } from '../../api/client.js';
import { invalid } from '../../errors.js';
import { formatBinding, parseExposeSpec, parsePortSpec, type PortBinding } from '../../ipam/port-spec.js';
import { execArgv } from '../../runtime/launch.js';
import { exitStatus } from '../../runtime/process.js';
import { collect, fail, forEachRef, inspectEach, printJson, table } from '../output.js';

interface Inspect {
  Id: string;
  Name: string;
  State: { Status: string; Pid: number };
  HostConfig: { NetworkMode: string };
  NetworkSettings: { SandboxKey: string; Ports: Record<string, { HostIp: string; HostPort: string }[] | null> };
}

interface Summary {
  Id: string;
  Names: string[];
  Command: string;
  Status: string;
  Ports: { IP: string; PrivatePort: number; PublicPort: number; Type: string }[];
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
}

const enc = encodeURIComponent;

/** `berth exec NAME -- CMD`: the `--` after a positional argument reaches us as part of CMD. */
const withoutSeparator = (cmd: string[]) => (cmd[0] === '--' ? cmd.slice(1) : cmd);

/** -p specs plus, with -P, every --expose'd port on an ephemeral host port. */
function portRequests(publish: string[], expose: string[], publishAll: boolean): PortBinding[] {
  const out = publish.flatMap(parsePortSpec);
  if (publishAll) {
    for (const e of expose.flatMap(parseExposeSpec)) {
      if (!out.some((b) => b.containerPort === e.containerPort && b.protocol === e.protocol)) {
        out.push({ protocol: e.protocol, hostIp: '0.0.0.0', hostPort: 0, containerPort: e.containerPort });
      }
    }
  }
  return out;
}

/** Runs the container's process here, attached to this terminal, and reports it to the daemon. */
async function runAttached(api: ApiClient, id: string, argv: string[], autoRemove: boolean): Promise<number> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward).on('SIGTERM', forward);
  // Listen before anything is awaited: a quick command may exit before the PID is reported.
  const exited = new Promise<number>((resolve) => {
    child.on('error', () => resolve(127));
    child.on('exit', (c, signal) => resolve(exitStatus(c, signal)));
  });
  if (child.pid) await api.request('POST', `/containers/${id}/pid`, { pid: child.pid }).catch(() => undefined);
  const code = await exited;
  await api.request('POST', `/containers/${id}/exited`, { exitCode: code }).catch(() => undefined);
  if (autoRemove) await api.request('DELETE', `/containers/${id}?force=1&settle=1`).catch(() => undefined);
  return code;
}

export function registerContainerCommands(program: Command, api: () => ApiClient): void {
  program
    .command('run')
    .description('Run a command as a container with its own network')
    .argument('<cmd...>', 'command and arguments (put them after --)')
    .option('-d, --detach', 'run in the background and print the container id')
    .option('--rm', 'remove the container when it exits')
    .option('--name <name>', 'container name')
    .option('--network <mode>', 'bridge, host, none, container:NAME or a network name', 'bridge')
    .option('--net <mode>', 'alias of --network')
    .option('--ip <ip>', 'IPv4 address on the network (networks created with --subnet)')
    .option('--ip6 <ip>', 'IPv6 address on the network (networks created with --ipv6)')
    .option('--mac-address <mac>', 'MAC address of eth0')
    .option('-h, --hostname <name>', 'hostname')
    .option('--network-alias <alias>', 'network-scoped alias (repeatable)', collect, [])
    .option('--dns <ip>', 'DNS server for this container (repeatable)', collect, [])
    .option('--dns-search <domain>', 'DNS search domain, "." for none (repeatable)', collect, [])
    .option('--dns-option <option>', 'resolv.conf option, e.g. ndots:2 (repeatable)', collect, [])
    .option('--add-host <host:ip>', 'extra /etc/hosts entry (repeatable)', collect, [])
    .option('-p, --publish <spec>', 'publish a port: [IP:][HOSTPORT:]CPORT[/tcp|/udp] (repeatable)', collect, [])
    .option('-P, --publish-all', 'publish every --expose\'d port on an ephemeral host port')
    .option('--expose <port>', 'expose a port or range: PORT[/proto] (repeatable)', collect, [])
    .action(async (rawCmd: string[], o) => {
      const cmd = withoutSeparator(rawCmd);
      const client = api();
      let id: string | undefined;
      try {
        const ports = portRequests(o.publish, o.expose, Boolean(o.publishAll));
        const networkMode = o.net ?? o.network;
        if (networkMode === 'host' && ports.length) process.stderr.write('WARNING: Published ports are discarded when using host network mode\n');
        // One request creates and starts; the daemon removes the container again if the start fails.
        const started = await client.request<{ Id: string; argv: string[] }>('POST', `/containers/create?start=1&detach=${o.detach ? 1 : 0}`, {
          name: o.name,
          cmd,
          hostname: o.hostname,
          networkMode,
          ip: o.ip,
          ip6: o.ip6,
          mac: o.macAddress,
          aliases: o.networkAlias,
          dns: o.dns,
          dnsSearch: o.dnsSearch,
          dnsOptions: o.dnsOption,
          addHosts: o.addHost,
          ports,
          autoRemove: Boolean(o.rm),
        });
        id = started.Id;
        if (o.detach) {
          console.log(id);
          return;
        }
        process.exitCode = await runAttached(client, id, started.argv, Boolean(o.rm));
      } catch (err) {
        // Nothing half-made: a container that could not start is removed again.
        if (id) await client.request('DELETE', `/containers/${id}?force=1&settle=1`).catch(() => undefined);
        fail(err, 125);
      }
    });

  program
    .command('ps')
    .description('List containers')
    .option('-a, --all', 'include stopped containers')
    .option('-q, --quiet', 'only ids')
    .option('--format <format>', 'table or json', 'table')
    .action(async (o) => {
      try {
        const list = await api().request<Summary[]>('GET', `/containers/json?all=${o.all ? 1 : 0}`);
        if (o.quiet) list.forEach((c) => console.log(c.Id.slice(0, 12)));
        else if (o.format === 'json') printJson(list);
        else {
          const rows = list.map((c) => [
            c.Id.slice(0, 12),
            c.Names[0]!.slice(1),
            c.Command,
            c.Status,
            Object.entries(c.NetworkSettings.Networks).map(([n, e]) => `${n}=${e.IPAddress}`).join(','),
            c.Ports.map((p) => `${p.IP}:${p.PublicPort}->${p.PrivatePort}/${p.Type}`).join(', '),
          ]);
          console.log(table(['CONTAINER ID', 'NAME', 'COMMAND', 'STATUS', 'NETWORKS', 'PORTS'], rows));
        }
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('inspect')
    .description('Show containers in detail (JSON)')
    .argument('<container...>')
    .action((refs: string[]) => inspectEach(refs, (ref) => api().request('GET', `/containers/${enc(ref)}/json`)));

  program
    .command('port')
    .description("List a container's published ports")
    .argument('<container>')
    .action(async (ref: string) => {
      try {
        const c = await api().request<Inspect>('GET', `/containers/${enc(ref)}/json`);
        for (const [key, bindings] of Object.entries(c.NetworkSettings.Ports)) {
          const [port, protocol] = key.split('/') as [string, 'tcp' | 'udp'];
          for (const b of bindings ?? []) {
            console.log(formatBinding({ protocol, hostIp: b.HostIp, hostPort: Number(b.HostPort), containerPort: Number(port) }));
          }
        }
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('exec')
    .description("Run a command in a running container's namespaces")
    .argument('<container>')
    .argument('<cmd...>')
    .action(async (ref: string, rawCmd: string[]) => {
      const cmd = withoutSeparator(rawCmd);
      try {
        const c = await api().request<Inspect>('GET', `/containers/${enc(ref)}/json`);
        if (c.State.Status !== 'running' || !c.State.Pid) throw invalid(`container ${ref} is not running`);
        const argv = execArgv(c.State.Pid, c.NetworkSettings.SandboxKey, c.HostConfig.NetworkMode === 'host', cmd);
        const result = spawnSync(argv[0]!, argv.slice(1), { stdio: 'inherit' });
        // A command ended by a signal (a SIGPIPE when its output goes to `head`) reports 128 + its number.
        process.exitCode = result.error ? 127 : exitStatus(result.status, result.signal);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('stop')
    .description('Stop containers (SIGTERM, then SIGKILL after the timeout)')
    .argument('<container...>')
    .option('-t, --time <seconds>', 'seconds to wait before SIGKILL', '10')
    .action((refs: string[], o) => forEachRef(refs, (ref) => api().request('POST', `/containers/${enc(ref)}/stop?t=${Number(o.time)}`)));

  program
    .command('rm')
    .description('Remove containers')
    .argument('<container...>')
    .option('-f, --force', 'stop running containers first')
    // settle=1: answer once the kernel side is gone too, so a script that looks at links next sees it.
    .action((refs: string[], o) => forEachRef(refs, (ref) => api().request('DELETE', `/containers/${enc(ref)}?force=${o.force ? 1 : 0}&settle=1`)));
}

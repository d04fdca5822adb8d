/** `berth daemon`: the engine and its API, in the foreground, in the namespace it was started in. */
import type { Command } from 'commander';
import { DEFAULT_DOCKER_HOST, DEFAULT_HOST, DEFAULT_NETNS_POOL, DEFAULT_PLUGIN_SOCKET, DEFAULT_ROOT, DEFAULT_TTL_SECONDS } from '../../constants.js';

export function registerDaemonCommand(program: Command): void {
  program
    .command('daemon')
    .description('Run the berth daemon in the foreground (treats its network namespace as the host)')
    .option('--root <dir>', 'state directory (env BERTH_ROOT)', process.env.BERTH_ROOT || DEFAULT_ROOT)
    .option('--host <unix://path>', 'API socket (env BERTH_HOST)', process.env.BERTH_HOST || DEFAULT_HOST)
    .option('--resolv-conf <path>', "the host's resolver configuration, for upstream DNS", '/etc/resolv.conf')
    .option('--group <gid>', 'group allowed to use the socket (mode 0660)')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .option('--cluster-store <etcd://IP:PORT,…>', 'join a cluster whose state is in etcd (overlay networks across hosts)')
    .option('--advertise-addr <ip|iface>', "this host's underlay address (or the interface holding it), which other hosts reach")
    .option('--cluster-store-ca <file>', "CA certificate for etcd's TLS")
    .option('--cluster-store-cert <file>', 'client certificate for etcd')
    .option('--cluster-store-key <file>', 'client key for etcd')
    .option('--cluster-ttl <seconds>', 'how long a host may be silent before peers drop it', String(DEFAULT_TTL_SECONDS))
    .option('--cluster-cidr <cidr>', 'lease this host a subnet of CIDR in etcd (Flannel\'s keys) for the default bridge; other hosts\' subnets are routed to, without NAT')
    .option('--host-subnet-size <len>', 'prefix length of each host\'s subnet (default 24)')
    .option('--backend <type>', 'how traffic reaches other hosts\' subnets: vxlan (default), host-gw or udp')
    .option('--plugin-socket <path>', `serve Docker's network and IPAM plugin protocol here, so dockerd's \`-d berth\` networks are berth's (dockerd looks for ${DEFAULT_PLUGIN_SOCKET}); off by default`)
    .option('--bgp-asn <n>', 'run a BGP speaker (BIRD) with this AS number: routed networks\' blocks go to the other hosts and to --bgp-peer routers')
    .option('--bgp-peer <ip:asn>', 'also peer with this router (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--docker-host <unix://path>', `dockerd's API, where berth learns the container names of the plugin's endpoints so other hosts find them by name (with --plugin-socket; default ${DEFAULT_DOCKER_HOST})`)
    .option('--metrics-addr <ip:port>', 'also serve Prometheus metrics (GET /metrics) over TCP on this address')
    .option('--netns-pool <n>', 'container network namespaces kept made ahead of time, taken by starts (0 to make each at its start)', String(DEFAULT_NETNS_POOL))
    .action(async (o) => {
      const { runDaemon } = await import('./daemon-run.js');
      await runDaemon(o);
    });
}

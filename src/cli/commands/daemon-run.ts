/**
 * What `berth daemon` runs once its flags are parsed: the checks, then the engine and its API.
 * Loaded only by that command (src/cli/commands/daemon.ts): the engine's modules take most of
 * the CLI's start-up, and no other command needs them.
 */
import * as fs from 'node:fs';
import type { OptionValues } from 'commander';
import { DEFAULT_DOCKER_HOST } from '../../constants.js';
import { socketPathOf } from '../../api/client.js';
import { claimSocketPath, startServer } from '../../api/server.js';
import { Engine } from '../../engine/engine.js';
import { lockRoot } from '../../kernel/root-lock.js';
import { createHooks } from '../../engine/hooks.js';
import { createLogger, type Level } from '../../log.js';
import { fail } from '../output.js';
import { invalid, messageOf } from '../../errors.js';
import type { ClusterOptions } from '../../cluster/agent.js';
import { metricsOf, type EngineMetrics } from '../../metrics/engine-metrics.js';
import { parseMetricsAddr } from '../../metrics/metrics-addr.js';
import { serveMetrics } from '../../metrics/metrics-server.js';
import type { HostSubnetOptions } from '../../cluster/host-subnets/subnet-lease.js';
import { checkClusterCidr } from '../../cluster/host-subnets/flannel-keys.js';
import { parseBackendType } from '../../cluster/host-subnets/backends.js';
import { startPluginServer } from '../../plugin/server.js';
import { findBird, type BgpOptions } from '../../cluster/bgp/bgp-speaker.js';
import { parseAsn, parsePeer } from '../../cluster/bgp/bird-config.js';
import { dockerSocketOf } from '../../plugin/docker-api.js';
import { parseNetnsPool } from '../../engine/netns-pool.js';

/** --cluster-cidr and its companions, checked before anything starts; undefined without it. */
function hostSubnetOptions(o: Record<string, string | undefined>, cluster: ClusterOptions | undefined): HostSubnetOptions | undefined {
  if (!o.clusterCidr) {
    if (o.hostSubnetSize !== undefined || o.backend !== undefined) throw invalid('--host-subnet-size and --backend need --cluster-cidr CIDR (the cluster network each host leases a subnet of)');
    return undefined;
  }
  if (!cluster) throw invalid('--cluster-cidr needs --cluster-store etcd://IP:PORT and --advertise-addr: hosts lease their subnets in etcd');
  const sizeText = o.hostSubnetSize ?? '24';
  if (!/^\d{1,2}$/.test(sizeText)) throw invalid(`--host-subnet-size "${sizeText}" is not a prefix length: give e.g. 24`);
  const size = Number(sizeText);
  const backend = parseBackendType(o.backend ?? 'vxlan');
  return { cidr: checkClusterCidr(o.clusterCidr, size).text, size, backend };
}

/** --bgp-asn and --bgp-peer, checked before anything starts (bird2 installed); undefined without --bgp-asn. */
function bgpOptions(o: Record<string, unknown>, cluster: ClusterOptions | undefined): BgpOptions | undefined {
  const peers = (o.bgpPeer as string[] | undefined) ?? [];
  if (o.bgpAsn === undefined) {
    if (peers.length > 0) throw invalid('--bgp-peer needs --bgp-asn N: the AS number this host speaks BGP as');
    return undefined;
  }
  const asn = parseAsn(String(o.bgpAsn));
  if (!cluster) throw invalid('--bgp-asn needs --cluster-store etcd://IP:PORT and --advertise-addr: BIRD peers from the underlay address, with the other hosts found in etcd');
  findBird();
  const parsed = peers.map(parsePeer);
  const twice = parsed.find((p, i) => parsed.findIndex((q) => q.address === p.address) !== i);
  if (twice) throw invalid(`--bgp-peer ${twice.address} is given twice: name each peer once`);
  return { asn, peers: parsed };
}

/** The cluster flags, checked before anything starts; undefined without --cluster-store. */
function clusterOptions(o: Record<string, string | undefined>): ClusterOptions | undefined {
  const tlsFiles = [o.clusterStoreCa, o.clusterStoreCert, o.clusterStoreKey];
  if (!o.clusterStore) {
    if (o.advertiseAddr || tlsFiles.some(Boolean)) throw invalid('--advertise-addr and --cluster-store-ca/-cert/-key need --cluster-store etcd://IP:PORT');
    return undefined;
  }
  if (!o.advertiseAddr) throw invalid("--cluster-store needs --advertise-addr IP|IFACE: the address other hosts reach this one at (the VXLAN tunnels' end)");
  if (Boolean(o.clusterStoreCert) !== Boolean(o.clusterStoreKey)) throw invalid('--cluster-store-cert and --cluster-store-key go together');
  const read = (flag: string, file: string | undefined) => {
    if (!file) return undefined;
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw invalid(`${flag} ${file}: ${(err as Error).message}`);
    }
  };
  const ttl = Number(o.clusterTtl);
  return {
    store: o.clusterStore,
    advertise: o.advertiseAddr,
    ttlSeconds: ttl,
    tls: tlsFiles.some(Boolean) ? { ca: read('--cluster-store-ca', o.clusterStoreCa), cert: read('--cluster-store-cert', o.clusterStoreCert), key: read('--cluster-store-key', o.clusterStoreKey) } : undefined,
  };
}

/** `o`: the daemon command's options, as commander parsed them. */
export async function runDaemon(o: OptionValues): Promise<void> {
  const log = createLogger(o.logLevel as Level);
  try {
    const cluster = clusterOptions(o);
    const hostSubnets = hostSubnetOptions(o, cluster);
    const bgp = bgpOptions(o, cluster);
    const metricsAddr = o.metricsAddr === undefined ? undefined : parseMetricsAddr(o.metricsAddr);
    const netnsPool = parseNetnsPool(o.netnsPool);
    const socketPath = socketPathOf(o.host);
    const dockerHost = o.pluginSocket ? dockerSocketOf(o.dockerHost ?? DEFAULT_DOCKER_HOST) : undefined;
    if (o.dockerHost !== undefined && !o.pluginSocket) throw invalid('--docker-host is read for the Docker plugin only: add --plugin-socket PATH, or drop --docker-host');
    // Refuse before touching anything: a second daemon must not reconcile away the first one's objects.
    const rootLock = lockRoot(o.root);
    await claimSocketPath(socketPath);
    // Bound before the engine opens: an address that cannot be served stops the daemon before it touches anything.
    let metrics: EngineMetrics | undefined;
    const metricsServer = metricsAddr && (await serveMetrics(metricsAddr, () => metrics));
    // BERTH_REAP_GRACE_MS shortens the reaper's grace for an unreported PID: a test hook only.
    const reapGraceMs = process.env.BERTH_REAP_GRACE_MS ? Number(process.env.BERTH_REAP_GRACE_MS) : undefined;
    const engine = await Engine.open({ root: o.root, log, resolvConfPath: o.resolvConf, hooks: createHooks, reapGraceMs, cluster, hostSubnets, bgp, netnsPool });
    metrics = metricsOf(engine);
    const server = await startServer(engine, { socketPath, log, group: o.group === undefined ? undefined : Number(o.group) });
    const pluginServer = o.pluginSocket ? await startPluginServer(engine, { socketPath: o.pluginSocket, log, dockerHost }) : undefined;
    log.info('daemon ready', { root: o.root, socket: socketPath, pid: process.pid, ...(o.pluginSocket && { plugin: o.pluginSocket }), ...(metricsAddr && { metrics: o.metricsAddr }), ...(engine.ctx.cluster ? { cluster: o.clusterStore, host: engine.ctx.cluster.hostId } : {}), ...(engine.ctx.hostSubnets && { subnet: engine.ctx.hostSubnets.subnet, backend: engine.ctx.hostSubnets.backend.type }) });
    const shutdown = async (signal: string) => {
      log.info('daemon stopping', { signal });
      server.close();
      pluginServer?.close();
      metricsServer?.close();
      await engine.close();
      fs.rmSync(socketPath, { force: true });
      if (o.pluginSocket) fs.rmSync(o.pluginSocket, { force: true });
      rootLock.release();
      process.exit(0);
    };
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
    process.once('SIGINT', () => void shutdown('SIGINT'));
  } catch (err) {
    // The daemon's own refusal (a flag, the root, the socket): "Error:", not "Error response from daemon:".
    fail(new Error(messageOf(err)));
  }
}

/**
 * The topology (GET /berth/topology) as graph elements, top to bottom: hosts; their networks
 * (bridges, VXLAN devices, parents); the host ends of veth pairs; the containers' interfaces; the
 * containers (their namespaces). Published ports hang between the host and their container, and
 * an overlay's VXLAN peers are edges to the other hosts, whose endpoints hang off them.
 * Runs in the browser (no Node imports); pure, so it is the same for every refresh.
 */
import type { LinkState, Topology, TopologyContainer, TopologyEndpoint, TopologyNetwork } from '../../engine/topology.js';

export type NodeKind = 'host' | 'network' | 'hostlink' | 'interface' | 'container' | 'port' | 'remote-endpoint';

export interface GraphNode {
  group: 'nodes';
  data: { id: string; kind: NodeKind; label: string; name: string; bad?: boolean; detail: unknown };
}

export interface GraphEdge {
  group: 'edges';
  data: { id: string; source: string; target: string; kind: string; label?: string; bad?: boolean };
}

export type GraphElement = GraphNode | GraphEdge;

export const hostNodeId = (id: string) => `host:${id}`;
export const containerNodeId = (id: string) => `container:${id}`;

/** A link is healthy when the kernel has it and it is up. */
const broken = (l: LinkState | null | undefined) => Boolean(l && (!l.present || !l.up));

const linkWord = (l: LinkState) => (!l.present ? 'missing' : l.up ? 'up' : 'DOWN');

function networkLabel(n: TopologyNetwork): string {
  const lines = [`${n.name} (${n.driver}${n.internal ? ', internal' : ''})`, ...n.subnets];
  for (const d of n.devices) lines.push(`${d.role} ${d.name}: ${linkWord(d)}`);
  if (n.vni !== undefined) lines.push(`VNI ${n.vni}`);
  return lines.join('\n');
}

function interfaceLabel(e: TopologyEndpoint): string {
  return [`${e.ifname} ${e.mac}`, e.ipv4, e.ipv6, e.interface.present ? undefined : '(not in the namespace)'].filter(Boolean).join('\n');
}

function containerLabel(c: TopologyContainer): string {
  // Namespace files are named by the full id: the short id names it well enough on the graph.
  const ns = c.sharesWith ? `netns of ${c.sharesWith}` : c.netnsPath ? `netns …/${c.netnsPath.split('/').pop()!.slice(0, 12)}` : 'no netns';
  return [`${c.name} [${c.state}]`, `hostname ${c.hostname}`, ns].join('\n');
}

export function toElements(t: Topology): GraphElement[] {
  const out: GraphElement[] = [];
  const node = (id: string, kind: NodeKind, name: string, label: string, detail: unknown, bad = false) =>
    out.push({ group: 'nodes', data: { id, kind, name, label, detail, ...(bad && { bad }) } });
  const edge = (source: string, target: string, kind: string, label?: string, bad = false) =>
    out.push({ group: 'edges', data: { id: `${kind}:${source}->${target}`, source, target, kind, ...(label && { label }), ...(bad && { bad }) } });
  const local = hostNodeId(t.hostId);
  const visible = new Set(t.containers.flatMap((c) => c.endpoints.map((e) => e.networkId)));

  for (const h of t.hosts) node(hostNodeId(h.id), 'host', h.hostname, [h.hostname, h.address, h.local ? '(this host)' : undefined].filter(Boolean).join('\n'), h);

  for (const n of t.networks) {
    // host and none have nothing to draw unless something joined them.
    if ((n.driver === 'host' || n.driver === 'null') && !visible.has(n.id)) continue;
    const id = `network:${n.id}`;
    node(id, 'network', n.name, networkLabel(n), n, n.devices.some((d) => d.owned && broken(d)));
    edge(local, id, 'has-network');
    for (const p of n.vxlanPeers ?? []) edge(id, hostNodeId(p.hostId), 'vxlan', `VXLAN${n.vni !== undefined ? ` ${n.vni}` : ''} → ${p.vtep}`);
  }

  for (const c of t.containers) {
    const cid = containerNodeId(c.id);
    node(cid, 'container', c.name, containerLabel(c), c, Boolean(c.namespaceError) || c.endpoints.some((e) => c.state === 'running' && (broken(e.hostLink) || !e.interface.present)));
    if (c.sharesWith) {
      const owner = t.containers.find((o) => o.name === c.sharesWith);
      if (owner) edge(containerNodeId(owner.id), cid, 'shares-netns', 'shares netns');
    } else if (c.networkMode === 'host') {
      edge(local, cid, 'host-netns', 'host netns');
    }
    for (const e of c.endpoints) {
      const ifId = `interface:${e.id}`;
      node(ifId, 'interface', e.ifname, interfaceLabel(e), e, c.state === 'running' && !e.interface.present);
      let upper = `network:${e.networkId}`;
      if (e.hostLink) {
        const hlId = `hostlink:${e.id}`;
        node(hlId, 'hostlink', e.hostLink.name, `${e.hostLink.name}\n${linkWord(e.hostLink)}`, e.hostLink, broken(e.hostLink));
        edge(upper, hlId, 'bridge-port', e.hostLink.master ? `port of ${e.hostLink.master}` : undefined);
        upper = hlId;
        edge(hlId, ifId, 'veth', 'veth pair', broken(e.hostLink) || !e.interface.present);
      } else {
        edge(upper, ifId, 'child', e.network);
      }
      edge(ifId, cid, 'in-netns');
    }
    for (const p of c.ports) {
      const pid = `port:${c.id}:${p.protocol}:${p.hostIp}:${p.hostPort}`;
      const hostIp = p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp;
      node(pid, 'port', `${p.hostPort}/${p.protocol}`, `${hostIp}:${p.hostPort} → ${p.containerPort}/${p.protocol}`, p);
      edge(local, pid, 'publishes');
      edge(pid, cid, 'dnat', p.containerIp);
    }
  }

  for (const r of t.remoteEndpoints) {
    const id = `remote-endpoint:${r.id}`;
    node(id, 'remote-endpoint', r.name, [r.name, r.ip, r.ip6, r.mac].filter(Boolean).join('\n'), r);
    edge(hostNodeId(r.hostId), id, 'remote');
    edge(`network:${r.networkId}`, id, 'remote-member');
  }
  // An edge to a node that is not drawn (a host that left the cluster) would stop cytoscape.
  const ids = new Set(out.flatMap((e) => (e.group === 'nodes' ? [e.data.id] : [])));
  return out.filter((e) => e.group === 'nodes' || (ids.has(e.data.source) && ids.has(e.data.target)));
}

/**
 * Desired state in SQLite (WAL, synchronous=NORMAL): networks, containers, endpoints and port
 * bindings. Unique indexes are the last line of defence against double allocation: an address is
 * unique per network, a host address/port/protocol is unique, a name is unique. Every multi-row
 * change runs in a transaction, so a crash leaves either all of it or none.
 */
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseIpv4 } from '../ipam/ipv4.js';

/** A link a network uses: its bridge (owned: berth made it), a parent it hangs children off (not owned). */
export interface NetworkLink {
  /** What the link is to the network's driver (`bridge`, `parent`, `vlan`, `shim`): one per role. */
  role: string;
  name: string;
  /** berth made it and removes it with the network; never set for a link of the host. */
  owned: boolean;
}

export interface NetworkRecord {
  id: string;
  name: string;
  driver: string;
  links: NetworkLink[];
  subnet: string | null;
  gateway: string | null;
  ipRange: string | null;
  /** The IPv6 side of a dual-stack network (`--ipv6`): canonical CIDR, gateway and range; null when IPv4-only. */
  subnet6?: string | null;
  gateway6?: string | null;
  ipRange6?: string | null;
  /** Addresses IPAM never hands out (`--aux-address NAME=IP`), by name. */
  auxAddresses: Record<string, string>;
  internal: boolean;
  /** Set when the user passed --subnet: only then may containers pin an address with --ip. */
  userSubnet: boolean;
  options: Record<string, string>;
  labels: Record<string, string>;
  created: string;
  predefined: boolean;
}

export type ContainerState = 'created' | 'running' | 'exited';

export interface ContainerConfig {
  cmd: string[];
  hostname: string;
  networkMode: string;
  dns: string[];
  /** `--dns-search` and `--dns-option`, when given (else the host's). */
  dnsSearch?: string[];
  dnsOptions?: string[];
  addHosts: string[];
  /** Docker's `-p` bindings as asked for (host port 0 = ephemeral). */
  ports: { protocol: 'tcp' | 'udp'; hostIp: string; hostPort: number; containerPort: number; hostPortRange?: [number, number]; ipv4Only?: true }[];
  /** Networks to join at start, with per-network requests (first one gets eth0). */
  networks: { network: string; ip?: string; ip6?: string; aliases: string[]; mac?: string }[];
  autoRemove: boolean;
  /** Set for containers a runtime attached through the CNI plugin: berth owns no process or namespace of theirs. */
  cni?: { containerId: string };
  /** Set for a Docker endpoint made through the plugin socket: dockerd owns the sandbox, berth the interface until dockerd takes it. */
  docker?: { networkId: string; endpointId: string };
}

export interface ContainerRecord {
  id: string;
  name: string;
  created: string;
  config: ContainerConfig;
  state: ContainerState;
  pid: number | null;
  /** The process's start time (from /proc/PID/stat), so a reused PID is not mistaken for it. */
  pidStart: string | null;
  exitCode: number | null;
  /** The network namespace the container's processes run in. */
  netnsPath: string | null;
  /** For container:NAME mode, the container whose namespace this one shares. */
  sharesWith: string | null;
}

export type EndpointState = 'pending' | 'active';

/** One of dockerd's networks (Docker's NetworkID) and the berth network it is. */
export interface DockerNetworkRecord {
  dockerId: string;
  networkId: string;
  /** An existing (cluster) network dockerd was mapped onto: removing dockerd's network leaves it. */
  adopted: boolean;
}

/** A pool berth's IPAM driver gave dockerd (RequestPool), with the addresses it handed out from it. */
export interface DockerPoolRecord {
  id: string;
  subnet: string;
  ipRange: string | null;
  v6: boolean;
}

export interface EndpointRecord {
  id: string;
  containerId: string;
  networkId: string;
  ifname: string;
  /** The endpoint's IPv4 address; null on an IPv6-only network. */
  ip: string | null;
  /** The endpoint's IPv6 address (canonical text) on a dual-stack network; null otherwise. */
  ip6?: string | null;
  mac: string;
  aliases: string[];
  /** The endpoint's link on the host side (a veth's host end); null for drivers with none (macvlan). */
  hostLink: string | null;
  state: EndpointState;
}

export interface PortRecord {
  containerId: string;
  protocol: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
  containerPort: number;
  containerIp: string;
}

/**
 * The schema as migrations, each run once, in order, in one transaction; `PRAGMA user_version` says
 * how many ran. A database made before versions existed (user_version 0, version 1's tables) runs
 * version 1 as a no-op (IF NOT EXISTS) and goes on from there, so a daemon upgraded in place keeps
 * its networks and running containers.
 */
const MIGRATIONS: readonly { why: string; sql: string }[] = [
  {
    why: 'the first schema: one bridge per network, one veth per endpoint',
    sql: `
CREATE TABLE IF NOT EXISTS networks (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, driver TEXT NOT NULL, bridge TEXT UNIQUE,
  subnet TEXT, gateway TEXT, ip_range TEXT, internal INTEGER NOT NULL, user_subnet INTEGER NOT NULL,
  options TEXT NOT NULL, labels TEXT NOT NULL, created TEXT NOT NULL, predefined INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS containers (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created TEXT NOT NULL, config TEXT NOT NULL,
  state TEXT NOT NULL, pid INTEGER, pid_start TEXT, exit_code INTEGER, netns_path TEXT, shares_with TEXT);
CREATE TABLE IF NOT EXISTS endpoints (
  id TEXT PRIMARY KEY, container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
  network_id TEXT NOT NULL REFERENCES networks(id), ifname TEXT NOT NULL, ip TEXT NOT NULL,
  mac TEXT NOT NULL, aliases TEXT NOT NULL, host_veth TEXT NOT NULL UNIQUE, state TEXT NOT NULL,
  UNIQUE (network_id, ip), UNIQUE (container_id, network_id), UNIQUE (container_id, ifname));
CREATE TABLE IF NOT EXISTS ports (
  container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE, protocol TEXT NOT NULL,
  host_ip TEXT NOT NULL, host_port INTEGER NOT NULL, container_port INTEGER NOT NULL,
  container_ip TEXT NOT NULL, UNIQUE (protocol, host_ip, host_port));
CREATE INDEX IF NOT EXISTS ports_by_port ON ports (protocol, host_port);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  },
  {
    why:
      'drivers: a network names the links it uses (a bridge it owns, a parent it does not) in their own ' +
      'table, reserves auxiliary addresses, and an endpoint may have no host-side link (a macvlan child has none); ' +
      "a container's ports are indexed (removing a container scanned them all)",
    sql: `
CREATE TABLE network_links (
  network_id TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE, role TEXT NOT NULL,
  name TEXT NOT NULL, owned INTEGER NOT NULL, PRIMARY KEY (network_id, role));
CREATE UNIQUE INDEX owned_link_names ON network_links (name) WHERE owned = 1;
INSERT INTO network_links SELECT id, 'bridge', bridge, 1 FROM networks WHERE bridge IS NOT NULL;
CREATE TABLE networks_v2 (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, driver TEXT NOT NULL,
  subnet TEXT, gateway TEXT, ip_range TEXT, aux_addresses TEXT NOT NULL, internal INTEGER NOT NULL,
  user_subnet INTEGER NOT NULL, options TEXT NOT NULL, labels TEXT NOT NULL, created TEXT NOT NULL,
  predefined INTEGER NOT NULL);
INSERT INTO networks_v2 SELECT id, name, driver, subnet, gateway, ip_range, '{}', internal, user_subnet,
  options, labels, created, predefined FROM networks;
DROP TABLE networks;
ALTER TABLE networks_v2 RENAME TO networks;
CREATE TABLE endpoints_v2 (
  id TEXT PRIMARY KEY, container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
  network_id TEXT NOT NULL REFERENCES networks(id), ifname TEXT NOT NULL, ip TEXT NOT NULL,
  mac TEXT NOT NULL, aliases TEXT NOT NULL, host_link TEXT UNIQUE, state TEXT NOT NULL,
  UNIQUE (network_id, ip), UNIQUE (container_id, network_id), UNIQUE (container_id, ifname));
INSERT INTO endpoints_v2 SELECT id, container_id, network_id, ifname, ip, mac, aliases, host_veth, state FROM endpoints;
DROP TABLE endpoints;
ALTER TABLE endpoints_v2 RENAME TO endpoints;
CREATE INDEX ports_by_container ON ports (container_id);`,
  },
  {
    why: 'IPv6 dual stack: a network may have an IPv6 subnet beside its IPv4 one, and an endpoint an IPv6 address, unique per network',
    sql: `
ALTER TABLE networks ADD COLUMN subnet6 TEXT;
ALTER TABLE networks ADD COLUMN gateway6 TEXT;
ALTER TABLE networks ADD COLUMN ip_range6 TEXT;
ALTER TABLE endpoints ADD COLUMN ip6 TEXT;
CREATE UNIQUE INDEX endpoint_ip6 ON endpoints (network_id, ip6) WHERE ip6 IS NOT NULL;`,
  },
  {
    why: 'IPv6-only networks (--ipv4=false): an endpoint may have no IPv4 address',
    sql: `
CREATE TABLE endpoints_v4 (
  id TEXT PRIMARY KEY, container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
  network_id TEXT NOT NULL REFERENCES networks(id), ifname TEXT NOT NULL, ip TEXT,
  mac TEXT NOT NULL, aliases TEXT NOT NULL, host_link TEXT UNIQUE, state TEXT NOT NULL, ip6 TEXT,
  UNIQUE (network_id, ip), UNIQUE (container_id, network_id), UNIQUE (container_id, ifname));
INSERT INTO endpoints_v4 SELECT id, container_id, network_id, ifname, ip, mac, aliases, host_link, state, ip6 FROM endpoints;
DROP TABLE endpoints;
ALTER TABLE endpoints_v4 RENAME TO endpoints;
CREATE UNIQUE INDEX endpoint_ip6 ON endpoints (network_id, ip6) WHERE ip6 IS NOT NULL;`,
  },
  {
    why:
      "Docker's plugin protocol: which berth network each of dockerd's networks is (berth made it, or an existing " +
      'cluster network was adopted), and the pools and addresses berth\'s IPAM driver handed dockerd, which it never replays',
    sql: `
CREATE TABLE docker_networks (
  docker_id TEXT PRIMARY KEY, network_id TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE, adopted INTEGER NOT NULL);
CREATE TABLE docker_pools (id TEXT PRIMARY KEY, subnet TEXT NOT NULL, ip_range TEXT, v6 INTEGER NOT NULL);
CREATE TABLE docker_pool_addresses (
  pool_id TEXT NOT NULL REFERENCES docker_pools(id) ON DELETE CASCADE, ip TEXT NOT NULL, PRIMARY KEY (pool_id, ip));`,
  },
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the database to SCHEMA_VERSION. Foreign keys are off while tables are rebuilt (a DROP
 * would otherwise cascade into the rows that refer to them) and checked before the commit.
 */
function migrate(db: Database.Database): void {
  const at = db.pragma('user_version', { simple: true }) as number;
  if (at > SCHEMA_VERSION) {
    throw new Error(`the state database is at schema version ${at}, newer than this berth knows (${SCHEMA_VERSION}): run the berth that wrote it, or a newer one`);
  }
  if (at === SCHEMA_VERSION) return;
  db.pragma('foreign_keys = OFF');
  try {
    db.transaction(() => {
      for (let v = at; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!.sql);
      const broken = db.pragma('foreign_key_check') as unknown[];
      if (broken.length > 0) throw new Error(`migrating the state database left ${broken.length} broken references; it was not changed`);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
  } finally {
    db.pragma('foreign_keys = ON');
  }
}

type Row = Record<string, unknown>;

/** An endpoint with what DNS needs of its container. */
export interface DnsRow {
  ip: string | null;
  ip6?: string | null;
  aliases: string[];
  id: string;
  name: string;
  hostname: string;
  dns: string[];
}

const DNS_ROWS = `SELECT e.ip, e.ip6, e.aliases, c.id, c.name, json_extract(c.config, '$.hostname') AS hostname,
  json_extract(c.config, '$.dns') AS dns FROM endpoints e JOIN containers c ON c.id = e.container_id`;

function toDnsRow(r: Row): DnsRow {
  return {
    ip: (r.ip as string | null) ?? null,
    ip6: (r.ip6 as string | null) ?? null,
    aliases: JSON.parse(String(r.aliases)) as string[],
    id: String(r.id),
    name: String(r.name),
    hostname: String(r.hostname),
    dns: r.dns ? (JSON.parse(String(r.dns)) as string[]) : [],
  };
}
const bool = (v: unknown) => v === 1;
/** A network with its links, in one query. */
const NETWORK_ROWS = `SELECT n.*, (SELECT json_group_array(json_object('role', l.role, 'name', l.name, 'owned', l.owned))
  FROM network_links l WHERE l.network_id = n.id) AS links FROM networks n`;
const json = <T>(v: unknown) => JSON.parse(String(v)) as T;

/**
 * The id range a hex prefix covers, [prefix, prefix + 'g'): ids are lowercase hex, all below 'g'.
 * A range on the primary key is an index seek; `LIKE 'prefix%'` scanned every row.
 */
const idPrefixRange = (prefix: string): [string, string] => [prefix, `${prefix}g`];

function toNetwork(r: Row): NetworkRecord {
  return {
    id: String(r.id),
    name: String(r.name),
    driver: String(r.driver),
    links: (json<{ role: string; name: string; owned: number }[]>(r.links ?? '[]')).map((l) => ({ role: l.role, name: l.name, owned: l.owned === 1 })),
    subnet: (r.subnet as string | null) ?? null,
    gateway: (r.gateway as string | null) ?? null,
    ipRange: (r.ip_range as string | null) ?? null,
    subnet6: (r.subnet6 as string | null) ?? null,
    gateway6: (r.gateway6 as string | null) ?? null,
    ipRange6: (r.ip_range6 as string | null) ?? null,
    auxAddresses: json(r.aux_addresses),
    internal: bool(r.internal),
    userSubnet: bool(r.user_subnet),
    options: json(r.options),
    labels: json(r.labels),
    created: String(r.created),
    predefined: bool(r.predefined),
  };
}

function toContainer(r: Row): ContainerRecord {
  return {
    id: String(r.id),
    name: String(r.name),
    created: String(r.created),
    config: json(r.config),
    state: r.state as ContainerState,
    pid: (r.pid as number | null) ?? null,
    pidStart: (r.pid_start as string | null) ?? null,
    exitCode: (r.exit_code as number | null) ?? null,
    netnsPath: (r.netns_path as string | null) ?? null,
    sharesWith: (r.shares_with as string | null) ?? null,
  };
}

function toEndpoint(r: Row): EndpointRecord {
  return {
    id: String(r.id),
    containerId: String(r.container_id),
    networkId: String(r.network_id),
    ifname: String(r.ifname),
    ip: (r.ip as string | null) ?? null,
    ip6: (r.ip6 as string | null) ?? null,
    mac: String(r.mac),
    aliases: json(r.aliases),
    hostLink: (r.host_link as string | null) ?? null,
    state: r.state as EndpointState,
  };
}

function toPort(r: Row): PortRecord {
  return {
    containerId: String(r.container_id),
    protocol: r.protocol as 'tcp' | 'udp',
    hostIp: String(r.host_ip),
    hostPort: Number(r.host_port),
    containerPort: Number(r.container_port),
    containerIp: String(r.container_ip),
  };
}

export class Store {
  private readonly db: Database.Database;
  /** ipv4InUse()'s sets, by network id. */
  private readonly ipv4InUseCache = new Map<string, Set<number>>();

  constructor(root: string) {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    this.db = new Database(path.join(root, 'berth.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
  }

  close(): void {
    this.db.close();
  }

  /** Prepared statements are compiled once: preparing costs more than running most of them. */
  private readonly statements = new Map<string, Database.Statement>();
  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      // Rolled back: what the cache learnt from its writes may not have happened.
      this.ipv4InUseCache.clear();
      throw err;
    }
  }

  /* networks */
  insertNetwork(n: NetworkRecord): void {
    this.transaction(() => {
      this.stmt(
        `INSERT INTO networks VALUES (@id, @name, @driver, @subnet, @gateway, @ipRange, @auxAddresses, @internal,
         @userSubnet, @options, @labels, @created, @predefined, @subnet6, @gateway6, @ipRange6)`,
      ).run({
        subnet6: n.subnet6 ?? null,
        gateway6: n.gateway6 ?? null,
        ipRange6: n.ipRange6 ?? null,
        id: n.id,
        name: n.name,
        driver: n.driver,
        subnet: n.subnet,
        gateway: n.gateway,
        ipRange: n.ipRange,
        auxAddresses: JSON.stringify(n.auxAddresses),
        created: n.created,
        internal: n.internal ? 1 : 0,
        userSubnet: n.userSubnet ? 1 : 0,
        predefined: n.predefined ? 1 : 0,
        options: JSON.stringify(n.options),
        labels: JSON.stringify(n.labels),
      });
      for (const l of n.links) this.stmt('INSERT INTO network_links VALUES (?, ?, ?, ?)').run(n.id, l.role, l.name, l.owned ? 1 : 0);
    });
  }

  /** The network that owns a link of this name, if any. */
  networkOwningLink(name: string): NetworkRecord | undefined {
    const r = this.stmt('SELECT network_id FROM network_links WHERE name = ? AND owned = 1').get(name) as { network_id: string } | undefined;
    return r ? this.network(r.network_id) : undefined;
  }

  deleteNetwork(id: string): void {
    this.ipv4InUseCache.delete(id);
    this.transaction(() => {
      this.stmt('DELETE FROM network_links WHERE network_id = ?').run(id);
      this.stmt('DELETE FROM networks WHERE id = ?').run(id);
    });
  }

  networks(): NetworkRecord[] {
    return (this.stmt(`${NETWORK_ROWS} ORDER BY created, name`).all() as Row[]).map(toNetwork);
  }

  network(id: string): NetworkRecord | undefined {
    const r = this.stmt(`${NETWORK_ROWS} WHERE id = ?`).get(id) as Row | undefined;
    return r ? toNetwork(r) : undefined;
  }

  networkByName(name: string): NetworkRecord | undefined {
    const r = this.stmt(`${NETWORK_ROWS} WHERE name = ?`).get(name) as Row | undefined;
    return r ? toNetwork(r) : undefined;
  }

  /** Networks whose id starts with `prefix` (Docker accepts any unique id prefix); at most two, enough to tell a unique prefix from an ambiguous one. */
  networksByIdPrefix(prefix: string): NetworkRecord[] {
    return (this.stmt(`${NETWORK_ROWS} WHERE id >= ? AND id < ? LIMIT 2`).all(...idPrefixRange(prefix)) as Row[]).map(toNetwork);
  }

  /* containers */
  insertContainer(c: ContainerRecord): void {
    this.stmt(
        `INSERT INTO containers VALUES (@id, @name, @created, @config, @state, @pid, @pidStart, @exitCode,
         @netnsPath, @sharesWith)`,
      )
      .run({ ...c, config: JSON.stringify(c.config) });
  }

  updateContainer(
    id: string,
    fields: Partial<Pick<ContainerRecord, 'state' | 'pid' | 'pidStart' | 'exitCode' | 'netnsPath' | 'sharesWith'>>,
  ): void {
    const cols: Record<string, string> = {
      state: 'state',
      pid: 'pid',
      pidStart: 'pid_start',
      exitCode: 'exit_code',
      netnsPath: 'netns_path',
      sharesWith: 'shares_with',
    };
    const keys = Object.keys(fields);
    if (keys.length === 0) return;
    const sets = keys.map((k) => `${cols[k]} = @${k}`).join(', ');
    this.stmt(`UPDATE containers SET ${sets} WHERE id = @id`).run({ ...fields, id });
  }

  deleteContainer(id: string): void {
    // Its endpoints go with it (ON DELETE CASCADE): the address cache forgets them first.
    const rows = this.stmt('SELECT network_id, ip FROM endpoints WHERE container_id = ?').all(id) as { network_id: string; ip: string | null }[];
    this.stmt('DELETE FROM containers WHERE id = ?').run(id);
    for (const r of rows) if (r.ip) this.ipv4InUseCache.get(r.network_id)?.delete(parseIpv4(r.ip));
  }

  /**
   * Running containers whose process berth must watch (not CNI or Docker ones, whose runtime owns
   * the process): just the columns the reaper needs, so its check each second parses no configs.
   */
  watchedProcesses(): { id: string; name: string; pid: number | null; pidStart: string | null }[] {
    return (
      this.stmt(
        "SELECT id, name, pid, pid_start FROM containers WHERE state = 'running' AND json_extract(config, '$.cni') IS NULL AND json_extract(config, '$.docker') IS NULL",
      ).all() as Row[]
    ).map((r) => ({ id: String(r.id), name: String(r.name), pid: (r.pid as number | null) ?? null, pidStart: (r.pid_start as string | null) ?? null }));
  }

  containers(): ContainerRecord[] {
    return (this.stmt('SELECT * FROM containers ORDER BY created').all() as Row[]).map(toContainer);
  }

  container(id: string): ContainerRecord | undefined {
    const r = this.stmt('SELECT * FROM containers WHERE id = ?').get(id) as Row | undefined;
    return r ? toContainer(r) : undefined;
  }

  containerByName(name: string): ContainerRecord | undefined {
    const r = this.stmt('SELECT * FROM containers WHERE name = ?').get(name) as Row | undefined;
    return r ? toContainer(r) : undefined;
  }

  /** Containers whose id starts with `prefix`; at most two, enough to tell a unique prefix from an ambiguous one. */
  containersByIdPrefix(prefix: string): ContainerRecord[] {
    return (this.stmt('SELECT * FROM containers WHERE id >= ? AND id < ? LIMIT 2').all(...idPrefixRange(prefix)) as Row[]).map(toContainer);
  }

  containersSharing(id: string): ContainerRecord[] {
    return (this.stmt('SELECT * FROM containers WHERE shares_with = ?').all(id) as Row[]).map(toContainer);
  }

  /* endpoints */
  insertEndpoint(e: EndpointRecord): void {
    this.stmt(
        `INSERT INTO endpoints VALUES (@id, @containerId, @networkId, @ifname, @ip, @mac, @aliases, @hostLink, @state, @ip6)`,
      )
      .run({ ...e, ip6: e.ip6 ?? null, aliases: JSON.stringify(e.aliases) });
    if (e.ip) this.ipv4InUseCache.get(e.networkId)?.add(parseIpv4(e.ip));
  }

  /** Sets the endpoint's state, and its MAC when the kernel chose another (macvlan passthru). */
  setEndpointState(id: string, state: EndpointState, mac?: string): void {
    if (mac === undefined) this.stmt('UPDATE endpoints SET state = ? WHERE id = ?').run(state, id);
    else this.stmt('UPDATE endpoints SET state = ?, mac = ? WHERE id = ?').run(state, mac, id);
  }

  /** Sets the endpoint's DNS aliases (a Docker endpoint's container name and aliases, learnt after Join). */
  setEndpointAliases(id: string, aliases: string[]): void {
    this.stmt('UPDATE endpoints SET aliases = ? WHERE id = ?').run(JSON.stringify(aliases), id);
  }

  deleteEndpoint(id: string): void {
    const row = this.stmt('SELECT network_id, ip FROM endpoints WHERE id = ?').get(id) as { network_id: string; ip: string | null } | undefined;
    this.stmt('DELETE FROM endpoints WHERE id = ?').run(id);
    if (row?.ip) this.ipv4InUseCache.get(row.network_id)?.delete(parseIpv4(row.ip));
  }

  /**
   * The network's IPv4 addresses in use, as numbers, for the local allocator: read from the table
   * once, then kept by this store's own endpoint writes (insert, delete, a container's cascade), so
   * a setup does not read every address of a network of 1,000 containers. Read-only for callers.
   */
  ipv4InUse(networkId: string): ReadonlySet<number> {
    let set = this.ipv4InUseCache.get(networkId);
    if (!set) {
      set = new Set(this.addressesInUse(networkId).map((ip) => parseIpv4(ip)));
      this.ipv4InUseCache.set(networkId, set);
    }
    return set;
  }

  endpoints(): EndpointRecord[] {
    return (this.stmt('SELECT * FROM endpoints ORDER BY container_id, ifname').all() as Row[]).map(toEndpoint);
  }

  endpointsOfContainer(containerId: string): EndpointRecord[] {
    return (this.stmt('SELECT * FROM endpoints WHERE container_id = ? ORDER BY ifname').all(containerId) as Row[]).map(toEndpoint);
  }

  endpointsOfNetwork(networkId: string): EndpointRecord[] {
    return (this.stmt('SELECT * FROM endpoints WHERE network_id = ? ORDER BY ip').all(networkId) as Row[]).map(toEndpoint);
  }

  /** A network's endpoints with their container's name, hostname and DNS servers, in one query (for DNS). */
  dnsRecordsOfNetwork(networkId: string): DnsRow[] {
    return (this.stmt(`${DNS_ROWS} WHERE e.network_id = ?`).all(networkId) as Row[]).map(toDnsRow);
  }

  /** One container's endpoint on a network, shaped for DNS. */
  dnsRecordOf(networkId: string, containerId: string): DnsRow | undefined {
    const r = this.stmt(`${DNS_ROWS} WHERE e.network_id = ? AND e.container_id = ?`).get(networkId, containerId) as Row | undefined;
    return r ? toDnsRow(r) : undefined;
  }

  /** Addresses in use on a network, for the allocator. */
  addressesInUse(networkId: string): string[] {
    // Plucked: one string per row, no row objects.
    return this.stmt('SELECT ip AS address FROM endpoints WHERE network_id = ? AND ip IS NOT NULL').pluck().all(networkId) as string[];
  }

  /** IPv6 addresses in use on a network, for the IPv6 allocator. */
  addresses6InUse(networkId: string): string[] {
    return this.stmt('SELECT ip6 AS address FROM endpoints WHERE network_id = ? AND ip6 IS NOT NULL').pluck().all(networkId) as string[];
  }

  /* ports */
  insertPort(p: PortRecord): void {
    this.stmt('INSERT INTO ports VALUES (@containerId, @protocol, @hostIp, @hostPort, @containerPort, @containerIp)')
      .run(p);
  }

  deletePortsOfContainer(containerId: string): void {
    this.stmt('DELETE FROM ports WHERE container_id = ?').run(containerId);
  }

  /** Oldest first, so when bindings clash the one published first wins. */
  ports(): PortRecord[] {
    return (this.stmt('SELECT * FROM ports ORDER BY rowid').all() as Row[]).map(toPort);
  }

  deletePort(p: Pick<PortRecord, 'protocol' | 'hostIp' | 'hostPort'>): void {
    this.stmt('DELETE FROM ports WHERE protocol = ? AND host_ip = ? AND host_port = ?').run(p.protocol, p.hostIp, p.hostPort);
  }

  portsOfContainer(containerId: string): PortRecord[] {
    return (this.stmt('SELECT * FROM ports WHERE container_id = ?').all(containerId) as Row[]).map(toPort);
  }

  /** Every binding of this protocol and port, on whatever host address (of either family). */
  portsOnPort(protocol: string, hostPort: number): PortRecord[] {
    return (this.stmt('SELECT * FROM ports WHERE protocol = ? AND host_port = ?').all(protocol, hostPort) as Row[]).map(toPort);
  }

  /** Bindings of this protocol with host ports in [first, last], in one indexed query. */
  portsInRange(protocol: string, first: number, last: number): Pick<PortRecord, 'hostIp' | 'hostPort'>[] {
    return (this.stmt('SELECT host_ip, host_port FROM ports WHERE protocol = ? AND host_port BETWEEN ? AND ?').all(protocol, first, last) as Row[]).map((r) => ({
      hostIp: String(r.host_ip),
      hostPort: Number(r.host_port),
    }));
  }

  portHolder(protocol: string, hostIp: string, hostPort: number): PortRecord | undefined {
    const r = this.stmt('SELECT * FROM ports WHERE protocol = ? AND host_ip = ? AND host_port = ?')
      .get(protocol, hostIp, hostPort) as Row | undefined;
    return r ? toPort(r) : undefined;
  }

  /* Docker's plugin protocol (src/plugin/) */
  insertDockerNetwork(m: DockerNetworkRecord): void {
    this.stmt('INSERT INTO docker_networks VALUES (?, ?, ?)').run(m.dockerId, m.networkId, m.adopted ? 1 : 0);
  }

  dockerNetwork(dockerId: string): DockerNetworkRecord | undefined {
    const r = this.stmt('SELECT * FROM docker_networks WHERE docker_id = ?').get(dockerId) as Row | undefined;
    return r ? { dockerId: String(r.docker_id), networkId: String(r.network_id), adopted: r.adopted === 1 } : undefined;
  }

  dockerNetworksOf(networkId: string): string[] {
    return (this.stmt('SELECT docker_id FROM docker_networks WHERE network_id = ?').all(networkId) as Row[]).map((r) => String(r.docker_id));
  }

  deleteDockerNetwork(dockerId: string): void {
    this.stmt('DELETE FROM docker_networks WHERE docker_id = ?').run(dockerId);
  }

  insertDockerPool(p: DockerPoolRecord): void {
    this.stmt('INSERT INTO docker_pools VALUES (?, ?, ?, ?)').run(p.id, p.subnet, p.ipRange, p.v6 ? 1 : 0);
  }

  dockerPools(): DockerPoolRecord[] {
    return (this.stmt('SELECT * FROM docker_pools').all() as Row[]).map((r) => ({ id: String(r.id), subnet: String(r.subnet), ipRange: (r.ip_range as string | null) ?? null, v6: r.v6 === 1 }));
  }

  deleteDockerPool(id: string): void {
    this.stmt('DELETE FROM docker_pools WHERE id = ?').run(id);
  }

  dockerPoolAddresses(poolId: string): string[] {
    return (this.stmt('SELECT ip FROM docker_pool_addresses WHERE pool_id = ?').all(poolId) as Row[]).map((r) => String(r.ip));
  }

  /** False if the address was already handed out from this pool. */
  claimDockerPoolAddress(poolId: string, ip: string): boolean {
    return this.stmt('INSERT OR IGNORE INTO docker_pool_addresses VALUES (?, ?)').run(poolId, ip).changes === 1;
  }

  releaseDockerPoolAddress(poolId: string, ip: string): void {
    this.stmt('DELETE FROM docker_pool_addresses WHERE pool_id = ? AND ip = ?').run(poolId, ip);
  }

  /* meta */
  getMeta(key: string): string | undefined {
    return (this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmt('INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }
}

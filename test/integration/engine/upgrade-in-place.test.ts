/**
 * A daemon upgraded in place keeps its networks and running containers. The old state database is
 * made by turning a live one back into the layout berth wrote before schema versions (checked
 * column by column against test/fixtures/store-v1.sql, a real old daemon's database); the new
 * daemon then migrates it at start and must serve the same containers with the same kernel objects.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { BUSYBOX, REPO, Sandbox, eventually, type Peer } from '../../helpers/sandbox.js';

/** The inverse of migrations 5 (the Docker plugin's tables) and 2 (src/store/store.ts), for a database in that layout. */
const DOWNGRADE_TO_V1 = `
DROP TABLE docker_pool_addresses;
DROP TABLE docker_pools;
DROP TABLE docker_networks;
CREATE TABLE networks_v1 (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, driver TEXT NOT NULL, bridge TEXT UNIQUE,
  subnet TEXT, gateway TEXT, ip_range TEXT, internal INTEGER NOT NULL, user_subnet INTEGER NOT NULL,
  options TEXT NOT NULL, labels TEXT NOT NULL, created TEXT NOT NULL, predefined INTEGER NOT NULL);
INSERT INTO networks_v1 SELECT n.id, n.name, n.driver,
  (SELECT l.name FROM network_links l WHERE l.network_id = n.id AND l.role = 'bridge'),
  n.subnet, n.gateway, n.ip_range, n.internal, n.user_subnet, n.options, n.labels, n.created, n.predefined FROM networks n;
DROP TABLE network_links;
DROP TABLE networks;
ALTER TABLE networks_v1 RENAME TO networks;
CREATE TABLE endpoints_v1 (
  id TEXT PRIMARY KEY, container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
  network_id TEXT NOT NULL REFERENCES networks(id), ifname TEXT NOT NULL, ip TEXT NOT NULL,
  mac TEXT NOT NULL, aliases TEXT NOT NULL, host_veth TEXT NOT NULL UNIQUE, state TEXT NOT NULL,
  UNIQUE (network_id, ip), UNIQUE (container_id, network_id), UNIQUE (container_id, ifname));
INSERT INTO endpoints_v1 SELECT id, container_id, network_id, ifname, ip, mac, aliases, host_link, state FROM endpoints;
DROP TABLE endpoints;
ALTER TABLE endpoints_v1 RENAME TO endpoints;
DROP INDEX ports_by_container;
PRAGMA user_version = 0;`;

/** Tables, their columns and their indexes' columns: what two layouts must share to be the same. */
function schemaShape(db: Database.Database): unknown {
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
  return tables.map((t) => ({
    table: t,
    columns: db.prepare('SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?)').all(t),
    indexes: (db.prepare('SELECT name, "unique", partial FROM pragma_index_list(?) ORDER BY name').all(t) as { name: string; unique: number; partial: number }[])
      .map((i) => ({ unique: i.unique, partial: i.partial, columns: (db.prepare('SELECT name FROM pragma_index_info(?) ORDER BY seqno').all(i.name) as { name: string }[]).map((c) => c.name) }))
      .sort((a, b) => a.columns.join().localeCompare(b.columns.join())),
  }));
}

describe('a daemon upgraded in place keeps its networks and running containers', () => {
  let sb: Sandbox;
  let lan: Peer;
  const db = () => path.join(sb.root, 'state', 'berth.db');
  const curl = async (ns: string, url: string) => (await sb.inNs(ns, 'curl', ['-s', '--max-time', '3', url], 10_000)).stdout.trim();

  before(async () => {
    sb = await Sandbox.create('u');
    lan = await sb.addPeer('l', '10.206.0');
    const www = path.join(sb.root, 'www');
    fs.mkdirSync(www);
    fs.writeFileSync(path.join(www, 'index.html'), 'kept\n');
    await sb.berthOk('network', 'create', '--subnet', '10.161.0.0/24', '-o', 'com.docker.network.bridge.name=upbr0', 'upnet');
    await sb.berthOk('run', '-d', '--name', 'web', '--network', 'upnet', '--network-alias', 'www', '-p', '8090:80', '--', BUSYBOX, 'httpd', '-f', '-p', '80', '-h', www);
    await sb.berthOk('run', '-d', '--name', 'client', '--network', 'upnet', 'sleep', '600');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('the old layout, the migration at start, and the same containers serving through the same links', async () => {
    const clientNs = await sb.netnsOf('client');
    assert.ok(await eventually(async () => (await curl(lan.nsPath, `http://${lan.hostAddress}:8090/`)) === 'kept', 5000), 'positive control: the published port answers before the upgrade');
    const bridgeIndex = (await sb.inHost('ip', ['-o', 'link', 'show', 'upbr0'])).stdout.split(':')[0];
    await sb.stopDaemon();

    const old = new Database(db());
    old.pragma('foreign_keys = OFF');
    old.exec(DOWNGRADE_TO_V1);
    const reference = new Database(':memory:');
    reference.exec(fs.readFileSync(path.join(REPO, 'test/fixtures/store-v1.sql'), 'utf8'));
    assert.deepEqual(schemaShape(old), schemaShape(reference), 'the downgraded database has the layout the old berth wrote');
    reference.close();
    assert.equal(old.pragma('user_version', { simple: true }), 0);
    old.close();

    await sb.startDaemon();
    const upgraded = new Database(db(), { readonly: true });
    assert.ok((upgraded.pragma('user_version', { simple: true }) as number) >= 2, 'migrated at start');
    upgraded.close();
    assert.match(await sb.berthOk('ps'), /web[\s\S]*client|client[\s\S]*web/, 'both containers still listed');
    assert.equal((await sb.inspect('web')).State.Running, true);
    assert.equal((await sb.inHost('ip', ['-o', 'link', 'show', 'upbr0'])).stdout.split(':')[0], bridgeIndex, 'the same bridge, not a new one');
    assert.equal(await curl(lan.nsPath, `http://${lan.hostAddress}:8090/`), 'kept', 'the published port still answers from the LAN');
    const www = (await sb.inNs(clientNs, 'dig', ['@10.161.0.1', '+tries=1', '+time=3', '+short', 'www'])).stdout.trim();
    assert.equal(www, (await sb.inspect('web')).NetworkSettings.Networks.upnet!.IPAddress, 'the alias still resolves for the other container');
    assert.equal(await curl(clientNs, `http://${www}/`), 'kept');
    const [net] = JSON.parse(await sb.berthOk('network', 'inspect', 'upnet'));
    assert.equal(net.Options['com.docker.network.bridge.name'], 'upbr0');
    assert.equal(Object.keys(net.Containers).length, 2);

    // The upgraded store keeps working: a new endpoint, then everything removed, bridge included.
    await sb.berthOk('run', '-d', '--name', 'late', '--network', 'upnet', 'sleep', '600');
    assert.equal((await sb.inNs(await sb.netnsOf('late'), BUSYBOX, ['ping', '-c', '1', '-W', '2', (await sb.inspect('web')).NetworkSettings.Networks.upnet!.IPAddress])).code, 0);
    await sb.berthOk('rm', '-f', 'web', 'client', 'late');
    await sb.berthOk('network', 'rm', 'upnet');
    assert.equal((await sb.inHost('ip', ['link', 'show', 'upbr0'])).code, 1, 'the bridge went with the network');
  });
});

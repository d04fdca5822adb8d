/**
 * Schema migrations, on a database that berth's code before schema versions wrote (a real daemon's
 * state, test/fixtures/store-v1.sql): every network, link, endpoint, port and container survives.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { SCHEMA_VERSION, Store } from '../../../src/store/store.js';

const FIXTURE = fs.readFileSync(new URL('../../../../test/fixtures/store-v1.sql', import.meta.url), 'utf8');
const roots: string[] = [];

/** A state root holding the fixture's database, as the old daemon left it. */
function oldRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-migrate-'));
  roots.push(root);
  const db = new Database(path.join(root, 'berth.db'));
  db.exec(FIXTURE);
  db.close();
  return root;
}

afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

test('a database from before schema versions is migrated with everything on record', () => {
  const root = oldRoot();
  const store = new Store(root);
  try {
    const byName = new Map(store.networks().map((n) => [n.name, n]));
    assert.deepEqual([...byName.keys()].sort(), ['backnet', 'bridge', 'host', 'none', 'webnet']);
    assert.deepEqual(byName.get('bridge')!.links, [{ role: 'bridge', name: 'berth0', owned: true }]);
    assert.deepEqual(byName.get('webnet')!.links, [{ role: 'bridge', name: 'fixbr0', owned: true }]);
    assert.deepEqual(byName.get('backnet')!.links, [{ role: 'bridge', name: `berth-${byName.get('backnet')!.id.slice(0, 9)}`, owned: true }]);
    assert.deepEqual(byName.get('host')!.links, [], 'host and none have no links');
    const web = byName.get('webnet')!;
    assert.equal(web.subnet, '10.160.0.0/24');
    assert.equal(web.ipRange, '10.160.0.128/25');
    assert.deepEqual(web.labels, { team: 'web' });
    assert.deepEqual(web.auxAddresses, {}, 'no auxiliary addresses before they existed');
    assert.equal(byName.get('backnet')!.internal, true);
    assert.equal(byName.get('backnet')!.options['com.docker.network.bridge.enable_icc'], 'false');

    const containers = new Map(store.containers().map((c) => [c.name, c]));
    assert.deepEqual([...containers.keys()].sort(), ['plain', 'stopped', 'web']);
    assert.equal(containers.get('web')!.state, 'running');
    assert.equal(containers.get('stopped')!.state, 'exited');
    const endpoints = store.endpointsOfContainer(containers.get('web')!.id);
    assert.equal(endpoints.length, 2);
    for (const e of endpoints) assert.match(e.hostLink!, /^bv[0-9a-f]{12}$/, 'the host veth is now the host link');
    assert.deepEqual(
      store.portsOfContainer(containers.get('web')!.id).map((p) => `${p.protocol}/${p.hostIp}:${p.hostPort}->${p.containerIp}:${p.containerPort}`).sort(),
      ['tcp/0.0.0.0:8080->10.160.0.128:80', 'udp/127.0.0.1:32768->10.160.0.128:53'],
    );
    assert.equal(store.networkOwningLink('fixbr0')?.name, 'webnet', 'links are looked up by name');
  } finally {
    store.close();
  }
  const db = new Database(path.join(root, 'berth.db'));
  try {
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.deepEqual(db.pragma('foreign_key_check'), []);
  } finally {
    db.close();
  }
});

test('opening a migrated database again changes nothing; removing a network takes its links', () => {
  const root = oldRoot();
  new Store(root).close();
  const store = new Store(root);
  try {
    const web = store.networkByName('webnet')!;
    assert.deepEqual(web.links, [{ role: 'bridge', name: 'fixbr0', owned: true }]);
    for (const c of store.containers()) store.deleteContainer(c.id);
    store.deleteNetwork(web.id);
    assert.equal(store.networkOwningLink('fixbr0'), undefined);
    assert.equal(store.networks().length, 4);
  } finally {
    store.close();
  }
});

test('two networks cannot own a link of the same name, though they may share a parent they do not own', () => {
  const store = new Store(oldRoot());
  try {
    const base = { subnet: '10.170.0.0/24', gateway: '10.170.0.1', ipRange: null, auxAddresses: {}, internal: false, userSubnet: true, options: {}, labels: {}, created: new Date().toISOString(), predefined: false };
    assert.throws(() => store.insertNetwork({ ...base, id: 'a'.repeat(64), name: 'clash', driver: 'bridge', links: [{ role: 'bridge', name: 'fixbr0', owned: true }] }), /UNIQUE constraint failed: network_links.name/);
    assert.equal(store.networkByName('clash'), undefined, 'nothing half-made: the network row went with its link');
    store.insertNetwork({ ...base, id: 'b'.repeat(64), name: 'mv1', driver: 'macvlan', links: [{ role: 'parent', name: 'eth0', owned: false }] });
    store.insertNetwork({ ...base, subnet: '10.171.0.0/24', gateway: '10.171.0.1', id: 'c'.repeat(64), name: 'mv2', driver: 'macvlan', links: [{ role: 'parent', name: 'eth0', owned: false }] });
    assert.equal(store.networks().filter((n) => n.links.some((l) => l.name === 'eth0')).length, 2);
  } finally {
    store.close();
  }
});

test('a database from a newer berth is refused, and left as it was', () => {
  const root = oldRoot();
  const db = new Database(path.join(root, 'berth.db'));
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  assert.throws(() => new Store(root), new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this berth knows \\(${SCHEMA_VERSION}\\)`));
  const after = new Database(path.join(root, 'berth.db'));
  assert.ok(after.prepare("SELECT 1 FROM pragma_table_info('networks') WHERE name = 'bridge'").get(), 'not migrated');
  after.close();
});

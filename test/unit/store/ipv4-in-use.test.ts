/**
 * The store keeps each network's IPv4 addresses in use in memory for the allocator (so a setup does
 * not read every address of the network): the set must follow every endpoint write, a container's
 * cascade and a rolled-back transaction exactly as the table does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Store, type ContainerRecord, type EndpointRecord } from '../../../src/store/store.js';
import { formatIpv4 } from '../../../src/ipam/ipv4.js';

const NET = 'n'.repeat(64);

function fresh(): { store: Store; root: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-store-'));
  const store = new Store(root);
  store.insertNetwork({
    id: NET, name: 'n', driver: 'bridge', subnet: '10.180.0.0/24', gateway: '10.180.0.1', ipRange: null, auxAddresses: {}, internal: false,
    userSubnet: true, options: {}, labels: {}, created: new Date().toISOString(), predefined: false, links: [{ role: 'bridge', name: 'cachebr0', owned: true }],
  });
  return { store, root };
}

const container = (id: string): ContainerRecord => ({
  id, name: `c-${id.slice(0, 6)}`, created: new Date().toISOString(), state: 'running', pid: null, pidStart: null, exitCode: null, netnsPath: null, sharesWith: null,
  config: { cmd: ['true'], hostname: 'h', networkMode: 'n', dns: [], addHosts: [], ports: [], networks: [], autoRemove: false },
});
const endpoint = (id: string, containerId: string, ip: string): EndpointRecord => ({
  id, containerId, networkId: NET, ifname: 'eth0', ip, mac: '02:42:00:00:00:01', aliases: [], hostLink: null, state: 'active',
});
/** What the table says, for comparison with the cached set. */
const fromTable = (store: Store) => new Set(store.addressesInUse(NET));
const cached = (store: Store) => new Set([...store.ipv4InUse(NET)].map(formatIpv4));

test('the cached set follows inserts, deletes, a container cascade and a rollback', () => {
  const { store, root } = fresh();
  try {
    assert.deepEqual(cached(store), new Set(), 'an empty network');
    for (const n of [1, 2, 3]) {
      store.insertContainer(container(String(n).repeat(64)));
      store.insertEndpoint(endpoint(`e${n}`.padEnd(64, '0'), String(n).repeat(64), `10.180.0.${n + 1}`));
    }
    assert.deepEqual(cached(store), fromTable(store));
    assert.equal(cached(store).size, 3);

    store.deleteEndpoint('e1'.padEnd(64, '0'));
    assert.deepEqual(cached(store), fromTable(store), 'an endpoint deleted');
    store.deleteContainer('2'.repeat(64));
    assert.deepEqual(cached(store), fromTable(store), 'a container deleted with its endpoint (cascade)');
    assert.deepEqual(cached(store), new Set(['10.180.0.4']));

    // A transaction that deletes an endpoint, then fails: the table keeps it, and so must the set.
    assert.throws(() =>
      store.transaction(() => {
        store.deleteEndpoint('e3'.padEnd(64, '0'));
        throw new Error('boom');
      }),
    );
    assert.deepEqual(fromTable(store), new Set(['10.180.0.4']), 'the positive control: the table rolled back');
    assert.deepEqual(cached(store), fromTable(store), 'and the set agrees after the rollback');

    // A failed insert (the address is taken) adds nothing.
    store.insertContainer(container('9'.repeat(64)));
    assert.throws(() => store.insertEndpoint(endpoint('e9'.padEnd(64, '0'), '9'.repeat(64), '10.180.0.4')), /UNIQUE/);
    assert.deepEqual(cached(store), fromTable(store), 'a refused insert');
  } finally {
    store.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
});

/**
 * Container and network references resolve as Docker resolves them: a full id first, then an exact
 * name, then a unique id prefix (a range seek on the primary key, which must match exactly the ids
 * that start with the prefix, and say when more than one does).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Store, type ContainerRecord } from '../../../src/store/store.js';
import { findContainer, getContainer } from '../../../src/engine/lookup.js';

const container = (id: string, name: string): ContainerRecord => ({
  id, name, created: new Date().toISOString(), state: 'created', pid: null, pidStart: null, exitCode: null, netnsPath: null, sharesWith: null,
  config: { cmd: ['true'], hostname: 'h', networkMode: 'none', dns: [], addHosts: [], ports: [], networks: [], autoRemove: false },
});

test('full id, then exact name, then a unique id prefix', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-lookup-'));
  const store = new Store(root);
  try {
    const a = 'ab'.repeat(32);
    const b = `abc${'0'.repeat(61)}`;
    const f = `f${'e'.repeat(63)}`;
    // A container named with another one's full id: the id wins, as in Docker.
    store.insertContainer(container(a, 'first'));
    store.insertContainer(container(b, a.slice(0, 63) + '0'));
    store.insertContainer(container(f, 'ab'));
    store.insertContainer(container('0'.repeat(64), b));
    assert.equal(findContainer(store, a)?.name, 'first', 'full id');
    assert.equal(findContainer(store, b)?.id, b, 'a full id beats a container named like it');
    assert.equal(findContainer(store, 'ab')?.id, f, 'an exact name beats an id prefix');
    assert.equal(findContainer(store, 'abc')?.id, b, 'a unique prefix');
    assert.equal(findContainer(store, 'aba')?.id, a, 'a unique prefix, the other one');
    assert.equal(findContainer(store, 'fd'), undefined, 'a prefix between ids that starts none');
    assert.equal(findContainer(store, 'fe')?.id, f, 'the prefix of the last id');
    assert.equal(findContainer(store, 'ff'), undefined, 'above the last id');
    assert.equal(findContainer(store, 'f')?.id, f, 'the last id');
    assert.throws(() => findContainer(store, 'a'), /ambiguous/, 'two ids start with a');
    assert.throws(() => getContainer(store, 'nope'), /No such container: nope/);
  } finally {
    store.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
});

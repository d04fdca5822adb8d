import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrefixFollower, type Watchable } from '../../../src/cluster/prefix-follower.js';
import type { WatchEvent } from '../../../src/cluster/etcd.js';
import { silentLogger } from '../../../src/log.js';

/** A store whose watches the test ends by hand. */
class FakeStore implements Watchable {
  watches: { prefix: string; from: number; onEvents: (e: WatchEvent[]) => void; onEnd: (r: { compacted?: number; error?: string }) => void; cancelled: boolean }[] = [];
  watch(prefix: string, from: number, onEvents: (e: WatchEvent[]) => void, onEnd: (r: { compacted?: number; error?: string }) => void) {
    const w = { prefix, from, onEvents, onEnd, cancelled: false };
    this.watches.push(w);
    return { cancel: () => (w.cancelled = true) };
  }
  get last() {
    return this.watches[this.watches.length - 1]!;
  }
}

const put = (key: string, modRevision: number): WatchEvent => ({ type: 'put', kv: { key, value: 'v', createRevision: modRevision, modRevision, lease: '0' } });
const tick = () => new Promise((r) => setTimeout(r, 5));

function setup(relist: () => Promise<number> = async () => 100) {
  const store = new FakeStore();
  const applied: WatchEvent[][] = [];
  let lists = 0;
  const follower = new PrefixFollower({
    etcd: store,
    prefix: '/berth/',
    watchName: 'the test watch',
    listName: 'the test prefix',
    log: silentLogger,
    apply: (events) => applied.push(events),
    relist: () => {
      lists++;
      return relist();
    },
    backoff: () => 1,
  });
  return { store, applied, follower, lists: () => lists };
}

test('watched events are applied and move the revision to the last one seen', () => {
  const { store, applied, follower } = setup();
  follower.listed(10);
  follower.follow(11);
  assert.deepEqual([store.last.prefix, store.last.from], ['/berth/', 11]);
  store.last.onEvents([put('/berth/a', 12), put('/berth/b', 15)]);
  assert.equal(follower.revision, 15);
  assert.equal(applied.length, 1);
});

test('a watch that ends resumes after the last revision seen, with no list', async () => {
  const { store, follower, lists } = setup();
  follower.follow(11);
  store.last.onEvents([put('/berth/a', 20)]);
  store.last.onEnd({ error: 'member went away' });
  await tick();
  assert.equal(store.watches.length, 2);
  assert.equal(store.last.from, 21);
  assert.equal(lists(), 0);
});

test('a compacted watch lists again and watches from the listed revision', async () => {
  const { store, follower, lists } = setup(async () => 300);
  follower.follow(11);
  store.last.onEnd({ compacted: 250 });
  await tick();
  assert.equal(lists(), 1);
  assert.equal(follower.revision, 300);
  assert.equal(store.last.from, 301);
});

test('a list that fails is retried until one succeeds', async () => {
  let failures = 2;
  const { store, follower, lists } = setup(async () => {
    if (failures-- > 0) throw new Error('quorum lost');
    return 400;
  });
  follower.follow(11);
  store.last.onEnd({ compacted: 300 });
  for (let i = 0; i < 20 && store.watches.length < 2; i++) await tick();
  assert.equal(lists(), 3);
  assert.equal(store.last.from, 401);
});

test('closed, it cancels its watch and an end comes back to nothing', async () => {
  const { store, follower, lists } = setup();
  follower.follow(11);
  const w = store.last;
  follower.close();
  assert.equal(w.cancelled, true);
  w.onEnd({ compacted: 5 });
  w.onEnd({ error: 'gone' });
  await tick();
  assert.equal(store.watches.length, 1);
  assert.equal(lists(), 0);
});

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { findDeparture, type ReadAt } from '../../../src/trace/history-search.js';
import { describeLease, explainDeparture, explainSilentPeer, hostLabel, leaseSilence } from '../../../src/trace/peer-liveness.js';

/** A store in which the value exists over [from, to) revisions, compacted below `compactedBelow`. */
function history(from: number, to: number, compactedBelow = 0): { at: ReadAt<string>; reads: number[] } {
  const reads: number[] = [];
  const at: ReadAt<string> = async (rev) => {
    reads.push(rev);
    if (rev < compactedBelow) return 'compacted';
    return rev >= from && rev < to ? `v@${rev}` : undefined;
  };
  return { at, reads };
}

describe('trace: finding when an endpoint left the cluster store', () => {
  test('the exact revision it went, in a logarithmic number of reads', async () => {
    const { at, reads } = history(100, 990_001);
    const d = await findDeparture(1_000_000, at);
    assert.deepEqual(d, { value: 'v@990000', lastSeen: 990_000, goneAt: 990_001 });
    assert.ok(reads.length <= 45, `${reads.length} reads`);
  });

  test('a lifetime much shorter than the time since it went can be stepped over (the documented limit)', async () => {
    assert.equal(await findDeparture(1_000_000, history(100, 90_001).at), undefined);
  });

  test('gone at the revision just before now', async () => {
    const d = await findDeparture(50, history(10, 49).at);
    assert.deepEqual(d, { value: 'v@48', lastSeen: 48, goneAt: 49 });
  });

  test('present since revision 1', async () => {
    const d = await findDeparture(9, history(1, 4).at);
    assert.deepEqual(d, { value: 'v@3', lastSeen: 3, goneAt: 4 });
  });

  test('never there, or only in history already compacted: not found', async () => {
    assert.equal(await findDeparture(1000, history(0, 0).at), undefined);
    assert.equal(await findDeparture(1000, history(10, 20, 500).at), undefined);
    assert.equal(await findDeparture(1, history(0, 5).at), undefined, 'no revision before 1');
  });
});

describe('trace: liveness of the peer host', () => {
  const host = { id: '3f2a9c0d1e2b4a5f', hostname: 'h2', address: '192.168.90.12', started: '2024-05-01T10:00:00.000Z' };

  test('a host is named by hostname, address and id', () => {
    assert.equal(hostLabel(host), 'host h2 (192.168.90.12, id 3f2a9c0d1e2b4a5f)');
    assert.equal(hostLabel({ id: 'abc' }), 'host (id abc)');
  });

  test('a lease renewed on time is quiet; one that missed more than a renewal says so; an expired one is expired', () => {
    assert.deepEqual(leaseSilence({ id: '1', ttlLeft: 9, granted: 10 }), { silentFor: 1, overdue: false });
    assert.deepEqual(leaseSilence({ id: '1', ttlLeft: 5, granted: 10 }), { silentFor: 5, overdue: true });
    assert.equal(describeLease({ id: '7', ttlLeft: 9, granted: 10 }), 'lease 7: 9 s left of 10');
    assert.match(describeLease({ id: '7', ttlLeft: 4, granted: 10 }), /not renewed for about 6 s \(it is renewed every 3 s\): the host or its daemon has gone silent/);
    assert.equal(describeLease({ id: '7', ttlLeft: -1, granted: 0 }), 'lease 7 has expired');
  });

  test('a host dropped with its lease: named, with its address, since when, and the fix', () => {
    const { reason, fix } = explainDeparture('d1', 'ov', { host, goneAt: 812, hostGone: true, hostBack: false });
    assert.equal(reason, 'host h2 (192.168.90.12, id 3f2a9c0d1e2b4a5f) holding d1 is down: its lease expired and it is not in the cluster (gone at store revision 812; etcd keeps no time): its peers dropped its endpoints with it; it had been up since 2024-05-01T10:00:00.000Z');
    assert.match(fix, /^start berth on h2 \(192\.168\.90\.12\): it announces d1 again; or, if that host is gone for good, remove the container's endpoint there/);
  });

  test('a host alive that withdrew the endpoint: the container went, not the host', () => {
    const { reason, fix } = explainDeparture('d1', 'ov', { host, goneAt: 900, hostGone: false, hostBack: true });
    assert.match(reason, /^d1 is no longer on network ov: host h2 .* is alive but withdrew its endpoint at store revision 900/);
    assert.match(fix, /start d1 again on h2/);
  });

  test('no answer from a host the cluster still lists: says so, with the lease and the underlay', () => {
    const lease = { id: '7', ttlLeft: 2, granted: 6 };
    const cut = explainSilentPeer('d1', host, lease, false, 'no echo reply from 10.96.0.3 within 2 s');
    assert.match(cut.reason, /^the probe got no answer from d1 on host h2 \(192\.168\.90\.12, id 3f2a9c0d1e2b4a5f\), a host the cluster still lists \(lease 7: 2 s left of 6, not renewed for about 4 s/);
    assert.match(cut.reason, /no echo reply from 10\.96\.0\.3 within 2 s; 192\.168\.90\.12 does not answer on the underlay either: the host is down or cut off$/);
    assert.match(cut.fix, /its peers drop it within 2 s, when its lease runs out$/);
    const up = explainSilentPeer('d1', host, undefined, true, 'no reply');
    assert.match(up.reason, /192\.168\.90\.12 answers on the underlay, so the host is up but d1 does not answer there$/);
  });
});

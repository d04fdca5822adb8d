/**
 * Issue 10 item 6: when another process flushes the ruleset (what `systemctl restart nftables`
 * does) or deletes one of berth's tables, the daemon restores its tables within 1 s by itself,
 * without `berth system reconcile`; isolation and the 127/8 guard come back with them. Changes to
 * the user's chain are left alone.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox, eventually, must, type Peer } from '../../helpers/sandbox.js';

const RESTORE_WITHIN_MS = 1000;

describe('berth restores its firewall after someone else changes it', () => {
  let sb: Sandbox;
  let lan: Peer;
  let otherIp: string;
  before(async () => {
    sb = await Sandbox.create('fw');
    lan = await sb.addPeer('l', '10.216.0');
    await sb.berthOk('network', 'create', '--subnet', '10.170.0.0/24', 'one');
    await sb.berthOk('network', 'create', '--subnet', '10.171.0.0/24', 'two');
    await sb.berthOk('run', '-d', '--name', 'srv', '--network', 'one', '-p', '8600:80', '--', BUSYBOX, 'nc', '-ll', '-p', '80', '-e', '/bin/echo', 'srv');
    await sb.berthOk('run', '-d', '--name', 'other', '--network', 'two', '--', BUSYBOX, 'nc', '-ll', '-p', '80', '-e', '/bin/echo', 'other');
    otherIp = (await sb.inspect('other')).NetworkSettings.Networks.two!.IPAddress;
  });
  after(async () => {
    await sb?.destroy();
  });

  /**
   * The ruleset as a sorted list of its lines, elements one per line: nft lists the elements of
   * an interval set in the order they were added, which a rebuild does not keep. The accounting
   * sets' counts (docs/metrics.md) move with traffic and restart after a flush: only their presence counts.
   */
  const ruleset = async () =>
    (await sb.inHost('nft', ['list', 'ruleset'])).stdout
      .split('\n')
      .map((l) => l.trim().replace(/^elements = \{ /, '').replace(/( \}|,)$/, '').replace(/ counter packets \d+ bytes \d+/g, ' counter'))
      .filter(Boolean)
      .sort()
      .join('\n');
  const crossNetwork = async () => (await sb.inNs(await sb.netnsOf('srv'), BUSYBOX, ['nc', '-w', '1', otherIp, '80'])).stdout.trim();
  const published = async () => (await sb.inNs(lan.nsPath, BUSYBOX, ['nc', '-w', '2', lan.hostAddress, '8600'])).stdout.trim();

  /** Waits for berth's tables to match `expected` again; returns how long it took after the damage. */
  async function restoredAfter(damagedAt: number, expected: string): Promise<number> {
    assert.ok(await eventually(async () => (await ruleset()) === expected, 3000, 20), 'the ruleset is restored');
    return Date.now() - damagedAt;
  }

  test('nft flush ruleset: tables, isolation and published ports are back within 1 s', async () => {
    assert.equal(await crossNetwork(), '', 'networks are isolated before');
    assert.equal(await published(), 'srv', 'the published port works before');
    const expected = await ruleset();
    must(await sb.inHost('nft', ['flush', 'ruleset']), 'flush');
    const damagedAt = Date.now();
    const took = await restoredAfter(damagedAt, expected);
    assert.ok(took <= RESTORE_WITHIN_MS, `restored in ${took} ms`);
    assert.equal(await crossNetwork(), '', 'isolation is back');
    assert.equal(await published(), 'srv');
    assert.match(await ruleset(), /iifname != "lo" ip daddr 127\.0\.0\.0\/8 counter drop/, 'the loopback guard is back');
    // The repair can beat a `nft list` run right after the flush; the log shows the flush was seen.
    assert.match(sb.daemonLog, /changed by another process/);
  });

  test('deleting one table or flushing a chain is repaired the same way', async () => {
    const expected = await ruleset();
    must(await sb.inHost('nft', ['delete', 'table', 'bridge', 'berth']), 'delete bridge table');
    assert.ok((await restoredAfter(Date.now(), expected)) <= RESTORE_WITHIN_MS + 500);
    must(await sb.inHost('nft', ['flush', 'chain', 'ip', 'berth', 'forward']), 'flush forward');
    assert.ok((await restoredAfter(Date.now(), expected)) <= RESTORE_WITHIN_MS + 500);
    assert.equal(await crossNetwork(), '');
  });

  test('a change to the IPv6 twin (ip6 berth) is seen and repaired the same way', async () => {
    const expected = await ruleset();
    assert.match(expected, /table ip6 berth/, 'positive control: berth has an ip6 table here');
    const logBefore = sb.daemonLog.length;
    must(await sb.inHost('nft', ['flush', 'chain', 'ip6', 'berth', 'forward']), 'flush the IPv6 forward chain');
    assert.ok((await restoredAfter(Date.now(), expected)) <= RESTORE_WITHIN_MS + 500);
    assert.match(sb.daemonLog.slice(logBefore), /changed by another process/);
  });

  test("rules the user adds to user-forward stay, and do not make berth rebuild", async () => {
    const logBefore = sb.daemonLog.length;
    must(await sb.inHost('nft', ['add', 'rule', 'ip', 'berth', 'user-forward', 'ip', 'daddr', '10.9.9.9', 'drop']), 'user rule');
    await new Promise((r) => setTimeout(r, 500));
    assert.match(await ruleset(), /ip daddr 10\.9\.9\.9 drop/);
    assert.doesNotMatch(sb.daemonLog.slice(logBefore), /changed by another process/);
    // The same for the IPv6 twin's user chain.
    must(await sb.inHost('nft', ['add', 'rule', 'ip6', 'berth', 'user-forward', 'ip6', 'daddr', 'fd09::9', 'drop']), 'user rule (IPv6)');
    await new Promise((r) => setTimeout(r, 500));
    assert.match(await ruleset(), /ip6 daddr fd09::9 drop/);
    assert.doesNotMatch(sb.daemonLog.slice(logBefore), /changed by another process/);
  });
});

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ReportBuilder, formatReport } from '../../../src/trace/report.js';
import { chainsSeen, firstDrop, parseTraceLine, removeTablesScript, traceTablesScript } from '../../../src/trace/nft-trace.js';
import { ruleReasons } from '../../../src/trace/rule-why.js';
import { adviseDrop } from '../../../src/trace/drop-advice.js';

describe('trace report', () => {
  test('the first failure is kept; reachable only without one', () => {
    const r = new ReportBuilder();
    r.ok('source', 'container a');
    r.fail('firewall', 'ip berth forward: drop', { reason: 'dropped', fix: 'connect' }, 'rule …');
    r.fail('probe', 'echo', { reason: 'no reply', fix: 'look' });
    const report = r.build();
    assert.equal(report.reachable, false);
    assert.deepEqual(report.failure, { step: 'firewall', reason: 'dropped', fix: 'connect' });
    assert.deepEqual(report.hops[1], { step: 'firewall', ok: false, detail: 'ip berth forward: drop', evidence: 'rule …' });
    assert.equal('evidence' in report.hops[0]!, false);
    const ok = new ReportBuilder();
    ok.ok('probe', 'echo');
    assert.deepEqual(ok.build(), { reachable: true, hops: [{ step: 'probe', ok: true, detail: 'echo' }] });
  });

  test('text: one line per step, then the verdict and the fix', () => {
    const text = formatReport({
      reachable: false,
      hops: [
        { step: 'source', ok: true, detail: 'container a' },
        { step: 'firewall', ok: false, detail: 'drop', evidence: 'rule x' },
      ],
      failure: { step: 'firewall', reason: 'dropped by x', fix: 'remove x' },
    });
    assert.equal(text, ['ok    source    container a', 'FAIL  firewall  drop', '                ↳ rule x', '', 'unreachable: firewall: dropped by x', 'fix: remove x', ''].join('\n'));
    assert.match(formatReport({ reachable: true, hops: [] }), /^\nreachable\n$/);
  });
});

describe('nftables tracing (pure parts)', () => {
  test('the temporary table marks only the probe flow, before berth (priority -400), and clears leftovers first', () => {
    const script = traceTablesScript({ src: '10.1.0.2', dst: '10.2.0.2', protocol: 'tcp', port: 80 });
    assert.ok(script.startsWith(removeTablesScript()));
    assert.match(script, /add chain ip berth-trace prerouting \{ type filter hook prerouting priority -400; policy accept; \}/);
    assert.match(script, /add rule ip berth-trace prerouting ip saddr 10\.1\.0\.2 ip daddr 10\.2\.0\.2 tcp dport 80 meta nftrace set 1/);
    assert.match(script, /add rule bridge berth-trace prerouting ip saddr 10\.1\.0\.2 ip daddr 10\.2\.0\.2 tcp dport 80 meta nftrace set 1/);
    assert.doesNotMatch(script.replace(/berth-trace/g, ''), /berth/, 'touches no table but its own');
    assert.match(traceTablesScript({ src: 'fd00::2', dst: 'fd00::3', protocol: 'icmp' }), /add rule ip6 berth-trace output ip6 saddr fd00::2 ip6 daddr fd00::3 meta l4proto ipv6-icmp/);
  });

  test('monitor lines: rules with handles and verdicts, policies, packets', () => {
    const lines = [
      'trace id 7d63ac93 ip berth-trace prerouting packet: iif "eth0" ip saddr 10.1.0.2 ip daddr 10.2.0.2',
      'trace id 7d63ac93 ip berth-trace prerouting rule ip saddr 10.1.0.2 meta nftrace set 1 # handle 2 (verdict continue)',
      'trace id 7d63ac93 ip berth forward rule jump user-forward # handle 40 (verdict jump user-forward)',
      'trace id 7d63ac93 ip berth user-forward rule ip daddr 10.2.0.2 counter packets 0 bytes 0 drop # handle 60 (verdict drop)',
      'trace id 7d63ac93 ip filter FORWARD policy drop ',
    ];
    const events = lines.map(parseTraceLine);
    assert.deepEqual(events[3], { id: '7d63ac93', family: 'ip', table: 'berth', chain: 'user-forward', kind: 'rule', rule: 'ip daddr 10.2.0.2 counter drop', handle: 60, verdict: 'drop' });
    assert.deepEqual(events[4], { id: '7d63ac93', family: 'ip', table: 'filter', chain: 'FORWARD', kind: 'policy', verdict: 'drop' });
    assert.equal(parseTraceLine('something else'), undefined);
    const parsed = events.filter((e) => e !== undefined);
    assert.equal(firstDrop(parsed)?.handle, 60);
    assert.deepEqual(chainsSeen(parsed), ['ip berth forward', 'ip berth user-forward', 'ip filter FORWARD']);
  });

  test("rule reasons come from berth's own ruleset, by chain and position", () => {
    const reasons = ruleReasons();
    const forward = reasons.get('ip forward')!;
    assert.ok(forward.some((w) => /^The user's policy comes first/.test(w)));
    assert.ok(!forward.some((w) => w.startsWith('forward:')), 'a chain header is never part of a rule reason');
    assert.match(forward.at(-1)!, /networks are isolated from each other/);
    assert.ok(reasons.get('ip raw-prerouting')!.some((w) => /^Loopback addresses are host-only/.test(w)));
    assert.ok(reasons.get('bridge forward')!.some((w) => /^icc=false/.test(w)));
  });

  test('advice names the rule and says what to do', () => {
    const base = { family: 'ip', table: 'berth', source: 'container a', destination: 'container b (10.2.0.2)', sourceContainer: 'a', destinationNetwork: 'netb' };
    const iso = adviseDrop({ ...base, chain: 'forward', rule: 'oifname . oifname @bridges counter drop', position: 7, handle: 51, why: 'Nothing else enters a berth bridge.' });
    assert.match(iso.reason, /rule 7 of chain forward of table ip berth \(`oifname \. oifname @bridges counter drop`, handle 51\): Nothing else enters/);
    assert.match(iso.fix, /berth network connect netb a/);
    const user = adviseDrop({ ...base, chain: 'user-forward', rule: 'ip daddr 10.2.0.2 drop', handle: 60 });
    assert.match(user.fix, /nft delete rule ip berth user-forward handle 60/);
    const foreign = adviseDrop({ ...base, table: 'filter', chain: 'FORWARD', rule: '' });
    assert.match(foreign.reason, /the policy of chain FORWARD of table ip filter/);
    assert.match(foreign.fix, /not berth's/);
  });
});

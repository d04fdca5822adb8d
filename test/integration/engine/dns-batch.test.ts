/**
 * The resolver's batch thread (issue 18) with real queries from inside a container: many in flight,
 * every answer checked (address, 0x20 case, TTL 600 for container names), among them names of the
 * client's other network, forwarded names (the main thread's path, back through the same socket)
 * and NXDOMAIN; every query counted once in the metrics; and no descriptor left behind when a
 * network's resolver or a container's in-sandbox resolver goes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUSYBOX, REPO, Sandbox, eventually, type Peer } from '../../helpers/sandbox.js';
import type { FloodQuery, FloodResult, FloodSpec } from '../../helpers/dns-flood.js';

const METRICS_ADDR = '127.0.0.1:9324';
const FLOOD = path.join(REPO, 'dist/test/helpers/dns-flood.js');

function dnsCount(text: string, outcome: string): number {
  const m = new RegExp(`^berth_dns_queries_total\\{[^}]*outcome="${outcome}"[^}]*\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('DNS batch thread', () => {
  let sb: Sandbox;
  let upstream: Peer;
  let gw: string;

  const scrape = async (): Promise<string> => {
    const r = await sb.inHost('curl', ['-s', '--max-time', '5', `http://${METRICS_ADDR}/metrics`]);
    assert.equal(r.code, 0, `scrape failed: ${r.stderr}`);
    return r.stdout;
  };
  const ipOf = async (name: string, net: string) => (await sb.inspect(name)).NetworkSettings.Networks[net]!.IPAddress;
  const fdCount = () => fs.readdirSync(`/proc/${sb.daemonPid}/fd`).length;

  before(async () => {
    sb = await Sandbox.create('q', { startDaemon: false });
    upstream = await sb.addPeer('u', '10.205.0');
    sb.serveZone(upstream.nsPath, '10.205.0.77 www.example.test\n', '10.205.0.2');
    fs.writeFileSync(sb.resolvConf, `nameserver ${upstream.address}\n`);
    await sb.startDaemon(['--metrics-addr', METRICS_ADDR]);
    await sb.berthOk('network', 'create', 'neta');
    await sb.berthOk('network', 'create', 'netb');
    gw = JSON.parse(await sb.berthOk('network', 'inspect', 'neta'))[0].IPAM.Config[0].Gateway;
    await sb.berthOk('run', '-d', '--name', 'target', '--network', 'neta', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'far', '--network', 'netb', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'asker', '--network', 'neta', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('network', 'connect', 'netb', 'asker');
    assert.ok(await eventually(async () => (await sb.inHost('ss', ['-Hlun', 'src', gw])).stdout.includes(`${gw}:`), 5000), 'resolver listening');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('many queries in flight from a container: all answered right, each counted once', async () => {
    const target = await ipOf('target', 'neta');
    const far = await ipOf('far', 'netb');
    const queries: FloodQuery[] = [
      { name: 'TaRgEt', type: 'A', rcode: 'NOERROR', answers: [target], ttl: 600 },
      // far is on netb only: neta's resolver answers it because the asker is on netb too.
      { name: 'fAr', type: 'A', rcode: 'NOERROR', answers: [far], ttl: 600 },
      { name: `${target.split('.').reverse().join('.')}.In-AdDr.ArPa`, type: 'PTR', rcode: 'NOERROR', answers: ['target.neta'], ttl: 600 },
      { name: 'WwW.eXaMpLe.TeSt', type: 'A', rcode: 'NOERROR', answers: ['10.205.0.77'] },
      { name: 'NoSuCh.ExAmPlE.tEsT', type: 'A', rcode: 'NXDOMAIN', answers: [] },
    ];
    const each = 400;
    const spec: FloodSpec = { server: gw, queries, each, window: 64, timeoutMs: 20_000 };
    const before = await scrape();
    const r = await sb.inNs(await sb.netnsOf('asker'), process.execPath, [FLOOD, JSON.stringify(spec)], 30_000);
    const result = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as FloodResult;
    assert.equal(result.sent, queries.length * each, `all sent: ${r.stdout} ${r.stderr}`);
    for (const q of result.byQuery) assert.deepEqual(q, { name: q.name, ok: each, wrong: 0, lost: 0 }, `${q.name}: ${JSON.stringify(q)}`);

    // The batch thread's tally reaches the main thread in a message: wait for it, then it must be exact.
    const grew = (after: string, outcome: string) => dnsCount(after, outcome) - dnsCount(before, outcome);
    let after = '';
    await eventually(async () => {
      after = await scrape();
      return grew(after, 'local') >= 3 * each;
    }, 3000);
    assert.equal(grew(after, 'local'), 3 * each, 'container names and the PTR: answered locally');
    assert.equal(grew(after, 'forwarded'), each, 'the forwarded name');
    assert.equal(grew(after, 'nxdomain'), each, "the upstream's NXDOMAIN");
    assert.equal(grew(after, 'malformed') + grew(after, 'failed') + grew(after, 'refused'), 0);
  });

  test('a thread of the daemon serves UDP from poll(2) (the batch thread), and TCP still answers on the event loop', async (t) => {
    if (process.arch !== 'x64') return t.skip('reads the x86-64 syscall number of each thread');
    // x86-64's poll is syscall 7; the daemon's other threads wait in epoll_wait or futex.
    const tasks = fs.readdirSync(`/proc/${sb.daemonPid}/task`);
    const polling = tasks.filter((tid) => fs.readFileSync(`/proc/${sb.daemonPid}/task/${tid}/syscall`, 'utf8').split(' ')[0] === '7');
    assert.equal(polling.length, 1, `one thread in poll: ${polling.length}`);
    const tcp = await sb.inNs(await sb.netnsOf('asker'), 'dig', [`@${gw}`, '+tcp', '+tries=1', '+time=3', '+short', 'target']);
    assert.equal(tcp.stdout.trim(), await ipOf('target', 'neta'));
  });

  test('no descriptor left when a network resolver and an in-sandbox resolver go', async (t) => {
    t.after(async () => {
      await sb.berth('rm', '-f', 'c1', 'm1');
      await sb.berth('network', 'rm', 'netc', 'mvq');
    });
    const start = fdCount();
    // A bridge network: its resolver's UDP socket goes to the batch thread.
    await sb.berthOk('network', 'create', 'netc');
    await sb.berthOk('run', '-d', '--name', 'c1', '--network', 'netc', '--', BUSYBOX, 'sleep', '3600');
    const gwc = JSON.parse(await sb.berthOk('network', 'inspect', 'netc'))[0].IPAM.Config[0].Gateway;
    const dig = await sb.inNs(await sb.netnsOf('c1'), 'dig', [`@${gwc}`, '+tries=2', '+time=2', '+short', 'c1']);
    assert.equal(dig.stdout.trim(), await ipOf('c1', 'netc'), 'netc resolver answers');
    // An internal macvlan network: a resolver inside the container, on adopted descriptors.
    await sb.berthOk('network', 'create', '-d', 'macvlan', '--internal', '--subnet', '10.89.0.0/24', 'mvq');
    await sb.berthOk('run', '-d', '--name', 'm1', '--network', 'mvq', '--', BUSYBOX, 'sleep', '3600');
    const inside = await sb.inNs(await sb.netnsOf('m1'), 'dig', ['@127.0.0.11', '+tries=2', '+time=2', '+short', 'm1']);
    assert.equal(inside.stdout.trim(), await ipOf('m1', 'mvq'), 'the in-sandbox resolver answers');
    assert.ok(fdCount() >= start + 4, `positive control: the resolvers hold descriptors (${start} → ${fdCount()})`);
    await sb.berthOk('rm', '-f', 'm1', 'c1');
    await sb.berthOk('network', 'rm', 'mvq', 'netc');
    assert.ok(await eventually(() => fdCount() === start, 3000), `descriptors back to ${start}: ${fdCount()}`);
    assert.doesNotMatch((await sb.inHost('ss', ['-Hlun'])).stdout, new RegExp(`${gwc.replace(/\./g, '\\.')}:`), "netc's UDP socket is gone");
  });
});

/** Issue 2's bad-input cases: each is refused with a clear message, a non-zero exit, and nothing half-made. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox } from '../../helpers/sandbox.js';

describe('bad input', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create('x');
    await sb.berthOk('network', 'create', '--subnet', '10.99.0.0/16', 'taken');
    await sb.berthOk('network', 'create', '--subnet', '10.98.0.0/29', 'tiny');
    await sb.berthOk('run', '-d', '--name', 'holder', '--network', 'taken', '--ip', '10.99.0.9', '--', BUSYBOX, 'sleep', '3600');
  });
  after(async () => {
    await sb?.destroy();
  });

  /** Runs a refused command and checks the message, the exit code and that no link or network appeared. */
  async function refused(args: string[], message: RegExp): Promise<void> {
    const networksBefore = await sb.berthOk('network', 'ls', '-q');
    const linksBefore = (await sb.inHost('ip', ['-o', 'link'])).stdout;
    const r = await sb.berth(...args);
    assert.notEqual(r.code, 0, `berth ${args.join(' ')} must fail`);
    assert.match(r.stderr, message);
    assert.equal(await sb.berthOk('network', 'ls', '-q'), networksBefore, 'no network was left behind');
    const linkNames = (s: string) => s.split('\n').map((l) => l.split(': ')[1]?.split('@')[0]).filter(Boolean).sort();
    assert.deepEqual(linkNames((await sb.inHost('ip', ['-o', 'link'])).stdout), linkNames(linksBefore), 'no link was left behind');
  }

  const cases: [string, string[], RegExp][] = [
    ['invalid CIDR', ['network', 'create', '--subnet', '10.0.0.0/33', 'n1'], /invalid subnet "10\.0\.0\.0\/33"/],
    ['not a CIDR', ['network', 'create', '--subnet', 'notacidr', 'n1'], /invalid subnet "notacidr"/],
    ['host bits set', ['network', 'create', '--subnet', '10.97.0.1/24', 'n1'], /host bits are set.*10\.97\.0\.0\/24/],
    ['gateway outside the subnet', ['network', 'create', '--subnet', '10.97.0.0/24', '--gateway', '10.96.0.1', 'n1'], /no matching subnet for gateway 10\.96\.0\.1/],
    ['ip-range outside the subnet', ['network', 'create', '--subnet', '10.97.0.0/24', '--ip-range', '10.96.0.0/25', 'n1'], /no matching subnet for range 10\.96\.0\.0\/25/],
    ['overlapping subnet', ['network', 'create', '--subnet', '10.99.1.0/24', 'n1'], /overlaps.*network taken/],
    ['overlapping the default bridge', ['network', 'create', '--subnet', '172.17.5.0/24', 'n1'], /overlaps.*network bridge/],
    ['name in use', ['network', 'create', 'taken'], /network with name taken already exists/],
    ['bad name characters', ['network', 'create', 'bad name!'], /invalid network name "bad name!"/],
    ['bridge name too long', ['network', 'create', '-o', 'com.docker.network.bridge.name=abcdefghijklmnop', 'n1'], /bridge name "abcdefghijklmnop".*15 characters/],
    ['unknown driver', ['network', 'create', '-d', 'nosuchdriver', 'n1'], /plugin "nosuchdriver" not found/],
    ['removing a network with containers names them', ['network', 'rm', 'taken'], /has active endpoints.*holder/],
    ['removing a predefined network', ['network', 'rm', 'bridge'], /bridge is a pre-defined network and cannot be removed/],
    ['connecting to an unknown network', ['network', 'connect', 'nosuch', 'holder'], /network nosuch not found/],
    ['connecting an unknown container', ['network', 'connect', 'tiny', 'nosuch'], /No such container: nosuch/],
    ['--ip already taken', ['run', '-d', '--network', 'taken', '--ip', '10.99.0.9', '--', BUSYBOX, 'sleep', '1'], /10\.99\.0\.9 is already in use/],
    ['--ip outside the subnet', ['run', '-d', '--network', 'taken', '--ip', '10.98.0.5', '--', BUSYBOX, 'sleep', '1'], /Invalid address 10\.98\.0\.5/],
    ['--ip on the default bridge', ['run', '-d', '--ip', '172.17.0.50', '--', BUSYBOX, 'sleep', '1'], /not supported on the default bridge/],
    ['container:NAME not running', ['run', '-d', '--network', 'container:ghost', '--', BUSYBOX, 'sleep', '1'], /No such container: ghost/],
    ['unknown network for run', ['run', '-d', '--network', 'nosuch', '--', BUSYBOX, 'sleep', '1'], /network nosuch not found/],
  ];
  for (const [what, args, message] of cases) test(what, () => refused(args, message));

  test('pool exhausted', async () => {
    // A /29 has 6 usable addresses; the gateway takes one, so 5 containers fill it.
    for (let i = 0; i < 5; i++) await sb.berthOk('run', '-d', '--name', `t${i}`, '--network', 'tiny', '--', BUSYBOX, 'sleep', '3600');
    await refused(['run', '-d', '--name', 'overflow', '--network', 'tiny', '--', BUSYBOX, 'sleep', '1'], /no free address left in 10\.98\.0\.0\/29/);
    assert.equal((await sb.berth('inspect', 'overflow')).code, 1, 'the refused container is not kept');
  });

  test("the CLI's own refusals say Error:, the daemon's say Error response from daemon:", async () => {
    // Refused by the CLI before any request: a filter without "=".
    await refused(['network', 'ls', '--filter', 'bogus'], /^Error: invalid filter "bogus": expected key=value$/m);
    // Through the same command, a filter the daemon does not know.
    await refused(['network', 'ls', '--filter', 'bogus=1'], /^Error response from daemon: invalid filter 'bogus'$/m);
  });

  test('the CLI says clearly when no daemon answers', async () => {
    const r = await sb.berth('--host', 'unix:///tmp/berth-nonexistent.sock', 'network', 'ls');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot reach the berth daemon at unix:\/\/\/tmp\/berth-nonexistent\.sock.*berth daemon/);
  });
});

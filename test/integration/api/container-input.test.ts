/**
 * Container input checks (issue 10 item 16), through the CLI and the API: a bad --hostname, --dns,
 * --dns-search, --dns-option or port host address is refused with a message naming it, a non-zero
 * exit and no container or link left; the good forms (the positive controls) take effect inside
 * the container, and --add-host NAME:host-gateway names the gateway of the container's network.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSYBOX, Sandbox } from '../../helpers/sandbox.js';
import { call } from './http.js';

describe('container input', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create('i');
    await sb.berthOk('network', 'create', '--subnet', '10.141.0.0/24', 'inet');
  });
  after(async () => {
    await sb?.destroy();
  });

  const links = async () => (await sb.inHost('ip', ['-o', 'link'])).stdout.split('\n').map((l) => l.split(': ')[1]).sort();

  /** A refused `berth run`: exit 125, the message, and nothing left behind. */
  async function refused(flags: string[], message: RegExp): Promise<void> {
    const linksBefore = await links();
    const r = await sb.berth('run', '--name', 'refused', '--network', 'inet', ...flags, '--', BUSYBOX, 'true');
    assert.equal(r.code, 125, `berth run ${flags.join(' ')} must fail: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(await sb.berthOk('ps', '-a'), /refused/, 'no container record left');
    assert.deepEqual(await links(), linksBefore, 'no link left');
  }

  const longLabel = 'a'.repeat(64);
  const longName = `${'b'.repeat(32)}.${'b'.repeat(32)}`; // 65 characters: the kernel keeps 64
  const cases: [string, string[], RegExp][] = [
    ['hostname starting with -', ['--hostname=-oops'], /invalid --hostname "-oops": it starts with '-'/],
    ['hostname with a newline', ['--hostname', 'web\nevil'], /invalid --hostname "web\\nevil": the label "web\\nevil" has characters other than/],
    ['hostname with an underscore', ['--hostname', 'web_1'], /invalid --hostname "web_1".*letters, digits and inner '-'/],
    ['hostname label over 63 characters', ['--hostname', longLabel], /is 64 characters long \(at most 63\)/],
    ['hostname over 64 characters', ['--hostname', longName], /it is 65 characters long \(at most 64\)/],
    ['--dns-search over 253 characters', ['--dns-search', Array.from({ length: 4 }, () => 'd'.repeat(63)).join('.')], /invalid --dns-search .*it is 255 characters long \(at most 253\)/],
    ['hostname with an empty label', ['--hostname', 'a..b'], /empty label/],
    ['--dns not an address', ['--dns', 'dns.example'], /invalid --dns "dns\.example": not an IP address/],
    ['--dns-search with a space', ['--dns-search', 'a b'], /invalid --dns-search "a b"/],
    ['--dns-option with a #', ['--dns-option', 'ndots:1#x'], /invalid --dns-option "ndots:1#x"/],
    ['--add-host with a bad address', ['--add-host', 'db:10.0.0.300'], /invalid --add-host "db:10\.0\.0\.300"/],
  ];
  for (const [what, flags, message] of cases) test(`refused: ${what}`, () => refused(flags, message));

  test('the good forms take effect inside the container', async () => {
    const name = `web-1.${'c'.repeat(58)}`; // 64 characters, labels within 63
    const out = await sb.berthOk(
      'run', '--rm', '--network', 'inet', '--hostname', name, '--dns', '10.0.0.53', '--dns-search', 'corp.example', '--dns-search', 'lab.example',
      '--dns-option', 'ndots:2', '--dns-option', 'edns0', '--', BUSYBOX, 'sh', '-c', 'hostname; cat /etc/resolv.conf',
    );
    const [hostname, ...resolv] = out.trim().split('\n');
    assert.equal(hostname, name);
    assert.deepEqual(resolv, ['search corp.example lab.example', 'nameserver 10.141.0.1', 'options ndots:2 edns0']);
    const bridged = await sb.berthOk('run', '--rm', '--dns', '10.0.0.53', '--dns-search', '.', '--dns-option', 'timeout:1', '--', BUSYBOX, 'cat', '/etc/resolv.conf');
    assert.equal(bridged, 'nameserver 10.0.0.53\noptions timeout:1\n', 'default bridge: --dns, no search domains, the option');
  });

  test('--add-host NAME:host-gateway names the gateway of the first network, which answers there', async () => {
    const out = await sb.berthOk('run', '--rm', '--network', 'inet', '--add-host', 'hostgw:host-gateway', '--', BUSYBOX, 'sh', '-c', 'grep hostgw /etc/hosts && ping -c 1 -W 2 hostgw');
    assert.match(out, /^10\.141\.0\.1\thostgw$/m);
    assert.match(out, /1 packets received/);
    const bridged = await sb.berthOk('run', '--rm', '--add-host', 'hostgw:host-gateway', '--', BUSYBOX, 'grep', 'hostgw', '/etc/hosts');
    assert.equal(bridged, '172.17.0.1\thostgw\n', 'the default bridge: its gateway');
  });

  test('API: a malformed port hostIp is refused with 400 and nothing made; a good one is accepted', async () => {
    const create = (hostIp: string, name: string) =>
      call(sb.socket, 'POST', '/containers/create', { body: { name, cmd: [BUSYBOX, 'sleep', '60'], networkMode: 'inet', ports: [{ protocol: 'tcp', hostIp, hostPort: 0, containerPort: 80 }] } });
    for (const bad of ['127.0.0.1x', '127.1', '', '0.0.0.0 ', '010.0.0.1', 'fd00::01', '1::2::3']) {
      const r = await create(bad, 'badport');
      assert.equal(r.status, 400, `hostIp ${JSON.stringify(bad)}: ${r.text}`);
      assert.match(String((r.json as { message: string }).message), /invalid host IP .* for port 80\/tcp: expected an IPv4 address like 127\.0\.0\.1/);
      assert.doesNotMatch(await sb.berthOk('ps', '-a'), /badport/);
    }
    const good = await create('127.0.0.1', 'goodport');
    assert.equal(good.status, 201, good.text);
    await sb.berthOk('rm', '-f', 'goodport');
  });

  test('API: dnsSearch and dnsOptions reach the container record', async () => {
    const r = await call(sb.socket, 'POST', '/containers/create', { body: { name: 'apidns', cmd: [BUSYBOX, 'true'], networkMode: 'inet', dnsSearch: ['x.example'], dnsOptions: ['ndots:3'] } });
    assert.equal(r.status, 201, r.text);
    const bad = await call(sb.socket, 'POST', '/containers/create', { body: { name: 'apidns2', cmd: [BUSYBOX, 'true'], dnsOptions: ['a b'] } });
    assert.equal(bad.status, 400);
    assert.match((bad.json as { message: string }).message, /invalid --dns-option "a b"/);
    await sb.berthOk('rm', '-f', 'apidns');
  });
});

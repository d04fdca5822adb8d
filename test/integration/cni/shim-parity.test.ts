/**
 * The compiled CNI shim (dist/bin/berth-cni) and the Perl one (bin/berth-cni, the fallback without
 * a C compiler) through the same cases: every case runs both, requires the same stdout, byte for
 * byte, and the same exit code, then checks what they said. Against a sandbox daemon (VERSION,
 * ADD/DEL, the daemon's errors, unreachable sockets) and against a stand-in daemon on a unix socket
 * that records each request and answers what the case needs (odd answers, large bodies, silence).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Sandbox, eventually } from '../../helpers/sandbox.js';
import { CNI_PLUGIN, CNI_PLUGIN_PERL, cniPlugin, runCni, type Invocation, type Outcome } from '../../helpers/cni.js';

/** A build without a C compiler puts the Perl shim at dist/bin/berth-cni: then there is nothing to compare. */
const perlAtDist = fs.existsSync(CNI_PLUGIN) && fs.readFileSync(CNI_PLUGIN).subarray(0, 2).toString() === '#!';

/** A stand-in daemon on a unix socket: records each whole request, then answers as `answer` says. */
class StandIn {
  readonly requests: Buffer[] = [];
  answer: (s: net.Socket) => void = (s) => s.end('HTTP/1.0 204 No Content\r\n\r\n');
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    readonly file: string,
    private readonly server: net.Server,
  ) {}

  static async listen(file: string): Promise<StandIn> {
    const server = net.createServer();
    const standIn = new StandIn(file, server);
    server.on('connection', (s) => standIn.serve(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, resolve);
    });
    return standIn;
  }

  get host(): string {
    return `unix://${this.file}`;
  }

  private serve(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
    let data = Buffer.alloc(0);
    let answered = false;
    s.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const headEnd = data.indexOf('\r\n\r\n');
      if (answered || headEnd < 0) return;
      const length = Number(/\r\nContent-Length: (\d+)\r\n/.exec(data.subarray(0, headEnd + 2).toString('latin1'))?.[1] ?? 0);
      if (data.length < headEnd + 4 + length) return;
      answered = true;
      this.requests.push(data);
      this.answer(s);
    });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Writes the answer a piece at a time, each in its own turn of the event loop, then closes. */
async function inPieces(s: net.Socket, answer: Buffer, size: number): Promise<void> {
  for (let at = 0; at < answer.length; at += size) {
    s.write(answer.subarray(at, at + size));
    await new Promise((resolve) => setImmediate(resolve));
  }
  s.end();
}

const shown = (o: Outcome) => `exit ${o.code}, ${o.stdout.length} bytes: ${JSON.stringify(o.raw.slice(0, 300))}`;

/** The two shims answered alike: the same exit code and the same stdout bytes. */
function alike(what: string, perl: Outcome, c: Outcome): Outcome {
  assert.equal(c.code, perl.code, `${what}: exit codes differ\n perl: ${shown(perl)}\n C:    ${shown(c)}`);
  assert.ok(c.stdout.equals(perl.stdout), `${what}: stdout differs\n perl: ${shown(perl)}\n C:    ${shown(c)}`);
  return c;
}

describe('CNI shims: the compiled one answers as the Perl one', { skip: perlAtDist ? 'dist/bin/berth-cni is the Perl shim (built without a C compiler): nothing to compare' : false }, () => {
  let sb: Sandbox;
  let standIn: StandIn;
  let host: string;
  const conf = (extra: Record<string, unknown> = {}) => ({ cniVersion: '1.1.0', name: 'paritynet', type: 'berth', host, ...extra });

  /** Runs the case through the Perl shim, then the compiled one; returns the compiled one's outcome once they agree. */
  async function same(what: string, inv: Invocation, timeoutMs?: number): Promise<Outcome> {
    const perl = await runCni(sb, { ...inv, plugin: CNI_PLUGIN_PERL }, timeoutMs);
    const c = await runCni(sb, { ...inv, plugin: cniPlugin() }, timeoutMs);
    return alike(what, perl, c);
  }

  before(async () => {
    sb = await Sandbox.create('p');
    host = `unix://${sb.socket}`;
    await sb.berthOk('network', 'create', '--subnet', '10.150.0.0/24', 'paritynet');
    standIn = await StandIn.listen(path.join(sb.root, 'stand-in.sock'));
  });
  after(async () => {
    await standIn?.close();
    await sb?.destroy();
  });

  test('VERSION, answered without the daemon: the version asked in, else the newest', async () => {
    const versions = ['0.4.0', '1.0.0', '1.1.0'];
    for (const asked of versions) {
      const r = await same(`asked ${asked}`, { command: 'VERSION', config: { cniVersion: asked } });
      assert.equal(r.code, 0);
      assert.equal(r.raw, `${JSON.stringify({ cniVersion: asked, supportedVersions: versions })}\n`);
    }
    const newest: [string, unknown][] = [
      ['unknown version', { cniVersion: '0.2.0' }],
      ['no config', ''],
      ['empty version', { cniVersion: '' }],
      ['the text between two listed versions', { cniVersion: ',' }],
      ['unterminated', '{"cniVersion": "1.0.0'],
    ];
    for (const [what, config] of newest) {
      const r = await same(what, { command: 'VERSION', config });
      assert.equal(r.code, 0, what);
      assert.deepEqual(r.json, { cniVersion: '1.1.0', supportedVersions: versions }, what);
    }
    // The first "cniVersion" in the text, whatever the white space around its colon.
    const spaced = await same('spacing', { command: 'VERSION', config: '{"cniVersion" \v:\n\t"0.4.0", "plugins": [{"cniVersion": "1.0.0"}]}' });
    assert.equal(spaced.json?.cniVersion, '0.4.0');
    const noDaemon = await same('no daemon at host', { command: 'VERSION', config: { cniVersion: '1.0.0', host: `unix://${sb.root}/gone.sock` } });
    assert.equal(noDaemon.json?.cniVersion, '1.0.0', 'VERSION does not ask the daemon');
  });

  test('ADD prints the same result from both and exits 0; DEL exits 0 and prints nothing, twice', async () => {
    const netns = await sb.makeNetns('add');
    // The address and MAC asked for (capabilities ips and mac), so that two ADDs can give one result.
    const inv = { containerId: 'parity', netns, config: conf({ runtimeConfig: { ips: ['10.150.0.50/24'], mac: '02:42:0a:96:00:32' } }) };
    const adds: Outcome[] = [];
    const dels: Outcome[] = [];
    for (const plugin of [CNI_PLUGIN_PERL, cniPlugin()]) {
      const add = await runCni(sb, { ...inv, command: 'ADD', plugin });
      assert.equal(add.code, 0, `${plugin}: ${add.raw}`);
      assert.equal((add.json?.ips as { address: string }[])[0]?.address, '10.150.0.50/24');
      assert.match((await sb.inNs(netns, 'ip', ['-o', 'addr', 'show', 'eth0'])).stdout, /inet 10\.150\.0\.50\/24/, `${plugin}: the namespace has the address`);
      adds.push(add);
      for (const round of [1, 2]) {
        const del = await runCni(sb, { ...inv, command: 'DEL', plugin });
        assert.equal(del.code, 0, `${plugin} DEL ${round}: ${del.raw}`);
        dels.push(del);
      }
      assert.ok(await eventually(async () => (await sb.inNs(netns, 'ip', ['link', 'show', 'eth0'])).code === 1, 3000), `${plugin}: eth0 is gone`);
    }
    // The host end of the veth is named per endpoint, afresh for each ADD: the one byte run that may differ.
    const hostEndAs = (o: Outcome, name: string): Outcome => {
      const hostEnd = (o.json?.interfaces as { name: string }[])[0]!.name;
      assert.match(hostEnd, /^bv[0-9a-f]{12}$/);
      const raw = o.raw.replace(`{"name":"${hostEnd}"}`, `{"name":"${name}"}`);
      return { ...o, raw, stdout: Buffer.from(raw) };
    };
    alike('ADD', hostEndAs(adds[0]!, 'bvHOSTEND'), hostEndAs(adds[1]!, 'bvHOSTEND'));
    alike('DEL', dels[0]!, dels[2]!);
    alike('DEL again', dels[1]!, dels[3]!);
    assert.equal(dels[0]!.raw, '');
  });

  test('an error from the daemon is printed as it answered, with a non-zero exit', async () => {
    const netns = await sb.makeNetns('err');
    const cases: [string, Invocation, number, RegExp][] = [
      ['unknown berth network', { command: 'ADD', containerId: 'pe1', netns, config: conf({ network: 'nosuch' }) }, 7, /network "nosuch" not found/],
      ['malformed config (the daemon found through BERTH_HOST)', { command: 'ADD', containerId: 'pe2', netns, config: '{"cniVersion": ' }, 6, /not valid JSON/],
      ['CHECK of an unknown container', { command: 'CHECK', containerId: 'pe3', netns, config: conf() }, 3, /pe3/],
    ];
    for (const [what, inv, code, msg] of cases) {
      const r = await same(what, inv);
      assert.equal(r.code, 1, what);
      assert.equal(r.json?.code, code, `${what}: ${r.raw}`);
      assert.match(String(r.json?.msg), msg, what);
    }
    const status = await same('STATUS (control: the same daemon, no error)', { command: 'STATUS', config: conf() });
    assert.equal(status.code, 0, status.raw);
    assert.doesNotMatch(await sb.berthOk('ps', '-a'), /cni-pe\d/, 'nothing left of the failed ADDs');
  });

  test('an unreachable daemon: code 11 (50 for STATUS) with the reason; a host that is not unix://PATH: code 7', async () => {
    const gone = path.join(sb.root, 'gone.sock');
    const plain = path.join(sb.root, 'plain-file');
    fs.writeFileSync(plain, '');
    const cannot = (at: string, why: string) => `cannot reach the berth daemon at ${at} (${why}): start it with 'berth daemon', or set "host" in the plugin config`;
    const unsupported = (h: string) => `unsupported berth host "${h}": use unix:///path/to/berth.sock`;
    const bare = { cniVersion: '1.1.0', name: 'paritynet', type: 'berth' };
    const cases: [string, Invocation, number, string][] = [
      ['no socket there', { command: 'ADD', config: conf({ host: `unix://${gone}` }) }, 11, cannot(gone, 'connect: No such file or directory')],
      ['STATUS, no socket there', { command: 'STATUS', config: conf({ host: `unix://${gone}` }) }, 50, `berth daemon not reachable at ${gone}: connect: No such file or directory`],
      ['a file, not a socket', { command: 'DEL', config: conf({ host: `unix://${plain}` }) }, 11, cannot(plain, 'connect: Connection refused')],
      ['a path too long for a unix socket', { command: 'ADD', config: conf({ host: `unix:///${'a'.repeat(200)}` }) }, 11, cannot(`/${'a'.repeat(200)}`, 'connect: Invalid argument')],
      ['BERTH_HOST, when the config has no host', { command: 'ADD', config: bare, env: { BERTH_HOST: `unix://${gone}` } }, 11, cannot(gone, 'connect: No such file or directory')],
      ['one final newline is not part of the path', { command: 'ADD', config: bare, env: { BERTH_HOST: `unix://${gone}\n` } }, 11, cannot(gone, 'connect: No such file or directory')],
      ['tcp', { command: 'ADD', config: conf({ host: 'tcp://127.0.0.1:2375' }) }, 7, unsupported('tcp://127.0.0.1:2375')],
      ['no path', { command: 'ADD', config: bare, env: { BERTH_HOST: 'unix://' } }, 7, unsupported('unix://')],
      ['a newline inside the path', { command: 'ADD', config: bare, env: { BERTH_HOST: 'unix:///a\nb' } }, 7, unsupported('unix:///a\nb')],
      ['a quote, a backslash and newlines, escaped', { command: 'ADD', config: bare, env: { BERTH_HOST: 'x"y\\z\n\n' } }, 7, unsupported('x"y\\z\n\n')],
    ];
    for (const [what, inv, code, msg] of cases) {
      const r = await same(what, inv);
      assert.equal(r.code, 1, what);
      assert.deepEqual(r.json, { cniVersion: '1.1.0', code, msg }, `${what}: ${r.raw}`);
    }
  });

  test('neither host nor BERTH_HOST (or it is empty, or "0"): the default socket, /run/berth/berth.sock', async () => {
    // The shims run in a mount namespace of their own where /run is a tmpfs with the stand-in's
    // directory on /run/berth; the machine's /run is not touched.
    const dir = path.join(sb.root, 'run-berth');
    fs.mkdirSync(dir);
    const atDefault = await StandIn.listen(path.join(dir, 'berth.sock'));
    try {
      const wrap = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -t tmpfs berth-test /run && mkdir /run/berth && mount --bind "$0" /run/berth && exec "$@"', dir];
      const bare = { cniVersion: '1.1.0', name: 'paritynet', type: 'berth' };
      for (const [what, value] of [['unset', undefined], ['empty', ''], ['"0"', '0']] as const) {
        const r = await same(`BERTH_HOST ${what}`, { command: 'STATUS', config: bare, env: { BERTH_HOST: value }, wrap });
        assert.equal(r.code, 0, `${what}: ${r.raw}`);
      }
      assert.equal(atDefault.requests.length, 6, 'every call reached the default socket');
      const elsewhere = await same('control: a host in the config', { command: 'STATUS', config: { ...bare, host: standIn.host }, env: { BERTH_HOST: undefined }, wrap });
      assert.equal(elsewhere.code, 0, elsewhere.raw);
      assert.equal(atDefault.requests.length, 6, 'the config host was asked instead');
    } finally {
      await atDefault.close();
    }
  });

  test('the request: the same bytes from both, CR and LF taken out of the variables, Content-Length in bytes', async () => {
    standIn.answer = (s) => s.end('HTTP/1.0 204 No Content\r\n\r\n');
    const config = `{"cniVersion":"1.1.0","name":"réseau","type":"berth","host":"${standIn.host}"}`;
    const env = { CNI_CONTAINERID: 'ctr\n1', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web\r\nInjected: yes' };
    const from = standIn.requests.length;
    const r = await same('request', { command: 'ADD', netns: '/run/netns/somewhere', ifname: 'eth9', config, env });
    assert.equal(r.code, 0, r.raw);
    assert.equal(r.raw, '');
    const [perl, c] = standIn.requests.slice(from);
    assert.ok(perl && c && c.equals(perl), `requests differ:\n perl: ${JSON.stringify(perl?.toString())}\n C:    ${JSON.stringify(c?.toString())}`);
    const expected =
      'POST /cni HTTP/1.0\r\nHost: berth\r\nContent-Type: application/json\r\nCNI-Command: ADD\r\nCNI-ContainerID: ctr1\r\nCNI-Netns: /run/netns/somewhere\r\n' +
      `CNI-Ifname: eth9\r\nCNI-Args: IgnoreUnknown=1;K8S_POD_NAME=webInjected: yes\r\nContent-Length: ${Buffer.byteLength(config)}\r\nConnection: close\r\n\r\n${config}`;
    assert.equal(c.toString(), expected);
  });

  test('answers: the body with its final newlines made one; 2xx exits 0, else 1; an empty error is code 5; no HTTP is code 11 (50 for STATUS)', async () => {
    const config = conf({ host: standIn.host });
    const error = (code: number, msg: string) => `${JSON.stringify({ cniVersion: '1.1.0', code, msg })}\n`;
    const noHttp = error(11, `cannot reach the berth daemon at ${standIn.file} (no HTTP answer): start it with 'berth daemon', or set "host" in the plugin config`);
    const cases: [string, string, string, number, string][] = [
      ['200, newlines after the body', 'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"a":1}\n\n\n', 'ADD', 0, '{"a":1}\n'],
      ['200, no newline', 'HTTP/1.1 200 OK\r\n\r\n{"a":1}', 'ADD', 0, '{"a":1}\n'],
      ['CR LF inside the body, kept', 'HTTP/1.0 200 OK\r\n\r\na\r\n\r\nb\r\n', 'ADD', 0, 'a\r\n\r\nb\r\n'],
      ['204, no body', 'HTTP/1.0 204 No Content\r\n\r\n', 'DEL', 0, ''],
      ['a head and no blank line', 'HTTP/1.0 200 OK\r\n', 'DEL', 0, ''],
      ['a four-digit status: its first three', 'HTTP/1.0 2001 Odd\r\n\r\nok', 'ADD', 0, 'ok\n'],
      ['400 with the error JSON', 'HTTP/1.0 400 Bad Request\r\n\r\n{"cniVersion":"1.1.0","code":7,"msg":"x"}\n', 'ADD', 1, '{"cniVersion":"1.1.0","code":7,"msg":"x"}\n'],
      ['500, no body', 'HTTP/1.0 500 Internal Server Error\r\n\r\n', 'ADD', 1, error(5, 'berth daemon answered HTTP 500')],
      ['503, only newlines', 'HTTP/1.0 503 Busy\r\n\r\n\n\n', 'CHECK', 1, error(5, 'berth daemon answered HTTP 503')],
      ['not HTTP', 'hello\r\n\r\nworld', 'ADD', 1, noHttp],
      ['no version digits', 'HTTP/2 200 OK\r\n\r\n{}', 'ADD', 1, noHttp],
      ['not HTTP, to STATUS', 'hello', 'STATUS', 1, error(50, `berth daemon not reachable at ${standIn.file}: no HTTP answer`)],
      ['closed without a word', '', 'ADD', 1, noHttp],
    ];
    for (const [what, answer, command, code, stdout] of cases) {
      standIn.answer = (s) => s.end(answer);
      const r = await same(what, { command, config });
      assert.equal(r.code, code, what);
      assert.equal(r.raw, stdout, what);
    }
  });

  test('large bodies both ways: a 3 MiB config and a 2 MiB answer in pieces, neither cut', async () => {
    const config = JSON.stringify({ ...conf({ host: standIn.host }), pad: 'x'.repeat(3 << 20) });
    const body = `{"big":"${'y'.repeat(2 << 20)}"}`;
    standIn.answer = (s) => void inPieces(s, Buffer.from(`HTTP/1.0 200 OK\r\n\r\n${body}\n\n`), 7_000);
    const from = standIn.requests.length;
    const r = await same('large', { command: 'ADD', config });
    assert.equal(r.code, 0);
    assert.equal(r.raw, `${body}\n`);
    for (const request of standIn.requests.slice(from)) {
      assert.match(request.subarray(0, 400).toString(), new RegExp(`\r\nContent-Length: ${config.length}\r\n`));
      assert.ok(request.subarray(request.length - config.length).equals(Buffer.from(config)), 'the whole config was sent');
    }
    assert.equal(standIn.requests.length, from + 2);
  });

  test('a daemon that never answers: code 11 after 60 s (both shims side by side)', { timeout: 150_000 }, async () => {
    standIn.answer = () => undefined; // the connection stays open, unanswered
    const inv: Invocation = { command: 'ADD', config: conf({ host: standIn.host }) };
    const started = Date.now();
    const [perl, c] = await Promise.all([runCni(sb, { ...inv, plugin: CNI_PLUGIN_PERL }, 120_000), runCni(sb, { ...inv, plugin: cniPlugin() }, 120_000)]);
    const took = Date.now() - started;
    const r = alike('no answer', perl, c);
    assert.equal(r.code, 1);
    assert.deepEqual(r.json, { cniVersion: '1.1.0', code: 11, msg: `cannot reach the berth daemon at ${standIn.file} (no answer within 60 s): start it with 'berth daemon', or set "host" in the plugin config` });
    assert.ok(took >= 59_000 && took < 90_000, `gave up after ${took} ms`);
  });
});

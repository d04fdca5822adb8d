/**
 * The API contract: every Docker network endpoint berth serves, driven over the unix socket with
 * the request shapes the docker CLI sends (verbatim from what it was seen sending), checked for
 * status codes, response shapes (against a real Docker 20.10 `network inspect`), error bodies,
 * versioned paths and filters.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUSYBOX, REPO, Sandbox } from '../../helpers/sandbox.js';
import { call, rawExchange, shapeOf, type ApiRequest, type ApiResponse } from './http.js';

const FIXTURE = path.join(REPO, 'test/integration/api/fixtures/docker-network-inspect-user-defined.json');

/** `docker network create --subnet 10.0.0.0/24 --label a=b -o x=y dnet` (docker 28.2.2, API 1.41). */
const CREATE_DNET = {
  Driver: 'bridge',
  Scope: '',
  IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: '10.0.0.0/24' }] },
  Internal: false,
  Attachable: false,
  Ingress: false,
  ConfigOnly: false,
  ConfigFrom: null,
  Options: { x: 'y' },
  Labels: { a: 'b' },
  Name: 'dnet',
  CheckDuplicate: true,
};

/** `docker network connect --ip 10.0.0.5 --alias foo dnet c1`. */
const CONNECT_C1 = {
  Container: 'c1',
  EndpointConfig: {
    IPAMConfig: { IPv4Address: '10.0.0.5' },
    Links: null,
    Aliases: ['foo'],
    MacAddress: '',
    DriverOpts: {},
    GwPriority: 0,
    NetworkID: '',
    EndpointID: '',
    Gateway: '',
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    DNSNames: null,
  },
};

/** `docker network disconnect dnet c1`. */
const DISCONNECT_C1 = { Container: 'c1', Force: false };

/** A create body as the CLI sends it for `docker network create [flags] NAME`. */
const createBody = (name: string, extra: Record<string, unknown> = {}) => ({
  ...CREATE_DNET,
  IPAM: { Driver: 'default', Options: {}, Config: [] },
  Options: {},
  Labels: {},
  Name: name,
  ...extra,
});

const filters = (f: Record<string, string[]>) => encodeURIComponent(JSON.stringify(Object.fromEntries(Object.entries(f).map(([k, vs]) => [k, Object.fromEntries(vs.map((v) => [v, true]))]))));

interface NetworkJson {
  Name: string;
  Id: string;
  Driver: string;
  Internal: boolean;
  IPAM: { Config: { Subnet: string; Gateway?: string; IPRange?: string }[] };
  Containers: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

function assertError(res: ApiResponse, status: number, message: RegExp | string): void {
  assert.equal(res.status, status, `status of ${res.text}`);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = res.json as { message?: unknown };
  assert.equal(typeof body?.message, 'string', `error body ${res.text} has a message`);
  assert.deepEqual(Object.keys(body), ['message']);
  if (typeof message === 'string') assert.equal(body.message, message);
  else assert.match(body.message as string, message);
}

describe('Docker Engine API contract (networks)', () => {
  let sb: Sandbox;
  const api = (method: string, p: string, req?: ApiRequest) => call(sb.socket, method, p, req);
  const names = async (query = '') => ((await api('GET', `/v1.41/networks${query}`)).json as NetworkJson[]).map((n) => n.Name).sort();

  before(async () => {
    sb = await Sandbox.create('api');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('HEAD /_ping answers 200 with Api-Version and no body; GET /_ping answers OK', async () => {
    const head = await api('HEAD', '/_ping');
    assert.equal(head.status, 200);
    assert.equal(head.headers['api-version'], '1.41');
    assert.equal(head.headers['content-length'], '0');
    assert.equal(head.text, '');
    const get = await api('GET', '/_ping');
    assert.equal(get.status, 200);
    assert.equal(get.text, 'OK');
    assert.equal(get.headers['api-version'], '1.41');
    assert.equal((await api('GET', '/v1.41/_ping')).text, 'OK');
  });

  test('the CLI can reuse the connection after HEAD /_ping: no stray bytes', async () => {
    const raw = await rawExchange(sb.socket, 'HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\nGET /v1.41/version HTTP/1.1\r\nHost: docker\r\n\r\n');
    const [first, rest] = [raw.slice(0, raw.indexOf('\r\n\r\n') + 4), raw.slice(raw.indexOf('\r\n\r\n') + 4)];
    assert.match(first, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(rest, /^HTTP\/1\.1 200 OK\r\n/, 'the second answer starts right after the first one\'s headers');
    assert.match(rest, /"ApiVersion":"1\.41"/);
  });

  test('GET /version, plain and versioned', async () => {
    for (const p of ['/version', '/v1.41/version', '/v1.24/version']) {
      const res = await api('GET', p);
      assert.equal(res.status, 200, p);
      const v = res.json as Record<string, unknown> & { Components: { Name: string; Version: string; Details: Record<string, string> }[] };
      assert.equal(v.ApiVersion, '1.41');
      assert.equal(v.MinAPIVersion, '1.12');
      assert.equal(v.Os, 'linux');
      assert.equal(typeof v.Version, 'string');
      assert.equal(typeof v.Arch, 'string');
      assert.equal(typeof v.KernelVersion, 'string');
      assert.equal(v.Components[0]!.Name, 'Engine');
      assert.equal(v.Components[0]!.Details.ApiVersion, '1.41');
      assert.equal(res.headers['api-version'], '1.41');
    }
  });

  test('API versions outside 1.12–1.41 are refused with Docker\'s messages', async () => {
    assertError(await api('GET', '/v1.99/networks'), 400, 'client version 1.99 is too new. Maximum supported API version is 1.41');
    assertError(
      await api('GET', '/v1.11/networks'),
      400,
      'client version 1.11 is too old. Minimum supported API version is 1.12, please upgrade your client to a newer version',
    );
  });

  test('unknown endpoints and methods answer 404 {"message":"page not found"} with Api-Version', async () => {
    for (const [method, p] of [
      ['GET', '/nope'],
      ['GET', '/v1.41/nope'],
      ['GET', '/v1.41'],
      ['PUT', '/v1.41/networks'],
      ['POST', '/v1.41/networks'],
      ['GET', '/v1.41/networks/create/extra/path'],
      ['GET', '/v1.41/images/json'],
    ] as const) {
      const res = await api(method, p);
      assertError(res, 404, 'page not found');
      assert.equal(res.headers['api-version'], '1.41', `${method} ${p}`);
    }
  });

  test('odd request lines get an answer and leave the daemon up', async () => {
    for (const line of ['GET //[ HTTP/1.1', 'OPTIONS * HTTP/1.1', 'GET http://elsewhere/networks HTTP/1.1', 'GET /networks/%E0%A4%A HTTP/1.1']) {
      const raw = await rawExchange(sb.socket, `${line}\r\nHost: docker\r\nConnection: close\r\n\r\n`);
      assert.match(raw, /^HTTP\/1\.1 (400|404) /, line);
      assert.match(raw, /\r\nApi-Version: 1\.41\r\n/i, line);
    }
    const big = JSON.stringify({ ...CREATE_DNET, Name: 'big', Labels: { pad: 'x'.repeat(1 << 20) } });
    assertError(await api('POST', '/v1.41/networks/create', { rawBody: big, headers: { 'Content-Type': 'application/json' } }), 400, /^request body larger than/);
    assert.equal((await api('GET', '/_ping')).text, 'OK');
  });

  test('predefined networks are listed with Docker\'s fields', async () => {
    const res = await api('GET', '/v1.41/networks');
    assert.equal(res.status, 200);
    const list = res.json as NetworkJson[];
    assert.deepEqual(list.map((n) => n.Name).sort(), ['bridge', 'host', 'none']);
    const byName = Object.fromEntries(list.map((n) => [n.Name, n]));
    assert.equal(byName.bridge!.Driver, 'bridge');
    assert.equal(byName.host!.Driver, 'host');
    assert.equal(byName.none!.Driver, 'null');
    assert.deepEqual(byName.bridge!.IPAM.Config, [{ Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }]);
    for (const n of list) assert.match(n.Id, /^[0-9a-f]{64}$/);
  });

  test('POST /networks/create with the CLI\'s body: 201 {Id, Warning}', async () => {
    const res = await api('POST', '/v1.41/networks/create', { body: CREATE_DNET });
    assert.equal(res.status, 201, res.text);
    const body = res.json as { Id: string; Warning: string };
    assert.match(body.Id, /^[0-9a-f]{64}$/);
    assert.equal(body.Warning, '');
    const net = (await api('GET', `/v1.41/networks/${body.Id}`)).json as NetworkJson;
    assert.equal(net.Name, 'dnet');
    assert.deepEqual(net.IPAM.Config, [{ Subnet: '10.0.0.0/24', Gateway: '10.0.0.1' }]);
    assert.deepEqual(net.Labels, { a: 'b' });
    assert.deepEqual(net.Options, { x: 'y' });
    assert.equal(net.Internal, false);
  });

  test('create with --gateway, --ip-range and --internal', async () => {
    const res = await api('POST', '/v1.41/networks/create', {
      body: createBody('inet', { Internal: true, IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: '10.1.0.0/24', Gateway: '10.1.0.254', IPRange: '10.1.0.128/25' }] } }),
    });
    assert.equal(res.status, 201, res.text);
    const net = (await api('GET', '/v1.41/networks/inet')).json as NetworkJson;
    assert.equal(net.Internal, true);
    assert.deepEqual(net.IPAM.Config, [{ Subnet: '10.1.0.0/24', Gateway: '10.1.0.254', IPRange: '10.1.0.128/25' }]);
  });

  test('create errors: name conflict 409, predefined driver and overlap 403, unknown driver 404, bad input 400', async () => {
    assertError(await api('POST', '/v1.41/networks/create', { body: createBody('dnet') }), 409, 'network with name dnet already exists');
    assertError(await api('POST', '/v1.41/networks/create', { body: createBody('h2', { Driver: 'host' }) }), 403, 'only one instance of "host" network is allowed');
    assertError(await api('POST', '/v1.41/networks/create', { body: createBody('n2', { Driver: 'nosuchdriver' }) }), 404, /^plugin "nosuchdriver" not found/);
    assertError(
      await api('POST', '/v1.41/networks/create', { body: createBody('ov', { IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: '10.0.0.128/25' }] } }) }),
      403,
      /^Pool overlaps with other one on this address space/,
    );
    assertError(
      await api('POST', '/v1.41/networks/create', { body: createBody('gw', { IPAM: { Driver: 'default', Config: [{ Subnet: '10.98.0.0/24', Gateway: '10.97.0.1' }] } }) }),
      400,
      /^no matching subnet for gateway 10\.97\.0\.1/,
    );
    assertError(await api('POST', '/v1.41/networks/create', { body: { Driver: 'bridge' } }), 400, /^invalid request: Name: Name is required/);
    assertError(await api('POST', '/v1.41/networks/create', { body: createBody('att', { Attachable: true }) }), 400, /^invalid request: Attachable: .*drop --attachable/);
    assertError(await api('POST', '/v1.41/networks/create', { body: createBody('v6', { EnableIPv4: false }) }), 400, /--ipv4=false makes an IPv6-only network: add --ipv6/);
    assertError(
      await api('POST', '/v1.41/networks/create', { body: createBody('v6', { EnableIPv6: true, EnableIPv4: false, IPAM: { Driver: 'default', Config: [{ Subnet: '10.96.0.0/24' }] } }) }),
      400,
      /an IPv4 --subnet.* was given for an IPv6-only network/,
    );
    assertError(await api('POST', '/v1.41/networks/create', { body: createBody('v6', { IPAM: { Driver: 'default', Config: [{ Subnet: 'fd00:1::/64' }, { Subnet: 'fd00:2::/64' }] } }) }), 400, /one IPv4 and one IPv6 subnet per network/);
    assertError(
      await api('POST', '/v1.41/networks/create', { body: createBody('two', { IPAM: { Config: [{ Subnet: '10.5.0.0/24' }, { Subnet: '10.6.0.0/24' }] } }) }),
      400,
      /one IPv4 and one IPv6 subnet per network/,
    );
    assertError(await api('POST', '/v1.41/networks/create', { rawBody: '{"Name":', headers: { 'Content-Type': 'application/json' } }), 400, /^request body is not valid JSON/);
    assertError(
      await api('POST', '/v1.41/networks/create', { rawBody: JSON.stringify(createBody('ct')), headers: { 'Content-Type': 'text/plain' } }),
      400,
      "unsupported Content-Type header (text/plain): must be 'application/json'",
    );
    assert.deepEqual(await names(), ['bridge', 'dnet', 'host', 'inet', 'none'], 'no failed create left a network behind');
  });

  test('GET /networks/{id}: by name, full id and id prefix; 404 for an unknown network', async () => {
    const byName = (await api('GET', '/v1.41/networks/dnet')).json as NetworkJson;
    const full = await api('GET', `/v1.41/networks/${byName.Id}`);
    assert.equal(full.status, 200);
    assert.equal((full.json as NetworkJson).Name, 'dnet');
    assert.equal(((await api('GET', `/networks/${byName.Id.slice(0, 12)}`)).json as NetworkJson).Name, 'dnet');
    assertError(await api('GET', '/v1.41/networks/nosuch'), 404, /^network nosuch not found/);
  });

  test('POST /networks/{id}/connect with the CLI\'s body: 200, and the endpoint shows in inspect', async () => {
    await sb.berthOk('run', '-d', '--name', 'c1', '--', BUSYBOX, 'sleep', '3600');
    const res = await api('POST', '/v1.41/networks/dnet/connect', { body: CONNECT_C1 });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.text, '');
    const net = (await api('GET', '/v1.41/networks/dnet')).json as NetworkJson;
    const c1 = (await sb.inspect('c1'));
    assert.deepEqual(Object.keys(net.Containers), [c1.Id]);
    const ep = net.Containers[c1.Id]!;
    assert.equal(ep.Name, 'c1');
    assert.match(ep.EndpointID, /^[0-9a-f]{64}$/);
    assert.equal(ep.MacAddress, '02:42:0a:00:00:05');
    assert.equal(ep.IPv4Address, '10.0.0.5/24');
    assert.equal(ep.IPv6Address, '');
    assert.ok(c1.NetworkSettings.Networks.dnet!.Aliases.includes('foo'), 'the alias is recorded');
  });

  test('network inspect has exactly the fields and types of Docker\'s', async () => {
    assert.equal((await api('POST', '/v1.41/networks/create', { body: createBody('shape') })).status, 201);
    assert.equal((await api('POST', '/v1.41/networks/shape/connect', { body: { ...CONNECT_C1, EndpointConfig: { ...CONNECT_C1.EndpointConfig, IPAMConfig: {} } } })).status, 200);
    const ours = (await api('GET', '/v1.41/networks/shape')).json as NetworkJson;
    const docker = (JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as NetworkJson[])[0]!;
    const oneContainer = (n: NetworkJson) => ({ ...n, Containers: { id: Object.values(n.Containers)[0] } });
    assert.deepEqual(shapeOf(oneContainer(ours)), shapeOf(oneContainer(docker)));
    assert.equal(Object.keys(ours.Containers).length, 1);
    assert.equal((await api('POST', '/v1.41/networks/shape/disconnect', { body: DISCONNECT_C1 })).status, 200);
    assert.equal((await api('DELETE', '/v1.41/networks/shape')).status, 204);
  });

  test('connect errors: twice 403, unknown container or network 404, host 400, unsupported fields 400', async () => {
    assertError(await api('POST', '/v1.41/networks/dnet/connect', { body: CONNECT_C1 }), 403, /^endpoint with name c1 already exists in network dnet/);
    assertError(await api('POST', '/v1.41/networks/dnet/connect', { body: { ...CONNECT_C1, Container: 'nosuch' } }), 404, 'No such container: nosuch');
    assertError(await api('POST', '/v1.41/networks/nosuch/connect', { body: CONNECT_C1 }), 404, /^network nosuch not found/);
    assertError(
      await api('POST', '/v1.41/networks/host/connect', { body: { Container: 'c1', EndpointConfig: null } }),
      400,
      'container cannot be disconnected from host network or connected to host network',
    );
    assertError(
      await api('POST', '/v1.41/networks/inet/connect', { body: { Container: 'c1', EndpointConfig: { MacAddress: '02:42:00:00:00:01' } } }),
      400,
      /^invalid request: EndpointConfig\.MacAddress: /,
    );
    assertError(await api('POST', '/v1.41/networks/inet/connect', { body: {} }), 400, /^invalid request: Container: Container is required/);
  });

  test('list filters: name, id, driver, label, type, dangling, scope', async () => {
    const dnet = (await api('GET', '/v1.41/networks/dnet')).json as NetworkJson;
    assert.deepEqual(await names(`?filters=${filters({ name: ['dnet'] })}`), ['dnet']);
    assert.deepEqual(await names(`?filters=${filters({ name: ['net'] })}`), ['dnet', 'inet'], 'name matches a part of the name');
    assert.deepEqual(await names(`?filters=${filters({ name: ['^b', 'none'] })}`), ['bridge', 'none'], 'values of one key are alternatives; they are patterns');
    assert.deepEqual(await names(`?filters=${filters({ id: [dnet.Id.slice(0, 12)] })}`), ['dnet']);
    assert.deepEqual(await names(`?filters=${filters({ driver: ['null'] })}`), ['none']);
    assert.deepEqual(await names(`?filters=${filters({ driver: ['bridge'] })}`), ['bridge', 'dnet', 'inet']);
    assert.deepEqual(await names(`?filters=${filters({ label: ['a'] })}`), ['dnet']);
    assert.deepEqual(await names(`?filters=${filters({ label: ['a=b'] })}`), ['dnet']);
    assert.deepEqual(await names(`?filters=${filters({ label: ['a=c'] })}`), []);
    assert.deepEqual(await names(`?filters=${filters({ label: ['a=b', 'zzz'] })}`), [], 'every label must match');
    assert.deepEqual(await names(`?filters=${filters({ type: ['builtin'] })}`), ['bridge', 'host', 'none']);
    assert.deepEqual(await names(`?filters=${filters({ type: ['custom'] })}`), ['dnet', 'inet']);
    assert.deepEqual(await names(`?filters=${filters({ dangling: ['true'] })}`), ['inet'], 'dnet has c1; predefined networks never dangle');
    assert.deepEqual(await names(`?filters=${filters({ dangling: ['false'] })}`), ['bridge', 'dnet', 'host', 'none']);
    assert.deepEqual(await names(`?filters=${filters({ scope: ['local'] })}`), ['bridge', 'dnet', 'host', 'inet', 'none']);
    assert.deepEqual(await names(`?filters=${filters({ type: ['custom'], label: ['a'] })}`), ['dnet'], 'different keys all apply');
    assert.deepEqual(await names(`?filters=${encodeURIComponent('{"name":["dnet"]}')}`), ['dnet'], 'the pre-1.22 array form');
    assertError(await api('GET', `/v1.41/networks?filters=${filters({ bogus: ['1'] })}`), 400, "invalid filter 'bogus'");
    assertError(await api('GET', `/v1.41/networks?filters=${filters({ type: ['odd'] })}`), 400, "invalid filter 'type=odd'");
    assertError(await api('GET', `/v1.41/networks?filters=${filters({ dangling: ['maybe'] })}`), 400, /^invalid value for filter 'dangling'/);
    assertError(await api('GET', '/v1.41/networks?filters=%7Bnot-json'), 400, /^invalid filters/);
  });

  test('the listing carries no containers, as Docker\'s does since API 1.28', async () => {
    const list = (await api('GET', '/v1.41/networks')).json as NetworkJson[];
    for (const n of list) assert.deepEqual(n.Containers, {}, n.Name);
  });

  test('DELETE refuses predefined networks and networks with endpoints (403)', async () => {
    for (const name of ['bridge', 'host', 'none']) {
      assertError(await api('DELETE', `/v1.41/networks/${name}`), 403, `${name} is a pre-defined network and cannot be removed`);
    }
    const dnet = (await api('GET', '/v1.41/networks/dnet')).json as NetworkJson;
    assertError(await api('DELETE', '/v1.41/networks/dnet'), 403, new RegExp(`^error while removing network: network dnet id ${dnet.Id} has active endpoints`));
  });

  test('POST /networks/{id}/disconnect with the CLI\'s body: 200; errors for not connected and unknown container', async () => {
    const res = await api('POST', '/v1.41/networks/dnet/disconnect', { body: DISCONNECT_C1 });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(((await api('GET', '/v1.41/networks/dnet')).json as NetworkJson).Containers, {});
    const c1 = await sb.inspect('c1');
    assertError(await api('POST', '/v1.41/networks/dnet/disconnect', { body: DISCONNECT_C1 }), 400, `container ${c1.Id} is not connected to network dnet`);
    assert.equal((await api('POST', '/v1.41/networks/dnet/disconnect', { body: { ...DISCONNECT_C1, Force: true } })).status, 200, 'Force: not connected is fine');
    assertError(await api('POST', '/v1.41/networks/bridge/disconnect', { body: { Container: 'nosuch', Force: false } }), 404, 'No such container: nosuch');
  });

  test('DELETE /networks/{id}: 204 with no body, then 404', async () => {
    const res = await api('DELETE', '/v1.41/networks/dnet');
    assert.equal(res.status, 204);
    assert.equal(res.text, '');
    assert.equal(res.headers['api-version'], '1.41');
    assertError(await api('DELETE', '/v1.41/networks/dnet'), 404, /^network dnet not found/);
  });

  test('POST /networks/prune honours label, label! and until; keeps predefined and used networks', async () => {
    const make = async (name: string, labels: Record<string, string> = {}) =>
      assert.equal((await api('POST', '/v1.41/networks/create', { body: createBody(name, { Labels: labels }) })).status, 201);
    await make('p-keep', { keep: 'yes' });
    await make('p-tier', { tier: 'x', keep: 'no' });
    await make('p-plain');
    await make('p-used');
    assert.equal((await api('POST', '/v1.41/networks/p-used/connect', { body: { Container: 'c1' } })).status, 200);
    const prune = async (f?: Record<string, string[]>) => {
      const res = await api('POST', `/v1.41/networks/prune${f ? `?filters=${filters(f)}` : ''}`);
      assert.equal(res.status, 200, res.text);
      return ((res.json as { NetworksDeleted: string[] }).NetworksDeleted ?? []).sort();
    };
    assert.deepEqual(await prune({ until: ['2000-01-01T00:00:00Z'] }), [], 'all were created after 2000');
    assert.deepEqual(await prune({ until: ['946684800'] }), [], 'until as a unix timestamp');
    assert.deepEqual(await prune({ label: ['tier=x'] }), ['p-tier']);
    assert.deepEqual(await prune({ 'label!': ['keep=yes'] }), ['inet', 'p-plain']);
    assertError(await api('POST', `/v1.41/networks/prune?filters=${filters({ name: ['p-keep'] })}`), 400, "invalid filter 'name'");
    assertError(await api('POST', `/v1.41/networks/prune?filters=${filters({ until: ['yesterday'] })}`), 400, /^failed to parse value as time or duration/);
    assert.deepEqual(await prune({ until: ['0s'] }), ['p-keep'], 'until=0s: everything created before now');
    assert.deepEqual(await prune(), []);
    assert.deepEqual(await names(), ['bridge', 'host', 'none', 'p-used']);
    assert.equal((await api('POST', '/v1.41/networks/p-used/disconnect', { body: { Container: 'c1', Force: false } })).status, 200);
    assert.deepEqual(await prune(), ['p-used']);
  });

  test('concurrent requests: one create wins a name, parallel creates get distinct subnets', async () => {
    const same = await Promise.all(Array.from({ length: 8 }, () => api('POST', '/v1.41/networks/create', { body: createBody('race') })));
    assert.deepEqual(same.map((r) => r.status).sort(), [201, 409, 409, 409, 409, 409, 409, 409]);
    for (const r of same.filter((x) => x.status === 409)) assertError(r, 409, 'network with name race already exists');
    const many = await Promise.all(Array.from({ length: 8 }, (_, i) => api('POST', '/v1.41/networks/create', { body: createBody(`par${i}`) })));
    assert.deepEqual(many.map((r) => r.status), Array(8).fill(201), many.map((r) => r.text).join());
    const [listed, pruned] = await Promise.all([api('GET', '/v1.41/networks'), api('POST', '/v1.41/networks/prune')]);
    assert.equal(listed.status, 200, 'listing while a prune runs');
    const subnets = ((listed.json as NetworkJson[]).filter((n) => /^par\d$/.test(n.Name))).map((n) => n.IPAM.Config[0]!.Subnet);
    assert.equal(new Set(subnets).size, 8, `distinct subnets: ${subnets.join(' ')}`);
    assert.deepEqual((pruned.json as { NetworksDeleted: string[] }).NetworksDeleted.sort(), ['par0', 'par1', 'par2', 'par3', 'par4', 'par5', 'par6', 'par7', 'race']);
  });

  test('berth\'s own container endpoints answer under the same rules', async () => {
    const list = await api('GET', '/v1.41/containers/json');
    assert.equal(list.status, 200);
    assert.deepEqual((list.json as { Names: string[] }[]).map((c) => c.Names[0]), ['/c1']);
    const c1 = await api('GET', '/containers/c1/json');
    assert.equal((c1.json as { Name: string }).Name, '/c1');
    assertError(await api('GET', '/v1.41/containers/nosuch/json'), 404, 'No such container: nosuch');
    assertError(await api('POST', '/containers/create', { body: { cmd: [] } }), 400, /^invalid request: cmd: a command is required/);
  });
});

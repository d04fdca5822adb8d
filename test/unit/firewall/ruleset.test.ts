import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isBerthError, type ErrorKind } from '../../../src/errors.js';
import type { FirewallNetwork, FirewallState, PublishedPort } from '../../../src/firewall/model.js';
import { IP_CHAINS, TABLE } from '../../../src/firewall/names.js';
import { buildRuleset, networkElements, portElements } from '../../../src/firewall/ruleset.js';
import { network, samplePorts } from '../../helpers/firewall-fixtures.js';

/** The repo root, found from the compiled file (under dist or a .build-* directory), so goldens come from the source tree. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above the test file');
    dir = parent;
  }
  return dir;
}

const GOLDEN_DIR = join(repoRoot(), 'test', 'golden', 'firewall');
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

function assertGolden(name: string, actual: string): void {
  const file = join(GOLDEN_DIR, `${name}.nft`);
  if (UPDATE) {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.ok(existsSync(file), `golden ${file} is missing; run with UPDATE_GOLDEN=1 to create it`);
  assert.equal(actual, readFileSync(file, 'utf8'), `${name}: output differs from ${file} (UPDATE_GOLDEN=1 regenerates)`);
}


const onOff = (b: boolean) => (b ? 'on' : 'off');

for (const icc of [true, false]) {
  for (const internal of [true, false]) {
    for (const masquerade of [true, false]) {
      for (const withPorts of [true, false]) {
        const name = `icc-${onOff(icc)}_internal-${onOff(internal)}_masq-${onOff(masquerade)}_${withPorts ? 'ports' : 'no-ports'}`;
        test(`golden ${name}`, () => {
          const net = network({ icc, internal, masquerade });
          const state: FirewallState = { networks: [net], ports: withPorts ? samplePorts('10.77.0.2') : [] };
          assertGolden(name, buildRuleset(state));
        });
      }
    }
  }
}

test('golden two-networks: isolation between an ordinary and an icc=false internal network', () => {
  const state: FirewallState = {
    networks: [
      network(),
      network({ id: 'net-b', bridge: 'br-b', subnet: '10.77.1.0/24', gateway: '10.77.1.1', internal: true, icc: false }),
    ],
    ports: samplePorts('10.77.0.2'),
  };
  assertGolden('two-networks', buildRuleset(state));
});

/** IPv6 twins of the sample ports: [::] and one IPv6 host address, to the container's IPv6 address. */
const ports6 = (containerIp6: string): FirewallState['ports'] => [
  { containerId: 'c1', protocol: 'tcp', hostIp: '::', hostPort: 8080, containerIp: containerIp6, containerPort: 80 },
  { containerId: 'c1', protocol: 'udp', hostIp: 'fd99::1', hostPort: 5353, containerIp: containerIp6, containerPort: 53 },
];

for (const icc of [true, false]) {
  for (const internal of [true, false]) {
    const name = `dual-stack_icc-${onOff(icc)}_internal-${onOff(internal)}`;
    test(`golden ${name}: the IPv6 side of a dual-stack network goes to ip6 berth`, () => {
      const state: FirewallState = {
        networks: [network({ icc, internal, subnet6: 'fd77::/64' }), network({ id: 'net-b', bridge: 'br-b', subnet: '10.77.1.0/24', gateway: '10.77.1.1' })],
        ports: [...samplePorts('10.77.0.2'), ...ports6('fd77::2')],
      };
      assertGolden(name, buildRuleset(state));
    });
  }
}

test('IPv6 ports become ip6 elements; a target outside every IPv6 subnet, or mixed families, is refused', () => {
  assert.equal(portElements(ports6('fd77::2')[0]!, 'add'), 'add element ip6 berth dnat_any { tcp . 8080 comment "container c1" : fd77::2 . 80 }\nadd element ip6 berth port_traffic_any { tcp . 8080 comment "container c1" }\n');
  assert.equal(portElements({ ...ports6('FD77:0::2')[1]! }, 'add'), 'add element ip6 berth dnat_ip { fd99::1 . udp . 5353 comment "container c1" : fd77::2 . 53 }\nadd element ip6 berth port_traffic_ip { fd99::1 . udp . 5353 comment "container c1" }\n');
  assertThrowsKind(() => buildRuleset({ networks: [network({ subnet6: 'fd77::/64' })], ports: ports6('fd78::2') }), 'invalid', /fd78::2 is in no berth network/);
  assertThrowsKind(() => buildRuleset({ networks: [network()], ports: ports6('fd77::2') }), 'invalid', /fd77::2 is in no berth network/);
  assertThrowsKind(() => portElements({ ...ports6('fd77::2')[0]!, containerIp: '10.77.0.2' }, 'add'), 'invalid', /host address "::" is not IPv4|container address "10.77.0.2" is not a usable IPv6/);
  assertThrowsKind(() => networkElements(network({ subnet6: 'fe80::/64' }), 'add'), 'invalid', /link-local, multicast, loopback/);
  assertThrowsKind(
    () => buildRuleset({ networks: [network({ subnet6: 'fd77::/64' }), network({ id: 'net-b', bridge: 'br-b', subnet: '10.77.1.0/24', gateway: '10.77.1.1', subnet6: 'fd77::/56' })], ports: [] }),
    'conflict',
    /overlap; give each its own IPv6 subnet/,
  );
});

test('an IPv4-only network has no element in ip6 berth; a dual-stack one has its bridge and subnet there', () => {
  assert.doesNotMatch(networkElements(network(), 'add'), / ip6 /);
  const dual = networkElements(network({ subnet6: 'fd77::/64' }), 'add');
  assert.match(dual, /add element ip6 berth bridges \{ "br-a"/);
  assert.match(dual, /add element ip6 berth container_subnets \{ fd77::\/64 /);
  assert.match(dual, /add element ip6 berth masq_subnets \{ fd77::\/64 /);
});

test('a routed peer is one local-first pair in ip berth; none on an internal network; a malformed one is refused', () => {
  const routed = networkElements(network({ routedPeers: ['10.5.0.0/16', '10.200.3.9/16'] }), 'add');
  assert.match(routed, /add element ip berth routed_peers \{ 10\.77\.0\.0\/24 \. 10\.5\.0\.0\/16 comment "network net-a" \}/);
  assert.match(routed, /routed_peers \{ 10\.77\.0\.0\/24 \. 10\.200\.0\.0\/16 /, 'host bits cleared');
  assert.doesNotMatch(networkElements(network(), 'add'), /routed_peers/);
  assert.doesNotMatch(networkElements(network({ internal: true, routedPeers: ['10.5.0.0/16'] }), 'add'), /routed_peers/);
  assertThrowsKind(() => networkElements(network({ routedPeers: ['10.5.0.0'] }), 'add'), 'invalid', /routed peer: subnet "10.5.0.0" is not an IPv4 CIDR/);
  assertThrowsKind(() => networkElements(network({ routedPeers: ['10.5.0.0/16" drop'] }), 'add'), 'invalid', /routed peer/);
  const ruleset = buildRuleset({ networks: [network({ routedPeers: ['10.5.0.0/16'] })], ports: [] });
  assert.match(ruleset, /ip saddr \. ip daddr @routed_peers return/);
  assert.match(ruleset, /oifname \. oifname @bridges ip daddr \. ip saddr @routed_peers accept/);
});

/** (family, set, key) of each `add element` / `delete element` line of an incremental script. */
function elementTargets(script: string): string[] {
  return script
    .trim()
    .split('\n')
    .map((line) => {
      const m = /^(add|delete) element (\S+) (\S+) (\S+) \{ (.*?)(?: comment "[^"]*")?(?: : .*)? \}$/.exec(line);
      assert.ok(m, `not an element command: ${line}`);
      return `${m[2]} ${m[3]} ${m[4]} ${m[5]}`;
    });
}

test('portElements delete removes exactly what add added', () => {
  for (const port of samplePorts('10.77.0.2')) {
    const added = elementTargets(portElements(port, 'add'));
    const deleted = elementTargets(portElements(port, 'delete'));
    assert.equal(added.length, 2, 'the DNAT element and its counter');
    assert.deepEqual([...deleted].sort(), [...added].sort());
    assert.match(portElements(port, 'delete'), /^delete element /);
  }
});

test('networkElements delete removes exactly what add added, for every option combination', () => {
  for (const icc of [true, false]) {
    for (const internal of [true, false]) {
      for (const masquerade of [true, false]) {
        const net = network({ icc, internal, masquerade });
        const added = elementTargets(networkElements(net, 'add'));
        const deleted = elementTargets(networkElements(net, 'delete'));
        assert.deepEqual([...deleted].sort(), [...added].sort());
        assert.equal(new Set(added).size, added.length, 'no element is added twice');
      }
    }
  }
});

test('incremental elements are exactly the ones buildRuleset emits for the same objects', () => {
  const nets = [network(), network({ id: 'net-b', bridge: 'br-b', subnet: '10.77.1.0/24', gateway: '10.77.1.1', icc: false, internal: true })];
  const ports = samplePorts('10.77.1.5');
  const full = buildRuleset({ networks: nets, ports });
  // Element lines of the full ruleset, qualified by the block they sit in.
  const inFull = new Set<string>();
  let block = '';
  for (const line of full.split('\n')) {
    const open = /^add element (\S+ \S+ \S+) \{$/.exec(line);
    if (open) block = open[1]!;
    else if (line === '}') block = '';
    else if (block) inFull.add(`${block} ${line.trim().replace(/,$/, '')}`);
  }
  const incremental = [...nets.map((n) => networkElements(n, 'add')), ...ports.map((p) => portElements(p, 'add'))]
    .join('')
    .trim()
    .split('\n')
    .map((line) => line.replace(/^add element (\S+ \S+ \S+) \{ (.*) \}$/, '$1 $2'));
  assert.deepEqual([...incremental].sort(), [...inFull].sort());
});

test('rules do not grow with the number of published ports or networks; elements grow by one each', () => {
  const rules = (s: string) => s.split('\n').filter((l) => l.startsWith('add rule '));
  const small = buildRuleset({ networks: [network({ subnet: '10.0.0.0/8', gateway: '10.0.0.1' })], ports: [] });
  const ports: PublishedPort[] = [];
  for (let i = 0; i < 10_000; i++) {
    ports.push({ containerId: `c${i}`, protocol: i % 2 ? 'udp' : 'tcp', hostIp: '0.0.0.0', hostPort: 10_000 + i, containerIp: `10.${(i >> 8) & 255}.${i & 255}.2`, containerPort: 80 });
  }
  const networks: FirewallNetwork[] = [];
  for (let i = 0; i < 200; i++) {
    networks.push(network({ id: `n${i}`, bridge: `br${i}`, subnet: `172.16.${i}.0/24`, gateway: `172.16.${i}.1` }));
  }
  const big = buildRuleset({ networks: [network({ subnet: '10.0.0.0/8', gateway: '10.0.0.1' }), ...networks], ports });
  assert.deepEqual(rules(big), rules(small));
  const dnatLines = big.split('\n').filter((l) => / comment "container c\d+" : /.test(l));
  assert.equal(dnatLines.length, 10_000);
});

test('incremental text for one object is independent of every other object', () => {
  const port = samplePorts('10.77.0.2')[0]!;
  const net = network();
  // The functions see only their object, so the text is fixed and short: one line per element.
  assert.equal(portElements(port, 'add').trim().split('\n').length, 2);
  assert.ok(networkElements(net, 'add').trim().split('\n').length <= 6);
  assert.equal(portElements(port, 'add'), portElements({ ...port }, 'add'));
  assert.ok(portElements(port, 'add').length < 200);
});

test('buildRuleset only adds and flushes inside berth tables, and never flushes the user chain', () => {
  const text = buildRuleset({ networks: [network()], ports: samplePorts('10.77.0.2') });
  const commands = text.split('\n').filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('\t') && l !== '}');
  for (const line of commands) {
    assert.match(line, new RegExp(`^(add|flush) (table|chain|set|map|rule|element) (ip|ip6|bridge) ${TABLE}\\b`), line);
  }
  assert.ok(!commands.some((l) => l === `flush chain ip ${TABLE} ${IP_CHAINS.userForward}`));
  assert.ok(!commands.some((l) => l === `flush chain ip6 ${TABLE} ${IP_CHAINS.userForward}`));
  assert.ok(commands.includes(`add chain ip6 ${TABLE} ${IP_CHAINS.userForward}`));
  assert.ok(commands.includes(`add chain ip ${TABLE} ${IP_CHAINS.userForward}`));
  assert.ok(commands.includes(`add rule ip ${TABLE} ${IP_CHAINS.forward} jump ${IP_CHAINS.userForward}`));
  // The user's jump comes before any berth verdict in forward.
  const forwardRules = commands.filter((l) => l.startsWith(`add rule ip ${TABLE} ${IP_CHAINS.forward} `));
  assert.equal(forwardRules[0], `add rule ip ${TABLE} ${IP_CHAINS.forward} jump ${IP_CHAINS.userForward}`);
});

test('buildRuleset output does not depend on the order of the input', () => {
  const nets = [network(), network({ id: 'net-b', bridge: 'br-b', subnet: '10.77.1.0/24', gateway: '10.77.1.1' })];
  const ports = samplePorts('10.77.0.2');
  assert.equal(buildRuleset({ networks: nets, ports }), buildRuleset({ networks: [...nets].reverse(), ports: [...ports].reverse() }));
});

test('a subnet with host bits is normalised to its network address', () => {
  assert.match(networkElements(network({ subnet: '10.77.0.1/24' }), 'add'), / 10\.77\.0\.0\/24 comment /);
});

function assertThrowsKind(fn: () => unknown, kind: ErrorKind, message: RegExp): void {
  assert.throws(fn, (err: unknown) => isBerthError(err) && err.kind === kind && message.test(err.message));
}

test('invalid networks are rejected before any nft text is produced', () => {
  assertThrowsKind(() => networkElements(network({ bridge: 'br"; flush ruleset' }), 'add'), 'invalid', /interface "br"; flush ruleset" must be/);
  assertThrowsKind(() => networkElements(network({ bridge: 'a-very-long-bridge-name' }), 'add'), 'invalid', /interface "a-very-long-bridge-name" must be/);
  assertThrowsKind(() => networkElements(network({ bridge: 'bp*x' }), 'add'), 'invalid', /interface "bp\*x" must be/);
  assertThrowsKind(() => networkElements(network({ bridge: 'abcdefghijklmno*' }), 'add'), 'invalid', /must be/);
  // Positive control through the same check: a prefix wildcard of at most 14 characters passes.
  assert.match(networkElements(network({ bridge: 'bpt0a1b2c*' }), 'add'), /"bpt0a1b2c\*" \. "bpt0a1b2c\*"/);
  assertThrowsKind(() => networkElements(network({ id: 'x" drop' }), 'add'), 'invalid', /id/);
  assertThrowsKind(() => networkElements(network({ subnet: '10.77.0.0' }), 'add'), 'invalid', /CIDR/);
  assertThrowsKind(() => networkElements(network({ subnet: '010.77.0.0/24' }), 'add'), 'invalid', /CIDR/);
  assertThrowsKind(() => networkElements(network({ subnet: '0.0.0.0/0' }), 'add'), 'invalid', /CIDR/);
  assertThrowsKind(() => networkElements(network({ subnet: '127.1.0.0/16', gateway: '127.1.0.1' }), 'add'), 'invalid', /loopback/);
  assertThrowsKind(() => networkElements(network({ gateway: '10.78.0.1' }), 'add'), 'invalid', /gateway/);
});

test('invalid ports are rejected', () => {
  const port = samplePorts('10.77.0.2')[0]!;
  assertThrowsKind(() => portElements({ ...port, hostPort: 0 }, 'add'), 'invalid', /host port/);
  assertThrowsKind(() => portElements({ ...port, containerPort: 70000 }, 'add'), 'invalid', /container port/);
  assertThrowsKind(() => portElements({ ...port, protocol: 'sctp' as 'tcp' }, 'add'), 'invalid', /protocol/);
  assertThrowsKind(() => portElements({ ...port, hostIp: '::' }, 'add'), 'invalid', /host address/);
  assertThrowsKind(() => portElements({ ...port, containerIp: '127.0.0.1' }, 'add'), 'invalid', /container address/);
});

test('buildRuleset rejects states nft would refuse or that would be ambiguous', () => {
  const a = network();
  assertThrowsKind(() => buildRuleset({ networks: [a, { ...a, bridge: 'br-x', subnet: '10.88.0.0/24', gateway: '10.88.0.1' }], ports: [] }), 'conflict', /twice/);
  assertThrowsKind(() => buildRuleset({ networks: [a, { ...a, id: 'b', subnet: '10.88.0.0/24', gateway: '10.88.0.1' }], ports: [] }), 'conflict', /bridge/);
  assertThrowsKind(() => buildRuleset({ networks: [a, network({ id: 'b', bridge: 'br-b', subnet: '10.77.0.128/25', gateway: '10.77.0.129' })], ports: [] }), 'conflict', /overlap/);
  const [wild, local] = samplePorts('10.77.0.2');
  assertThrowsKind(() => buildRuleset({ networks: [a], ports: [wild!, { ...wild!, containerId: 'other' }] }), 'conflict', /clashes with 0.0.0.0:8080/);
  assertThrowsKind(() => buildRuleset({ networks: [a], ports: [wild!, { ...local!, hostPort: 8080 }] }), 'conflict', /bound once/);
  assertThrowsKind(() => buildRuleset({ networks: [a], ports: [{ ...wild!, containerIp: '192.168.1.5' }] }), 'invalid', /no berth network/);
});

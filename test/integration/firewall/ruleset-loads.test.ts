import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FirewallState, PublishedPort } from '../../../src/firewall/model.js';
import { IP_CHAINS, TABLE } from '../../../src/firewall/names.js';
import { buildRuleset, declaredSets, networkElements, portElements } from '../../../src/firewall/ruleset.js';
import { setsToRedeclare } from '../../../src/firewall/legacy-sets.js';
import {
  chainRules,
  createNamespace,
  deleteNamespace,
  inNs,
  nftElements,
  nftList,
  nftLoad,
  scriptElements,
  skipReason,
} from './netns.js';
import { network, samplePorts } from '../../helpers/firewall-fixtures.js';

const skip = skipReason();


/** Every element the state should put in the kernel, derived from the incremental scripts. */
function expectedElements(state: FirewallState): string[] {
  return scriptElements(
    [...state.networks.map((n) => networkElements(n, 'add')), ...state.ports.map((p) => portElements(p, 'add'))].join(''),
  );
}

/** Runs `body` with a fresh namespace and always deletes it. */
async function withNamespace(tag: string, body: (ns: string) => void | Promise<void>): Promise<void> {
  const ns = createNamespace(tag);
  try {
    await body(ns);
  } finally {
    const err = deleteNamespace(ns);
    if (err) throw err;
  }
}

const MATRIX: Array<{ name: string; state: FirewallState }> = [
  { name: 'defaults with ports', state: { networks: [network()], ports: samplePorts('10.77.0.2') } },
  { name: 'internal icc=false, no ports', state: { networks: [network({ internal: true, icc: false })], ports: [] } },
  {
    name: 'two networks, masquerade off, icc=false, ports',
    state: {
      networks: [
        network({ masquerade: false }),
        network({ id: 'net-b', bridge: 'br-b', subnet: '10.77.1.0/24', gateway: '10.77.1.1', icc: false }),
      ],
      ports: samplePorts('10.77.1.9'),
    },
  },
  {
    // Two subnets of one cluster CIDR, routed to it (a Flannel-style host's bridge and a fan's).
    name: 'routed peers',
    state: {
      networks: [
        network({ routedPeers: ['10.77.0.0/16'] }),
        network({ id: 'net-f', bridge: 'br-f', subnet: '10.77.1.0/24', gateway: '10.77.1.1', routedPeers: ['10.77.0.0/16', '10.200.0.0/16'] }),
      ],
      ports: [],
    },
  },
];

const extraNet = network({ id: 'net-z', bridge: 'br-z', subnet: '10.99.0.0/16', gateway: '10.99.0.1', internal: true, icc: false });
const extraPorts: PublishedPort[] = [
  { containerId: 'late', protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 9000, containerIp: '10.99.3.4', containerPort: 9000 },
  { containerId: 'late', protocol: 'udp', hostIp: '198.51.100.1', hostPort: 9001, containerIp: '10.99.3.4', containerPort: 53 },
];

for (const { name, state } of MATRIX) {
  test(`ruleset loads twice, takes incremental adds and deletes, and keeps user rules: ${name}`, { skip }, async () => {
    await withNamespace('load', (ns) => {
      const script = buildRuleset(state);
      nftLoad(ns, script);
      nftLoad(ns, script); // idempotent: a second load over existing tables succeeds…
      let objects = nftList(ns);
      const baseline = nftElements(objects);
      assert.deepEqual(baseline, expectedElements(state)); // …and leaves exactly the state's elements
      const forwardRules = chainRules(objects, 'ip', TABLE, IP_CHAINS.forward).length;
      assert.ok(forwardRules > 0);

      // Incremental: a new network and new ports are element adds only; deleting them restores the baseline.
      const add = networkElements(extraNet, 'add') + extraPorts.map((p) => portElements(p, 'add')).join('');
      nftLoad(ns, add);
      assert.deepEqual(nftElements(nftList(ns)), [...baseline, ...scriptElements(add)].sort());
      nftLoad(ns, extraPorts.map((p) => portElements(p, 'delete')).join('') + networkElements(extraNet, 'delete'));
      assert.deepEqual(nftElements(nftList(ns)), baseline);

      // The user's rule and someone else's table survive a reload; berth's rules are not duplicated.
      inNs(ns, 'nft', ['add', 'rule', 'ip', TABLE, IP_CHAINS.userForward, 'ip', 'saddr', '192.0.2.99', 'counter', 'drop']);
      nftLoad(ns, 'add table ip other\nadd chain ip other keep\nadd rule ip other keep counter accept\n');
      nftLoad(ns, script);
      objects = nftList(ns);
      const userRules = chainRules(objects, 'ip', TABLE, IP_CHAINS.userForward);
      assert.equal(userRules.length, 1);
      assert.match(JSON.stringify(userRules[0]), /192\.0\.2\.99/);
      assert.equal(chainRules(objects, 'ip', 'other', 'keep').length, 1);
      assert.equal(chainRules(objects, 'ip', TABLE, IP_CHAINS.forward).length, forwardRules);
      assert.deepEqual(nftElements(objects).filter((e) => e.includes(` ${TABLE} `)), baseline);

      // A reload with less state removes what is gone; after `nft flush ruleset` it rebuilds everything.
      nftLoad(ns, buildRuleset({ networks: state.networks.slice(0, 1), ports: [] }));
      assert.deepEqual(nftElements(nftList(ns)), expectedElements({ networks: state.networks.slice(0, 1), ports: [] }));
      inNs(ns, 'nft', ['flush', 'ruleset']);
      nftLoad(ns, script);
      assert.deepEqual(nftElements(nftList(ns)), baseline);
    });
  });
}

test('every golden file is a valid nft transaction', { skip }, async () => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  const goldenDir = join(dir, 'test', 'golden', 'firewall');
  const files = readdirSync(goldenDir).filter((f) => f.endsWith('.nft'));
  assert.ok(files.length > 0);
  await withNamespace('golden', (ns) => {
    for (const file of files) nftLoad(ns, readFileSync(join(goldenDir, file), 'utf8'));
  });
});

test('10,000 published ports load as map elements and one can be deleted alone', { skip }, async () => {
  const many: PublishedPort[] = [];
  for (let i = 0; i < 10_000; i++) {
    many.push({ containerId: `c${i}`, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 20_000 + i, containerIp: `10.${(i >> 8) & 255}.${i & 255}.2`, containerPort: 80 });
  }
  const net = network({ subnet: '10.0.0.0/8', gateway: '10.0.0.1' });
  await withNamespace('scale', (ns) => {
    nftLoad(ns, buildRuleset({ networks: [net], ports: many }));
    const objects = nftList(ns);
    assert.equal(nftElements(objects).filter((e) => e.startsWith(`ip ${TABLE} dnat_any `)).length, 10_000);
    nftLoad(ns, portElements(many[1234]!, 'delete'));
    assert.equal(nftElements(nftList(ns)).filter((e) => e.startsWith(`ip ${TABLE} dnat_any `)).length, 9_999);
  });
});

/** berth's sets and maps as `nft list` shows them, both families. */
const listSets = (ns: string) => ['ip', 'ip6'].flatMap((f) => ['sets', 'maps'].map((k) => inNs(ns, 'nft', ['list', k, f]))).join('');

test('one-field interface sets of an older berth are redeclared as pairs; then a network goes in beside a ptp wildcard incrementally', { skip }, async () => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  const older = readFileSync(join(dir, 'test', 'fixtures', 'firewall-one-field-sets.nft'), 'utf8');
  const ptp = network({ id: 'net-p', bridge: 'bpt0a1b2c*', subnet: '10.88.0.0/24', gateway: '10.88.0.1' });
  const state: FirewallState = { networks: [network(), ptp], ports: samplePorts('10.77.0.2') };
  await withNamespace('types', (ns) => {
    nftLoad(ns, older);
    assert.throws(() => nftLoad(ns, buildRuleset(state)), /File exists|Could not process rule|mismatch/i, 'control: the new script does not load over one-field sets');
    const changed = setsToRedeclare(listSets(ns), declaredSets());
    const interfaceSets = ['bridges', 'icc_off_bridges', 'internal_bridges', 'traffic_from_network', 'traffic_to_network'];
    assert.deepEqual(changed.sort(), [...interfaceSets.map((n) => `ip ${n}`), ...interfaceSets.map((n) => `ip6 ${n}`)].sort());
    nftLoad(ns, buildRuleset(state, { recreateSets: changed }));
    assert.deepEqual(setsToRedeclare(listSets(ns), declaredSets()), []);
    assert.deepEqual(nftElements(nftList(ns)), expectedElements(state));
    // The defect the pairs fix: beside the wildcard, nft 1.0.6 refused to add "berth-x" to a one-field interval set.
    const late = network({ id: 'net-z', bridge: 'zz-late', subnet: '10.99.0.0/16', gateway: '10.99.0.1', icc: false, internal: true });
    nftLoad(ns, networkElements(late, 'add'));
    assert.deepEqual(nftElements(nftList(ns)), expectedElements({ ...state, networks: [...state.networks, late] }));
    nftLoad(ns, networkElements(ptp, 'delete'));
    nftLoad(ns, networkElements(ptp, 'add'));
    nftLoad(ns, networkElements(late, 'delete'));
    assert.deepEqual(nftElements(nftList(ns)), expectedElements(state));
  });
});

test('sets an older berth made without intervals are recreated in place, and a ptp-style interface prefix loads', { skip }, async () => {
  const state: FirewallState = { networks: [network(), network({ id: 'net-p', bridge: 'bpt0a1b2c*', subnet: '10.88.0.0/24', gateway: '10.88.0.1', icc: false })], ports: samplePorts('10.77.0.2') };
  const current = buildRuleset(state);
  // What berth wrote before interface prefixes: the same sets without `flags interval`.
  const older = current.replace(/(add (?:set|map) ip berth (?:bridges|same_bridge|internal_bridges|icc_off_bridges|dns_redirect|dns_clients) \{ type [^;]+;) flags interval;/g, '$1');
  assert.notEqual(older, current, 'the older script differs');
  await withNamespace('upgrade', (ns) => {
    nftLoad(ns, buildRuleset({ networks: [network()], ports: [] }).replace(/(add (?:set|map) ip berth \S+ \{ type [^;]+;) flags interval;/g, (m, head: string) => (/ipv4_addr;$/.test(head) ? m : head)));
    assert.throws(() => nftLoad(ns, current), /File exists|add 'flags interval' to your set declaration/, 'control: the new script does not load over the old sets as they are');
    const lacking = setsToRedeclare(listSets(ns), declaredSets());
    // The accounting sets are newer than intervals, but the simulated older script strips theirs too.
    assert.deepEqual(lacking.sort(), ['bridges', 'dns_clients', 'dns_redirect', 'icc_off_bridges', 'internal_bridges', 'same_bridge', 'traffic_from_network', 'traffic_to_network'].map((n) => `ip ${n}`));
    nftLoad(ns, buildRuleset(state, { recreateSets: lacking }));
    assert.deepEqual(setsToRedeclare(listSets(ns), declaredSets()), [], 'every set has its intervals now');
    assert.deepEqual(nftElements(nftList(ns)), expectedElements(state));
    nftLoad(ns, current); // and the next ordinary rebuild needs no recreation
  });
});

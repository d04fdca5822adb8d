/**
 * Published ports written as set elements over nfnetlink (kernel/nft-elements.ts) must leave the
 * kernel exactly as nft's own `add element` / `delete element` scripts do: the same keys, values,
 * comments and counters in `nft list ruleset`, and a batch with one refused change applies nothing.
 * The netlink side runs in a child process entered into the test namespace (a socket belongs to
 * the namespace of the thread that opens it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FirewallState, PublishedPort } from '../../../src/firewall/model.js';
import { buildRuleset, portElementChanges, portElements } from '../../../src/firewall/ruleset.js';
import type { SetElementChange } from '../../../src/kernel/netlink/nftables.js';
import { createNamespace, deleteNamespace, inNs, nftLoad, skipReason } from './netns.js';
import { network, samplePorts } from '../../helpers/firewall-fixtures.js';

const skip = skipReason();
const NFT_ELEMENTS = fileURLToPath(new URL('../../../src/kernel/nft-elements.js', import.meta.url));

/** Applies `changes` from inside namespace `ns`; the child's exit code and stderr. */
function applyInNs(ns: string, changes: SetElementChange[]): { code: number; stderr: string } {
  // The changes go on stdin: 2,000 elements are more than one argument may hold.
  const script = `const { readFileSync } = await import('node:fs'); const { applySetElements } = await import(${JSON.stringify(NFT_ELEMENTS)}); applySetElements(JSON.parse(readFileSync(0, 'utf8')));`;
  const r = spawnSync('nsenter', [`--net=/run/netns/${ns}`, '--', process.execPath, '--input-type=module', '-e', script], { input: JSON.stringify(changes), encoding: 'utf8', timeout: 20_000 });
  return { code: r.status ?? 1, stderr: r.stderr || String(r.error ?? '') };
}

const state: FirewallState = {
  networks: [network({ subnet6: 'fd77::/64' })],
  ports: [],
};
const ports: PublishedPort[] = [
  ...samplePorts('10.77.0.2'),
  { containerId: 'web6', protocol: 'tcp', hostIp: '::', hostPort: 8080, containerIp: 'fd77::2', containerPort: 80 },
  { containerId: 'web6', protocol: 'udp', hostIp: 'fd00::10', hostPort: 9053, containerIp: 'fd77::2', containerPort: 53 },
];

const ruleset = (ns: string) => inNs(ns, 'nft', ['list', 'ruleset']);

test('ports written as set elements leave the kernel as nft scripts do, and come out the same way', { skip }, () => {
  const byNft = createNamespace('elnft');
  const byNetlink = createNamespace('elnl');
  try {
    for (const ns of [byNft, byNetlink]) nftLoad(ns, buildRuleset(state));
    const empty = ruleset(byNft);
    assert.equal(ruleset(byNetlink), empty);

    nftLoad(byNft, ports.map((p) => portElements(p, 'add')).join(''));
    const added = applyInNs(byNetlink, ports.flatMap((p) => portElementChanges(p, 'add')));
    assert.equal(added.code, 0, added.stderr);
    const withPorts = ruleset(byNft);
    assert.notEqual(withPorts, empty, 'positive control: the nft script added elements');
    assert.match(withPorts, /tcp \. 8080 counter packets 0 bytes 0 comment "container web"/);
    assert.equal(ruleset(byNetlink), withPorts);

    nftLoad(byNft, ports.map((p) => portElements(p, 'delete')).join(''));
    const deleted = applyInNs(byNetlink, ports.flatMap((p) => portElementChanges(p, 'delete')));
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(ruleset(byNft), empty);
    assert.equal(ruleset(byNetlink), empty);
  } finally {
    for (const ns of [byNft, byNetlink]) deleteNamespace(ns);
  }
});

test('a batch with a refused change applies nothing and names the change', { skip }, () => {
  const ns = createNamespace('elbad');
  try {
    nftLoad(ns, buildRuleset(state));
    const before = ruleset(ns);
    const fresh: PublishedPort = { containerId: 'new', protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 7000, containerIp: '10.77.0.3', containerPort: 80 };
    const absent: PublishedPort = { containerId: 'gone', protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 7001, containerIp: '10.77.0.4', containerPort: 80 };
    const r = applyInNs(ns, [...portElementChanges(fresh, 'add'), ...portElementChanges(absent, 'delete')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /nftables rejected the change: delete element ip berth port_traffic_any: .*No such file or directory/);
    assert.equal(ruleset(ns), before, 'the add in the same batch was not applied');
    // Positive control through the same path: the add alone goes in.
    const ok = applyInNs(ns, portElementChanges(fresh, 'add'));
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ruleset(ns), /tcp \. 7000 comment "container new" : 10\.77\.0\.3 \. 80/);
  } finally {
    deleteNamespace(ns);
  }
});

test("a container's 1,000 published ports go in one batch, past netlink's default send buffer", { skip }, () => {
  const byNft = createNamespace('elbignft');
  const byNetlink = createNamespace('elbignl');
  const range: PublishedPort[] = Array.from({ length: 1000 }, (_, i) => ({ containerId: 'c'.repeat(64), protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 20000 + i, containerIp: '10.77.0.9', containerPort: 20000 + i }));
  try {
    for (const ns of [byNft, byNetlink]) nftLoad(ns, buildRuleset(state));
    nftLoad(byNft, range.map((p) => portElements(p, 'add')).join(''));
    const changes = range.flatMap((p) => portElementChanges(p, 'add'));
    const r = applyInNs(byNetlink, changes);
    assert.equal(r.code, 0, r.stderr);
    const listed = ruleset(byNetlink);
    assert.equal((listed.match(/comment "container c{64}" : 10\.77\.0\.9 \. 2\d{4}/g) ?? []).length, 1000);
    assert.equal(listed, ruleset(byNft));
  } finally {
    for (const ns of [byNft, byNetlink]) deleteNamespace(ns);
  }
});

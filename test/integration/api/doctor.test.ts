/**
 * `berth doctor` on this machine: everything berth needs is here (exit 0), each check is named,
 * and the namespace it runs in is left exactly as it was. It runs inside a sandbox namespace so
 * that even a faulty probe could not reach the machine's own.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { BERTH, Sandbox, must, run } from '../../helpers/sandbox.js';

const CHECKS = ['nsenter', 'unshare', 'netns', 'veth', 'bridge', 'nftables', 'macvlan', 'ipvlan', '8021q', 'vxlan', 'fan', 'wireguard', 'bird2', 'ip_forward', 'netns-dir'];

describe('berth doctor', () => {
  let sb: Sandbox;
  let nsenter: string;
  const doctor = (args: string[] = [], env: NodeJS.ProcessEnv = process.env) =>
    run(nsenter, [`--net=${sb.hostNs}`, '--', process.execPath, BERTH, 'doctor', '--root', `${sb.root}/state`, ...args], { env, timeoutMs: 60_000 });
  const snapshot = async () => ({
    links: must(await sb.inHost('ip', ['-o', 'link']), 'ip link').replace(/\d+: /g, ''),
    ruleset: must(await sb.inHost('nft', ['list', 'ruleset']), 'nft list ruleset'),
    forward: must(await sb.inHost('cat', ['/proc/sys/net/ipv4/ip_forward']), 'ip_forward'),
  });

  before(async () => {
    sb = await Sandbox.create('doc', { startDaemon: false });
    nsenter = must(await run('sh', ['-c', 'command -v nsenter']), 'command -v nsenter').trim();
  });
  after(async () => {
    await sb?.destroy();
  });

  test('finds everything berth needs on this machine (exit 0) and names every check', async () => {
    const before = await snapshot();
    const r = await doctor();
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    for (const name of CHECKS) assert.match(r.stdout, new RegExp(`^ {2}(ok|info|n/a) +${name} `, 'm'), `check ${name} in:\n${r.stdout}`);
    assert.doesNotMatch(r.stdout, /MISSING/);
    assert.match(r.stdout, /^everything berth needs is here$/m);
    assert.match(r.stdout, /ip_forward +net\.ipv4\.ip_forward is 0 in this namespace/, 'reported, not changed');
    assert.deepEqual(await snapshot(), before, 'no link, rule or sysctl of the namespace doctor ran in changed');
  });

  test('--format json lists the same checks with their status', async () => {
    const r = await doctor(['--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const checks = JSON.parse(r.stdout) as { name: string; status: string; detail: string }[];
    assert.deepEqual(checks.map((c) => c.name), CHECKS);
    for (const c of checks) assert.ok(['ok', 'info', 'unavailable'].includes(c.status), `${c.name}: ${c.status} ${c.detail}`);
  });

  test('the driver features (macvlan, ipvlan, 802.1Q, VXLAN) are reported as iproute2 finds them on this kernel', async () => {
    const r = await doctor(['--format', 'json']);
    const checks = new Map((JSON.parse(r.stdout) as { name: string; status: string; detail: string; fix?: string }[]).map((c) => [c.name, c]));
    must(await sb.inHost('ip', ['link', 'add', 'dtp0', 'type', 'veth', 'peer', 'name', 'dtp1']), 'parent');
    try {
      for (const [name, type, fix] of [['macvlan', ['macvlan', 'mode', 'bridge'], /modprobe macvlan/], ['ipvlan', ['ipvlan', 'mode', 'l3'], /modprobe ipvlan \(kernel CONFIG_IPVLAN\)/], ['8021q', ['vlan', 'id', '7'], /modprobe 8021q/], ['vxlan', ['vxlan', 'id', '42', 'dstport', '4789'], /modprobe vxlan/]] as const) {
        const made = (await sb.inHost('ip', ['link', 'add', 'link', 'dtp0', 'name', 'dtc', 'type', ...type])).code === 0;
        if (made) await sb.inHost('ip', ['link', 'del', 'dtc']);
        const check = checks.get(name)!;
        assert.equal(check.status, made ? 'ok' : 'unavailable', `${name}: iproute2 ${made ? 'made' : 'could not make'} one; doctor says ${check.status}: ${check.detail}`);
        if (!made) {
          assert.match(check.detail, /this kernel has no .* support: .* refused/, name);
          assert.match(check.fix!, fix, name);
        }
      }
    } finally {
      await sb.inHost('ip', ['link', 'del', 'dtp0']);
    }
  });

  test('says what is missing and how to fix it, and exits 1', async () => {
    const r = await doctor([], { ...process.env, PATH: '/nonexistent' });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /^ {2}MISSING +nsenter +nsenter not found in PATH/m);
    assert.match(r.stdout, /^ {2}MISSING +unshare /m);
    assert.match(r.stdout, /fix: apt-get install util-linux/);
    assert.match(r.stdout, /berth will not work until they are fixed$/m);
  });

  test('a libnftables that does not load is reported by the nftables probe, through the kernel layer, with the fix', async () => {
    // Only in a private mount namespace of this test: /dev/null over the library makes dlopen fail.
    const lib = fs.realpathSync('/usr/lib/x86_64-linux-gnu/libnftables.so.1');
    const script = `mount --bind /dev/null ${lib} && exec ${nsenter} --net=${sb.hostNs} -- ${process.execPath} ${BERTH} doctor --root ${sb.root}/state`;
    const r = await run('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script], { timeoutMs: 60_000 });
    assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^ {2}MISSING +nftables +libnftables\.so\.1 not found: install Debian package libnftables1/m);
    assert.match(r.stdout, /fix: apt-get install libnftables1/);
    assert.match(r.stdout, /^ {2}ok +bridge /m, 'the other probes still run');
  });

  test('a probe refuses to run outside the throwaway namespace doctor makes for it', async () => {
    const r = await run(nsenter, [`--net=${sb.hostNs}`, '--', process.execPath, BERTH, 'doctor', '--probe', 'bridge'], { timeoutMs: 30_000 });
    assert.equal(r.code, 0);
    const result = JSON.parse(r.stdout) as { ok: boolean; detail: string };
    assert.equal(result.ok, false);
    assert.match(result.detail, /probes run only in a throwaway namespace/);
    assert.doesNotMatch((await sb.inHost('ip', ['-o', 'link'])).stdout, /bdoc/);
  });
});

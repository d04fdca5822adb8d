/**
 * What `berth doctor` runs (src/cli/commands/doctor.ts registers it): does this machine have what berth needs? Every probe that changes anything runs
 * in a throwaway network and mount namespace (`unshare --net --mount`, private propagation) that
 * dies with the probe process, using berth's own kernel code; the namespace doctor runs in is only
 * read (ip_forward, mountinfo). Says what is missing and how to fix it; exits 1 if anything needed
 * is missing.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kernel } from '../../kernel/kernel.js';
import * as nl from '../../kernel/netlink/codec.js';
import { NetlinkSocket } from '../../kernel/netlink/socket.js';
import { newIpvlan, newMacvlan, newVlan } from '../../kernel/netlink/sublinks.js';
import { newVxlan } from '../../kernel/netlink/vxlan.js';
import { wireguardGoPath } from '../../cluster/tunnel.js';
import { fanMap, fanVni } from '../../drivers/fan/fan-mapping.js';
import { findBird } from '../../cluster/bgp/bgp-speaker.js';
import { messageOf } from '../../errors.js';
import { PROBES, type ProbeName } from './doctor.js';

/** `unavailable`: a kernel feature only some drivers need is absent; networks of those drivers are refused. */
type Status = 'ok' | 'missing' | 'info' | 'unavailable';

export interface DoctorCheck {
  name: string;
  status: Status;
  detail: string;
  fix?: string;
}

/** What a probe process reports on stdout (one JSON line). */
interface ProbeResult {
  ok: boolean;
  detail: string;
  errno?: number;
}

/** Probes of features only some network drivers need. */
const DRIVER_PROBES = { macvlan: 'the macvlan driver', ipvlan: 'the ipvlan driver', '8021q': 'macvlan and ipvlan parents of the form IFACE.VLAN', vxlan: 'the overlay driver', fan: 'the fan driver' } as const;

const EPERM = 1;
const EACCES = 13;
const EOPNOTSUPP = 95;
const AS_ROOT = 'run it as root (berth needs CAP_NET_ADMIN and CAP_SYS_ADMIN); in a container, run the container privileged';

/* the probes, run inside the throwaway namespaces */

/** Exercises nat, masquerade, conntrack and the bridge family: what berth's rulesets use. */
const NFT_PROBE = `
add table ip berth_doctor
add chain ip berth_doctor postrouting { type nat hook postrouting priority srcnat; }
add rule ip berth_doctor postrouting ip saddr 10.255.0.0/24 oifname != "bdoc0" masquerade
add chain ip berth_doctor prerouting { type nat hook prerouting priority dstnat; }
add rule ip berth_doctor prerouting tcp dport 8080 dnat to 10.255.0.2:80
add chain ip berth_doctor forward { type filter hook forward priority filter; }
add rule ip berth_doctor forward ct state established,related accept
add table bridge berth_doctor
add chain bridge berth_doctor forward { type filter hook forward priority filter; }
add rule bridge berth_doctor forward iifname "bdoc0" oifname "bdoc0" drop
`;

async function withKernel<T>(fn: (kernel: Kernel) => Promise<T>): Promise<T> {
  const kernel = new Kernel();
  try {
    return await fn(kernel);
  } finally {
    await kernel.close();
  }
}

const probes: Record<ProbeName, (dir: string) => Promise<string>> = {
  netns: (dir) =>
    withKernel(async (kernel) => {
      const nsPath = path.join(dir, 'probe-ns');
      await kernel.call('createSandbox', { path: nsPath });
      const view = await kernel.call('inspect', { netnsPath: nsPath });
      await kernel.call('deleteSandbox', { path: nsPath });
      if (!view.links.some((l) => l.name === 'lo' && l.up)) throw new Error('a new namespace was made but its lo could not be brought up');
      return 'network namespaces can be created (and bind-mounted, as berth keeps them)';
    }),

  veth: async () => {
    const sock = new NetlinkSocket();
    const nsFd = fs.openSync('/proc/thread-self/ns/net', 'r');
    try {
      sock.transact([nl.newVeth({ name: 'bdoc-veth0', peerName: 'bdoc-veth1', peerNetnsFd: nsFd, up: true })], ['create veth pair bdoc-veth0/bdoc-veth1']);
      const kinds = sock.dump(nl.dumpLinks(), 'list links').map((m) => nl.parseLink(m.body)).filter((l) => l.name.startsWith('bdoc-veth'));
      if (kinds.length !== 2 || kinds.some((l) => l.kind !== 'veth')) throw new Error('the veth pair did not appear');
      sock.transact([nl.deleteLink({ name: 'bdoc-veth0' })], ['delete veth pair']);
      return 'veth pairs can be created';
    } finally {
      fs.closeSync(nsFd);
      sock.close();
    }
  },

  bridge: () =>
    withKernel(async (kernel) => {
      await kernel.call('ensureBridge', { name: 'bdoc-br0', alias: 'berth:doctor', gateway: '10.255.0.1', prefix: 24, broadcast: '10.255.0.255' });
      const view = await kernel.call('inspect', {});
      const bridge = view.links.find((l) => l.name === 'bdoc-br0');
      if (bridge?.kind !== 'bridge' || !view.addresses.some((a) => a.index === bridge.index && a.address === '10.255.0.1')) {
        throw new Error('the bridge did not appear with its address');
      }
      await kernel.call('deleteLink', 'bdoc-br0');
      return 'Linux bridges can be created, brought up and given an address';
    }),

  nftables: () =>
    withKernel(async (kernel) => {
      await kernel.call('nft', { script: NFT_PROBE });
      const listed = await kernel.call('nft', { script: 'list table ip berth_doctor' });
      if (!listed.includes('masquerade')) throw new Error('the probe table did not read back');
      await kernel.call('nft', { script: 'delete table ip berth_doctor\ndelete table bridge berth_doctor' });
      return 'libnftables.so.1 loads, and tables with nat, masquerade, conntrack and bridge-family chains load';
    }),

  macvlan: () => probeChild('macvlan', (parentIndex) => newMacvlan({ name: 'bdoc-child', parentIndex, mode: 'bridge' })),
  ipvlan: () => probeChild('ipvlan', (parentIndex) => newIpvlan({ name: 'bdoc-child', parentIndex, mode: 'l3' })),
  '8021q': () => probeChild('802.1Q vlan', (parentIndex) => newVlan({ name: 'bdoc-child', parentIndex, vlanId: 7 })),
  vxlan: () => probeChild('vxlan', (parentIndex) => newVxlan({ name: 'bdoc-child', vni: 4242, local: '10.255.0.1', underlayIndex: parentIndex, mtu: 1450 })),

  fan: () =>
    withKernel(async (kernel) => {
      // A whole fan device, as the driver makes it, with a bridge standing in for the underlay.
      const map = fanMap('192.168.0.0/16', '250.0.0.0/8');
      await kernel.call('ensureBridge', { name: 'bdoc-br0', alias: 'berth:doctor', gateway: '250.0.1.1', prefix: 24, broadcast: '250.0.1.255' });
      await kernel.call('ensureFanDevice', {
        name: 'bdoc-fan',
        mark: 'berth:doctor',
        mac: '02:fa:00:00:00:01',
        vni: fanVni(map),
        port: 8472,
        underlay: 'bdoc-br0',
        mtu: 1450,
        overlay: { network: '250.0.0.0', prefix: 8 },
        source: '250.0.1.1',
        program: { overlayNetwork: map.overlay.network, overlayPrefix: 8, slicePrefix: map.slicePrefix, underlayNetwork: map.underlay.network, underlayPrefix: 16, vni: fanVni(map) },
        programName: 'berth-fan doctor',
      });
      await kernel.call('deleteLink', 'bdoc-fan');
      await kernel.call('deleteLink', 'bdoc-br0');
      return 'VXLAN devices in external mode with a VNI filter, and eBPF programs on their egress (tc), can be made';
    }),

  'shared-mount': (dir) =>
    withKernel(async (kernel) => {
      const target = path.join(dir, 'netns');
      await kernel.call('prepareRunDir', { dir: target });
      const shared = mountOf(target)?.shared ?? false;
      await kernel.call('releaseRunDir', { dir: target });
      if (!shared) throw new Error(`${target} was bind-mounted but did not become shared`);
      return 'a directory can be made a shared mount point, as berth does with <root>/netns';
    }),
};

/** Makes a child link of `kind` on a veth of the throwaway namespace, then deletes it. */
async function probeChild(kind: string, make: (parentIndex: number) => nl.NetlinkRequest): Promise<string> {
  const sock = new NetlinkSocket();
  const nsFd = fs.openSync('/proc/thread-self/ns/net', 'r');
  try {
    sock.transact([nl.newVeth({ name: 'bdoc-par0', peerName: 'bdoc-par1', peerNetnsFd: nsFd, up: true })], ['create parent veth bdoc-par0']);
    const [reply] = sock.transact([nl.getLink('bdoc-par0')], ['look up bdoc-par0']);
    const parent = nl.parseLink(reply![0]!.body);
    sock.transact([make(parent.index)], [`create a ${kind} link on bdoc-par0`]);
    sock.transact([nl.deleteLink({ name: 'bdoc-child' }), nl.deleteLink({ name: 'bdoc-par0' })], ['delete the child', 'delete the parent']);
    return `${kind} links can be created`;
  } finally {
    fs.closeSync(nsFd);
    sock.close();
  }
}

/**
 * Probes create links and tables, so they refuse to run anywhere but in a namespace doctor just
 * made: not the one doctor was started in, and holding nothing but `lo`.
 */
function assertThrowawayNamespace(parentNetns: string | undefined): void {
  const own = String(fs.statSync('/proc/thread-self/ns/net').ino);
  if (!parentNetns || own === parentNetns) throw new Error('probes run only in a throwaway namespace: run `berth doctor` without --probe');
  const sock = new NetlinkSocket();
  try {
    const links = sock.dump(nl.dumpLinks(), 'list links').map((m) => nl.parseLink(m.body).name);
    if (links.length !== 1 || links[0] !== 'lo') throw new Error(`probes run only in a fresh namespace, and this one has ${links.join(', ')}`);
  } finally {
    sock.close();
  }
}

export async function runProbe(name: ProbeName, dir: string, parentNetns: string | undefined): Promise<void> {
  let result: ProbeResult;
  try {
    assertThrowawayNamespace(parentNetns);
    result = { ok: true, detail: await probes[name](dir) };
  } catch (err) {
    result = { ok: false, detail: messageOf(err), errno: (err as { errno?: number }).errno };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/* the checks, run in the namespace doctor was started in */

function findTool(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const candidate = path.join(dir || '.', name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** The mount at exactly `dir`, if any, from this process's mountinfo. */
function mountOf(dir: string): { shared: boolean } | undefined {
  let target: string;
  try {
    target = fs.realpathSync(dir);
  } catch {
    return undefined;
  }
  const lines = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  // The last entry for a mount point is the one on top.
  const line = lines.filter((l) => l.split(' ')[4] === target).pop();
  if (!line) return undefined;
  const optional = line.slice(0, line.indexOf(' - ')).split(' ').slice(6);
  return { shared: optional.some((f) => f.startsWith('shared:')) };
}

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

/** Runs one probe in a fresh network and mount namespace; the namespaces die with the process. */
function spawnProbe(name: ProbeName): Promise<ProbeResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `berth-doctor-${name}-`));
  const parentNetns = String(fs.statSync('/proc/thread-self/ns/net').ino);
  const args = ['--net', '--mount', '--propagation', 'private', '--', process.execPath, MAIN, 'doctor', '--probe', name, '--probe-dir', dir, '--probe-parent-netns', parentNetns];
  return new Promise((resolve) => {
    execFile('unshare', args, { timeout: 30_000 }, (err, stdout, stderr) => {
      fs.rmSync(dir, { recursive: true, force: true });
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last) as ProbeResult);
      } catch {
        const why = stderr.trim() || (err ? messageOf(err) : 'the probe printed nothing');
        resolve({ ok: false, detail: `could not run the probe in a throwaway namespace: ${why}`, errno: /Operation not permitted/.test(why) ? EPERM : undefined });
      }
    });
  });
}

function fixFor(name: ProbeName, r: ProbeResult): string {
  if (r.errno === EPERM || r.errno === EACCES) return AS_ROOT;
  switch (name) {
    case 'netns':
      return `the kernel needs network namespaces (CONFIG_NET_NS); ${AS_ROOT}`;
    case 'veth':
      return r.errno === EOPNOTSUPP ? 'load the veth driver: modprobe veth (kernel CONFIG_VETH)' : 'load the veth driver: modprobe veth';
    case 'bridge':
      return 'load the bridge driver: modprobe bridge (kernel CONFIG_BRIDGE)';
    case 'nftables':
      return /libnftables/.test(r.detail)
        ? 'apt-get install libnftables1 (or nftables)'
        : 'load the nftables modules: modprobe nf_tables nft_chain_nat nft_nat nft_masq nft_ct nf_tables_bridge (kernel CONFIG_NF_TABLES and friends)';
    case 'shared-mount':
      return `berth bind-mounts <root>/netns and makes it shared; ${AS_ROOT}`;
    case 'macvlan':
      return 'load the macvlan driver: modprobe macvlan (kernel CONFIG_MACVLAN)';
    case 'ipvlan':
      return 'load the ipvlan driver: modprobe ipvlan (kernel CONFIG_IPVLAN)';
    case '8021q':
      return 'load the 802.1Q driver: modprobe 8021q (kernel CONFIG_VLAN_8021Q)';
    case 'vxlan':
      return 'load the VXLAN driver: modprobe vxlan (kernel CONFIG_VXLAN)';
    case 'fan':
      return 'the fan needs Linux ≥ 6.0 (VXLAN VNI filtering) with CONFIG_VXLAN, CONFIG_BPF_SYSCALL, CONFIG_NET_CLS_BPF and CONFIG_NET_SCH_INGRESS (clsact): modprobe vxlan cls_bpf sch_ingress';
  }
}

/** A feature only some drivers need: without it berth works, and refuses those networks. */
function driverProbeCheck(name: keyof typeof DRIVER_PROBES, r: ProbeResult): DoctorCheck {
  if (r.ok) return { name, status: 'ok', detail: `${r.detail} (${DRIVER_PROBES[name]})` };
  const absent = r.errno === EOPNOTSUPP ? `this kernel has no ${name === '8021q' ? '802.1Q VLAN' : name} support` : r.detail;
  return { name, status: 'unavailable', detail: `${absent}: ${DRIVER_PROBES[name]} refused`, fix: fixFor(name, r) };
}

function probeCheck(name: Exclude<ProbeName, 'shared-mount'>, r: ProbeResult): DoctorCheck {
  return r.ok ? { name, status: 'ok', detail: r.detail } : { name, status: 'missing', detail: r.detail, fix: fixFor(name, r) };
}

/** Encrypted overlays need a WireGuard implementation berth drives (wireguard-go). */
function wireguardCheck(): DoctorCheck {
  const found = wireguardGoPath();
  return found
    ? { name: 'wireguard', status: 'ok', detail: `${found} (encrypted overlay networks)` }
    : { name: 'wireguard', status: 'unavailable', detail: 'wireguard-go not found in PATH: -o encrypted overlay networks refused', fix: 'apt-get install wireguard-go' };
}

/** Routed networks across hosts need BIRD 2 (bird and birdc), which `berth daemon --bgp-asn` runs. */
function birdCheck(): DoctorCheck {
  try {
    const { bird } = findBird();
    return { name: 'bird2', status: 'ok', detail: `${bird} (BGP for routed networks: berth daemon --bgp-asn)` };
  } catch {
    return { name: 'bird2', status: 'unavailable', detail: 'bird and birdc not found: berth daemon --bgp-asn refused (routed networks still work on each host)', fix: 'apt-get install bird2' };
  }
}

function ipForwardCheck(): DoctorCheck {
  let value: string;
  try {
    value = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  } catch (err) {
    return { name: 'ip_forward', status: 'info', detail: `could not read net.ipv4.ip_forward: ${messageOf(err)}` };
  }
  const detail =
    value === '1'
      ? 'net.ipv4.ip_forward is 1 in this namespace'
      : `net.ipv4.ip_forward is ${value} in this namespace; the berth daemon sets it to 1 when it starts here (containers reach beyond the host only then)`;
  return { name: 'ip_forward', status: 'info', detail };
}

function netnsDirCheck(root: string, probe: ProbeResult): DoctorCheck {
  const dir = path.join(root, 'netns');
  const mount = mountOf(dir);
  if (mount?.shared) return { name: 'netns-dir', status: 'ok', detail: `${dir} is a shared mount` };
  const now = mount ? `${dir} is a mount point but not shared` : fs.existsSync(dir) ? `${dir} is not a mount point yet` : `${dir} does not exist yet`;
  if (!probe.ok) return { name: 'netns-dir', status: 'missing', detail: `${now}, and it cannot become a shared mount: ${probe.detail}`, fix: fixFor('shared-mount', probe) };
  let ancestor = root;
  while (!fs.existsSync(ancestor)) ancestor = path.dirname(ancestor);
  try {
    fs.accessSync(ancestor, fs.constants.W_OK);
  } catch {
    return { name: 'netns-dir', status: 'missing', detail: `${now}, and ${ancestor} is not writable`, fix: `make ${ancestor} writable, or point --root (env BERTH_ROOT) elsewhere` };
  }
  return { name: 'netns-dir', status: 'ok', detail: `${now}; it can become a shared mount (the daemon makes it one when it starts)` };
}

export async function runDoctor(root: string): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const tools = { nsenter: findTool('nsenter'), unshare: findTool('unshare') };
  for (const [name, found] of Object.entries(tools)) {
    checks.push(
      found
        ? { name, status: 'ok', detail: `${found} (berth starts container processes with it)` }
        : { name, status: 'missing', detail: `${name} not found in PATH (berth starts container processes with it)`, fix: 'apt-get install util-linux' },
    );
  }
  const results = tools.unshare
    ? Object.fromEntries(await Promise.all(PROBES.map(async (p) => [p, await spawnProbe(p)] as const)))
    : Object.fromEntries(PROBES.map((p) => [p, { ok: false, detail: 'not checked: unshare is missing (apt-get install util-linux)' }] as const));
  checks.push(probeCheck('netns', results.netns!), probeCheck('veth', results.veth!), probeCheck('bridge', results.bridge!), probeCheck('nftables', results.nftables!));
  for (const name of Object.keys(DRIVER_PROBES) as (keyof typeof DRIVER_PROBES)[]) checks.push(driverProbeCheck(name, results[name]!));
  checks.push(wireguardCheck());
  checks.push(birdCheck());
  checks.push(ipForwardCheck());
  checks.push(netnsDirCheck(root, results['shared-mount']!));
  return checks;
}

export function printChecks(root: string, checks: DoctorCheck[]): void {
  const out = [`berth doctor: root ${root}; probes run in throwaway network and mount namespaces`];
  const width = Math.max(...checks.map((c) => c.name.length)) + 2;
  for (const c of checks) {
    out.push(`  ${(c.status === 'missing' ? 'MISSING' : c.status === 'unavailable' ? 'n/a' : c.status).padEnd(9)}${c.name.padEnd(width)}${c.detail}`);
    if (c.fix) out.push(`  ${''.padEnd(9 + width)}fix: ${c.fix}`);
  }
  const missing = checks.filter((c) => c.status === 'missing');
  out.push(
    missing.length === 0
      ? 'everything berth needs is here'
      : `${missing.length} missing (${missing.map((c) => c.name).join(', ')}): berth will not work until ${missing.length === 1 ? 'it is' : 'they are'} fixed`,
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

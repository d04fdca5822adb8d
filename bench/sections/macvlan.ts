/**
 * §7 Macvlan setup and teardown: a container put straight on a LAN through a macvlan child (mode
 * bridge) of the host's NIC; no published port (berth also opens its in-container resolver; the peers have no DNS on macvlan). berth (a `-d macvlan` network through its
 * API, network-only containers), netavark's macvlan driver and the CNI macvlan plugin with
 * host-local each run in a sandbox host namespace of their own, with a NIC of their own on the same
 * subnet, interleaved round-robin as in §1.
 *
 * Each system keeps one anchor container on its parent throughout: the kernel sets up a parent's
 * macvlan port with its first child and tears it down with its last, which a parent in use does
 * not pay per container.
 */
import { BerthHost } from '../lib/berth.js';
import { daemonOps, type BenchContext } from '../lib/context.js';
import { lanNic } from '../lib/links.js';
import { peerSystem, roundRobin, type System, type SystemResult } from '../lib/round-robin.js';
import { Scope } from '../lib/scope.js';
import { summarize, type Summary } from '../lib/stats.js';
import { CniChain, macvlanChain } from '../peers/cni.js';
import { Netavark } from '../peers/netavark.js';

export interface MacvlanResult {
  rounds: number;
  warmup: number;
  /** Every system's network: the same /24, each on its own NIC in its own namespace. */
  subnet: string;
  systems: SystemResult[];
  /** Daemon-side durations of berth's recorded operations (from its per-operation log). */
  daemonSide: Record<string, Summary>;
}

const PREFIX3 = '192.168.90';
const SUBNET = `${PREFIX3}.0/24`;
const GATEWAY = `${PREFIX3}.1`;
/** Each system's parent link, in its own host namespace (the host's address on it is .2). */
const NIC = 'bb-lan0';
const NETWORK = 'bb-mvnet';

export async function macvlanBench(ctx: BenchContext): Promise<MacvlanResult> {
  const scope = new Scope('macvlan');
  try {
    return await measure(ctx, scope);
  } finally {
    await scope.close();
  }
}

async function measure(ctx: BenchContext, scope: Scope): Promise<MacvlanResult> {
  ctx.log('§7 preparing berth, netavark and the CNI macvlan plugin, each with a NIC of its own');
  const berth = await BerthHost.create(scope, 'bbm');
  await lanNic(berth.hostNsName, NIC, PREFIX3);
  await berth.createNetwork(NETWORK, SUBNET, { driver: 'macvlan', gateway: GATEWAY, options: { parent: NIC } });
  const anchor = await berth.setup({ network: NETWORK, netOnly: true });
  // A network-only container without a process is reaped after 30 s: the anchor names one.
  await berth.adopt(anchor.id, berth.placeholderPid());

  const nv = new Netavark(scope, { tag: 'nvm', driver: 'macvlan', parent: NIC, prefix3: PREFIX3 });
  await nv.init();
  await lanNic(nv.hostNsName, NIC, PREFIX3);
  await nv.createNetns(0);
  await nv.setup(0);

  const cniHost = 'bb-cnm-host';
  const cni = new CniChain(scope, macvlanChain('cnm', NIC, PREFIX3, scope.tempDir('cnm-ipam')));
  await cni.init(await scope.netns(cniHost));
  await lanNic(cniHost, NIC, PREFIX3);
  await cni.createNetns(0);
  await cni.add(0);

  const ids = new Map<number, string>();
  const systems: System[] = [
    {
      key: 'berth',
      label: 'berth API: create + start?detach=0 (network only)',
      async setup(i) {
        const t = await berth.setup({ network: NETWORK, netOnly: true });
        ids.set(i, t.id);
        return { ms: t.ms };
      },
      teardown: async (i) => ({ ms: await berth.teardown(ids.get(i)!) }),
    },
    peerSystem('netavark', 'netavark 1.4 macvlan driver (setup / teardown)', nv, async (i) => ({ ms: await nv.setup(i) }), async (i) => ({ ms: await nv.teardown(i) })),
    peerSystem('cni', 'CNI 1.1.1 macvlan + host-local (ADD / DEL)', cni, async (i) => ({ ms: (await cni.add(i)).ms }), async (i) => ({ ms: (await cni.del(i)).ms })),
  ];

  const warmup = ctx.quick ? 1 : 3;
  const { rounds, results } = await roundRobin(ctx, systems, {
    tag: '§7',
    warmup,
    wanted: ctx.quick ? 5 : 60,
    minRounds: ctx.quick ? 2 : 30,
    budgetMs: Math.min(ctx.quick ? 20_000 : 60_000, ctx.left() / 4),
  });

  return { rounds, warmup, subnet: SUBNET, systems: results, daemonSide: daemonSide(berth, ids, warmup) };
}

/** The daemon's own time for the recorded rounds: the difference to the client's is HTTP and client overhead. */
function daemonSide(berth: BerthHost, ids: Map<number, string>, warmup: number): Record<string, Summary> {
  // Container indices are the round plus one.
  const recorded = new Set([...ids].filter(([i]) => i > warmup).map(([, id]) => id));
  const ops = daemonOps(berth.sb.daemonLog);
  const pick = (msg: string) => ops.filter((o) => o.msg === msg && o.container !== undefined && recorded.has(o.container)).map((o) => o.ms);
  // create?start=1 is one operation, `container run`, logged before its container has an id: the
  // runs come in order, the anchor's and the warm-up rounds' first.
  const runs = ops
    .filter((o) => o.msg === 'container run')
    .slice(1 + warmup)
    .map((o) => o.ms);
  const out: Record<string, Summary> = {};
  for (const [label, list] of [
    ['create + start?detach=0', runs],
    ['rm -f (network only)', pick('container rm')],
    // Its kernel side (the macvlan child's delete, then the namespace) ends after the answer.
    ['rm -f (network only), until its kernel side is done', pick('container rm settled')],
  ] as const) {
    if (list.length) out[label] = summarize(list);
  }
  return out;
}

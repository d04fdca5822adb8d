/**
 * Set element changes written straight to nf_tables over an nfnetlink socket of the calling
 * thread's namespace (the daemon's main thread: the host's), one batch per call. The kernel runs
 * the whole batch inside send() and queues its answers, so they are all read without waiting.
 * Honours BERTH_KERNEL_FAULTS' `nft` as host-nft.ts does.
 */
import * as libc from './libc.js';
import { injectedFault } from './faults.js';
import { NLMSG_ERROR, parseError } from './netlink/codec.js';
import { NetlinkSocket } from './netlink/socket.js';
import { NETLINK_NETFILTER, groupBySet, setElementsBatch, type SetElementChange } from './netlink/nftables.js';
import { NftError } from './nft.js';

/**
 * A batch is sent in one write, which netlink refuses beyond the socket's send buffer (208 KiB by
 * default): ~1,000 published ports of one container (`-p 20000-20999:…`) need more.
 */
const MIN_SNDBUF = 1 << 20;

let sock: NetlinkSocket | undefined;
let seq = Math.floor(Math.random() * 1e6);

function socket(): NetlinkSocket {
  if (sock) return sock;
  const s = new NetlinkSocket(NETLINK_NETFILTER);
  s.ensureSendBuffer(MIN_SNDBUF);
  return (sock = s);
}

/**
 * Applies `changes` as one transaction, or throws NftError naming the first change refused (then
 * nothing was applied).
 */
export function applySetElements(requested: readonly SetElementChange[]): void {
  if (requested.length === 0) return;
  const changes = groupBySet(requested);
  const fault = injectedFault('nft');
  if (fault) throw fault;
  const s = socket();
  const { bytes, messages } = setElementsBatch(changes, seq);
  seq += messages.length + 2;
  s.ensureSendBuffer(2 * bytes.length);
  const answered = new Map<number, { errno: number; detail?: string }>();
  for (const msg of s.sendQueued(bytes)) if (msg.type === NLMSG_ERROR) answered.set(msg.seq, parseError(msg));
  for (const { seq: n, change: c } of messages) {
    const a = answered.get(n);
    const what = `${c.op} element ${c.family} ${c.table} ${c.set}`;
    if (!a) throw new NftError(`nftables did not answer ${what} (${answered.size} of ${messages.length} answers)`);
    if (a.errno !== 0) throw new NftError(`nftables rejected the change: ${what}: ${a.detail ? `${a.detail} (${libc.strerror(a.errno)})` : libc.strerror(a.errno)}`);
  }
}

/**
 * Set element changes written straight to nf_tables over an nfnetlink socket of the calling
 * thread's namespace (the daemon's main thread: the host's), one batch per call. The kernel runs
 * the whole batch inside send() and queues its answers, so they are all read without waiting.
 * Honours BERTH_KERNEL_FAULTS' `nft` as host-nft.ts does.
 */
import * as libc from './libc.js';
import { injectedFault } from './faults.js';
import { NLMSG_ERROR, parseError, splitMessages, type Message } from './netlink/codec.js';
import { NETLINK_NETFILTER, groupBySet, setElementsBatch, type SetElementChange } from './netlink/nftables.js';
import { NftError } from './nft.js';

const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const SO_SNDBUF = 7;
const SO_SNDBUFFORCE = 32;
/**
 * A batch is sent in one write, which netlink refuses beyond the socket's send buffer (208 KiB by
 * default): ~1,000 published ports of one container (`-p 20000-20999:…`) need more. Raised like
 * nft does, past wmem_max where root may.
 */
const MIN_SNDBUF = 1 << 20;

let fd: number | undefined;
let sndbuf = 0;
let seq = Math.floor(Math.random() * 1e6);
const buf = Buffer.alloc(64 * 1024);

function socket(): number {
  if (fd !== undefined) return fd;
  const s = libc.socket(libc.AF_NETLINK, libc.SOCK_RAW | libc.SOCK_CLOEXEC, NETLINK_NETFILTER);
  try {
    libc.setsockoptInt(s, libc.SOL_NETLINK, libc.NETLINK_CAP_ACK, 1);
    libc.setsockoptInt(s, libc.SOL_NETLINK, libc.NETLINK_EXT_ACK, 1);
  } catch (err) {
    libc.close(s);
    throw err;
  }
  fd = s;
  ensureSndbuf(s, MIN_SNDBUF);
  return s;
}

function ensureSndbuf(s: number, bytes: number): void {
  if (bytes <= sndbuf) return;
  try {
    libc.setsockoptInt(s, libc.SOL_SOCKET, SO_SNDBUFFORCE, bytes);
  } catch {
    libc.setsockoptInt(s, libc.SOL_SOCKET, SO_SNDBUF, bytes); // capped at wmem_max
  }
  sndbuf = bytes;
}

/** What is queued on the socket now, without waiting. */
function drain(s: number): Message[] {
  const out: Message[] = [];
  for (;;) {
    let n: number;
    try {
      n = libc.recv(s, buf, MSG_DONTWAIT);
    } catch (err) {
      if (err instanceof libc.SyscallError && err.errno === EAGAIN) return out;
      throw err;
    }
    out.push(...splitMessages(buf, n));
  }
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
  drain(s); // answers left by an earlier batch that failed half-way
  const { bytes, messages } = setElementsBatch(changes, seq);
  seq += messages.length + 2;
  ensureSndbuf(s, 2 * bytes.length);
  libc.send(s, bytes);
  const answered = new Map<number, { errno: number; detail?: string }>();
  for (const msg of drain(s)) if (msg.type === NLMSG_ERROR) answered.set(msg.seq, parseError(msg));
  for (const { seq: n, change: c } of messages) {
    const a = answered.get(n);
    const what = `${c.op} element ${c.family} ${c.table} ${c.set}`;
    if (!a) throw new NftError(`nftables did not answer ${what} (${answered.size} of ${messages.length} answers)`);
    if (a.errno !== 0) throw new NftError(`nftables rejected the change: ${what}: ${a.detail ? `${a.detail} (${libc.strerror(a.errno)})` : libc.strerror(a.errno)}`);
  }
}

/**
 * A blocking rtnetlink socket bound to the namespace it was opened in. rtnetlink answers "doit"
 * requests inside send(), so a blocking recv() never waits on the kernel; several requests go out
 * in one send() and each gets its own ACK, matched by sequence number. A batch is not a
 * transaction: every reply is read (keeping the socket in step) before the first error is thrown,
 * and callers undo what succeeded.
 */
import * as libc from '../libc.js';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
  NLM_F_ACK,
  NLM_F_DUMP_INTR,
  encodeMessage,
  parseError,
  splitMessages,
  type Message,
  type NetlinkRequest,
} from './codec.js';

export class NetlinkError extends Error {
  constructor(
    readonly errno: number,
    readonly what: string,
    detail?: string,
  ) {
    super(`${what}: ${detail ? `${detail} (${libc.strerror(errno)})` : libc.strerror(errno)}`);
    this.name = 'NetlinkError';
  }
}

export const EEXIST = 17;
export const ENODEV = 19;
export const ENOENT = 2;
export const ESRCH = 3;
const EAGAIN = 11;
const SO_SNDBUF = 7;
const SO_SNDBUFFORCE = 32;

/**
 * One receive buffer per thread, shared by its sockets: a socket is opened per namespace entered
 * (several per container set up), and a 256 KiB buffer each was garbage the worker's small heap
 * rarely collected (tens of MB resident at 1,000 containers). Sharing is safe because send and
 * receive are synchronous and splitMessages copies what it returns.
 */
let sharedBuf: Buffer | undefined;
const receiveBuffer = () => (sharedBuf ??= Buffer.alloc(256 * 1024));

export class NetlinkSocket {
  private readonly fd: number;
  private seq = Math.floor(Math.random() * 1e6);
  private readonly buf = receiveBuffer();
  /** What ensureSendBuffer last asked for (0: the kernel's default). */
  private sendBuffer = 0;

  /** Opens a socket in the calling thread's current network namespace. */
  constructor(protocol: number = libc.NETLINK_ROUTE) {
    this.fd = libc.socket(libc.AF_NETLINK, libc.SOCK_RAW | libc.SOCK_CLOEXEC, protocol);
    try {
      libc.setsockoptInt(this.fd, libc.SOL_NETLINK, libc.NETLINK_CAP_ACK, 1);
      libc.setsockoptInt(this.fd, libc.SOL_NETLINK, libc.NETLINK_EXT_ACK, 1);
    } catch (err) {
      libc.close(this.fd);
      throw err;
    }
  }

  close(): void {
    libc.close(this.fd);
  }

  /**
   * Sends the requests in one write and returns, per request, the data messages the kernel
   * answered with (empty for a plain ACK). `labels` name each request in error messages.
   */
  transact(requests: NetlinkRequest[], labels: string[]): Message[][] {
    const first = this.seq + 1;
    const packets = requests.map((r) => encodeMessage({ ...r, flags: r.flags | NLM_F_ACK }, ++this.seq));
    libc.send(this.fd, Buffer.concat(packets));
    const replies: Message[][] = requests.map(() => []);
    const errors: (NetlinkError | undefined)[] = [];
    let pending = requests.length;
    while (pending > 0) {
      const n = libc.recv(this.fd, this.buf);
      for (const msg of splitMessages(this.buf, n)) {
        const i = msg.seq - first;
        if (i < 0 || i >= requests.length) continue; // a stale reply from an earlier, failed exchange
        if (msg.type === NLMSG_ERROR) {
          const { errno, detail } = parseError(msg);
          if (errno !== 0) errors[i] = new NetlinkError(errno, labels[i] ?? 'netlink', detail);
          pending--;
        } else {
          replies[i]!.push(msg);
        }
      }
    }
    const failure = errors.find((e) => e !== undefined);
    if (failure) throw Object.assign(failure, { index: errors.indexOf(failure) });
    return replies;
  }

  /**
   * Sends `packet` (a batch: several messages, as nfnetlink takes them) and returns every message
   * queued in answer, without waiting: for a protocol that answers inside send(). Answers left by
   * an earlier exchange that failed half-way are read and dropped first.
   */
  sendQueued(packet: Buffer): Message[] {
    this.readQueued();
    libc.send(this.fd, packet);
    return this.readQueued();
  }

  /** Lets a single send carry `bytes` (root may go past wmem_max, as nft does for its batches). */
  ensureSendBuffer(bytes: number): void {
    if (bytes <= this.sendBuffer) return;
    try {
      libc.setsockoptInt(this.fd, libc.SOL_SOCKET, SO_SNDBUFFORCE, bytes);
    } catch {
      libc.setsockoptInt(this.fd, libc.SOL_SOCKET, SO_SNDBUF, bytes); // capped at wmem_max
    }
    this.sendBuffer = bytes;
  }

  private readQueued(): Message[] {
    const out: Message[] = [];
    for (;;) {
      let n: number;
      try {
        n = libc.recv(this.fd, this.buf, libc.MSG_DONTWAIT);
      } catch (err) {
        if (err instanceof libc.SyscallError && err.errno === EAGAIN) return out;
        throw err;
      }
      out.push(...splitMessages(this.buf, n));
    }
  }

  /** Runs one dump request and returns all its data messages, from a dump that was not interrupted. */
  dump(request: NetlinkRequest, label: string): Message[] {
    return dumpConsistently(() => this.dumpOnce(request, label), label);
  }

  private dumpOnce(request: NetlinkRequest, label: string): DumpResult {
    const seq = ++this.seq;
    libc.send(this.fd, encodeMessage(request, seq));
    const messages: Message[] = [];
    let interrupted = false;
    for (;;) {
      const n = libc.recv(this.fd, this.buf);
      for (const msg of splitMessages(this.buf, n)) {
        if (msg.seq !== seq) continue;
        if (msg.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (msg.type === NLMSG_DONE) return { messages, interrupted };
        if (msg.type === NLMSG_ERROR) {
          const { errno, detail } = parseError(msg);
          if (errno !== 0) throw new NetlinkError(errno, label, detail);
          return { messages, interrupted };
        }
        messages.push(msg);
      }
    }
  }
}

export interface DumpResult {
  messages: Message[];
  /** The kernel flagged the dump NLM_F_DUMP_INTR: the table changed meanwhile. */
  interrupted: boolean;
}

export const DUMP_ATTEMPTS = 10;

/**
 * Repeats a dump until the kernel reports it consistent. An interrupted dump may miss entries
 * (links, addresses) that exist, and a caller such as the reconciler would then act on their
 * absence (releasing a live endpoint); after `attempts` interrupted dumps it fails instead.
 */
export function dumpConsistently(dumpOnce: () => DumpResult, label: string, attempts = DUMP_ATTEMPTS): Message[] {
  for (let i = 0; i < attempts; i++) {
    const { messages, interrupted } = dumpOnce();
    if (!interrupted) return messages;
  }
  throw new Error(`${label}: the kernel's table kept changing during ${attempts} dumps in a row (NLM_F_DUMP_INTR); try again`);
}

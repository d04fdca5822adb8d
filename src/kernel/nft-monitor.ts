/**
 * Watches nftables change notifications (netlink group NFNLGRP_NFTABLES) in the daemon's
 * namespace, so berth notices within a poll interval when someone else changes its tables:
 * `nft flush ruleset` (which `systemctl restart nftables` runs), a deleted table or chain, a
 * flushed set. Every transaction ends with a NEWGEN message naming the process (thread) that made
 * it; a transaction by a thread of this process is berth's own and is ignored.
 *
 * The socket is read without blocking from the main thread on a short timer: no thread has to
 * sit in recv(), and a burst of notifications that overflows the socket (ENOBUFS) is reported as
 * a foreign change too, since what was lost is unknown.
 */
import * as fs from 'node:fs';
import * as libc from './libc.js';

const NETLINK_NETFILTER = 12;
const NETLINK_ADD_MEMBERSHIP = 1;
const SO_RCVBUFFORCE = 33;
const NFNLGRP_NFTABLES = 7;
const EAGAIN = 11;
const EINTR = 4;
const ENOBUFS = 105;

const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_NEWRULE = 6;
const NFT_MSG_DELRULE = 8;
const NFT_MSG_NEWGEN = 15;
const NFTA_GEN_PROC_PID = 2;
const NFTA_GEN_PROC_NAME = 3;
/** The table name is attribute 1 of every table, chain, rule, set, element, object or flowtable message. */
const NFTA_TABLE = 1;
const NFTA_RULE_CHAIN = 2;
const NFGENMSG_LEN = 4;

/** What one notification says: the object's table, or the end of a transaction and its author. */
export type NftEvent =
  | { kind: 'change'; family: number; table: string; msg: number; chain?: string }
  | { kind: 'generation'; pid: number; process: string };

function attrs(body: Buffer, from: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let off = from; off + 4 <= body.length; ) {
    const len = body.readUInt16LE(off);
    if (len < 4 || off + len > body.length) break;
    out.set(body.readUInt16LE(off + 2) & 0x3fff, body.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

const cString = (b: Buffer | undefined) => (b ? b.toString('utf8', 0, b.indexOf(0) < 0 ? b.length : b.indexOf(0)) : '');

/** Parses a buffer of netlink messages into nftables events (pure; others are skipped). */
export function parseNftEvents(buf: Buffer, length: number): NftEvent[] {
  const events: NftEvent[] = [];
  for (let off = 0; off + 16 <= length; ) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || off + len > length) break;
    const type = buf.readUInt16LE(off + 4);
    const body = buf.subarray(off + 16, off + len);
    off += (len + 3) & ~3;
    if (type >> 8 !== NFNL_SUBSYS_NFTABLES || body.length < NFGENMSG_LEN) continue;
    const msg = type & 0xff;
    const a = attrs(body, NFGENMSG_LEN);
    if (msg === NFT_MSG_NEWGEN) {
      events.push({ kind: 'generation', pid: a.get(NFTA_GEN_PROC_PID)?.readUInt32BE(0) ?? 0, process: cString(a.get(NFTA_GEN_PROC_NAME)) });
    } else {
      const chain = msg === NFT_MSG_NEWRULE || msg === NFT_MSG_DELRULE ? cString(a.get(NFTA_RULE_CHAIN)) : undefined;
      events.push({ kind: 'change', family: body.readUInt8(0), table: cString(a.get(NFTA_TABLE)), msg, chain });
    }
  }
  return events;
}

/** A transaction's changes, judged once its NEWGEN says who made it. */
export interface ForeignTransaction {
  pid: number;
  process: string;
  changes: Extract<NftEvent, { kind: 'change' }>[];
  /** Notifications were lost (the socket overflowed): anything may have changed. */
  overflow: boolean;
}

function isOwnThread(pid: number): boolean {
  return pid === process.pid || fs.existsSync(`/proc/self/task/${pid}`);
}

export class NftMonitor {
  private fd = -1;
  private timer: NodeJS.Timeout | undefined;
  private pending: Extract<NftEvent, { kind: 'change' }>[] = [];
  private readonly buf = Buffer.alloc(256 * 1024);

  /**
   * Subscribes in the calling thread's namespace; `onForeign` gets each transaction made by
   * others, `onError` a failure to read (the monitor then stops).
   */
  start(onForeign: (t: ForeignTransaction) => void, onError: (err: Error) => void, pollMs = 100): void {
    const fd = libc.socket(libc.AF_NETLINK, libc.SOCK_RAW | libc.SOCK_CLOEXEC, NETLINK_NETFILTER);
    try {
      // Multicast is only delivered to a bound socket (the kernel picks the port id).
      const local = Buffer.alloc(12);
      local.writeUInt16LE(libc.AF_NETLINK, 0);
      libc.bind(fd, local, 'bind nftables notification socket');
      libc.setsockoptInt(fd, libc.SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTABLES);
    } catch (err) {
      libc.close(fd);
      throw err;
    }
    // A full ruleset load notifies every element; room for a few thousand before ENOBUFS.
    try {
      libc.setsockoptInt(fd, libc.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20);
    } catch {
      // Not allowed without CAP_NET_ADMIN: the default buffer, and ENOBUFS handling, remain.
    }
    this.fd = fd;
    this.timer = setInterval(() => {
      try {
        this.drain(onForeign);
      } catch (err) {
        this.stop();
        onError(err as Error);
      }
    }, pollMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.fd >= 0) libc.close(this.fd);
    this.fd = -1;
  }

  private drain(onForeign: (t: ForeignTransaction) => void): void {
    for (;;) {
      let n: number;
      try {
        n = libc.recv(this.fd, this.buf, libc.MSG_DONTWAIT);
      } catch (err) {
        const errno = (err as libc.SyscallError).errno;
        if (errno === EINTR) continue;
        if (errno === ENOBUFS) {
          this.pending = [];
          onForeign({ pid: 0, process: '', changes: [], overflow: true });
          continue;
        }
        if (errno === EAGAIN) return;
        throw err;
      }
      for (const e of parseNftEvents(this.buf, n)) {
        if (e.kind === 'change') {
          this.pending.push(e);
          continue;
        }
        const changes = this.pending;
        this.pending = [];
        if (!isOwnThread(e.pid)) onForeign({ pid: e.pid, process: e.process, changes, overflow: false });
      }
    }
  }
}

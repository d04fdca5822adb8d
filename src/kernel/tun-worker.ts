/**
 * The udp backend's packet pump, a thread of its own (Flannel's proxy, in TypeScript): it waits in
 * poll(2) on the TUN device, the UDP socket and an eventfd, and
 * - reads IP packets from the TUN device, finds each destination's peer and sends each packet in
 *   one datagram to the peer's underlay address (a batch per sendmmsg);
 * - receives datagrams (a batch per recvmmsg) and writes the packets they carry to the TUN device,
 *   if the sender is a known peer and the inner source lies in that peer's subnet;
 * - on the eventfd, takes commands from the handle (peers, repair, stop) off its MessagePort
 *   synchronously, so the loop never returns to an event loop and never sleeps in read(2).
 * poll's timeout bounds how long a stop can wait even if a wake-up were lost.
 */
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import * as libc from './libc.js';
import { PeerTable, type DropReason } from './tun-peers.js';
import { closeTun, deleteTun, openTun, repairTun } from './tun-device.js';
import { Batch, EAGAIN, EINTR, MSG_TRUNC, POLLIN, errno, poll, read, recvmmsg, sendmmsg, sockaddrIn, write } from './tun-io.js';
import { COUNTERS, counterIndex, type PumpCommand, type PumpHello, type PumpReply, type PumpStart } from './tun-protocol.js';

const POLL_TIMEOUT_MS = 1000;
const SOCKET_BUFFER = 4 << 20;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
// Room for any IPv4 packet: the TUN device's MTU bounds reads, but a peer's datagram could be larger.
const SLOT = 65536;

const start = workerData as PumpStart;
const port = start.port;
const shared = new Float64Array(start.counters);
const counts = new Float64Array(COUNTERS.length);
const drop = (reason: DropReason) => counts[counterIndex[reason]]!++;

const peers = new PeerTable(start.local);
const destinations = new Map<number, Buffer>();
let tunFd = -1;
let udpFd = -1;
// The handle's: it outlives this thread, so a late wake-up never writes to a reused number.
const wakeFd = start.wakeFd;

function setUp(): { created: boolean } {
  const tun = openTun(start.device);
  tunFd = tun.fd;
  try {
    udpFd = libc.socket(libc.AF_INET, libc.SOCK_DGRAM | libc.SOCK_CLOEXEC, 0);
    libc.setsockoptInt(udpFd, libc.SOL_SOCKET, SO_SNDBUF, SOCKET_BUFFER);
    libc.setsockoptInt(udpFd, libc.SOL_SOCKET, SO_RCVBUF, SOCKET_BUFFER);
    libc.bind(udpFd, sockaddrIn(start.bind.ip, start.bind.port), `bind UDP port ${start.bind.port}`);
  } catch (err) {
    tearDown(tun.created);
    throw err;
  }
  return { created: tun.created };
}

function tearDown(remove: boolean): void {
  if (udpFd >= 0) libc.close(udpFd);
  if (tunFd >= 0) closeTun(tunFd, remove);
  if (remove) deleteTun(start.device);
  udpFd = tunFd = -1;
}

const tx = new Batch(start.batch, SLOT);
const rx = new Batch(start.batch, SLOT);

/** TUN → UDP: up to one batch of packets, sent with one sendmmsg (more if it sends part). */
function pumpTun(): void {
  let n = 0;
  while (n < tx.count) {
    const slot = tx.slots[n]!;
    const len = read(tunFd, slot, SLOT);
    if (len < 0) {
      const e = errno();
      // A device deleted under the descriptor: stop polling it; repair (the reconciler) reopens it.
      if (e !== EAGAIN && e !== EINTR) pollFds.writeInt32LE(-1, 0);
      break;
    }
    const peer = peers.outbound(slot, len);
    if (typeof peer === 'string') {
      drop(peer);
      continue;
    }
    tx.setLength(n, len);
    tx.setDestination(n, destinations.get(peer.publicIp)!);
    counts[counterIndex.txBytes]! += len;
    n++;
  }
  let sent = 0;
  while (sent < n) {
    const r = sendmmsg(udpFd, tx.from(sent), n - sent);
    if (r > 0) {
      sent += r;
      continue;
    }
    if (errno() === EINTR) continue;
    // The first unsent message failed (no route, a firewall's EPERM): drop it, go on with the rest.
    counts[counterIndex.sendErrors]!++;
    sent++;
  }
  counts[counterIndex.txPackets]! += n;
}

/** UDP → TUN: up to one batch of datagrams from one recvmmsg, each packet one write. */
function pumpUdp(): void {
  const n = recvmmsg(udpFd, rx.msgs, rx.count);
  if (n <= 0) return;
  for (let i = 0; i < n; i++) {
    const { len, flags, sender } = rx.received(i);
    const slot = rx.slots[i]!;
    const refused = flags & MSG_TRUNC ? 'malformed' : peers.inbound(sender, slot, len);
    if (refused) {
      drop(refused);
      continue;
    }
    if (write(tunFd, slot, len) < 0) {
      counts[counterIndex.writeErrors]!++;
      continue;
    }
    counts[counterIndex.rxPackets]!++;
    counts[counterIndex.rxBytes]! += len;
  }
  rx.resetNames(n);
}

/** Applies the commands waiting on the port; false once told to stop. */
function takeCommands(): boolean {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const cmd = m.message as PumpCommand;
    let reply: PumpReply;
    try {
      if (cmd.op === 'stop') {
        tearDown(cmd.remove);
        publish();
        port.postMessage({ id: cmd.id, ok: true, value: null } satisfies PumpReply);
        return false;
      }
      reply = { id: cmd.id, ok: true, value: apply(cmd) };
    } catch (err) {
      const e = err as Error & { errno?: number };
      reply = { id: cmd.id, ok: false, error: { message: e.message, errno: e.errno } };
    }
    port.postMessage(reply);
  }
  return true;
}

function apply(cmd: Exclude<PumpCommand, { op: 'stop' }>): unknown {
  switch (cmd.op) {
    case 'setPeer':
      peers.set({ subnet: cmd.subnet, publicIp: cmd.publicIp });
      if (!destinations.has(cmd.publicIp)) destinations.set(cmd.publicIp, sockaddrIn(cmd.publicIp, start.bind.port));
      return null;
    case 'deletePeer':
      return peers.delete(cmd.subnet);
    case 'repair':
      // undefined: the device is gone; the handle starts a new pump.
      return pollFds.readInt32LE(0) < 0 ? undefined : repairTun(start.device);
  }
}

function publish(): void {
  shared.set(counts);
}

const pollFds = Buffer.alloc(24);

function loop(): void {
  pollFds.writeInt32LE(tunFd, 0);
  pollFds.writeInt32LE(udpFd, 8);
  pollFds.writeInt32LE(wakeFd, 16);
  for (const at of [4, 12, 20]) pollFds.writeInt16LE(POLLIN, at);
  const wake = Buffer.alloc(8);
  for (;;) {
    publish();
    const ready = poll(pollFds, 3, POLL_TIMEOUT_MS);
    if (ready < 0 && errno() !== EINTR) throw new libc.SyscallError('poll', errno());
    if (ready <= 0) continue;
    if (pollFds.readInt16LE(22) !== 0) {
      read(wakeFd, wake, 8);
      if (!takeCommands()) return;
    }
    if (pollFds.readInt16LE(6) !== 0) pumpTun();
    if (pollFds.readInt16LE(14) !== 0) pumpUdp();
  }
}

let hello: PumpHello;
try {
  const { created } = setUp();
  hello = { ready: true, created };
} catch (err) {
  const e = err as Error & { errno?: number };
  hello = { ready: false, error: { message: e.message, errno: e.errno } };
}
port.postMessage(hello);
if (hello.ready) {
  try {
    loop();
  } finally {
    if (tunFd >= 0) tearDown(false);
    port.close();
  }
}

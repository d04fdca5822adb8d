/**
 * What the udp backend's handle (tun.ts) and its packet pump (tun-worker.ts) say to each other: the
 * pump's start parameters, commands and replies over a MessagePort, and the counters it publishes
 * in shared memory (read at any time without a round trip).
 */
import type { MessagePort } from 'node:worker_threads';
import { DROP_REASONS, type DropReason } from './tun-peers.js';
import type { TunDeviceSpec } from './tun-device.js';

export interface PumpStart {
  device: TunDeviceSpec;
  /** This host's subnet: every peer's has the same prefix length. */
  local: { network: number; prefix: number };
  /** The UDP socket's address (the host's underlay address) and port. */
  bind: { ip: number; port: number };
  /** Packets moved per system call at most. */
  batch: number;
  port: MessagePort;
  /** An eventfd the handle writes to after posting a command (the pump sleeps in poll, not on the port). */
  wakeFd: number;
  counters: SharedArrayBuffer;
}

export type PumpCommand =
  | { id: number; op: 'setPeer'; subnet: number; publicIp: number }
  | { id: number; op: 'deletePeer'; subnet: number }
  | { id: number; op: 'repair' }
  | { id: number; op: 'stop'; remove: boolean };

export type PumpReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { message: string; errno?: number } };

/** The pump's first message: ready, or why it could not start. */
export type PumpHello = { ready: true; created: boolean } | { ready: false; error: { message: string; errno?: number } };

export const COUNTERS = ['txPackets', 'txBytes', 'rxPackets', 'rxBytes', 'sendErrors', 'writeErrors', ...DROP_REASONS] as const;
export type CounterName = 'txPackets' | 'txBytes' | 'rxPackets' | 'rxBytes' | 'sendErrors' | 'writeErrors' | DropReason;
export type Counters = Record<CounterName, number>;

export const counterIndex = Object.fromEntries(COUNTERS.map((name, i) => [name, i])) as Record<CounterName, number>;

/**
 * Loads an eBPF program into the kernel with the bpf(2) system call (BPF_PROG_LOAD) and returns
 * its file descriptor. Kernel worker thread only (libc.ts). A program the verifier refuses fails
 * with the verifier's own explanation, loaded a second time with its log on.
 */
import koffi from 'koffi';
import * as libc from '../libc.js';
import { INSN_SIZE } from './asm.js';

const SYS_BPF: Partial<Record<NodeJS.Architecture, number>> = { x64: 321, arm64: 280 };
const BPF_PROG_LOAD = 5;
export const BPF_PROG_TYPE_SCHED_CLS = 3;
const ATTR_SIZE = 72;
const LOG_SIZE = 1 << 16;
const EPERM = 1;

/** A loaded program: close its descriptor once something (a tc filter) holds the program. */
export function loadProgram(spec: { type: number; insns: Buffer; name: string; license?: string }): number {
  const sys = SYS_BPF[process.arch];
  if (sys === undefined) throw new Error(`loading eBPF programs is not supported on ${process.arch} yet (berth knows the bpf syscall number of x64 and arm64)`);
  const license = Buffer.from(`${spec.license ?? 'GPL'}\0`);
  const attempt = (log?: Buffer) => {
    const attr = Buffer.alloc(ATTR_SIZE);
    attr.writeUInt32LE(spec.type, 0);
    attr.writeUInt32LE(spec.insns.length / INSN_SIZE, 4);
    attr.writeBigUInt64LE(BigInt(koffi.address(spec.insns)), 8);
    attr.writeBigUInt64LE(BigInt(koffi.address(license)), 16);
    if (log) {
      attr.writeUInt32LE(1, 24);
      attr.writeUInt32LE(log.length, 28);
      attr.writeBigUInt64LE(BigInt(koffi.address(log)), 32);
    }
    // prog_name: at most 15 characters of [A-Za-z0-9_.], shown by bpftool.
    Buffer.from(spec.name.slice(0, 15)).copy(attr, 48);
    return libc.syscall3(`bpf(BPF_PROG_LOAD ${spec.name})`, sys, BPF_PROG_LOAD, attr, ATTR_SIZE);
  };
  try {
    return attempt();
  } catch (err) {
    const errno = (err as libc.SyscallError).errno;
    if (errno === EPERM) throw Object.assign(new Error(`loading eBPF program ${spec.name} was refused (EPERM): berth needs CAP_BPF and CAP_NET_ADMIN (run it as root)`), { errno });
    const log = Buffer.alloc(LOG_SIZE);
    try {
      const fd = attempt(log);
      return fd; // it loaded the second time (a transient failure): keep it
    } catch {
      const text = log.toString('utf8', 0, Math.max(0, log.indexOf(0))).trim().split('\n').slice(-8).join(' | ');
      throw Object.assign(new Error(`the kernel refused eBPF program ${spec.name}: ${(err as Error).message}${text ? `; verifier: ${text}` : ''}`), { errno });
    }
  }
}

/**
 * Kernel operations of fan networks (docs/fan.md): the fan's VXLAN device, in external mode with
 * the fan's VNI in its filter and no ARP; the route for the whole overlay through it, from this
 * host's gateway address; and on its egress the eBPF program that computes, per packet, which
 * host an overlay address lives on (ebpf/fan-program.ts). Nothing per peer: that is the point.
 */
import * as nl from './netlink/codec.js';
import * as tc from './netlink/tc.js';
import * as vx from './netlink/vxlan.js';
import { EEXIST, type NetlinkSocket } from './netlink/socket.js';
import { disableIpv6, host, linkByName } from './link-steps.js';
import { fanEgressProgram, type FanProgramSpec } from './ebpf/fan-program.js';
import { BPF_PROG_TYPE_SCHED_CLS, loadProgram } from './ebpf/load.js';
import * as libc from './libc.js';

const EADDRINUSE = 98;
/** The egress classifier's priority: the fan program is the device's only one. */
const FILTER_PRIO = 1;

export interface FanDeviceSpec {
  name: string;
  /** berth's mark on the device (`berth:<owner>:network:<id>`). */
  mark: string;
  mac: string;
  vni: number;
  port: number;
  /** The underlay interface (the one holding this host's underlay address). */
  underlay: string;
  mtu: number;
  /** The overlay, routed through the device, and this host's gateway address as the route's source. */
  overlay: { network: string; prefix: number };
  source: string;
  program: FanProgramSpec;
  /**
   * The classifier's name (TCA_BPF_NAME): names the mapping and the program's version, so a
   * restore sees whether the program attached is the one wanted.
   */
  programName: string;
}

/**
 * Makes the fan device, or restores what is missing of it (its VNI, its route, its program); a
 * device it makes is deleted again if a later step fails. Returns whether it made the device.
 */
export function ensureFanDevice(spec: FanDeviceSpec): { created: boolean } {
  const sock = host();
  const underlay = linkByName(sock, spec.underlay);
  if (!underlay) throw new Error(`underlay interface ${spec.underlay} is gone: the fan cannot reach other hosts`);
  let link = linkByName(sock, spec.name);
  if (link && link.alias !== spec.mark) throw Object.assign(new Error(`link ${spec.name} exists on the host and berth did not create it`), { errno: EEXIST });
  let created = false;
  if (!link) {
    sock.transact([vx.newExternalVxlan({ name: spec.name, mac: spec.mac, port: spec.port, underlayIndex: underlay.index, mtu: spec.mtu })], [`create fan vxlan ${spec.name}`]);
    link = linkByName(sock, spec.name);
    if (!link) throw new Error(`fan device ${spec.name} vanished right after it was created`);
    created = true;
  }
  try {
    configure(sock, link.index, spec);
  } catch (err) {
    if (created) sock.transact([nl.deleteLink({ index: link.index })], [`delete half-made fan device ${spec.name}`]);
    throw err;
  }
  return { created };
}

function configure(sock: NetlinkSocket, index: number, spec: FanDeviceSpec): void {
  disableIpv6(spec.name);
  sock.transact([nl.setAlias(index, spec.mark), vx.setNoArp(index), vx.addVni(index, spec.vni)], ['mark the fan device', 'turn ARP off on it', `add VNI ${spec.vni} to its filter`]);
  try {
    sock.transact([nl.setLinkUp({ index })], [`bring ${spec.name} up`]);
  } catch (err) {
    if ((err as { errno?: number }).errno !== EADDRINUSE) throw err;
    throw Object.assign(new Error(`VNI ${spec.vni} on UDP port ${spec.port} is taken by another VXLAN device of this host (ip -d link show type vxlan): the fan cannot receive`), { errno: EADDRINUSE });
  }
  sock.transact([nl.newRoute({ dst: spec.overlay.network, prefix: spec.overlay.prefix, oifIndex: index, src: spec.source })], [`route ${spec.overlay.network}/${spec.overlay.prefix} through ${spec.name}`]);
  attachProgram(sock, index, spec);
}

/** The fan program on the device's egress, unless the one wanted is there already. */
function attachProgram(sock: NetlinkSocket, index: number, spec: FanDeviceSpec): void {
  try {
    sock.transact([tc.newClsact(index)], [`add clsact to ${spec.name}`]);
  } catch (err) {
    if ((err as { errno?: number }).errno !== EEXIST) throw err;
  }
  if (egressPrograms(sock, index).includes(spec.programName)) return;
  const fd = loadProgram({ type: BPF_PROG_TYPE_SCHED_CLS, insns: fanEgressProgram(spec.program), name: 'berth_fan' });
  try {
    sock.transact([tc.newEgressBpfFilter({ ifindex: index, fd, name: spec.programName, prio: FILTER_PRIO })], [`attach the fan program to ${spec.name}`]);
  } finally {
    // The classifier holds the program now (or failed to): berth needs no descriptor of its own.
    libc.close(fd);
  }
}

function egressPrograms(sock: NetlinkSocket, index: number): string[] {
  return sock
    .dump(tc.dumpEgressFilters(index), 'list egress filters')
    .map((m) => tc.parseFilter(m.body))
    .filter((f) => f.kind === 'bpf' && f.name !== undefined)
    .map((f) => f.name!);
}

/** Deletes the fan device if berth made it (its route and program go with it). */
export function deleteFanDevice(spec: { name: string; mark: string }): 'deleted' | 'absent' | 'foreign' {
  const sock = host();
  const link = linkByName(sock, spec.name);
  if (!link) return 'absent';
  if (link.alias !== spec.mark) return 'foreign';
  sock.transact([nl.deleteLink({ index: link.index })], [`delete fan device ${spec.name}`]);
  return 'deleted';
}

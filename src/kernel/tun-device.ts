/**
 * The udp backend's TUN device: opened through /dev/net/tun (TUNSETIFF, IFF_TUN | IFF_NO_PI: bare
 * IPv4 packets, no header), made persistent so that a daemon stopping without `remove` leaves the
 * device and its route behind (traffic to other hosts' subnets is then dropped at the device, not
 * sent unencapsulated along the default route), then marked, sized, addressed and routed over
 * berth's netlink. Runs on the packet pump's thread (tun-worker.ts), in the daemon's namespace.
 */
import * as fs from 'node:fs';
import * as nl from './netlink/codec.js';
import { EEXIST, ENOENT, NetlinkSocket } from './netlink/socket.js';
import { addAddress, disableIpv6, linkByName } from './link-steps.js';
import { setLinkMtu } from './netlink/vxlan.js';
import { ioctl } from './tun-io.js';

const TUNSETIFF = 0x400454ca;
const TUNSETPERSIST = 0x400454cb;
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
const IFREQ = 40;

export interface TunDeviceSpec {
  name: string;
  /** berth's mark (`berth:<owner>:tunnel:udp`): an existing device without it is never taken over. */
  mark: string;
  mtu: number;
  /** The device's own address (a /32), the source of packets the host itself sends to other subnets. */
  address: string;
  /** The route through the device: the whole cluster CIDR. */
  route: { dst: string; prefix: number };
}

/**
 * Opens (or re-attaches to) the device and configures it. Returns its file descriptor, non-blocking;
 * if configuring fails, a device this call made is removed again.
 */
export function openTun(spec: TunDeviceSpec): { fd: number; created: boolean } {
  const sock = new NetlinkSocket();
  try {
    const existing = linkByName(sock, spec.name);
    if (existing && (existing.alias !== spec.mark || existing.kind !== 'tun')) {
      throw Object.assign(new Error(`link ${spec.name} exists on the host and berth did not create it: delete it or free the name`), { errno: EEXIST });
    }
    let fd: number;
    try {
      fd = fs.openSync('/dev/net/tun', fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    } catch (err) {
      throw Object.assign(new Error(`cannot open /dev/net/tun (${(err as Error).message}): the udp backend needs the tun module (modprobe tun) and the device node`), { errno: ENOENT });
    }
    const ifr = Buffer.alloc(IFREQ);
    ifr.write(spec.name, 0, 15, 'ascii');
    ifr.writeUInt16LE(IFF_TUN | IFF_NO_PI, 16);
    try {
      ioctl(fd, TUNSETIFF, ifr, `TUNSETIFF ${spec.name}`);
      ioctl(fd, TUNSETPERSIST, 1, `TUNSETPERSIST ${spec.name}`);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    try {
      configure(sock, spec);
    } catch (err) {
      if (!existing) closeTun(fd, true);
      else fs.closeSync(fd);
      throw err;
    }
    return { fd, created: !existing };
  } finally {
    sock.close();
  }
}

/** Closes the device's descriptor; with `remove`, the device (and its address and route) goes too. */
export function closeTun(fd: number, remove: boolean): void {
  try {
    // Fails only on a descriptor whose device was deleted under it: nothing is left to remove.
    if (remove) ioctl(fd, TUNSETPERSIST, 0, 'TUNSETPERSIST off');
  } catch {
    /* already gone */
  } finally {
    fs.closeSync(fd);
  }
}

/** Deletes the device by name if it is still there and berth's (a descriptor of another process may hold it). */
export function deleteTun(spec: { name: string; mark: string }): 'deleted' | 'absent' | 'foreign' {
  const sock = new NetlinkSocket();
  try {
    const link = linkByName(sock, spec.name);
    if (!link) return 'absent';
    if (link.alias !== spec.mark) return 'foreign';
    sock.transact([nl.deleteLink({ index: link.index })], [`delete ${spec.name}`]);
    return 'deleted';
  } finally {
    sock.close();
  }
}

/**
 * Restores what someone removed from the device (it must still exist): the mark, MTU, up state,
 * address and route. Returns what it restored, or undefined if the device is gone.
 */
export function repairTun(spec: TunDeviceSpec): string[] | undefined {
  const sock = new NetlinkSocket();
  try {
    const link = linkByName(sock, spec.name);
    if (!link || link.alias !== spec.mark) return undefined;
    const repaired: string[] = [];
    if (link.mtu !== spec.mtu) repaired.push(`MTU ${spec.mtu} on ${spec.name}`);
    if (!link.up) repaired.push(`${spec.name} up`);
    const hasAddress = sock
      .dump(nl.dumpAddresses(), 'list addresses')
      .map((m) => nl.parseAddress(m.body))
      .some((a) => a?.index === link.index && a.address === spec.address);
    if (!hasAddress) repaired.push(`address ${spec.address}/32 on ${spec.name}`);
    if (!hasRoute(sock, link.index, spec.route)) repaired.push(`route ${spec.route.dst}/${spec.route.prefix} dev ${spec.name}`);
    if (repaired.length > 0) configure(sock, spec);
    return repaired;
  } finally {
    sock.close();
  }
}

function hasRoute(sock: NetlinkSocket, index: number, route: { dst: string; prefix: number }): boolean {
  return sock
    .dump(nl.dumpRoutes(), 'list routes')
    .map((m) => nl.parseRoute(m.body))
    .some((r) => r?.table === 254 && r.oif === index && r.dst === route.dst && r.prefix === route.prefix);
}

/** Idempotent: every step may find its result already there. */
function configure(sock: NetlinkSocket, spec: TunDeviceSpec): void {
  const link = linkByName(sock, spec.name);
  if (!link) throw Object.assign(new Error(`TUN device ${spec.name} vanished right after it was opened`), { errno: ENOENT });
  // The backend carries IPv4 only; an IPv6 link-local address would only invite packets it drops.
  disableIpv6(spec.name);
  sock.transact(
    [nl.setAlias(link.index, spec.mark), setLinkMtu(link.index, spec.mtu), nl.setLinkUp({ index: link.index })],
    [`mark ${spec.name}`, `set its MTU to ${spec.mtu}`, `bring ${spec.name} up`],
  );
  addAddress(sock, link.index, spec.address, 32, spec.name);
  sock.transact([nl.newRoute({ dst: spec.route.dst, prefix: spec.route.prefix, oifIndex: link.index })], [`route ${spec.route.dst}/${spec.route.prefix} dev ${spec.name}`]);
}

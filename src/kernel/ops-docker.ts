/**
 * Docker's remote network driver protocol wants the interface in dockerd's namespace, under a name
 * it then moves into the container's sandbox itself (the sandbox's namespace does not exist yet at
 * Join). berth plumbs the endpoint into a staging namespace of its own with its driver's usual
 * join, then hands the interface over: moved to the host namespace and renamed in one message.
 * Moving drops its addresses and routes (dockerd sets its own); the MAC and the host side stay.
 */
import * as fs from 'node:fs';
import * as nl from './netlink/codec.js';
import { NetlinkSocket } from './netlink/socket.js';
import { withNetns } from './netns.js';
import { linkByName } from './link-steps.js';

export interface HandOverSpec {
  /** The staging namespace the driver plumbed the interface into. */
  stagingPath: string;
  ifname: string;
  /** The namespace dockerd runs in (the daemon's own), and the name the interface gets there. */
  hostNetns: string;
  name: string;
}

export function handOver(spec: HandOverSpec): void {
  const hostFd = fs.openSync(spec.hostNetns, 'r');
  try {
    withNetns(spec.stagingPath, () => {
      const sock = new NetlinkSocket();
      try {
        const link = linkByName(sock, spec.ifname);
        if (!link) throw new Error(`interface ${spec.ifname} is missing from the staging namespace ${spec.stagingPath}`);
        sock.transact([nl.moveLink(link.index, hostFd, spec.name)], [`hand ${spec.ifname} over to dockerd as ${spec.name}`]);
      } finally {
        sock.close();
      }
    });
  } finally {
    fs.closeSync(hostFd);
  }
}

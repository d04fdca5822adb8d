/**
 * Placeholder for the udp backend (a TUN device and encapsulation in the daemon), written in its
 * own branch: this file is replaced by that one when the branches merge.
 */
import { BerthError } from '../../errors.js';
import type { HostSubnetBackend } from './backend.js';

export function createUdpBackend(): HostSubnetBackend {
  throw new BerthError('invalid', 'udp backend not built yet: use --backend vxlan or host-gw');
}

/**
 * The host-subnet backends by name (`--backend`): which one carries traffic to other hosts' subnets.
 */
import { invalid } from '../../errors.js';
import type { Kernel } from '../../kernel/kernel.js';
import type { Logger } from '../../log.js';
import type { BackendType, HostSubnetBackend } from './backend.js';
import { BACKEND_TYPES } from './flannel-keys.js';
import { createHostGwBackend } from './host-gw-backend.js';
import { createUdpBackend } from './udp-backend.js';
import { createVxlanBackend } from './vxlan-backend.js';

export interface BackendDeps {
  kernel: Kernel;
  log: Logger;
}

/** Checks a `--backend` value; the error names the ones there are. */
export function parseBackendType(text: string): BackendType {
  if (!(BACKEND_TYPES as readonly string[]).includes(text)) throw invalid(`--backend "${text}" is not a host-subnet backend: use one of ${BACKEND_TYPES.join(', ')}`);
  return text as BackendType;
}

export function backendFor(type: BackendType, deps: BackendDeps): HostSubnetBackend {
  switch (type) {
    case 'vxlan':
      return createVxlanBackend(deps);
    case 'host-gw':
      return createHostGwBackend(deps);
    case 'udp':
      return createUdpBackend();
  }
}

/** GET /berth/topology: what the topology page draws (issue 15). */
import type { Engine } from '../engine/engine.js';
import type { Route } from './server.js';

export function topologyRoutes(_engine: Engine): Route[] {
  return [];
}

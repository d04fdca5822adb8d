/** GET /events (Docker's event stream) and berth's own filters: issue 15's events. */
import type { Engine } from '../engine/engine.js';
import type { Route } from './server.js';

export function eventRoutes(_engine: Engine): Route[] {
  return [];
}

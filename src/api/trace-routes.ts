/** POST /berth/trace: the path tracer (issue 15). */
import type { Engine } from '../engine/engine.js';
import type { Route } from './server.js';

export function traceRoutes(_engine: Engine): Route[] {
  return [];
}

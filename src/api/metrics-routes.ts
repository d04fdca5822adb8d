/** GET /metrics: Prometheus metrics (issue 15). */
import type { Engine } from '../engine/engine.js';
import type { Route } from './server.js';

export function metricsRoutes(_engine: Engine): Route[] {
  return [];
}

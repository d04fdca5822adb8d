/** GET /metrics: Prometheus metrics (issue 15), in Prometheus' text format, on the API socket. */
import type { Engine } from '../engine/engine.js';
import { metricsOf } from '../metrics/engine-metrics.js';
import type { Route } from './server.js';

export function metricsRoutes(engine: Engine): Route[] {
  // The daemon makes the engine's metrics as soon as the engine is open (they count from then on);
  // a server built around a stand-in engine (tests of the socket alone) never touches them.
  return [
    [
      'GET',
      /^\/metrics$/,
      async () => {
        const metrics = metricsOf(engine);
        const text = await metrics.text();
        // A streamed reply keeps its own Content-Type (a string body would be sent as text/plain).
        return { status: 200, headers: { 'Content-Type': metrics.contentType }, stream: (res) => res.end(text) };
      },
    ],
  ];
}

/**
 * What the topology page draws (issue 15): `GET /berth/topology`, the network as a graph's worth of
 * data (src/engine/topology.ts), and `GET /berth/topology/stream`, a server-sent-events stream
 * with one message per engine event, so the page fetches the topology again when it changes.
 */
import type * as http from 'node:http';
import type { Engine } from '../engine/engine.js';
import type { BerthEvent } from '../engine/events.js';
import { buildTopology } from '../engine/topology.js';
import { ok, type Route } from './server.js';

/** A comment line now and then: a client gone without a FIN is noticed when the write fails. */
const HEARTBEAT_MS = 15_000;
/** How soon an EventSource reconnects after the stream ends (a daemon restart). */
const RETRY_MS = 1000;

/** The event in SSE framing: one `data:` line of JSON (JSON never holds a raw newline). */
export const sseMessage = (e: BerthEvent) => `data: ${JSON.stringify(e)}\n\n`;

function streamEvents(engine: Engine, res: http.ServerResponse): void {
  res.write(`retry: ${RETRY_MS}\n: berth topology events\n\n`);
  const unsubscribe = engine.ctx.events.onEvent((e) => res.write(sseMessage(e)));
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS).unref();
  const stop = () => {
    unsubscribe();
    clearInterval(heartbeat);
  };
  res.once('close', stop);
  res.once('error', stop);
}

export function topologyRoutes(engine: Engine): Route[] {
  return [
    ['GET', /^\/berth\/topology$/, async () => ok(await buildTopology(engine.ctx))],
    [
      'GET',
      /^\/berth\/topology\/stream$/,
      () => ({
        status: 200,
        headers: { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' },
        stream: (res) => streamEvents(engine, res),
      }),
    ],
  ];
}

/** POST /berth/trace: the path tracer (issue 15). Body {from, to, port?, protocol?}; answers the TraceReport. */
import { z } from 'zod';
import { invalid } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { trace } from '../trace/tracer.js';
import { parseTraceRequest } from '../trace/target.js';
import { ok, type Route } from './server.js';

const TraceBody = z.object({
  from: z.string({ required_error: 'from is required: a container name or id, an IP address, or host' }),
  to: z.string({ required_error: 'to is required: a container name or id, an IP address, or host' }),
  port: z.number().int().optional(),
  protocol: z.enum(['tcp', 'udp', 'icmp']).optional(),
});

export function traceRoutes(engine: Engine): Route[] {
  return [
    [
      'POST',
      /^\/berth\/trace$/,
      async ({ body }) => {
        const parsed = TraceBody.safeParse(body ?? {});
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          throw invalid(`invalid trace request: ${issue.path.join('.') || 'body'}: ${issue.message}`);
        }
        return ok(await trace(engine.ctx, parseTraceRequest(parsed.data)));
      },
    ],
  ];
}

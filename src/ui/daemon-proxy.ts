/**
 * Forwards one of the page's API calls to the daemon's unix socket and streams the answer back
 * as it comes (the topology event stream never ends). Only the calls the UI server allows get
 * here (ui-server.ts): this is not an open proxy.
 */
import * as http from 'node:http';

export interface Forward {
  method: 'GET' | 'POST';
  /** The daemon's path, already validated and encoded. */
  path: string;
  body?: Buffer;
}

export function forwardToDaemon(socketPath: string, call: Forward, res: http.ServerResponse): void {
  const upstream = http.request(
    {
      socketPath,
      method: call.method,
      path: call.path,
      headers: call.body ? { 'Content-Type': 'application/json', 'Content-Length': call.body.length } : {},
    },
    (answer) => {
      const headers: http.OutgoingHttpHeaders = { 'Cache-Control': 'no-cache' };
      for (const h of ['content-type', 'content-length'] as const) if (answer.headers[h]) headers[h] = answer.headers[h];
      res.writeHead(answer.statusCode ?? 502, headers);
      // An event stream: every message reaches the browser at once, not when a buffer fills.
      if (String(answer.headers['content-type']).startsWith('text/event-stream')) res.flushHeaders();
      answer.pipe(res);
    },
  );
  // The browser went away (a closed tab, a reloaded page): let go of the daemon's stream too.
  res.once('close', () => upstream.destroy());
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const unreachable = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
    const message = unreachable
      ? `cannot reach the berth daemon at unix://${socketPath}: is it running? Start it with \`berth daemon\`, or point --host / BERTH_HOST at its socket`
      : `the daemon call failed: ${err.message}`;
    res.writeHead(502, { 'Content-Type': 'application/json' }).end(`${JSON.stringify({ message })}\n`);
  });
  upstream.end(call.body);
}

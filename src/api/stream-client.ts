/**
 * Reads a long-lived, newline-delimited answer of the daemon (`GET /events`) line by line, as it
 * comes. ApiClient.request waits for the whole body, which for a stream never ends.
 */
import * as http from 'node:http';
import { BerthError, daemonError } from '../errors.js';
import type { ApiClient } from './client.js';

export interface LineStream {
  /** Resolves once the daemon has answered with a success status: from then on, nothing it sends is missed. */
  ready: Promise<void>;
  /** Settles when the daemon ends the answer (resolves) or on an error status or a lost connection (rejects). */
  done: Promise<void>;
  /** Stops reading and closes the connection; `done` then resolves. */
  close(): void;
}

/** Streams `path`'s answer to `onLine`, one line (without its newline) per call, empty lines skipped. */
export function streamLines(client: ApiClient, path: string, onLine: (line: string) => void): LineStream {
  let closing = false;
  let req: http.ClientRequest | undefined;
  let answered: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (answered = resolve));
  const done = new Promise<void>((resolve, reject) => {
    req = http.get({ socketPath: client.socketPath, path, agent: false }, (res) => {
      const status = res.statusCode ?? 500;
      res.setEncoding('utf8');
      let pending = '';
      if (status < 400) answered();
      else {
        res.on('data', (chunk: string) => (pending += chunk));
        res.on('end', () => {
          let message = pending.trim() || `HTTP ${status}`;
          try {
            message = (JSON.parse(pending) as { message?: string }).message ?? message;
          } catch {
            // Not JSON: the text itself is the message.
          }
          reject(daemonError(status, message));
        });
        return;
      }
      res.on('data', (chunk: string) => {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (line) onLine(line);
        }
      });
      res.on('end', () => {
        if (pending.trim()) onLine(pending.trim());
        resolve();
      });
      // A stream cut before its end (the daemon stopped) is an error; its 'close' follows.
      res.on('error', () => undefined);
      res.on('close', () => {
        if (closing || res.complete) resolve();
        else reject(new BerthError('unavailable', 'the daemon closed the stream before its end: did it stop?'));
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (closing) return resolve();
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new BerthError('unavailable', `cannot reach the berth daemon at unix://${client.socketPath}: is it running? Start it with \`berth daemon\`, or point BERTH_HOST / --host at its socket`));
      } else reject(new BerthError('unavailable', `lost the connection to the daemon at unix://${client.socketPath}: ${err.message}`));
    });
  });
  // A stream that fails before answering never becomes ready: `done` carries the error.
  return {
    ready: Promise.race([ready, done]),
    done,
    close() {
      closing = true;
      req?.destroy();
    },
  };
}

/** Reading request bodies with a size cap, for both the Docker-compatible API and the CNI route. */
import type { IncomingMessage } from 'node:http';
import { invalid } from '../errors.js';

export const MAX_BODY = 1 << 20;

/** The whole body as text; a body over MAX_BODY is refused (after draining it). */
export function readText(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) reject(invalid(`request body larger than ${MAX_BODY} bytes`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

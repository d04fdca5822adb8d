/**
 * The daemon side of the CNI plugin: the shim (dist/bin/berth-cni, compiled from
 * src/cni/shim/berth-cni.c at build; bin/berth-cni, its Perl twin, where there is no C compiler)
 * forwards the runtime's CNI_* variables (as headers) and the plugin config (as the body) to
 * POST /cni, and prints what this answers. A CNI error comes back as HTTP 400 with the spec's error
 * JSON, so the shim just exits 1 and prints it.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { readText } from './body.js';
import type { Engine } from '../engine/engine.js';
import { CniCode, CniError, buildResult, parseConfig, parseEnv, versionResult } from '../cni/protocol.js';

export interface CniReply {
  status: number;
  body?: unknown;
}

const header = (h: IncomingHttpHeaders, name: string) => {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};

export async function handleCni(engine: Engine, headers: IncomingHttpHeaders, rawBody: string): Promise<CniReply> {
  let version = '1.1.0';
  try {
    const env = parseEnv({
      CNI_COMMAND: header(headers, 'cni-command'),
      CNI_CONTAINERID: header(headers, 'cni-containerid'),
      CNI_NETNS: header(headers, 'cni-netns'),
      CNI_IFNAME: header(headers, 'cni-ifname'),
      CNI_ARGS: header(headers, 'cni-args'),
    });
    if (env.command === 'VERSION') return { status: 200, body: versionResult(version) };
    const config = parseConfig(rawBody);
    version = config.cniVersion;
    switch (env.command) {
      case 'ADD': {
        const attachment = await engine.cniAdd(env, config);
        return { status: 200, body: buildResult(version, attachment, config.prevResult) };
      }
      case 'DEL':
        await engine.cniDel(env);
        return { status: 204 };
      case 'CHECK':
        await engine.cniCheck(env, config);
        return { status: 204 };
      case 'GC':
        await engine.cniGc(config);
        return { status: 204 };
      case 'STATUS':
        engine.cniStatus(config);
        return { status: 204 };
    }
  } catch (err) {
    const cniErr = err instanceof CniError ? err : new CniError(CniCode.ioFailure, (err as Error).message);
    return { status: 400, body: cniErr.toJson(version) };
  }
}

/** Reads the request, answers it, and never lets an error escape into the server. */
export function serveCni(engine: Engine, req: IncomingMessage, res: ServerResponse, log: Logger): void {
  readText(req)
    .catch(() => '')
    .then((text) => handleCni(engine, req.headers, text))
    .then((reply) => {
      const body = reply.body === undefined ? '' : `${JSON.stringify(reply.body)}\n`;
      res.writeHead(reply.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
    })
    .catch((err) => {
      log.error('cni request failed', { error: String(err) });
      res.destroy();
    });
}

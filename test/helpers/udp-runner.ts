/**
 * Runs the udp backend on its own in a sandbox host's namespace (started with nsenter by
 * test/integration/cluster/udp-backend.test.ts), as the daemon would: start, then peers. It reads
 * one command a line on stdin and answers one JSON line on stdout:
 *   {"op":"counters"} | {"op":"addPeer","peer":{…}} | {"op":"removePeer","peer":{…}}
 *   {"op":"repair","peers":[…]} | {"op":"stop","remove":true}
 * The first line out is {"ready":true} or {"error":"…"}. After stop it exits with code 0; a closed
 * stdin stops it too (removing the device), so a test that dies leaves nothing behind.
 */
import * as readline from 'node:readline';
import { createUdpBackend } from '../../src/cluster/host-subnets/udp-backend.js';
import type { LocalHost, PeerLease } from '../../src/cluster/host-subnets/backend.js';

const config = JSON.parse(process.argv[2] ?? '{}') as { local: LocalHost; peers: PeerLease[] };
const out = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
const backend = createUdpBackend();

try {
  await backend.start(config.local);
  for (const peer of config.peers) await backend.addPeer(peer);
  out({ ready: true });
} catch (err) {
  out({ error: (err as Error).message });
  await backend.stop({ remove: true });
  process.exit(1);
}

let stopping = false;
const stop = async (remove: boolean) => {
  if (stopping) return;
  stopping = true;
  await backend.stop({ remove });
  out({ stopped: true });
  rl.close();
};

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  void (async () => {
    const cmd = JSON.parse(line) as { op: string; peer?: PeerLease; peers?: PeerLease[]; remove?: boolean };
    try {
      if (cmd.op === 'counters') out(backend.counters());
      else if (cmd.op === 'addPeer') out({ ok: await backend.addPeer(cmd.peer!) });
      else if (cmd.op === 'removePeer') out({ ok: await backend.removePeer(cmd.peer!) });
      else if (cmd.op === 'repair') out({ repaired: await backend.repair(cmd.peers ?? []) });
      else if (cmd.op === 'stop') await stop(cmd.remove ?? true);
      else out({ error: `unknown op ${cmd.op}` });
    } catch (err) {
      out({ error: (err as Error).message });
    }
  })();
});
rl.on('close', () => void stop(true));

/**
 * WireGuard's cross-platform configuration protocol (UAPI, wireguard.com/xplatform): line-based
 * `key=value` over the Unix socket a userspace implementation (wireguard-go) serves at
 * /var/run/wireguard/<ifname>.sock. One `set` carries the whole change (keys, port, every peer),
 * so berth reconfigures the device with one write, not one process per change.
 */
import * as net from 'node:net';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';

export const UAPI_DIR = '/var/run/wireguard';
/** Outer IPv4 20 + UDP 8 + WireGuard header 16 + tag 16. */
export const WIREGUARD_OVERHEAD_IPV4 = 60;
export const WIREGUARD_PORT = 51820;

export interface KeyPair {
  /** Base64, as `wg` prints them. */
  privateKey: string;
  publicKey: string;
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const d = privateKey.export({ format: 'jwk' }).d!;
  const x = publicKey.export({ format: 'jwk' }).x!;
  return { privateKey: Buffer.from(d, 'base64url').toString('base64'), publicKey: Buffer.from(x, 'base64url').toString('base64') };
}

/** The public key of a private one (checks a key read from disk). */
export function publicKeyOf(privateKey: string): string {
  const d = Buffer.from(privateKey, 'base64');
  if (d.length !== 32) throw new Error('a WireGuard private key is 32 bytes');
  // PKCS#8 wrapping of a raw X25519 key (RFC 8410): a fixed 16-byte prefix.
  const der = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), d]);
  const pub = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' }).x!;
  return Buffer.from(pub, 'base64url').toString('base64');
}

const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');

export interface Peer {
  publicKey: string;
  endpoint: string;
  port: number;
  allowedIps: string[];
}

/** What a device runs now, from a `get=1` answer (keys in hex, as UAPI speaks them). */
export interface DeviceConfig {
  privateKey?: string;
  listenPort?: number;
  peers: Map<string, { endpoint?: string; allowedIps: string[] }>;
}

export function parseGet(text: string): DeviceConfig {
  const cfg: DeviceConfig = { peers: new Map() };
  let peer: { endpoint?: string; allowedIps: string[] } | undefined;
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'private_key') cfg.privateKey = value;
    else if (key === 'listen_port') cfg.listenPort = Number(value);
    else if (key === 'public_key') cfg.peers.set(value, (peer = { allowedIps: [] }));
    else if (key === 'endpoint' && peer) peer.endpoint = value;
    else if (key === 'allowed_ip' && peer) peer.allowedIps.push(value);
  }
  return cfg;
}

/**
 * The `set` that turns `current` into the wanted configuration, touching only what differs: a
 * peer set again from scratch (or a private key or port written again) drops its session, and
 * the side that did not restart keeps sending on the old one until it rekeys, minutes later.
 * Undefined when nothing differs.
 */
export function setMessage(want: { privateKey: string; listenPort: number; peers: Peer[] }, current: DeviceConfig = { peers: new Map() }): string | undefined {
  const lines: string[] = [];
  if (current.privateKey !== hex(want.privateKey)) lines.push(`private_key=${hex(want.privateKey)}`);
  if (current.listenPort !== want.listenPort) lines.push(`listen_port=${want.listenPort}`);
  const wanted = new Set(want.peers.map((p) => hex(p.publicKey)));
  for (const key of current.peers.keys()) if (!wanted.has(key)) lines.push(`public_key=${key}`, 'remove=true');
  for (const p of want.peers) {
    const have = current.peers.get(hex(p.publicKey));
    const endpoint = `${p.endpoint}:${p.port}`;
    if (have && have.endpoint === endpoint && [...have.allowedIps].sort().join() === [...p.allowedIps].sort().join()) continue;
    lines.push(`public_key=${hex(p.publicKey)}`, `endpoint=${endpoint}`, 'replace_allowed_ips=true', ...p.allowedIps.map((ip) => `allowed_ip=${ip}`), 'persistent_keepalive_interval=25');
  }
  return lines.length === 0 ? undefined : `set=1\n${lines.join('\n')}\n\n`;
}

/** Sends one request and returns the answer's text; throws on a non-zero errno. */
export function uapi(socketPath: string, message: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let text = '';
    const timer = setTimeout(() => sock.destroy(new Error(`WireGuard's UAPI socket ${socketPath} did not answer within ${timeoutMs} ms`)), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(message));
    sock.on('data', (d: string) => {
      text += d;
      if (!text.endsWith('\n\n')) return;
      clearTimeout(timer);
      sock.end();
      const errno = Number(/^errno=(\d+)$/m.exec(text)?.[1] ?? 0);
      if (errno !== 0) reject(new Error(`WireGuard refused the configuration (errno ${errno})`));
      else resolve(text);
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

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

/** The whole configuration in one `set` (replace_peers: peers not listed are removed). */
export function setMessage(cfg: { privateKey: string; listenPort: number; peers: Peer[] }): string {
  const lines = ['set=1', `private_key=${hex(cfg.privateKey)}`, `listen_port=${cfg.listenPort}`, 'replace_peers=true'];
  for (const p of cfg.peers) {
    lines.push(`public_key=${hex(p.publicKey)}`, `endpoint=${p.endpoint}:${p.port}`, 'replace_allowed_ips=true', ...p.allowedIps.map((ip) => `allowed_ip=${ip}`), 'persistent_keepalive_interval=25');
  }
  return `${lines.join('\n')}\n\n`;
}

/** Sends one request and returns the answer's `key=value` lines; throws on a non-zero errno. */
export function uapi(socketPath: string, message: string, timeoutMs = 2000): Promise<Map<string, string[]>> {
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
      const answer = new Map<string, string[]>();
      for (const line of text.trim().split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) (answer.get(line.slice(0, eq)) ?? answer.set(line.slice(0, eq), []).get(line.slice(0, eq))!).push(line.slice(eq + 1));
      }
      const errno = Number(answer.get('errno')?.[0] ?? 0);
      if (errno !== 0) reject(new Error(`WireGuard refused the configuration (errno ${errno})`));
      else resolve(answer);
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

import { BUSYBOX, must, type Peer, type Sandbox } from './sandbox.js';

/** The EUI-64 link-local address the kernel gives an interface with this MAC (addr_gen_mode 0). */
export function linkLocalOf(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  b[0]! ^= 0x02;
  const words = [(b[0]! << 8) | b[1]!, (b[2]! << 8) | 0xff, (0xfe << 8) | b[3]!, (b[4]! << 8) | b[5]!];
  return `fe80::${words.map((w) => w.toString(16)).join(':')}`;
}

/**
 * An IPv6 "internet" for a sandbox: a peer namespace whose link to the host carries `prefix`::1
 * (the host) and `prefix`::2 (the peer), with no route back to container subnets, so only NAT66'd
 * traffic gets answers; it serves `www` over HTTP on [::]:80.
 */
export async function addIpv6Wan(sb: Sandbox, prefix3: string, prefix6: string, www: string): Promise<Peer & { host6: string; peer6: string }> {
  const wan = await sb.addPeer('w', prefix3);
  const host6 = `${prefix6}::1`;
  const peer6 = `${prefix6}::2`;
  const wanLink = (await sb.inHost('ip', ['-o', 'link'])).stdout.match(/\d+: (wh\d+)@/)![1]!;
  must(await sb.inHost('ip', ['-6', 'addr', 'add', `${host6}/64`, 'dev', wanLink, 'nodad']), 'wan v6 host');
  must(await sb.inNs(wan.nsPath, 'ip', ['-6', 'addr', 'add', `${peer6}/64`, 'dev', 'eth0', 'nodad']), 'wan v6 peer');
  must(await sb.inNs(wan.nsPath, 'ip', ['-6', 'route', 'add', 'default', 'via', host6]), 'wan v6 route');
  sb.spawnIn(wan.nsPath, BUSYBOX, ['httpd', '-f', '-p', '[::]:80', '-h', www]);
  return { ...wan, host6, peer6 };
}

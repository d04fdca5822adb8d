/**
 * Living beside Docker. Docker sets the policy of iptables' FORWARD chain to DROP, and nftables
 * drops a packet that any base chain drops, so without help every packet berth forwards (its
 * containers going out, LAN peers reaching its published ports) would die in Docker's chain.
 * Docker's documented place for other people's rules is its DOCKER-USER chain, which FORWARD
 * jumps to first: berth keeps exactly one rule there, accepting packets that carry berth's mark
 * (set in berth's own `forward-mark` chain, which only marks traffic into or out of berth's
 * bridges and never into Docker's). Verdicts on those packets stay with berth's own chains.
 *
 * Docker's chains are managed with the iptables tool (iptables-nft or legacy), so berth uses the
 * same tool for its one rule rather than writing nft rules into an iptables table. Without
 * iptables or without Docker's chain there is nothing to do.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CHAIN = 'DOCKER-USER';
const COMMENT = 'berth: forwarded traffic judged by berth';

function ruleArgs(mark: number): string[] {
  const m = `0x${mark.toString(16)}`;
  return ['-m', 'mark', '--mark', `${m}/${m}`, '-m', 'comment', '--comment', COMMENT, '-j', 'ACCEPT'];
}

export type DockerUserResult = 'absent' | 'present' | 'added';

/**
 * Makes sure DOCKER-USER (if Docker made it) holds berth's rule, first. Runs `iptables` in the
 * daemon's own namespace; `-w` waits for Docker's xtables lock instead of failing.
 */
export async function ensureDockerUserRule(mark: number): Promise<DockerUserResult> {
  let listing: string;
  try {
    listing = (await run('iptables', ['-w', '5', '-t', 'filter', '-S', CHAIN], { timeout: 10_000 })).stdout;
  } catch {
    return 'absent'; // no iptables, or no Docker chain: nothing stands in berth's way
  }
  const first = listing.split('\n').find((l) => l.startsWith(`-A ${CHAIN} `));
  if (first?.includes(COMMENT)) return 'present';
  // Anywhere but first (Docker or a user inserted before it): put it back on top, once.
  if (listing.includes(COMMENT)) await run('iptables', ['-w', '5', '-t', 'filter', '-D', CHAIN, ...ruleArgs(mark)], { timeout: 10_000 });
  await run('iptables', ['-w', '5', '-t', 'filter', '-I', CHAIN, '1', ...ruleArgs(mark)], { timeout: 10_000 });
  return 'added';
}

/**
 * nftables changes in the daemon's own (host) namespace, made on the calling thread: the daemon's
 * main thread, which never leaves that namespace. A published port's map elements are then
 * written while the kernel thread is still making the container's interfaces (on the other
 * core), not queued behind them; and the firewall's changes keep the order the engine makes them
 * in. Honours BERTH_KERNEL_FAULTS' `nft` like a kernel-thread call.
 */
import { injectedFault } from './faults.js';
import { NftContext } from './nft.js';

let host: NftContext | undefined;

export function runHostNft(script: string): string {
  const fault = injectedFault('nft');
  if (fault) throw fault;
  host ??= new NftContext();
  return host.run(script);
}

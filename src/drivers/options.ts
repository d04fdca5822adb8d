/** Options and facts common to every driver's networks. */
import { DEFAULT_MTU, OPT_MTU } from '../constants.js';
import { invalid } from '../errors.js';
import type { NetworkRecord } from '../store/store.js';

/** Options any network takes, whatever its driver. */
export const COMMON_OPTIONS: readonly string[] = [OPT_MTU];

export function networkMtu(net: NetworkRecord): number {
  return Number(net.options[OPT_MTU] ?? DEFAULT_MTU);
}

/** The name of the network's link in `role`, if it has one. */
export function linkOf(net: NetworkRecord, role: string): string | undefined {
  return net.links.find((l) => l.role === role)?.name;
}

export function checkBoolOption(options: Record<string, string>, key: string): void {
  const v = options[key];
  if (v !== undefined && v !== 'true' && v !== 'false') throw invalid(`option ${key} must be true or false, not "${v}"`);
}

/** Checks the common options, and refuses any key neither they nor the driver know. */
export function checkOptionKeys(driver: { name: string; options: readonly string[]; strictOptions: boolean }, options: Record<string, string>): void {
  const known = new Set([...COMMON_OPTIONS, ...driver.options]);
  for (const key of Object.keys(options)) {
    if (driver.strictOptions && !known.has(key)) throw invalid(`option ${key} is unknown to the ${driver.name} driver: it takes ${[...known].sort().join(', ')}`);
  }
  const mtu = options[OPT_MTU];
  if (mtu !== undefined && !(/^\d+$/.test(mtu) && Number(mtu) >= 68 && Number(mtu) <= 65535)) {
    throw invalid(`option ${OPT_MTU} must be a number from 68 to 65535, not "${mtu}"`);
  }
}

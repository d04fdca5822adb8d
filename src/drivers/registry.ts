/**
 * The network drivers berth has, by name. Adding a driver is its folder and one line here.
 * `host` and `null` are not drivers: they are container modes with a predefined network record
 * (as in Docker), and no driver serves them.
 */
import { bridgeDriver } from './bridge/bridge-driver.js';
import { fanDriver } from './fan/fan-driver.js';
import { ipvlanDriver } from './ipvlan/ipvlan-driver.js';
import { macvlanDriver } from './macvlan/macvlan-driver.js';
import { overlayDriver } from './overlay/overlay-driver.js';
import { ptpDriver } from './ptp/ptp-driver.js';
import { routedDriver } from './routed/routed-driver.js';
import type { NetworkDriver } from './driver.js';
import { OPT_SCOPE } from '../constants.js';
import type { NetworkRecord } from '../store/store.js';

const DRIVERS: ReadonlyMap<string, NetworkDriver> = new Map([bridgeDriver, macvlanDriver, ipvlanDriver, ptpDriver, overlayDriver, fanDriver, routedDriver].map((d) => [d.name, d]));

export function driverNamed(name: string): NetworkDriver | undefined {
  return DRIVERS.get(name);
}

export function driverNames(): string[] {
  return [...DRIVERS.keys()];
}

/** The driver of a network that has one (every network but `host` and `none`). */
export function driverOf(net: NetworkRecord): NetworkDriver | undefined {
  // host and none have no subnet of either family; an IPv6-only network has an IPv6 one.
  return net.subnet === null && !net.subnet6 ? undefined : DRIVERS.get(net.driver);
}

/** Whether the network lives in the cluster store (an overlay, a routed network made with one) rather than on this host alone. */
export function isClusterScoped(net: NetworkRecord): boolean {
  const scope = driverOf(net)?.scope;
  return scope === 'global' || (scope === 'either' && net.options[OPT_SCOPE] === 'global');
}

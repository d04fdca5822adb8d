/** The shape of bench/results/latest.json. */
import type { MachineInfo } from './lib/machine.js';
import type { DataPlaneResult } from './sections/data-plane.js';
import type { DnsResult } from './sections/dns.js';
import type { HostSubnetsResult } from './sections/host-subnets.js';
import type { MacvlanResult } from './sections/macvlan.js';
import type { OverlayResult } from './sections/overlay.js';
import type { ProfileResult } from './sections/profile.js';
import type { RoutedResult } from './sections/routed.js';
import type { ScaleResult } from './sections/scale.js';
import type { SetupTeardownResult } from './sections/setup-teardown.js';
import type { StartupResult } from './sections/startup.js';

export interface BenchResults {
  mode: 'quick' | 'full';
  started: string;
  durationS?: number;
  machine: MachineInfo;
  /** Sections that failed, with the error. */
  errors: Record<string, string>;
  /** 1/5/15-minute load averages when each section started: the machine is shared. */
  load: Record<string, number[]>;
  setup?: SetupTeardownResult;
  scale?: ScaleResult;
  dataPlane?: DataPlaneResult;
  dns?: DnsResult;
  startup?: StartupResult;
  macvlan?: MacvlanResult;
  overlay?: OverlayResult;
  hostSubnets?: HostSubnetsResult;
  routed?: RoutedResult;
  profile?: ProfileResult;
  /** Sections re-run since (`--only`), merged into these results. */
  rerun?: { sections: string[]; started: string; mode: 'quick' | 'full'; loadAvgAtStart: number[] }[];
}

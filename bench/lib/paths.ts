/** Where things are: the checkout, its build, the bench's tools and the peers' binaries. */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/bench/lib → the checkout. */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const DIST = path.join(REPO, 'dist');
export const TOOLS = path.join(DIST, 'bench/tools');
export const RESULTS_DIR = path.join(REPO, 'bench/results');
export const REPORT = path.join(REPO, 'BENCHMARKS.md');

/** The compiled CNI shim (scripts/build-cni.sh, run by setup.sh); the Perl one where no compiler was found. */
export const BERTH_CNI = path.join(DIST, 'bin/berth-cni');
/** §5's floor, bench/tools/c/dns-floor.c, compiled by scripts/bench.sh when a C compiler is there. */
export const DNS_FLOOR = path.join(TOOLS, 'dns-floor');
export const NETAVARK = '/usr/lib/podman/netavark';
export const AARDVARK = '/usr/lib/podman/aardvark-dns';
export const CNI_PATH = '/usr/lib/cni';
export const BUSYBOX = '/bin/busybox';

export const tool = (name: string) => path.join(TOOLS, `${name}.js`);

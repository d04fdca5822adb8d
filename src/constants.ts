/**
 * Names, paths and option keys in one place. Option keys are Docker's, so the same `-o` flags work.
 */
export const DEFAULT_ROOT = '/var/lib/berth';
export const DEFAULT_HOST = 'unix:///run/berth/berth.sock';
export const API_VERSION = '1.41';
export const BERTH_VERSION = '0.1.0';

/* Daemon flags' defaults, here so `berth daemon --help` needs none of the modules that use them. */
/** Container network namespaces kept made ahead of time (--netns-pool; engine/netns-pool.ts). */
export const DEFAULT_NETNS_POOL = 4;
/** How long a host may be silent before the other hosts drop it (--cluster-ttl). */
export const DEFAULT_TTL_SECONDS = 10;
/** Where dockerd looks for the berth network plugin's socket (--plugin-socket). */
export const DEFAULT_PLUGIN_SOCKET = '/run/docker/plugins/berth.sock';
/** dockerd's API (--docker-host). */
export const DEFAULT_DOCKER_HOST = 'unix:///run/docker.sock';

export const DEFAULT_NETWORK = 'bridge';
export const DEFAULT_BRIDGE = 'berth0';
export const DEFAULT_MTU = 1500;

export const OPT_BRIDGE_NAME = 'com.docker.network.bridge.name';
export const OPT_MTU = 'com.docker.network.driver.mtu';
export const OPT_ICC = 'com.docker.network.bridge.enable_icc';
export const OPT_MASQUERADE = 'com.docker.network.bridge.enable_ip_masquerade';
export const OPT_DEFAULT_BRIDGE = 'com.docker.network.bridge.default_bridge';
export const OPT_HOST_BINDING = 'com.docker.network.bridge.host_binding_ipv4';
/**
 * CIDRs a network is routed to without NAT, comma-separated (other hosts' container subnets: the
 * cluster CIDR of a Flannel-style cluster, on the default bridge). Set by the daemon, never by users.
 */
export const OPT_ROUTED_PEERS = 'berth.routed_peers';
/** Set by berth on networks of a driver that can be either (routed): `global` (in the cluster store) or `local`. */
export const OPT_SCOPE = 'berth.scope';
/** `-o block_size=N` of routed networks: the prefix length of each host's address blocks (Calico's blockSize). */
export const OPT_BLOCK_SIZE = 'block_size';

/** Bridge names berth derives: `berth-` + 9 hex digits of the network id (15 characters, the kernel's limit). */
export const BRIDGE_PREFIX = 'berth-';
/** Host ends of veth pairs: `bv` + 12 hex digits of the endpoint id. */
export const VETH_PREFIX = 'bv';
/**
 * IFLA_IFALIAS marks on every link berth creates, so the reconciler only ever touches its own:
 * `berth:<owner>:network:<id>` and `berth:<owner>:endpoint:<id>`, where <owner> is derived from the
 * daemon's root, so two daemons sharing a namespace never take each other's links for leaks.
 */
export const aliasPrefix = (owner: string, kind: 'network' | 'endpoint' | 'tunnel' | 'host-subnets') => `berth:${owner}:${kind}:`;
/**
 * The host-subnet vxlan backend's device: `berth.<VNI>`, never Flannel's `flannel.<VNI>`, so berth
 * and a real Flannel on one host do not take each other's device.
 */
export const HOST_SUBNETS_VXLAN_PREFIX = 'berth.';

export const MAX_IFNAME = 15;
/** Docker's rule for network names, enforced here (Docker 20.10 accepts anything). */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

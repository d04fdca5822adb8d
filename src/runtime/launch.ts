/**
 * How a container's process is started: enter its network namespace (nsenter), give it its own
 * UTS and mount namespaces (unshare), set the hostname and bind its own /etc/hosts,
 * /etc/resolv.conf and /etc/hostname over the host's, then exec the command. Neither nsenter nor
 * unshare forks here, so the PID the launcher gets is the command's PID.
 *
 * The mount namespace is a slave copy of the host's: unmounts of dropped network namespaces
 * propagate into it, so a container never keeps another one's namespace alive. A sysfs mounted
 * there from inside the container's network namespace shows that namespace's interfaces in
 * /sys/class/net (sysfs binds its net entries to the mounter's namespace); read-only, as Docker's.
 */
export interface LaunchSpec {
  /** Network namespace to enter (a berth bind mount, or /proc/PID/ns/net of the daemon for host mode). */
  netnsPath: string;
  /** Host mode shares the host's hostname and files, so it gets no UTS/mount namespace of its own. */
  hostMode: boolean;
  hostname: string;
  files: { hosts: string; resolvConf: string; hostname: string };
  cmd: string[];
}

const SETUP_SCRIPT = [
  'hostname "$1"',
  'mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys',
  'mount --bind "$2" /etc/hosts',
  'mount --bind "$3" /etc/resolv.conf',
  'mount --bind "$4" /etc/hostname',
  'shift 4',
  'exec "$@"',
].join(' && ');

export function launchArgv(spec: LaunchSpec): string[] {
  const enter = ['nsenter', `--net=${spec.netnsPath}`, '--'];
  if (spec.hostMode) return [...enter, ...spec.cmd];
  return [
    ...enter,
    'unshare',
    '--uts',
    '--mount',
    '--propagation',
    'slave',
    '--',
    '/bin/sh',
    '-c',
    SETUP_SCRIPT,
    'berth-init',
    spec.hostname,
    spec.files.hosts,
    spec.files.resolvConf,
    spec.files.hostname,
    ...spec.cmd,
  ];
}

/** Runs a command inside a running container's namespaces (`berth exec`). */
export function execArgv(pid: number, netnsPath: string, hostMode: boolean, cmd: string[]): string[] {
  if (hostMode) return ['nsenter', `--net=${netnsPath}`, '--', ...cmd];
  return ['nsenter', `--net=${netnsPath}`, `--uts=/proc/${pid}/ns/uts`, `--mount=/proc/${pid}/ns/mnt`, '--', ...cmd];
}

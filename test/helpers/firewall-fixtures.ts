/** Firewall model fixtures shared by the ruleset's unit, golden and load tests. */
import type { FirewallNetwork, PublishedPort } from '../../src/firewall/model.js';

export function network(overrides: Partial<FirewallNetwork> = {}): FirewallNetwork {
  return {
    id: 'net-a',
    bridge: 'br-a',
    subnet: '10.77.0.0/24',
    gateway: '10.77.0.1',
    internal: false,
    icc: true,
    masquerade: true,
    ...overrides,
  };
}

/** A wildcard tcp port, a 127.0.0.1-only port, a port on one host address and a udp port. */
export function samplePorts(containerIp: string): PublishedPort[] {
  return [
    { containerId: 'web', protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerIp, containerPort: 80 },
    { containerId: 'web', protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8081, containerIp, containerPort: 80 },
    { containerId: 'web', protocol: 'tcp', hostIp: '192.0.2.10', hostPort: 8443, containerIp, containerPort: 443 },
    { containerId: 'dns', protocol: 'udp', hostIp: '0.0.0.0', hostPort: 5353, containerIp, containerPort: 53 },
  ];
}

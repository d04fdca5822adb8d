/** The checks of a new container's input: accepted forms, and refusals that name what is wrong. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkContainerInput, checkHostname } from '../../../src/engine/container-input.js';

const port = (hostIp: string) => ({ protocol: 'tcp' as const, hostIp, hostPort: 8080, containerPort: 80 });

test('accepted: RFC 1123 hostnames up to 64 characters, IP --dns, domains, options, dotted IPv4 host addresses', () => {
  for (const h of ['a', 'web-1', 'WEB1.example.com', '1a', `${'x'.repeat(63)}`]) checkHostname(h);
  checkContainerInput({
    hostname: 'db',
    dns: ['10.0.0.53', '2001:db8::53'],
    dnsSearch: ['.', 'corp.example', 'lab.example.'],
    dnsOptions: ['ndots:2', 'edns0', 'use-vc', 'timeout:1'],
    addHosts: ['gw:host-gateway', 'db:10.0.0.5'],
    ports: [port('0.0.0.0'), port('127.0.0.1'), port('10.1.2.3')],
  });
});

test('refused, each with the value and the rule', () => {
  const cases: [Parameters<typeof checkContainerInput>[0], RegExp][] = [
    [{ hostname: '-x' }, /--hostname "-x": it starts with '-'/],
    [{ hostname: 'x-' }, /label "x-" has characters other than letters, digits and inner '-'/],
    [{ hostname: 'a\nb' }, /--hostname "a\\nb"/],
    [{ hostname: 'a b' }, /--hostname "a b"/],
    [{ hostname: `${'x'.repeat(64)}` }, /64 characters long \(at most 63\)/],
    [{ hostname: `${'x'.repeat(40)}.${'y'.repeat(40)}` }, /81 characters long \(at most 64\)/],
    [{ hostname: 'a.' }, /empty label/],
    [{ dns: ['8.8.8'] }, /--dns "8\.8\.8": not an IP address/],
    [{ dns: ['10.0.0.1:53'] }, /--dns "10\.0\.0\.1:53"/],
    [{ dnsSearch: ['a_b.example'] }, /--dns-search "a_b\.example"/],
    [{ dnsSearch: ['..'] }, /--dns-search "\.\."/],
    [{ dnsOptions: ['ndots:'] }, /--dns-option "ndots:"/],
    [{ dnsOptions: ['a;b'] }, /--dns-option "a;b"/],
    [{ addHosts: ['db'] }, /--add-host "db": expected NAME:IP/],
    [{ ports: [port('127.0.0.1x')] }, /invalid host IP "127\.0\.0\.1x" for port 80\/tcp/],
    [{ ports: [port('127.1')] }, /invalid host IP "127\.1"/],
    [{ ports: [port('01.2.3.4')] }, /invalid host IP "01\.2\.3\.4"/],
    [{ ports: [port('')] }, /invalid host IP ""/],
  ];
  for (const [input, message] of cases) assert.throws(() => checkContainerInput(input), { name: 'BerthError', kind: 'invalid', message }, JSON.stringify(input));
});

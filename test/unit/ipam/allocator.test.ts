import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateAddress, checkRequestedAddress, validatePoolSpec, type PoolSpec } from '../../../src/ipam/allocator.js';
import { formatIpv4, parseCidr, parseIpv4 } from '../../../src/ipam/ipv4.js';

const ip = (text: string) => parseIpv4(text);
const used = (...texts: string[]) => new Set(texts.map(ip));
const pool = (subnet: string, gateway?: string, ipRange?: string): PoolSpec =>
  validatePoolSpec(parseCidr(subnet), gateway === undefined ? undefined : ip(gateway), ipRange === undefined ? undefined : parseCidr(ipRange));
const next = (p: PoolSpec, inUse: ReadonlySet<number>) => formatIpv4(allocateAddress(p, inUse, 'x'));

test('the first container gets the address after the gateway', () => {
  assert.equal(next(pool('172.18.0.0/16'), used()), '172.18.0.2');
});

test('the lowest free address is reused, as Docker does', () => {
  const p = pool('10.0.0.0/24');
  assert.equal(next(p, used('10.0.0.2', '10.0.0.3', '10.0.0.4')), '10.0.0.5');
  assert.equal(next(p, used('10.0.0.2', '10.0.0.4')), '10.0.0.3', 'remove .3 and the next container gets .3');
});

test('network, broadcast and gateway are never handed out', () => {
  const p = pool('10.0.0.0/29', '10.0.0.4');
  const handedOut: string[] = [];
  const inUse = new Set<number>();
  for (;;) {
    let addr: number;
    try {
      addr = allocateAddress(p, inUse);
    } catch {
      break;
    }
    inUse.add(addr);
    handedOut.push(formatIpv4(addr));
  }
  assert.deepEqual(handedOut, ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.5', '10.0.0.6']);
});

test('a gateway that is not the first host leaves the first host for containers', () => {
  assert.equal(next(pool('10.0.0.0/24', '10.0.0.254'), used()), '10.0.0.1');
});

test('--ip-range limits dynamic allocation', () => {
  const p = pool('10.1.0.0/16', undefined, '10.1.5.0/30');
  assert.equal(next(p, used()), '10.1.5.0', 'the range is a block of addresses, its first one is usable');
  assert.equal(next(p, used('10.1.5.0', '10.1.5.1', '10.1.5.2')), '10.1.5.3');
  assert.throws(() => allocateAddress(p, used('10.1.5.0', '10.1.5.1', '10.1.5.2', '10.1.5.3'), 'x'), {
    kind: 'conflict',
    message: 'no free address left in 10.1.5.0/30 (network "x" is full): remove a container or use a larger subnet/--ip-range',
  });
});

test('--ip-range at the start of the subnet skips the network address and gateway', () => {
  assert.equal(next(pool('10.0.0.0/24', undefined, '10.0.0.0/28'), used()), '10.0.0.2');
});

test('--ip-range at the end of the subnet never hands out the broadcast address', () => {
  const p = pool('10.0.0.0/24', undefined, '10.0.0.252/30');
  assert.equal(next(p, used('10.0.0.252', '10.0.0.253')), '10.0.0.254');
  assert.throws(() => allocateAddress(p, used('10.0.0.252', '10.0.0.253', '10.0.0.254')), { kind: 'conflict' });
});

test('a /30 has exactly one dynamic address besides the gateway', () => {
  const p = pool('10.0.0.0/30');
  assert.equal(next(p, used()), '10.0.0.2');
  assert.throws(() => allocateAddress(p, used('10.0.0.2'), 'x'), {
    name: 'BerthError',
    kind: 'conflict',
    message: 'no free address left in 10.0.0.0/30 (network "x" is full): remove a container or use a larger subnet/--ip-range',
  });
  assert.throws(() => allocateAddress(p, used('10.0.0.2')), {
    message: 'no free address left in 10.0.0.0/30: remove a container or use a larger subnet/--ip-range',
  });
});

test('addresses in use outside the dynamic range do not get in the way', () => {
  const p = pool('10.0.0.0/24', undefined, '10.0.0.128/25');
  assert.equal(next(p, used('10.0.0.2', '10.0.0.3', '10.0.0.129')), '10.0.0.128');
});

test('a nearly full /16 yields the one gap left (allocation speed is measured by the benchmark, not here)', () => {
  const p = pool('10.5.0.0/16');
  const inUse = new Set<number>();
  for (let addr = ip('10.5.0.2'); inUse.size < 60_000; addr++) inUse.add(addr);
  assert.equal(next(p, inUse), '10.5.234.98');
});

test('a full /16 is reported, not looped over forever', () => {
  const p = pool('10.6.0.0/16');
  const inUse = new Set<number>();
  for (let addr = ip('10.6.0.2'); addr <= ip('10.6.255.254'); addr++) inUse.add(addr);
  assert.throws(() => allocateAddress(p, inUse, 'big'), { kind: 'conflict', message: /10\.6\.0\.0\/16 \(network "big" is full\)/ });
});

test('checkRequestedAddress accepts a free host address, even outside --ip-range', () => {
  const p = pool('10.0.0.0/24', undefined, '10.0.0.128/25');
  assert.doesNotThrow(() => checkRequestedAddress(p, ip('10.0.0.5'), used('10.0.0.128'), 'x'));
  assert.doesNotThrow(() => checkRequestedAddress(p, ip('10.0.0.254'), used(), 'x'));
});

test('checkRequestedAddress rejects an address outside the subnet', () => {
  assert.throws(() => checkRequestedAddress(pool('10.99.0.0/16'), ip('10.98.0.5'), used(), 'x'), {
    kind: 'invalid',
    message: 'Invalid address 10.98.0.5: it does not belong to network "x"\'s subnet 10.99.0.0/16',
  });
});

test('checkRequestedAddress rejects the network, broadcast and gateway addresses', () => {
  const p = pool('10.0.0.0/24');
  assert.throws(() => checkRequestedAddress(p, ip('10.0.0.0'), used(), 'x'), {
    kind: 'invalid',
    message: 'Invalid address 10.0.0.0: it is the network address of network "x"\'s subnet 10.0.0.0/24',
  });
  assert.throws(() => checkRequestedAddress(p, ip('10.0.0.255'), used(), 'x'), {
    kind: 'invalid',
    message: 'Invalid address 10.0.0.255: it is the broadcast address of network "x"\'s subnet 10.0.0.0/24',
  });
  assert.throws(() => checkRequestedAddress(p, ip('10.0.0.1'), used(), 'x'), {
    kind: 'invalid',
    message: 'Invalid address 10.0.0.1: it is the gateway of network "x"; pick another address',
  });
});

test('checkRequestedAddress reports an address in use as a conflict', () => {
  assert.throws(() => checkRequestedAddress(pool('10.0.0.0/24'), ip('10.0.0.5'), used('10.0.0.5'), 'x'), {
    kind: 'conflict',
    message: 'address 10.0.0.5 is already in use on network "x"',
  });
});

test('validatePoolSpec defaults the gateway to the first host and keeps the options', () => {
  assert.deepEqual(validatePoolSpec(parseCidr('10.98.0.0/24')), { subnet: parseCidr('10.98.0.0/24'), gateway: ip('10.98.0.1') });
  assert.deepEqual(validatePoolSpec(parseCidr('10.98.0.0/24'), ip('10.98.0.254'), parseCidr('10.98.0.128/25')), {
    subnet: parseCidr('10.98.0.0/24'),
    gateway: ip('10.98.0.254'),
    ipRange: parseCidr('10.98.0.128/25'),
  });
  assert.equal(validatePoolSpec(parseCidr('10.0.0.0/30')).gateway, ip('10.0.0.1'), 'a /30 is the smallest accepted');
});

test('validatePoolSpec rejects a gateway outside the subnet', () => {
  assert.throws(() => pool('10.98.0.0/24', '10.97.0.1'), {
    kind: 'invalid',
    message: 'no matching subnet for gateway 10.97.0.1: the gateway must be inside 10.98.0.0/24',
  });
});

test('validatePoolSpec rejects the network or broadcast address as gateway', () => {
  assert.throws(() => pool('10.98.0.0/24', '10.98.0.0'), {
    kind: 'invalid',
    message: 'invalid gateway 10.98.0.0: it is the network address of 10.98.0.0/24; use a host address such as 10.98.0.1',
  });
  assert.throws(() => pool('10.98.0.0/24', '10.98.0.255'), {
    kind: 'invalid',
    message: 'invalid gateway 10.98.0.255: it is the broadcast address of 10.98.0.0/24; use a host address such as 10.98.0.1',
  });
});

test('validatePoolSpec rejects an --ip-range outside the subnet', () => {
  assert.throws(() => pool('10.98.0.0/24', undefined, '10.97.0.0/25'), {
    kind: 'invalid',
    message: 'no matching subnet for range 10.97.0.0/25: --ip-range must be inside 10.98.0.0/24',
  });
  assert.throws(() => pool('10.98.0.0/24', undefined, '10.98.0.0/23'), { message: /range 10\.98\.0\.0\/23: --ip-range must be inside/ });
});

test('validatePoolSpec rejects an --ip-range with nothing left to hand out', () => {
  assert.throws(() => pool('10.0.0.0/30', undefined, '10.0.0.0/31'), {
    kind: 'invalid',
    message: /^--ip-range 10\.0\.0\.0\/31 leaves no address for containers in 10\.0\.0\.0\/30/,
  });
  assert.throws(() => pool('10.0.0.0/24', '10.0.0.7', '10.0.0.7/32'), { message: /--ip-range 10\.0\.0\.7\/32 leaves no address/ });
  assert.equal(next(pool('10.0.0.0/24', undefined, '10.0.0.7/32'), used()), '10.0.0.7');
});

test('validatePoolSpec rejects subnets smaller than /30', () => {
  for (const subnet of ['10.0.0.0/31', '10.0.0.0/32']) {
    assert.throws(() => pool(subnet), {
      kind: 'invalid',
      message: `subnet ${subnet} is too small: a network needs at least a /30 (network address, gateway, one container, broadcast address)`,
    });
  }
});

test('auxiliary addresses are never handed out and cannot be asked for with --ip', () => {
  const aux = new Map([['router', ip('10.0.0.2')], ['printer', ip('10.0.0.4')]]);
  const p = validatePoolSpec(parseCidr('10.0.0.0/24'), undefined, undefined, aux);
  assert.equal(next(p, used()), '10.0.0.3', 'skips the reserved .2');
  assert.equal(next(p, used('10.0.0.3')), '10.0.0.5', 'and the reserved .4');
  assert.throws(() => checkRequestedAddress(p, ip('10.0.0.4'), used(), 'x'), /10\.0\.0\.4: it is the auxiliary address "printer"/);
  // Positive control through the same check: a free address that is not reserved is accepted.
  assert.doesNotThrow(() => checkRequestedAddress(p, ip('10.0.0.9'), used(), 'x'));
});

test('an auxiliary address outside the subnet, on the gateway, or named twice is refused', () => {
  const subnet = parseCidr('10.0.0.0/24');
  const bad: [string, Map<string, number>, RegExp][] = [
    ['outside', new Map([['far', ip('10.0.1.5')]]), /aux-address far=10\.0\.1\.5: it must be inside 10\.0\.0\.0\/24/],
    ['gateway', new Map([['gw', ip('10.0.0.1')]]), /aux-address gw=10\.0\.0\.1 is the network's gateway/],
    ['broadcast', new Map([['b', ip('10.0.0.255')]]), /network or broadcast address/],
    ['twice', new Map([['a', ip('10.0.0.7')], ['b', ip('10.0.0.7')]]), /aux-addresses a and b are both 10\.0\.0\.7/],
  ];
  for (const [what, aux, msg] of bad) assert.throws(() => validatePoolSpec(subnet, undefined, undefined, aux), msg, what);
  assert.equal(validatePoolSpec(subnet, undefined, undefined, new Map([['ok', ip('10.0.0.7')]])).reserved?.get(ip('10.0.0.7')), 'ok');
});

/**
 * macvlan, ipvlan and vlan requests against the RTM_NEWLINK messages iproute2 sends for the same
 * link, captured byte for byte. How the fixtures were taken (`ip -V`: iproute2-6.1.0; kernel 6.18.44):
 * in a scratch namespace holding a veth pair p0/p1 (p0 has index 3), each command below was run as
 *   nsenter --net=/run/netns/NS strace -f -e trace=sendmsg,sendto,recvmsg -e write=all -e read=all -xx -s 4096 ip link add …
 * and the hex is the RTM_NEWLINK create message it wrote, header included. `ip` also sends an
 * empty RTM_NEWLINK probe and an RTM_GETLINK for the parent's name first; berth needs neither.
 * NS2 was a second namespace, which `ip` had open as fd 4. The kernel created every macvlan
 * (ACK, errno 0) and refused every ipvlan and vlan: it has neither driver, and answers
 * -EOPNOTSUPP (95) with the extended message "Unknown device type". The bytes are what was sent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeMessage, type NetlinkRequest } from '../../../src/kernel/netlink/codec.js';
import { newIpvlan, newMacvlan, newVlan } from '../../../src/kernel/netlink/sublinks.js';

/** iproute2 numbers its requests from time(NULL); every capture carried this one. */
const SEQ = 1796303983;
const P0 = 3;
const NS2_FD = 4;

const captures: { ip: string; request: () => NetlinkRequest; hex: string }[] = [
  {
    ip: 'ip link add link p0 name mv0 type macvlan mode private',
    request: () => newMacvlan({ name: 'mv0', parentIndex: P0, mode: 'private' }),
    hex: '4c000000100005066f6c116b00000000000000000000000000000000000000000800050003000000080003006d7630001c0012000b0001006d6163766c616e000c0002000800010001000000',
  },
  {
    ip: 'ip link add link p0 name mv0 type macvlan mode vepa',
    request: () => newMacvlan({ name: 'mv0', parentIndex: P0, mode: 'vepa' }),
    hex: '4c000000100005066f6c116b00000000000000000000000000000000000000000800050003000000080003006d7630001c0012000b0001006d6163766c616e000c0002000800010002000000',
  },
  {
    ip: 'ip link add link p0 name mv0 type macvlan mode bridge',
    request: () => newMacvlan({ name: 'mv0', parentIndex: P0, mode: 'bridge' }),
    hex: '4c000000100005066f6c116b00000000000000000000000000000000000000000800050003000000080003006d7630001c0012000b0001006d6163766c616e000c0002000800010004000000',
  },
  {
    ip: 'ip link add link p0 name mv0 type macvlan mode passthru',
    request: () => newMacvlan({ name: 'mv0', parentIndex: P0, mode: 'passthru' }),
    hex: '4c000000100005066f6c116b00000000000000000000000000000000000000000800050003000000080003006d7630001c0012000b0001006d6163766c616e000c0002000800010008000000',
  },
  {
    ip: 'ip link add link p0 name mv0 mtu 1400 address 02:42:ac:11:00:02 netns NS2 up type macvlan mode bridge',
    request: () => newMacvlan({ name: 'mv0', parentIndex: P0, mode: 'bridge', mtu: 1400, mac: '02:42:ac:11:00:02', netnsFd: NS2_FD, up: true }),
    hex: '68000000100005066f6c116b000000000000000000000000010000000100000008000400780500000a0001000242ac110002000008001c00040000000800050003000000080003006d7630001c0012000b0001006d6163766c616e000c0002000800010004000000',
  },
  {
    ip: 'ip link add link p0 name mv0 mtu 1400 up type macvlan mode vepa',
    request: () => newMacvlan({ name: 'mv0', parentIndex: P0, mode: 'vepa', mtu: 1400, up: true }),
    hex: '54000000100005066f6c116b000000000000000000000000010000000100000008000400780500000800050003000000080003006d7630001c0012000b0001006d6163766c616e000c0002000800010002000000',
  },
  {
    ip: 'ip link add link p0 name ipv0 type ipvlan mode l2',
    request: () => newIpvlan({ name: 'ipv0', parentIndex: P0, mode: 'l2' }),
    hex: '58000000100005066f6c116b00000000000000000000000000000000000000000800050003000000090003006970763000000000240012000a0001006970766c616e00001400020006000100000000000600020000000000',
  },
  {
    ip: 'ip link add link p0 name ipv0 type ipvlan mode l2 bridge',
    request: () => newIpvlan({ name: 'ipv0', parentIndex: P0, mode: 'l2', flag: 'bridge' }),
    hex: '58000000100005066f6c116b00000000000000000000000000000000000000000800050003000000090003006970763000000000240012000a0001006970766c616e00001400020006000100000000000600020000000000',
  },
  {
    ip: 'ip link add link p0 name ipv0 type ipvlan mode l2 private',
    request: () => newIpvlan({ name: 'ipv0', parentIndex: P0, mode: 'l2', flag: 'private' }),
    hex: '58000000100005066f6c116b00000000000000000000000000000000000000000800050003000000090003006970763000000000240012000a0001006970766c616e00001400020006000100000000000600020001000000',
  },
  {
    ip: 'ip link add link p0 name ipv0 type ipvlan mode l2 vepa',
    request: () => newIpvlan({ name: 'ipv0', parentIndex: P0, mode: 'l2', flag: 'vepa' }),
    hex: '58000000100005066f6c116b00000000000000000000000000000000000000000800050003000000090003006970763000000000240012000a0001006970766c616e00001400020006000100000000000600020002000000',
  },
  {
    ip: 'ip link add link p0 name ipv0 type ipvlan mode l3',
    request: () => newIpvlan({ name: 'ipv0', parentIndex: P0, mode: 'l3' }),
    hex: '58000000100005066f6c116b00000000000000000000000000000000000000000800050003000000090003006970763000000000240012000a0001006970766c616e00001400020006000100010000000600020000000000',
  },
  {
    ip: 'ip link add link p0 name ipv0 type ipvlan mode l3 bridge',
    request: () => newIpvlan({ name: 'ipv0', parentIndex: P0, mode: 'l3', flag: 'bridge' }),
    hex: '58000000100005066f6c116b00000000000000000000000000000000000000000800050003000000090003006970763000000000240012000a0001006970766c616e00001400020006000100010000000600020000000000',
  },
  {
    ip: 'ip link add link p0 name ipv0 type ipvlan mode l3 private',
    request: () => newIpvlan({ name: 'ipv0', parentIndex: P0, mode: 'l3', flag: 'private' }),
    hex: '58000000100005066f6c116b00000000000000000000000000000000000000000800050003000000090003006970763000000000240012000a0001006970766c616e00001400020006000100010000000600020001000000',
  },
  {
    ip: 'ip link add link p0 name ipv0 type ipvlan mode l3 vepa',
    request: () => newIpvlan({ name: 'ipv0', parentIndex: P0, mode: 'l3', flag: 'vepa' }),
    hex: '58000000100005066f6c116b00000000000000000000000000000000000000000800050003000000090003006970763000000000240012000a0001006970766c616e00001400020006000100010000000600020002000000',
  },
  {
    ip: 'ip link add link p0 name ipv0 type ipvlan mode l3s',
    request: () => newIpvlan({ name: 'ipv0', parentIndex: P0, mode: 'l3s' }),
    hex: '58000000100005066f6c116b00000000000000000000000000000000000000000800050003000000090003006970763000000000240012000a0001006970766c616e00001400020006000100020000000600020000000000',
  },
  {
    ip: 'ip link add link p0 name ipv0 type ipvlan mode l3s bridge',
    request: () => newIpvlan({ name: 'ipv0', parentIndex: P0, mode: 'l3s', flag: 'bridge' }),
    hex: '58000000100005066f6c116b00000000000000000000000000000000000000000800050003000000090003006970763000000000240012000a0001006970766c616e00001400020006000100020000000600020000000000',
  },
  {
    ip: 'ip link add link p0 name ipv0 type ipvlan mode l3s private',
    request: () => newIpvlan({ name: 'ipv0', parentIndex: P0, mode: 'l3s', flag: 'private' }),
    hex: '58000000100005066f6c116b00000000000000000000000000000000000000000800050003000000090003006970763000000000240012000a0001006970766c616e00001400020006000100020000000600020001000000',
  },
  {
    ip: 'ip link add link p0 name ipv0 type ipvlan mode l3s vepa',
    request: () => newIpvlan({ name: 'ipv0', parentIndex: P0, mode: 'l3s', flag: 'vepa' }),
    hex: '58000000100005066f6c116b00000000000000000000000000000000000000000800050003000000090003006970763000000000240012000a0001006970766c616e00001400020006000100020000000600020002000000',
  },
  {
    ip: 'ip link add link p0 name ipv0 mtu 1400 netns NS2 up type ipvlan mode l3 private',
    request: () => newIpvlan({ name: 'ipv0', parentIndex: P0, mode: 'l3', flag: 'private', mtu: 1400, netnsFd: NS2_FD, up: true }),
    hex: '68000000100005066f6c116b0000000000000000000000000100000001000000080004007805000008001c00040000000800050003000000090003006970763000000000240012000a0001006970766c616e00001400020006000100010000000600020001000000',
  },
  {
    ip: 'ip link add link p0 name p0.100 type vlan id 100',
    request: () => newVlan({ name: 'p0.100', parentIndex: P0, vlanId: 100 }),
    hex: '4c000000100005066f6c116b000000000000000000000000000000000000000008000500030000000b00030070302e31303000001800120008000100766c616e0c0002000600010064000000',
  },
  {
    ip: 'ip link add link p0 name p0.4094 mtu 1400 up type vlan id 4094',
    request: () => newVlan({ name: 'p0.4094', parentIndex: P0, vlanId: 4094, mtu: 1400, up: true }),
    hex: '54000000100005066f6c116b0000000000000000000000000100000001000000080004007805000008000500030000000c00030070302e34303934001800120008000100766c616e0c00020006000100fe0f0000',
  },
];

for (const c of captures) {
  test(`matches iproute2: ${c.ip}`, () => {
    assert.equal(encodeMessage(c.request(), SEQ).toString('hex'), c.hex);
  });
}

test('a vlan id outside 1–4094 is refused before anything is sent', () => {
  for (const vlanId of [0, 4095, -1, 65536, 1.5, Number.NaN]) {
    assert.throws(() => newVlan({ name: 'v', parentIndex: P0, vlanId }), /vlan id .* out of range: use an integer from 1 to 4094/);
  }
  assert.doesNotThrow(() => newVlan({ name: 'v', parentIndex: P0, vlanId: 1 }));
});

test('an unknown mode or flag is refused with the accepted values', () => {
  assert.throws(() => newMacvlan({ name: 'm', parentIndex: P0, mode: 'source' as never }), /unknown macvlan mode "source": expected one of private, vepa, bridge, passthru/);
  assert.throws(() => newIpvlan({ name: 'i', parentIndex: P0, mode: 'l4' as never }), /unknown ipvlan mode "l4": expected one of l2, l3, l3s/);
  assert.throws(() => newIpvlan({ name: 'i', parentIndex: P0, mode: 'l2', flag: 'passthru' as never }), /unknown ipvlan flag "passthru": expected one of bridge, private, vepa/);
  assert.throws(() => newMacvlan({ name: 'm', parentIndex: P0, mode: 'toString' as never }), /unknown macvlan mode/, 'inherited properties are not modes');
});

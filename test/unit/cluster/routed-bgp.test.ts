/** BIRD's configuration as berth writes it, `birdc show protocols` parsing, flags, and block arithmetic. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { birdConfig, parseAsn, parsePeer, parseProtocols } from '../../../src/cluster/bgp/bird-config.js';
import { blockOf, blockSizeOf, blocksOfPool } from '../../../src/cluster/routed-blocks.js';
import { formatIpv4, parseCidr, parseIpv4 } from '../../../src/ipam/ipv4.js';

describe('bird config', () => {
  const conf = birdConfig({
    routerId: '192.168.90.11',
    asn: 64512,
    mesh: ['192.168.90.13', '192.168.90.12', '192.168.90.11', '192.168.90.1'],
    peers: [{ address: '192.168.90.1', asn: 65000 }],
    advertise: ['10.140.0.64/26', '10.140.0.0/26'],
  });

  test('binds to the underlay address only, advertises the blocks only, learned routes to the kernel', () => {
    assert.match(conf, /^router id 192\.168\.90\.11;$/m);
    assert.match(conf, /local 192\.168\.90\.11 as 64512;\n {2}strict bind yes;/);
    assert.match(conf, / {2}route 10\.140\.0\.0\/26 blackhole;\n {2}route 10\.140\.0\.64\/26 blackhole;/);
    assert.match(conf, /export where proto = "berth_blocks"/);
    assert.match(conf, /if source = RTS_BGP then accept/);
    assert.match(conf, /persist;/);
  });

  test('a mesh session per other host, the router once as a peer, never itself', () => {
    const sessions = [...conf.matchAll(/^protocol bgp (\S+) from berth_peer \{ neighbor (\S+) as (\d+); \}$/gm)].map((m) => `${m[1]} ${m[2]} ${m[3]}`);
    assert.deepEqual(sessions, ['mesh_192_168_90_12 192.168.90.12 64512', 'mesh_192_168_90_13 192.168.90.13 64512', 'peer_192_168_90_1 192.168.90.1 65000']);
  });

  test('parses birdc show protocols', () => {
    const text = [
      'BIRD 2.0.12 ready.',
      'Name       Proto      Table      State  Since         Info',
      'device1    Device     ---        up     08:45:54.147  ',
      'berth_blocks Static     master4    up     08:45:54.147  ',
      'mesh_192_168_90_12 BGP        ---        up     08:45:55.001  Established   ',
      'peer_192_168_90_77 BGP        ---        start  08:45:54.147  Active        Socket: Connection refused',
    ].join('\n');
    assert.deepEqual(parseProtocols(text), [
      { name: 'mesh_192_168_90_12', kind: 'mesh', address: '192.168.90.12', state: 'up', info: 'Established' },
      { name: 'peer_192_168_90_77', kind: 'peer', address: '192.168.90.77', state: 'start', info: 'Active        Socket: Connection refused' },
    ]);
  });

  test('ASNs and peers', () => {
    assert.equal(parseAsn('64512'), 64512);
    assert.equal(parseAsn('4200000000'), 4200000000);
    for (const bad of ['0', '65535', '23456', '4294967295', '-1', 'x', '']) assert.throws(() => parseAsn(bad), /not a usable AS number/, bad);
    assert.deepEqual(parsePeer('10.0.0.1:65000'), { address: '10.0.0.1', asn: 65000 });
    assert.throws(() => parsePeer('10.0.0.300:65000'), /not IP:ASN/);
    assert.throws(() => parsePeer('10.0.0.1'), /not IP:ASN/);
  });
});

describe('blocks', () => {
  test('sizes from 20 to 32, never larger than the pool', () => {
    assert.equal(blockSizeOf({}, parseCidr('10.0.0.0/16')), 26);
    assert.equal(blockSizeOf({ block_size: '20' }, parseCidr('10.0.0.0/16')), 20);
    assert.equal(blockSizeOf({ block_size: '32' }, parseCidr('10.0.0.0/16')), 32);
    assert.throws(() => blockSizeOf({ block_size: '19' }, parseCidr('10.0.0.0/16')), /out of range/);
    assert.throws(() => blockSizeOf({ block_size: '26' }, parseCidr('10.0.0.0/27')), /smaller than one block/);
  });

  test('the blocks of a pool, and the block of an address', () => {
    assert.deepEqual([...blocksOfPool(parseCidr('10.0.0.0/24'), 26)].map((b) => b.text), ['10.0.0.0/26', '10.0.0.64/26', '10.0.0.128/26', '10.0.0.192/26']);
    assert.equal(blockOf(parseIpv4('10.0.0.77'), 26).text, '10.0.0.64/26');
    assert.equal(formatIpv4(blockOf(parseIpv4('10.0.0.77'), 32).network), '10.0.0.77');
  });
});

/**
 * The fan's eBPF program, run here by a small interpreter of the instructions it uses (with the
 * three helpers it calls modelled on the kernel's), on an x86-64 (little-endian) machine model.
 * The kernel's verifier and real packets are the integration test's; this one checks the
 * arithmetic against the mapping (fan-mapping.ts) over many addresses, and each drop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assemble, call, exit, jne64i, label, mov64, mov64i } from '../../../src/kernel/ebpf/asm.js';
import { fanEgressProgram, type FanProgramSpec } from '../../../src/kernel/ebpf/fan-program.js';
import { fanDeviceMac, fanMap, fanVni, hostPartOf, underlayHostOf, type FanMap } from '../../../src/drivers/fan/fan-mapping.js';
import { formatIpv4, parseIpv4 } from '../../../src/ipam/ipv4.js';

interface Outcome {
  verdict: number;
  key?: Buffer;
  packet: Buffer;
}

const STACK = 512;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;

/** Runs `code` on `packet`; r1 is the skb. Pointers into the stack are numbers ≥ 0x10000. */
function run(code: Buffer, packet: Buffer): Outcome {
  const stack = Buffer.alloc(STACK);
  const SP = 0x10000;
  const r = new Array<bigint>(11).fill(0n);
  r[1] = 1n; // the skb
  r[10] = BigInt(SP + STACK);
  const mem = (addr: bigint, size: number) => {
    const at = Number(addr) - SP;
    assert.ok(at >= 0 && at + size <= STACK, `stack access ${at}+${size} out of bounds`);
    return at;
  };
  let key: Buffer | undefined;
  const u64 = (v: bigint) => BigInt.asUintN(64, v);
  const u32 = (v: bigint) => BigInt.asUintN(32, v);
  const s32 = (v: bigint) => BigInt.asIntN(32, v);
  for (let pc = 0, steps = 0; steps < 1000; steps++) {
    const o = pc * 8;
    const code8 = code.readUInt8(o);
    const dst = code.readUInt8(o + 1) & 0xf;
    const src = code.readUInt8(o + 1) >> 4;
    const off = code.readInt16LE(o + 2);
    const imm = BigInt(code.readInt32LE(o + 4));
    pc++;
    const cls = code8 & 0x07;
    const op = code8 & 0xf0;
    const x = (code8 & 0x08) !== 0;
    if (cls === 0x07 || cls === 0x04) {
      const wide = cls === 0x07;
      if (op === 0xd0) {
        const bits = Number(imm);
        const v = r[dst]!;
        const bytes = Buffer.alloc(8);
        bytes.writeBigUInt64LE(u64(v));
        r[dst] = x ? (bits === 16 ? BigInt(bytes.readUInt16BE(0)) : BigInt(bytes.readUInt32BE(0))) : v;
        continue;
      }
      const a = wide ? r[dst]! : u32(r[dst]!);
      const b = x ? (wide ? r[src]! : u32(r[src]!)) : wide ? imm : u32(imm);
      const res = { 0x00: a + b, 0x40: a | b, 0x50: a & b, 0x70: a >> b, 0xb0: b }[op];
      assert.ok(res !== undefined, `ALU op 0x${op.toString(16)} not modelled`);
      r[dst] = wide ? u64(res) : u32(res);
    } else if (cls === 0x01) {
      const size = (code8 & 0x18) === 0x08 ? 2 : 4;
      const at = mem(r[src]! + BigInt(off), size);
      r[dst] = BigInt(size === 2 ? stack.readUInt16LE(at) : stack.readUInt32LE(at));
    } else if (cls === 0x02 || cls === 0x03) {
      const size = (code8 & 0x18) === 0x08 ? 2 : 4;
      const at = mem(r[dst]! + BigInt(off), size);
      const v = cls === 0x02 ? imm : r[src]!;
      if (size === 2) stack.writeUInt16LE(Number(BigInt.asUintN(16, v)), at);
      else stack.writeUInt32LE(Number(u32(v)), at);
    } else if (cls === 0x05 || cls === 0x06) {
      if (op === 0x90) return { verdict: Number(s32(r[0]!)), key, packet };
      if (op === 0x80) {
        const helper = Number(imm);
        if (helper === 26) {
          const [from, at, len] = [Number(r[2]), mem(r[3]!, Number(r[4])), Number(r[4])];
          r[0] = from + len <= packet.length ? (packet.copy(stack, at, from, from + len), 0n) : u64(-14n);
        } else if (helper === 9) {
          const [to, at, len] = [Number(r[2]), mem(r[3]!, Number(r[4])), Number(r[4])];
          assert.equal(r[5], 0n, 'store_bytes flags');
          stack.copy(packet, to, at, at + len);
          r[0] = 0n;
        } else if (helper === 21) {
          const size = Number(r[3]);
          assert.ok([8, 24, 28, 44].includes(size), `tunnel key size ${size} is one the kernel accepts`);
          key = Buffer.from(stack.subarray(mem(r[2]!, size), mem(r[2]!, size) + size));
          r[0] = 0n;
        } else {
          assert.fail(`helper ${helper} not modelled`);
        }
        for (const i of [1, 2, 3, 4, 5]) r[i] = 0xdeadn; // clobbered
        continue;
      }
      const a = cls === 0x05 ? r[dst]! : u32(r[dst]!);
      const b = cls === 0x05 ? u64(imm) : u32(imm);
      const taken = { 0x10: a === b, 0x50: a !== b }[op];
      assert.ok(taken !== undefined, `jump op 0x${op.toString(16)} not modelled`);
      if (taken) pc += off;
    } else {
      assert.fail(`instruction class ${cls} not modelled`);
    }
  }
  assert.fail('the program did not exit within 1000 steps');
}

const specOf = (map: FanMap): FanProgramSpec => ({
  overlayNetwork: map.overlay.network,
  overlayPrefix: map.overlay.prefix,
  slicePrefix: map.slicePrefix,
  underlayNetwork: map.underlay.network,
  underlayPrefix: map.underlay.prefix,
  vni: fanVni(map),
});

/** An Ethernet frame carrying an IPv4 packet to `dst` (or another EtherType), as the fan device transmits it. */
function frame(dst: string, ethertype = 0x0800, length = 98): Buffer {
  const f = Buffer.alloc(length);
  Buffer.from([2, 0xfa, 0, 0, 0x5a, 0x0b]).copy(f, 0);
  Buffer.from([2, 0xfa, 0, 0, 0x5a, 0x0b]).copy(f, 6);
  f.writeUInt16BE(ethertype, 12);
  f.writeUInt8(0x45, 14);
  if (length >= 34) f.writeUInt32BE(parseIpv4(dst), 30);
  return f;
}

const macOf = (b: Buffer) => [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');

test('assembler: encodings as the kernel documents them, and jumps counted from the next instruction', () => {
  const code = assemble([mov64(6, 1), mov64i(0, 2), jne64i(0, 0, 'out'), call(26), label('out'), exit()]);
  assert.equal(code.toString('hex'), ['bf16000000000000', 'b700000002000000', '5500010000000000', '850000001a000000', '9500000000000000'].join(''));
  assert.throws(() => assemble([jne64i(0, 0, 'nowhere')]), /undefined label nowhere/);
});

test('a packet to 250.90.12.2 goes to 192.168.90.12 with VNI 0xfa0000, TTL 64, and that host’s fan MAC', () => {
  const map = fanMap('192.168.0.0/16', '250.0.0.0/8');
  const out = run(fanEgressProgram(specOf(map)), frame('250.90.12.2'));
  assert.equal(out.verdict, TC_ACT_OK);
  assert.equal(out.key!.readUInt32LE(0), 0xfa0000);
  assert.equal(formatIpv4(out.key!.readUInt32LE(4)), '192.168.90.12', 'remote_ipv4 in host byte order, as bpf_tunnel_key wants');
  assert.equal(out.key!.readUInt8(21), 64);
  assert.equal(out.key!.subarray(8, 20).toString('hex'), '0'.repeat(24), 'the rest of the address zero');
  assert.equal(macOf(out.packet), '02:fa:00:00:5a:0c');
  assert.equal(macOf(out.packet.subarray(6)), '02:fa:00:00:5a:0b', 'the source MAC is left alone');
});

test('the program agrees with the mapping for addresses all over the overlay, for several prefix shapes', () => {
  for (const [underlay, overlay] of [['192.168.0.0/16', '250.0.0.0/8'], ['10.1.2.0/24', '250.0.0.0/8'], ['172.16.0.0/12', '10.0.0.0/10'], ['192.168.0.0/16', '10.64.0.0/12']] as const) {
    const map = fanMap(underlay, overlay);
    const code = fanEgressProgram(specOf(map));
    let seed = 7;
    for (let i = 0; i < 300; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const dst = (map.overlay.network + (seed % 2 ** (32 - map.overlay.prefix))) >>> 0;
      const owner = underlayHostOf(map, dst);
      const out = run(code, frame(formatIpv4(dst)));
      if (owner === undefined) {
        assert.equal(out.verdict, TC_ACT_SHOT, `${formatIpv4(dst)} belongs to no host`);
        continue;
      }
      assert.equal(out.verdict, TC_ACT_OK, `${formatIpv4(dst)} over ${underlay}`);
      assert.equal(out.key!.readUInt32LE(4), owner, `${formatIpv4(dst)} → ${formatIpv4(owner)}`);
      assert.equal(out.key!.readUInt32LE(0), fanVni(map));
      assert.equal(macOf(out.packet), fanDeviceMac(hostPartOf(map, owner)));
    }
  }
});

test('drops: not IPv4, outside the overlay, slices of the underlay network and broadcast, a truncated packet', () => {
  const code = fanEgressProgram(specOf(fanMap('192.168.0.0/16', '250.0.0.0/8')));
  const drops: [string, Buffer][] = [
    ['ARP', frame('250.90.12.2', 0x0806)],
    ['IPv6', frame('250.90.12.2', 0x86dd)],
    ['outside the overlay', frame('10.90.12.2')],
    ['the underlay network’s slice', frame('250.0.0.9')],
    ['the underlay broadcast’s slice', frame('250.255.255.9')],
    ['a packet too short for an IPv4 header', frame('250.90.12.2', 0x0800, 20)],
  ];
  for (const [what, packet] of drops) {
    const out = run(code, packet);
    assert.equal(out.verdict, TC_ACT_SHOT, what);
    assert.equal(out.key, undefined, `${what}: no tunnel key set`);
  }
  assert.equal(run(code, frame('250.90.12.2')).verdict, TC_ACT_OK, 'and the same path passes a packet for a host');
});

/**
 * Just enough of an eBPF assembler for berth's few small programs, so they ship as TypeScript
 * with no compiler (clang) at build or run time. Pure code: instructions in, bytecode out.
 * Encodings follow linux/bpf.h and Documentation/bpf/standardization/instruction-set.rst; every
 * instruction is 8 bytes (opcode, dst/src registers, a 16-bit offset, a 32-bit immediate).
 *
 * The 32-bit forms (ALU32, JMP32) are used for address arithmetic: their immediates are not
 * sign-extended to 64 bits, so a mask such as 0xff000000 means what it says.
 */

export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;
/** r10 is the read-only frame pointer; the stack is the 512 bytes below it. */
export const FP: Reg = 10;

const LDX = 0x01;
const ST = 0x02;
const STX = 0x03;
const ALU = 0x04;
const JMP = 0x05;
const JMP32 = 0x06;
const ALU64 = 0x07;
const MEM = 0x60;
const K = 0x00;
const X = 0x08;
const SIZE = { 2: 0x08, 4: 0x00 } as const;
const OP = { add: 0x00, or: 0x40, and: 0x50, rsh: 0x70, mov: 0xb0, end: 0xd0 } as const;
const JOP = { jeq: 0x10, jne: 0x50, call: 0x80, exit: 0x90 } as const;
const TO_BE = 0x08;

/** One instruction; a jump names its target by label until `assemble` resolves it. */
export interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number | string;
  imm: number;
}
export type Item = Insn | { label: string };

const insn = (code: number, dst: number, src: number, off: number | string, imm: number): Insn => ({ code, dst, src, off, imm });

export const mov64 = (dst: Reg, src: Reg) => insn(ALU64 | OP.mov | X, dst, src, 0, 0);
export const mov64i = (dst: Reg, imm: number) => insn(ALU64 | OP.mov | K, dst, 0, 0, imm);
export const add64i = (dst: Reg, imm: number) => insn(ALU64 | OP.add | K, dst, 0, 0, imm);
export const mov32 = (dst: Reg, src: Reg) => insn(ALU | OP.mov | X, dst, src, 0, 0);
export const and32i = (dst: Reg, imm: number) => insn(ALU | OP.and | K, dst, 0, 0, imm);
export const or32i = (dst: Reg, imm: number) => insn(ALU | OP.or | K, dst, 0, 0, imm);
export const rsh32i = (dst: Reg, imm: number) => insn(ALU | OP.rsh | K, dst, 0, 0, imm);
/** Host to network byte order of the low `bits` of a register (a swap on a little-endian host). */
export const toBe = (dst: Reg, bits: 16 | 32) => insn(ALU | OP.end | TO_BE, dst, 0, 0, bits);
/** dst = *(size *)(src + off) */
export const ldx = (size: 2 | 4, dst: Reg, src: Reg, off: number) => insn(LDX | MEM | SIZE[size], dst, src, off, 0);
/** *(size *)(dst + off) = src */
export const stx = (size: 2 | 4, dst: Reg, off: number, src: Reg) => insn(STX | MEM | SIZE[size], dst, src, off, 0);
/** *(size *)(dst + off) = imm */
export const st = (size: 2 | 4, dst: Reg, off: number, imm: number) => insn(ST | MEM | SIZE[size], dst, 0, off, imm);
/** Jump to `label` if the 64-bit register differs from `imm`. */
export const jne64i = (dst: Reg, imm: number, label: string) => insn(JMP | JOP.jne | K, dst, 0, label, imm);
/** Jumps comparing the low 32 bits of a register with `imm`. */
export const jne32i = (dst: Reg, imm: number, label: string) => insn(JMP32 | JOP.jne | K, dst, 0, label, imm);
export const jeq32i = (dst: Reg, imm: number, label: string) => insn(JMP32 | JOP.jeq | K, dst, 0, label, imm);
/** Calls helper number `helper` (arguments in r1–r5, result in r0; r1–r5 are clobbered). */
export const call = (helper: number) => insn(JMP | JOP.call, 0, 0, 0, helper);
export const exit = () => insn(JMP | JOP.exit, 0, 0, 0, 0);
export const label = (name: string) => ({ label: name });

export const INSN_SIZE = 8;

/** Bytecode for the instructions, with jump labels turned into offsets (counted from the next instruction). */
export function assemble(items: Item[]): Buffer {
  const at = new Map<string, number>();
  const insns: Insn[] = [];
  for (const item of items) {
    if ('label' in item) {
      if (at.has(item.label)) throw new Error(`eBPF label ${item.label} is defined twice`);
      at.set(item.label, insns.length);
    } else {
      insns.push(item);
    }
  }
  const out = Buffer.alloc(insns.length * INSN_SIZE);
  insns.forEach((ins, i) => {
    let off = ins.off;
    if (typeof off === 'string') {
      const target = at.get(off);
      if (target === undefined) throw new Error(`eBPF jump to undefined label ${off}`);
      off = target - (i + 1);
    }
    const o = i * INSN_SIZE;
    out.writeUInt8(ins.code, o);
    out.writeUInt8(((ins.src & 0xf) << 4) | (ins.dst & 0xf), o + 1);
    out.writeInt16LE(off, o + 2);
    out.writeInt32LE(ins.imm | 0, o + 4);
  });
  return out;
}

/**
 * Netlink attributes encoded straight to bytes (pure), for the request builders that write their
 * messages by hand (VXLAN, sub-links, tc, peer routes): one TLV, padded to 4 bytes, whose length
 * field excludes the padding, as in the kernel.
 */
export const NLA_F_NESTED = 0x8000;

export const align4 = (n: number) => (n + 3) & ~3;

export function tlv(type: number, value: Buffer): Buffer {
  const buf = Buffer.alloc(align4(4 + value.length));
  buf.writeUInt16LE(4 + value.length, 0);
  buf.writeUInt16LE(type, 2);
  value.copy(buf, 4);
  return buf;
}

export const u8 = (type: number, v: number) => tlv(type, Buffer.from([v]));

export const u16 = (type: number, v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return tlv(type, b);
};

export const be16 = (type: number, v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return tlv(type, b);
};

export const u32 = (type: number, v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return tlv(type, b);
};

/** A NUL-terminated string attribute. */
export const str = (type: number, s: string) => tlv(type, Buffer.from(`${s}\0`));

export const nest = (type: number, children: Buffer[]) => tlv(type | NLA_F_NESTED, Buffer.concat(children));

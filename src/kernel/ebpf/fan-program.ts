/**
 * The fan's data plane in one small eBPF program (tc, egress of the fan's VXLAN device): what
 * Ubuntu's fan kernel patch did in the VXLAN driver, done with upstream primitives. For each
 * IPv4 packet leaving the device it computes, from the inner destination Y.C.D.x alone, the host
 * that owns it (underlay F.G.C.D), sets that as the tunnel's remote (bpf_skb_set_tunnel_key, on a
 * VXLAN device in external/collect_md mode) and writes that host's fan-device MAC as the inner
 * destination (fan-mapping.ts fanDeviceMac). No per-peer state, no lookups: a new host works at
 * its first packet, whether or not any daemon runs.
 *
 * Pure code: numbers in, bytecode out (asm.ts). Packets that are not IPv4, or whose destination
 * is outside the overlay or in a slice no host can own, are dropped (nothing else is routed here).
 */
import { FP, add64i, and32i, assemble, call, exit, jeq32i, jne32i, jne64i, label, ldx, mov32, mov64, mov64i, or32i, rsh32i, st, stx, toBe } from './asm.js';

const BPF_FUNC_SKB_STORE_BYTES = 9;
const BPF_FUNC_SKB_SET_TUNNEL_KEY = 21;
const BPF_FUNC_SKB_LOAD_BYTES = 26;
/** bpf_skb_set_tunnel_key flag: no outer UDP checksum, as Linux's VXLAN devices send by default over IPv4. */
const BPF_F_ZERO_CSUM_TX = 1 << 1;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;

const ETH_TYPE_OFFSET = 12;
/** The inner IPv4 destination: Ethernet header 14 + its offset in the IPv4 header 16. */
const IPV4_DST_OFFSET = 30;
/** ETH_P_IP (0x0800) as read from the wire into a little-endian 16-bit load. */
const ETH_P_IP_LE = 0x0008;
/**
 * struct bpf_tunnel_key up to tunnel_label (tunnel_id, remote_ipv4[4], tos, ttl, tunnel_ext):
 * a size the kernel accepts; the rest of the key is zero.
 */
const TUNNEL_KEY_SIZE = 24;
const TUNNEL_TTL = 64;
const MAC_PREFIX_LE = 0xfa02; // 02:fa, little-endian

export interface FanProgramSpec {
  /** The overlay network and its prefix length (host byte order, as numbers). */
  overlayNetwork: number;
  overlayPrefix: number;
  /** The prefix length of each host's slice (overlay prefix + host bits). */
  slicePrefix: number;
  /** The underlay network and its prefix length. */
  underlayNetwork: number;
  underlayPrefix: number;
  vni: number;
}

const maskOf = (prefix: number) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

/** Stack slots below the frame pointer. */
const DST = -4;
const ETH_TYPE = -8;
const KEY = -40;
const MAC = -48;

export function fanEgressProgram(p: FanProgramSpec): Buffer {
  const hostBits = 32 - p.underlayPrefix;
  const hostMask = hostBits === 32 ? 0xffffffff : 2 ** hostBits - 1;
  const loadBytes = (offset: number, slot: number, len: number) => [mov64(1, 6), mov64i(2, offset), mov64(3, FP), add64i(3, slot), mov64i(4, len), call(BPF_FUNC_SKB_LOAD_BYTES), jne64i(0, 0, 'drop')];
  return assemble([
    mov64(6, 1), // r6 = the skb, kept across helper calls
    ...loadBytes(ETH_TYPE_OFFSET, ETH_TYPE, 2),
    ldx(2, 1, FP, ETH_TYPE),
    jne32i(1, ETH_P_IP_LE, 'drop'),
    ...loadBytes(IPV4_DST_OFFSET, DST, 4),
    ldx(4, 7, FP, DST),
    toBe(7, 32), // r7 = the inner destination, as a number
    mov32(1, 7),
    and32i(1, maskOf(p.overlayPrefix)),
    jne32i(1, p.overlayNetwork, 'drop'),
    mov32(8, 7), // r8 = the owner's host part: the destination's bits below the slice prefix's overlay part
    rsh32i(8, 32 - p.slicePrefix),
    and32i(8, hostMask),
    jeq32i(8, 0, 'drop'),
    jeq32i(8, hostMask, 'drop'),
    // The tunnel key: VNI, remote = underlay network | host part, TTL; the rest zero.
    ...Array.from({ length: TUNNEL_KEY_SIZE / 4 }, (_, i) => st(4, FP, KEY + 4 * i, 0)),
    st(4, FP, KEY, p.vni),
    mov32(1, 8),
    or32i(1, p.underlayNetwork),
    stx(4, FP, KEY + 4, 1),
    st(2, FP, KEY + 20, TUNNEL_TTL << 8), // tos 0, ttl
    // The owner's fan-device MAC, 02:fa + the host part's four bytes, as the inner destination.
    st(2, FP, MAC, MAC_PREFIX_LE),
    mov32(1, 8),
    rsh32i(1, 16),
    toBe(1, 16),
    stx(2, FP, MAC + 2, 1),
    mov32(1, 8),
    and32i(1, 0xffff),
    toBe(1, 16),
    stx(2, FP, MAC + 4, 1),
    mov64(1, 6),
    mov64i(2, 0),
    mov64(3, FP),
    add64i(3, MAC),
    mov64i(4, 6),
    mov64i(5, 0),
    call(BPF_FUNC_SKB_STORE_BYTES),
    jne64i(0, 0, 'drop'),
    mov64(1, 6),
    mov64(2, FP),
    add64i(2, KEY),
    mov64i(3, TUNNEL_KEY_SIZE),
    mov64i(4, BPF_F_ZERO_CSUM_TX),
    call(BPF_FUNC_SKB_SET_TUNNEL_KEY),
    jne64i(0, 0, 'drop'),
    mov64i(0, TC_ACT_OK),
    exit(),
    label('drop'),
    mov64i(0, TC_ACT_SHOT),
    exit(),
  ]);
}

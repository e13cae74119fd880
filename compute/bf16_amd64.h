// VDPBF16PS (AVX512_BF16) encoded by hand: Go's assembler has no mnemonic
// for it. Registers are given as numbers: Z0..Z31 as 0..31, and general
// registers AX=0 CX=1 DX=2 BX=3 SP=4 BP=5 SI=6 DI=7 R8..R15=8..15.
//
// The instruction is EVEX.512.F3.0F38.W0 52 /r:
//   62 | P0 | P1 | P2 | 52 | ModRM [| SIB | disp8]
//   P0 = R̄ X̄ B̄ R̄' 0 m m m   (mmm = 010: map 0F38; bits inverted)
//   P1 = W v̄ v̄ v̄ v̄ 1 p p   (W = 0, vvvv = src1 inverted, pp = 10: F3)
//   P2 = z L' L b V̄' a a a  (L'L = 10: 512-bit; b = embedded broadcast)
// and computes, for each of the 16 fp32 lanes i of dst,
//   dst[i] += src1.bf16[2i+1]·src2.bf16[2i+1] + src1.bf16[2i]·src2.bf16[2i]
// (round to nearest even, denormals flushed, MXCSR ignored).

// inv(x, bit) is bit `bit` of register number x, inverted.
#define BF16_INV(x, bit) ((((x)>>(bit))&1)^1)

// VDPBF16PS_ZZZ(dst, src1, src2): register form, src2 in ModRM.rm.
#define VDPBF16PS_ZZZ(dst, src1, src2) \
	BYTE $0x62; \
	BYTE $(BF16_INV(dst, 3)<<7 | BF16_INV(src2, 4)<<6 | BF16_INV(src2, 3)<<5 | BF16_INV(dst, 4)<<4 | 2); \
	BYTE $((((src1)&15)^15)<<3 | 6); \
	BYTE $(0x40 | BF16_INV(src1, 4)<<3); \
	BYTE $0x52; \
	BYTE $(0xC0 | ((dst)&7)<<3 | ((src2)&7))

// VDPBF16PS_BCST(disp, base, index, src1, dst): src2 is the 32-bit value at
// disp(base)(index*1) broadcast to all 16 lanes ({1to16}). Always a SIB byte
// (index 4 = SP means no index) and a compressed disp8: disp must be a
// multiple of 4 in [0, 508] (EVEX scales disp8 by the 4-byte element).
#define VDPBF16PS_BCST(disp, base, index, src1, dst) \
	BYTE $0x62; \
	BYTE $(BF16_INV(dst, 3)<<7 | BF16_INV(index, 3)<<6 | BF16_INV(base, 3)<<5 | BF16_INV(dst, 4)<<4 | 2); \
	BYTE $((((src1)&15)^15)<<3 | 6); \
	BYTE $(0x50 | BF16_INV(src1, 4)<<3); \
	BYTE $0x52; \
	BYTE $(0x44 | ((dst)&7)<<3); \
	BYTE $(((index)&7)<<3 | ((base)&7)); \
	BYTE $((disp)/4)

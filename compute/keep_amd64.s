//go:build amd64 && !purego

#include "textflag.h"

// Eight math/rand/v2 PCG streams (128-bit LCG, DXSM output) in the 64-bit
// lanes of zmm registers, each draw turned into four keep bits as package
// adapter's keepNibble does.
//
// Registers:
//   Z0, Z1    the streams' state, high and low 64 bits
//   Z2        mulLo (VPMULUDQ reads its low 32 bits), Z7 mulLo>>32
//   Z3 mulHi, Z4 incLo, Z5 incHi, Z6 the DXSM multiplier
//   Z8 0xFFFFFFFF, Z9 2¹⁶−threshold in both 32-bit halves,
//   Z10 0x0000FFFF0000FFFF, Z11 0x0000000100000001, Z12 1,
//   Z26 0x0000000200000002, Z27 0xC, Z28 3
//   Z13       the word being built, Z25 the lanes' store offsets
//   Z14–Z23   temporaries; K1 the low half's carry, K2 the store mask

DATA pcglanes<>+0(SB)/8, $0
DATA pcglanes<>+8(SB)/8, $1
DATA pcglanes<>+16(SB)/8, $2
DATA pcglanes<>+24(SB)/8, $3
DATA pcglanes<>+32(SB)/8, $4
DATA pcglanes<>+40(SB)/8, $5
DATA pcglanes<>+48(SB)/8, $6
DATA pcglanes<>+56(SB)/8, $7
GLOBL pcglanes<>(SB), RODATA|NOPTR, $64

#define BCASTQ(imm, z) MOVQ imm, AX; VPBROADCASTQ AX, z

// func keepStreams8(keep *uint64, words, stride int, laneMask, seed, c0, add uint64)
TEXT ·keepStreams8(SB), NOSPLIT, $0-56
	MOVQ keep+0(FP), DI
	MOVQ words+8(FP), CX
	MOVQ stride+16(FP), AX
	VPBROADCASTQ AX, Z25
	VPMULLQ pcglanes<>(SB), Z25, Z25
	MOVQ laneMask+24(FP), R9
	VPBROADCASTQ seed+32(FP), Z0
	VPBROADCASTQ c0+40(FP), Z1
	VPADDQ pcglanes<>(SB), Z1, Z1
	VPBROADCASTQ add+48(FP), Z9
	BCASTQ($0x4385df649fccf645, Z2)
	BCASTQ($0x4385df64, Z7)
	BCASTQ($0x2360ed051fc65da4, Z3)
	BCASTQ($0x14057b7ef767814f, Z4)
	BCASTQ($0x5851f42d4c957f2d, Z5)
	BCASTQ($0xda942042e4dd58b5, Z6)
	BCASTQ($0xffffffff, Z8)
	BCASTQ($0x0000ffff0000ffff, Z10)
	BCASTQ($0x0000000100000001, Z11)
	BCASTQ($1, Z12)
	BCASTQ($0x0000000200000002, Z26)
	BCASTQ($0xc, Z27)
	BCASTQ($3, Z28)

ks_word:
	MOVQ   $16, DX
	VPXORQ Z13, Z13, Z13

ks_draw:
	// state = state·mul + inc mod 2¹²⁸. The high 64 bits of lo·mulLo from
	// four 32×32-bit products: a = lo = a1·2³² + a0, b = mulLo = b1·2³² + b0.
	VPSRLQ   $32, Z1, Z14  // a1
	VPMULUDQ Z2, Z1, Z15   // a0·b0
	VPMULUDQ Z7, Z1, Z16   // a0·b1
	VPMULUDQ Z2, Z14, Z17  // a1·b0
	VPMULUDQ Z7, Z14, Z18  // a1·b1
	VPSRLQ   $32, Z15, Z19 // mid = (a0·b0)>>32 + lo32(a0·b1) + lo32(a1·b0) < 2³⁴
	VPANDQ   Z8, Z16, Z20
	VPADDQ   Z20, Z19, Z19
	VPANDQ   Z8, Z17, Z20
	VPADDQ   Z20, Z19, Z19
	VPSRLQ   $32, Z16, Z16 // high = a1·b1 + (a0·b1)>>32 + (a1·b0)>>32 + mid>>32
	VPADDQ   Z16, Z18, Z18
	VPSRLQ   $32, Z17, Z17
	VPADDQ   Z17, Z18, Z18
	VPSRLQ   $32, Z19, Z20
	VPADDQ   Z20, Z18, Z18
	VPMULLQ  Z2, Z0, Z20   // + hi·mulLo
	VPADDQ   Z20, Z18, Z18
	VPMULLQ  Z3, Z1, Z20   // + lo·mulHi (the old lo)
	VPADDQ   Z20, Z18, Z18
	VPMULLQ  Z2, Z1, Z1    // lo·mulLo mod 2⁶⁴
	VPADDQ   Z4, Z1, Z1    // lo' = lo·mulLo + incLo
	VPCMPUQ  $1, Z4, Z1, K1 // carry out where lo' < incLo
	VPADDQ   Z5, Z18, Z0   // hi' = high + incHi + carry
	VPADDQ   Z12, Z0, K1, Z0

	// DXSM: h = hi'; h ^= h>>32; h *= cheapMul; h ^= h>>48; h *= lo'|1
	VPSRLQ  $32, Z0, Z21
	VPXORQ  Z0, Z21, Z21
	VPMULLQ Z6, Z21, Z21
	VPSRLQ  $48, Z21, Z22
	VPXORQ  Z22, Z21, Z21
	VPORQ   Z12, Z1, Z22
	VPMULLQ Z22, Z21, Z21

	// keepNibble: e = ((h & lanes) + add)>>16 & 0x100000001,
	// o<<1 = (((h>>16) & lanes) + add)>>15 & 0x200000002, x = e | o<<1,
	// nibble = x&3 | x>>30&0xC
	VPANDQ Z10, Z21, Z22
	VPADDQ Z9, Z22, Z22
	VPSRLQ $16, Z22, Z22
	VPANDQ Z11, Z22, Z22
	VPSRLQ $16, Z21, Z23
	VPANDQ Z10, Z23, Z23
	VPADDQ Z9, Z23, Z23
	VPSRLQ $15, Z23, Z23
	VPANDQ Z26, Z23, Z23
	VPORQ  Z23, Z22, Z22
	VPSRLQ $30, Z22, Z23
	VPANDQ Z27, Z23, Z23
	VPANDQ Z28, Z22, Z22
	VPORQ  Z23, Z22, Z22

	// word = word>>4 | nibble<<60: after 16 draws draw q's nibble is at 4q.
	VPSRLQ $4, Z13, Z13
	VPSLLQ $60, Z22, Z22
	VPORQ  Z22, Z13, Z13
	DECQ   DX
	JNZ    ks_draw

	KMOVW       R9, K2
	VPSCATTERQQ Z13, K2, (DI)(Z25*1)
	ADDQ        $8, DI
	DECQ        CX
	JNZ         ks_word
	VZEROUPPER
	RET

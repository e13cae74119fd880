//go:build amd64 && !purego

#include "textflag.h"

// func maskScaleZMM(dst, src *float32, keep *uint64, words int, scale float32, accumulate bool)
//
// Per 64-bit mask word w (64 elements, four zmm of 16): K1 = w, and for
// each quarter q the multiplier m = scale where the bit is set, else +0
// (VMOVAPS.Z of the broadcast scale under the quarter's 16 bits), then
// dst = src·m, or dst += src·m — the Go loop's operations, in its order.
// PRODUCTS loads the word at (DX) into K1..K4 (its four quarters) and
// leaves src·m for the word's 64 elements in Z1..Z4.
#define PRODUCTS \
	KMOVQ     (DX), K1      \
	KSHIFTRQ  $16, K1, K2   \
	KSHIFTRQ  $32, K1, K3   \
	KSHIFTRQ  $48, K1, K4   \
	VMOVAPS.Z Z0, K1, Z5    \
	VMOVAPS.Z Z0, K2, Z6    \
	VMOVAPS.Z Z0, K3, Z7    \
	VMOVAPS.Z Z0, K4, Z8    \
	VMULPS    (SI), Z5, Z1  \
	VMULPS    64(SI), Z6, Z2  \
	VMULPS    128(SI), Z7, Z3 \
	VMULPS    192(SI), Z8, Z4

// STORE writes Z1..Z4 to the word's 64 elements of dst and moves to the
// next word.
#define STORE \
	VMOVUPS Z1, (DI)    \
	VMOVUPS Z2, 64(DI)  \
	VMOVUPS Z3, 128(DI) \
	VMOVUPS Z4, 192(DI) \
	ADDQ    $8, DX      \
	ADDQ    $256, SI    \
	ADDQ    $256, DI

TEXT ·maskScaleZMM(SB), NOSPLIT, $0-37
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         keep+16(FP), DX
	MOVQ         words+24(FP), CX
	VBROADCASTSS scale+32(FP), Z0
	MOVBLZX      accumulate+36(FP), AX
	TESTQ        AX, AX
	JNZ          acc

set:
	PRODUCTS
	STORE
	DECQ CX
	JNZ  set
	VZEROUPPER
	RET

acc:
	PRODUCTS
	VADDPS (DI), Z1, Z1
	VADDPS 64(DI), Z2, Z2
	VADDPS 128(DI), Z3, Z3
	VADDPS 192(DI), Z4, Z4
	STORE
	DECQ   CX
	JNZ    acc
	VZEROUPPER
	RET

//go:build amd64 && !purego

#include "textflag.h"
#include "bf16_amd64.h"
#include "tile24_amd64.h"

// The bf16 frozen-weight GEMM kernel and the bf16 peak loop (AVX512_BF16).
//
// sbgemmKernel24x16 is sgemmKernel24x16 (kernel512_amd64.s) with each k step
// a k *pair*: packed B holds, per pair and column j, the two bf16 values
// (k even, k odd) side by side — 16 columns × 2 = one 64-byte zmm — and
// packed A holds per pair and row i the same two values of A as one 32-bit
// word (24 bytes per 6-row tile). One VDPBF16PS with that word broadcast
// adds both products of the pair to a row's 16 fp32 accumulators: 32
// multiply-adds per instruction against the fp32 kernel's 16.
//
// Registers as in sgemmKernel24x16: Z8..Z31 the 24×16 fp32 tile, Z0/Z1 the
// B pair-row, AX / AX+DX / R11 / R11+DX the four A tiles, BX packed B.
// (In the macros: AX=0, DX=2, SP=4 (no index), R11=11.)

// BSTEP24(ao, bo, zb) does one k-pair step: A at ao = 24·s bytes into each
// tile, B at bo = 64·s bytes, loaded into register zb (number zbn).
#define BSTEP24(ao, bo, zb, zbn) \
	VMOVUPS bo(BX), zb; \
	VDPBF16PS_BCST(ao+0, 0, 4, zbn, 8); \
	VDPBF16PS_BCST(ao+4, 0, 4, zbn, 9); \
	VDPBF16PS_BCST(ao+8, 0, 4, zbn, 10); \
	VDPBF16PS_BCST(ao+12, 0, 4, zbn, 11); \
	VDPBF16PS_BCST(ao+16, 0, 4, zbn, 12); \
	VDPBF16PS_BCST(ao+20, 0, 4, zbn, 13); \
	VDPBF16PS_BCST(ao+0, 0, 2, zbn, 14); \
	VDPBF16PS_BCST(ao+4, 0, 2, zbn, 15); \
	VDPBF16PS_BCST(ao+8, 0, 2, zbn, 16); \
	VDPBF16PS_BCST(ao+12, 0, 2, zbn, 17); \
	VDPBF16PS_BCST(ao+16, 0, 2, zbn, 18); \
	VDPBF16PS_BCST(ao+20, 0, 2, zbn, 19); \
	VDPBF16PS_BCST(ao+0, 11, 4, zbn, 20); \
	VDPBF16PS_BCST(ao+4, 11, 4, zbn, 21); \
	VDPBF16PS_BCST(ao+8, 11, 4, zbn, 22); \
	VDPBF16PS_BCST(ao+12, 11, 4, zbn, 23); \
	VDPBF16PS_BCST(ao+16, 11, 4, zbn, 24); \
	VDPBF16PS_BCST(ao+20, 11, 4, zbn, 25); \
	VDPBF16PS_BCST(ao+0, 11, 2, zbn, 26); \
	VDPBF16PS_BCST(ao+4, 11, 2, zbn, 27); \
	VDPBF16PS_BCST(ao+8, 11, 2, zbn, 28); \
	VDPBF16PS_BCST(ao+12, 11, 2, zbn, 29); \
	VDPBF16PS_BCST(ao+16, 11, 2, zbn, 30); \
	VDPBF16PS_BCST(ao+20, 11, 2, zbn, 31)

// func sbgemmKernel24x16(kp int, a *uint16, ts int, b *uint16, c *float32, ldc int, beta float32, mode int)
//
// acc[i][j] = Σ_{q<kp} Σ_{h<2} A_t[(q*6+i%6)*2+h]·b[(q*16+j)*2+h] in fp32,
// t = i/6, A_t at a + t·ts uint16s (ts even), kp ≥ 1 k pairs. mode 0:
// C = acc; 1: C += acc; 2: C = beta·C + acc (C: 24 rows of 16 floats, row
// stride ldc floats).
TEXT ·sbgemmKernel24x16(SB), NOSPLIT, $0-64
	MOVQ kp+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ ts+16(FP), DX
	SHLQ $1, DX
	MOVQ b+24(FP), BX
	MOVQ c+32(FP), DI
	MOVQ ldc+40(FP), SI
	SHLQ $2, SI
	LEAQ (AX)(DX*2), R11

	ZERO24

	MOVQ CX, R9
	SHRQ $3, R9
	JZ   b24tail

b24loop8:
	BSTEP24(0, 0, Z0, 0)
	BSTEP24(24, 64, Z1, 1)
	BSTEP24(48, 128, Z0, 0)
	BSTEP24(72, 192, Z1, 1)
	BSTEP24(96, 256, Z0, 0)
	BSTEP24(120, 320, Z1, 1)
	BSTEP24(144, 384, Z0, 0)
	BSTEP24(168, 448, Z1, 1)
	ADDQ $192, AX
	ADDQ $192, R11
	ADDQ $512, BX
	DECQ R9
	JNZ  b24loop8

b24tail:
	ANDQ $7, CX
	JZ   b24store

b24loop1:
	BSTEP24(0, 0, Z0, 0)
	ADDQ $24, AX
	ADDQ $24, R11
	ADDQ $64, BX
	DECQ CX
	JNZ  b24loop1

b24store:
	LEAQ (DI)(SI*2), R8
	MOVQ mode+56(FP), DX
	CMPQ DX, $1
	JEQ  b24add
	CMPQ DX, $2
	JEQ  b24scale

b24write:
	WRITE24
	VZEROUPPER
	RET

b24add:
	ADD24
	JMP b24rewind

b24scale:
	VBROADCASTSS beta+48(FP), Z0
	SCALE24

b24rewind:
	MOVQ c+32(FP), DI
	LEAQ (DI)(SI*2), R8
	JMP  b24write


// func bf16DotTest(dst, src1, src2 *[16]float32, form int)
//
// Runs VDPBF16PS once in a given form (0: register form Z3 += Z17·Z9, 1: the
// broadcast form with base AX and no index, 2: base AX with index DX, 3: base
// R11 with index DX, each at disp 8 into src2) so a test can check every
// register form the kernel uses against a scalar reference.
TEXT ·bf16DotTest(SB), NOSPLIT, $0-32
	MOVQ    dst+0(FP), DI
	MOVQ    src1+8(FP), SI
	MOVQ    src2+16(FP), AX
	MOVQ    form+24(FP), CX
	VMOVUPS (DI), Z3
	VMOVUPS (SI), Z17
	VMOVUPS (AX), Z9
	VMOVUPS (DI), Z30
	CMPQ    CX, $1
	JEQ     bt1
	CMPQ    CX, $2
	JEQ     bt2
	CMPQ    CX, $3
	JEQ     bt3
	VDPBF16PS_ZZZ(3, 17, 9)
	VMOVUPS Z3, (DI)
	VZEROUPPER
	RET
bt1:
	VDPBF16PS_BCST(8, 0, 4, 17, 30)
	JMP btstore
bt2:
	VMOVUPS (SI), Z1
	MOVQ    $4, DX
	SUBQ    DX, AX
	VDPBF16PS_BCST(8, 0, 2, 1, 30)
	JMP btstore
bt3:
	MOVQ    $8, DX
	MOVQ    AX, R11
	SUBQ    DX, R11
	VDPBF16PS_BCST(8, 11, 2, 17, 30)
btstore:
	VMOVUPS Z30, (DI)
	VZEROUPPER
	RET


// func cvtBF16Pairs(n16 int, src *float32, dst *uint32, alpha float32)
//
// Rounds alpha·src[0:16·n16] to bf16 (to nearest, ties to even, by integer
// arithmetic: u + 0x7fff + bit 16 of u, then the top half) and stores them
// as 8·n16 pair words: dst[q] = bf16(x[2q]) | bf16(x[2q+1])<<16 (VPMOVDW
// keeps each dword's low half, in order). Finite values round exactly as
// compute.BF16; canonical NaNs stay NaN.
TEXT ·cvtBF16Pairs(SB), NOSPLIT, $0-28
	MOVQ         n16+0(FP), CX
	MOVQ         src+8(FP), SI
	MOVQ         dst+16(FP), DI
	VBROADCASTSS alpha+24(FP), Z15
	MOVL         $1, AX
	VPBROADCASTD AX, Z14
	MOVL         $0x7fff, AX
	VPBROADCASTD AX, Z13

cvtloop:
	VMULPS  (SI), Z15, Z0
	VPSRLD  $16, Z0, Z1
	VPANDD  Z14, Z1, Z1
	VPADDD  Z13, Z1, Z1
	VPADDD  Z1, Z0, Z0
	VPSRLD  $16, Z0, Z0
	VPMOVDW Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     cvtloop
	VZEROUPPER
	RET

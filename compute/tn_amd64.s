//go:build amd64 && !purego

#include "textflag.h"

// func tnKernel8x32(kc int, s *float32, w *float32, ldw int, cols int, alpha float32, scaleW bool, t *float32)
//
// Accumulators: Z16..Z23 hold columns 0..15 of rows 0..7, Z24..Z31 columns
// 16..31. Per k step: the wide row's 32 values (masked to cols) in Z2, Z3,
// optionally times alpha (Z1), then for each of the 8 narrow values one
// broadcast FMA into each half. K1, K2 mask the two halves' columns.
#define ROW(i, zlo, zhi) \
	VFMADD231PS.BCST (i*4)(SI), Z2, zlo \
	VFMADD231PS.BCST (i*4)(SI), Z3, zhi

TEXT ·tnKernel8x32(SB), NOSPLIT, $0-56
	MOVQ         kc+0(FP), CX
	MOVQ         s+8(FP), SI
	MOVQ         w+16(FP), DX
	MOVQ         ldw+24(FP), R8
	SHLQ         $2, R8
	MOVQ         cols+32(FP), AX
	VBROADCASTSS alpha+40(FP), Z1
	MOVBLZX      scaleW+44(FP), R9
	MOVQ         t+48(FP), DI

	// K1 = lanes of columns 0..15 below cols, K2 = of 16..31:
	// BX = cols ≥ 32 ? 2³²−1 : 2^cols − 1.
	MOVQ $0xFFFFFFFF, BX
	CMPQ AX, $32
	JGE  masks
	MOVQ CX, R11 // kc, while CL shifts
	MOVQ AX, CX
	MOVQ $1, BX
	SHLQ CL, BX
	DECQ BX
	MOVQ R11, CX

masks:
	KMOVW   BX, K1
	SHRQ    $16, BX
	KMOVW   BX, K2

	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27
	VPXORD Z28, Z28, Z28
	VPXORD Z29, Z29, Z29
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31

loop:
	VMOVUPS.Z (DX), K1, Z2
	VMOVUPS.Z 64(DX), K2, Z3
	TESTQ     R9, R9
	JZ        fma
	VMULPS    Z1, Z2, Z2
	VMULPS    Z1, Z3, Z3

fma:
	ROW(0, Z16, Z24)
	ROW(1, Z17, Z25)
	ROW(2, Z18, Z26)
	ROW(3, Z19, Z27)
	ROW(4, Z20, Z28)
	ROW(5, Z21, Z29)
	ROW(6, Z22, Z30)
	ROW(7, Z23, Z31)
	ADDQ $32, SI
	ADDQ R8, DX
	DECQ CX
	JNZ  loop

	VMOVUPS Z16, (DI)
	VMOVUPS Z24, 64(DI)
	VMOVUPS Z17, 128(DI)
	VMOVUPS Z25, 192(DI)
	VMOVUPS Z18, 256(DI)
	VMOVUPS Z26, 320(DI)
	VMOVUPS Z19, 384(DI)
	VMOVUPS Z27, 448(DI)
	VMOVUPS Z20, 512(DI)
	VMOVUPS Z28, 576(DI)
	VMOVUPS Z21, 640(DI)
	VMOVUPS Z29, 704(DI)
	VMOVUPS Z22, 768(DI)
	VMOVUPS Z30, 832(DI)
	VMOVUPS Z23, 896(DI)
	VMOVUPS Z31, 960(DI)
	VZEROUPPER
	RET

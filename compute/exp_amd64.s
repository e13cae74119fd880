//go:build amd64 && !purego

#include "textflag.h"

// Constants for expShiftAVX2 (the same float32 values as exp.go), each
// broadcast from 4 bytes.
DATA expc<>+0(SB)/4, $0x3fb8aa3b  // log2e = 1.442695022
DATA expc<>+4(SB)/4, $0x4b400000  // magic = 1.5·2²³
DATA expc<>+8(SB)/4, $0x3f317218  // ln2hi = 0.6931471825
DATA expc<>+12(SB)/4, $0xb102e308 // ln2lo = -1.904654212e-09
DATA expc<>+16(SB)/4, $0x42b20000 // hi = 89
DATA expc<>+20(SB)/4, $0xc2d00000 // lo = -104
DATA expc<>+24(SB)/4, $0x3f800000 // one = 1
DATA expc<>+28(SB)/4, $0x3ab5121a // c6 = 0.001381459879
DATA expc<>+32(SB)/4, $127        // exponent bias (int32)
GLOBL expc<>(SB), RODATA|NOPTR, $36

// c5, c4, c3, c2 as full vectors, for FMA memory operands.
DATA expv<>+0(SB)/4, $0x3c091cf1 // c5
DATA expv<>+4(SB)/4, $0x3c091cf1
DATA expv<>+8(SB)/4, $0x3c091cf1
DATA expv<>+12(SB)/4, $0x3c091cf1
DATA expv<>+16(SB)/4, $0x3c091cf1
DATA expv<>+20(SB)/4, $0x3c091cf1
DATA expv<>+24(SB)/4, $0x3c091cf1
DATA expv<>+28(SB)/4, $0x3c091cf1
DATA expv<>+32(SB)/4, $0x3d2aac79 // c4
DATA expv<>+36(SB)/4, $0x3d2aac79
DATA expv<>+40(SB)/4, $0x3d2aac79
DATA expv<>+44(SB)/4, $0x3d2aac79
DATA expv<>+48(SB)/4, $0x3d2aac79
DATA expv<>+52(SB)/4, $0x3d2aac79
DATA expv<>+56(SB)/4, $0x3d2aac79
DATA expv<>+60(SB)/4, $0x3d2aac79
DATA expv<>+64(SB)/4, $0x3e2aaa49 // c3
DATA expv<>+68(SB)/4, $0x3e2aaa49
DATA expv<>+72(SB)/4, $0x3e2aaa49
DATA expv<>+76(SB)/4, $0x3e2aaa49
DATA expv<>+80(SB)/4, $0x3e2aaa49
DATA expv<>+84(SB)/4, $0x3e2aaa49
DATA expv<>+88(SB)/4, $0x3e2aaa49
DATA expv<>+92(SB)/4, $0x3e2aaa49
DATA expv<>+96(SB)/4, $0x3efffffe // c2
DATA expv<>+100(SB)/4, $0x3efffffe
DATA expv<>+104(SB)/4, $0x3efffffe
DATA expv<>+108(SB)/4, $0x3efffffe
DATA expv<>+112(SB)/4, $0x3efffffe
DATA expv<>+116(SB)/4, $0x3efffffe
DATA expv<>+120(SB)/4, $0x3efffffe
DATA expv<>+124(SB)/4, $0x3efffffe
GLOBL expv<>(SB), RODATA|NOPTR, $128

// Lane masks for the last n mod 8 = m elements: the 8 dwords at
// expmask<>+4·(8−m) are m × all-ones followed by 8−m zeros.
DATA expmask<>+0(SB)/8, $0xffffffffffffffff
DATA expmask<>+8(SB)/8, $0xffffffffffffffff
DATA expmask<>+16(SB)/8, $0xffffffffffffffff
DATA expmask<>+24(SB)/8, $0xffffffffffffffff
DATA expmask<>+32(SB)/8, $0
DATA expmask<>+40(SB)/8, $0
DATA expmask<>+48(SB)/8, $0
DATA expmask<>+56(SB)/8, $0
GLOBL expmask<>(SB), RODATA|NOPTR, $64

// EXP8 turns x in Y0 into y = exp(x − shift) in Y3, eight lanes, exactly as
// exp32 in exp.go does one (Y0–Y4 scratch):
//	t = max(lo, min(hi, x − shift))   operands ordered so NaN passes through
//	k = fma(t, log2e, magic); nf = k − magic; n = bits(k) − bits(magic)
//	r = fma(−nf, ln2hi, t); r = fma(−nf, ln2lo, r)
//	p = c6; p = fma(p, r, c) for c = c5, c4, c3, c2, 1, 1
//	n1 = n >> 1 (arithmetic); n2 = n − n1
//	y = p · bits((n1+127) << 23) · bits((n2+127) << 23)
#define EXP8 \
	VSUBPS       Y15, Y0, Y0; \
	VMINPS       Y0, Y14, Y0; \
	VMAXPS       Y0, Y13, Y0; \
	VMOVAPS      Y11, Y1; \
	VFMADD231PS  Y12, Y0, Y1; \
	VSUBPS       Y11, Y1, Y2; \
	VPSUBD       Y11, Y1, Y1; \
	VFNMADD231PS Y10, Y2, Y0; \
	VFNMADD231PS Y9, Y2, Y0; \
	VBROADCASTSS expc<>+28(SB), Y3; \
	VFMADD213PS  expv<>+0(SB), Y0, Y3; \
	VFMADD213PS  expv<>+32(SB), Y0, Y3; \
	VFMADD213PS  expv<>+64(SB), Y0, Y3; \
	VFMADD213PS  expv<>+96(SB), Y0, Y3; \
	VFMADD213PS  Y7, Y0, Y3; \
	VFMADD213PS  Y7, Y0, Y3; \
	VPSRAD       $1, Y1, Y4; \
	VPSUBD       Y4, Y1, Y1; \
	VPADDD       Y6, Y4, Y4; \
	VPSLLD       $23, Y4, Y4; \
	VPADDD       Y6, Y1, Y1; \
	VPSLLD       $23, Y1, Y1; \
	VMULPS       Y4, Y3, Y3; \
	VMULPS       Y1, Y3, Y3

// func expShiftAVX2(x *float32, n int, shift float32, acc *[8]float32) float32
//
// n ≥ 0. Lane j of the accumulator Y8 (starting from acc) sums the outputs
// i ≡ j (mod 8) in index order; the masked last step adds zeros in its
// unused lanes. The reduction is ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)), as
// expReduce8.
TEXT ·expShiftAVX2(SB), NOSPLIT, $0-36
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS shift+16(FP), Y15
	MOVQ acc+24(FP), AX
	VBROADCASTSS expc<>+16(SB), Y14
	VBROADCASTSS expc<>+20(SB), Y13
	VBROADCASTSS expc<>+0(SB), Y12
	VBROADCASTSS expc<>+4(SB), Y11
	VBROADCASTSS expc<>+8(SB), Y10
	VBROADCASTSS expc<>+12(SB), Y9
	VMOVUPS (AX), Y8
	VBROADCASTSS expc<>+24(SB), Y7
	VPBROADCASTD expc<>+32(SB), Y6
	MOVQ CX, BX
	SHRQ $3, BX
	JZ tail

loop:
	VMOVUPS (DI), Y0
	EXP8
	VMOVUPS Y3, (DI)
	VADDPS Y3, Y8, Y8
	ADDQ $32, DI
	DECQ BX
	JNZ loop

tail:
	ANDQ $7, CX
	JZ reduce
	MOVQ $8, DX
	SUBQ CX, DX
	LEAQ expmask<>(SB), AX
	VMOVDQU (AX)(DX*4), Y5
	VMASKMOVPS (DI), Y5, Y0
	EXP8
	VANDPS Y5, Y3, Y3
	VMASKMOVPS Y3, Y5, (DI)
	VADDPS Y3, Y8, Y8

reduce:
	VEXTRACTF128 $1, Y8, X1
	VADDPS X1, X8, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VZEROUPPER
	MOVSS X0, ret+32(FP)
	RET

#define EXP16 \
	VSUBPS       Z15, Z0, Z0; \
	VMINPS       Z0, Z14, Z0; \
	VMAXPS       Z0, Z13, Z0; \
	VMOVAPS      Z11, Z1; \
	VFMADD231PS  Z12, Z0, Z1; \
	VSUBPS       Z11, Z1, Z2; \
	VPSUBD       Z11, Z1, Z1; \
	VFNMADD231PS Z10, Z2, Z0; \
	VFNMADD231PS Z9, Z2, Z0; \
	VBROADCASTSS expc<>+28(SB), Z3; \
	VFMADD213PS.BCST expv<>+0(SB), Z0, Z3; \
	VFMADD213PS.BCST expv<>+32(SB), Z0, Z3; \
	VFMADD213PS.BCST expv<>+64(SB), Z0, Z3; \
	VFMADD213PS.BCST expv<>+96(SB), Z0, Z3; \
	VFMADD213PS  Z7, Z0, Z3; \
	VFMADD213PS  Z7, Z0, Z3; \
	VPSRAD       $1, Z1, Z4; \
	VPSUBD       Z4, Z1, Z1; \
	VPADDD       Z6, Z4, Z4; \
	VPSLLD       $23, Z4, Z4; \
	VPADDD       Z6, Z1, Z1; \
	VPSLLD       $23, Z1, Z1; \
	VMULPS       Z4, Z3, Z3; \
	VMULPS       Z1, Z3, Z3


// func expShiftZMM(x *float32, blocks int, shift float32, acc *[8]float32)
//
// expShiftAVX2's loop sixteen elements at a time (EXP16 is EXP8 on zmm, the
// same operations lane for lane); the outputs are added to the eight lane
// sums in acc as the ymm loop adds them: elements i…i+7, then i+8…i+15.
TEXT ·expShiftZMM(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), DI
	MOVQ blocks+8(FP), BX
	VBROADCASTSS shift+16(FP), Z15
	MOVQ acc+24(FP), AX
	VBROADCASTSS expc<>+16(SB), Z14
	VBROADCASTSS expc<>+20(SB), Z13
	VBROADCASTSS expc<>+0(SB), Z12
	VBROADCASTSS expc<>+4(SB), Z11
	VBROADCASTSS expc<>+8(SB), Z10
	VBROADCASTSS expc<>+12(SB), Z9
	VMOVUPS (AX), Y8
	VBROADCASTSS expc<>+24(SB), Z7
	VPBROADCASTD expc<>+32(SB), Z6

zloop:
	VMOVUPS (DI), Z0
	EXP16
	VMOVUPS Z3, (DI)
	VADDPS Y3, Y8, Y8
	VEXTRACTF32X8 $1, Z3, Y4
	VADDPS Y4, Y8, Y8
	ADDQ $64, DI
	DECQ BX
	JNZ zloop
	VMOVUPS Y8, (AX)
	VZEROUPPER
	RET

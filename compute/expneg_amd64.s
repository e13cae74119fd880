//go:build amd64 && !purego

#include "textflag.h"

// math.Exp's constants (GOROOT/src/math/exp_amd64.s).
DATA expneg<>+0(SB)/8, $0.5
DATA expneg<>+8(SB)/8, $1.0
DATA expneg<>+16(SB)/8, $2.0
DATA expneg<>+24(SB)/8, $1.6666666666666666667e-1
DATA expneg<>+32(SB)/8, $4.1666666666666666667e-2
DATA expneg<>+40(SB)/8, $8.3333333333333333333e-3
DATA expneg<>+48(SB)/8, $1.3888888888888888889e-3
DATA expneg<>+56(SB)/8, $1.9841269841269841270e-4
DATA expneg<>+64(SB)/8, $2.4801587301587301587e-5
DATA expneg<>+72(SB)/8, $1.4426950408889634073599246810018920  // LOG2E
DATA expneg<>+80(SB)/8, $0.69314718055966295651160180568695068359375  // LN2U
DATA expneg<>+88(SB)/8, $0.28235290563031577122588448175013436025525412068e-12  // LN2L
DATA expneg<>+96(SB)/8, $0.0625
DATA expneg<>+104(SB)/8, $0x8000000000000000 // float64 sign bit
DATA expneg<>+112(SB)/4, $1023
DATA expneg<>+116(SB)/4, $0x7fffffff          // float32 |·| mask
DATA expneg<>+120(SB)/4, $0x44310000          // 708 as float32
GLOBL expneg<>(SB), RODATA, $124

// EXPNEG_SETUP loads the constants EXPNEG_CORE uses (Y6–Y15).
#define EXPNEG_SETUP \
	VBROADCASTSD expneg<>+72(SB), Y8 \
	VBROADCASTSD expneg<>+80(SB), Y9 \
	VBROADCASTSD expneg<>+88(SB), Y10 \
	VBROADCASTSD expneg<>+96(SB), Y11 \
	VBROADCASTSD expneg<>+16(SB), Y12 \
	VBROADCASTSD expneg<>+8(SB), Y13 \
	VBROADCASTSS expneg<>+120(SB), X14 \
	VPBROADCASTD expneg<>+116(SB), X15 \
	VBROADCASTSD expneg<>+104(SB), Y7 \
	VPBROADCASTD expneg<>+112(SB), X6

// EXPNEG_CORE: Y0 = math.Exp(−float64(v)) for the four float32 lanes v in
// X2 (main branch only), with the constants set up by EXPNEG_SETUP.
#define EXPNEG_CORE \
	VCVTPS2PD    X2, Y0 \
	VXORPD       Y7, Y0, Y0 \
	VMULPD       Y8, Y0, Y1 \
	VCVTPD2DQY   Y1, X4 \
	VCVTDQ2PD    X4, Y1 \
	VFNMADD231PD Y9, Y1, Y0 \
	VFNMADD231PD Y10, Y1, Y0 \
	VMULPD       Y11, Y0, Y0 \
	VBROADCASTSD expneg<>+64(SB), Y1 \
	VBROADCASTSD expneg<>+56(SB), Y5 \
	VFMADD213PD  Y5, Y0, Y1 \
	VBROADCASTSD expneg<>+48(SB), Y5 \
	VFMADD213PD  Y5, Y0, Y1 \
	VBROADCASTSD expneg<>+40(SB), Y5 \
	VFMADD213PD  Y5, Y0, Y1 \
	VBROADCASTSD expneg<>+32(SB), Y5 \
	VFMADD213PD  Y5, Y0, Y1 \
	VBROADCASTSD expneg<>+24(SB), Y5 \
	VFMADD213PD  Y5, Y0, Y1 \
	VBROADCASTSD expneg<>+0(SB), Y5 \
	VFMADD213PD  Y5, Y0, Y1 \
	VFMADD213PD  Y13, Y0, Y1 \
	VMULPD       Y1, Y0, Y0 \
	VADDPD       Y12, Y0, Y1 \
	VMULPD       Y1, Y0, Y0 \
	VADDPD       Y12, Y0, Y1 \
	VMULPD       Y1, Y0, Y0 \
	VADDPD       Y12, Y0, Y1 \
	VMULPD       Y1, Y0, Y0 \
	VADDPD       Y12, Y0, Y1 \
	VFMADD213PD  Y13, Y1, Y0 \
	VPADDD       X6, X4, X4 \
	VPMOVSXDQ    X4, Y4 \
	VPSLLQ       $52, Y4, Y4 \
	VMULPD       Y4, Y0, Y0

// func expNegAVX(dst, x *float32, n int) int
// For four float32 lanes at a time: x = −float64(v); k = round(x·log2e);
// r = ((x − k·ln2u) − k·ln2l)·0.0625; the degree-8 Taylor polynomial of
// e^r − 1 by FMAs; four squarings (y·(y+2)); y·(y+2)+1 by one FMA; times
// 2^k; rounded to float32 — math.Exp's avxfma branch, operation by
// operation. Lanes with |v| > 708 or NaN are counted for the caller.
TEXT ·expNegAVX(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	XORQ         AX, AX
	EXPNEG_SETUP

en_loop:
	CMPQ         CX, $4
	JLT          en_done
	VMOVUPS      (SI), X2
	// count lanes outside ±708 or NaN: !(|v| <= 708)
	VANDPS       X15, X2, X3
	VCMPPS       $2, X14, X3, X3        // |v| <= 708 (false for NaN)
	VMOVMSKPS    X3, DX
	XORL         $15, DX
	POPCNTL      DX, DX
	ADDQ         DX, AX
	EXPNEG_CORE
	VCVTPD2PSY   Y0, X0
	VMOVUPS      X0, (DI)
	ADDQ         $16, SI
	ADDQ         $16, DI
	SUBQ         $4, CX
	JMP          en_loop

en_done:
	MOVQ       AX, ret+24(FP)
	VZEROUPPER
	RET

// func expNeg64AVX(dst *float64, x *float32, n int)
// expNegAVX's arithmetic with its float64 results stored unrounded, so a
// test can hold every operation to math.Exp's bits (the float32 rounding
// would hide a changed last bit almost always).
TEXT ·expNeg64AVX(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	EXPNEG_SETUP

e64_loop:
	CMPQ    CX, $4
	JLT     e64_done
	VMOVUPS (SI), X2
	EXPNEG_CORE
	VMOVUPD Y0, (DI)
	ADDQ    $16, SI
	ADDQ    $32, DI
	SUBQ    $4, CX
	JMP     e64_loop

e64_done:
	VZEROUPPER
	RET

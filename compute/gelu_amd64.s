//go:build amd64 && !purego

#include "textflag.h"

// Constants for geluAVX2, each broadcast from 4 bytes (see gelu.go).
DATA geluc<>+0(SB)/4, $0x3f3504f3 // invSqrt2 = 0.7071067811865475
DATA geluc<>+4(SB)/4, $0x40800000 // four = 4.0
DATA geluc<>+8(SB)/4, $0xc0800000 // mfour = -4.0
DATA geluc<>+12(SB)/4, $0x3f000000 // half = 0.5
DATA geluc<>+16(SB)/4, $0x40000000 // two = 2.0
DATA geluc<>+20(SB)/4, $0x3eb504f3 // cgrad = 0.35355339059327373
DATA geluc<>+24(SB)/4, $0xaf95df0b // p13 = -2.72614225801306e-10
DATA geluc<>+28(SB)/4, $0x32edffee // p11 = 2.77068142495902e-08
DATA geluc<>+32(SB)/4, $0xb60cff51 // p9 = -2.10102402082508e-06
DATA geluc<>+36(SB)/4, $0xb86ec2d2 // p7 = -5.69250639462346e-05
DATA geluc<>+40(SB)/4, $0xba40ac63 // p5 = -0.000734990630326855
DATA geluc<>+44(SB)/4, $0xbb41a1f6 // p3 = -0.00295459980854025
DATA geluc<>+48(SB)/4, $0xbc83dbd4 // p1 = -0.0160960333262415
DATA geluc<>+52(SB)/4, $0xb0e0ce90 // dp13 = -1.6356853548078359e-09
DATA geluc<>+56(SB)/4, $0x3414bff5 // dp11 = 1.38534071247951e-07
DATA geluc<>+60(SB)/4, $0xb70cff51 // dp9 = -8.40409608330032e-06
DATA geluc<>+64(SB)/4, $0xb933121e // dp7 = -0.0001707751918387038
DATA geluc<>+68(SB)/4, $0xbac0ac63 // dp5 = -0.00146998126065371
DATA geluc<>+72(SB)/4, $0xb77460cd // q8 = -1.45660718464996e-05
DATA geluc<>+76(SB)/4, $0xb95fbd29 // q6 = -0.000213374055278905
DATA geluc<>+80(SB)/4, $0xbadc924e // q4 = -0.00168282697438203
DATA geluc<>+84(SB)/4, $0xbbf19bf8 // q2 = -0.00737332916720468
DATA geluc<>+88(SB)/4, $0xbc69b6a7 // q0 = -0.0142647390514189
DATA geluc<>+92(SB)/4, $0xb87460cd // dq8 = -5.82642873859984e-05
DATA geluc<>+96(SB)/4, $0xba27cddf // dq6 = -0.0006401221658367149
DATA geluc<>+100(SB)/4, $0xbb5c924e // dq4 = -0.00336565394876406
GLOBL geluc<>(SB), RODATA|NOPTR, $104

// func geluAVX2(out, grad, x *float32, blocks int)
//
// Eight lanes per iteration, the same arithmetic as geluGo:
//   z = clamp(x/√2, −4, 4), x2 = z²
//   P, P', Q, Q' by Horner;  e = z·P/Q
//   e' = ((P + 2·x2·P')·Q − z·P·2z·Q') / Q²  (0 where |x/√2| ≥ 4)
//   cdf = (1 + e)/2,  out = x·cdf,  grad = cdf + x·e'·(1/(2√2))
TEXT ·geluAVX2(SB), NOSPLIT, $0-32
	MOVQ out+0(FP), DI
	MOVQ grad+8(FP), DX
	MOVQ x+16(FP), SI
	MOVQ blocks+24(FP), CX
	TESTQ CX, CX
	JE done
	VBROADCASTSS geluc<>+0(SB), Y15
	VBROADCASTSS geluc<>+4(SB), Y14
	VBROADCASTSS geluc<>+8(SB), Y13
	VBROADCASTSS geluc<>+12(SB), Y12

loop:
	VMOVUPS (SI), Y0                 // x
	VMULPS Y15, Y0, Y1               // z = x/√2
	VCMPPS $1, Y14, Y1, Y10          // inside: z < 4
	VCMPPS $1, Y1, Y13, Y11          // and −4 < z
	VANDPS Y11, Y10, Y10
	VMINPS Y14, Y1, Y1
	VMAXPS Y13, Y1, Y1               // z clamped
	VMULPS Y1, Y1, Y2                // x2

	// P (Y3) and P' (Y4)
	VBROADCASTSS geluc<>+24(SB), Y3
	VBROADCASTSS geluc<>+28(SB), Y9
	VFMADD213PS Y9, Y2, Y3           // Y3 = Y3*x2 + p11
	VBROADCASTSS geluc<>+32(SB), Y9
	VFMADD213PS Y9, Y2, Y3
	VBROADCASTSS geluc<>+36(SB), Y9
	VFMADD213PS Y9, Y2, Y3
	VBROADCASTSS geluc<>+40(SB), Y9
	VFMADD213PS Y9, Y2, Y3
	VBROADCASTSS geluc<>+44(SB), Y9
	VFMADD213PS Y9, Y2, Y3
	VBROADCASTSS geluc<>+48(SB), Y9
	VFMADD213PS Y9, Y2, Y3           // P

	VBROADCASTSS geluc<>+52(SB), Y4
	VBROADCASTSS geluc<>+56(SB), Y9
	VFMADD213PS Y9, Y2, Y4
	VBROADCASTSS geluc<>+60(SB), Y9
	VFMADD213PS Y9, Y2, Y4
	VBROADCASTSS geluc<>+64(SB), Y9
	VFMADD213PS Y9, Y2, Y4
	VBROADCASTSS geluc<>+68(SB), Y9
	VFMADD213PS Y9, Y2, Y4
	VBROADCASTSS geluc<>+44(SB), Y9
	VFMADD213PS Y9, Y2, Y4           // P'

	// Q (Y5) and Q' (Y6)
	VBROADCASTSS geluc<>+72(SB), Y5
	VBROADCASTSS geluc<>+76(SB), Y9
	VFMADD213PS Y9, Y2, Y5
	VBROADCASTSS geluc<>+80(SB), Y9
	VFMADD213PS Y9, Y2, Y5
	VBROADCASTSS geluc<>+84(SB), Y9
	VFMADD213PS Y9, Y2, Y5
	VBROADCASTSS geluc<>+88(SB), Y9
	VFMADD213PS Y9, Y2, Y5           // Q

	VBROADCASTSS geluc<>+92(SB), Y6
	VBROADCASTSS geluc<>+96(SB), Y9
	VFMADD213PS Y9, Y2, Y6
	VBROADCASTSS geluc<>+100(SB), Y9
	VFMADD213PS Y9, Y2, Y6
	VBROADCASTSS geluc<>+84(SB), Y9
	VFMADD213PS Y9, Y2, Y6           // Q'

	VMULPS Y3, Y1, Y7                // p = z·P
	VDIVPS Y5, Y7, Y8                // e = p/Q

	// dp = P + 2·x2·P' (Y4), dq = 2·z·Q' (Y6)
	VBROADCASTSS geluc<>+16(SB), Y9
	VMULPS Y9, Y2, Y11               // 2·x2
	VFMADD213PS Y3, Y11, Y4          // Y4 = 2·x2·P' + P
	VMULPS Y9, Y1, Y11               // 2z
	VMULPS Y11, Y6, Y6               // dq
	// e' = (dp·Q − p·dq) / Q²
	VMULPS Y7, Y6, Y6                // p·dq
	VFMSUB213PS Y6, Y5, Y4           // Y4 = dp·Q − p·dq
	VMULPS Y5, Y5, Y5                // Q²
	VDIVPS Y5, Y4, Y4                // e'
	VANDPS Y10, Y4, Y4               // 0 outside (−4, 4)

	// cdf = (1+e)/2 = e/2 + 1/2; out = x·cdf; grad = cdf + x·e'·c
	VFMADD213PS Y12, Y12, Y8         // Y8 = e·0.5 + 0.5
	VMULPS Y8, Y0, Y1
	VMOVUPS Y1, (DI)
	VBROADCASTSS geluc<>+20(SB), Y9
	VMULPS Y9, Y4, Y4
	VFMADD213PS Y8, Y0, Y4           // Y4 = e'·c·x + cdf
	VMOVUPS Y4, (DX)

	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	DECQ CX
	JNE loop
	VZEROUPPER

done:
	RET

// func geluZMM(out, grad, x *float32, blocks int)
//
// geluAVX2 sixteen lanes at a time, instruction for instruction (the
// in-range mask in K1 instead of a vector), so the same bits: used where
// the GEMMs run zmm.
TEXT ·geluZMM(SB), NOSPLIT, $0-32
	MOVQ out+0(FP), DI
	MOVQ grad+8(FP), DX
	MOVQ x+16(FP), SI
	MOVQ blocks+24(FP), CX
	TESTQ CX, CX
	JE zdone
	VBROADCASTSS geluc<>+0(SB), Z15
	VBROADCASTSS geluc<>+4(SB), Z14
	VBROADCASTSS geluc<>+8(SB), Z13
	VBROADCASTSS geluc<>+12(SB), Z12

zloop:
	VMOVUPS (SI), Z0                 // x
	VMULPS Z15, Z0, Z1               // z = x/√2
	VCMPPS $1, Z14, Z1, K1            // inside: z < 4
	VCMPPS $1, Z1, Z13, K2            // and −4 < z
	KANDW K2, K1, K1
	VMINPS Z14, Z1, Z1
	VMAXPS Z13, Z1, Z1               // z clamped
	VMULPS Z1, Z1, Z2                // x2

	// P (Z3) and P' (Z4)
	VBROADCASTSS geluc<>+24(SB), Z3
	VBROADCASTSS geluc<>+28(SB), Z9
	VFMADD213PS Z9, Z2, Z3           // Z3 = Z3*x2 + p11
	VBROADCASTSS geluc<>+32(SB), Z9
	VFMADD213PS Z9, Z2, Z3
	VBROADCASTSS geluc<>+36(SB), Z9
	VFMADD213PS Z9, Z2, Z3
	VBROADCASTSS geluc<>+40(SB), Z9
	VFMADD213PS Z9, Z2, Z3
	VBROADCASTSS geluc<>+44(SB), Z9
	VFMADD213PS Z9, Z2, Z3
	VBROADCASTSS geluc<>+48(SB), Z9
	VFMADD213PS Z9, Z2, Z3           // P

	VBROADCASTSS geluc<>+52(SB), Z4
	VBROADCASTSS geluc<>+56(SB), Z9
	VFMADD213PS Z9, Z2, Z4
	VBROADCASTSS geluc<>+60(SB), Z9
	VFMADD213PS Z9, Z2, Z4
	VBROADCASTSS geluc<>+64(SB), Z9
	VFMADD213PS Z9, Z2, Z4
	VBROADCASTSS geluc<>+68(SB), Z9
	VFMADD213PS Z9, Z2, Z4
	VBROADCASTSS geluc<>+44(SB), Z9
	VFMADD213PS Z9, Z2, Z4           // P'

	// Q (Z5) and Q' (Z6)
	VBROADCASTSS geluc<>+72(SB), Z5
	VBROADCASTSS geluc<>+76(SB), Z9
	VFMADD213PS Z9, Z2, Z5
	VBROADCASTSS geluc<>+80(SB), Z9
	VFMADD213PS Z9, Z2, Z5
	VBROADCASTSS geluc<>+84(SB), Z9
	VFMADD213PS Z9, Z2, Z5
	VBROADCASTSS geluc<>+88(SB), Z9
	VFMADD213PS Z9, Z2, Z5           // Q

	VBROADCASTSS geluc<>+92(SB), Z6
	VBROADCASTSS geluc<>+96(SB), Z9
	VFMADD213PS Z9, Z2, Z6
	VBROADCASTSS geluc<>+100(SB), Z9
	VFMADD213PS Z9, Z2, Z6
	VBROADCASTSS geluc<>+84(SB), Z9
	VFMADD213PS Z9, Z2, Z6           // Q'

	VMULPS Z3, Z1, Z7                // p = z·P
	VDIVPS Z5, Z7, Z8                // e = p/Q

	// dp = P + 2·x2·P' (Z4), dq = 2·z·Q' (Z6)
	VBROADCASTSS geluc<>+16(SB), Z9
	VMULPS Z9, Z2, Z11               // 2·x2
	VFMADD213PS Z3, Z11, Z4          // Z4 = 2·x2·P' + P
	VMULPS Z9, Z1, Z11               // 2z
	VMULPS Z11, Z6, Z6               // dq
	// e' = (dp·Q − p·dq) / Q²
	VMULPS Z7, Z6, Z6                // p·dq
	VFMSUB213PS Z6, Z5, Z4           // Z4 = dp·Q − p·dq
	VMULPS Z5, Z5, Z5                // Q²
	VDIVPS Z5, Z4, Z4                // e'
	VMOVAPS.Z Z4, K1, Z4             // 0 outside (−4, 4)

	// cdf = (1+e)/2 = e/2 + 1/2; out = x·cdf; grad = cdf + x·e'·c
	VFMADD213PS Z12, Z12, Z8         // Z8 = e·0.5 + 0.5
	VMULPS Z8, Z0, Z1
	VMOVUPS Z1, (DI)
	VBROADCASTSS geluc<>+20(SB), Z9
	VMULPS Z9, Z4, Z4
	VFMADD213PS Z8, Z0, Z4           // Z4 = e'·c·x + cdf
	VMOVUPS Z4, (DX)

	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, DX
	DECQ CX
	JNE zloop
	VZEROUPPER

zdone:
	RET

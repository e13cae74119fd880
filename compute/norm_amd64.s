//go:build amd64 && !purego

#include "textflag.h"

// func sum8AVX(x *float32, blocks int, s *[8]float32)
TEXT ·sum8AVX(SB), NOSPLIT, $0-24
	MOVQ   x+0(FP), SI
	MOVQ   blocks+8(FP), CX
	MOVQ   s+16(FP), DI
	VXORPS Y0, Y0, Y0

sum8_loop:
	VADDPS (SI), Y0, Y0
	ADDQ   $32, SI
	DECQ   CX
	JNZ    sum8_loop
	VMOVUPS Y0, (DI)
	VZEROUPPER
	RET

// func centeredSquares8AVX(x *float32, blocks int, mu float32, s *[8]float32)
TEXT ·centeredSquares8AVX(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), SI
	MOVQ         blocks+8(FP), CX
	VBROADCASTSS mu+16(FP), Y1
	MOVQ         s+24(FP), DI
	VXORPS       Y0, Y0, Y0

sq8_loop:
	VMOVUPS (SI), Y2
	VSUBPS  Y1, Y2, Y2 // d = x − mu
	VMULPS  Y2, Y2, Y2 // d², rounded
	VADDPS  Y2, Y0, Y0
	ADDQ    $32, SI
	DECQ    CX
	JNZ     sq8_loop
	VMOVUPS Y0, (DI)
	VZEROUPPER
	RET

// func normApplyAVX(out, x, w, b *float32, blocks int, mu, r float32)
TEXT ·normApplyAVX(SB), NOSPLIT, $0-48
	MOVQ         out+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         w+16(FP), DX
	MOVQ         b+24(FP), R8
	MOVQ         blocks+32(FP), CX
	VBROADCASTSS mu+40(FP), Y1
	VBROADCASTSS r+44(FP), Y2

apply_loop:
	VMOVUPS (SI), Y0
	VSUBPS  Y1, Y0, Y0   // x − mu
	VMULPS  Y2, Y0, Y0   // ·r
	VMULPS  (DX), Y0, Y0 // ·w
	VADDPS  (R8), Y0, Y0 // + b
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, R8
	ADDQ    $32, DI
	DECQ    CX
	JNZ     apply_loop
	VZEROUPPER
	RET

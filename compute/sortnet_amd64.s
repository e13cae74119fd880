//go:build amd64 && !purego

#include "textflag.h"

// func sortNet16AVX(buf *float32, net *[2]int32, pairs int)
//
// For each comparator (a, b): rows a and b of buf (16 floats, 64 bytes
// each) become their lane-wise min and max. VMINPS/VMAXPS return the second
// source when the values compare equal (±0), which the caller allows.
TEXT ·sortNet16AVX(SB), NOSPLIT, $0-24
	MOVQ buf+0(FP), DI
	MOVQ net+8(FP), SI
	MOVQ pairs+16(FP), CX

sn_loop:
	MOVLQSX (SI), AX
	MOVLQSX 4(SI), BX
	SHLQ    $6, AX
	SHLQ    $6, BX
	VMOVUPS (DI)(AX*1), Y0
	VMOVUPS 32(DI)(AX*1), Y1
	VMOVUPS (DI)(BX*1), Y2
	VMOVUPS 32(DI)(BX*1), Y3
	VMINPS  Y2, Y0, Y4
	VMINPS  Y3, Y1, Y5
	VMAXPS  Y2, Y0, Y0
	VMAXPS  Y3, Y1, Y1
	VMOVUPS Y4, (DI)(AX*1)
	VMOVUPS Y5, 32(DI)(AX*1)
	VMOVUPS Y0, (DI)(BX*1)
	VMOVUPS Y1, 32(DI)(BX*1)
	ADDQ    $8, SI
	DECQ    CX
	JNZ     sn_loop
	VZEROUPPER
	RET

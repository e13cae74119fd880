//go:build amd64 && !purego

#include "textflag.h"

// func dot64AVX(x, y *float64, n int) float64
// Four ymm accumulators (16 doubles per step), then 4 and 1 at a time.
TEXT ·dot64AVX(SB), NOSPLIT, $0-32
	MOVQ   x+0(FP), SI
	MOVQ   y+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3

dot64_16:
	CMPQ        CX, $16
	JLT         dot64_4
	VMOVUPD     (SI), Y4
	VMOVUPD     32(SI), Y5
	VMOVUPD     64(SI), Y6
	VMOVUPD     96(SI), Y7
	VFMADD231PD (DI), Y4, Y0
	VFMADD231PD 32(DI), Y5, Y1
	VFMADD231PD 64(DI), Y6, Y2
	VFMADD231PD 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $16, CX
	JMP         dot64_16

dot64_4:
	CMPQ        CX, $4
	JLT         dot64_sum
	VMOVUPD     (SI), Y4
	VFMADD231PD (DI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $4, CX
	JMP         dot64_4

dot64_sum:
	VADDPD       Y1, Y0, Y0
	VADDPD       Y3, Y2, Y2
	VADDPD       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VHADDPD      X0, X0, X0

dot64_1:
	TESTQ       CX, CX
	JZ          dot64_done
	VMOVSD      (SI), X4
	VFMADD231SD (DI), X4, X0
	ADDQ        $8, SI
	ADDQ        $8, DI
	DECQ        CX
	JMP         dot64_1

dot64_done:
	VMOVSD X0, ret+24(FP)
	VZEROUPPER
	RET

// func symRank2DotAVX(row, v, w, u *float64, n int, vi, wi float64) float64
// row[j] = row[j] − vi·w[j] − wi·v[j]; returns Σ row[j]·u[j] (new values).
// Two ymm accumulators over 8 doubles per step, then 4 and 1 at a time.
TEXT ·symRank2DotAVX(SB), NOSPLIT, $0-64
	MOVQ         row+0(FP), DI
	MOVQ         v+8(FP), SI
	MOVQ         w+16(FP), DX
	MOVQ         u+24(FP), BX
	MOVQ         n+32(FP), CX
	VBROADCASTSD vi+40(FP), Y14
	VBROADCASTSD wi+48(FP), Y15
	VXORPD       Y0, Y0, Y0
	VXORPD       Y1, Y1, Y1

r2_8:
	CMPQ         CX, $8
	JLT          r2_4
	VMOVUPD      (DI), Y4
	VMOVUPD      32(DI), Y5
	VFNMADD231PD (DX), Y14, Y4
	VFNMADD231PD 32(DX), Y14, Y5
	VFNMADD231PD (SI), Y15, Y4
	VFNMADD231PD 32(SI), Y15, Y5
	VMOVUPD      Y4, (DI)
	VMOVUPD      Y5, 32(DI)
	VFMADD231PD  (BX), Y4, Y0
	VFMADD231PD  32(BX), Y5, Y1
	ADDQ         $64, DI
	ADDQ         $64, SI
	ADDQ         $64, DX
	ADDQ         $64, BX
	SUBQ         $8, CX
	JMP          r2_8

r2_4:
	CMPQ         CX, $4
	JLT          r2_sum
	VMOVUPD      (DI), Y4
	VFNMADD231PD (DX), Y14, Y4
	VFNMADD231PD (SI), Y15, Y4
	VMOVUPD      Y4, (DI)
	VFMADD231PD  (BX), Y4, Y0
	ADDQ         $32, DI
	ADDQ         $32, SI
	ADDQ         $32, DX
	ADDQ         $32, BX
	SUBQ         $4, CX
	JMP          r2_4

r2_sum:
	VADDPD       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VHADDPD      X0, X0, X0

r2_1:
	TESTQ        CX, CX
	JZ           r2_done
	VMOVSD       (DI), X4
	VFNMADD231SD (DX), X14, X4
	VFNMADD231SD (SI), X15, X4
	VMOVSD       X4, (DI)
	VFMADD231SD  (BX), X4, X0
	ADDQ         $8, DI
	ADDQ         $8, SI
	ADDQ         $8, DX
	ADDQ         $8, BX
	DECQ         CX
	JMP          r2_1

r2_done:
	VMOVSD X0, ret+56(FP)
	VZEROUPPER
	RET

//go:build amd64 && !purego

#include "textflag.h"

// HSUM4 stores the sum of ymm register y's four doubles (x is its low
// half) to mem; y is clobbered.
#define HSUM4(y, x, mem) \
	VEXTRACTF128 $1, y, X15 \
	VADDPD       X15, x, x   \
	VHADDPD      x, x, x     \
	VMOVSD       x, mem

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

// func gram4x3AVX(a *float64, lda int, b *float64, ldb int, n int, out *float64)
// out[3i+j] = Σ_k a[i·lda+k]·b[j·ldb+k] for i < 4, j < 3, k < n (n a
// multiple of 4): twelve ymm accumulators, the four a rows in registers,
// the three b rows as FMA memory operands — 7 loads per 12 FMAs, where
// twelve separate dot products would take 24.
TEXT ·gram4x3AVX(SB), NOSPLIT, $0-48
	MOVQ a+0(FP), R8
	MOVQ lda+8(FP), AX
	SHLQ $3, AX
	LEAQ (R8)(AX*1), R9
	LEAQ (R9)(AX*1), R10
	LEAQ (R10)(AX*1), R11
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), AX
	SHLQ $3, AX
	LEAQ (DI)(AX*1), DX
	LEAQ (DX)(AX*1), BX
	MOVQ n+32(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11

g43_loop:
	CMPQ        CX, $4
	JLT         g43_sum
	VMOVUPD     (R8), Y12
	VMOVUPD     (R9), Y13
	VMOVUPD     (R10), Y14
	VMOVUPD     (R11), Y15
	VFMADD231PD (DI), Y12, Y0
	VFMADD231PD (DX), Y12, Y1
	VFMADD231PD (BX), Y12, Y2
	VFMADD231PD (DI), Y13, Y3
	VFMADD231PD (DX), Y13, Y4
	VFMADD231PD (BX), Y13, Y5
	VFMADD231PD (DI), Y14, Y6
	VFMADD231PD (DX), Y14, Y7
	VFMADD231PD (BX), Y14, Y8
	VFMADD231PD (DI), Y15, Y9
	VFMADD231PD (DX), Y15, Y10
	VFMADD231PD (BX), Y15, Y11
	ADDQ        $32, R8
	ADDQ        $32, R9
	ADDQ        $32, R10
	ADDQ        $32, R11
	ADDQ        $32, DI
	ADDQ        $32, DX
	ADDQ        $32, BX
	SUBQ        $4, CX
	JMP         g43_loop

g43_sum:
	MOVQ out+40(FP), SI
	HSUM4(Y0, X0, 0(SI))
	HSUM4(Y1, X1, 8(SI))
	HSUM4(Y2, X2, 16(SI))
	HSUM4(Y3, X3, 24(SI))
	HSUM4(Y4, X4, 32(SI))
	HSUM4(Y5, X5, 40(SI))
	HSUM4(Y6, X6, 48(SI))
	HSUM4(Y7, X7, 56(SI))
	HSUM4(Y8, X8, 64(SI))
	HSUM4(Y9, X9, 72(SI))
	HSUM4(Y10, X10, 80(SI))
	HSUM4(Y11, X11, 88(SI))
	VZEROUPPER
	RET

// func axpyWidenAVX(alpha float64, x, y *float32, n int)
// y[i] += float32(alpha·float64(x[i])): widen (exact), multiply in float64,
// round to float32 (MXCSR's round-to-nearest-even, as Go's conversion),
// add in float32. Eight at a time, then one.
TEXT ·axpyWidenAVX(SB), NOSPLIT, $0-32
	VBROADCASTSD alpha+0(FP), Y15
	MOVQ         x+8(FP), SI
	MOVQ         y+16(FP), DI
	MOVQ         n+24(FP), CX

aw_8:
	CMPQ        CX, $8
	JLT         aw_1
	VCVTPS2PD   (SI), Y0
	VCVTPS2PD   16(SI), Y1
	VMULPD      Y15, Y0, Y0
	VMULPD      Y15, Y1, Y1
	VCVTPD2PSY  Y0, X0
	VCVTPD2PSY  Y1, X1
	VINSERTF128 $1, X1, Y0, Y0
	VADDPS      (DI), Y0, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         aw_8

aw_1:
	TESTQ     CX, CX
	JZ        aw_done
	VCVTSS2SD (SI), X0, X0
	VMULSD    X15, X0, X0
	VCVTSD2SS X0, X0, X0
	VADDSS    (DI), X0, X0
	VMOVSS    X0, (DI)
	ADDQ      $4, SI
	ADDQ      $4, DI
	DECQ      CX
	JMP       aw_1

aw_done:
	VZEROUPPER
	RET

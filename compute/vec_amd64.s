//go:build amd64 && !purego

#include "textflag.h"

// Vector kernels for AVX2+FMA. Each takes raw pointers and a length n; the
// Go wrappers in vec_amd64.go check the slice lengths. Main loops do 32
// floats (4 ymm) per iteration, then 8 at a time, then single floats.

// func axpyAVX(alpha float32, x, y *float32, n int)   y += alpha·x
TEXT ·axpyAVX(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Y0
	MOVQ         x+8(FP), SI
	MOVQ         y+16(FP), DI
	MOVQ         n+24(FP), CX

axpy_32:
	CMPQ        CX, $32
	JLT         axpy_8
	VMOVUPS     (DI), Y1
	VMOVUPS     32(DI), Y2
	VMOVUPS     64(DI), Y3
	VMOVUPS     96(DI), Y4
	VFMADD231PS (SI), Y0, Y1
	VFMADD231PS 32(SI), Y0, Y2
	VFMADD231PS 64(SI), Y0, Y3
	VFMADD231PS 96(SI), Y0, Y4
	VMOVUPS     Y1, (DI)
	VMOVUPS     Y2, 32(DI)
	VMOVUPS     Y3, 64(DI)
	VMOVUPS     Y4, 96(DI)
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         axpy_32

axpy_8:
	CMPQ        CX, $8
	JLT         axpy_1
	VMOVUPS     (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS     Y1, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         axpy_8

axpy_1:
	TESTQ       CX, CX
	JZ          axpy_done
	VMOVSS      (DI), X1
	VFMADD231SS (SI), X0, X1
	VMOVSS      X1, (DI)
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JMP         axpy_1

axpy_done:
	VZEROUPPER
	RET

// func axpy2AVX(a0 float32, x0 *float32, a1 float32, x1, y *float32, n int)
// y += a0·x0 + a1·x1, one pass over y.
TEXT ·axpy2AVX(SB), NOSPLIT, $0-48
	VBROADCASTSS a0+0(FP), Y0
	MOVQ         x0+8(FP), SI
	VBROADCASTSS a1+16(FP), Y1
	MOVQ         x1+24(FP), DX
	MOVQ         y+32(FP), DI
	MOVQ         n+40(FP), CX

axpy2_32:
	CMPQ        CX, $32
	JLT         axpy2_8
	VMOVUPS     (DI), Y2
	VMOVUPS     32(DI), Y3
	VMOVUPS     64(DI), Y4
	VMOVUPS     96(DI), Y5
	VFMADD231PS (SI), Y0, Y2
	VFMADD231PS 32(SI), Y0, Y3
	VFMADD231PS 64(SI), Y0, Y4
	VFMADD231PS 96(SI), Y0, Y5
	VFMADD231PS (DX), Y1, Y2
	VFMADD231PS 32(DX), Y1, Y3
	VFMADD231PS 64(DX), Y1, Y4
	VFMADD231PS 96(DX), Y1, Y5
	VMOVUPS     Y2, (DI)
	VMOVUPS     Y3, 32(DI)
	VMOVUPS     Y4, 64(DI)
	VMOVUPS     Y5, 96(DI)
	ADDQ        $128, SI
	ADDQ        $128, DX
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         axpy2_32

axpy2_8:
	CMPQ        CX, $8
	JLT         axpy2_1
	VMOVUPS     (DI), Y2
	VFMADD231PS (SI), Y0, Y2
	VFMADD231PS (DX), Y1, Y2
	VMOVUPS     Y2, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DX
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         axpy2_8

axpy2_1:
	TESTQ       CX, CX
	JZ          axpy2_done
	VMOVSS      (DI), X2
	VFMADD231SS (SI), X0, X2
	VFMADD231SS (DX), X1, X2
	VMOVSS      X2, (DI)
	ADDQ        $4, SI
	ADDQ        $4, DX
	ADDQ        $4, DI
	DECQ        CX
	JMP         axpy2_1

axpy2_done:
	VZEROUPPER
	RET

// func dotAVX(x, y *float32, n int) float32
// Four independent 8-wide partial sums hide the FMA latency; they are
// combined pairwise at the end.
TEXT ·dotAVX(SB), NOSPLIT, $0-28
	MOVQ   x+0(FP), SI
	MOVQ   y+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

dot_32:
	CMPQ        CX, $32
	JLT         dot_8
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         dot_32

dot_8:
	CMPQ        CX, $8
	JLT         dot_sum
	VMOVUPS     (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         dot_8

dot_sum:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0

dot_1:
	TESTQ       CX, CX
	JZ          dot_done
	VMOVSS      (SI), X4
	VFMADD231SS (DI), X4, X0
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JMP         dot_1

dot_done:
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func scaleAVX(alpha float32, x *float32, n int)   x *= alpha
TEXT ·scaleAVX(SB), NOSPLIT, $0-24
	VBROADCASTSS alpha+0(FP), Y0
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX

scale_32:
	CMPQ    CX, $32
	JLT     scale_8
	VMULPS  (SI), Y0, Y1
	VMULPS  32(SI), Y0, Y2
	VMULPS  64(SI), Y0, Y3
	VMULPS  96(SI), Y0, Y4
	VMOVUPS Y1, (SI)
	VMOVUPS Y2, 32(SI)
	VMOVUPS Y3, 64(SI)
	VMOVUPS Y4, 96(SI)
	ADDQ    $128, SI
	SUBQ    $32, CX
	JMP     scale_32

scale_8:
	CMPQ    CX, $8
	JLT     scale_1
	VMULPS  (SI), Y0, Y1
	VMOVUPS Y1, (SI)
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     scale_8

scale_1:
	TESTQ  CX, CX
	JZ     scale_done
	VMULSS (SI), X0, X1
	VMOVSS X1, (SI)
	ADDQ   $4, SI
	DECQ   CX
	JMP    scale_1

scale_done:
	VZEROUPPER
	RET

// func maxAVX(x *float32, n int) float32   max over n ≥ 1 floats
//
// Four ymm running maxima (32 floats per iteration), then 8 at a time, then
// single floats. VMAXPS returns its second source when either is NaN, so
// NaNs are not sticky in the maxima: a separate mask (Y5, VCMPPS UNORD of
// each input with itself, ORed) remembers whether any NaN was seen.
TEXT ·maxAVX(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS (SI), Y0 // x[0] is a valid starting value for every lane
	VMOVAPS      Y0, Y1
	VMOVAPS      Y0, Y2
	VMOVAPS      Y0, Y3
	VXORPS       Y5, Y5, Y5

max_32:
	CMPQ    CX, $32
	JLT     max_8
	VMOVUPS (SI), Y6
	VMOVUPS 32(SI), Y7
	VMOVUPS 64(SI), Y8
	VMOVUPS 96(SI), Y9
	VMAXPS  Y6, Y0, Y0
	VMAXPS  Y7, Y1, Y1
	VMAXPS  Y8, Y2, Y2
	VMAXPS  Y9, Y3, Y3
	VCMPPS  $3, Y7, Y6, Y10 // unordered: a NaN in either
	VCMPPS  $3, Y9, Y8, Y11
	VORPS   Y10, Y5, Y5
	VORPS   Y11, Y5, Y5
	ADDQ    $128, SI
	SUBQ    $32, CX
	JMP     max_32

max_8:
	CMPQ    CX, $8
	JLT     max_fold
	VMOVUPS (SI), Y6
	VMAXPS  Y6, Y0, Y0
	VCMPPS  $3, Y6, Y6, Y10
	VORPS   Y10, Y5, Y5
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     max_8

max_fold:
	VMAXPS       Y1, Y0, Y0
	VMAXPS       Y3, Y2, Y2
	VMAXPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4E, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xB1, X0, X1
	VMAXPS       X1, X0, X0

max_1:
	TESTQ   CX, CX
	JZ      max_nan
	VMOVSS  (SI), X6
	VMAXSS  X6, X0, X0
	VUCOMISS X6, X6
	JPS     max_isnan
	ADDQ    $4, SI
	DECQ    CX
	JMP     max_1

max_nan:
	VPTEST Y5, Y5
	JNZ    max_isnan
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

max_isnan:
	MOVL   $0x7FC00000, AX
	MOVL   AX, ret+16(FP)
	VZEROUPPER
	RET

// func mulAddAVX(alpha float32, x, y *float32, n int)
// y[i] = y[i] + alpha·x[i], the product rounded before the add (VMULPS then
// VADDPS, never an FMA): the Go expression's bits. Eight at a time, then one.
TEXT ·mulAddAVX(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Y15
	MOVQ         x+8(FP), SI
	MOVQ         y+16(FP), DI
	MOVQ         n+24(FP), CX

ma_8:
	CMPQ    CX, $8
	JLT     ma_1
	VMULPS  (SI), Y15, Y0
	VADDPS  (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     ma_8

ma_1:
	TESTQ   CX, CX
	JZ      ma_done
	VMULSS  (SI), X15, X0
	VADDSS  (DI), X0, X0
	VMOVSS  X0, (DI)
	ADDQ    $4, SI
	ADDQ    $4, DI
	DECQ    CX
	JMP     ma_1

ma_done:
	VZEROUPPER
	RET

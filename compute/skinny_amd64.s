//go:build amd64 && !purego

#include "textflag.h"

// func dot8Rows(m, kc int, a *float32, lda int, bt *float32, ldbt int, c *float32, ldc int, alpha, beta float32, mode int, nmask, kmask *int32)
//
// For each of m rows of A (row i at a + i·lda floats) and each of the 8 rows
// of bt (row j at bt + j·ldbt floats, zero-padded to a multiple of 8 ≥ kc)
// computes s_ij = Σ_{p<kc} a_i[p]·bt_j[p] and applies it to the first n
// floats of C row i (c + i·ldc), n being the number of lanes set in the
// nmask vector: mode 0 C = alpha·s, 1 C += alpha·s, 2 C = alpha·s + beta·C.
// kmask has the first kc mod 8 lanes set and masks the load of the last,
// partial 8-float chunk of each A row (masked lanes are not read, so the row
// may end anywhere).
//
// Y0..Y7 accumulate the 8 dot products 8 lanes wide; each step loads one ymm
// of A and FMAs it against the 8 B rows (memory operands, L1-resident: the
// caller keeps 8·ldbt at 16 KiB).
TEXT ·dot8Rows(SB), NOSPLIT, $0-96
	MOVQ         m+0(FP), CX
	MOVQ         a+16(FP), AX
	MOVQ         lda+24(FP), SI
	SHLQ         $2, SI
	MOVQ         ldbt+40(FP), R8
	SHLQ         $2, R8
	LEAQ         (R8)(R8*2), R10 // 3 B rows
	MOVQ         c+48(FP), DI
	MOVQ         ldc+56(FP), R12
	SHLQ         $2, R12
	VBROADCASTSS alpha+64(FP), Y12
	VBROADCASTSS beta+68(FP), Y13
	MOVQ         mode+72(FP), R13
	MOVQ         nmask+80(FP), R14
	VMOVDQU      (R14), Y10
	MOVQ         kmask+88(FP), R14
	VMOVDQU      (R14), Y11
	TESTQ        CX, CX
	JZ           d8_done

d8_row:
	MOVQ   bt+32(FP), BX
	LEAQ   (BX)(R8*4), R9 // B row 4
	MOVQ   AX, R11
	MOVQ   kc+8(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

d8_k:
	CMPQ        DX, $8
	JLT         d8_tail
	VMOVUPS     (R11), Y8
	VFMADD231PS (BX), Y8, Y0
	VFMADD231PS (BX)(R8*1), Y8, Y1
	VFMADD231PS (BX)(R8*2), Y8, Y2
	VFMADD231PS (BX)(R10*1), Y8, Y3
	VFMADD231PS (R9), Y8, Y4
	VFMADD231PS (R9)(R8*1), Y8, Y5
	VFMADD231PS (R9)(R8*2), Y8, Y6
	VFMADD231PS (R9)(R10*1), Y8, Y7
	ADDQ        $32, R11
	ADDQ        $32, BX
	ADDQ        $32, R9
	SUBQ        $8, DX
	JMP         d8_k

d8_tail:
	TESTQ       DX, DX
	JZ          d8_reduce
	VMASKMOVPS  (R11), Y11, Y8
	VFMADD231PS (BX), Y8, Y0
	VFMADD231PS (BX)(R8*1), Y8, Y1
	VFMADD231PS (BX)(R8*2), Y8, Y2
	VFMADD231PS (BX)(R10*1), Y8, Y3
	VFMADD231PS (R9), Y8, Y4
	VFMADD231PS (R9)(R8*1), Y8, Y5
	VFMADD231PS (R9)(R8*2), Y8, Y6
	VFMADD231PS (R9)(R10*1), Y8, Y7

d8_reduce:
	// Y0 = [a01 a23 b01 b23 | a45 a67 b45 b67] after the first hadd (a,b =
	// B rows 0,1); two rounds and a lane swap leave the 8 totals in order.
	VHADDPS    Y1, Y0, Y0
	VHADDPS    Y3, Y2, Y2
	VHADDPS    Y5, Y4, Y4
	VHADDPS    Y7, Y6, Y6
	VHADDPS    Y2, Y0, Y0
	VHADDPS    Y6, Y4, Y4
	VPERM2F128 $0x20, Y4, Y0, Y1
	VPERM2F128 $0x31, Y4, Y0, Y2
	VADDPS     Y2, Y1, Y1
	VMULPS     Y12, Y1, Y1

	CMPQ R13, $1
	JEQ  d8_add
	CMPQ R13, $2
	JEQ  d8_scale

d8_store:
	VMASKMOVPS Y1, Y10, (DI)
	ADDQ       SI, AX
	ADDQ       R12, DI
	DECQ       CX
	JNZ        d8_row

d8_done:
	VZEROUPPER
	RET

d8_add:
	VMASKMOVPS (DI), Y10, Y2
	VADDPS     Y2, Y1, Y1
	JMP        d8_store

d8_scale:
	VMASKMOVPS  (DI), Y10, Y2
	VFMADD231PS Y2, Y13, Y1
	JMP         d8_store

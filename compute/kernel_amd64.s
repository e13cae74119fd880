//go:build amd64 && !purego

#include "textflag.h"

// GEMM micro-kernel and packing routines for AVX2+FMA (see gemm.go for the
// blocking scheme and the packed layouts).
//
// Register use in the micro-kernel:
//   Y4..Y15  the 6×16 accumulator tile: row i lives in Y(4+2i) (columns 0–7)
//            and Y(5+2i) (columns 8–15)
//   Y0, Y1   one row of the packed B micro-panel (16 floats)
//   Y2, Y3   broadcast A values (alternating, so consecutive FMAs pairs do not
//            wait on one register)
//   AX       packed A (6 floats per k step), BX packed B (16 floats per k step)

// KSTEP does one rank-1 update of the tile with k step s (A at 24·s bytes,
// B at 64·s bytes from AX/BX).
#define KSTEP(ao, bo) \
	VMOVUPS      bo(BX), Y0     \
	VMOVUPS      bo+32(BX), Y1  \
	VBROADCASTSS ao(AX), Y2     \
	VFMADD231PS  Y0, Y2, Y4     \
	VFMADD231PS  Y1, Y2, Y5     \
	VBROADCASTSS ao+4(AX), Y3   \
	VFMADD231PS  Y0, Y3, Y6     \
	VFMADD231PS  Y1, Y3, Y7     \
	VBROADCASTSS ao+8(AX), Y2   \
	VFMADD231PS  Y0, Y2, Y8     \
	VFMADD231PS  Y1, Y2, Y9     \
	VBROADCASTSS ao+12(AX), Y3  \
	VFMADD231PS  Y0, Y3, Y10    \
	VFMADD231PS  Y1, Y3, Y11    \
	VBROADCASTSS ao+16(AX), Y2  \
	VFMADD231PS  Y0, Y2, Y12    \
	VFMADD231PS  Y1, Y2, Y13    \
	VBROADCASTSS ao+20(AX), Y3  \
	VFMADD231PS  Y0, Y3, Y14    \
	VFMADD231PS  Y1, Y3, Y15

// func sgemmKernel6x16(kc int, a, b, c *float32, ldc int, beta float32, mode int, pf *float32)
//
// acc = Σ_{p<kc} a[p*6+i]·b[p*16+j]   (6×16 tile, kc ≥ 1)
// mode 0: C = acc; mode 1: C += acc; mode 2: C = beta·C + acc.
// C row i starts at c + i·ldc floats; 16 floats of each of the 6 rows are
// written.
//
// pf is a prefetch hint: one 64-byte line at pf + 64·j is pulled into L2 for
// each 8-step iteration j. The driver points it at the next B micro-panel so
// that panel arrives from L3 while this one is still being used.
TEXT ·sgemmKernel6x16(SB), NOSPLIT, $0-64
	MOVQ pf+56(FP), R10
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), SI
	SHLQ $2, SI
	LEAQ (DI)(SI*2), R8 // row 2
	LEAQ (R8)(SI*2), R9 // row 4

	// The C tile is touched only after the k loop; start pulling its 6 rows
	// (64 bytes each, possibly straddling two lines) into L1 now.
	PREFETCHT0 (DI)
	PREFETCHT0 60(DI)
	PREFETCHT0 (DI)(SI*1)
	PREFETCHT0 60(DI)(SI*1)
	PREFETCHT0 (R8)
	PREFETCHT0 60(R8)
	PREFETCHT0 (R8)(SI*1)
	PREFETCHT0 60(R8)(SI*1)
	PREFETCHT0 (R9)
	PREFETCHT0 60(R9)
	PREFETCHT0 (R9)(SI*1)
	PREFETCHT0 60(R9)(SI*1)

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

	MOVQ CX, DX
	SHRQ $3, DX
	JZ   ktail

kloop8:
	// Each iteration consumes 3 lines of A (192 bytes); fetch the 3 lines
	// two iterations ahead into L1, and one line of the next B panel into L2.
	PREFETCHT1 (R10)
	ADDQ       $64, R10
	PREFETCHT0 384(AX)
	KSTEP(0, 0)
	KSTEP(24, 64)
	KSTEP(48, 128)
	KSTEP(72, 192)
	PREFETCHT0 448(AX)
	PREFETCHT0 512(AX)
	KSTEP(96, 256)
	KSTEP(120, 320)
	KSTEP(144, 384)
	KSTEP(168, 448)
	ADDQ $192, AX
	ADDQ $512, BX
	DECQ DX
	JNZ  kloop8

ktail:
	ANDQ $7, CX
	JZ   store

kloop1:
	KSTEP(0, 0)
	ADDQ $24, AX
	ADDQ $64, BX
	DECQ CX
	JNZ  kloop1

store:
	MOVQ mode+48(FP), DX
	CMPQ DX, $1
	JEQ  addc
	CMPQ DX, $2
	JEQ  scalec

write:
	VMOVUPS Y4, (DI)
	VMOVUPS Y5, 32(DI)
	VMOVUPS Y6, (DI)(SI*1)
	VMOVUPS Y7, 32(DI)(SI*1)
	VMOVUPS Y8, (R8)
	VMOVUPS Y9, 32(R8)
	VMOVUPS Y10, (R8)(SI*1)
	VMOVUPS Y11, 32(R8)(SI*1)
	VMOVUPS Y12, (R9)
	VMOVUPS Y13, 32(R9)
	VMOVUPS Y14, (R9)(SI*1)
	VMOVUPS Y15, 32(R9)(SI*1)
	VZEROUPPER
	RET

addc:
	VADDPS (DI), Y4, Y4
	VADDPS 32(DI), Y5, Y5
	VADDPS (DI)(SI*1), Y6, Y6
	VADDPS 32(DI)(SI*1), Y7, Y7
	VADDPS (R8), Y8, Y8
	VADDPS 32(R8), Y9, Y9
	VADDPS (R8)(SI*1), Y10, Y10
	VADDPS 32(R8)(SI*1), Y11, Y11
	VADDPS (R9), Y12, Y12
	VADDPS 32(R9), Y13, Y13
	VADDPS (R9)(SI*1), Y14, Y14
	VADDPS 32(R9)(SI*1), Y15, Y15
	JMP    write

scalec:
	VBROADCASTSS beta+40(FP), Y0
	VFMADD231PS  (DI), Y0, Y4
	VFMADD231PS  32(DI), Y0, Y5
	VFMADD231PS  (DI)(SI*1), Y0, Y6
	VFMADD231PS  32(DI)(SI*1), Y0, Y7
	VFMADD231PS  (R8), Y0, Y8
	VFMADD231PS  32(R8), Y0, Y9
	VFMADD231PS  (R8)(SI*1), Y0, Y10
	VFMADD231PS  32(R8)(SI*1), Y0, Y11
	VFMADD231PS  (R9), Y0, Y12
	VFMADD231PS  32(R9), Y0, Y13
	VFMADD231PS  (R9)(SI*1), Y0, Y14
	VFMADD231PS  32(R9)(SI*1), Y0, Y15
	JMP          write

// func packA6N(n8 int, a *float32, lda int, d *float32, alpha float32)
//
// Packs a full 6-row tile of a row-major A for 8·n8 k steps: reads rows
// a + i·lda (i < 6), 8 floats at a time, and writes d[p·6+i] = alpha·a[i][p]
// via a 6×8 → 8×6 transpose in registers.
TEXT ·packA6N(SB), NOSPLIT, $0-36
	MOVQ         n8+0(FP), CX
	MOVQ         a+8(FP), AX
	MOVQ         lda+16(FP), SI
	MOVQ         d+24(FP), DI
	VBROADCASTSS alpha+32(FP), Y15
	SHLQ         $2, SI
	LEAQ         (AX)(SI*2), R8 // row 2
	LEAQ         (R8)(SI*2), R9 // row 4
	TESTQ        CX, CX
	JZ           pa6n_done

pa6n_loop:
	VMULPS (AX), Y15, Y0
	VMULPS (AX)(SI*1), Y15, Y1
	VMULPS (R8), Y15, Y2
	VMULPS (R8)(SI*1), Y15, Y3
	VMULPS (R9), Y15, Y4
	VMULPS (R9)(SI*1), Y15, Y5

	// t0 = [r0_0 r1_0 r0_1 r1_1 | r0_4 r1_4 r0_5 r1_5], t1 the same for
	// k 2,3 | 6,7; t2,t3 rows 2,3; t4,t5 rows 4,5.
	VUNPCKLPS Y1, Y0, Y6
	VUNPCKHPS Y1, Y0, Y7
	VUNPCKLPS Y3, Y2, Y8
	VUNPCKHPS Y3, Y2, Y9
	VUNPCKLPS Y5, Y4, Y10
	VUNPCKHPS Y5, Y4, Y11

	// u_k = [r0_k r1_k r2_k r3_k | same for k+4], k = 0..3
	VSHUFPS $0x44, Y8, Y6, Y0
	VSHUFPS $0xEE, Y8, Y6, Y1
	VSHUFPS $0x44, Y9, Y7, Y2
	VSHUFPS $0xEE, Y9, Y7, Y3

	// Output row k: 4 floats from u, then (r4_k, r5_k) from t4/t5.
	VMOVUPS      X0, 0(DI)
	VMOVLPS      X10, 16(DI)
	VMOVUPS      X1, 24(DI)
	VMOVHPS      X10, 40(DI)
	VMOVUPS      X2, 48(DI)
	VMOVLPS      X11, 64(DI)
	VMOVUPS      X3, 72(DI)
	VMOVHPS      X11, 88(DI)
	VEXTRACTF128 $1, Y10, X12
	VEXTRACTF128 $1, Y11, X13
	VEXTRACTF128 $1, Y0, 96(DI)
	VMOVLPS      X12, 112(DI)
	VEXTRACTF128 $1, Y1, 120(DI)
	VMOVHPS      X12, 136(DI)
	VEXTRACTF128 $1, Y2, 144(DI)
	VMOVLPS      X13, 160(DI)
	VEXTRACTF128 $1, Y3, 168(DI)
	VMOVHPS      X13, 184(DI)

	ADDQ $32, AX
	ADDQ $32, R8
	ADDQ $32, R9
	ADDQ $192, DI
	DECQ CX
	JNZ  pa6n_loop

pa6n_done:
	VZEROUPPER
	RET

// KSTEP12 is one k step of the 12×8 kernel: row i < 6 of the tile uses
// A tile 0 (AX), rows 6–11 A tile 1 (DX); B is the first 8 floats of a
// packed 16-wide B row. Broadcast registers rotate over Y1..Y3.
#define KSTEP12(ao, bo) \
	VMOVUPS      bo(BX), Y0    \
	VBROADCASTSS ao(AX), Y1    \
	VFMADD231PS  Y0, Y1, Y4    \
	VBROADCASTSS ao+4(AX), Y2  \
	VFMADD231PS  Y0, Y2, Y5    \
	VBROADCASTSS ao+8(AX), Y3  \
	VFMADD231PS  Y0, Y3, Y6    \
	VBROADCASTSS ao+12(AX), Y1 \
	VFMADD231PS  Y0, Y1, Y7    \
	VBROADCASTSS ao+16(AX), Y2 \
	VFMADD231PS  Y0, Y2, Y8    \
	VBROADCASTSS ao+20(AX), Y3 \
	VFMADD231PS  Y0, Y3, Y9    \
	VBROADCASTSS ao(DX), Y1    \
	VFMADD231PS  Y0, Y1, Y10   \
	VBROADCASTSS ao+4(DX), Y2  \
	VFMADD231PS  Y0, Y2, Y11   \
	VBROADCASTSS ao+8(DX), Y3  \
	VFMADD231PS  Y0, Y3, Y12   \
	VBROADCASTSS ao+12(DX), Y1 \
	VFMADD231PS  Y0, Y1, Y13   \
	VBROADCASTSS ao+16(DX), Y2 \
	VFMADD231PS  Y0, Y2, Y14   \
	VBROADCASTSS ao+20(DX), Y3 \
	VFMADD231PS  Y0, Y3, Y15

// func sgemmKernel12x8(kc int, a0, a1, b, c *float32, ldc int, beta float32, mode int)
//
// The kernel for B micro-panels with at most 8 valid columns (n ≤ 8, the
// rank-r adapter projections, or the last panel of n mod 16 ≤ 8), where the
// 6×16 kernel would spend half its FMAs on zero padding. It computes a 12×8
// tile from two consecutive packed A tiles (a0: rows 0–5, a1: rows 6–11,
// 6 floats per k step each) and the first 8 columns of a packed B
// micro-panel (16 floats per k step). Modes as for sgemmKernel6x16; 8
// floats of each of the 12 C rows are written.
TEXT ·sgemmKernel12x8(SB), NOSPLIT, $0-64
	MOVQ kc+0(FP), CX
	MOVQ a0+8(FP), AX
	MOVQ a1+16(FP), DX
	MOVQ b+24(FP), BX
	MOVQ c+32(FP), DI
	MOVQ ldc+40(FP), SI
	SHLQ $2, SI
	LEAQ (DI)(SI*2), R8   // row 2
	LEAQ (R8)(SI*2), R9   // row 4
	LEAQ (R9)(SI*2), R11  // row 6
	LEAQ (R11)(SI*2), R12 // row 8
	LEAQ (R12)(SI*2), R13 // row 10

	PREFETCHT0 (DI)
	PREFETCHT0 (DI)(SI*1)
	PREFETCHT0 (R8)
	PREFETCHT0 (R8)(SI*1)
	PREFETCHT0 (R9)
	PREFETCHT0 (R9)(SI*1)
	PREFETCHT0 (R11)
	PREFETCHT0 (R11)(SI*1)
	PREFETCHT0 (R12)
	PREFETCHT0 (R12)(SI*1)
	PREFETCHT0 (R13)
	PREFETCHT0 (R13)(SI*1)

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

	MOVQ CX, R10
	SHRQ $2, R10
	JZ   k12tail

k12loop4:
	KSTEP12(0, 0)
	KSTEP12(24, 64)
	KSTEP12(48, 128)
	KSTEP12(72, 192)
	ADDQ $96, AX
	ADDQ $96, DX
	ADDQ $256, BX
	DECQ R10
	JNZ  k12loop4

k12tail:
	ANDQ $3, CX
	JZ   k12store

k12loop1:
	KSTEP12(0, 0)
	ADDQ $24, AX
	ADDQ $24, DX
	ADDQ $64, BX
	DECQ CX
	JNZ  k12loop1

k12store:
	MOVQ mode+56(FP), R10
	CMPQ R10, $1
	JEQ  k12add
	CMPQ R10, $2
	JEQ  k12scale

k12write:
	VMOVUPS Y4, (DI)
	VMOVUPS Y5, (DI)(SI*1)
	VMOVUPS Y6, (R8)
	VMOVUPS Y7, (R8)(SI*1)
	VMOVUPS Y8, (R9)
	VMOVUPS Y9, (R9)(SI*1)
	VMOVUPS Y10, (R11)
	VMOVUPS Y11, (R11)(SI*1)
	VMOVUPS Y12, (R12)
	VMOVUPS Y13, (R12)(SI*1)
	VMOVUPS Y14, (R13)
	VMOVUPS Y15, (R13)(SI*1)
	VZEROUPPER
	RET

k12add:
	VADDPS (DI), Y4, Y4
	VADDPS (DI)(SI*1), Y5, Y5
	VADDPS (R8), Y6, Y6
	VADDPS (R8)(SI*1), Y7, Y7
	VADDPS (R9), Y8, Y8
	VADDPS (R9)(SI*1), Y9, Y9
	VADDPS (R11), Y10, Y10
	VADDPS (R11)(SI*1), Y11, Y11
	VADDPS (R12), Y12, Y12
	VADDPS (R12)(SI*1), Y13, Y13
	VADDPS (R13), Y14, Y14
	VADDPS (R13)(SI*1), Y15, Y15
	JMP    k12write

k12scale:
	VBROADCASTSS beta+48(FP), Y0
	VFMADD231PS  (DI), Y0, Y4
	VFMADD231PS  (DI)(SI*1), Y0, Y5
	VFMADD231PS  (R8), Y0, Y6
	VFMADD231PS  (R8)(SI*1), Y0, Y7
	VFMADD231PS  (R9), Y0, Y8
	VFMADD231PS  (R9)(SI*1), Y0, Y9
	VFMADD231PS  (R11), Y0, Y10
	VFMADD231PS  (R11)(SI*1), Y0, Y11
	VFMADD231PS  (R12), Y0, Y12
	VFMADD231PS  (R12)(SI*1), Y0, Y13
	VFMADD231PS  (R13), Y0, Y14
	VFMADD231PS  (R13)(SI*1), Y0, Y15
	JMP          k12write

// func packAT(ntiles, kc int, a *float32, lda int, d *float32, ts int, alpha float32)
//
// Packs ntiles full 6-row tiles of a transposed A (op(A)[i][p] = a[p·lda+i])
// for kc k steps: tile t, step p gets the 6 floats at a + p·lda + 6t, scaled
// by alpha, at d + t·ts + p·6 (floats). Rows of the stored A are read front to back
// (one contiguous run of 6·ntiles floats per k step) rather than tile by
// tile, which would read one cache line per k step per tile at a stride that
// maps many lines onto few L1 sets.
TEXT ·packAT(SB), NOSPLIT, $0-52
	MOVQ         ntiles+0(FP), R8
	MOVQ         kc+8(FP), CX
	MOVQ         a+16(FP), AX
	MOVQ         lda+24(FP), SI
	MOVQ         d+32(FP), DI
	MOVQ         ts+40(FP), R9
	VBROADCASTSS alpha+48(FP), X15
	SHLQ         $2, SI
	SHLQ         $2, R9 // tile stride in bytes
	TESTQ        CX, CX
	JZ           pat_done
	TESTQ        R8, R8
	JZ           pat_done

pat_row:
	// Rows of the stored A are far apart, so the hardware prefetcher does
	// not follow them: fetch the row 8 k steps ahead, one line per tile
	// (tiles are 24 bytes, so this over-covers the 6·ntiles floats).
	LEAQ (AX)(SI*8), R10
	MOVQ R8, DX

pat_pf:
	PREFETCHT0 (R10)
	ADDQ       $64, R10
	SUBQ       $2, DX
	JGT        pat_pf

	MOVQ AX, R10 // source: this k step's row
	MOVQ DI, R11 // destination: step p of tile 0
	MOVQ R8, DX

pat_tile:
	VMULPS  (R10), X15, X0
	VMOVSD  16(R10), X1
	VMULPS  X1, X15, X1
	VMOVUPS X0, (R11)
	VMOVSD  X1, 16(R11)
	ADDQ    $24, R10
	ADDQ    R9, R11
	DECQ    DX
	JNZ     pat_tile

	ADDQ SI, AX
	ADDQ $24, DI
	DECQ CX
	JNZ  pat_row

pat_done:
	RET

// func packB16N(kc int, b *float32, ldb int, d *float32)
//
// Copies kc rows of 16 contiguous floats (row stride ldb) to d (kc×16).
TEXT ·packB16N(SB), NOSPLIT, $0-32
	MOVQ  kc+0(FP), CX
	MOVQ  b+8(FP), AX
	MOVQ  ldb+16(FP), SI
	MOVQ  d+24(FP), DI
	SHLQ  $2, SI
	TESTQ CX, CX
	JZ    pb16n_done

pb16n_loop:
	VMOVUPS (AX), Y0
	VMOVUPS 32(AX), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    SI, AX
	ADDQ    $64, DI
	DECQ    CX
	JNZ     pb16n_loop

pb16n_done:
	VZEROUPPER
	RET

// TRANSPOSE8 transposes the 8×8 block in Y0..Y7 (row i in Yi) and stores
// column k (8 floats) at off + k·64 bytes from DI. Clobbers Y0..Y15.
#define TRANSPOSE8(off) \
	VUNPCKLPS  Y1, Y0, Y8          \
	VUNPCKHPS  Y1, Y0, Y9          \
	VUNPCKLPS  Y3, Y2, Y10         \
	VUNPCKHPS  Y3, Y2, Y11         \
	VUNPCKLPS  Y5, Y4, Y12         \
	VUNPCKHPS  Y5, Y4, Y13         \
	VUNPCKLPS  Y7, Y6, Y14         \
	VUNPCKHPS  Y7, Y6, Y15         \
	VSHUFPS    $0x44, Y10, Y8, Y0  \
	VSHUFPS    $0xEE, Y10, Y8, Y1  \
	VSHUFPS    $0x44, Y11, Y9, Y2  \
	VSHUFPS    $0xEE, Y11, Y9, Y3  \
	VSHUFPS    $0x44, Y14, Y12, Y4 \
	VSHUFPS    $0xEE, Y14, Y12, Y5 \
	VSHUFPS    $0x44, Y15, Y13, Y6 \
	VSHUFPS    $0xEE, Y15, Y13, Y7 \
	VPERM2F128 $0x20, Y4, Y0, Y8   \
	VPERM2F128 $0x20, Y5, Y1, Y9   \
	VPERM2F128 $0x20, Y6, Y2, Y10  \
	VPERM2F128 $0x20, Y7, Y3, Y11  \
	VPERM2F128 $0x31, Y4, Y0, Y12  \
	VPERM2F128 $0x31, Y5, Y1, Y13  \
	VPERM2F128 $0x31, Y6, Y2, Y14  \
	VPERM2F128 $0x31, Y7, Y3, Y15  \
	VMOVUPS    Y8, off(DI)         \
	VMOVUPS    Y9, off+64(DI)      \
	VMOVUPS    Y10, off+128(DI)    \
	VMOVUPS    Y11, off+192(DI)    \
	VMOVUPS    Y12, off+256(DI)    \
	VMOVUPS    Y13, off+320(DI)    \
	VMOVUPS    Y14, off+384(DI)    \
	VMOVUPS    Y15, off+448(DI)

// func packB16T(n8 int, b *float32, ldb int, d *float32)
//
// Packs a 16-column panel of a transposed B for 8·n8 k steps: panel column
// j is row j of the stored B (b + j·ldb, contiguous in k), so
// d[p·16+j] = b[j·ldb+p], done as two 8×8 transposes per 8 k steps.
TEXT ·packB16T(SB), NOSPLIT, $0-32
	MOVQ  n8+0(FP), CX
	MOVQ  b+8(FP), AX
	MOVQ  ldb+16(FP), SI
	MOVQ  d+24(FP), DI
	SHLQ  $2, SI
	LEAQ  (SI)(SI*2), R10   // 3 rows
	LEAQ  (AX)(SI*4), R8    // row 4
	LEAQ  (R8)(SI*4), R9    // row 8
	LEAQ  (R9)(SI*4), R11   // row 12
	TESTQ CX, CX
	JZ    pb16t_done

pb16t_loop:
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(SI*1), Y1
	VMOVUPS (AX)(SI*2), Y2
	VMOVUPS (AX)(R10*1), Y3
	VMOVUPS (R8), Y4
	VMOVUPS (R8)(SI*1), Y5
	VMOVUPS (R8)(SI*2), Y6
	VMOVUPS (R8)(R10*1), Y7
	TRANSPOSE8(0)
	VMOVUPS (R9), Y0
	VMOVUPS (R9)(SI*1), Y1
	VMOVUPS (R9)(SI*2), Y2
	VMOVUPS (R9)(R10*1), Y3
	VMOVUPS (R11), Y4
	VMOVUPS (R11)(SI*1), Y5
	VMOVUPS (R11)(SI*2), Y6
	VMOVUPS (R11)(R10*1), Y7
	TRANSPOSE8(32)
	ADDQ $32, AX
	ADDQ $32, R8
	ADDQ $32, R9
	ADDQ $32, R11
	ADDQ $512, DI
	DECQ CX
	JNZ  pb16t_loop

pb16t_done:
	VZEROUPPER
	RET

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

// func sgemmKernel6x16(kc int, a, b, c *float32, ldc int, beta float32, mode int)
//
// acc = Σ_{p<kc} a[p*6+i]·b[p*16+j]   (6×16 tile, kc ≥ 1)
// mode 0: C = acc; mode 1: C += acc; mode 2: C = beta·C + acc.
// C row i starts at c + i·ldc floats; 16 floats of each of the 6 rows are
// written.
TEXT ·sgemmKernel6x16(SB), NOSPLIT, $0-56
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
	PREFETCHT0 384(AX)
	KSTEP(0, 0)
	KSTEP(24, 64)
	KSTEP(48, 128)
	KSTEP(72, 192)
	PREFETCHT0 448(AX)
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

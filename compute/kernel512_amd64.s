//go:build amd64 && !purego

#include "textflag.h"
#include "tile24_amd64.h"

// AVX-512 GEMM micro-kernel: a 24×16 tile of C from four consecutive packed
// 6-row A tiles and one packed 16-column B micro-panel — the same packed
// layouts as the AVX2 6×16 kernel (gemm.go), so packing is shared and only
// the tile loop differs.
//
// Register use:
//   Z8..Z31  the 24×16 accumulator tile, row i in Z(8+i) (16 floats each)
//   Z0, Z1   one row of the B micro-panel, alternating between k steps so
//            the next load does not wait on the FMAs reading the last one
//   A values are not held in registers: every FMA broadcasts its A element
//   straight from memory ({1to16} embedded broadcast), so one k step is one
//   B load and 24 broadcast-FMAs — 24 FMAs per 25 loads, within the two
//   FMA and three load pipes of a Zen 4/5 or Sapphire Rapids core.
//   AX       A tile 0 (rows 0–5); (AX)(DX*1) tile 1 (rows 6–11)
//   R11      A tile 2 (rows 12–17); (R11)(DX*1) tile 3 (rows 18–23)
//   DX       the A tile stride in bytes; BX packed B; R10 prefetch hint

// KSTEP24 does one rank-1 update of the tile with k step s: A at ao = 24·s
// bytes into each tile, B at bo = 64·s bytes, loaded into register zb.
#define KSTEP24(ao, bo, zb) \
	VMOVUPS          bo(BX), zb             \
	VFMADD231PS.BCST ao(AX), zb, Z8         \
	VFMADD231PS.BCST ao+4(AX), zb, Z9       \
	VFMADD231PS.BCST ao+8(AX), zb, Z10      \
	VFMADD231PS.BCST ao+12(AX), zb, Z11     \
	VFMADD231PS.BCST ao+16(AX), zb, Z12     \
	VFMADD231PS.BCST ao+20(AX), zb, Z13     \
	VFMADD231PS.BCST ao(AX)(DX*1), zb, Z14  \
	VFMADD231PS.BCST ao+4(AX)(DX*1), zb, Z15 \
	VFMADD231PS.BCST ao+8(AX)(DX*1), zb, Z16 \
	VFMADD231PS.BCST ao+12(AX)(DX*1), zb, Z17 \
	VFMADD231PS.BCST ao+16(AX)(DX*1), zb, Z18 \
	VFMADD231PS.BCST ao+20(AX)(DX*1), zb, Z19 \
	VFMADD231PS.BCST ao(R11), zb, Z20       \
	VFMADD231PS.BCST ao+4(R11), zb, Z21     \
	VFMADD231PS.BCST ao+8(R11), zb, Z22     \
	VFMADD231PS.BCST ao+12(R11), zb, Z23    \
	VFMADD231PS.BCST ao+16(R11), zb, Z24    \
	VFMADD231PS.BCST ao+20(R11), zb, Z25    \
	VFMADD231PS.BCST ao(R11)(DX*1), zb, Z26 \
	VFMADD231PS.BCST ao+4(R11)(DX*1), zb, Z27 \
	VFMADD231PS.BCST ao+8(R11)(DX*1), zb, Z28 \
	VFMADD231PS.BCST ao+12(R11)(DX*1), zb, Z29 \
	VFMADD231PS.BCST ao+16(R11)(DX*1), zb, Z30 \
	VFMADD231PS.BCST ao+20(R11)(DX*1), zb, Z31

// func sgemmKernel24x16(kc int, a *float32, ts int, b, c *float32, ldc int, beta float32, mode int, pf *float32)
//
// acc[i][j] = Σ_{p<kc} A_t[p*6+i%6]·b[p*16+j], t = i/6, A_t at a + t·ts
// floats (24×16 tile, kc ≥ 1). mode 0: C = acc; mode 1: C += acc;
// mode 2: C = beta·C + acc. C row i starts at c + i·ldc floats; 16 floats of
// each of the 24 rows are written. pf is a prefetch hint: two lines at
// pf + 128·j are pulled into L2 for each 8-step iteration j (twice the
// 6×16 kernel's rate, as a 24-row tile is four of its calls).
TEXT ·sgemmKernel24x16(SB), NOSPLIT, $0-72
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ ts+16(FP), DX
	SHLQ $2, DX
	MOVQ b+24(FP), BX
	MOVQ c+32(FP), DI
	MOVQ ldc+40(FP), SI
	SHLQ $2, SI
	MOVQ pf+64(FP), R10
	LEAQ (AX)(DX*2), R11

	// Pull the tile's 24 rows of C into L1 while the k loop runs.
	MOVQ DI, R9
	LEAQ (DI)(SI*2), R8
	PF4
	PF4
	PF4
	PF4
	PF4
	PF4
	MOVQ R9, DI

	ZERO24

	MOVQ CX, R9
	SHRQ $3, R9
	JZ   z24tail

z24loop8:
	PREFETCHT1 (R10)
	PREFETCHT1 64(R10)
	ADDQ       $128, R10
	KSTEP24(0, 0, Z0)
	KSTEP24(24, 64, Z1)
	KSTEP24(48, 128, Z0)
	KSTEP24(72, 192, Z1)
	KSTEP24(96, 256, Z0)
	KSTEP24(120, 320, Z1)
	KSTEP24(144, 384, Z0)
	KSTEP24(168, 448, Z1)
	ADDQ $192, AX
	ADDQ $192, R11
	ADDQ $512, BX
	DECQ R9
	JNZ  z24loop8

z24tail:
	ANDQ $7, CX
	JZ   z24store

z24loop1:
	KSTEP24(0, 0, Z0)
	ADDQ $24, AX
	ADDQ $24, R11
	ADDQ $64, BX
	DECQ CX
	JNZ  z24loop1

z24store:
	LEAQ (DI)(SI*2), R8
	MOVQ mode+56(FP), DX
	CMPQ DX, $1
	JEQ  z24add
	CMPQ DX, $2
	JEQ  z24scale

z24write:
	WRITE24
	VZEROUPPER
	RET

	// Mode 1 and 2 fold the old C into the accumulators (walking down the
	// rows), then rewind DI/R8 and share the plain write.
z24add:
	ADD24
	JMP  z24rewind

z24scale:
	VBROADCASTSS beta+48(FP), Z0
	SCALE24

z24rewind:
	MOVQ c+32(FP), DI
	LEAQ (DI)(SI*2), R8
	JMP  z24write

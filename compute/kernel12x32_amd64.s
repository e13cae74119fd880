//go:build amd64 && !purego

#include "textflag.h"
#include "tile24_amd64.h"

// AVX-512 GEMM micro-kernel: a 12×32 tile of C from two consecutive packed
// 6-row A tiles and two adjacent packed 16-column B micro-panels — the
// packed layouts of the 24×16 kernel (kernel512_amd64.s), which takes over
// where a panel has no partner.
//
// Why a second shape: the 24×16 kernel broadcasts every A element straight
// from memory, 25 loads per 24 FMAs, which two load pipes cannot quite
// feed; here one k step is two B loads and twelve broadcasts into
// registers for 24 FMAs. Each C element is still the FMA chain over k from
// zero that the 24×16 kernel computes (same products, same order), so the
// two kernels give the same bits.
//
// Register use:
//   Z8..Z31  the 12×32 accumulator tile: row i in Z(8+2i) (columns 0–15)
//            and Z(9+2i) (columns 16–31)
//   Z0, Z1   one row of each B micro-panel
//   Z2..Z7   broadcast A elements
//   AX       A tile 0 (rows 0–5); (AX)(DX*1) tile 1 (rows 6–11)
//   DX       the A tile stride in bytes; BX packed B panel 0, (BX)(R12*1)
//            panel 1; R10 prefetch hint

#define ROW2(ao, za, zb, zt) \
	VBROADCASTSS ao, zt   \
	VFMADD231PS  zt, Z0, za \
	VFMADD231PS  zt, Z1, zb

// KSTEP12 does one rank-1 update of the tile with k step s: A at ao = 24·s
// bytes into each tile, B at bo = 64·s bytes into each panel.
#define KSTEP12(ao, bo) \
	VMOVUPS bo(BX), Z0             \
	VMOVUPS bo(BX)(R12*1), Z1      \
	ROW2(ao(AX), Z8, Z9, Z2)       \
	ROW2(ao+4(AX), Z10, Z11, Z3)   \
	ROW2(ao+8(AX), Z12, Z13, Z4)   \
	ROW2(ao+12(AX), Z14, Z15, Z5)  \
	ROW2(ao+16(AX), Z16, Z17, Z6)  \
	ROW2(ao+20(AX), Z18, Z19, Z7)  \
	ROW2(ao(AX)(DX*1), Z20, Z21, Z2)    \
	ROW2(ao+4(AX)(DX*1), Z22, Z23, Z3)  \
	ROW2(ao+8(AX)(DX*1), Z24, Z25, Z4)  \
	ROW2(ao+12(AX)(DX*1), Z26, Z27, Z5) \
	ROW2(ao+16(AX)(DX*1), Z28, Z29, Z6) \
	ROW2(ao+20(AX)(DX*1), Z30, Z31, Z7)

// One row of the C tile at DI in the three store modes, then DI one row
// down (SI is ldc in bytes; Z0 holds beta for SROW).
#define WROW(za, zb) \
	VMOVUPS za, (DI)   \
	VMOVUPS zb, 64(DI) \
	ADDQ    SI, DI

#define AROW(za, zb) \
	VADDPS (DI), za, za   \
	VADDPS 64(DI), zb, zb \
	ADDQ   SI, DI

#define SROW(za, zb) \
	VFMADD231PS (DI), Z0, za   \
	VFMADD231PS 64(DI), Z0, zb \
	ADDQ        SI, DI

#define ROWS12(op) \
	op(Z8, Z9)   \
	op(Z10, Z11) \
	op(Z12, Z13) \
	op(Z14, Z15) \
	op(Z16, Z17) \
	op(Z18, Z19) \
	op(Z20, Z21) \
	op(Z22, Z23) \
	op(Z24, Z25) \
	op(Z26, Z27) \
	op(Z28, Z29) \
	op(Z30, Z31)

#define PFROW \
	PREFETCHT0 (DI)   \
	PREFETCHT0 64(DI) \
	ADDQ       SI, DI

// func sgemmKernel12x32(kc int, a *float32, ts int, b *float32, bs int, c *float32, ldc int, beta float32, mode int, pf *float32)
//
// acc[i][j] = Σ_{p<kc} A_t[p*6+i%6]·B_u[p*16+j%16], t = i/6 (A_t at a + t·ts
// floats), u = j/16 (B_u at b + u·bs floats) (12×32 tile, kc ≥ 1). mode 0:
// C = acc; mode 1: C += acc; mode 2: C = beta·C + acc. C row i starts at
// c + i·ldc floats; 32 floats of each of the 12 rows are written. pf is a
// prefetch hint: two lines at pf + 128·j are pulled into L2 for each 8-step
// iteration j.
TEXT ·sgemmKernel12x32(SB), NOSPLIT, $0-80
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ ts+16(FP), DX
	SHLQ $2, DX
	MOVQ b+24(FP), BX
	MOVQ bs+32(FP), R12
	SHLQ $2, R12
	MOVQ c+40(FP), DI
	MOVQ ldc+48(FP), SI
	SHLQ $2, SI
	MOVQ pf+72(FP), R10

	// Pull the tile's 12 rows of C into L1 while the k loop runs.
	PFROW; PFROW; PFROW; PFROW; PFROW; PFROW; PFROW; PFROW; PFROW; PFROW; PFROW; PFROW
	MOVQ c+40(FP), DI

	ZERO24 // the same 24 accumulators, Z8..Z31, as the 24×16 tile

	MOVQ CX, R9
	SHRQ $3, R9
	JZ   z12tail

z12loop8:
	PREFETCHT1 (R10)
	PREFETCHT1 64(R10)
	ADDQ       $128, R10
	KSTEP12(0, 0)
	KSTEP12(24, 64)
	KSTEP12(48, 128)
	KSTEP12(72, 192)
	KSTEP12(96, 256)
	KSTEP12(120, 320)
	KSTEP12(144, 384)
	KSTEP12(168, 448)
	ADDQ $192, AX
	ADDQ $512, BX
	DECQ R9
	JNZ  z12loop8

z12tail:
	ANDQ $7, CX
	JZ   z12store

z12loop1:
	KSTEP12(0, 0)
	ADDQ $24, AX
	ADDQ $64, BX
	DECQ CX
	JNZ  z12loop1

z12store:
	MOVQ mode+64(FP), DX
	CMPQ DX, $1
	JEQ  z12add
	CMPQ DX, $2
	JEQ  z12scale

z12write:
	ROWS12(WROW)
	VZEROUPPER
	RET

	// Mode 1 and 2 fold the old C into the accumulators, then rewind DI
	// and share the plain write.
z12add:
	ROWS12(AROW)
	JMP z12rewind

z12scale:
	VBROADCASTSS beta+56(FP), Z0
	ROWS12(SROW)

z12rewind:
	MOVQ c+40(FP), DI
	JMP  z12write

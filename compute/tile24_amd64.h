// Row-group helpers for the 24×16 kernels' C tile (kernel512_amd64.s,
// bf16_amd64.s): DI and R8 point at rows r and r+2, SI is ldc in bytes,
// Z0 holds beta for SCALE4.

// Four rows of the C tile, at (DI), (DI)(SI*1), (R8), (R8)(SI*1), in the
// three store modes. za..zd are the rows' accumulators.
#define WRITE4(za, zb, zc, zd) \
	VMOVUPS za, (DI)        \
	VMOVUPS zb, (DI)(SI*1)  \
	VMOVUPS zc, (R8)        \
	VMOVUPS zd, (R8)(SI*1)

#define ADD4(za, zb, zc, zd) \
	VADDPS (DI), za, za       \
	VADDPS (DI)(SI*1), zb, zb \
	VADDPS (R8), zc, zc       \
	VADDPS (R8)(SI*1), zd, zd

#define SCALE4(za, zb, zc, zd) \
	VFMADD231PS (DI), Z0, za       \
	VFMADD231PS (DI)(SI*1), Z0, zb \
	VFMADD231PS (R8), Z0, zc       \
	VFMADD231PS (R8)(SI*1), Z0, zd

// NEXT4 moves DI and R8 four rows down.
#define NEXT4 \
	LEAQ (DI)(SI*4), DI \
	LEAQ (R8)(SI*4), R8

#define PF4 \
	PREFETCHT0 (DI)       \
	PREFETCHT0 (DI)(SI*1) \
	PREFETCHT0 (R8)       \
	PREFETCHT0 (R8)(SI*1) \
	NEXT4

// The whole 24-row tile (accumulators Z8..Z31, row i in Z(8+i)), walking
// DI and R8 down from rows 0 and 2.
#define WRITE24 \
	WRITE4(Z8, Z9, Z10, Z11) \
	NEXT4 \
	WRITE4(Z12, Z13, Z14, Z15) \
	NEXT4 \
	WRITE4(Z16, Z17, Z18, Z19) \
	NEXT4 \
	WRITE4(Z20, Z21, Z22, Z23) \
	NEXT4 \
	WRITE4(Z24, Z25, Z26, Z27) \
	NEXT4 \
	WRITE4(Z28, Z29, Z30, Z31)

#define ADD24 \
	ADD4(Z8, Z9, Z10, Z11) \
	NEXT4 \
	ADD4(Z12, Z13, Z14, Z15) \
	NEXT4 \
	ADD4(Z16, Z17, Z18, Z19) \
	NEXT4 \
	ADD4(Z20, Z21, Z22, Z23) \
	NEXT4 \
	ADD4(Z24, Z25, Z26, Z27) \
	NEXT4 \
	ADD4(Z28, Z29, Z30, Z31)

#define SCALE24 \
	SCALE4(Z8, Z9, Z10, Z11) \
	NEXT4 \
	SCALE4(Z12, Z13, Z14, Z15) \
	NEXT4 \
	SCALE4(Z16, Z17, Z18, Z19) \
	NEXT4 \
	SCALE4(Z20, Z21, Z22, Z23) \
	NEXT4 \
	SCALE4(Z24, Z25, Z26, Z27) \
	NEXT4 \
	SCALE4(Z28, Z29, Z30, Z31)

// ZERO24 clears the tile's accumulators Z8..Z31.
#define ZERO24 \
	VPXORD Z8, Z8, Z8 \
	VPXORD Z9, Z9, Z9 \
	VPXORD Z10, Z10, Z10 \
	VPXORD Z11, Z11, Z11 \
	VPXORD Z12, Z12, Z12 \
	VPXORD Z13, Z13, Z13 \
	VPXORD Z14, Z14, Z14 \
	VPXORD Z15, Z15, Z15 \
	VPXORD Z16, Z16, Z16 \
	VPXORD Z17, Z17, Z17 \
	VPXORD Z18, Z18, Z18 \
	VPXORD Z19, Z19, Z19 \
	VPXORD Z20, Z20, Z20 \
	VPXORD Z21, Z21, Z21 \
	VPXORD Z22, Z22, Z22 \
	VPXORD Z23, Z23, Z23 \
	VPXORD Z24, Z24, Z24 \
	VPXORD Z25, Z25, Z25 \
	VPXORD Z26, Z26, Z26 \
	VPXORD Z27, Z27, Z27 \
	VPXORD Z28, Z28, Z28 \
	VPXORD Z29, Z29, Z29 \
	VPXORD Z30, Z30, Z30 \
	VPXORD Z31, Z31, Z31

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

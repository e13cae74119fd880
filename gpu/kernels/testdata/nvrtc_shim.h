// nvrtc_shim.h: what NVRTC provides built in, for compiling the kernels with
// clang (-x cuda -nocudainc -nocudalib --cuda-device-only) in
// TestKernelsCompileWithClang. Only the test uses it: the .cu files include
// nothing, because NVRTC compiles them with no include path at all.
//
// The math functions map onto libdevice's __nv_* names (declared by clang's
// own header); with -nocudalib they stay external calls in the PTX, which is
// all a syntax-and-entry-point check needs. The PTX is never run.
#ifndef KRONFED_NVRTC_SHIM_H
#define KRONFED_NVRTC_SHIM_H

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __host__ __attribute__((host))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))

// threadIdx, blockIdx, blockDim, gridDim, warpSize.
#include <__clang_cuda_builtin_vars.h>
#include <__clang_cuda_libdevice_declares.h>

#define KF_SHIM static __device__ __forceinline__

// Bit reinterpretations.
KF_SHIM float __int_as_float(int x) { return __builtin_bit_cast(float, x); }
KF_SHIM float __uint_as_float(unsigned int x) { return __builtin_bit_cast(float, x); }
KF_SHIM int __float_as_int(float x) { return __builtin_bit_cast(int, x); }
KF_SHIM unsigned int __float_as_uint(float x) { return __builtin_bit_cast(unsigned int, x); }
KF_SHIM double __longlong_as_double(long long x) { return __builtin_bit_cast(double, x); }
KF_SHIM long long __double_as_longlong(double x) { return __builtin_bit_cast(long long, x); }

// Single-precision math.
KF_SHIM float expf(float x) { return __nv_expf(x); }
KF_SHIM float __expf(float x) { return __nv_fast_expf(x); }
KF_SHIM float exp2f(float x) { return __nv_exp2f(x); }
KF_SHIM float logf(float x) { return __nv_logf(x); }
KF_SHIM float __logf(float x) { return __nv_fast_logf(x); }
KF_SHIM float log1pf(float x) { return __nv_log1pf(x); }
KF_SHIM float sqrtf(float x) { return __nv_sqrtf(x); }
KF_SHIM float rsqrtf(float x) { return __nv_rsqrtf(x); }
KF_SHIM float erff(float x) { return __nv_erff(x); }
KF_SHIM float erfcf(float x) { return __nv_erfcf(x); }
KF_SHIM float tanhf(float x) { return __nv_tanhf(x); }
KF_SHIM float fabsf(float x) { return __nv_fabsf(x); }
KF_SHIM float fmaxf(float a, float b) { return __nv_fmaxf(a, b); }
KF_SHIM float fminf(float a, float b) { return __nv_fminf(a, b); }
KF_SHIM float fmaf(float a, float b, float c) { return __nv_fmaf(a, b, c); }
KF_SHIM float __fdividef(float a, float b) { return __nv_fast_fdividef(a, b); }
KF_SHIM double exp(double x) { return __nv_exp(x); }
KF_SHIM double log(double x) { return __nv_log(x); }
KF_SHIM double sqrt(double x) { return __nv_sqrt(x); }

// Warp shuffles (width 32 unless given).
#define KF_SHFL_C(width) (((32 - (width)) << 8) | 0x1f)
KF_SHIM int __shfl_xor_sync(unsigned mask, int v, int lane, int width = 32)
{
    return __nvvm_shfl_sync_bfly_i32(mask, v, lane, KF_SHFL_C(width));
}
KF_SHIM unsigned __shfl_xor_sync(unsigned mask, unsigned v, int lane, int width = 32)
{
    return (unsigned)__nvvm_shfl_sync_bfly_i32(mask, (int)v, lane, KF_SHFL_C(width));
}
KF_SHIM float __shfl_xor_sync(unsigned mask, float v, int lane, int width = 32)
{
    return __nvvm_shfl_sync_bfly_f32(mask, v, lane, KF_SHFL_C(width));
}
KF_SHIM double __shfl_xor_sync(unsigned mask, double v, int lane, int width = 32)
{
    long long b = __double_as_longlong(v);
    int lo = __nvvm_shfl_sync_bfly_i32(mask, (int)b, lane, KF_SHFL_C(width));
    int hi = __nvvm_shfl_sync_bfly_i32(mask, (int)(b >> 32), lane, KF_SHFL_C(width));
    return __longlong_as_double(((long long)hi << 32) | (unsigned int)lo);
}
KF_SHIM float __shfl_sync(unsigned mask, float v, int src, int width = 32)
{
    return __nvvm_shfl_sync_idx_f32(mask, v, src, KF_SHFL_C(width));
}
KF_SHIM int __shfl_sync(unsigned mask, int v, int src, int width = 32)
{
    return __nvvm_shfl_sync_idx_i32(mask, v, src, KF_SHFL_C(width));
}

// Atomics.
KF_SHIM float atomicAdd(float* p, float v) { return __nvvm_atom_add_gen_f(p, v); }
KF_SHIM double atomicAdd(double* p, double v) { return __nvvm_atom_add_gen_d(p, v); }
KF_SHIM int atomicAdd(int* p, int v) { return __nvvm_atom_add_gen_i(p, v); }
KF_SHIM unsigned long long atomicAdd(unsigned long long* p, unsigned long long v)
{
    return (unsigned long long)__nvvm_atom_add_gen_ll((long long*)p, (long long)v);
}

// __syncthreads is a clang builtin for NVPTX; __threadfence is not.
KF_SHIM void __threadfence() { __nvvm_membar_gl(); }

#undef KF_SHIM
#endif

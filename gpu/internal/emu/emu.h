// emu.h: runs the CUDA kernels on the CPU, for the emulated parity tests
// (emu_test.go). A kernel file is compiled as host C++ with this header
// forced in (-include) after two textual rewrites done by the test harness:
// "extern __shared__" becomes "EMU_EXTERN_SHARED" and "__shared__" becomes
// "EMU_SHARED". It is a test device, not a simulator of performance.
//
// Model. A launch runs its blocks on a few OS threads (blocks are
// independent), one block at a time per thread. Within a block every CUDA
// thread is a fiber with its own stack, scheduled cooperatively:
// a fiber runs until it reaches __syncthreads or a warp shuffle, or ends.
// __syncthreads releases when every fiber of the block still running waits
// there; a shuffle is two warp barriers (publish, then read), released when
// every running fiber of the warp waits. Shared memory is thread_local
// storage of the worker thread: one block at a time uses it. A barrier no
// one can release (divergent __syncthreads) aborts the launch with an error.
#ifndef KRONFED_EMU_H
#define KRONFED_EMU_H

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>
#include <ucontext.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define EMU_SHARED static thread_local
#define EMU_EXTERN_SHARED extern thread_local

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
};

extern thread_local uint3 threadIdx, blockIdx;
extern thread_local dim3 blockDim, gridDim;
static const int warpSize = 32;

// The dynamic shared memory every kernel declares as `extern __shared__ float
// smem[]`.
static const size_t emu_max_shared = 96 * 1024;
extern thread_local float smem[emu_max_shared / sizeof(float)];

namespace emu {

enum State { Runnable, AtBlockBarrier, AtWarpBarrier, Done };

// A fiber switch. On x86-64 it is emu_switch (emu_impl.h): the callee-saved
// registers pushed on the old stack, the stack pointer swapped — a few
// nanoseconds. swapcontext, the portable fallback elsewhere, also saves and
// restores the signal mask with two system calls per switch, which made
// half of an emulated test's time system time.
#if defined(__x86_64__)
#define EMU_FAST_SWITCH 1
extern "C" void emu_switch(void** save_sp, void* load_sp);
struct Context {
    void* sp;
};
inline void switch_to(Context& from, Context& to) { emu_switch(&from.sp, to.sp); }
#else
struct Context {
    ucontext_t uc;
};
inline void switch_to(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

struct Fiber {
    Context ctx;
    State state;
    uint3 tid;
};

struct Block {
    std::vector<Fiber> fibers;
    std::vector<char> stacks;
    Context sched;
    int current;
    unsigned nthreads;
    void (*body)(void*);
    void* arg;
    // Per-warp shuffle exchange slots (64 bits per lane).
    std::vector<unsigned long long> slots;
    const char* error;
};

extern thread_local Block* cur;

inline void yield_as(State s)
{
    Block* b = cur;
    Fiber& f = b->fibers[b->current];
    f.state = s;
    switch_to(f.ctx, b->sched);
    // Resumed by the scheduler, which restored threadIdx.
}

inline void syncthreads() { yield_as(AtBlockBarrier); }
inline void warp_barrier() { yield_as(AtWarpBarrier); }
inline int lane_id() { return cur->current & 31; }
inline unsigned long long* warp_slots() { return &cur->slots[(size_t)(cur->current & ~31)]; }

template <class T>
inline T shfl_xor(T v, int mask)
{
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 64 bits");
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    int lane = lane_id();
    unsigned long long* s = warp_slots();
    s[lane] = bits;
    warp_barrier();
    int src = lane ^ mask;
    unsigned long long got = s[src < 32 ? src : lane];
    warp_barrier();
    T out;
    std::memcpy(&out, &got, sizeof(T));
    return out;
}

template <class T>
inline T shfl_idx(T v, int src)
{
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    int lane = lane_id();
    unsigned long long* s = warp_slots();
    s[lane] = bits;
    warp_barrier();
    unsigned long long got = s[src & 31];
    warp_barrier();
    T out;
    std::memcpy(&out, &got, sizeof(T));
    return out;
}

void run_block(Block& b);

} // namespace emu

#define __syncthreads() emu::syncthreads()

static inline float __int_as_float(int x) { float f; std::memcpy(&f, &x, 4); return f; }
static inline float __uint_as_float(unsigned int x) { float f; std::memcpy(&f, &x, 4); return f; }
static inline int __float_as_int(float x) { int i; std::memcpy(&i, &x, 4); return i; }
static inline unsigned int __float_as_uint(float x) { unsigned int i; std::memcpy(&i, &x, 4); return i; }
// glibc declares __expf and __logf itself: macros, not functions.
#define __expf(x) expf(x)
#define __logf(x) logf(x)
static inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
static inline float __fdividef(float a, float b) { return a / b; }

template <class T>
static inline T __shfl_xor_sync(unsigned, T v, int mask, int = 32) { return emu::shfl_xor(v, mask); }
template <class T>
static inline T __shfl_sync(unsigned, T v, int src, int = 32) { return emu::shfl_idx(v, src); }

static inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
static inline double atomicAdd(double* p, double v) { return std::atomic_ref<double>(*p).fetch_add(v); }
static inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
static inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

namespace emu {

// KernelBase type-erases a kernel's parameter list: call unpacks
// cuLaunchKernel-style parameters (an array of pointers to the values).
struct KernelBase {
    virtual void call(void** params) = 0;
    virtual ~KernelBase() {}
};

template <class... A>
struct Kernel : KernelBase {
    void (*f)(A...);
    explicit Kernel(void (*fn)(A...)) : f(fn) {}
    template <size_t... I>
    void call_impl(void** p, std::index_sequence<I...>)
    {
        f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(p[I])...);
    }
    void call(void** p) override { call_impl(p, std::index_sequence_for<A...>{}); }
};

template <class... A>
KernelBase* make_kernel(void (*f)(A...)) { return new Kernel<A...>(f); }

} // namespace emu

#endif

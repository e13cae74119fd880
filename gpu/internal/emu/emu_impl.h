// emu_impl.h: the definitions behind emu.h, included once at the end of
// each emulated kernel library (see emu_test.go), which also exports
// emu_launch and one emu_entry_<name> per kernel.
#ifndef KRONFED_EMU_IMPL_H
#define KRONFED_EMU_IMPL_H

#include <mutex>
#include <string>

thread_local uint3 threadIdx, blockIdx;
thread_local dim3 blockDim, gridDim;
alignas(16) thread_local float smem[emu_max_shared / sizeof(float)];

namespace emu {

thread_local Block* cur;
static thread_local KernelBase* cur_kernel;
static thread_local void** cur_params;

// Stack of each fiber: the kernels' frames are small.
static const size_t fiber_stack = 64 * 1024;

#if EMU_FAST_SWITCH
// emu_switch(save_sp, load_sp) (System V x86-64): push the callee-saved
// registers, store the stack pointer in *save_sp, load load_sp, pop the
// registers that stack saved and return to its switch point. Hidden: every
// kernel library carries its own copy.
asm(R"(
    .text
    .globl emu_switch
    .hidden emu_switch
    .type emu_switch,@function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");
#endif

[[noreturn]] static void fiber_main()
{
    cur_kernel->call(cur_params);
    Block* b = cur;
    Fiber& f = b->fibers[b->current];
    f.state = Done;
    switch_to(f.ctx, b->sched); // never resumed
    __builtin_unreachable();
}

// start_fiber makes f begin fiber_main on stack [lo, lo+size) at its first
// switch.
static void start_fiber(Fiber& f, char* lo, size_t size)
{
#if EMU_FAST_SWITCH
    // The frame emu_switch pops: six callee-saved registers (zero: rbp 0
    // ends a backtrace), then fiber_main as the return address, above it a
    // null return address for fiber_main itself so that it is entered with
    // rsp ≡ 8 (mod 16), as after a call.
    uintptr_t top = ((uintptr_t)(lo + size)) & ~(uintptr_t)15;
    void** sp = (void**)top;
    *--sp = nullptr;
    *--sp = (void*)&fiber_main;
    for (int r = 0; r < 6; r++)
        *--sp = nullptr;
    f.ctx.sp = sp;
#else
    getcontext(&f.ctx.uc);
    f.ctx.uc.uc_stack.ss_sp = lo;
    f.ctx.uc.uc_stack.ss_size = size;
    f.ctx.uc.uc_link = nullptr; // fiber_main never returns
    makecontext(&f.ctx.uc, (void (*)())fiber_main, 0);
#endif
}

void run_block(Block& b)
{
    const unsigned n = b.nthreads;
    for (unsigned i = 0; i < n; i++) {
        Fiber& f = b.fibers[i];
        start_fiber(f, &b.stacks[(size_t)i * fiber_stack], fiber_stack);
        f.state = Runnable;
        f.tid.x = i % blockDim.x;
        f.tid.y = (i / blockDim.x) % blockDim.y;
        f.tid.z = i / (blockDim.x * blockDim.y);
    }
    for (;;) {
        for (unsigned i = 0; i < n; i++) {
            if (b.fibers[i].state != Runnable)
                continue;
            b.current = (int)i;
            threadIdx = b.fibers[i].tid;
            switch_to(b.sched, b.fibers[i].ctx);
        }
        // Every fiber now waits at a barrier or is done.
        unsigned live = 0, atBlock = 0;
        bool released = false;
        for (unsigned w = 0; w < n; w += 32) {
            unsigned wl = 0, wa = 0;
            for (unsigned i = w; i < n && i < w + 32; i++) {
                State s = b.fibers[i].state;
                if (s != Done)
                    wl++;
                if (s == AtWarpBarrier)
                    wa++;
                if (s == AtBlockBarrier)
                    atBlock++;
            }
            live += wl;
            if (wa > 0 && wa == wl) {
                for (unsigned i = w; i < n && i < w + 32; i++)
                    if (b.fibers[i].state == AtWarpBarrier)
                        b.fibers[i].state = Runnable;
                released = true;
            }
        }
        if (live == 0)
            return;
        if (!released && atBlock == live) {
            for (unsigned i = 0; i < n; i++)
                if (b.fibers[i].state == AtBlockBarrier)
                    b.fibers[i].state = Runnable;
            released = true;
        }
        if (!released) {
            b.error = "deadlock: threads wait at different barriers (a __syncthreads or shuffle not reached by all)";
            return;
        }
    }
}

} // namespace emu

// emu_launch runs kernel k (from emu_entry_<name>) over the grid; params is
// cuLaunchKernel's kernelParams. Returns 0, or -1 with a message in err.
extern "C" int emu_launch(void* k, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                          unsigned shared, void** params, char* err, int errlen)
{
    auto fail = [&](const std::string& m) {
        std::snprintf(err, (size_t)errlen, "%s", m.c_str());
        return -1;
    };
    unsigned long long nthreads = (unsigned long long)bx * by * bz;
    unsigned long long nblocks = (unsigned long long)gx * gy * gz;
    if (nthreads == 0 || nthreads > 1024)
        return fail("block of " + std::to_string(nthreads) + " threads (want 1 … 1024)");
    if (nblocks == 0 || gy > 65535 || gz > 65535)
        return fail("invalid grid");
    if (shared > emu_max_shared)
        return fail("dynamic shared memory " + std::to_string(shared) + " bytes exceeds the emulator's " +
                    std::to_string(emu_max_shared));
    unsigned workers = std::thread::hardware_concurrency();
    if (const char* e = std::getenv("KRONFED_EMU_THREADS"))
        workers = (unsigned)std::atoi(e);
    if (workers < 1)
        workers = 1;
    if (workers > 8)
        workers = 8;
    if (workers > nblocks)
        workers = (unsigned)nblocks;
    std::atomic<unsigned long long> next(0);
    std::mutex mu;
    std::string first_error;
    auto work = [&]() {
        emu::Block b;
        b.nthreads = (unsigned)nthreads;
        b.fibers.resize(nthreads);
        b.stacks.resize(nthreads * emu::fiber_stack);
        b.slots.assign(((nthreads + 31) / 32) * 32, 0);
        emu::cur = &b;
        emu::cur_kernel = (emu::KernelBase*)k;
        emu::cur_params = params;
        blockDim = dim3{bx, by, bz};
        gridDim = dim3{gx, gy, gz};
        for (;;) {
            unsigned long long i = next.fetch_add(1);
            if (i >= nblocks)
                break;
            blockIdx = uint3{(unsigned)(i % gx), (unsigned)((i / gx) % gy), (unsigned)(i / ((unsigned long long)gx * gy))};
            b.error = nullptr;
            emu::run_block(b);
            if (b.error) {
                std::lock_guard<std::mutex> g(mu);
                if (first_error.empty())
                    first_error = std::string(b.error) + " in block (" + std::to_string(blockIdx.x) + "," +
                                  std::to_string(blockIdx.y) + "," + std::to_string(blockIdx.z) + ")";
                next.store(nblocks);
                break;
            }
        }
    };
    std::vector<std::thread> pool;
    for (unsigned w = 1; w < workers; w++)
        pool.emplace_back(work);
    work();
    for (auto& t : pool)
        t.join();
    if (!first_error.empty())
        return fail(first_error);
    return 0;
}

#endif

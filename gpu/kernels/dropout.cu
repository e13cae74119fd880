// Dropout masks and their application. A mask is a bit per element, packed
// as adapter.Mask stores it: element i is bit (i & 63) of 64-bit word i >> 6,
// 1 = kept. Kept elements are multiplied by scale = 1/(1−p), dropped ones by
// 0 (a multiplication, as the CPU's Mask.ApplyAt does, so a non-finite input
// gives NaN in both places).

// splitmix64's finalizer: a bijective 64-bit mix whose outputs for
// consecutive counters pass BigCrush (it is SplittableRandom's generator).
static __device__ __forceinline__ unsigned long long kf_mix64(unsigned long long z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// dropout_mask draws keep bits for n elements into keep (ceil(n/64) words).
// Counter-based, so the mask depends only on (seed, n), never on the launch:
// draw c (c = element index / 4) is mix64(seed + (c+1)·γ), γ the golden
// ratio constant, and gives four 16-bit uniforms, one per element; an
// element is dropped when its uniform is below round(p·2¹⁶), as the CPU's
// adapter.Dropout decides (a probability within 2⁻¹⁷ of p). Bits past n are 0.
// Launch: block 256, one thread per word, grid min(ceil(words/256), 32768),
// grid-stride.
extern "C" __global__ void dropout_mask(unsigned long long* __restrict__ keep, long long n, unsigned long long seed, float p)
{
    long long words = (n + 63) >> 6;
    unsigned long long threshold = (unsigned long long)((double)p * 65536.0 + 0.5);
    for (long long w = blockIdx.x * (long long)blockDim.x + threadIdx.x; w < words; w += (long long)gridDim.x * blockDim.x) {
        unsigned long long word = 0;
        long long rem = n - w * 64;
        for (int q = 0; q < 64; q += 4) {
            unsigned long long c = (unsigned long long)w * 16ull + (unsigned long long)(q >> 2);
            unsigned long long bits = kf_mix64(seed + (c + 1ull) * 0x9E3779B97F4A7C15ull);
            for (int k = 0; k < 4; k++) {
                unsigned long long u = (bits >> (16 * k)) & 0xFFFFull;
                unsigned long long dropped = (u - threshold) >> 63;
                word |= (dropped ^ 1ull) << (q + k);
            }
        }
        if (rem < 64)
            word &= (1ull << rem) - 1ull;
        keep[w] = word;
    }
}

// dropout_apply: dst[i] = x[i]·(bit(off+i) ? scale : 0) for i < n; dst may
// equal x (in place). dst, x: n; keep: the mask of at least off+n elements.
// Launch: block 256, grid min(ceil(n/256), 32768), grid-stride.
extern "C" __global__ void dropout_apply(float* dst, const float* x, const unsigned long long* __restrict__ keep,
                                         float scale, long long n, long long off)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        long long j = off + i;
        float s = ((keep[j >> 6] >> (j & 63)) & 1ull) ? scale : 0.f;
        dst[i] = x[i] * s;
    }
}

// dropout_add_backward: dx[i] += g[i]·(bit(i) ? scale : 0), the backward of
// dropout_apply with off 0 (adapter.Mask.AddBackward). dx, g: n.
// Launch: block 256, grid min(ceil(n/256), 32768), grid-stride.
extern "C" __global__ void dropout_add_backward(float* __restrict__ dx, const float* __restrict__ g,
                                                const unsigned long long* __restrict__ keep, float scale, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float s = ((keep[i >> 6] >> (i & 63)) & 1ull) ? scale : 0.f;
        dx[i] += g[i] * s;
    }
}

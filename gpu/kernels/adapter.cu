// Kron-LoRA's per-token mixing with the small factor A (dA2×2), exactly
// Kron.mixTokens and Kron.unmixTokens in adapter/kron.go. The big products
// around them (X·B2ᵀ, M·B1ᵀ and their backwards) are cuBLAS GEMMs.
//
// Layouts (row-major): T is (n·2)×r, token t's T_t = rows 2t, 2t+1;
// M is (n·dA2)×r, token t's M_t = rows t·dA2 … t·dA2+dA2−1; A is dA2×2.

// kron_mix: M_t = A·T_t for every token: m[t,i,c] = A[i,0]·T[t,0,c] + A[i,1]·T[t,1,c].
// m: (n·dA2)×r, t: (n·2)×r, a: dA2×2.
// Launch: one thread per element of m: block 256, grid min(ceil(n·dA2·r/256),
// 32768), grid-stride.
extern "C" __global__ void kron_mix(float* __restrict__ m, const float* __restrict__ t, const float* __restrict__ a,
                                    int n, int da2, int r)
{
    long long total = (long long)n * da2 * r;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total; e += (long long)gridDim.x * blockDim.x) {
        long long row = e / r;
        int c = (int)(e - row * r);
        long long tok = row / da2;
        int i = (int)(row - tok * da2);
        const float* t0 = t + (tok * 2) * r;
        m[e] = a[2 * i] * t0[c] + a[2 * i + 1] * t0[r + c];
    }
}

// kron_unmix: dT_t = Aᵀ·dM_t (overwritten): dt[t,j,c] = Σ_i A[i,j]·dM[t,i,c],
// summed over i in order. dt: (n·2)×r, dm: (n·dA2)×r, a: dA2×2.
// Launch: one thread per element of dt: block 256, grid min(ceil(n·2·r/256),
// 32768), grid-stride.
extern "C" __global__ void kron_unmix(float* __restrict__ dt, const float* __restrict__ dm, const float* __restrict__ a,
                                      int n, int da2, int r)
{
    long long total = (long long)n * 2 * r;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total; e += (long long)gridDim.x * blockDim.x) {
        long long row = e / r;
        int c = (int)(e - row * r);
        long long tok = row >> 1;
        int j = (int)(row & 1);
        const float* d = dm + tok * da2 * r + c;
        float s = 0.f;
        for (int i = 0; i < da2; i++)
            s += a[2 * i + j] * d[(long long)i * r];
        dt[e] = s;
    }
}

// kron_grad_a: dA[i,j] += Σ_t Σ_c dM[t,i,c]·T[t,j,c]. da: dA2×2, dm:
// (n·dA2)×r, t: (n·2)×r. Deterministic, no atomics: one block per entry
// (i, j) reduces its n·r products with a fixed thread striding and a fixed
// shuffle/shared-memory tree. A has only 2·dA2 entries and each block reads
// 2·n·r floats, a few microseconds for a batch.
// Launch: grid 2·dA2, block 256 (whole warps required).
extern "C" __global__ void kron_grad_a(float* __restrict__ da, const float* __restrict__ dm, const float* __restrict__ t,
                                       int n, int da2, int r)
{
    __shared__ float red[32];
    int i = blockIdx.x >> 1, j = blockIdx.x & 1;
    long long total = (long long)n * r;
    float s = 0.f;
    for (long long e = threadIdx.x; e < total; e += blockDim.x) {
        long long tok = e / r;
        int c = (int)(e - tok * r);
        s += dm[(tok * da2 + i) * r + c] * t[(tok * 2 + j) * r + c];
    }
    for (int o = 16; o > 0; o >>= 1)
        s += __shfl_xor_sync(0xffffffffu, s, o);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0)
        red[w] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        float tot = 0.f;
        for (int k = 0; k < nw; k++)
            tot += red[k];
        da[2 * i + j] += tot;
    }
}

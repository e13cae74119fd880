// RMSNorm (Llama) and LayerNorm (BERT), forward and backward, exactly as
// rmsnormForward/rmsnormBackward and layernormForward/layernormBackward in
// model/layers.go. One block per row; the row's sums are reduced with warp
// shuffles and a 32-float shared buffer, in a fixed order (deterministic).
// The norm weights are frozen: the backwards produce dx only, accumulating.
//
// Launch (all): grid n (one block per row), block tx = min(1024,
// max(32, roundup32(ceil(d/4)))) threads (a multiple of 32: kf_block_sum
// relies on whole warps), no dynamic shared memory.

static __device__ __forceinline__ float kf_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// kf_block_sum returns the sum of v over the block to every thread. red is
// 32 floats of shared memory; the leading barrier lets consecutive calls
// reuse it.
static __device__ __forceinline__ float kf_block_sum(float v, float* red)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = kf_warp_sum(v);
    __syncthreads();
    if (lane == 0)
        red[w] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : 0.f;
    return kf_warp_sum(v);
}

// rmsnorm_forward: out[t] = x[t]·r ⊙ w, r = 1/√(mean(x[t]²) + eps), and
// rstd[t] = r for the backward. x, out: n×d; w: d; rstd: n.
extern "C" __global__ void rmsnorm_forward(float* __restrict__ out, float* __restrict__ rstd, const float* __restrict__ x,
                                           const float* __restrict__ w, int n, int d, float eps)
{
    __shared__ float red[32];
    int t = blockIdx.x;
    const float* xt = x + (long long)t * d;
    float* ot = out + (long long)t * d;
    float ss = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float v = xt[i];
        ss += v * v;
    }
    ss = kf_block_sum(ss, red);
    float r = 1.f / sqrtf(ss / (float)d + eps);
    if (threadIdx.x == 0)
        rstd[t] = r;
    for (int i = threadIdx.x; i < d; i += blockDim.x)
        ot[i] = xt[i] * r * w[i];
}

// rmsnorm_backward: with x̂ = x·r, dx += r·(dout⊙w − x̂·mean(dout⊙w⊙x̂)).
// dx, dout, x: n×d; w: d; rstd: n (from the forward).
extern "C" __global__ void rmsnorm_backward(float* __restrict__ dx, const float* __restrict__ dout,
                                            const float* __restrict__ x, const float* __restrict__ w,
                                            const float* __restrict__ rstd, int n, int d)
{
    __shared__ float red[32];
    int t = blockIdx.x;
    const float* xt = x + (long long)t * d;
    const float* gt = dout + (long long)t * d;
    float* dxt = dx + (long long)t * d;
    float r = rstd[t];
    float m = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x)
        m += gt[i] * w[i] * xt[i] * r;
    m = kf_block_sum(m, red) / (float)d;
    for (int i = threadIdx.x; i < d; i += blockDim.x)
        dxt[i] += r * (gt[i] * w[i] - xt[i] * r * m);
}

// layernorm_forward: out[t] = (x[t] − μ)·r ⊙ w + b, r = 1/√(var + eps)
// (two passes: the mean, then the centred variance); mean[t] = μ and
// rstd[t] = r are kept for the backward. x, out: n×d; w, b: d; mean, rstd: n.
extern "C" __global__ void layernorm_forward(float* __restrict__ out, float* __restrict__ mean, float* __restrict__ rstd,
                                             const float* __restrict__ x, const float* __restrict__ w,
                                             const float* __restrict__ b, int n, int d, float eps)
{
    __shared__ float red[32];
    int t = blockIdx.x;
    const float* xt = x + (long long)t * d;
    float* ot = out + (long long)t * d;
    float s = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x)
        s += xt[i];
    float mu = kf_block_sum(s, red) / (float)d;
    float vs = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float dv = xt[i] - mu;
        vs += dv * dv;
    }
    float r = 1.f / sqrtf(kf_block_sum(vs, red) / (float)d + eps);
    if (threadIdx.x == 0) {
        mean[t] = mu;
        rstd[t] = r;
    }
    for (int i = threadIdx.x; i < d; i += blockDim.x)
        ot[i] = (xt[i] - mu) * r * w[i] + b[i];
}

// layernorm_backward: with x̂ = (x−μ)·r and g = dout⊙w,
// dx += r·(g − mean(g) − x̂·mean(g⊙x̂)). dx, dout, x: n×d; w: d; mean, rstd: n.
extern "C" __global__ void layernorm_backward(float* __restrict__ dx, const float* __restrict__ dout,
                                              const float* __restrict__ x, const float* __restrict__ w,
                                              const float* __restrict__ mean, const float* __restrict__ rstd, int n, int d)
{
    __shared__ float red[32];
    int t = blockIdx.x;
    const float* xt = x + (long long)t * d;
    const float* gt = dout + (long long)t * d;
    float* dxt = dx + (long long)t * d;
    float mu = mean[t], r = rstd[t];
    float mg = 0.f, mgx = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float g = gt[i] * w[i];
        mg += g;
        mgx += g * (xt[i] - mu) * r;
    }
    mg = kf_block_sum(mg, red) / (float)d;
    mgx = kf_block_sum(mgx, red) / (float)d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float g = gt[i] * w[i];
        dxt[i] += r * (g - mg - (xt[i] - mu) * r * mgx);
    }
}

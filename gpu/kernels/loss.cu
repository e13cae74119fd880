// Cross-entropy over logits rows (language-model heads with V up to ~10⁵, or
// a multiple-choice head's few choices), exactly LlamaRun.LossAndGrad's
// per-row arithmetic (model/llama.go) and model.LogSoftmax.
//
// One block per row. Each thread runs an online (max, Σexp) over its
// strided elements; the pairs are merged with warp shuffles and then across
// warps in a fixed order, so the result is deterministic. A NaN logit makes
// the row's sum, and so its loss, NaN (as on the CPU).
//
// Launch (both): grid n (one block per row), block tx = min(1024, max(32,
// roundup32(ceil(V/4)))) threads (whole warps), no dynamic shared memory.

#define KF_NEG_INF __uint_as_float(0xff800000u)
#define KF_NAN __uint_as_float(0x7fc00000u)

// kf_merge folds the pair (m2, s2) into (m, s): s·e^(m−M) + s2·e^(m2−M), M the
// larger max. An empty pair has max −Inf and sum 0.
static __device__ __forceinline__ void kf_merge(float& m, float& s, float m2, float s2)
{
    float mn = fmaxf(m, m2);
    float a = (m == KF_NEG_INF) ? 0.f : s * expf(m - mn);
    float b = (m2 == KF_NEG_INF) ? 0.f : s2 * expf(m2 - mn);
    m = mn;
    s = a + b;
}

// kf_row_lse returns log Σ_j exp(row[j]) for a row of v floats to every
// thread of the block. red is 64 floats of shared memory.
static __device__ __forceinline__ float kf_row_lse(const float* __restrict__ row, int v, float* red)
{
    float m = KF_NEG_INF, s = 0.f;
    for (int j = threadIdx.x; j < v; j += blockDim.x) {
        float x = row[j];
        if (x > m) {
            s = s * expf(m - x) + 1.f;
            m = x;
        } else {
            s += expf(x - m);
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, o);
        float s2 = __shfl_xor_sync(0xffffffffu, s, o);
        kf_merge(m, s, m2, s2);
    }
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) {
        red[w] = m;
        red[32 + w] = s;
    }
    __syncthreads();
    m = KF_NEG_INF;
    s = 0.f;
    for (int k = 0; k < nw; k++)
        kf_merge(m, s, red[k], red[32 + k]);
    return m + logf(s);
}

// cross_entropy: per row i with target t = targets[i]:
//   loss[i]    = −log softmax(logits_i)[t]
//   dlogits_i  = inv_count·(softmax(logits_i) − onehot(t))   (overwritten)
// computed as lp = logits − lse, dlogits = e^lp·inv_count, then
// dlogits[t] −= inv_count. A row with t < 0 (ignored position) gets loss 0
// and dlogits 0; t ≥ V (a caller bug: the host validates targets) gets loss
// NaN and dlogits 0. dlogits, logits: n×V; loss: n; targets: n int32.
// dlogits may not alias logits (the row is read after being reduced).
extern "C" __global__ void cross_entropy(float* __restrict__ dlogits, float* __restrict__ loss,
                                         const float* __restrict__ logits, const int* __restrict__ targets, int n, int v,
                                         float inv_count)
{
    __shared__ float red[64];
    int i = blockIdx.x;
    int t = targets[i];
    const float* row = logits + (long long)i * v;
    float* g = dlogits + (long long)i * v;
    if (t < 0 || t >= v) {
        for (int j = threadIdx.x; j < v; j += blockDim.x)
            g[j] = 0.f;
        if (threadIdx.x == 0)
            loss[i] = t < 0 ? 0.f : KF_NAN;
        return;
    }
    float lse = kf_row_lse(row, v, red);
    for (int j = threadIdx.x; j < v; j += blockDim.x) {
        float p = expf(row[j] - lse) * inv_count;
        if (j == t)
            p -= inv_count;
        g[j] = p;
    }
    if (threadIdx.x == 0)
        loss[i] = -(row[t] - lse);
}

// target_logprob: out[i] = log softmax(logits_i)[targets[i]], 0 where the
// target is < 0, NaN where it is ≥ V. out: n; logits: n×V; targets: n int32.
extern "C" __global__ void target_logprob(float* __restrict__ out, const float* __restrict__ logits,
                                          const int* __restrict__ targets, int n, int v)
{
    __shared__ float red[64];
    int i = blockIdx.x;
    int t = targets[i];
    if (t < 0 || t >= v) {
        if (threadIdx.x == 0)
            out[i] = t < 0 ? 0.f : KF_NAN;
        return;
    }
    const float* row = logits + (long long)i * v;
    float lse = kf_row_lse(row, v, red);
    if (threadIdx.x == 0)
        out[i] = row[t] - lse;
}

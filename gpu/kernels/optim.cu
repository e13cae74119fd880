// The optimizer's kernels: AdamW's update and the squared norm for gradient
// clipping (train/optim.go: AdamW.Step and ClipGradNorm). Clipping itself
// scales the gradients with scale_f32 (elementwise.cu).

// adamw: one torch.optim.AdamW step per element, exactly AdamW.Step:
//   m ← b1·m + (1−b1)·g,   v ← b2·v + (1−b2)·g²
//   p ← p·decay − step_size·m / (√v/sqrt_bc2 + eps)
// with step_size = lr/(1−b1ᵗ), sqrt_bc2 = √(1−b2ᵗ), decay = 1 − lr·wd computed
// on the host in float64 and rounded to float32, as the CPU does.
// p, g, m, v: n. Launch: block 256, grid min(ceil(n/256), 32768), grid-stride.
extern "C" __global__ void adamw(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                 float* __restrict__ v, long long n, float step_size, float sqrt_bc2, float decay,
                                 float b1, float b2, float eps)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.f - b1) * gi;
        float vi = b2 * v[i] + (1.f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / sqrt_bc2 + eps;
        p[i] = p[i] * decay - step_size * mi / denom;
    }
}

// sumsq: acc[0] += Σ x[i]², in float64 (ClipGradNorm's sum). Each block
// reduces its grid-stride share in a fixed order, then adds it to acc with
// one double atomicAdd: the order of those block additions varies from run
// to run, which moves the result only in float64's last bits (the norm it
// feeds is compared against a clipping threshold). acc: 1 double, x: n.
// Launch: block 256 (whole warps required), grid min(ceil(n/1024), 1024).
extern "C" __global__ void sumsq(double* __restrict__ acc, const float* __restrict__ x, long long n)
{
    __shared__ double red[32];
    double s = 0.0;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        double xi = (double)x[i];
        s += xi * xi;
    }
    for (int o = 16; o > 0; o >>= 1)
        s += __shfl_xor_sync(0xffffffffu, s, o);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0)
        red[w] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        double tot = 0.0;
        for (int k = 0; k < nw; k++)
            tot += red[k];
        atomicAdd(acc, tot);
    }
}

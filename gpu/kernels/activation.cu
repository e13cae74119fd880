// Activation functions and their backwards: SwiGLU (Llama), exact-erf GELU
// (BERT), ReLU. Each is exactly the CPU function of the same name in
// model/layers.go (and compute/gelu.go for the GELU's erf approximation).
//
// Launch (all): block 256, grid min(ceil(n/256), 32768), grid-stride loop
// over the n elements (n long long).

// swiglu_forward: h = silu(g)⊙u, silu(x) = x·σ(x) = x/(1+e^(−x)).
// h, g, u: n.
extern "C" __global__ void swiglu_forward(float* __restrict__ h, const float* __restrict__ g,
                                          const float* __restrict__ u, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float x = g[i];
        h[i] = x / (1.f + expf(-x)) * u[i];
    }
}

// swiglu_backward sets (overwrites) dg and du from dh:
// du = dh⊙silu(g), dg = dh⊙u⊙σ(g)·(1 + g·(1−σ(g))). All n.
extern "C" __global__ void swiglu_backward(float* __restrict__ dg, float* __restrict__ du, const float* __restrict__ dh,
                                           const float* __restrict__ g, const float* __restrict__ u, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float x = g[i];
        float sg = 1.f / (1.f + expf(-x));
        float d = dh[i];
        du[i] = d * x * sg;
        dg[i] = d * u[i] * sg * (1.f + x * (1.f - sg));
    }
}

// The float32 erf of compute.Erf32 (Eigen's and XLA's rational minimax fit
// on [−4, 4], ±1 beyond, within 5e-7 of erf) and its exact derivative, so
// the GPU's GELU is the CPU's function, not merely close to it. A NaN
// passes through the clamp (both comparisons are false).
static __device__ __forceinline__ float kf_erf_p(float x2)
{
    return (((((-2.72614225801306e-10f * x2 + 2.77068142495902e-08f) * x2 + -2.10102402082508e-06f) * x2 +
              -5.69250639462346e-05f) * x2 + -7.34990630326855e-04f) * x2 + -2.95459980854025e-03f) * x2 +
           -1.60960333262415e-02f;
}

static __device__ __forceinline__ float kf_erf_q(float x2)
{
    return (((-1.45660718464996e-05f * x2 + -2.13374055278905e-04f) * x2 + -1.68282697438203e-03f) * x2 +
            -7.37332916720468e-03f) * x2 + -1.42647390514189e-02f;
}

static __device__ __forceinline__ float kf_clamp4(float x)
{
    return x > 4.f ? 4.f : (x < -4.f ? -4.f : x);
}

// gelu_forward: out = x·Φ(x), Φ(x) = (1 + erf(x/√2))/2; when grad is not
// null it also stores GELU'(x) = Φ(x) + x·φ(x) (the derivative of the
// approximation; 0 contribution from erf outside (−4, 4)). out, grad, x: n.
extern "C" __global__ void gelu_forward(float* __restrict__ out, float* __restrict__ grad, const float* __restrict__ x,
                                        long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float v = x[i];
        float z = v * 0.70710678118654752f;
        bool inside = z > -4.f && z < 4.f;
        z = kf_clamp4(z);
        float z2 = z * z;
        float P = kf_erf_p(z2);
        float Q = kf_erf_q(z2);
        float p = z * P;
        float e = p / Q;
        if (grad == 0) {
            out[i] = 0.5f * v * (1.f + e);
            continue;
        }
        float dP = ((((6.f * -2.72614225801306e-10f * z2 + 5.f * 2.77068142495902e-08f) * z2 +
                      4.f * -2.10102402082508e-06f) * z2 + 3.f * -5.69250639462346e-05f) * z2 +
                    2.f * -7.34990630326855e-04f) * z2 + -2.95459980854025e-03f;
        float dQ = ((4.f * -1.45660718464996e-05f * z2 + 3.f * -2.13374055278905e-04f) * z2 +
                    2.f * -1.68282697438203e-03f) * z2 + -7.37332916720468e-03f;
        float de = 0.f;
        if (inside) {
            float dp = P + 2.f * z2 * dP;
            float dq = 2.f * z * dQ;
            de = (dp * Q - p * dq) / (Q * Q);
        }
        float cdf = 0.5f * (1.f + e);
        out[i] = v * cdf;
        grad[i] = cdf + v * de * 0.35355339059327376f;
    }
}

// gelu_backward: dx += dout⊙grad, grad = GELU'(x) from gelu_forward. All n.
extern "C" __global__ void gelu_backward(float* __restrict__ dx, const float* __restrict__ dout,
                                         const float* __restrict__ grad, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        dx[i] += dout[i] * grad[i];
}

// relu_forward: out = max(x, 0) (a NaN gives 0: the comparison is false).
// out, x: n.
extern "C" __global__ void relu_forward(float* __restrict__ out, const float* __restrict__ x, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float v = x[i];
        out[i] = v > 0.f ? v : 0.f;
    }
}

// relu_backward: dx += dout where x > 0. dx, dout, x: n.
extern "C" __global__ void relu_backward(float* __restrict__ dx, const float* __restrict__ dout,
                                         const float* __restrict__ x, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        if (x[i] > 0.f)
            dx[i] += dout[i];
}

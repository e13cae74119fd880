// Elementwise and row-broadcast kernels over fp32 (and bf16 conversions).
//
// Compiled by NVRTC with no #include: bf16 is an unsigned short holding the
// top half of a float32. Element counts are long long, widths int. Every
// kernel here is memory bound: grid-stride loops over 256-thread blocks
// (the Go wrappers cap the grid, see elemGrid in launch.go), or a 2-D grid of
// column blocks × rows for row-broadcast kernels (rowGrid).

// add_f32: y[i] += x[i] for i < n. y, x: n floats.
// Launch: block 256, grid min(ceil(n/256), 32768), grid-stride.
extern "C" __global__ void add_f32(float* __restrict__ y, const float* __restrict__ x, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        y[i] += x[i];
}

// scale_f32: x[i] *= s for i < n (gradient clipping, loss scaling). x: n.
// Launch: block 256, grid min(ceil(n/256), 32768), grid-stride.
extern "C" __global__ void scale_f32(float* __restrict__ x, float s, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        x[i] *= s;
}

// fill_f32: x[i] = v for i < n. x: n.
// Launch: block 256, grid min(ceil(n/256), 32768), grid-stride.
extern "C" __global__ void fill_f32(float* __restrict__ x, float v, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        x[i] = v;
}

// bias_add: y[t][c] += b[c]. y: n×d, b: d.
// Launch: block (tx = min(256, roundup32(d))), grid (ceil(d/tx), min(n, 65535));
// block y-index strides over the rows.
extern "C" __global__ void bias_add(float* __restrict__ y, const float* __restrict__ b, int n, int d)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= d) return;
    float bc = b[c];
    for (int t = blockIdx.y; t < n; t += gridDim.y)
        y[(long long)t * d + c] += bc;
}

// bias_grad: db[c] += Σ_t dy[t][c]. dy: n×d, db: d.
// Deterministic: block (32, 8) handles 32 columns; its 8 thread rows take
// the token rows t ≡ threadIdx.y (mod 8) in order, then the 8 partial sums
// are added in a fixed order. Launch: block (32, 8), grid ceil(d/32).
extern "C" __global__ void bias_grad(float* __restrict__ db, const float* __restrict__ dy, int n, int d)
{
    __shared__ float part[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    float s = 0.f;
    if (c < d)
        for (int t = threadIdx.y; t < n; t += 8)
            s += dy[(long long)t * d + c];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < d) {
        float tot = 0.f;
        for (int k = 0; k < 8; k++)
            tot += part[k][threadIdx.x];
        db[c] += tot;
    }
}

// f32_to_bf16: out[i] = bf16(in[i]), round to nearest, ties to even, as
// safetensors.Float32ToBF16: finite values beyond the largest bf16 round to
// ±Inf; a NaN stays a NaN of the same sign (quietened, so truncating its
// payload can never leave an Inf pattern). out: n u16, in: n f32.
// Launch: block 256, grid min(ceil(n/256), 32768), grid-stride.
extern "C" __global__ void f32_to_bf16(unsigned short* __restrict__ out, const float* __restrict__ in, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        unsigned int bits = __float_as_uint(in[i]);
        if ((bits & 0x7fffffffu) > 0x7f800000u) {
            out[i] = (unsigned short)((bits >> 16) | 0x0040u);
        } else {
            bits += 0x7fffu + ((bits >> 16) & 1u);
            out[i] = (unsigned short)(bits >> 16);
        }
    }
}

// bf16_to_f32: out[i] = float(in[i]) (exact: bf16 is a float32's top half).
// out: n f32, in: n u16. Launch: block 256, grid min(ceil(n/256), 32768).
extern "C" __global__ void bf16_to_f32(float* __restrict__ out, const unsigned short* __restrict__ in, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        out[i] = __uint_as_float(((unsigned int)in[i]) << 16);
}

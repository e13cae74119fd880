// Rotary position embeddings, exactly ropeApply in model/layers.go.

// rope_apply rotates every head of x in place: x is n×(heads·hd), token t at
// position pos[t]; cos and sin are maxPos×(hd/2) (ropeTable). half = 0
// rotates the pairs (2i, 2i+1) (Meta/GGUF layout), half = 1 the pairs
// (i, i+hd/2) (Hugging Face's rotate_half). sign +1 is the forward
// rotation, −1 the backward (the rotation's inverse):
//   x_a' = x_a·cos − x_b·(sign·sin),  x_b' = x_a·(sign·sin) + x_b·cos.
// Every position must be a row of the tables (the caller validates them on
// the host; the kernel does not bounds-check).
// Launch: one thread per (token, head, pair): block tx = min(256,
// roundup32(heads·hd/2)), grid (ceil(heads·hd/2 / tx), min(n, 65535)); the
// grid's y index strides over tokens.
extern "C" __global__ void rope_apply(float* __restrict__ x, const int* __restrict__ pos, const float* __restrict__ cos_t,
                                      const float* __restrict__ sin_t, int n, int heads, int hd, int half, float sign)
{
    int hh = hd >> 1;
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= heads * hh) return;
    int h = k / hh, i = k - h * hh;
    int a = half ? i : 2 * i;
    int b = half ? i + hh : 2 * i + 1;
    long long width = (long long)heads * hd;
    for (int t = blockIdx.y; t < n; t += gridDim.y) {
        int p = pos[t];
        float c = cos_t[(long long)p * hh + i];
        float si = sign * sin_t[(long long)p * hh + i];
        float* v = x + (long long)t * width + (long long)h * hd;
        float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * si;
        v[b] = x0 * si + x1 * c;
    }
}

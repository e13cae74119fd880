// Embedding lookups: token embeddings (fp32 or bf16 tables) and BERT's added
// position/type embeddings. Every id must be a row of the table: the caller
// validates ids on the host, as the CPU models do (a bad id reads out of
// bounds here).
//
// Launch (all): block tx = min(256, roundup32(d)) threads over the columns,
// grid (ceil(d/tx), min(n, 65535)); the grid's y index strides over tokens.

// embed_gather_f32: out[t] = table[ids[t]]. out: n×d, table: V×d, ids: n int32.
extern "C" __global__ void embed_gather_f32(float* __restrict__ out, const float* __restrict__ table,
                                            const int* __restrict__ ids, int n, int d)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= d) return;
    for (int t = blockIdx.y; t < n; t += gridDim.y)
        out[(long long)t * d + c] = table[(long long)ids[t] * d + c];
}

// embed_gather_bf16: out[t] = float(table[ids[t]]), table bf16 bits.
// out: n×d f32, table: V×d u16, ids: n int32.
extern "C" __global__ void embed_gather_bf16(float* __restrict__ out, const unsigned short* __restrict__ table,
                                             const int* __restrict__ ids, int n, int d)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= d) return;
    for (int t = blockIdx.y; t < n; t += gridDim.y)
        out[(long long)t * d + c] = __uint_as_float(((unsigned int)table[(long long)ids[t] * d + c]) << 16);
}

// add_rows_f32: out[t] += table[ids[t]] (BERT position and token-type
// embeddings). out: n×d, table: rows×d f32, ids: n int32 (each < rows).
extern "C" __global__ void add_rows_f32(float* __restrict__ out, const float* __restrict__ table,
                                        const int* __restrict__ ids, int n, int d)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= d) return;
    for (int t = blockIdx.y; t < n; t += gridDim.y)
        out[(long long)t * d + c] += table[(long long)ids[t] * d + c];
}

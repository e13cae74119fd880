// Fused, memory-efficient attention (FlashAttention-2 style, fp32 on the
// CUDA cores): it never materializes the B·H·T² probabilities. The semantics
// are exactly attentionForward/attentionBackward in model/layers.go:
//
//   q: (B·T)×(H·HD), k, v: (B·T)×(KV·HD), out: (B·T)×(H·HD), row-major;
//   head h reads key/value head h/(H/KV) (grouped-query attention);
//   s_ij = scale·(q_i·k_j), scale = float32(1/√HD) (passed by the wrapper);
//   query i may see key j when (!causal || j ≤ i) and (window == 0 ||
//   i − j < window) and key_mask[b·T+j] != 0 (key_mask B×T, null = all real);
//   p_ij = exp(s_ij − max_i)·inv_i, inv_i = 1/Σ_j exp(s_ij − max_i);
//   attention dropout on p: keep bit e = ((b·H+h)·T+i)·T+j of drop_keep
//   (word e>>6, bit e&63; null = no dropout), kept × drop_scale, dropped × 0;
//   out_i = Σ_j dropout(p_ij)·v_j;
//   stats ((B·H·T)×2, or null when no backward follows): per query row
//   (max_i, inv_i); a row whose keys are all masked outputs zeros with stats
//   (−Inf, 0).
//
// Tiling. A block owns a tile of rows of one (sequence, head) and streams
// the other side's tiles through shared memory; the row statistics are
// online (running max and sum, rescaling the accumulator). Thread tid owns
// the micro-tile rows rg + i·RG (i < RM) and, for the score tile, columns
// cg + j·CG (j < CN), for the accumulator, head dims cg + j·CG (j < DPT), with
// rg = tid / CG, cg = tid % CG: the CG = 8 threads of a row are consecutive
// lanes, so row reductions are three xor-shuffles. Shared rows are padded to
// HD+1 (odd) floats so the strided reads hit distinct banks.
//
// Each entry is one instantiation for head dims up to 32, 64, 128 or 256
// (any even HD up to that bound); the Go wrapper (attention.go, attnTiles)
// picks the smallest that fits and sizes the dynamic shared memory. Every
// configuration needs at most 42 KiB, under the 48 KiB default, so no
// cuFuncSetAttribute is needed. Tile sizes (rows × columns, threads):
//
//   forward  (query rows BR × key cols BC):  d32 64×64, d64 64×32, d128 32×32, d256 16×16; 128 threads
//   dq       (query rows BR × key cols BC):  d32 64×32, d64 32×32, d128 16×16 (128 threads), d256 8×8 (64)
//   dk/dv    (key rows BC × query cols BR):  d32 64×32, d64 32×32, d128 16×16 (128 threads), d256 8×8 (64)
//
// Grids: forward and dq: (ceil(T/BR), B·H), query tiles in reverse order so
// the causal mask's heaviest tiles start first; dk/dv: (ceil(T/BC), B·KV);
// backward_dot: block 256, grid min(ceil(B·T·H/8), 32768).
//
// Backward (three launches): attention_backward_dot computes
// D_i = rowsum(dout_i ⊙ out_i) (= Σ_j p_ij·datt_ij, dropout included) into a
// B·H·T scratch; the dq kernel walks key tiles for a query tile; the dk/dv
// kernel walks, for a key tile, the query tiles of every head of its GQA
// group, so each dk/dv row has one owner and needs no atomics. Both rebuild
// p from stats and use
//   dP_ij = dout_i·v_j,  datt_ij = dP_ij·keep·drop_scale,  ds_ij = p_ij·(datt_ij − D_i),
//   dq_i += scale·Σ_j ds_ij·k_j,  dk_j += scale·Σ_i ds_ij·q_i,  dv_j += Σ_i dropout(p_ij)·dout_i.
// dq, dk and dv ACCUMULATE (+=), as the CPU's backward does.

#define KF_NEG_INF __uint_as_float(0xff800000u)

static __device__ __forceinline__ int kf_imin(int a, int b) { return a < b ? a : b; }
static __device__ __forceinline__ int kf_imax(int a, int b) { return a > b ? a : b; }

// kf_allowed reports whether query row may attend to key col (both must be
// inside the sequence). mask is the sequence's key_mask row or null.
static __device__ __forceinline__ bool kf_allowed(int row, int col, int T, int causal, int window,
                                                  const float* __restrict__ mask)
{
    if (row >= T || col >= T)
        return false;
    if (causal && col > row)
        return false;
    if (window > 0 && row - col >= window)
        return false;
    if (mask != 0 && mask[col] == 0.f)
        return false;
    return true;
}

// kf_drop is the dropout factor of element e: drop_scale when kept, 0 when
// dropped.
static __device__ __forceinline__ float kf_drop(const unsigned long long* __restrict__ keep, long long e, float scale)
{
    return ((keep[e >> 6] >> (e & 63)) & 1ull) ? scale : 0.f;
}

// kf_load_rows copies rows [r0, r0+rows) (HD floats each, `stride` floats
// apart) into shared memory with leading dimension ld, zeros past T. One
// warp per row, lanes along the head dim: coalesced and division-free.
template <int NT>
static __device__ __forceinline__ void kf_load_rows(float* sh, int ld, const float* __restrict__ src, long long stride,
                                                    int r0, int rows, int T, int HD)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int r = warp; r < rows; r += NT / 32) {
        int i = r0 + r;
        const float* s = src + (long long)i * stride;
        for (int d = lane; d < HD; d += 32)
            sh[r * ld + d] = i < T ? s[d] : 0.f;
    }
}

// kf_row_max / kf_row_sum reduce over the CG consecutive lanes of a row.
template <int CG>
static __device__ __forceinline__ float kf_row_max(float v)
{
#pragma unroll
    for (int o = CG / 2; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

template <int CG>
static __device__ __forceinline__ float kf_row_sum(float v)
{
#pragma unroll
    for (int o = CG / 2; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <int NT, int MAXHD, int BR, int BC, int RM>
static __device__ __forceinline__ void kf_attention_forward(
    float* __restrict__ out, float* __restrict__ stats, const float* __restrict__ q, const float* __restrict__ k,
    const float* __restrict__ v, const float* __restrict__ key_mask, const unsigned long long* __restrict__ drop_keep,
    float drop_scale, float scale, int B, int T, int H, int KV, int HD, int causal, int window)
{
    constexpr int RG = BR / RM;
    constexpr int CG = NT / RG;
    constexpr int CN = BC / CG;
    constexpr int DPT = MAXHD / CG;
    static_assert(RG * CG == NT && CN * CG == BC && DPT * CG == MAXHD && CG <= 32, "attention forward tiling");

    extern __shared__ float smem[];
    const int ld = HD + 1, ldp = BC + 1;
    float* sQ = smem;
    float* sKV = sQ + BR * ld;
    float* sP = sKV + BC * ld;

    const int tid = threadIdx.x, rg = tid / CG, cg = tid - rg * CG;
    const int q0 = (int)(gridDim.x - 1 - blockIdx.x) * BR;
    const int bh = blockIdx.y, b = bh / H, h = bh - b * H, kvh = h / (H / KV);
    const long long qw = (long long)H * HD, kw = (long long)KV * HD;
    const float* qb = q + (long long)b * T * qw + (long long)h * HD;
    const float* kb = k + (long long)b * T * kw + (long long)kvh * HD;
    const float* vb = v + (long long)b * T * kw + (long long)kvh * HD;
    const float* mb = key_mask != 0 ? key_mask + (long long)b * T : 0;
    const long long drow = (long long)bh * T;

    kf_load_rows<NT>(sQ, ld, qb, qw, q0, BR, T, HD);

    float m[RM], l[RM], o[RM][DPT];
#pragma unroll
    for (int i = 0; i < RM; i++) {
        m[i] = KF_NEG_INF;
        l[i] = 0.f;
#pragma unroll
        for (int j = 0; j < DPT; j++)
            o[i][j] = 0.f;
    }

    int lo = 0, hi = T;
    if (window > 0)
        lo = kf_imax(0, q0 - window + 1);
    if (causal)
        hi = kf_imin(T, q0 + BR);
    for (int k0 = (lo / BC) * BC; k0 < hi; k0 += BC) {
        __syncthreads(); // the previous tile's readers of sKV and sP are done
        kf_load_rows<NT>(sKV, ld, kb, kw, k0, BC, T, HD);
        __syncthreads();

        float s[RM][CN];
#pragma unroll
        for (int i = 0; i < RM; i++) {
#pragma unroll
            for (int j = 0; j < CN; j++)
                s[i][j] = 0.f;
        }
        // HD is even: two head dims per iteration, no remainder.
        for (int d0 = 0; d0 < HD; d0 += 2) {
#pragma unroll
            for (int d = d0; d < d0 + 2; d++) {
                float qv[RM], kv[CN];
#pragma unroll
                for (int i = 0; i < RM; i++)
                    qv[i] = sQ[(rg + i * RG) * ld + d];
#pragma unroll
                for (int j = 0; j < CN; j++)
                    kv[j] = sKV[(cg + j * CG) * ld + d];
#pragma unroll
                for (int i = 0; i < RM; i++) {
#pragma unroll
                    for (int j = 0; j < CN; j++)
                        s[i][j] = fmaf(qv[i], kv[j], s[i][j]);
                }
            }
        }

#pragma unroll
        for (int i = 0; i < RM; i++) {
            const int row = q0 + rg + i * RG;
            float mt = KF_NEG_INF;
#pragma unroll
            for (int j = 0; j < CN; j++) {
                const int col = k0 + cg + j * CG;
                s[i][j] = kf_allowed(row, col, T, causal, window, mb) ? s[i][j] * scale : KF_NEG_INF;
                mt = fmaxf(mt, s[i][j]);
            }
            mt = kf_row_max<CG>(mt);
            const float mn = fmaxf(m[i], mt);
            const float corr = m[i] == KF_NEG_INF ? 0.f : __expf(m[i] - mn);
            float ls = 0.f;
#pragma unroll
            for (int j = 0; j < CN; j++) {
                const int col = k0 + cg + j * CG;
                float p = s[i][j] == KF_NEG_INF ? 0.f : __expf(s[i][j] - mn);
                ls += p;
                if (drop_keep != 0 && p != 0.f)
                    p *= kf_drop(drop_keep, (drow + row) * T + col, drop_scale);
                sP[(rg + i * RG) * ldp + cg + j * CG] = p;
            }
            ls = kf_row_sum<CG>(ls);
            l[i] = l[i] * corr + ls;
            m[i] = mn;
#pragma unroll
            for (int j = 0; j < DPT; j++)
                o[i][j] *= corr;
        }
        __syncthreads(); // scores done with K; sP complete
        kf_load_rows<NT>(sKV, ld, vb, kw, k0, BC, T, HD);
        __syncthreads();

#pragma unroll 4
        for (int c = 0; c < BC; c++) {
            float pv[RM];
#pragma unroll
            for (int i = 0; i < RM; i++)
                pv[i] = sP[(rg + i * RG) * ldp + c];
#pragma unroll
            for (int j = 0; j < DPT; j++) {
                const int d = cg + j * CG;
                if (d < HD) {
                    const float vv = sKV[c * ld + d];
#pragma unroll
                    for (int i = 0; i < RM; i++)
                        o[i][j] = fmaf(pv[i], vv, o[i][j]);
                }
            }
        }
    }

#pragma unroll
    for (int i = 0; i < RM; i++) {
        const int row = q0 + rg + i * RG;
        if (row >= T)
            continue;
        const float inv = m[i] == KF_NEG_INF ? 0.f : 1.f / l[i];
        float* ob = out + ((long long)b * T + row) * qw + (long long)h * HD;
#pragma unroll
        for (int j = 0; j < DPT; j++) {
            const int d = cg + j * CG;
            if (d < HD)
                ob[d] = o[i][j] * inv;
        }
        if (stats != 0 && cg == 0) {
            stats[(drow + row) * 2] = m[i];
            stats[(drow + row) * 2 + 1] = inv;
        }
    }
}

// kf_tile_dots computes a thread's micro-tile of two score-like products at
// once: s[i][j] = a_r·c_c and t[i][j] = b_r·e_c over the head dims, for rows
// r = rg + i·RG of a and b and columns c = cg + j·CG of c and e (shared
// tiles, leading dimension ld). The dq kernel passes (q, dout; k, v) for
// s = q·k and dP = dout·v; the dk/dv kernel (k, v; q, dout), the same
// products transposed. HD is even: two head dims per iteration.
template <int RM, int CN, int RG, int CG>
static __device__ __forceinline__ void kf_tile_dots(float (&s)[RM][CN], float (&t)[RM][CN], const float* a,
                                                    const float* b, const float* c, const float* e, int ld, int rg,
                                                    int cg, int HD)
{
#pragma unroll
    for (int i = 0; i < RM; i++) {
#pragma unroll
        for (int j = 0; j < CN; j++) {
            s[i][j] = 0.f;
            t[i][j] = 0.f;
        }
    }
    for (int d0 = 0; d0 < HD; d0 += 2) {
#pragma unroll
        for (int d = d0; d < d0 + 2; d++) {
            float av[RM], bv[RM], cv[CN], ev[CN];
#pragma unroll
            for (int i = 0; i < RM; i++) {
                av[i] = a[(rg + i * RG) * ld + d];
                bv[i] = b[(rg + i * RG) * ld + d];
            }
#pragma unroll
            for (int j = 0; j < CN; j++) {
                cv[j] = c[(cg + j * CG) * ld + d];
                ev[j] = e[(cg + j * CG) * ld + d];
            }
#pragma unroll
            for (int i = 0; i < RM; i++) {
#pragma unroll
                for (int j = 0; j < CN; j++) {
                    s[i][j] = fmaf(av[i], cv[j], s[i][j]);
                    t[i][j] = fmaf(bv[i], ev[j], t[i][j]);
                }
            }
        }
    }
}

// kf_p_ds rebuilds the probability of query row `row` for key col from the
// row's stats (max mx, 1/sum inv) and the score s, and returns the
// backward's ds = p·(dP·f − D), f the dropout factor (for dq and dk), with
// *pd = dropout(p) = p·f (for dv). Both zero for a masked pair or an
// all-masked row (mx = −Inf).
static __device__ __forceinline__ float kf_p_ds(float* pd, float s, float dp, float mx, float inv, float D, int row,
                                                int col, int T, int causal, int window, const float* __restrict__ mask,
                                                const unsigned long long* __restrict__ keep, long long drow,
                                                float drop_scale, float scale)
{
    *pd = 0.f;
    if (mx == KF_NEG_INF || !kf_allowed(row, col, T, causal, window, mask))
        return 0.f;
    const float p = __expf(s * scale - mx) * inv;
    const float f = keep != 0 ? kf_drop(keep, (drow + row) * T + col, drop_scale) : 1.f;
    *pd = p * f;
    return p * (dp * f - D);
}

template <int NT, int MAXHD, int BR, int BC, int RM>
static __device__ __forceinline__ void kf_attention_dq(
    float* __restrict__ dq, const float* __restrict__ dout, const float* __restrict__ stats,
    const float* __restrict__ dsum, const float* __restrict__ q, const float* __restrict__ k,
    const float* __restrict__ v, const float* __restrict__ key_mask, const unsigned long long* __restrict__ drop_keep,
    float drop_scale, float scale, int B, int T, int H, int KV, int HD, int causal, int window)
{
    constexpr int RG = BR / RM;
    constexpr int CG = NT / RG;
    constexpr int CN = BC / CG;
    constexpr int DPT = MAXHD / CG;
    static_assert(RG * CG == NT && CN * CG == BC && DPT * CG == MAXHD && CG <= 32, "attention dq tiling");

    extern __shared__ float smem[];
    const int ld = HD + 1, ldp = BC + 1;
    float* sQ = smem;
    float* sG = sQ + BR * ld;
    float* sK = sG + BR * ld;
    float* sV = sK + BC * ld;
    float* sS = sV + BC * ld;

    const int tid = threadIdx.x, rg = tid / CG, cg = tid - rg * CG;
    const int q0 = (int)(gridDim.x - 1 - blockIdx.x) * BR;
    const int bh = blockIdx.y, b = bh / H, h = bh - b * H, kvh = h / (H / KV);
    const long long qw = (long long)H * HD, kw = (long long)KV * HD;
    const float* qb = q + (long long)b * T * qw + (long long)h * HD;
    const float* gb = dout + (long long)b * T * qw + (long long)h * HD;
    const float* kb = k + (long long)b * T * kw + (long long)kvh * HD;
    const float* vb = v + (long long)b * T * kw + (long long)kvh * HD;
    const float* mb = key_mask != 0 ? key_mask + (long long)b * T : 0;
    const long long drow = (long long)bh * T;

    kf_load_rows<NT>(sQ, ld, qb, qw, q0, BR, T, HD);
    kf_load_rows<NT>(sG, ld, gb, qw, q0, BR, T, HD);

    float mx[RM], inv[RM], dd[RM], acc[RM][DPT];
#pragma unroll
    for (int i = 0; i < RM; i++) {
        const int row = q0 + rg + i * RG;
        mx[i] = row < T ? stats[(drow + row) * 2] : KF_NEG_INF;
        inv[i] = row < T ? stats[(drow + row) * 2 + 1] : 0.f;
        dd[i] = row < T ? dsum[drow + row] : 0.f;
#pragma unroll
        for (int j = 0; j < DPT; j++)
            acc[i][j] = 0.f;
    }

    int lo = 0, hi = T;
    if (window > 0)
        lo = kf_imax(0, q0 - window + 1);
    if (causal)
        hi = kf_imin(T, q0 + BR);
    for (int k0 = (lo / BC) * BC; k0 < hi; k0 += BC) {
        __syncthreads();
        kf_load_rows<NT>(sK, ld, kb, kw, k0, BC, T, HD);
        kf_load_rows<NT>(sV, ld, vb, kw, k0, BC, T, HD);
        __syncthreads();

        float s[RM][CN], dp[RM][CN];
        kf_tile_dots<RM, CN, RG, CG>(s, dp, sQ, sG, sK, sV, ld, rg, cg, HD);
#pragma unroll
        for (int i = 0; i < RM; i++) {
            const int row = q0 + rg + i * RG;
#pragma unroll
            for (int j = 0; j < CN; j++) {
                float pd;
                sS[(rg + i * RG) * ldp + cg + j * CG] = kf_p_ds(&pd, s[i][j], dp[i][j], mx[i], inv[i], dd[i], row,
                                                                k0 + cg + j * CG, T, causal, window, mb, drop_keep,
                                                                drow, drop_scale, scale);
            }
        }
        __syncthreads();

#pragma unroll 4
        for (int c = 0; c < BC; c++) {
            float dsv[RM];
#pragma unroll
            for (int i = 0; i < RM; i++)
                dsv[i] = sS[(rg + i * RG) * ldp + c];
#pragma unroll
            for (int j = 0; j < DPT; j++) {
                const int d = cg + j * CG;
                if (d < HD) {
                    const float kk = sK[c * ld + d];
#pragma unroll
                    for (int i = 0; i < RM; i++)
                        acc[i][j] = fmaf(dsv[i], kk, acc[i][j]);
                }
            }
        }
    }

#pragma unroll
    for (int i = 0; i < RM; i++) {
        const int row = q0 + rg + i * RG;
        if (row >= T)
            continue;
        float* db = dq + ((long long)b * T + row) * qw + (long long)h * HD;
#pragma unroll
        for (int j = 0; j < DPT; j++) {
            const int d = cg + j * CG;
            if (d < HD)
                db[d] += scale * acc[i][j];
        }
    }
}

// The dk/dv kernel's micro-tile rows are keys (BC of them per block) and its
// columns queries (BR per step).
template <int NT, int MAXHD, int BC, int BR, int RM>
static __device__ __forceinline__ void kf_attention_dkdv(
    float* __restrict__ dk, float* __restrict__ dv, const float* __restrict__ dout, const float* __restrict__ stats,
    const float* __restrict__ dsum, const float* __restrict__ q, const float* __restrict__ k,
    const float* __restrict__ v, const float* __restrict__ key_mask, const unsigned long long* __restrict__ drop_keep,
    float drop_scale, float scale, int B, int T, int H, int KV, int HD, int causal, int window)
{
    constexpr int RG = BC / RM;
    constexpr int CG = NT / RG;
    constexpr int CN = BR / CG;
    constexpr int DPT = MAXHD / CG;
    static_assert(RG * CG == NT && CN * CG == BR && DPT * CG == MAXHD && CG <= 32, "attention dk/dv tiling");

    extern __shared__ float smem[];
    const int ld = HD + 1, ldp = BR + 1;
    float* sK = smem;
    float* sV = sK + BC * ld;
    float* sQ = sV + BC * ld;
    float* sG = sQ + BR * ld;
    float* sP = sG + BR * ld;
    float* sS = sP + BC * ldp;
    float* sM = sS + BC * ldp;
    float* sI = sM + BR;
    float* sD = sI + BR;

    const int tid = threadIdx.x, rg = tid / CG, cg = tid - rg * CG;
    const int k0 = blockIdx.x * BC;
    const int bk = blockIdx.y, b = bk / KV, kvh = bk - b * KV;
    const int G = H / KV;
    const long long qw = (long long)H * HD, kw = (long long)KV * HD;
    const float* kb = k + (long long)b * T * kw + (long long)kvh * HD;
    const float* vb = v + (long long)b * T * kw + (long long)kvh * HD;
    const float* mb = key_mask != 0 ? key_mask + (long long)b * T : 0;

    kf_load_rows<NT>(sK, ld, kb, kw, k0, BC, T, HD);
    kf_load_rows<NT>(sV, ld, vb, kw, k0, BC, T, HD);

    float ak[RM][DPT], av[RM][DPT];
#pragma unroll
    for (int i = 0; i < RM; i++) {
#pragma unroll
        for (int j = 0; j < DPT; j++) {
            ak[i][j] = 0.f;
            av[i][j] = 0.f;
        }
    }

    // Queries that can see a key of this tile: i ≥ k0 when causal, and
    // i ≤ (k0+BC−1) + window − 1 with a window.
    const int qlo = causal ? k0 : 0;
    const int qhi = window > 0 ? kf_imin(T, k0 + BC - 1 + window) : T;
    for (int hg = 0; hg < G; hg++) {
        const int h = kvh * G + hg;
        const long long drow = ((long long)b * H + h) * T;
        const float* qb = q + (long long)b * T * qw + (long long)h * HD;
        const float* gb = dout + (long long)b * T * qw + (long long)h * HD;
        for (int q0 = (qlo / BR) * BR; q0 < qhi; q0 += BR) {
            __syncthreads(); // the previous step's readers are done
            kf_load_rows<NT>(sQ, ld, qb, qw, q0, BR, T, HD);
            kf_load_rows<NT>(sG, ld, gb, qw, q0, BR, T, HD);
            for (int r = tid; r < BR; r += NT) {
                const int row = q0 + r;
                sM[r] = row < T ? stats[(drow + row) * 2] : KF_NEG_INF;
                sI[r] = row < T ? stats[(drow + row) * 2 + 1] : 0.f;
                sD[r] = row < T ? dsum[drow + row] : 0.f;
            }
            __syncthreads();

            float s[RM][CN], dp[RM][CN];
            kf_tile_dots<RM, CN, RG, CG>(s, dp, sK, sV, sQ, sG, ld, rg, cg, HD);
#pragma unroll
            for (int i = 0; i < RM; i++) {
                const int key = k0 + rg + i * RG;
#pragma unroll
                for (int j = 0; j < CN; j++) {
                    const int qr = cg + j * CG;
                    float pd;
                    sS[(rg + i * RG) * ldp + qr] = kf_p_ds(&pd, s[i][j], dp[i][j], sM[qr], sI[qr], sD[qr], q0 + qr, key,
                                                           T, causal, window, mb, drop_keep, drow, drop_scale, scale);
                    sP[(rg + i * RG) * ldp + qr] = pd;
                }
            }
            __syncthreads();

#pragma unroll 2
            for (int c = 0; c < BR; c++) {
                float pv[RM], sv[RM];
#pragma unroll
                for (int i = 0; i < RM; i++) {
                    pv[i] = sP[(rg + i * RG) * ldp + c];
                    sv[i] = sS[(rg + i * RG) * ldp + c];
                }
#pragma unroll
                for (int j = 0; j < DPT; j++) {
                    const int d = cg + j * CG;
                    if (d < HD) {
                        const float gq = sG[c * ld + d];
                        const float qq = sQ[c * ld + d];
#pragma unroll
                        for (int i = 0; i < RM; i++) {
                            av[i][j] = fmaf(pv[i], gq, av[i][j]);
                            ak[i][j] = fmaf(sv[i], qq, ak[i][j]);
                        }
                    }
                }
            }
        }
    }

#pragma unroll
    for (int i = 0; i < RM; i++) {
        const int key = k0 + rg + i * RG;
        if (key >= T)
            continue;
        float* dkb = dk + ((long long)b * T + key) * kw + (long long)kvh * HD;
        float* dvb = dv + ((long long)b * T + key) * kw + (long long)kvh * HD;
#pragma unroll
        for (int j = 0; j < DPT; j++) {
            const int d = cg + j * CG;
            if (d < HD) {
                dkb[d] += scale * ak[i][j];
                dvb[d] += av[i][j];
            }
        }
    }
}

// attention_forward_dXX(out, stats, q, k, v, key_mask, drop_keep, drop_scale,
// scale, B, T, H, KV, HD, causal, window): see the top of the file.
#define KF_FWD_PARAMS                                                                                                  \
    float *__restrict__ out, float *__restrict__ stats, const float *__restrict__ q, const float *__restrict__ k,     \
        const float *__restrict__ v, const float *__restrict__ key_mask,                                             \
        const unsigned long long *__restrict__ drop_keep, float drop_scale, float scale, int B, int T, int H, int KV, \
        int HD, int causal, int window
#define KF_FWD_ARGS out, stats, q, k, v, key_mask, drop_keep, drop_scale, scale, B, T, H, KV, HD, causal, window

extern "C" __global__ void __launch_bounds__(128) attention_forward_d32(KF_FWD_PARAMS)
{
    kf_attention_forward<128, 32, 64, 64, 4>(KF_FWD_ARGS);
}
extern "C" __global__ void __launch_bounds__(128) attention_forward_d64(KF_FWD_PARAMS)
{
    kf_attention_forward<128, 64, 64, 32, 4>(KF_FWD_ARGS);
}
extern "C" __global__ void __launch_bounds__(128) attention_forward_d128(KF_FWD_PARAMS)
{
    kf_attention_forward<128, 128, 32, 32, 2>(KF_FWD_ARGS);
}
extern "C" __global__ void __launch_bounds__(128) attention_forward_d256(KF_FWD_PARAMS)
{
    kf_attention_forward<128, 256, 16, 16, 1>(KF_FWD_ARGS);
}

// attention_backward_dot: dsum[(b·H+h)·T+t] = Σ_d dout[b,t,h,d]·out[b,t,h,d].
// dsum: B·H·T; dout, out: (B·T)×(H·HD). One warp per (b, t, h) row.
// Launch: block 256, grid min(ceil(B·T·H/8), 32768), grid-stride over rows.
extern "C" __global__ void attention_backward_dot(float* __restrict__ dsum, const float* __restrict__ dout,
                                                  const float* __restrict__ out, int B, int T, int H, int HD)
{
    const long long rows = (long long)B * T * H;
    const int lane = threadIdx.x & 31;
    const long long nw = ((long long)gridDim.x * blockDim.x) >> 5;
    for (long long r = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5; r < rows; r += nw) {
        const float* a = dout + r * HD;
        const float* o = out + r * HD;
        float s = 0.f;
        for (int d = lane; d < HD; d += 32)
            s = fmaf(a[d], o[d], s);
        s = kf_row_sum<32>(s);
        if (lane == 0) {
            const long long bt = r / H;
            const int h = (int)(r - bt * H);
            const long long bb = bt / T;
            const long long t = bt - bb * T;
            dsum[(bb * H + h) * T + t] = s;
        }
    }
}

// attention_backward_dq_dXX(dq, dout, stats, dsum, q, k, v, key_mask,
// drop_keep, drop_scale, scale, B, T, H, KV, HD, causal, window): dq += ….
// attention_backward_dkdv_dXX(dk, dv, dout, stats, dsum, q, k, v, …): dk, dv += ….
#define KF_BWD_TAIL                                                                                                   \
    const float *__restrict__ dout, const float *__restrict__ stats, const float *__restrict__ dsum,                  \
        const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,                        \
        const float *__restrict__ key_mask, const unsigned long long *__restrict__ drop_keep, float drop_scale,       \
        float scale, int B, int T, int H, int KV, int HD, int causal, int window
#define KF_BWD_TAIL_ARGS                                                                                              \
    dout, stats, dsum, q, k, v, key_mask, drop_keep, drop_scale, scale, B, T, H, KV, HD, causal, window

extern "C" __global__ void __launch_bounds__(128) attention_backward_dq_d32(float* __restrict__ dq, KF_BWD_TAIL)
{
    kf_attention_dq<128, 32, 64, 32, 4>(dq, KF_BWD_TAIL_ARGS);
}
extern "C" __global__ void __launch_bounds__(128) attention_backward_dq_d64(float* __restrict__ dq, KF_BWD_TAIL)
{
    kf_attention_dq<128, 64, 32, 32, 2>(dq, KF_BWD_TAIL_ARGS);
}
extern "C" __global__ void __launch_bounds__(128) attention_backward_dq_d128(float* __restrict__ dq, KF_BWD_TAIL)
{
    kf_attention_dq<128, 128, 16, 16, 1>(dq, KF_BWD_TAIL_ARGS);
}
extern "C" __global__ void __launch_bounds__(64) attention_backward_dq_d256(float* __restrict__ dq, KF_BWD_TAIL)
{
    kf_attention_dq<64, 256, 8, 8, 1>(dq, KF_BWD_TAIL_ARGS);
}

extern "C" __global__ void __launch_bounds__(128) attention_backward_dkdv_d32(float* __restrict__ dk,
                                                                               float* __restrict__ dv, KF_BWD_TAIL)
{
    kf_attention_dkdv<128, 32, 64, 32, 4>(dk, dv, KF_BWD_TAIL_ARGS);
}
extern "C" __global__ void __launch_bounds__(128) attention_backward_dkdv_d64(float* __restrict__ dk,
                                                                               float* __restrict__ dv, KF_BWD_TAIL)
{
    kf_attention_dkdv<128, 64, 32, 32, 2>(dk, dv, KF_BWD_TAIL_ARGS);
}
extern "C" __global__ void __launch_bounds__(128) attention_backward_dkdv_d128(float* __restrict__ dk,
                                                                                float* __restrict__ dv, KF_BWD_TAIL)
{
    kf_attention_dkdv<128, 128, 16, 16, 1>(dk, dv, KF_BWD_TAIL_ARGS);
}
extern "C" __global__ void __launch_bounds__(64) attention_backward_dkdv_d256(float* __restrict__ dk,
                                                                               float* __restrict__ dv, KF_BWD_TAIL)
{
    kf_attention_dkdv<64, 256, 8, 8, 1>(dk, dv, KF_BWD_TAIL_ARGS);
}

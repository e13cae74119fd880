package aggregate

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/kronfed/kronfed/adapter"
)

// Clients of different capacity train adapters of different ranks in one
// federation (weak devices r = 2 or 4, strong ones 8 or 16). The global
// adapter has the largest rank; a client takes it down to its own and
// brings its trained adapter back up:
//
//   - up, exactly: a rank-r adapter is a rank-R one (R ≥ r) with zero
//     columns in its left factor (B1, LoRA's B) and zero rows in its right
//     (B2, LoRA's A), rescaled for alpha/R instead of alpha/r: ΔW is
//     unchanged, so the coordinator's kron-exact rule sums the clients' ΔW
//     exactly.
//   - down, by SVD: the best rank-r approximation of the product B1·B2
//     (B·A), A kept — for Kron-LoRA the nearest ΔW of the smaller rank, since
//     ‖A ⊗ E‖ = ‖A‖·‖E‖.
//   - down, by index: the first r columns and rows, as HeteroLoRA's
//     zero-padding scheme truncates; cheaper and biased.

// RankMethod is how a client takes the global adapter down to its rank.
type RankMethod int

const (
	// RankSVD keeps the best rank-r approximation.
	RankSVD RankMethod = iota
	// RankIndex keeps the first r components.
	RankIndex
)

// WithRank returns set's adapters at rank r (same kind, dA2 and alpha;
// dense tensors copied) and each module's relative ΔW error
// ‖ΔW − ΔW_r‖F / ‖ΔW‖F (0 going up, and for a module whose ΔW is 0).
func WithRank(set *adapter.Set, r int, method RankMethod) (*adapter.Set, []float64, error) {
	if r < 1 {
		return nil, nil, fmt.Errorf("aggregate: rank %d, want ≥ 1", r)
	}
	cfg := set.Config
	cfg.Rank = r
	targets := make([]adapter.Target, len(set.Modules))
	for i, m := range set.Modules {
		dOut, dIn := m.Layer.Dims()
		targets[i] = adapter.Target{Name: m.Name, DOut: dOut, DIn: dIn}
	}
	out, err := adapter.NewSet(cfg, set.BaseModel, targets, rand.New(rand.NewPCG(0, 0)))
	if err != nil {
		return nil, nil, fmt.Errorf("aggregate: rank %d: %w", r, err)
	}
	for i, d := range set.Dense {
		if i < len(out.Dense) {
			copy(out.Dense[i].Data, d.Data)
		} else {
			c := d
			c.Data, c.Grad = append([]float32(nil), d.Data...), make([]float32, len(d.Data))
			out.Dense = append(out.Dense, c)
		}
	}
	errs := make([]float64, len(set.Modules))
	for i, m := range set.Modules {
		src, dst := m.Layer.Factors(), out.Modules[i].Layer.Factors()
		// The low-rank pair: Kron-LoRA's B1 (dB2×r), B2 (r×dB1) after A;
		// LoRA's B (d_out×q) is its second factor, A (q×d_in) its first.
		var sl, sr, dl, dr adapter.Factor
		switch m.Layer.Kind() {
		case adapter.KindKron:
			copy(dst[0].Data, src[0].Data) // A
			sl, sr, dl, dr = src[1], src[2], dst[1], dst[2]
		case adapter.KindLoRA:
			sl, sr, dl, dr = src[1], src[0], dst[1], dst[0]
		default:
			return nil, nil, fmt.Errorf("aggregate: no rank change for %s adapters", m.Layer.Kind())
		}
		// ΔW carries alpha/rank: the product must grow by R/r to keep ΔW.
		c := float64(r) / float64(set.Config.Rank)
		if errs[i], err = rerank(sl, sr, dl, dr, c, method); err != nil {
			return nil, nil, fmt.Errorf("aggregate: module %s: %w", m.Name, err)
		}
	}
	return out, errs, nil
}

// rerank writes into (dl, dr) the rank-len pair whose product is c times
// (sl·sr)'s, truncated by method when the rank shrinks, and returns the
// relative error of the truncation.
func rerank(sl, sr, dl, dr adapter.Factor, c float64, method RankMethod) (float64, error) {
	m, r0 := sl.Rows, sl.Cols
	n, r := sr.Cols, dl.Cols
	sq := math.Sqrt(c)
	clear(dl.Data) // the new Set came initialized: padding must be zeros
	clear(dr.Data)
	if r >= r0 || method == RankIndex {
		k := min(r, r0)
		for row := 0; row < m; row++ {
			for q := 0; q < k; q++ {
				dl.Data[row*r+q] = float32(sq * float64(sl.Data[row*r0+q]))
			}
		}
		for q := 0; q < k; q++ {
			for col := 0; col < n; col++ {
				dr.Data[q*n+col] = float32(sq * float64(sr.Data[q*n+col]))
			}
		}
		if r >= r0 {
			return 0, nil
		}
	} else {
		L, Rt := stackPairs([][]float32{sl.Data}, [][]float32{sr.Data}, []float64{c}, m, r0, n)
		b1, b2, _, err := truncate(L, Rt, r)
		if err != nil {
			return 0, err
		}
		for i, v := range b1 {
			dl.Data[i] = float32(v)
		}
		for i, v := range b2 {
			dr.Data[i] = float32(v)
		}
	}
	// ‖P − P_r/c‖ / ‖P‖ with P = sl·sr, from inner products of the factors.
	whole := pairInner(sl.Data, sr.Data, r0, sl.Data, sr.Data, r0, m, n)
	if whole == 0 {
		return 0, nil
	}
	cut := pairInner(dl.Data, dr.Data, r, dl.Data, dr.Data, r, m, n) / (c * c)
	cross := pairInner(sl.Data, sr.Data, r0, dl.Data, dr.Data, r, m, n) / c
	return math.Sqrt(math.Max(whole+cut-2*cross, 0) / whole), nil
}

// pairInner is ⟨U1·V1, U2·V2⟩_F for U_k m×r_k and V_k r_k×n (row-major),
// through the r1×r2 Gram matrices: Σ_ab (U1ᵀU2)_ab·(V1·V2ᵀ)_ab.
func pairInner(u1, v1 []float32, r1 int, u2, v2 []float32, r2, m, n int) float64 {
	var s float64
	for a := 0; a < r1; a++ {
		for b := 0; b < r2; b++ {
			var gu, gv float64
			for i := 0; i < m; i++ {
				gu += float64(u1[i*r1+a]) * float64(u2[i*r2+b])
			}
			for j := 0; j < n; j++ {
				gv += float64(v1[a*n+j]) * float64(v2[b*n+j])
			}
			s += gu * gv
		}
	}
	return s
}

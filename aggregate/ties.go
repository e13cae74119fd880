package aggregate

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/kronfed/kronfed/adapter"
)

// TIESMerge merges adapters by TIES-merging (Yadav et al. 2023, "Resolving
// interference when merging models") of their ΔW, module by module:
//
//  1. trim: keep each adapter's largest ⌈density·n⌉ entries of ΔW by
//     magnitude, zero the rest;
//  2. elect: each entry's sign is the sign of the trimmed values' sum;
//  3. disjoint mean: average, per entry, the trimmed values that agree with
//     the elected sign;
//
// then re-fits the merged ΔW to one adapter of the same shape (LoRA: the
// rank-q truncated SVD; Kron-LoRA: the nearest Kronecker product by the
// Van Loan–Pitsianis rearrangement, then a rank-r SVD of its B). Unlike
// ExactMerge it forms every ΔW densely (d_out × d_in float64), which is
// fine for the small models forgetting research runs on and costly for a
// 7B model's. Dense tensors are averaged. It returns each module's
// relative re-fit error ‖ΔW_ties − ΔW_new‖F / ‖ΔW_ties‖F.
func TIESMerge(sets []*adapter.Set, density float64) (*adapter.Set, []ModuleError, error) {
	if len(sets) == 0 {
		return nil, nil, fmt.Errorf("aggregate: nothing to merge")
	}
	if !(density > 0 && density <= 1) {
		return nil, nil, fmt.Errorf("aggregate: TIES density %v, want 0 < density ≤ 1", density)
	}
	ws := make([]Weighted, len(sets))
	for i, s := range sets {
		ws[i] = Weighted{Set: s, Weight: 1}
	}
	out, err := FedAvg(ws) // shapes checked, dense tensors averaged
	if err != nil {
		return nil, nil, err
	}
	var errs []ModuleError
	for mi, m := range out.Modules {
		dOut, dIn := m.Layer.Dims()
		deltas := make([][]float64, len(sets))
		for i, s := range sets {
			w := make([]float32, dOut*dIn)
			s.Modules[mi].Layer.MergeInto(w, 1)
			deltas[i] = trim(w, density)
		}
		merged := electAndMean(deltas)
		rel, err := refitDense(m.Layer, merged, dOut, dIn)
		if err != nil {
			return nil, nil, fmt.Errorf("aggregate: module %s: %w", m.Name, err)
		}
		errs = append(errs, ModuleError{Module: m.Name, Rel: rel})
	}
	return out, errs, nil
}

// trim keeps the ⌈density·n⌉ entries of w largest in magnitude (ties at
// the threshold kept too), as float64; the rest are 0.
func trim(w []float32, density float64) []float64 {
	k := int(math.Ceil(density * float64(len(w))))
	mags := make([]float64, len(w))
	for i, v := range w {
		mags[i] = math.Abs(float64(v))
	}
	sorted := slices.Clone(mags)
	slices.Sort(sorted)
	threshold := sorted[len(sorted)-k]
	out := make([]float64, len(w))
	for i, v := range w {
		if mags[i] >= threshold && mags[i] > 0 {
			out[i] = float64(v)
		}
	}
	return out
}

// electAndMean is TIES's sign election and disjoint mean over trimmed ΔWs.
func electAndMean(deltas [][]float64) []float64 {
	out := make([]float64, len(deltas[0]))
	for e := range out {
		var sum float64
		for _, d := range deltas {
			sum += d[e]
		}
		if sum == 0 {
			continue
		}
		var acc float64
		n := 0
		for _, d := range deltas {
			if d[e] != 0 && (d[e] > 0) == (sum > 0) {
				acc += d[e]
				n++
			}
		}
		out[e] = acc / float64(n)
	}
	return out
}

// refitDense sets layer's factors to the adapter of its shape nearest to
// the dense ΔW target (d_out × d_in, scale included) and returns the
// relative error left.
func refitDense(layer adapter.Layer, target []float64, dOut, dIn int) (float64, error) {
	norm := mat.Norm(mat.NewDense(dOut, dIn, target), 2)
	if norm == 0 {
		zeroDelta(layer)
		return 0, nil
	}
	var scale float64
	switch l := layer.(type) {
	case *adapter.LoRA:
		scale = float64(l.Scale())
		t := mat.NewDense(dOut, dIn, nil)
		for i, v := range target {
			t.Set(i/dIn, i%dIn, v/scale)
		}
		if err := lowRankFit(t, l.B, l.A, l.Shape.Rank); err != nil {
			return 0, err
		}
	case *adapter.Kron:
		scale = float64(l.Scale())
		sh := l.Shape
		dA2, dA1, dB2, dB1, r := sh.DA2, adapter.KronDA1, sh.DB2(), sh.DB1(), sh.Rank
		// R[i·dA1+j, k·dB1+m] = T[i·dB2+k, j·dB1+m]: ΔW = A ⊗ B is R = vec(A)·vec(B)ᵀ.
		R := mat.NewDense(dA2*dA1, dB2*dB1, nil)
		for i := 0; i < dA2; i++ {
			for j := 0; j < dA1; j++ {
				for k := 0; k < dB2; k++ {
					for m := 0; m < dB1; m++ {
						R.Set(i*dA1+j, k*dB1+m, target[(i*dB2+k)*dIn+j*dB1+m]/scale)
					}
				}
			}
		}
		u, s, v, err := thinSVD(R)
		if err != nil {
			return 0, err
		}
		sa := math.Sqrt(s[0])
		for a := range l.A {
			l.A[a] = float32(at(u, a, 0) * sa)
		}
		b := mat.NewDense(dB2, dB1, nil)
		for k := 0; k < dB2; k++ {
			for m := 0; m < dB1; m++ {
				b.Set(k, m, at(v, k*dB1+m, 0)*sa)
			}
		}
		if err := lowRankFit(b, l.B1, l.B2, r); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("no dense re-fit for %s adapters", layer.Kind())
	}
	got := make([]float32, dOut*dIn)
	layer.MergeInto(got, 1)
	var diff float64
	for i, v := range target {
		d := v - float64(got[i])
		diff += d * d
	}
	return math.Sqrt(diff) / norm, nil
}

// lowRankFit writes the best rank-r factorization of m (rows × cols) into
// left (rows×r) and right (r×cols), row-major, the singular values split
// evenly: left = U·√S, right = √S·Vᵀ.
func lowRankFit(m *mat.Dense, left, right []float32, r int) error {
	u, s, v, err := thinSVD(m)
	if err != nil {
		return err
	}
	rows, cols := m.Dims()
	for c := 0; c < r; c++ {
		sq := 0.0
		if c < len(s) {
			sq = math.Sqrt(s[c])
		}
		for row := 0; row < rows; row++ {
			left[row*r+c] = float32(at(u, row, c) * sq)
		}
		for col := 0; col < cols; col++ {
			right[c*cols+col] = float32(at(v, col, c) * sq)
		}
	}
	return nil
}

// zeroDelta makes a layer's ΔW zero the way its kind starts: Kron-LoRA's A
// and LoRA's B are zeroed.
func zeroDelta(layer adapter.Layer) {
	switch l := layer.(type) {
	case *adapter.Kron:
		clear(l.A)
	case *adapter.LoRA:
		clear(l.B)
	}
}

// thinSVD returns U, the singular values and V of a.
func thinSVD(a *mat.Dense) (u *mat.Dense, s []float64, v *mat.Dense, err error) {
	var svd mat.SVD
	if !svd.Factorize(a, mat.SVDThin) {
		r, c := a.Dims()
		return nil, nil, nil, fmt.Errorf("SVD of a %d×%d matrix failed", r, c)
	}
	u, v = new(mat.Dense), new(mat.Dense)
	svd.UTo(u)
	svd.VTo(v)
	return u, svd.Values(nil), v, nil
}

// at is m[i, j], or 0 past m's columns (a rank larger than the matrix's).
func at(m *mat.Dense, i, j int) float64 {
	if _, c := m.Dims(); j >= c {
		return 0
	}
	return m.At(i, j)
}

package aggregate

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/internal/adaptertest"
)

// denseDelta is a layer's ΔW (scale included) in float64.
func denseDelta(l adapter.Layer) *mat.Dense {
	dOut, dIn := l.Dims()
	w := make([]float32, dOut*dIn)
	l.MergeInto(w, 1)
	out := mat.NewDense(dOut, dIn, nil)
	for i, v := range w {
		out.Set(i/dIn, i%dIn, float64(v))
	}
	return out
}

func relDiff(a, b *mat.Dense) float64 {
	var d mat.Dense
	d.Sub(a, b)
	return mat.Norm(&d, 2) / mat.Norm(a, 2)
}

// TestWithRank checks rank changes against dense float64 ΔW: going up is
// exact; going down by SVD leaves the Eckart–Young error of the low-rank
// product (for Kron-LoRA, of B = B1·B2, A being kept); going down by index
// leaves a larger one; every reported error is the dense one.
func TestWithRank(t *testing.T) {
	targets := []adapter.Target{{Name: "q", DOut: 12, DIn: 10}, {Name: "up", DOut: 16, DIn: 12}}
	for _, kind := range []adapter.Kind{adapter.KindKron, adapter.KindLoRA} {
		ac := adapter.DefaultConfig(kind)
		ac.Rank = 4
		if kind == adapter.KindKron {
			ac.DA2 = 2
		}
		set := adaptertest.Random(t, ac, "m", targets, 1)
		up, errs, err := WithRank(set, 8, RankSVD)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range up.Modules {
			if m.Layer.Rank() != 8 {
				t.Fatalf("%s: rank %d", kind, m.Layer.Rank())
			}
			if d := relDiff(denseDelta(set.Modules[i].Layer), denseDelta(m.Layer)); d > 1e-6 || errs[i] != 0 {
				t.Errorf("%s %s up: ΔW moved by %g (reported %g)", kind, m.Name, d, errs[i])
			}
		}
		for _, method := range []RankMethod{RankSVD, RankIndex} {
			down, errs, err := WithRank(set, 2, method)
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range down.Modules {
				src := set.Modules[i].Layer
				got := relDiff(denseDelta(src), denseDelta(m.Layer))
				if math.Abs(got-errs[i]) > 1e-5 {
					t.Errorf("%s %s method %d: dense error %.6f, reported %.6f", kind, m.Name, method, got, errs[i])
				}
				// The best possible: the SVD tail of the low-rank product.
				var prod mat.Dense
				switch l := src.(type) {
				case *adapter.Kron:
					sh := l.Shape
					prod.Mul(f64(l.B1, sh.DB2(), sh.Rank), f64(l.B2, sh.Rank, sh.DB1()))
				case *adapter.LoRA:
					prod.Mul(f64(l.B, l.Shape.DOut, l.Shape.Rank), f64(l.A, l.Shape.Rank, l.Shape.DIn))
				}
				var svd mat.SVD
				svd.Factorize(&prod, mat.SVDNone)
				var all, tail float64
				for k, v := range svd.Values(nil) {
					all += v * v
					if k >= 2 {
						tail += v * v
					}
				}
				best := math.Sqrt(tail / all)
				if method == RankSVD && math.Abs(got-best) > 1e-5 {
					t.Errorf("%s %s: SVD truncation error %.6f, best %.6f", kind, m.Name, got, best)
				}
				if method == RankIndex && got < best-1e-9 {
					t.Errorf("%s %s: index truncation %.6f beats the optimum %.6f", kind, m.Name, got, best)
				}
			}
			// Back up to 4: the same ΔW as at rank 2.
			back, _, err := WithRank(down, 4, RankSVD)
			if err != nil {
				t.Fatal(err)
			}
			for i := range back.Modules {
				if d := relDiff(denseDelta(down.Modules[i].Layer), denseDelta(back.Modules[i].Layer)); d > 1e-6 {
					t.Errorf("%s: down then up moved ΔW by %g", kind, d)
				}
			}
		}
	}
	if _, _, err := WithRank(adaptertest.Random(t, adapter.DefaultConfig(adapter.KindLoRA), "m", []adapter.Target{{Name: "q", DOut: 4, DIn: 4}}, 1), 0, RankSVD); err == nil {
		t.Error("rank 0 accepted")
	}
}

func f64(x []float32, rows, cols int) *mat.Dense {
	out := mat.NewDense(rows, cols, nil)
	for i, v := range x {
		out.Set(i/cols, i%cols, float64(v))
	}
	return out
}

package aggregate

import (
	"math"
	"math/rand/v2"
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

// TestTopSingular: the top singular triplets from the smaller Gram matrix
// match gonum's full SVD on tall and wide matrices with singular values
// spread over six orders of magnitude — values within 1e-10·σ₁, and the
// rank-r reconstruction U·S·Vᵀ within 1e-9·σ₁ of the SVD's (the vectors
// themselves are defined only up to sign) — and a rank-deficient matrix
// leaves the missing directions zero.
func TestTopSingular(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	random := func(r, c int) *mat.Dense {
		m := mat.NewDense(r, c, nil)
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				m.Set(i, j, rng.NormFloat64())
			}
		}
		return m
	}
	for _, dims := range [][2]int{{60, 20}, {20, 60}, {33, 33}, {9, 40}} {
		c1, c2 := dims[0], dims[1]
		n := min(c1, c2)
		// c = X·diag(σ)·Yᵀ with orthonormal X, Y and σ_i = 10^(−6i/n).
		var qx, qy mat.QR
		qx.Factorize(random(c1, n))
		qy.Factorize(random(c2, n))
		var x, y mat.Dense
		qx.QTo(&x)
		qy.QTo(&y)
		sig := mat.NewDiagDense(n, nil)
		for i := 0; i < n; i++ {
			sig.SetDiag(i, math.Pow(10, -6*float64(i)/float64(n)))
		}
		var xs, c mat.Dense
		xs.Mul(x.Slice(0, c1, 0, n), sig)
		c.Mul(&xs, y.Slice(0, c2, 0, n).T())
		const r = 8
		u, v, s, err := topSingular(&c, r)
		if err != nil {
			t.Fatal(err)
		}
		var svd mat.SVD
		if !svd.Factorize(&c, mat.SVDThin) {
			t.Fatal("reference SVD failed")
		}
		want := svd.Values(nil)
		var su, sv mat.Dense
		svd.UTo(&su)
		svd.VTo(&sv)
		for q := 0; q < r; q++ {
			if math.Abs(s[q]-want[q]) > 1e-10*want[0] {
				t.Errorf("%dx%d: σ%d = %v, SVD %v", c1, c2, q, s[q], want[q])
			}
		}
		rebuild := func(u, v mat.Matrix, s []float64) *mat.Dense {
			var us, out mat.Dense
			d := mat.NewDiagDense(r, s[:r])
			us.Mul(u.(*mat.Dense).Slice(0, c1, 0, r), d)
			out.Mul(&us, v.(*mat.Dense).Slice(0, c2, 0, r).T())
			return &out
		}
		var diff mat.Dense
		diff.Sub(rebuild(u, v, s), rebuild(&su, &sv, want))
		if d := mat.Norm(&diff, 2); d > 1e-9*want[0] {
			t.Errorf("%dx%d: rank-%d reconstructions differ by %.3g", c1, c2, r, d)
		}
	}
	// Rank 3 of 8 wanted: σ3… are 0 and their vectors stay 0.
	low := mat.NewDense(12, 10, nil)
	low.Mul(random(12, 3), random(3, 10))
	u, v, s, err := topSingular(low, 8)
	if err != nil {
		t.Fatal(err)
	}
	for q := 3; q < 8; q++ {
		if s[q] > 1e-6*s[0] {
			t.Errorf("rank 3: σ%d = %v", q, s[q])
		}
	}
	var rec, us mat.Dense
	us.Mul(u, mat.NewDiagDense(8, s))
	rec.Mul(&us, v.T())
	rec.Sub(&rec, low)
	if d := mat.Norm(&rec, 2); d > 1e-9*s[0] {
		t.Errorf("rank 3: reconstruction off by %.3g", d)
	}
}

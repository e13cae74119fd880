package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/internal/adaptertest"
	"github.com/kronfed/kronfed/internal/gradcheck"
)

var penaltyTargets = []adapter.Target{{Name: "q", DOut: 8, DIn: 12}, {Name: "up", DOut: 12, DIn: 8}}

func penaltyConfig(kind adapter.Kind) adapter.Config {
	ac := adapter.DefaultConfig(kind)
	ac.Rank = 3
	if kind == adapter.KindKron {
		ac.DA2 = 2
	}
	return ac
}

// TestPenaltyGradients checks each penalty's gradient against central
// finite differences of its value (in float64), for both adapter kinds.
func TestPenaltyGradients(t *testing.T) {
	for _, kind := range []adapter.Kind{adapter.KindKron, adapter.KindLoRA} {
		ac := penaltyConfig(kind)
		old := adaptertest.Random(t, ac, "m", penaltyTargets, 1)
		cur := adaptertest.Random(t, ac, "m", penaltyTargets, 2)
		l2, err := NewL2SP(old, 0.7)
		if err != nil {
			t.Fatal(err)
		}
		orth, err := NewOrthogonal(old, 1.3)
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range map[string]Penalty{"l2sp": l2, "ortho": orth} {
			params := cur.Params()
			value := func() float64 {
				scratch := make([]adapter.Factor, len(params))
				for i, f := range params {
					scratch[i] = adapter.Factor{Name: f.Name, Rows: f.Rows, Cols: f.Cols, Data: f.Data, Grad: make([]float32, len(f.Data))}
				}
				return p.AddGrad(scratch)
			}
			for _, f := range params {
				clear(f.Grad)
			}
			v0 := p.AddGrad(params)
			if !(v0 > 0) {
				t.Fatalf("%s %s: value %v", kind, name, v0)
			}
			gradcheck.Directional(t, params, value, rand.New(rand.NewPCG(3, 3)), gradcheck.Options{Trials: 3, RelTol: 1e-3, AbsTol: 1e-5})
		}
	}
}

// TestOrthogonalMeansOrthogonalDeltas: when the penalty is zero, the two
// adapters' dense ΔW (float64, materialized) have orthogonal row spaces:
// ΔW_old·ΔW_newᵀ = 0 — the property O-LoRA wants, shown for Kron-LoRA
// through its B2 factors.
func TestOrthogonalMeansOrthogonalDeltas(t *testing.T) {
	for _, kind := range []adapter.Kind{adapter.KindKron, adapter.KindLoRA} {
		ac := penaltyConfig(kind)
		old := adaptertest.Random(t, ac, "m", penaltyTargets, 1)
		cur := adaptertest.Random(t, ac, "m", penaltyTargets, 2)
		k := inputFactor(kind)
		// Project each new input-side factor's rows off the old one's row
		// space (Gram–Schmidt against an orthonormal basis of it).
		for mi, m := range cur.Modules {
			pn, po := m.Layer.Factors()[k], old.Modules[mi].Layer.Factors()[k]
			basis := orthonormalRows(po.Data, po.Rows, po.Cols)
			for a := 0; a < pn.Rows; a++ {
				row := pn.Data[a*pn.Cols : (a+1)*pn.Cols]
				for _, q := range basis {
					var d float64
					for c := range row {
						d += float64(row[c]) * q[c]
					}
					for c := range row {
						row[c] -= float32(d * q[c])
					}
				}
			}
		}
		p, _ := NewOrthogonal(old, 1)
		params := cur.Params()
		if v := p.AddGrad(params); v > 1e-9 {
			t.Fatalf("%s: penalty %v after projection", kind, v)
		}
		for mi, m := range cur.Modules {
			dOut, dIn := m.Layer.Dims()
			wo, wn := make([]float32, dOut*dIn), make([]float32, dOut*dIn)
			old.Modules[mi].Layer.MergeInto(wo, 1)
			m.Layer.MergeInto(wn, 1)
			var prod, scale float64
			for i := 0; i < dOut; i++ {
				for j := 0; j < dOut; j++ {
					var s float64
					for c := 0; c < dIn; c++ {
						s += float64(wo[i*dIn+c]) * float64(wn[j*dIn+c])
					}
					prod = math.Max(prod, math.Abs(s))
				}
			}
			for _, x := range wo {
				scale = math.Max(scale, math.Abs(float64(x)))
			}
			if prod > 1e-5*scale*scale*float64(dIn) {
				t.Errorf("%s %s: max |ΔW_old·ΔW_newᵀ| = %g (scale %g)", kind, m.Name, prod, scale)
			}
		}
	}
}

func orthonormalRows(data []float32, rows, cols int) [][]float64 {
	var out [][]float64
	for a := 0; a < rows; a++ {
		v := make([]float64, cols)
		for c := range v {
			v[c] = float64(data[a*cols+c])
		}
		for _, q := range out {
			var d float64
			for c := range v {
				d += v[c] * q[c]
			}
			for c := range v {
				v[c] -= d * q[c]
			}
		}
		var n float64
		for _, x := range v {
			n += x * x
		}
		n = math.Sqrt(n)
		for c := range v {
			v[c] /= n
		}
		out = append(out, v)
	}
	return out
}

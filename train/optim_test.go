package train

import (
	"math"
	"testing"

	"github.com/kronfed/kronfed/adapter"
)

// adamRef is torch.optim.AdamW's update in float64, written from its
// documented algorithm.
type adamRef struct {
	m, v []float64
	t    int
}

func (a *adamRef) step(p, g []float64, c AdamWConfig, lr float64) {
	a.t++
	for i := range p {
		p[i] *= 1 - lr*c.WeightDecay
		a.m[i] = c.Beta1*a.m[i] + (1-c.Beta1)*g[i]
		a.v[i] = c.Beta2*a.v[i] + (1-c.Beta2)*g[i]*g[i]
		mhat := a.m[i] / (1 - math.Pow(c.Beta1, float64(a.t)))
		vhat := a.v[i] / (1 - math.Pow(c.Beta2, float64(a.t)))
		p[i] -= lr * mhat / (math.Sqrt(vhat) + c.Eps)
	}
}

func TestAdamWMatchesReference(t *testing.T) {
	cfg := DefaultAdamW()
	cfg.WeightDecay = 0.01
	data := []float32{0.5, -1, 2, 0}
	grad := make([]float32, 4)
	o, err := NewAdamW([]adapter.Factor{{Name: "w", Rows: 1, Cols: 4, Data: data, Grad: grad}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ref := &adamRef{m: make([]float64, 4), v: make([]float64, 4)}
	p := []float64{0.5, -1, 2, 0}
	for step := 0; step < 50; step++ {
		// gradient of Σ (w_i − target_i)² with a step-dependent twist
		g := make([]float64, 4)
		for i := range p {
			g[i] = 2*(p[i]-float64(i)) + 0.1*math.Sin(float64(step+i))
			grad[i] = float32(2*(float64(data[i])-float64(i)) + 0.1*math.Sin(float64(step+i)))
		}
		lr := LinearLR(0.05, step, 50)
		o.Step(lr)
		ref.step(p, g, cfg, lr)
		for i := range p {
			if math.Abs(float64(data[i])-p[i]) > 1e-4 {
				t.Fatalf("step %d param %d: %v, reference %v", step, i, data[i], p[i])
			}
		}
	}
	// First step of Adam moves each parameter by lr·g/(|g|+eps) (bias
	// correction makes m̂ = g, v̂ = g²): a known closed form.
	d := []float32{1}
	o2, _ := NewAdamW([]adapter.Factor{{Data: d, Grad: []float32{-3}}}, DefaultAdamW())
	o2.Step(0.1)
	if want := 1 + 0.1*3/(3+1e-8); math.Abs(float64(d[0])-want) > 1e-6 {
		t.Fatalf("first step: %v, want %v", d[0], want)
	}
}

func TestClipGradNorm(t *testing.T) {
	g1, g2 := []float32{3, 0}, []float32{0, 4}
	params := []adapter.Factor{{Grad: g1}, {Grad: g2}}
	n, err := ClipGradNorm(params, 1)
	if err != nil || math.Abs(n-5) > 1e-6 {
		t.Fatalf("norm %v, %v", n, err)
	}
	if math.Abs(float64(g1[0])-0.6) > 1e-5 || math.Abs(float64(g2[1])-0.8) > 1e-5 {
		t.Fatalf("clipped to %v %v", g1, g2)
	}
	n, _ = ClipGradNorm(params, 1)
	if math.Abs(n-1) > 1e-5 || math.Abs(float64(g1[0])-0.6) > 1e-5 {
		t.Fatal("a gradient within the norm must not change")
	}
	g1[0] = float32(math.NaN())
	if _, err := ClipGradNorm(params, 1); err == nil {
		t.Fatal("NaN gradient accepted")
	}
}

func TestLinearLR(t *testing.T) {
	for _, c := range []struct {
		step, total int
		want        float64
	}{{0, 10, 1}, {5, 10, 0.5}, {10, 10, 0}, {12, 10, 0}, {0, 0, 0}} {
		if got := LinearLR(1, c.step, c.total); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("LinearLR(1, %d, %d) = %v, want %v", c.step, c.total, got, c.want)
		}
	}
}

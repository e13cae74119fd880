package adapter

import (
	"math"
	"math/rand/v2"
	"testing"
)

func arithSet(t *testing.T, seed uint64) *Set {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	s, err := NewSet(DefaultConfig(KindKron).Resolve(16), "m", []Target{{"a", 16, 8}, {"b", 8, 16}}, rng)
	if err != nil {
		t.Fatal(err)
	}
	s.Dense = []Dense{{Name: "head", Rows: 1, Cols: 3, Data: make([]float32, 3), Grad: make([]float32, 3)}}
	for _, p := range s.Params() {
		for i := range p.Data {
			p.Data[i] = float32(rng.NormFloat64())
		}
	}
	return s
}

// TestSetArithmetic checks Add, Sub, AddScaled, Scale and Norm element by
// element against float64 arithmetic on the flattened tensors.
func TestSetArithmetic(t *testing.T) {
	a, b := arithSet(t, 1), arithSet(t, 2)
	flat := func(s *Set) []float64 {
		var out []float64
		for _, p := range s.Params() {
			for _, v := range p.Data {
				out = append(out, float64(v))
			}
		}
		return out
	}
	fa, fb := flat(a), flat(b)
	check := func(name string, got *Set, want func(x, y float64) float64) {
		t.Helper()
		for i, g := range flat(got) {
			if w := float32(want(fa[i], fb[i])); float32(g) != w {
				t.Fatalf("%s: element %d = %v, want %v", name, i, g, w)
			}
		}
	}
	check("Add", a.Clone().Add(b), func(x, y float64) float64 { return x + y })
	check("Sub", a.Clone().Sub(b), func(x, y float64) float64 { return x - y })
	check("AddScaled", a.Clone().AddScaled(-0.3, b), func(x, y float64) float64 { return x - 0.3*y })
	check("Scale", a.Clone().Scale(2.5), func(x, _ float64) float64 { return 2.5 * x })
	// Add and Sub are float32 arithmetic exactly (the float64 detour rounds once).
	for i, p := range a.Clone().Add(b).Params() {
		for j, v := range p.Data {
			if w := a.Params()[i].Data[j] + b.Params()[i].Data[j]; v != w {
				t.Fatalf("Add differs from float32 addition at %s[%d]: %v vs %v", p.Name, j, v, w)
			}
		}
	}
	var ss float64
	for _, v := range fa {
		ss += v * v
	}
	if n := a.Norm(); math.Abs(n-math.Sqrt(ss)) > 1e-12*n {
		t.Fatalf("Norm %v, want %v", n, math.Sqrt(ss))
	}
	defer func() {
		if recover() == nil {
			t.Fatal("arithmetic on Sets of different shapes did not panic")
		}
	}()
	c := a.Clone()
	c.Dense = nil
	a.Add(c)
}

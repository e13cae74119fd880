package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFrozenLinear checks y = x·Wᵀ + b and dx += dy·W against float64 loops.
func TestFrozenLinear(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const dOut, dIn, n = 37, 53, 11
	r := func(k int) []float32 {
		x := make([]float32, k)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	w, b, x, dy, dx0 := r(dOut*dIn), r(dOut), r(n*dIn), r(n*dOut), r(n*dIn)
	l, err := NewFrozenLinear(dOut, dIn, w, b)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, n*dOut)
	l.Forward(x, n, y)
	dx := append([]float32(nil), dx0...)
	l.BackwardInput(dy, n, dx)
	for i := 0; i < n; i++ {
		for o := 0; o < dOut; o++ {
			want := float64(b[o])
			for k := 0; k < dIn; k++ {
				want += float64(x[i*dIn+k]) * float64(w[o*dIn+k])
			}
			if math.Abs(float64(y[i*dOut+o])-want) > 1e-4*(1+math.Abs(want)) {
				t.Fatalf("y[%d,%d] = %v, want %v", i, o, y[i*dOut+o], want)
			}
		}
		for k := 0; k < dIn; k++ {
			want := float64(dx0[i*dIn+k])
			for o := 0; o < dOut; o++ {
				want += float64(dy[i*dOut+o]) * float64(w[o*dIn+k])
			}
			if math.Abs(float64(dx[i*dIn+k])-want) > 1e-4*(1+math.Abs(want)) {
				t.Fatalf("dx[%d,%d] = %v, want %v", i, k, dx[i*dIn+k], want)
			}
		}
	}
	if _, err := NewFrozenLinear(4, 4, make([]float32, 15), nil); err == nil {
		t.Fatal("short weight accepted")
	}
}

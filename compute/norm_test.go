package compute

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestNormRowPaths: Sum8, CenteredSquares8 and NormApply give the same bits
// with and without the assembly, for lengths with and without a ragged
// tail, and Sum8 and CenteredSquares8 agree with float64 sums.
func TestNormRowPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 9))
	for _, n := range []int{768, 1024, 13, 8, 3, 777} {
		x, w, b := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64()*3 + 1)
			w[i], b[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		type res struct {
			sum, sq float32
			out     []float32
		}
		run := func() res {
			r := res{sum: Sum8(x), out: make([]float32, n)}
			mu := r.sum / float32(n)
			r.sq = CenteredSquares8(x, mu)
			NormApply(r.out, x, w, b, mu, 0.7)
			return r
		}
		asm := run()
		var port res
		withPortable(func() { port = run() })
		if math.Float32bits(asm.sum) != math.Float32bits(port.sum) || math.Float32bits(asm.sq) != math.Float32bits(port.sq) {
			t.Fatalf("n %d: sums %v, %v (assembly) vs %v, %v (Go)", n, asm.sum, asm.sq, port.sum, port.sq)
		}
		for i := range asm.out {
			if math.Float32bits(asm.out[i]) != math.Float32bits(port.out[i]) {
				t.Fatalf("n %d: out[%d] %v (assembly) vs %v (Go)", n, i, asm.out[i], port.out[i])
			}
		}
		var s64, q64 float64
		for _, v := range x {
			s64 += float64(v)
		}
		mu := asm.sum / float32(n)
		for _, v := range x {
			q64 += (float64(v) - float64(mu)) * (float64(v) - float64(mu))
		}
		if math.Abs(float64(asm.sum)-s64) > 1e-5*math.Abs(s64)+1e-4 || math.Abs(float64(asm.sq)-q64) > 1e-5*q64 {
			t.Fatalf("n %d: Sum8 %v vs %v, CenteredSquares8 %v vs %v", n, asm.sum, s64, asm.sq, q64)
		}
	}
}

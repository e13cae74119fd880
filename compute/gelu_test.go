package compute

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGELU checks both paths against float64 GELU and its derivative from
// math.Erf, on a grid through the clamp points and random values, for lengths
// that exercise the 8-lane body and the tail.
func TestGELU(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, 0, 4000)
	for i := -1200; i <= 1200; i++ {
		x = append(x, float32(i)/100) // −12 … 12, crossing ±4√2
	}
	for len(x) < cap(x)-3 {
		x = append(x, float32(rng.NormFloat64()*3))
	}
	for _, path := range []string{"asm", "go"} {
		for _, n := range []int{len(x), 7, 13} {
			out, grad := make([]float32, n), make([]float32, n)
			if path == "go" {
				geluGo(out, grad, x[:n])
			} else {
				GELU(out, grad, x[:n])
			}
			for i, v := range x[:n] {
				xv := float64(v)
				cdf := 0.5 * (1 + math.Erf(xv/math.Sqrt2))
				wantOut := xv * cdf
				wantGrad := cdf + xv*math.Exp(-xv*xv/2)/math.Sqrt(2*math.Pi)
				if d := math.Abs(float64(out[i]) - wantOut); d > 1e-6*(1+math.Abs(wantOut)) {
					t.Fatalf("%s n=%d: GELU(%v) = %v, want %v", path, n, v, out[i], wantOut)
				}
				if d := math.Abs(float64(grad[i]) - wantGrad); d > 1e-5 {
					t.Fatalf("%s n=%d: GELU'(%v) = %v, want %v", path, n, v, grad[i], wantGrad)
				}
			}
		}
	}
	// Without grad the forward alone must agree with the fused one.
	out, out2, grad := make([]float32, len(x)), make([]float32, len(x)), make([]float32, len(x))
	GELU(out, grad, x)
	GELU(out2, nil, x)
	for i := range out {
		if math.Abs(float64(out[i]-out2[i])) > 1e-6*(1+math.Abs(float64(out[i]))) {
			t.Fatalf("GELU(%v): %v with grad, %v without", x[i], out[i], out2[i])
		}
	}
}

func TestErf32(t *testing.T) {
	worstErf, worstGrad := 0.0, 0.0
	for i := -80000; i <= 80000; i++ {
		x := float64(float32(float64(i) / 10000)) // −8 … 8
		e, g := Erf32Grad(float32(x))
		if e != Erf32(float32(x)) {
			t.Fatalf("Erf32Grad and Erf32 disagree at %v", x)
		}
		worstErf = math.Max(worstErf, math.Abs(float64(e)-math.Erf(x)))
		worstGrad = math.Max(worstGrad, math.Abs(float64(g)-2/math.Sqrt(math.Pi)*math.Exp(-x*x)))
	}
	if worstErf > 5e-7 || worstGrad > 5e-6 {
		t.Fatalf("largest |Erf32 − erf| = %.3g, |Erf32' − erf'| = %.3g", worstErf, worstGrad)
	}
}

func BenchmarkGELU(b *testing.B) {
	n := 1024 * 3072
	x, out, grad := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(i%1000)*0.01 - 5
	}
	b.SetBytes(int64(n * 4))
	for i := 0; i < b.N; i++ {
		GELU(out, grad, x)
	}
}

// TestGELUWidthsAgree: the zmm and ymm GELU give the same bits (the same
// instructions lane for lane), across the clamp at |x/√2| = 4 and ragged
// lengths that end in each path.
func TestGELUWidthsAgree(t *testing.T) {
	widths := kernelWidths()
	if len(widths) < 2 {
		t.Skip("no AVX-512 here")
	}
	rng := rand.New(rand.NewPCG(3, 3))
	x := make([]float32, 4099)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 4)
	}
	x[5], x[6], x[7] = float32(4*math.Sqrt2), -float32(4*math.Sqrt2), float32(math.Nextafter32(float32(4*math.Sqrt2), 0))
	var outs, grads [2][]float32
	for w, kw := range widths[:2] {
		outs[w], grads[w] = make([]float32, len(x)), make([]float32, len(x))
		withKernel(kw.force, func() { gelu(outs[w], grads[w], x) })
	}
	for i := range x {
		if math.Float32bits(outs[0][i]) != math.Float32bits(outs[1][i]) || math.Float32bits(grads[0][i]) != math.Float32bits(grads[1][i]) {
			t.Fatalf("x = %v: avx2 %v, %v; avx512 %v, %v", x[i], outs[0][i], grads[0][i], outs[1][i], grads[1][i])
		}
	}
}

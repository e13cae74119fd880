package adapter

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/compute"
)

type layerCase struct {
	name string
	make func(rng *rand.Rand) Layer
}

func kronCase(dOut, dIn, dA2, r int) layerCase {
	return layerCase{fmt.Sprintf("kron_%dx%d_dA2=%d_r=%d", dOut, dIn, dA2, r), func(rng *rand.Rand) Layer {
		s, err := NewKronShape(dOut, dIn, dA2, r)
		if err != nil {
			panic(err)
		}
		k, err := NewKron(s, 32, rng)
		if err != nil {
			panic(err)
		}
		return k
	}}
}

func loraCase(dOut, dIn, q int) layerCase {
	return layerCase{fmt.Sprintf("lora_%dx%d_q=%d", dOut, dIn, q), func(rng *rand.Rand) Layer {
		s, err := NewLoRAShape(dOut, dIn, q)
		if err != nil {
			panic(err)
		}
		l, err := NewLoRA(s, 32, rng)
		if err != nil {
			panic(err)
		}
		return l
	}}
}

// referenceCases covers square, non-square and GQA-like layers.
var referenceCases = []layerCase{
	kronCase(8, 6, 2, 3),
	kronCase(12, 10, 3, 8),
	kronCase(768, 768, 4, 8),
	kronCase(3072, 768, 4, 8),
	kronCase(768, 3072, 4, 8),
	kronCase(1024, 4096, 16, 8), // GQA k/v projection of Mistral-7B
	kronCase(30, 14, 5, 8),      // rank larger than dB1
	loraCase(8, 6, 4),
	loraCase(768, 768, 8),
	loraCase(1024, 4096, 16),
}

// TestForwardBackwardMatchesDenseReference checks every output and gradient of
// each layer against a float64 computation with ΔW materialized:
//
//	y  = y0 + x·ΔWᵀ,  dΔW = dyᵀ·x,  dx = dy·ΔW,
//	Kron:  dA[i,j] = Σ_kl dΔW[i·dB2+k, j·dB1+l]·B[k,l],  dB = Σ_ij A[i,j]·dΔW-block(i,j),
//	       dB1 = dB·B2ᵀ, dB2 = B1ᵀ·dB
//	LoRA:  dB = dΔW·Aᵀ, dA = Bᵀ·dΔW
//
// where dΔW carries the scale alpha/r.
func TestForwardBackwardMatchesDenseReference(t *testing.T) {
	const tol = 1e-5
	for ci, c := range referenceCases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 7))
			l := c.make(rng)
			randomize(l, rng)
			dOut, dIn := l.Dims()
			n := 1 + rng.IntN(9)
			x := randSlice(rng, n*dIn, 1)
			y0 := randSlice(rng, n*dOut, 1)
			dy := randSlice(rng, n*dOut, 1)
			dx0 := randSlice(rng, n*dIn, 1)

			y := append([]float32(nil), y0...)
			var acts Acts
			l.Forward(x, n, y, &acts, nil)
			dx := append([]float32(nil), dx0...)
			l.Backward(dy, &acts, dx)

			dw := deltaW64(t, l) // scale·ΔW, dOut×dIn
			x64, dy64 := to64(x), to64(dy)
			// The adapter's own contribution, compared separately so that y0 does
			// not hide an error.
			wantY := matmul64(x64, transpose64(dw, dOut, dIn), n, dIn, dOut)
			gotY := make([]float32, len(y))
			for i := range y {
				gotY[i] = y[i] - y0[i]
			}
			if e := relErr(gotY, wantY); e > tol {
				t.Errorf("forward: relative error %.3g > %g", e, tol)
			}
			wantDX := matmul64(dy64, dw, n, dOut, dIn)
			gotDX := make([]float32, len(dx))
			for i := range dx {
				gotDX[i] = dx[i] - dx0[i]
			}
			if e := relErr(gotDX, wantDX); e > tol {
				t.Errorf("dx: relative error %.3g > %g", e, tol)
			}

			// dΔW = scale·dyᵀ·x (dOut×dIn).
			gW := matmul64(transpose64(dy64, n, dOut), x64, dOut, n, dIn)
			s := float64(l.Scale())
			for i := range gW {
				gW[i] *= s
			}
			for name, want := range factorGrads64(l, gW) {
				got := gradOf(l, name)
				if e := relErr(got, want); e > tol {
					t.Errorf("grad %s: relative error %.3g > %g", name, e, tol)
				}
			}
		})
	}
}

// factorGrads64 maps dL/dΔW (already scaled) to the factor gradients in float64.
func factorGrads64(l Layer, gW []float64) map[string][]float64 {
	switch l := l.(type) {
	case *Kron:
		r, dA2, dB2, dB1 := l.dims()
		dIn := l.Shape.DIn
		b := matmul64(to64(l.B1), to64(l.B2), dB2, r, dB1)
		a := to64(l.A)
		dA := make([]float64, dA2*KronDA1)
		dB := make([]float64, dB2*dB1)
		for i := 0; i < dA2; i++ {
			for j := 0; j < KronDA1; j++ {
				for k := 0; k < dB2; k++ {
					for m := 0; m < dB1; m++ {
						g := gW[(i*dB2+k)*dIn+j*dB1+m]
						dA[i*KronDA1+j] += g * b[k*dB1+m]
						dB[k*dB1+m] += g * a[i*KronDA1+j]
					}
				}
			}
		}
		return map[string][]float64{
			"A":  dA,
			"B1": matmul64(dB, transpose64(to64(l.B2), r, dB1), dB2, dB1, r),
			"B2": matmul64(transpose64(to64(l.B1), dB2, r), dB, r, dB2, dB1),
		}
	case *LoRA:
		q, dOut, dIn := l.Shape.Rank, l.Shape.DOut, l.Shape.DIn
		return map[string][]float64{
			"B": matmul64(gW, transpose64(to64(l.A), q, dIn), dOut, dIn, q),
			"A": matmul64(transpose64(to64(l.B), dOut, q), gW, q, dOut, dIn),
		}
	}
	panic("unknown layer")
}

func gradOf(l Layer, name string) []float32 {
	for _, f := range l.Factors() {
		if f.Name == name {
			return f.Grad
		}
	}
	panic("no factor " + name)
}

// TestGradientsMatchFiniteDifferences differentiates L = Σ c ⊙ y numerically
// with respect to sampled factor entries and inputs, in float64 built from the
// float32 forward, so the check is independent of the backward code and of the
// dense reference above.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	cases := []layerCase{kronCase(12, 10, 3, 4), kronCase(16, 8, 4, 8), loraCase(12, 10, 4)}
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 99))
			l := c.make(rng)
			randomize(l, rng)
			dOut, dIn := l.Dims()
			n := 3
			x := randSlice(rng, n*dIn, 1)
			cw := randSlice(rng, n*dOut, 1)
			loss := func() float64 {
				y := make([]float32, n*dOut)
				var a Acts
				l.Forward(x, n, y, &a, nil)
				var s float64
				for i := range y {
					s += float64(y[i]) * float64(cw[i])
				}
				return s
			}
			var acts Acts
			l.ZeroGrad()
			l.Forward(x, n, make([]float32, n*dOut), &acts, nil)
			dx := make([]float32, n*dIn)
			l.Backward(cw, &acts, dx)

			const h = 1e-2 // the loss is linear in each single parameter: no truncation error
			check := func(what string, p []float32, i int, analytic float32) {
				old := p[i]
				p[i] = old + h
				up := loss()
				p[i] = old - h
				down := loss()
				p[i] = old
				num := (up - down) / (2 * h)
				if d := math.Abs(num - float64(analytic)); d > 2e-3*(1+math.Abs(num)) {
					t.Errorf("%s[%d]: finite difference %.6g, backward %.6g", what, i, num, analytic)
				}
			}
			for _, f := range l.Factors() {
				for s := 0; s < 6; s++ {
					i := rng.IntN(len(f.Data))
					check(f.Name, f.Data, i, f.Grad[i])
				}
			}
			for s := 0; s < 6; s++ {
				i := rng.IntN(len(x))
				check("x", x, i, dx[i])
			}
		})
	}
}

// TestMergeMatchesForward checks that merging ΔW into W gives the same output as
// the unmerged forward, and that unmerging restores W exactly enough.
func TestMergeMatchesForward(t *testing.T) {
	for ci, c := range []layerCase{kronCase(24, 16, 4, 8), kronCase(1024, 4096, 16, 8), loraCase(24, 16, 8)} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 5))
			l := c.make(rng)
			randomize(l, rng)
			dOut, dIn := l.Dims()
			w := randSlice(rng, dOut*dIn, 0.1)
			w0 := append([]float32(nil), w...)
			l.MergeInto(w, 1)
			want := deltaW64(t, l)
			for i := range want {
				want[i] += float64(w0[i])
			}
			if e := relErr(w, want); e > 1e-6 {
				t.Fatalf("merged W: relative error %.3g", e)
			}
			l.MergeInto(w, -1)
			// Rounding in W+ΔW is relative to ΔW, which can dwarf W.
			tol := 1e-6 * (1 + norm64(deltaW64(t, l))/norm64(to64(w0)))
			if e := relErr(w, to64(w0)); e > tol {
				t.Fatalf("unmerged W: relative error %.3g", e)
			}
		})
	}
}

// TestDropout checks that training-mode dropout keeps about 1−p of the input,
// scales survivors by 1/(1−p), and that the gradient flows only through them:
// the same forward/backward with the dropped input given explicitly and no
// dropout must agree exactly.
func TestDropout(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	l := kronCase(16, 32, 4, 8).make(rng)
	randomize(l, rng)
	n := 64
	x := randSlice(rng, n*32, 1)
	var acts Acts
	y := make([]float32, n*16)
	l.Forward(x, n, y, &acts, &Dropout{P: 0.1, Rng: rand.New(rand.NewPCG(3, 4))})
	kept := 0
	for i, v := range acts.X {
		if v != 0 {
			kept++
			if want := x[i] / 0.9; math.Abs(float64(v-want)) > 1e-6*math.Abs(float64(want)) {
				t.Fatalf("kept element %d = %v, want x/(1−p) = %v", i, v, want)
			}
		}
	}
	if frac := float64(kept) / float64(len(x)); math.Abs(frac-0.9) > 0.03 {
		t.Fatalf("kept fraction %.3f, want ≈ 0.9", frac)
	}
	dy := randSlice(rng, n*16, 1)
	dx := make([]float32, n*32)
	l.ZeroGrad()
	l.Backward(dy, &acts, dx)
	gradB2 := append([]float32(nil), l.(*Kron).GradB2...)

	xd := append([]float32(nil), acts.X...)
	var acts2 Acts
	y2 := make([]float32, n*16)
	l.Forward(xd, n, y2, &acts2, nil)
	dxd := make([]float32, n*32)
	l.ZeroGrad()
	l.Backward(dy, &acts2, dxd)
	for i := range y {
		if y[i] != y2[i] {
			t.Fatalf("y[%d]: dropout forward %v, explicit %v", i, y[i], y2[i])
		}
	}
	for i := range dx {
		want := float32(0)
		if xd[i] != 0 {
			want = dxd[i] / 0.9
		}
		if math.Abs(float64(dx[i]-want)) > 1e-5*(1+math.Abs(float64(want))) {
			t.Fatalf("dx[%d] = %v, want %v", i, dx[i], want)
		}
	}
	for i, g := range l.(*Kron).GradB2 {
		if g != gradB2[i] {
			t.Fatalf("dB2[%d]: %v vs %v", i, gradB2[i], g)
		}
	}
}

func TestInitialization(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	k := kronCase(768, 768, 4, 8).make(rng).(*Kron)
	for _, v := range k.A {
		if v != 0 {
			t.Fatal("A must start at zero so ΔW = 0")
		}
	}
	checkUniform(t, "B1", k.B1, 1/math.Sqrt(8))
	checkUniform(t, "B2", k.B2, 1/math.Sqrt(384))
	lo := loraCase(768, 768, 8).make(rng).(*LoRA)
	for _, v := range lo.B {
		if v != 0 {
			t.Fatal("LoRA B must start at zero")
		}
	}
	checkUniform(t, "lora A", lo.A, 1/math.Sqrt(768))
}

// checkUniform checks samples lie in (−b, b) and have U(−b,b)'s variance b²/3.
func checkUniform(t *testing.T, name string, w []float32, bound float64) {
	t.Helper()
	var ss, maxAbs float64
	for _, v := range w {
		ss += float64(v) * float64(v)
		maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
	}
	if maxAbs >= bound || maxAbs < 0.95*bound {
		t.Errorf("%s: max |w| = %.4g, want just under %.4g", name, maxAbs, bound)
	}
	if v, want := ss/float64(len(w)), bound*bound/3; math.Abs(v-want) > 0.1*want {
		t.Errorf("%s: variance %.4g, want %.4g", name, v, want)
	}
}

func TestShapeErrors(t *testing.T) {
	for _, c := range []struct {
		dOut, dIn, dA2, r int
		want              string
	}{
		{768, 768, 5, 8, "dA2 = 5 does not divide d_out = 768"},
		{768, 767, 4, 8, "d_in = 767 is not divisible by dA1 = 2"},
		{768, 768, 4, 0, "rank 0 must be positive"},
		{0, 768, 4, 8, "layer sizes must be positive"},
		{768, 768, 0, 8, "dA2 = 0 must be positive"},
	} {
		_, err := NewKronShape(c.dOut, c.dIn, c.dA2, c.r)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewKronShape(%d,%d,%d,%d) = %v, want error containing %q", c.dOut, c.dIn, c.dA2, c.r, err, c.want)
		}
	}
}

func TestDefaultDA2(t *testing.T) {
	for hidden, want := range map[int]int{768: 4, 4096: 16, 1024: 4, 64: 2, 128: 2, 288: 2, 2048: 8, 5120: 20, 6: 2, 1: 1} {
		if got := DefaultDA2(hidden); got != want {
			t.Errorf("DefaultDA2(%d) = %d, want %d", hidden, got, want)
		}
	}
}

func TestCheckFinite(t *testing.T) {
	k := kronCase(8, 6, 2, 3).make(rand.New(rand.NewPCG(1, 1))).(*Kron)
	if err := CheckFinite(k); err != nil {
		t.Fatal(err)
	}
	k.B2[4] = float32(math.NaN())
	if err := CheckFinite(k); err == nil || err.Error() != "factor B2[1,1] is NaN" {
		t.Fatalf("got %v", err)
	}
}

func norm64(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s)
}

// TestMaskApply: ApplyAt at any offset and length, ScaleAt and AddBackward
// agree bit for bit with the element-by-element definition
// dst[i] = x[i]·(keep bit of off+i ? Scale : 0), across mask-word
// boundaries and over the parallel split (lengths past maskGrain).
func TestMaskApply(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	const n = 3*maskGrain + 77
	var m Mask
	(&Dropout{P: 0.3, Rng: rand.New(rand.NewPCG(1, 2))}).Sample(&m, n)
	keep := func(j int) bool { return m.keep[j>>6]>>(j&63)&1 == 1 }
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, c := range [][2]int{{0, n}, {0, 1}, {63, 2}, {64, 64}, {5, 200}, {1000, maskGrain + 3}, {7, n - 7}} {
		off, ln := c[0], c[1]
		got := make([]float32, ln)
		m.ApplyAt(got, x[:ln], off)
		for i := range got {
			want := float32(0)
			if keep(off + i) {
				want = x[i] * m.Scale
			}
			if got[i] != want {
				t.Fatalf("ApplyAt off %d len %d: [%d] = %v, want %v", off, ln, i, got[i], want)
			}
		}
		sc := append([]float32(nil), x[:ln]...)
		m.ScaleAt(sc, off)
		for i := range sc {
			if sc[i] != got[i] {
				t.Fatalf("ScaleAt off %d: [%d] = %v, ApplyAt gave %v", off, i, sc[i], got[i])
			}
		}
	}
	dx := make([]float32, n)
	for i := range dx {
		dx[i] = 1
	}
	m.AddBackward(dx, x)
	for i := range dx {
		want := float32(1)
		if keep(i) {
			want += x[i] * m.Scale
		}
		if dx[i] != want {
			t.Fatalf("AddBackward [%d] = %v, want %v", i, dx[i], want)
		}
	}
}

// BenchmarkMaskApply: one hidden-state dropout of a DistilBERT step
// (1024 tokens × 768), applied and its backward added.
func BenchmarkMaskApply(b *testing.B) {
	const n = 1024 * 768
	var m Mask
	(&Dropout{P: 0.1, Rng: rand.New(rand.NewPCG(1, 2))}).Sample(&m, n)
	x, y := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(i%13) - 6
	}
	b.SetBytes(2 * 4 * n)
	for i := 0; i < b.N; i++ {
		m.ApplyAt(y, x, 0)
		m.AddBackward(y, x)
	}
}

// TestKeepWordSWAR: keepWord's four-at-once comparison gives the bits of
// comparing each 16-bit uniform with the threshold one at a time, for every
// threshold class (0: keep all; P near 1) and ragged word ends.
func TestKeepWordSWAR(t *testing.T) {
	oneByOne := func(src *rand.PCG, threshold uint64, rem int) uint64 {
		var word uint64
		for q := 0; q < 64 && q < rem; q += 4 {
			bits := src.Uint64()
			for k := 0; k < 4; k++ {
				if (bits>>(16*k))&0xFFFF >= threshold {
					word |= 1 << (q + k)
				}
			}
		}
		if rem < 64 {
			word &= 1<<rem - 1
		}
		return word
	}
	for _, threshold := range []uint64{0, 1, 6554, 32768, 65534, 65535} {
		for _, rem := range []int{64, 100, 63, 5, 1} {
			a, b := &pcg{3, threshold}, rand.NewPCG(3, threshold)
			for i := 0; i < 2000; i++ {
				if got, want := keepWord(a, threshold, rem), oneByOne(b, threshold, rem); got != want {
					t.Fatalf("threshold %d, rem %d, word %d: %#x, want %#x", threshold, rem, i, got, want)
				}
			}
		}
	}
}

// TestPCGMatchesRand: the masks' inlined generator gives math/rand/v2's
// PCG stream, draw for draw.
func TestPCGMatchesRand(t *testing.T) {
	for _, seed := range [][2]uint64{{0, 0}, {1, 2}, {^uint64(0), 12345}, {0x9e3779b97f4a7c15, 7}} {
		a, b := &pcg{seed[0], seed[1]}, rand.NewPCG(seed[0], seed[1])
		for i := 0; i < 10000; i++ {
			if got, want := a.Uint64(), b.Uint64(); got != want {
				t.Fatalf("seed %v draw %d: %#x, want %#x", seed, i, got, want)
			}
		}
	}
}

// TestSampleChunks: a drawn mask equals one built chunk by chunk from
// rand.NewPCG(seed, chunk) with one comparison per element, for sizes with
// whole groups of four chunks (drawn side by side), leftover chunks, a
// partial last chunk and a partial last word, on one and on two threads —
// into a mask whose storage holds an earlier, larger draw, so that a word
// left unwritten would show.
func TestSampleChunks(t *testing.T) {
	const chunk = maskChunkWords * 64
	for _, n := range []int{1, 100, chunk, 4 * chunk, 4*chunk + 1, 5*chunk - 3, 9*chunk + 64, 11*chunk + 77} {
		for _, threads := range []int{1, 2} {
			prev := compute.SetThreads(threads)
			var m Mask
			(&Dropout{P: 0.9, Rng: rand.New(rand.NewPCG(6, 6))}).Sample(&m, 12*chunk)
			d := &Dropout{P: 0.1, Rng: rand.New(rand.NewPCG(5, uint64(n)))}
			d.Sample(&m, n)
			compute.SetThreads(prev)
			seed := rand.New(rand.NewPCG(5, uint64(n))).Uint64()
			const threshold = 6554 // round(0.1·2¹⁶)
			for c := 0; c*chunk < n; c++ {
				src := rand.NewPCG(seed, uint64(c))
				for i := c * chunk; i < min(n, (c+1)*chunk); i += 4 {
					draw := src.Uint64()
					for k := 0; k < 4 && i+k < n; k++ {
						if want := (draw>>(16*k))&0xFFFF >= threshold; m.Kept(i+k) != want {
							t.Fatalf("n=%d threads=%d: element %d kept %v, want %v", n, threads, i+k, m.Kept(i+k), want)
						}
					}
				}
			}
			if words := m.Words(); len(words) != (n+63)/64 || (n%64 != 0 && words[len(words)-1]>>(n%64) != 0) {
				t.Fatalf("n=%d: %d words or bits past the end set", n, len(words))
			}
		}
	}
}

// BenchmarkDropoutSample draws the mask of one DistilBERT FFN input
// (1024 tokens × 3072) at dropout 0.1.
func BenchmarkDropoutSample(b *testing.B) {
	d := &Dropout{P: 0.1, Rng: rand.New(rand.NewPCG(1, 2))}
	var m Mask
	const n = 1024 * 3072
	for i := 0; i < b.N; i++ {
		d.Sample(&m, n)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}

// TestFirstNonFinite: NaN and ±Inf are found wherever they sit (inside a
// chunk, on its edges, past the last whole chunk), and the largest finite
// values, denormals and negative values are not flagged.
func TestFirstNonFinite(t *testing.T) {
	x := make([]float32, 1000)
	for i := range x {
		switch i % 4 {
		case 0:
			x[i] = math.MaxFloat32
		case 1:
			x[i] = -math.MaxFloat32
		case 2:
			x[i] = math.SmallestNonzeroFloat32
		default:
			x[i] = -float32(i)
		}
	}
	if got := firstNonFinite(x); got != -1 {
		t.Fatalf("finite values: %d", got)
	}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		for _, pos := range []int{0, 1, 255, 256, 257, 511, 700, 999} {
			y := append([]float32(nil), x...)
			y[pos] = bad
			y[min(pos+3, len(y)-1)] = bad // a later one must not win
			if got := firstNonFinite(y); got != pos {
				t.Fatalf("%v at %d: found at %d", bad, pos, got)
			}
		}
	}
}

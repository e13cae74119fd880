package kernels_test

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/kronfed/kronfed/compute"
	"github.com/kronfed/kronfed/gpu/kernels"
	"github.com/kronfed/kronfed/safetensors"
)

// runParity checks every kernel on d against a float64 host reference (or,
// where the CPU code is the definition, against the CPU function itself).
func runParity(t *testing.T, d device) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T, device)
	}{
		{"Elementwise", testElementwise},
		{"BF16", testBF16},
		{"Bias", testBias},
		{"SwiGLU", testSwiGLU},
		{"GELU", testGELU},
		{"ReLU", testReLU},
		{"Dropout", testDropout},
		{"Embed", testEmbed},
		{"RMSNorm", testRMSNorm},
		{"LayerNorm", testLayerNorm},
		{"Rope", testRope},
		{"CrossEntropy", testCrossEntropy},
		{"Kron", testKron},
		{"AdamW", testAdamW},
		{"SumSq", testSumSq},
		{"Attention", testAttention},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, d) })
	}
}

func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x6b726f6e)) }

func randn(rng *rand.Rand, n int, scale float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64() * scale)
	}
	return out
}

func uniform(rng *rand.Rand, n int, lo, hi float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return out
}

// sameBits requires bit-for-bit equality (the kernel does the CPU's exact
// float32 operations).
func sameBits(t *testing.T, name string, got, want []float32) {
	t.Helper()
	bad, first := 0, -1
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			if first < 0 {
				first = i
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ; first [%d] = %v, want %v", name, bad, len(want), first, got[first], want[first])
	}
}

// sizes picks the emulated or the device size.
func sizes(d device, emu, dev int) int {
	if d.emulated() {
		return emu
	}
	return dev
}

func testElementwise(t *testing.T, d device) {
	rng := newRNG(1)
	// The device run also covers a grid-stride loop (more elements than
	// 32768 blocks of 256 threads).
	for _, n := range []int{1, 5003, sizes(d, 70001, 9_000_001)} {
		x, y := randn(rng, n, 1), randn(rng, n, 1)
		px, py := put(t, d, x), put(t, d, y)
		must(t, kernels.AddF32(d, py, px, n))
		want := make([]float32, n)
		for i := range want {
			want[i] = y[i] + x[i]
		}
		sameBits(t, "add_f32", get[float32](t, d, py, n), want)
		must(t, kernels.ScaleF32(d, py, -0.375, n))
		for i := range want {
			want[i] *= -0.375
		}
		sameBits(t, "scale_f32", get[float32](t, d, py, n), want)
		must(t, kernels.FillF32(d, py, 2.5, n))
		for i := range want {
			want[i] = 2.5
		}
		sameBits(t, "fill_f32", get[float32](t, d, py, n), want)
	}
}

func testBF16(t *testing.T, d device) {
	rng := newRNG(2)
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, math.MaxFloat32, -math.MaxFloat32,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), -float32(math.NaN()),
		math.Float32frombits(0x7f800001), math.Float32frombits(0xff800001), // NaNs whose top half reads as Inf
		math.Float32frombits(0x00000001), math.Float32frombits(0x807fffff), // subnormals
		math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000), // ties: to even below, up above
		math.Float32frombits(0x3f808001), math.Float32frombits(0x7f7fffff), // just above a tie; rounds to Inf
	}
	x := append(special, randn(rng, 3000, 100)...)
	for i := range 1000 {
		x = append(x, math.Float32frombits(rng.Uint32()|uint32(i&1)<<15))
	}
	n := len(x)
	px, po := put(t, d, x), put(t, d, make([]uint16, n))
	must(t, kernels.F32ToBF16(d, po, px, n))
	got := get[uint16](t, d, po, n)
	for i, v := range x {
		if want := safetensors.Float32ToBF16(v); got[i] != want {
			t.Errorf("f32_to_bf16(%v = %#08x) = %#04x, want %#04x", v, math.Float32bits(v), got[i], want)
		}
	}
	// Every bf16 pattern widens exactly.
	all := make([]uint16, 1<<16)
	for i := range all {
		all[i] = uint16(i)
	}
	pa, pf := put(t, d, all), put(t, d, make([]float32, len(all)))
	must(t, kernels.BF16ToF32(d, pf, pa, len(all)))
	f := get[float32](t, d, pf, len(all))
	for i, b := range all {
		if math.Float32bits(f[i]) != math.Float32bits(safetensors.BF16ToFloat32(b)) {
			t.Fatalf("bf16_to_f32(%#04x) = %#08x, want %#08x", b, math.Float32bits(f[i]), math.Float32bits(safetensors.BF16ToFloat32(b)))
		}
	}
}

func testBias(t *testing.T, d device) {
	rng := newRNG(3)
	for _, sh := range [][2]int{{37, 100}, {1, 1}, {sizes(d, 300, 70000), 33}} {
		n, dd := sh[0], sh[1]
		y, b := randn(rng, n*dd, 1), randn(rng, dd, 1)
		py, pb := put(t, d, y), put(t, d, b)
		must(t, kernels.BiasAdd(d, py, pb, n, dd))
		want := make([]float32, n*dd)
		for i := range want {
			want[i] = y[i] + b[i%dd]
		}
		sameBits(t, "bias_add", get[float32](t, d, py, n*dd), want)

		db := randn(rng, dd, 1)
		pdb := put(t, d, db)
		must(t, kernels.BiasGrad(d, pdb, py, n, dd))
		ref := make([]float64, dd)
		for c := range ref {
			ref[c] = float64(db[c])
			for r := range n {
				ref[c] += float64(want[r*dd+c])
			}
		}
		closeTo(t, "bias_grad", get[float32](t, d, pdb, dd), ref, 1e-5*math.Sqrt(float64(n)), 1e-5)
	}
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func testSwiGLU(t *testing.T, d device) {
	rng := newRNG(4)
	n := 3001
	g, u, dh := uniform(rng, n, -12, 12), randn(rng, n, 1), randn(rng, n, 1)
	pg, pu, pdh, ph := put(t, d, g), put(t, d, u), put(t, d, dh), put(t, d, make([]float32, n))
	must(t, kernels.SwiGLUForward(d, ph, pg, pu, n))
	want := make([]float64, n)
	for i := range want {
		x := float64(g[i])
		want[i] = x * sigmoid(x) * float64(u[i])
	}
	closeTo(t, "swiglu_forward", get[float32](t, d, ph, n), want, 1e-6, 1e-5)

	// Backward overwrites: start from garbage.
	pdg, pdu := put(t, d, randn(rng, n, 100)), put(t, d, randn(rng, n, 100))
	must(t, kernels.SwiGLUBackward(d, pdg, pdu, pdh, pg, pu, n))
	wdg, wdu := make([]float64, n), make([]float64, n)
	for i := range wdg {
		x, s := float64(g[i]), sigmoid(float64(g[i]))
		wdu[i] = float64(dh[i]) * x * s
		wdg[i] = float64(dh[i]) * float64(u[i]) * s * (1 + x*(1-s))
	}
	closeTo(t, "swiglu_backward du", get[float32](t, d, pdu, n), wdu, 1e-6, 1e-5)
	closeTo(t, "swiglu_backward dg", get[float32](t, d, pdg, n), wdg, 1e-6, 1e-5)
}

func testGELU(t *testing.T, d device) {
	rng := newRNG(5)
	x := uniform(rng, 4000, -9, 9)
	x = append(x, 0, 4*math.Sqrt2, -4*math.Sqrt2, 5.6568, -5.6569, 1e-30, -1e-30)
	n := len(x)
	px, po, pg := put(t, d, x), put(t, d, make([]float32, n)), put(t, d, make([]float32, n))
	must(t, kernels.GELUForward(d, po, pg, px, n))
	out, grad := get[float32](t, d, po, n), get[float32](t, d, pg, n)
	// The CPU function defines the kernel (the same erf approximation). In
	// the tails 1 + erf and the derivative's numerator cancel, so float32
	// rounding (FMA or not: the CPU's AVX2 path fuses) leaves absolute
	// differences near 1e-7·|x| in out and 1e-6 in grad.
	cpuOut, cpuGrad := make([]float32, n), make([]float32, n)
	compute.GELU(cpuOut, cpuGrad, x)
	closeTo(t, "gelu_forward vs CPU", out, f64(cpuOut), 1e-6, 1e-5)
	closeTo(t, "gelu_forward grad vs CPU", grad, f64(cpuGrad), 4e-6, 1e-5)
	// And both are the exact erf GELU to the approximation's accuracy.
	wo, wg := make([]float64, n), make([]float64, n)
	for i, v := range x {
		z := float64(v)
		cdf := 0.5 * (1 + math.Erf(z/math.Sqrt2))
		wo[i] = z * cdf
		wg[i] = cdf + z*math.Exp(-z*z/2)/math.Sqrt(2*math.Pi)
	}
	// The approximation's derivative strays up to ~1e-5 from the true one
	// near its clamp at |x/√2| = 4.
	closeTo(t, "gelu_forward vs exact", out, wo, 2e-6, 1e-5)
	closeTo(t, "gelu_forward grad vs exact", grad, wg, 2e-5, 1e-4)
	// Without grad (inference).
	po2 := put(t, d, make([]float32, n))
	must(t, kernels.GELUForward(d, po2, 0, px, n))
	compute.GELU(cpuOut, nil, x)
	closeTo(t, "gelu_forward (no grad) vs CPU", get[float32](t, d, po2, n), f64(cpuOut), 1e-6, 1e-5)

	dx, dout := randn(rng, n, 1), randn(rng, n, 1)
	pdx, pdout := put(t, d, dx), put(t, d, dout)
	must(t, kernels.GELUBackward(d, pdx, pdout, pg, n))
	want := make([]float32, n)
	for i := range want {
		want[i] = dx[i] + dout[i]*grad[i]
	}
	closeTo(t, "gelu_backward", get[float32](t, d, pdx, n), f64(want), 1e-7, 1e-6)
}

func testReLU(t *testing.T, d device) {
	rng := newRNG(6)
	n := 2001
	x, dx, dout := randn(rng, n, 1), randn(rng, n, 1), randn(rng, n, 1)
	x[0], x[1] = 0, float32(math.Copysign(0, -1))
	px, po, pdx, pdout := put(t, d, x), put(t, d, make([]float32, n)), put(t, d, dx), put(t, d, dout)
	must(t, kernels.ReLUForward(d, po, px, n))
	must(t, kernels.ReLUBackward(d, pdx, pdout, px, n))
	wo, wdx := make([]float32, n), make([]float32, n)
	for i, v := range x {
		wdx[i] = dx[i]
		if v > 0 {
			wo[i] = v
			wdx[i] += dout[i]
		}
	}
	sameBits(t, "relu_forward", get[float32](t, d, po, n), wo)
	sameBits(t, "relu_backward", get[float32](t, d, pdx, n), wdx)
}

func maskBit(keep []uint64, i int) bool { return keep[i>>6]>>(i&63)&1 != 0 }

func testDropout(t *testing.T, d device) {
	rng := newRNG(7)
	n := sizes(d, 20011, 1_000_003)
	words := kernels.MaskWords(n)
	draw := func(seed uint64, p float32) []uint64 {
		pk := put(t, d, make([]uint64, words))
		must(t, kernels.DropoutMask(d, pk, n, seed, p))
		return get[uint64](t, d, pk, words)
	}
	const p = 0.1
	a, b, c := draw(42, p), draw(42, p), draw(43, p)
	dropped, same := 0, 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, word %d differs", i)
		}
		if a[i] == c[i] {
			same++
		}
	}
	if same > words/10 {
		t.Errorf("seeds 42 and 43 share %d of %d words", same, words)
	}
	for i := range n {
		if !maskBit(a, i) {
			dropped++
		}
	}
	if rem := n % 64; rem != 0 && a[words-1]>>rem != 0 {
		t.Errorf("bits past n are set: last word %#x, n %% 64 = %d", a[words-1], rem)
	}
	frac := float64(dropped) / float64(n)
	sigma := math.Sqrt(p * (1 - p) / float64(n))
	if math.Abs(frac-p) > 5*sigma+1.0/(1<<17) {
		t.Errorf("dropped fraction %.5f, want %.2f ± %.5f", frac, p, 5*sigma)
	}
	// Neighbouring elements are independent: P(both dropped) ≈ p².
	pairs := 0
	for i := 0; i+1 < n; i += 2 {
		if !maskBit(a, i) && !maskBit(a, i+1) {
			pairs++
		}
	}
	if pf, want := float64(pairs)/float64(n/2), p*p; math.Abs(pf-want) > 6*math.Sqrt(want/float64(n/2)) {
		t.Errorf("adjacent pairs both dropped: %.5f, want %.4f", pf, want)
	}
	if ones := popcount(draw(1, 0)); ones != n {
		t.Errorf("p = 0 kept %d of %d", ones, n)
	}

	// Apply with an offset that is not a multiple of 64, out of place and in place.
	const off = 77
	m := min(n-off, 5000)
	x := randn(rng, m, 1)
	pk := put(t, d, a)
	px, pdst := put(t, d, x), put(t, d, make([]float32, m))
	scale := float32(1 / (1 - p))
	must(t, kernels.DropoutApply(d, pdst, px, pk, scale, m, off))
	want := make([]float32, m)
	for i := range want {
		s := float32(0)
		if maskBit(a, off+i) {
			s = scale
		}
		want[i] = x[i] * s
	}
	sameBits(t, "dropout_apply", get[float32](t, d, pdst, m), want)
	must(t, kernels.DropoutApply(d, px, px, pk, scale, m, off))
	sameBits(t, "dropout_apply in place", get[float32](t, d, px, m), want)

	dx, g := randn(rng, m, 1), randn(rng, m, 1)
	pdx, pg := put(t, d, dx), put(t, d, g)
	must(t, kernels.DropoutAddBackward(d, pdx, pg, pk, scale, m))
	for i := range want {
		s := float32(0)
		if maskBit(a, i) {
			s = scale
		}
		want[i] = dx[i] + g[i]*s
	}
	sameBits(t, "dropout_add_backward", get[float32](t, d, pdx, m), want)
}

func popcount(w []uint64) int {
	n := 0
	for _, v := range w {
		n += bits.OnesCount64(v)
	}
	return n
}

func testEmbed(t *testing.T, d device) {
	rng := newRNG(8)
	const V, dd, n = 50, 70, 33
	table := randn(rng, V*dd, 1)
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(rng.IntN(V))
	}
	ids[0], ids[1] = 0, V-1
	tb := make([]uint16, len(table))
	for i, v := range table {
		tb[i] = safetensors.Float32ToBF16(v)
	}
	pt, ptb, pids := put(t, d, table), put(t, d, tb), put(t, d, ids)
	po, pob := put(t, d, make([]float32, n*dd)), put(t, d, make([]float32, n*dd))
	must(t, kernels.EmbedGatherF32(d, po, pt, pids, n, dd))
	must(t, kernels.EmbedGatherBF16(d, pob, ptb, pids, n, dd))
	want, wantb := make([]float32, n*dd), make([]float32, n*dd)
	for r, id := range ids {
		for c := range dd {
			want[r*dd+c] = table[int(id)*dd+c]
			wantb[r*dd+c] = safetensors.BF16ToFloat32(tb[int(id)*dd+c])
		}
	}
	sameBits(t, "embed_gather_f32", get[float32](t, d, po, n*dd), want)
	sameBits(t, "embed_gather_bf16", get[float32](t, d, pob, n*dd), wantb)
	must(t, kernels.AddRowsF32(d, po, pt, pids, n, dd))
	for i := range want {
		want[i] += want[i]
	}
	sameBits(t, "add_rows_f32", get[float32](t, d, po, n*dd), want)
}

func testRMSNorm(t *testing.T, d device) {
	rng := newRNG(9)
	for _, dd := range []int{1, 64, 100, sizes(d, 1000, 4096)} {
		const n = 5
		const eps = 1e-5
		x, w := randn(rng, n*dd, 2), uniform(rng, dd, 0.5, 1.5)
		x[0] += 3 // a nonzero mean
		px, pw := put(t, d, x), put(t, d, w)
		po, pr := put(t, d, make([]float32, n*dd)), put(t, d, make([]float32, n))
		must(t, kernels.RMSNormForward(d, po, pr, px, pw, n, dd, eps))
		wo, wr := make([]float64, n*dd), make([]float64, n)
		for r := range n {
			var ss float64
			for c := range dd {
				ss += float64(x[r*dd+c]) * float64(x[r*dd+c])
			}
			wr[r] = 1 / math.Sqrt(ss/float64(dd)+eps)
			for c := range dd {
				wo[r*dd+c] = float64(x[r*dd+c]) * wr[r] * float64(w[c])
			}
		}
		closeTo(t, "rmsnorm_forward out", get[float32](t, d, po, n*dd), wo, 1e-6, 1e-5)
		closeTo(t, "rmsnorm_forward rstd", get[float32](t, d, pr, n), wr, 0, 1e-5)

		dx, dout := randn(rng, n*dd, 1), randn(rng, n*dd, 1)
		pdx, pdout := put(t, d, dx), put(t, d, dout)
		must(t, kernels.RMSNormBackward(d, pdx, pdout, px, pw, pr, n, dd))
		want := make([]float64, n*dd)
		for r := range n {
			var m float64
			for c := range dd {
				m += float64(dout[r*dd+c]) * float64(w[c]) * float64(x[r*dd+c]) * wr[r]
			}
			m /= float64(dd)
			for c := range dd {
				i := r*dd + c
				want[i] = float64(dx[i]) + wr[r]*(float64(dout[i])*float64(w[c])-float64(x[i])*wr[r]*m)
			}
		}
		closeTo(t, "rmsnorm_backward", get[float32](t, d, pdx, n*dd), want, 1e-5, 1e-4)
	}
}

func testLayerNorm(t *testing.T, d device) {
	rng := newRNG(10)
	for _, dd := range []int{2, 100, 768, sizes(d, 1000, 4096)} {
		const n = 5
		const eps = 1e-12
		x, w, b := randn(rng, n*dd, 2), uniform(rng, dd, 0.5, 1.5), randn(rng, dd, 0.1)
		for i := range x {
			x[i] += 5 // a large mean: the two-pass variance matters
		}
		px, pw, pb := put(t, d, x), put(t, d, w), put(t, d, b)
		po, pm, pr := put(t, d, make([]float32, n*dd)), put(t, d, make([]float32, n)), put(t, d, make([]float32, n))
		must(t, kernels.LayerNormForward(d, po, pm, pr, px, pw, pb, n, dd, eps))
		wo, wm, wr := make([]float64, n*dd), make([]float64, n), make([]float64, n)
		for r := range n {
			var s, vs float64
			for c := range dd {
				s += float64(x[r*dd+c])
			}
			wm[r] = s / float64(dd)
			for c := range dd {
				dv := float64(x[r*dd+c]) - wm[r]
				vs += dv * dv
			}
			wr[r] = 1 / math.Sqrt(vs/float64(dd)+eps)
			for c := range dd {
				wo[r*dd+c] = (float64(x[r*dd+c])-wm[r])*wr[r]*float64(w[c]) + float64(b[c])
			}
		}
		closeTo(t, "layernorm_forward out", get[float32](t, d, po, n*dd), wo, 2e-5, 1e-4)
		closeTo(t, "layernorm_forward mean", get[float32](t, d, pm, n), wm, 1e-6, 1e-6)
		closeTo(t, "layernorm_forward rstd", get[float32](t, d, pr, n), wr, 0, 1e-4)

		dx, dout := randn(rng, n*dd, 1), randn(rng, n*dd, 1)
		pdx, pdout := put(t, d, dx), put(t, d, dout)
		must(t, kernels.LayerNormBackward(d, pdx, pdout, px, pw, pm, pr, n, dd))
		want := make([]float64, n*dd)
		for r := range n {
			var mg, mgx float64
			for c := range dd {
				g := float64(dout[r*dd+c]) * float64(w[c])
				mg += g
				mgx += g * (float64(x[r*dd+c]) - wm[r]) * wr[r]
			}
			mg /= float64(dd)
			mgx /= float64(dd)
			for c := range dd {
				i := r*dd + c
				g := float64(dout[i]) * float64(w[c])
				want[i] = float64(dx[i]) + wr[r]*(g-mg-(float64(x[i])-wm[r])*wr[r]*mgx)
			}
		}
		closeTo(t, "layernorm_backward", get[float32](t, d, pdx, n*dd), want, 1e-4, 1e-3)
	}
}

func testRope(t *testing.T, d device) {
	rng := newRNG(11)
	const n, heads, maxPos = 9, 3, 20
	for _, hd := range []int{2, 8, 64, 128} {
		half := hd / 2
		cos, sin := make([]float32, maxPos*half), make([]float32, maxPos*half)
		for p := range maxPos {
			for i := range half {
				th := float64(p) * math.Pow(10000, -2*float64(i)/float64(hd))
				cos[p*half+i], sin[p*half+i] = float32(math.Cos(th)), float32(math.Sin(th))
			}
		}
		pos := make([]int32, n)
		for i := range pos {
			pos[i] = int32(rng.IntN(maxPos))
		}
		pos[0] = maxPos - 1
		pcos, psin, ppos := put(t, d, cos), put(t, d, sin), put(t, d, pos)
		for _, style := range []int{0, 1} {
			for _, sign := range []float32{1, -1} {
				x := randn(rng, n*heads*hd, 1)
				px := put(t, d, x)
				must(t, kernels.RopeApply(d, px, ppos, pcos, psin, n, heads, hd, style, sign))
				want := f64(x)
				for tk, p := range pos {
					for h := range heads {
						base := tk*heads*hd + h*hd
						for i := range half {
							a, b := base+2*i, base+2*i+1
							if style == 1 {
								a, b = base+i, base+i+half
							}
							c, s := float64(cos[int(p)*half+i]), float64(sign)*float64(sin[int(p)*half+i])
							x0, x1 := float64(x[a]), float64(x[b])
							want[a] = x0*c - x1*s
							want[b] = x0*s + x1*c
						}
					}
				}
				closeTo(t, "rope_apply", get[float32](t, d, px, n*heads*hd), want, 1e-6, 1e-6)
				// Rotating back restores the input.
				must(t, kernels.RopeApply(d, px, ppos, pcos, psin, n, heads, hd, style, -sign))
				closeTo(t, "rope_apply round trip", get[float32](t, d, px, n*heads*hd), f64(x), 1e-6, 1e-6)
			}
		}
	}
}

// logSoftmaxAt is log softmax(row)[t] in float64.
func logSoftmax64(row []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v) - m)
	}
	lse := m + math.Log(s)
	out := make([]float64, len(row))
	for i, v := range row {
		out[i] = float64(v) - lse
	}
	return out
}

func testCrossEntropy(t *testing.T, d device) {
	rng := newRNG(12)
	for _, V := range []int{1, 7, 1000, sizes(d, 5000, 32000)} {
		const n = 9
		logits := randn(rng, n*V, 3)
		for c := range V { // a row with huge logits: the max shift must hold
			logits[2*V+c] = float32(80 * (2*rng.Float64() - 1))
		}
		targets := make([]int32, n)
		count := 0
		for i := range targets {
			targets[i] = int32(rng.IntN(V))
			if i == 3 || i == 7 {
				targets[i] = -1
			} else {
				count++
			}
		}
		inv := 1 / float32(count)
		garbage := make([]float32, n*V)
		for i := range garbage {
			garbage[i] = float32(math.NaN())
		}
		pl, pt := put(t, d, logits), put(t, d, targets)
		pdl, ploss, plp := put(t, d, garbage), put(t, d, make([]float32, n)), put(t, d, make([]float32, n))
		must(t, kernels.CrossEntropy(d, pdl, ploss, pl, pt, n, V, inv))
		must(t, kernels.TargetLogProb(d, plp, pl, pt, n, V))
		wl, wlp, wdl := make([]float64, n), make([]float64, n), make([]float64, n*V)
		for i, tg := range targets {
			if tg < 0 {
				continue
			}
			lp := logSoftmax64(logits[i*V : (i+1)*V])
			wl[i], wlp[i] = -lp[tg], lp[tg]
			for c := range V {
				wdl[i*V+c] = math.Exp(lp[c]) * float64(inv)
			}
			wdl[i*V+int(tg)] -= float64(inv)
		}
		closeTo(t, "cross_entropy loss", get[float32](t, d, ploss, n), wl, 1e-5, 1e-5)
		closeTo(t, "target_logprob", get[float32](t, d, plp, n), wlp, 1e-5, 1e-5)
		closeTo(t, "cross_entropy dlogits", get[float32](t, d, pdl, n*V), wdl, 1e-8, 1e-4)
	}
}

func testKron(t *testing.T, d device) {
	rng := newRNG(13)
	for _, sh := range [][3]int{{37, 4, 8}, {5, 16, 8}, {300, 2, 3}} {
		n, dA2, r := sh[0], sh[1], sh[2]
		tt, a, dm := randn(rng, n*2*r, 1), randn(rng, dA2*2, 1), randn(rng, n*dA2*r, 1)
		pt, pa, pdm := put(t, d, tt), put(t, d, a), put(t, d, dm)
		pm, pdt := put(t, d, randn(rng, n*dA2*r, 9)), put(t, d, randn(rng, n*2*r, 9)) // overwritten
		da := randn(rng, dA2*2, 1)
		pda := put(t, d, da)
		must(t, kernels.KronMix(d, pm, pt, pa, n, dA2, r))
		must(t, kernels.KronUnmix(d, pdt, pdm, pa, n, dA2, r))
		must(t, kernels.KronGradA(d, pda, pdm, pt, n, dA2, r))
		wm, wdt, wda := make([]float64, n*dA2*r), make([]float64, n*2*r), f64(da)
		for tok := range n {
			for i := range dA2 {
				for c := range r {
					t0, t1 := float64(tt[(tok*2)*r+c]), float64(tt[(tok*2+1)*r+c])
					g := float64(dm[(tok*dA2+i)*r+c])
					wm[(tok*dA2+i)*r+c] = float64(a[2*i])*t0 + float64(a[2*i+1])*t1
					wdt[(tok*2)*r+c] += float64(a[2*i]) * g
					wdt[(tok*2+1)*r+c] += float64(a[2*i+1]) * g
					wda[2*i] += g * t0
					wda[2*i+1] += g * t1
				}
			}
		}
		closeTo(t, "kron_mix", get[float32](t, d, pm, n*dA2*r), wm, 1e-6, 1e-5)
		closeTo(t, "kron_unmix", get[float32](t, d, pdt, n*2*r), wdt, 1e-6, 1e-5)
		closeTo(t, "kron_grad_a", get[float32](t, d, pda, dA2*2), wda, 1e-4, 1e-5)
	}
}

func testAdamW(t *testing.T, d device) {
	rng := newRNG(14)
	n := 1001
	p, m, v := randn(rng, n, 1), make([]float32, n), make([]float32, n)
	pp, pm, pv := put(t, d, p), put(t, d, m), put(t, d, v)
	const lr, b1, b2, eps, wd = 1e-3, 0.9, 0.999, 1e-8, 0.01
	for step := 1; step <= 3; step++ {
		g := randn(rng, n, 0.1)
		g[0] = 0
		pg := put(t, d, g)
		s := kernels.NewAdamWStep(lr, b1, b2, eps, wd, step)
		must(t, kernels.AdamW(d, pp, pg, pm, pv, n, s))
		// train.AdamW.Step's float32 arithmetic.
		for j := range p {
			m[j] = s.Beta1*m[j] + (1-s.Beta1)*g[j]
			v[j] = s.Beta2*v[j] + (1-s.Beta2)*g[j]*g[j]
			denom := float32(math.Sqrt(float64(v[j])))/s.SqrtBC2 + s.Eps
			p[j] = p[j]*s.Decay - s.StepSize*m[j]/denom
		}
		// FMA contraction may move the last bit.
		closeTo(t, "adamw m", get[float32](t, d, pm, n), f64(m), 1e-12, 1e-6)
		closeTo(t, "adamw v", get[float32](t, d, pv, n), f64(v), 1e-15, 1e-6)
		closeTo(t, "adamw p", get[float32](t, d, pp, n), f64(p), 1e-9, 1e-6)
	}
}

func testSumSq(t *testing.T, d device) {
	rng := newRNG(15)
	for _, n := range []int{1, 1000, sizes(d, 30011, 3_000_017)} {
		x := randn(rng, n, 1)
		acc := []float64{1.5}
		pa, px := put(t, d, acc), put(t, d, x)
		must(t, kernels.SumSq(d, pa, px, n))
		must(t, kernels.SumSq(d, pa, px, n))
		want := 1.5
		for range 2 {
			for _, v := range x {
				want += float64(v) * float64(v)
			}
		}
		got := get[float64](t, d, pa, 1)[0]
		if math.Abs(got-want) > 1e-12*want {
			t.Errorf("sumsq n=%d: %v, want %v", n, got, want)
		}
	}
}

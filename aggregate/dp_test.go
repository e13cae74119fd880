package aggregate

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
)

// tinyTargets keeps the adapter small (36 factor parameters) so that the
// statistical tests can draw hundreds of thousands of noise samples quickly.
var tinyTargets = []adapter.Target{{Name: "m.q", DOut: 4, DIn: 4}}

// withHead adds a dense 2×3 tensor so that clipping and noise are checked on
// dense tensors as well as factors.
func withHead(s *adapter.Set, seed float32) *adapter.Set {
	d := adapter.Dense{Name: "head", Rows: 2, Cols: 3, Data: make([]float32, 6), Grad: make([]float32, 6)}
	for i := range d.Data {
		d.Data[i] = seed * float32(i-2)
	}
	s.Dense = append(s.Dense, d)
	return s
}

// flat64 copies every tensor of s, in Params order, into one float64 vector:
// the dense reference the tests compare against.
func flat64(s *adapter.Set) []float64 {
	var out []float64
	for _, p := range s.Params() {
		for _, v := range p.Data {
			out = append(out, float64(v))
		}
	}
	return out
}

func norm64(x []float64) float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	return math.Sqrt(ss)
}

// deltaWithNorm returns a random update (factors and a dense head) scaled to
// L2 norm ≈ norm.
func deltaWithNorm(t *testing.T, seed uint64, tg []adapter.Target, norm float64) *adapter.Set {
	t.Helper()
	s := withHead(kronSet(t, seed, tg), 0.3)
	f := norm / norm64(flat64(s))
	for _, p := range s.Params() {
		for k, v := range p.Data {
			p.Data[k] = float32(float64(v) * f)
		}
	}
	return s
}

// zeroNoise is a test-only NoiseSource that returns 0: it switches the noise
// off so that the deterministic parts (clipped mean, clip update) can be
// checked exactly. It is not offered by the package: DP always adds noise.
type zeroNoise struct{}

func (zeroNoise) NormFloat64() float64 { return 0 }

// TestClipUpdateAgainstDense: the returned norm is the float64 dense norm,
// the clipped update has norm min(norm, C) (to 1e-6 relative, and never above
// C), its direction is unchanged, each element is x·C/‖x‖ up to float32
// rounding, and unclipped updates are untouched bit for bit.
func TestClipUpdateAgainstDense(t *testing.T) {
	const c = 1.7
	for i, want := range []float64{0.01, 0.3 * c, 0.999 * c, 1.001 * c, 2 * c, 1e4 * c, 3e30} {
		s := deltaWithNorm(t, uint64(10+i), targets, want)
		x := flat64(s)
		ref := norm64(x)
		norm, clipped := ClipUpdate(s, c)
		if math.Abs(norm-ref) > 1e-12*ref {
			t.Errorf("norm %v: ClipUpdate says %v, dense %v", want, norm, ref)
		}
		if clipped != (ref > c) {
			t.Errorf("norm %v: clipped = %v", ref, clipped)
		}
		y := flat64(s)
		after := norm64(y)
		wantAfter := math.Min(ref, c)
		if after > c {
			t.Errorf("norm %v: clipped norm %v exceeds C = %v", ref, after, c)
		}
		if math.Abs(after-wantAfter) > 1e-6*wantAfter {
			t.Errorf("norm %v: norm after clipping %v, want %v", ref, after, wantAfter)
		}
		var dot float64
		for k := range x {
			dot += x[k] * y[k]
		}
		if cos := dot / (ref * after); 1-cos > 1e-12 {
			t.Errorf("norm %v: direction changed, cos = %.17g", ref, cos)
		}
		f := math.Min(1, c/ref)
		for k := range x {
			if e := math.Abs(y[k] - x[k]*f); e > 0x1p-22*math.Abs(x[k]*f)+1e-45 {
				t.Fatalf("norm %v: element %d = %v, want %v", ref, k, y[k], x[k]*f)
			}
			if !clipped && y[k] != x[k] {
				t.Fatalf("norm %v: unclipped update changed at %d", ref, k)
			}
		}
	}
	// Non-finite updates are zeroed and reported as clipped.
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		s := deltaWithNorm(t, 3, targets, 5)
		s.Modules[1].Layer.Factors()[2].Data[4] = bad
		norm, clipped := ClipUpdate(s, c)
		if !clipped || !(math.IsNaN(norm) || math.IsInf(norm, 1)) {
			t.Errorf("%v in update: norm %v, clipped %v", bad, norm, clipped)
		}
		if n := s.Norm(); n != 0 {
			t.Errorf("%v in update: norm after clipping %v, want the update zeroed", bad, n)
		}
	}
}

func TestClipUpdatePanicsOnBadClip(t *testing.T) {
	for _, c := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		func() {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(r.(string), "clipping norm") {
					t.Errorf("ClipUpdate(c = %v): recovered %v, want a panic naming the clipping norm", c, r)
				}
			}()
			ClipUpdate(deltaWithNorm(t, 1, tinyTargets, 1), c)
		}()
	}
}

// clippedSumRef is the float64 dense reference Σ_i min(1, C/‖Δ_i‖)·Δ_i.
func clippedSumRef(deltas []*adapter.Set, c float64) (sum, norms []float64) {
	for _, d := range deltas {
		x := flat64(d)
		n := norm64(x)
		norms = append(norms, n)
		f := math.Min(1, c/n)
		if sum == nil {
			sum = make([]float64, len(x))
		}
		for k := range x {
			sum[k] += f * x[k]
		}
	}
	return sum, norms
}

func phi(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// checkStandardNormal asserts that r looks like independent N(0, 1) draws:
// mean, variance, Kolmogorov–Smirnov distance and the two-sided 3σ tail
// fraction, each within about 6 standard errors (the seeded runs are
// deterministic; these bounds only matter for CryptoNoise, where a false
// alarm has probability below 1e-8).
func checkStandardNormal(t *testing.T, name string, r []float64) {
	t.Helper()
	n := float64(len(r))
	var mean, m2, tail float64
	for _, v := range r {
		mean += v
		if math.Abs(v) > 3 {
			tail++
		}
	}
	mean /= n
	for _, v := range r {
		m2 += (v - mean) * (v - mean)
	}
	variance := m2 / (n - 1)
	if math.Abs(mean) > 6/math.Sqrt(n) {
		t.Errorf("%s: mean %.5f of %d standardized samples, want 0 ± %.5f", name, mean, len(r), 6/math.Sqrt(n))
	}
	if math.Abs(variance-1) > 6*math.Sqrt(2/n) {
		t.Errorf("%s: variance %.5f, want 1 ± %.5f", name, variance, 6*math.Sqrt(2/n))
	}
	s := slices.Clone(r)
	slices.Sort(s)
	var ks float64
	for i, v := range s {
		f := phi(v)
		ks = math.Max(ks, math.Max(math.Abs(float64(i+1)/n-f), math.Abs(f-float64(i)/n)))
	}
	// Kolmogorov distribution: P(√n·D > 2.7) ≈ 2·exp(−2·2.7²) ≈ 1e-6.
	if ks*math.Sqrt(n) > 2.7 {
		t.Errorf("%s: Kolmogorov–Smirnov √n·D = %.3f > 2.7", name, ks*math.Sqrt(n))
	}
	p := 2 * phi(-3)
	if e := p * n; math.Abs(tail-e) > 6*math.Sqrt(e*(1-p)) {
		t.Errorf("%s: %v samples beyond 3σ, want %.0f ± %.0f", name, tail, e, 6*math.Sqrt(e))
	}
	t.Logf("%s: n %d, mean %+.5f, variance %.5f, KS √n·D %.3f, |z|>3: %v (want %.0f)", name, len(r), mean, variance, ks*math.Sqrt(n), tail, p*n)
}

// TestDPAggregateMeanAndStd: over many seeded draws the noised average's
// mean is the dense clipped sum / m and its noise is N(0, (z·C/m)²) per
// coordinate (z_Δ·C/m with adaptive clipping), independent across
// coordinates; the report matches the reference; the deltas are untouched.
func TestDPAggregateMeanAndStd(t *testing.T) {
	const c, m = 0.7, 5.0 // m ≠ n: the denominator is fixed
	var deltas []*adapter.Set
	for i, nrm := range []float64{0.5 * c, 2 * c, 10 * c, 0.9 * c} {
		deltas = append(deltas, deltaWithNorm(t, uint64(20+i), tinyTargets, nrm))
	}
	before := make([][]float64, len(deltas))
	for i, d := range deltas {
		before[i] = flat64(d)
	}
	ref, norms := clippedSumRef(deltas, c)
	p := len(ref)

	for _, tc := range []struct {
		name  string
		z     float64
		adapt *AdaptiveClip
		zd    float64
	}{
		{"fixed clip", 1.3, nil, 1.3},
		// z = 1, σ_b = 1: z_Δ = (1 − 1/4)^(−1/2) = 2/√3.
		{"adaptive clip", 1, &AdaptiveClip{TargetQuantile: 0.5, LearningRate: 0.2, CountNoiseStd: 1}, 2 / math.Sqrt(3)},
	} {
		d := &DP{Clip: c, NoiseMultiplier: tc.z, ExpectedClients: m, Adaptive: tc.adapt, Noise: SeededNoise(42)}
		std := tc.zd * c / m
		draws := 200000/p + 1
		pooled := make([]float64, 0, draws*p)
		perMean := make([]float64, p)
		perSq := make([]float64, p)
		var lag float64
		for k := 0; k < draws; k++ {
			d.Clip = c
			out, rep, err := d.Aggregate(deltas, nil)
			if err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				if rep.Clients != 4 || rep.Clipped != 2 || rep.Unclipped != 2 || rep.Clip != c {
					t.Errorf("%s: report %+v", tc.name, rep)
				}
				for i := range norms {
					if math.Abs(rep.Norms[i]-norms[i]) > 1e-12*norms[i] {
						t.Errorf("%s: norm %d = %v, dense %v", tc.name, i, rep.Norms[i], norms[i])
					}
				}
				if math.Abs(rep.NoiseMultiplier-tc.zd) > 1e-15 || math.Abs(rep.NoiseStd-tc.zd*c) > 1e-15 || math.Abs(rep.MeanNoiseStd-std) > 1e-15 {
					t.Errorf("%s: noise multiplier %v, std %v, mean std %v; want %v, %v, %v", tc.name, rep.NoiseMultiplier, rep.NoiseStd, rep.MeanNoiseStd, tc.zd, tc.zd*c, std)
				}
				if !strings.Contains(rep.Noise, "NOT private") {
					t.Errorf("%s: seeded noise reported as %q", tc.name, rep.Noise)
				}
			}
			y := flat64(out)
			prev := 0.0
			for j := range y {
				r := (y[j] - ref[j]/m) / std
				pooled = append(pooled, r)
				perMean[j] += r
				perSq[j] += r * r
				if j > 0 {
					lag += prev * r
				}
				prev = r
			}
		}
		checkStandardNormal(t, tc.name, pooled)
		n := float64(draws)
		for j := range perMean {
			mu := perMean[j] / n
			v := perSq[j]/n - mu*mu
			if math.Abs(mu) > 6/math.Sqrt(n) || math.Abs(v-1) > 6*math.Sqrt(2/n) {
				t.Errorf("%s: coordinate %d: mean %.4f, variance %.4f over %d draws", tc.name, j, mu, v, draws)
			}
		}
		if corr := lag / float64(draws*(p-1)); math.Abs(corr) > 6/math.Sqrt(float64(draws*(p-1))) {
			t.Errorf("%s: neighbouring coordinates correlate: %.4f", tc.name, corr)
		}
	}
	for i, d := range deltas {
		if !slices.Equal(flat64(d), before[i]) {
			t.Errorf("Aggregate modified delta %d", i)
		}
	}
}

// TestDPAggregateNoiseFree: with the noise switched off the result is the
// dense clipped sum divided by the fixed denominator m, up to the snapping
// grid and float32 rounding; client weights play no part.
func TestDPAggregateNoiseFree(t *testing.T) {
	const c, m = 1.0, 8.0
	var deltas []*adapter.Set
	for i, nrm := range []float64{0.2, 3, 0.99, 40, 1.5} {
		deltas = append(deltas, deltaWithNorm(t, uint64(40+i), targets, nrm))
	}
	ref, _ := clippedSumRef(deltas, c)
	d := &DP{Clip: c, NoiseMultiplier: 0.9, ExpectedClients: m, Noise: zeroNoise{}}
	out, rep, err := d.Aggregate(deltas, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Clipped != 3 || rep.Granularity != Granularity(0.9*c) {
		t.Errorf("report %+v", rep)
	}
	for j, y := range flat64(out) {
		want := ref[j] / m
		if math.Abs(y-want) > rep.Granularity/(2*m)+0x1p-23*math.Abs(want) {
			t.Fatalf("coordinate %d = %v, want %v (grid %v)", j, y, want, rep.Granularity/m)
		}
	}
}

// TestAdaptiveNoiseMultiplier checks z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2) against
// values worked out by hand:
//
//	z = 1,   σ_b = 1:   1 − 1/4 = 3/4,       z_Δ = 2/√3 = 1.1547005383792515
//	z = 0.5, σ_b = 0.5: 4 − 1 = 3,           z_Δ = 1/√3 = 0.5773502691896258
//	z = 2,   σ_b = 5:   1/4 − 1/100 = 0.24,  z_Δ = 1/√0.24 = 2.0412414523193148
//
// (the last is TensorFlow Federated's default σ_b = 0.05·m for m = 100) and
// that σ_b ≤ z/2 is refused.
func TestAdaptiveNoiseMultiplier(t *testing.T) {
	for _, tc := range []struct{ z, sb, want float64 }{
		{1, 1, 1.1547005383792515},
		{0.5, 0.5, 0.5773502691896258},
		{2, 5, 2.0412414523193148},
	} {
		got, err := AdaptiveNoiseMultiplier(tc.z, tc.sb)
		if err != nil || math.Abs(got-tc.want) > 1e-15*tc.want {
			t.Errorf("z_Δ(z = %v, σ_b = %v) = %v, %v; want %v", tc.z, tc.sb, got, err, tc.want)
		}
		if got <= tc.z {
			t.Errorf("z_Δ = %v not above z = %v", got, tc.z)
		}
	}
	for _, tc := range []struct {
		z, sb float64
		msg   string
	}{
		{1, 0.5, "must exceed z/2"},
		{1, 0.4, "must exceed z/2"},
		{1, 0, "count noise std"},
		{1, math.NaN(), "count noise std"},
		{0, 1, "noise multiplier"},
		{math.NaN(), 1, "noise multiplier"},
	} {
		if _, err := AdaptiveNoiseMultiplier(tc.z, tc.sb); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("z = %v, σ_b = %v: %v, want an error with %q", tc.z, tc.sb, err, tc.msg)
		}
	}
}

// TestAdaptiveClipGrowsAndShrinks: C strictly grows round after round when
// every update is clipped and strictly shrinks when none is. Without noise
// the factor is exactly exp(η·γ) (b̄ = 0) and exp(−η·(1 − γ)) (b̄ = 1), i.e.
// exp(±η/2) at γ = ½; with seeded noise the direction still holds and no
// round moves C by more than exp(η).
func TestAdaptiveClipGrowsAndShrinks(t *testing.T) {
	const m, eta = 10, 0.2
	run := func(name string, d *DP, norm float64, rounds int, check func(round int, ratio float64, rep DPReport)) {
		t.Helper()
		var deltas []*adapter.Set
		for i := 0; i < m; i++ {
			deltas = append(deltas, deltaWithNorm(t, uint64(60+i), tinyTargets, norm))
		}
		for r := 0; r < rounds; r++ {
			prev := d.Clip
			_, rep, err := d.Aggregate(deltas, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if rep.Clip != prev || rep.NextClip != d.Clip {
				t.Fatalf("%s: round %d: report clip %v → %v, DP clip %v → %v", name, r, rep.Clip, rep.NextClip, prev, d.Clip)
			}
			check(r, d.Clip/prev, rep)
		}
	}
	for _, gamma := range []float64{0.5, 0.7} {
		up, down := math.Exp(eta*gamma), math.Exp(-eta*(1-gamma))
		a := &AdaptiveClip{TargetQuantile: gamma, LearningRate: eta, CountNoiseStd: 1}
		run("noise-free, all clipped", &DP{Clip: 1, NoiseMultiplier: 1, ExpectedClients: m, Adaptive: a, Noise: zeroNoise{}}, 1e6, 8,
			func(r int, ratio float64, rep DPReport) {
				if rep.UnclippedFraction != 0 || rep.Clipped != m || math.Abs(ratio-up) > 1e-14 {
					t.Errorf("γ %v, all clipped, round %d: b̄ %v, clipped %d, C ratio %.17g, want exp(ηγ) = %.17g", gamma, r, rep.UnclippedFraction, rep.Clipped, ratio, up)
				}
			})
		run("noise-free, none clipped", &DP{Clip: 1, NoiseMultiplier: 1, ExpectedClients: m, Adaptive: a, Noise: zeroNoise{}}, 1e-6, 8,
			func(r int, ratio float64, rep DPReport) {
				if rep.UnclippedFraction != 1 || rep.Clipped != 0 || math.Abs(ratio-down) > 1e-14 {
					t.Errorf("γ %v, none clipped, round %d: b̄ %v, clipped %d, C ratio %.17g, want exp(−η(1−γ)) = %.17g", gamma, r, rep.UnclippedFraction, rep.Clipped, ratio, down)
				}
			})
	}
	// With noise: the paper's σ_b = m/20 and a z it allows (2σ_b = 1 > 0.8).
	a := DefaultAdaptiveClip(m)
	run("noisy, all clipped", &DP{Clip: 1, NoiseMultiplier: 0.8, ExpectedClients: m, Adaptive: a, Noise: SeededNoise(7)}, 1e6, 20,
		func(r int, ratio float64, rep DPReport) {
			if !(ratio > 1 && ratio <= math.Exp(eta)*(1+1e-15)) {
				t.Errorf("all clipped, round %d: C ratio %v not in (1, exp(η)] (b̄ %v)", r, ratio, rep.UnclippedFraction)
			}
		})
	run("noisy, none clipped", &DP{Clip: 1, NoiseMultiplier: 0.8, ExpectedClients: m, Adaptive: a, Noise: SeededNoise(8)}, 1e-6, 20,
		func(r int, ratio float64, rep DPReport) {
			if !(ratio < 1 && ratio >= math.Exp(-eta)*(1-1e-15)) {
				t.Errorf("none clipped, round %d: C ratio %v not in [exp(−η), 1) (b̄ %v)", r, ratio, rep.UnclippedFraction)
			}
		})
}

// TestAdaptiveClipReportedBits: clients that clip before upload must report
// b_i, since the server then sees only norms ≤ C.
func TestAdaptiveClipReportedBits(t *testing.T) {
	const m, c = 6, 1.0
	var deltas []*adapter.Set
	bits := make([]bool, m)
	for i := range bits {
		d := deltaWithNorm(t, uint64(80+i), tinyTargets, 5*c)
		_, clipped := ClipUpdate(d, c)
		bits[i] = !clipped
		deltas = append(deltas, d)
	}
	mk := func() *DP {
		return &DP{Clip: c, NoiseMultiplier: 1, ExpectedClients: m, Adaptive: &AdaptiveClip{TargetQuantile: 0.5, LearningRate: 0.2, CountNoiseStd: 1}, Noise: zeroNoise{}}
	}
	d := mk()
	_, rep, err := d.Aggregate(deltas, bits)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Clipped != 0 || rep.Unclipped != 0 || !(d.Clip > c) {
		t.Errorf("reported bits: server clipped %d, unclipped %d, next clip %v; want 0, 0, > %v", rep.Clipped, rep.Unclipped, d.Clip, c)
	}
	d = mk()
	if _, _, err := d.Aggregate(deltas, nil); err != nil {
		t.Fatal(err)
	}
	if !(d.Clip < c) {
		t.Errorf("measured bits on pre-clipped updates: next clip %v, expected the (wrong) shrink below %v", d.Clip, c)
	}
}

// TestCryptoNoise: the crypto/rand-keyed source gives standard normals, two
// sources give different streams, and the seeded source is reproducible and
// labelled as not private.
func TestCryptoNoise(t *testing.T) {
	src := CryptoNoise()
	r := make([]float64, 200000)
	for i := range r {
		r[i] = src.NormFloat64()
	}
	checkStandardNormal(t, "CryptoNoise", r)
	other := CryptoNoise()
	same := 0
	for i := 0; i < 64; i++ {
		if other.NormFloat64() == r[i] {
			same++
		}
	}
	if same > 0 {
		t.Errorf("two CryptoNoise sources agree on %d of 64 samples", same)
	}
	if s := src.(interface{ String() string }).String(); !strings.Contains(s, "crypto/rand") {
		t.Errorf("CryptoNoise describes itself as %q", s)
	}

	a, b, c := SeededNoise(5), SeededNoise(5), SeededNoise(6)
	differ := false
	for i := 0; i < 64; i++ {
		x, y, z := a.NormFloat64(), b.NormFloat64(), c.NormFloat64()
		if x != y {
			t.Fatalf("SeededNoise(5) not reproducible at sample %d", i)
		}
		differ = differ || x != z
	}
	if !differ {
		t.Error("SeededNoise(5) and SeededNoise(6) give the same stream")
	}
	s := a.(interface{ String() string }).String()
	if !strings.Contains(s, "seeded noise: for reproducible simulation only") || !strings.Contains(s, "NOT private") {
		t.Errorf("SeededNoise describes itself as %q", s)
	}
}

// TestLocalNoise: the client clips to C and adds N(0, (zC)²) to every
// coordinate itself.
func TestLocalNoise(t *testing.T) {
	const c, z = 0.5, 0.8
	src := SeededNoise(99)
	for _, nrm := range []float64{3 * c, 0.4 * c} {
		orig := deltaWithNorm(t, 123, tinyTargets, nrm)
		x := flat64(orig)
		ref := norm64(x)
		f := math.Min(1, c/ref)
		var pooled []float64
		for len(pooled) < 100000 {
			d := orig.Clone()
			norm, clipped, err := AddLocalNoise(d, c, z, src)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(norm-ref) > 1e-12*ref || clipped != (ref > c) {
				t.Fatalf("norm %v, clipped %v; want %v, %v", norm, clipped, ref, ref > c)
			}
			for k, y := range flat64(d) {
				pooled = append(pooled, (y-f*x[k])/(z*c))
			}
		}
		checkStandardNormal(t, "local noise", pooled)
	}
}

func TestDPErrors(t *testing.T) {
	good := func() *DP {
		return &DP{Clip: 1, NoiseMultiplier: 1, ExpectedClients: 10, Adaptive: DefaultAdaptiveClip(20), Noise: SeededNoise(1)}
	}
	a := deltaWithNorm(t, 1, tinyTargets, 2)
	b := deltaWithNorm(t, 2, tinyTargets, 2)
	for _, tc := range []struct {
		name string
		edit func(*DP)
		msg  string
	}{
		{"clip 0", func(d *DP) { d.Clip = 0 }, "clipping norm"},
		{"clip < 0", func(d *DP) { d.Clip = -1 }, "clipping norm"},
		{"clip NaN", func(d *DP) { d.Clip = math.NaN() }, "clipping norm"},
		{"clip Inf", func(d *DP) { d.Clip = math.Inf(1) }, "clipping norm"},
		{"z 0", func(d *DP) { d.NoiseMultiplier = 0 }, "noise multiplier"},
		{"z < 0", func(d *DP) { d.NoiseMultiplier = -0.5 }, "noise multiplier"},
		{"z NaN", func(d *DP) { d.NoiseMultiplier = math.NaN() }, "noise multiplier"},
		{"m 0", func(d *DP) { d.ExpectedClients = 0 }, "expected clients"},
		{"m < 0", func(d *DP) { d.ExpectedClients = -3 }, "expected clients"},
		{"m NaN", func(d *DP) { d.ExpectedClients = math.NaN() }, "expected clients"},
		{"γ 0", func(d *DP) { d.Adaptive.TargetQuantile = 0 }, "target quantile"},
		{"γ 1", func(d *DP) { d.Adaptive.TargetQuantile = 1 }, "target quantile"},
		{"γ NaN", func(d *DP) { d.Adaptive.TargetQuantile = math.NaN() }, "target quantile"},
		{"η 0", func(d *DP) { d.Adaptive.LearningRate = 0 }, "learning rate"},
		{"η < 0", func(d *DP) { d.Adaptive.LearningRate = -0.2 }, "learning rate"},
		{"η NaN", func(d *DP) { d.Adaptive.LearningRate = math.NaN() }, "learning rate"},
		{"σ_b = z/2", func(d *DP) { d.Adaptive.CountNoiseStd = 0.5 }, "must exceed z/2"},
		{"σ_b 0", func(d *DP) { d.Adaptive.CountNoiseStd = 0 }, "count noise std"},
	} {
		d := good()
		tc.edit(d)
		clip := d.Clip
		if _, _, err := d.Aggregate([]*adapter.Set{a, b}, nil); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.msg)
		}
		if _, err := d.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", tc.name)
		}
		if !(d.Clip == clip || math.IsNaN(clip)) {
			t.Errorf("%s: clip changed on error", tc.name)
		}
	}
	nan := b.Clone()
	nan.Dense[0].Data[1] = float32(math.NaN())
	for _, tc := range []struct {
		name   string
		deltas []*adapter.Set
		bits   []bool
		msg    string
	}{
		{"no deltas", nil, nil, "no deltas"},
		{"other shape", []*adapter.Set{a, deltaWithNorm(t, 3, targets, 1)}, nil, "delta 1"},
		{"nil delta", []*adapter.Set{a, nil}, nil, "delta 1 is nil"},
		{"NaN delta", []*adapter.Set{a, nan}, nil, "NaN"},
		{"bits", []*adapter.Set{a, b}, []bool{true}, "1 unclipped bits for 2 deltas"},
	} {
		d := good()
		if _, _, err := d.Aggregate(tc.deltas, tc.bits); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.msg)
		}
		if d.Clip != 1 {
			t.Errorf("%s: clip changed on error", tc.name)
		}
	}
	for _, tc := range []struct {
		name  string
		delta *adapter.Set
		c, z  float64
		msg   string
	}{
		{"clip 0", a.Clone(), 0, 1, "clipping norm"},
		{"z 0", a.Clone(), 1, 0, "noise multiplier"},
		{"z NaN", a.Clone(), 1, math.NaN(), "noise multiplier"},
		{"nil", nil, 1, 1, "nil delta"},
		{"NaN", nan.Clone(), 1, 1, "NaN"},
	} {
		if _, _, err := AddLocalNoise(tc.delta, tc.c, tc.z, SeededNoise(1)); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("local noise, %s: %v, want an error with %q", tc.name, err, tc.msg)
		}
	}
	// A nil Noise defaults to CryptoNoise.
	d := good()
	d.Noise = nil
	_, rep, err := d.Aggregate([]*adapter.Set{a, b}, nil)
	if err != nil || !strings.Contains(rep.Noise, "crypto/rand") {
		t.Errorf("default noise: %v, %q", err, rep.Noise)
	}
}

func TestGranularity(t *testing.T) {
	for _, s := range []float64{1, 0.7, 1.3, 1e-6, 123456.789, 0x1p-30} {
		g := Granularity(s)
		if fr, _ := math.Frexp(g); fr != 0.5 {
			t.Errorf("Granularity(%v) = %v is not a power of two", s, g)
		}
		if !(g <= s/1024 && g > s/2048) {
			t.Errorf("Granularity(%v) = %v not in (σ/2048, σ/1024]", s, g)
		}
	}
}

// TestUniformOpenClosed: the uniforms behind Box–Muller lie in (0, 1] and are
// uniform (mean ½, and the fraction below 2⁻¹⁰ is 2⁻¹⁰).
func TestUniformOpenClosed(t *testing.T) {
	rng := SeededNoise(3).(*boxMuller).rng
	const n = 1 << 20
	var sum float64
	small := 0
	for i := 0; i < n; i++ {
		u := uniformOpenClosed(rng)
		if !(u > 0 && u <= 1) {
			t.Fatalf("uniform %v outside (0, 1]", u)
		}
		sum += u
		if u < 0x1p-10 {
			small++
		}
	}
	if mean := sum / n; math.Abs(mean-0.5) > 6*math.Sqrt(1.0/12/n) {
		t.Errorf("mean %v, want ½", mean)
	}
	if e := float64(n) * 0x1p-10; math.Abs(float64(small)-e) > 6*math.Sqrt(e) {
		t.Errorf("%d of %d below 2⁻¹⁰, want %.0f", small, n, e)
	}
}

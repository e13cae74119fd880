package compute

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
)

// expWant is the reference: float64 math.Exp of the float32 argument t.
func expWant(t float32) float64 { return math.Exp(float64(t)) }

// ulpDist is the distance in float32 steps between two non-negative
// float32s (+Inf is one step above MaxFloat32, subnormals count as steps).
func ulpDist(a, b float32) int64 {
	d := int64(math.Float32bits(a)) - int64(math.Float32bits(b))
	if d < 0 {
		d = -d
	}
	return d
}

// sameBits reports whether two float32s have the same bit pattern.
func sameBits(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }

// expCheck compares ExpShift outputs y of arguments t (shift 0) with math.Exp:
// at most maxULP float32 steps from the correctly rounded result everywhere,
// and relative error at most maxRel where the result is a normal float32.
// It returns the worst step distance and relative error seen.
func expCheck(tb testing.TB, t, y []float32, maxULP int64, maxRel float64) (worstULP int64, worstRel float64, atULP, atRel float32) {
	tb.Helper()
	for i, v := range t {
		want := expWant(v)
		u := ulpDist(y[i], float32(want))
		if u > worstULP {
			worstULP, atULP = u, v
		}
		if want >= 0x1p-126 && want <= math.MaxFloat32 {
			rel := math.Abs(float64(y[i])-want) / want
			if rel > worstRel {
				worstRel, atRel = rel, v
			}
			if rel > maxRel {
				tb.Fatalf("exp(%v) = %v (0x%08x), want %v: relative error %.3g > %.3g",
					v, y[i], math.Float32bits(y[i]), want, rel, maxRel)
			}
		}
		if u > maxULP {
			tb.Fatalf("exp(%v) = %v (0x%08x), want %v (0x%08x): %d ulp > %d",
				v, y[i], math.Float32bits(y[i]), want, math.Float32bits(float32(want)), u, maxULP)
		}
	}
	return
}

// The documented accuracy of ExpShift (see its doc comment).
const (
	expMaxULP = 1
	expMaxRel = 7.8e-8
)

// TestExpConstants pins the Go constants to the bit patterns written into
// exp_amd64.s, so the two paths cannot drift apart silently.
func TestExpConstants(t *testing.T) {
	for _, c := range []struct {
		name string
		v    float32
		bits uint32
	}{
		{"log2e", expLog2e, 0x3fb8aa3b}, {"magic", expMagic, 0x4b400000},
		{"ln2hi", expLn2Hi, 0x3f317218}, {"ln2lo", expLn2Lo, 0xb102e308},
		{"hi", expHi, 0x42b20000}, {"lo", expLo, 0xc2d00000},
		{"c6", expC6, 0x3ab5121a}, {"c5", expC5, 0x3c091cf1}, {"c4", expC4, 0x3d2aac79},
		{"c3", expC3, 0x3e2aaa49}, {"c2", expC2, 0x3efffffe},
	} {
		if got := math.Float32bits(c.v); got != c.bits {
			t.Errorf("%s = %v = 0x%08x, the assembly has 0x%08x", c.name, c.v, got, c.bits)
		}
	}
	// ln2hi + ln2lo is ln2 to float64 precision (the Cody–Waite split).
	if d := float64(expLn2Hi) + float64(expLn2Lo) - math.Ln2; math.Abs(d) > 1e-15 {
		t.Errorf("ln2hi + ln2lo − ln2 = %g", d)
	}
}

// fma32Exact is a·b + c computed exactly with big.Float and rounded once to
// float32 (the independent reference for fma32).
func fma32Exact(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(400).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

// TestFma32 checks the portable fused multiply-add against exact arithmetic,
// including cases built so that the exact result is a hair away from a
// float32 rounding midpoint, where rounding through float64 twice goes
// wrong (the test counts them, so it would notice if they stopped occurring).
func TestFma32(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	check := func(a, b, c float32) {
		got, want := fma32(a, b, c), fma32Exact(a, b, c)
		if !sameBits(got, want) {
			t.Fatalf("fma32(%v, %v, %v) = %v (0x%08x), want %v (0x%08x)",
				a, b, c, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	rf := func() float32 { return float32(r.NormFloat64() * math.Exp2(float64(r.IntN(40)-20))) }
	for range 200000 {
		check(rf(), rf(), rf())
	}
	// Results in and around float32's subnormal range.
	for range 100000 {
		a := float32(r.NormFloat64() * 0x1p-70)
		b := float32(r.NormFloat64() * 0x1p-68)
		check(a, b, float32(r.NormFloat64()*math.Exp2(float64(-130-r.IntN(20)))))
		check(a, b, 0)
	}
	// Near-midpoint cases: c = ±m·2ᵉ with an even last bit, and a·b =
	// ±2ᵉ⁻²⁴·(1 + R·2⁻⁴⁷) with 0 < R < 2¹⁷, so the exact sum lies just above
	// the midpoint between c and its next float32 but within half a float64
	// ulp of it. The correct result is c's upper neighbour; rounding through
	// float64 twice lands on the midpoint and then on even c.
	doubleRoundingCases := 0
	for i := int64(1); doubleRoundingCases < 2000 && i < 1<<22; i++ {
		k := i << 24 / (1<<23 + i)
		R := i<<24 - k*(1<<23+i) // (2²³+i)(2²⁴−k) = 2⁴⁷ + R
		if R <= 0 || R >= 1<<17 {
			continue
		}
		e := r.IntN(40) - 20
		m := float32(1+r.Float64()) * float32(math.Exp2(float64(e)))
		c := math.Float32frombits(math.Float32bits(m) &^ 1)
		a := float32(float64(1<<23+i) * math.Exp2(float64(e-24-23)))
		b := float32(float64(1<<24-k) * 0x1p-24)
		if r.IntN(2) == 0 {
			a, c = -a, -c
		}
		check(a, b, c)
		check(b, a, c)
		if float32(math.FMA(float64(a), float64(b), float64(c))) != fma32Exact(a, b, c) {
			doubleRoundingCases++
		}
	}
	// Midpoints exactly, and special values.
	for _, c := range [][3]float32{
		{1, 0x1p-24, 1}, {1, 0x1p-24, 1 + 0x1p-23}, {-1, 0x1p-24, 1}, {0x1p-149, 0.5, 0},
		{0x1p-75, 0x1p-75, 0}, {3, 0x1p-150, 0x1p-149}, {0, 5, -0.0}, {float32(math.Inf(1)), 1, 1},
		{1, 1, float32(math.Inf(-1))}, {math.MaxFloat32, 2, 0}, {math.MaxFloat32, 1, math.MaxFloat32},
	} {
		check(c[0], c[1], c[2])
	}
	if got := fma32(float32(math.NaN()), 1, 1); got == got {
		t.Fatalf("fma32(NaN, 1, 1) = %v", got)
	}
	if doubleRoundingCases == 0 {
		t.Fatalf("no case where float64 rounding twice differs: the near-midpoint cases test nothing")
	}
	t.Logf("%d near-midpoint cases where float32(math.FMA(a, b, c)) is wrong and fma32 is right", doubleRoundingCases)
}

// expSweep returns a dense even grid over [lo, hi] followed by random points
// in [lo−1, hi+1].
func expSweep(n, nrand int, lo, hi float64) []float32 {
	r := rand.New(rand.NewPCG(7, 11))
	x := make([]float32, 0, n+nrand)
	for i := range n {
		x = append(x, float32(lo+(hi-lo)*float64(i)/float64(n-1)))
	}
	for range nrand {
		x = append(x, float32(lo-1+(hi-lo+2)*r.Float64()))
	}
	return x
}

// TestExpShiftAccuracy checks ExpShift against float64 math.Exp over a dense
// sweep of the whole finite range (2 million even points on [−103, 88.7]
// plus random points), including the subnormal results.
func TestExpShiftAccuracy(t *testing.T) {
	x := expSweep(2_000_000, 500_000, -103, 88.7)
	y := append([]float32(nil), x...)
	ExpShift(y, 0)
	u, rel, atU, atRel := expCheck(t, x, y, expMaxULP, expMaxRel)
	t.Logf("worst: %d ulp at %v, relative %.3g (%.2f ulp of 2⁻²³) at %v", u, atU, rel, rel/0x1p-23, atRel)
	// The same points through the portable path, for the record of its
	// accuracy (TestExpShiftPathsIdentical checks it is the same function).
	yg := append([]float32(nil), x...)
	expShiftGo(yg, 0)
	expCheck(t, x, yg, expMaxULP, expMaxRel)
	// Small arguments, where exp(t) ≈ 1 + t.
	var small []float32
	for e := -149; e <= -1; e++ {
		for _, m := range []float32{1, 1.37, 1.9999999} {
			v := m * float32(math.Exp2(float64(e)))
			small = append(small, v, -v)
		}
	}
	ys := append([]float32(nil), small...)
	ExpShift(ys, 0)
	expCheck(t, small, ys, expMaxULP, expMaxRel)
}

// TestExpShiftSpecial checks exact values and saturation, at every position
// of a row (so in the 8-lane steps and in the masked tail) and on both paths.
func TestExpShiftSpecial(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	cases := []struct{ x, want float32 }{
		{0, 1}, {float32(math.Copysign(0, -1)), 1}, {-inf, 0}, {inf, inf},
		{88.7229, inf}, {88.75, inf}, {89, inf}, {100, inf}, {1e30, inf}, {math.MaxFloat32, inf},
		{-103.98, 0}, {-104, 0}, {-110, 0}, {-1e30, 0}, {-math.MaxFloat32, 0},
		{-103.5, 0x1p-149}, // exp(−103.5) ≈ 0.80·2⁻¹⁴⁹
		{0x1p-30, 1}, {-0x1p-30, 1},
	}
	for _, path := range []string{"default", "portable"} {
		for n := 1; n <= 20; n++ {
			for _, c := range cases {
				for pos := 0; pos < n; pos++ {
					x := make([]float32, n)
					for i := range x {
						x[i] = -1
					}
					x[pos] = c.x
					var sum float32
					if path == "portable" {
						sum = expShiftGo(x, 0)
					} else {
						sum = ExpShift(x, 0)
					}
					if !sameBits(x[pos], c.want) {
						t.Fatalf("%s n=%d pos=%d: exp(%v) = %v, want %v", path, n, pos, c.x, x[pos], c.want)
					}
					if c.want == inf && sum != inf {
						t.Fatalf("%s n=%d: sum with exp(%v) = %v, want +Inf", path, n, c.x, sum)
					}
				}
				// NaN in, NaN out (and in the sum); the other elements unaffected.
				x := make([]float32, n)
				x[n/2] = nan
				var sum float32
				if path == "portable" {
					sum = expShiftGo(x, 0)
				} else {
					sum = ExpShift(x, 0)
				}
				for i, v := range x {
					if (i == n/2) != (v != v) || (i != n/2 && v != 1) {
						t.Fatalf("%s n=%d: exp of a row with NaN at %d gives %v at %d", path, n, n/2, v, i)
					}
				}
				if sum == sum {
					t.Fatalf("%s n=%d: sum over a NaN = %v", path, n, sum)
				}
			}
		}
	}
	// A NaN shift makes everything NaN; exp(x − x) = 1 exactly for finite x.
	x := []float32{1, 2, 3}
	if s := ExpShift(x, nan); s == s || x[0] == x[0] || x[2] == x[2] {
		t.Fatalf("NaN shift: %v, sum %v", x, s)
	}
	x = []float32{3.25, 3.25, 3.25}
	if s := ExpShift(x, 3.25); x[0] != 1 || x[1] != 1 || x[2] != 1 || s != 3 {
		t.Fatalf("exp(3.25 − 3.25) = %v, sum %v", x, s)
	}
	if s := ExpShift(nil, 0); s != 0 || math.Signbit(float64(s)) {
		t.Fatalf("empty sum = %v", s)
	}
}

// expInputs returns n values from one of several distributions: softmax
// logits (≤ 0 after the shift), the whole useful range, random bit patterns
// (NaN, ±Inf, subnormals, huge), and a mix with special values.
func expInputs(r *rand.Rand, kind, n int) []float32 {
	x := make([]float32, n)
	specials := []float32{0, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		88.72, 88.73, -87.33, -103.2, -103.98, math.MaxFloat32, -math.MaxFloat32, 0x1p-149}
	for i := range x {
		switch kind {
		case 0:
			x[i] = float32(-math.Abs(r.NormFloat64()) * 8)
		case 1:
			x[i] = float32(-110 + 205*r.Float64())
		case 2:
			x[i] = math.Float32frombits(r.Uint32())
		default:
			if r.IntN(4) == 0 {
				x[i] = specials[r.IntN(len(specials))]
			} else {
				x[i] = float32(r.NormFloat64() * 40)
			}
		}
	}
	return x
}

// TestExpShiftPathsIdentical checks that the assembly and the portable Go
// version give bit-identical outputs and sums, for every length 0…67 and
// some long rows, at every start alignment, and that nothing past the row is
// written. NaN outputs must match in every bit; a sum that is NaN only has
// to be NaN on both paths. Every kernel width runs it (the zmm loop feeds
// the same eight lane sums).
func TestExpShiftPathsIdentical(t *testing.T) {
	for _, kw := range kernelWidths() {
		t.Run(kw.name, func(t *testing.T) { withKernel(kw.force, func() { testExpShiftPathsIdentical(t) }) })
	}
}

func testExpShiftPathsIdentical(t *testing.T) {
	if !useAsm {
		t.Log("no assembly on this build/CPU: ExpShift is expShiftGo, compared with itself")
	}
	r := rand.New(rand.NewPCG(5, 8))
	lens := []int{}
	for n := 0; n <= 67; n++ {
		lens = append(lens, n)
	}
	lens = append(lens, 128, 255, 512, 1000, 4099)
	for _, n := range lens {
		for kind := range 4 {
			for rep := range 3 {
				off := r.IntN(8)
				const guard = 9
				src := expInputs(r, kind, n+off+guard)
				shift := float32(0)
				switch rep {
				case 1:
					shift = float32(r.NormFloat64() * 20)
				case 2:
					shift = src[r.IntN(len(src))]
				}
				a := append([]float32(nil), src...)
				g := append([]float32(nil), src...)
				sa := ExpShift(a[off:off+n], shift)
				sg := expShiftGo(g[off:off+n], shift)
				for i := range a {
					if i < off || i >= off+n {
						if !sameBits(a[i], src[i]) || !sameBits(g[i], src[i]) {
							t.Fatalf("n=%d off=%d: element %d outside the row changed", n, off, i)
						}
						continue
					}
					if d := src[i] - shift; d == d && !sameBits(g[i], exp32Ref(d)) {
						t.Fatalf("n=%d kind=%d: exp(%v − %v) = %v expShiftGo, %v exp32Ref", n, kind, src[i], shift, g[i], exp32Ref(d))
					}
					if !sameBits(a[i], g[i]) {
						t.Fatalf("n=%d kind=%d: exp(%v − %v) = %v (0x%08x) asm, %v (0x%08x) Go",
							n, kind, src[i], shift, a[i], math.Float32bits(a[i]), g[i], math.Float32bits(g[i]))
					}
				}
				if !sameBits(sa, sg) && !(sa != sa && sg != sg) {
					t.Fatalf("n=%d kind=%d shift=%v: sum %v (0x%08x) asm, %v (0x%08x) Go",
						n, kind, shift, sa, math.Float32bits(sa), sg, math.Float32bits(sg))
				}
			}
		}
	}
	// The accuracy sweep, in one long row.
	x := expSweep(2_000_000, 200_000, -110, 95)
	a, g := append([]float32(nil), x...), append([]float32(nil), x...)
	sa, sg := ExpShift(a, 1.5), expShiftGo(g, 1.5)
	for i := range a {
		if !sameBits(a[i], g[i]) {
			t.Fatalf("exp(%v − 1.5) = %v asm, %v Go", x[i], a[i], g[i])
		}
	}
	if !sameBits(sa, sg) {
		t.Fatalf("sweep sum %v asm, %v Go", sa, sg)
	}
}

// expMidpointArgs are all the float32 arguments in [−104.5, 89.5] for which
// one of the FMAs in exp32 has a float64 sum on a float32 midpoint, so
// the portable path recomputes the element with exp32Ref (found by an
// exhaustive search). In every one of them the FMA's exact value is that
// midpoint, so the repair does not change the result (with these constants
// rounding through float64 twice happens to be harmless for every input);
// what is tested here is that the slow route is taken and agrees.
var expMidpointArgs = []uint32{
	0x33800000, 0x34c00000, 0x3cc00000, 0x3d498000, 0x3d760000, 0x3df00000,
	0x3e016000, 0x3e1b3a80, 0x3e440000, 0x3e6ca9e0, 0x3e800000, 0x3e894800,
	0x3e8f6000, 0x3eafcf20, 0x3eb8e430, 0x3ec2e430, 0x3ecd4c30, 0x3f017218,
	0x3f317217, 0x3f4f7218, 0x3f51ca18, 0x3f5840b8, 0x3f627218, 0x3f6c9c90,
	0x3f717218, 0x3f761618, 0x3f792218, 0x3f84acd4, 0x3f86f218, 0x3f897218,
	0x3f8c0c18, 0x3f997218, 0x3fb17217, 0x3fc19e18, 0x3fc4d968, 0x3fc9f218,
	0x3fcf0754, 0x3fd17218, 0x3fd3c418, 0x3fd54a18, 0x3fdd65e0, 0x3fdfab24,
	0x3fe22b24, 0x3fe4c524, 0x3ff22b24, 0x400d2b92, 0x400ec93a, 0x40115592,
	0x4013e030, 0x40151592, 0x40163e92, 0x40170192, 0x401b0f76, 0x401c3218,
	0x401d7218, 0x401ebf18, 0x40317217, 0x40417218, 0x40429b18, 0x40435e18,
	0x40476bfc, 0x40488e9e, 0x4049ce9e, 0x404b1b9e, 0x406dce9e, 0x406ef79e,
	0x406fba9e, 0x4073c882, 0x4074eb24, 0x40762b24, 0x40777824, 0x408d1592,
	0x408daa12, 0x408e0b92, 0x40901284, 0x4090a3d5, 0x409143d5, 0x4091ea55,
	0x40a343d5, 0x40a3d855, 0x40a439d5, 0x40a640c7, 0x40b17217, 0x41317217,
	0x41b17217, 0x42317217, 0x42b17217, 0xb3000000, 0xb3800001, 0xb83f40c0,
	0xb8c3919b, 0xb9800000, 0xbe400000, 0xbe959800, 0xbea00000, 0xbeaa0000,
	0xbeb31510, 0xbed38430, 0xbed99c30, 0xbee2e430, 0xbeec8f40, 0xbf007218,
	0xbf0aa378, 0xbf111a18, 0xbf137218, 0xbf317217, 0xbf617218, 0xbf7c3e18,
	0xbf80b90c, 0xbf83390c, 0xbf857e50, 0xbf8d9a18, 0xbf8f2018, 0xbf917218,
	0xbf93dcdc, 0xbf98f218, 0xbf9e0ac8, 0xbfa14618, 0xbfb17217, 0xbfc97218,
	0xbfd6d818, 0xbfd97218, 0xbfdbf218, 0xbfde375c, 0xbfe65324, 0xbfe7d924,
	0xbfea2b24, 0xbfec95e8, 0xbff1ab24, 0xbff6c3d4, 0xbff9ff24, 0xc0111592,
	0xc017c892, 0xc0191592, 0xc01a5592, 0xc01b7834, 0xc01f8618, 0xc0204918,
	0xc0317217, 0xc0442518, 0xc0457218, 0xc046b218, 0xc047d4ba, 0xc04be29e,
	0xc04ca59e, 0xc070819e, 0xc071ce9e, 0xc0730e9e, 0xc0743140, 0xc0783f24,
	0xc0790224, 0xc08e6f12, 0xc08f1592, 0xc08fb592, 0xc09046e3, 0xc0924dd5,
	0xc092af55, 0xc0a49d55, 0xc0a543d5, 0xc0a5e3d5, 0xc0b17217, 0xc1317217,
	0xc1b17217, 0xc2317217, 0xc2b17217,
}

// expTrips reports which FMA of exp32's fast path (0–8) first has a float64
// sum on a float32 midpoint, or −1 (an independent copy of the check).
func expTrips(t float32) int {
	t = min(expHi, max(expLo, t))
	step, i := -1, 0
	fma := func(a, b, c float32) float32 {
		s := float64(a)*float64(b) + float64(c)
		if step < 0 && math.Float64bits(s)&(1<<29-1) == 1<<28 {
			step = i
		}
		i++
		return float32(s)
	}
	nf := fma(t, expLog2e, expMagic) - expMagic
	r := fma(-nf, expLn2Lo, fma(-nf, expLn2Hi, t))
	p := fma(expC6, r, expC5)
	for _, c := range []float32{expC4, expC3, expC2, 1, 1} {
		p = fma(p, r, c)
	}
	return step
}

// TestExpShiftMidpoints runs the arguments that take exp32's slow route
// through both paths and exp32Ref: bit-identical and accurate.
func TestExpShiftMidpoints(t *testing.T) {
	ts := make([]float32, len(expMidpointArgs))
	for i, b := range expMidpointArgs {
		ts[i] = math.Float32frombits(b)
		if st := expTrips(ts[i]); st < 0 {
			t.Fatalf("exp(%v): no FMA sum on a midpoint", ts[i])
		}
	}
	a := append([]float32(nil), ts...)
	g := append([]float32(nil), ts...)
	sa, sg := ExpShift(a, 0), expShiftGo(g, 0)
	for i, v := range ts {
		ref := exp32Ref(v)
		if !sameBits(a[i], ref) || !sameBits(g[i], ref) {
			t.Fatalf("exp(%v): %v (0x%08x) ExpShift, %v (0x%08x) expShiftGo, %v (0x%08x) exp32Ref", v,
				a[i], math.Float32bits(a[i]), g[i], math.Float32bits(g[i]), ref, math.Float32bits(ref))
		}
	}
	if !sameBits(sa, sg) {
		t.Fatalf("sums %v and %v", sa, sg)
	}
	expCheck(t, ts, a, expMaxULP, expMaxRel)
}

// TestExpShiftSum checks the returned sum against a float64 sum of the
// outputs, and that it is the same on every call.
func TestExpShiftSum(t *testing.T) {
	forBothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 2))
		for _, n := range []int{1, 2, 7, 8, 9, 31, 64, 100, 777, 4096, 100_000} {
			for kind := range 2 {
				x := expInputs(r, kind, n)
				if kind == 1 {
					for i := range x {
						x[i] = min(x[i], 50) // keep the sum finite
					}
				}
				shift := float32(0)
				if kind == 0 {
					shift = -3
				}
				y := append([]float32(nil), x...)
				sum := ExpShift(y, shift)
				var want float64
				for _, v := range y {
					want += float64(v)
				}
				if d := math.Abs(float64(sum) - want); d > 1e-6*float64(n)*want {
					t.Fatalf("n=%d: sum %v, float64 sum of the outputs %v (relative %.3g)", n, sum, want, d/want)
				}
				for range 3 {
					y2 := append([]float32(nil), x...)
					if s2 := ExpShift(y2, shift); !sameBits(s2, sum) {
						t.Fatalf("n=%d: sum %v, then %v on the same input", n, sum, s2)
					}
				}
			}
		}
	})
}

// TestExpShiftShift checks that the shift is one float32 subtraction: with a
// shift that makes x − shift exact the result is exp of the exact
// difference, and in general ExpShift(x, s) equals ExpShift(x ⊖ s, 0) where
// ⊖ is float32 subtraction (which differs from the exact x − s here).
func TestExpShiftShift(t *testing.T) {
	forBothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(4, 4))
		n := 1000
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.IntN(1<<16)-(1<<15)) / 1024 // multiples of 2⁻¹⁰ in [−32, 32)
		}
		const shift = 37.25 // x − shift is exact in float32
		y := append([]float32(nil), x...)
		ExpShift(y, shift)
		for i, v := range x {
			d := float64(v) - shift
			if float64(float32(d)) != d {
				t.Fatalf("test setup: %v − %v is not exact", v, shift)
			}
			want := math.Exp(d)
			if rel := math.Abs(float64(y[i])-want) / want; rel > expMaxRel {
				t.Fatalf("exp(%v − %v) = %v, want %v (relative %.3g)", v, shift, y[i], want, rel)
			}
		}
		inexact := 0
		for i := range x {
			x[i] = float32(r.NormFloat64() * 10)
		}
		s := float32(r.NormFloat64() * 10)
		y = append(y[:0], x...)
		d := make([]float32, n)
		for i, v := range x {
			d[i] = v - s
			if float64(d[i]) != float64(v)-float64(s) {
				inexact++
			}
		}
		sy, sd := ExpShift(y, s), ExpShift(d, 0)
		for i := range y {
			if !sameBits(y[i], d[i]) {
				t.Fatalf("ExpShift(%v, %v) = %v, ExpShift(%v, 0) = %v", x[i], s, y[i], x[i]-s, d[i])
			}
		}
		if !sameBits(sy, sd) || inexact == 0 {
			t.Fatalf("sums %v and %v; %d inexact differences", sy, sd, inexact)
		}
	})
}

// TestExpShiftExhaustive runs every float32 bit pattern through both paths
// (bit-identical) and checks the accuracy of every one. About a minute;
// set KRONFED_EXP_EXHAUSTIVE=1 to run it.
func TestExpShiftExhaustive(t *testing.T) {
	if os.Getenv("KRONFED_EXP_EXHAUSTIVE") == "" {
		t.Skip("set KRONFED_EXP_EXHAUSTIVE=1 to check all 2³² inputs")
	}
	const chunk = 1 << 16
	workers := runtime.GOMAXPROCS(0)
	var mu sync.Mutex
	var worstULP int64
	var worstRel float64
	var atULP, atRel float32
	var wg sync.WaitGroup
	next := make(chan uint64, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x, a, g := make([]float32, chunk), make([]float32, chunk), make([]float32, chunk)
			for base := range next {
				for i := range x {
					x[i] = math.Float32frombits(uint32(base + uint64(i)))
				}
				copy(a, x)
				copy(g, x)
				ExpShift(a, 0)
				expShiftGo(g, 0)
				var fin, fa []float32
				for i, v := range x {
					if !sameBits(a[i], g[i]) {
						t.Errorf("exp(%v): asm 0x%08x, Go 0x%08x", v, math.Float32bits(a[i]), math.Float32bits(g[i]))
						return
					}
					switch {
					case v != v:
						if a[i] == a[i] {
							t.Errorf("exp(NaN 0x%08x) = %v", math.Float32bits(v), a[i])
						}
					case math.IsInf(float64(v), 1):
						if !math.IsInf(float64(a[i]), 1) {
							t.Errorf("exp(+Inf) = %v", a[i])
						}
					case math.IsInf(float64(v), -1):
						if !sameBits(a[i], 0) {
							t.Errorf("exp(−Inf) = %v", a[i])
						}
					default:
						fin = append(fin, v)
						fa = append(fa, a[i])
					}
				}
				// Bounds checked below, in the test goroutine.
				u, rel, au, ar := expCheck(t, fin, fa, math.MaxInt64, math.Inf(1))
				mu.Lock()
				if u > worstULP {
					worstULP, atULP = u, au
				}
				if rel > worstRel {
					worstRel, atRel = rel, ar
				}
				mu.Unlock()
			}
		}()
	}
	for base := uint64(0); base < 1<<32; base += chunk {
		next <- base
	}
	close(next)
	wg.Wait()
	if worstULP > expMaxULP || worstRel > expMaxRel {
		t.Errorf("worst %d ulp at %v, relative %.4g at %v: above %d ulp / %g", worstULP, atULP, worstRel, atRel, expMaxULP, expMaxRel)
	}
	t.Logf("all 2³² inputs: worst %d ulp at %v, relative %.4g (%.3f·2⁻²³) at %v", worstULP, atULP, worstRel, worstRel/0x1p-23, atRel)
}

// BenchmarkExpShift: ns per element of ExpShift (assembly where available),
// the portable version, and a plain float32(math.Exp(float64(x − shift)))
// loop with the same summing, on a softmax row (logits shifted by their max).
func BenchmarkExpShift(b *testing.B) {
	for _, n := range []int{128, 512} {
		r := rand.New(rand.NewPCG(1, uint64(n)))
		src := make([]float32, n)
		var shift float32 = -math.MaxFloat32
		for i := range src {
			src[i] = float32(r.NormFloat64() * 3)
			shift = max(shift, src[i])
		}
		x := make([]float32, n)
		run := func(name string, f func(x []float32, shift float32) float32) {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				var s float32
				for i := 0; i < b.N; i++ {
					copy(x, src)
					s += f(x, shift)
				}
				_ = s
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/elem")
			})
		}
		run("ExpShift", ExpShift)
		run("portable", expShiftGo)
		run("mathExp", func(x []float32, shift float32) float32 {
			var s float32
			for i, v := range x {
				y := float32(math.Exp(float64(v - shift)))
				x[i] = y
				s += y
			}
			return s
		})
	}
}

package compute

import "math"

// A float32 exponential for softmax rows. Per element, t = x − shift (one
// float32 subtraction), then
//
//	t  = clamp(t, −104, 89)             (NaN passes through)
//	k  = fma(t, log₂e, 1.5·2²³)         (n = round(t/ln2) sits in k's low bits)
//	n  = bits(k) − bits(1.5·2²³),  nf = k − 1.5·2²³
//	r  = fma(−nf, ln2hi, t)             (exact: Cody–Waite with an FMA)
//	r  = fma(−nf, ln2lo, r)             |r| ≤ ln2/2 + 1e-7
//	p  = 1 + r·(1 + r·(c2 + r·(c3 + r·(c4 + r·(c5 + r·c6)))))   (six FMAs, Horner)
//	y  = p · 2^⌊n/2⌋ · 2^(n−⌊n/2⌋)
//
// c2…c6 are a degree-6 minimax fit of exp on [−ln2/2, ln2/2] (relative error
// 3.1e-9 before float32 rounding). Splitting 2ⁿ into two normal factors makes
// the last multiplication the only rounding into the subnormal range and lets
// n = 128 overflow to +Inf cleanly, so subnormal results are kept (not
// flushed) and both saturations fall out of IEEE arithmetic: t ≥ 88.7229
// gives +Inf, t ≤ −103.973 gives 0. The clamp only keeps n in [−150, 128].
//
// The amd64 path (exp_amd64.s) evaluates eight lanes at once with AVX2/FMA;
// expShiftGo is the portable version. exp32Ref defines one lane with
// correctly rounded float32 FMAs (fma32, emulated in float64) and the same
// float32 operation for every other step, and exp32 is its fast form, so the
// two paths agree bit for bit on every input: outputs, NaN payloads
// included, and sums (a NaN sum is NaN on both, its payload aside). This
// was checked for all 2³² float32 arguments (TestExpShiftExhaustive).
const (
	expLog2e = float32(1.442695022)      // 0x3fb8aa3b
	expMagic = float32(12582912)         // 0x4b400000 = 1.5·2²³
	expLn2Hi = float32(0.6931471825)     // 0x3f317218 = float32(ln2)
	expLn2Lo = float32(-1.904654212e-09) // 0xb102e308 = float32(ln2 − ln2Hi)
	expHi    = float32(89)               // 0x42b20000
	expLo    = float32(-104)             // 0xc2d00000
	expC6    = float32(0.001381459879)   // 0x3ab5121a
	expC5    = float32(0.008368716575)   // 0x3c091cf1
	expC4    = float32(0.04166838899)    // 0x3d2aac79
	expC3    = float32(0.1666652113)     // 0x3e2aaa49
	expC2    = float32(0.4999999404)     // 0x3efffffe
)

// ExpShift sets x[i] = exp(x[i] − shift) for every i and returns the float32
// sum of the results. It is the exponential of a softmax row: with shift =
// max(x) every argument is ≤ 0 and the sum is the normaliser.
//
// x − shift is one float32 subtraction; its exponential is computed for
// every float32 argument to within 1 ulp of the correctly rounded exp (never
// further; checked for all 2³² arguments against math.Exp), which is a
// relative error below 7.8e-8 (0.65·2⁻²³) wherever the result is a normal
// float32. Results below 2⁻¹²⁶ (arguments −87.34 … −103.28) are subnormal,
// not flushed, and still within 1 ulp; below ≈ −103.97 the result is 0, and
// above ln(MaxFloat32) ≈ 88.7228 it is +Inf. exp(0) = 1 exactly, exp(−Inf) =
// 0, exp(+Inf) = +Inf and NaN gives NaN (so a row of −Inf with shift = −Inf
// gives NaN: −Inf − (−Inf)).
//
// The sum is accumulated in eight lanes, element i into lane i mod 8 in index
// order, then reduced as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)): it depends
// only on the input, never on the run or on which path computed it, and as
// the terms are non-negative it is within about (n/8 + 3)·2⁻²⁴ relative of
// the exact sum of the outputs.
//
// On amd64 with AVX2 and FMA it runs eight elements per step in assembly
// (one masked step for the last n mod 8): about 0.5 ns an element against
// 9–10 ns for float32(math.Exp(float64(x−shift))) on the 2-core AMD EPYC it
// was measured on (BenchmarkExpShift, rows of 128 and 512). Elsewhere, or
// with the purego tag, a pure-Go version gives bit-identical outputs and sum
// at about 15 ns an element (it emulates the fused multiply-adds exactly).
func ExpShift(x []float32, shift float32) (sum float32) {
	return expShift(x, shift)
}

// expShiftGo is the portable ExpShift and the reference for the assembly.
func expShiftGo(x []float32, shift float32) float32 {
	var l [8]float32
	for i, v := range x {
		y := exp32(v - shift)
		x[i] = y
		l[i&7] += y
	}
	return expReduce8(&l)
}

// expReduce8 is the fixed reduction of the eight lane sums (the assembly
// does the same additions: high half onto low half, then pairs).
func expReduce8(l *[8]float32) float32 {
	b0, b1, b2, b3 := l[0]+l[4], l[1]+l[5], l[2]+l[6], l[3]+l[7]
	return (b0 + b2) + (b1 + b3)
}

// exp32 is one lane of the assembly (see the comment at the top of the
// file): exp32Ref with the fast path of fma32 inlined. None of its FMAs can
// round to a nonzero value below 2⁻¹²⁶ (k ≈ 1.26e7; the first r is exact;
// the second is 0 or a multiple of 2⁻⁵² as ln2lo and the first r are; each
// Horner step stays above half its constant in magnitude), so only the
// midpoint check of fmaFast is needed: when any FMA trips it (rare), the
// element is recomputed by exp32Ref.
func exp32(t float32) float32 {
	if t != t {
		// The assembly returns t's (already quiet) NaN unchanged: every
		// FMA and product there has the NaN as its first source.
		return t
	}
	if t > expHi { // min(hi, t) and max(lo, t) as VMINPS/VMAXPS do them
		t = expHi
	}
	if t < expLo {
		t = expLo
	}
	var mid uint64 // top bit set once some FMA's float64 sum was a float32 midpoint
	fma := func(a, b, c float32) float32 {
		s := float64(a)*float64(b) + float64(c)
		mid |= math.Float64bits(s)&(1<<29-1) ^ 1<<28 - 1
		return float32(s)
	}
	k := fma(t, expLog2e, expMagic)
	n := int32(math.Float32bits(k) - math.Float32bits(expMagic))
	nf := k - expMagic
	r := fma(-nf, expLn2Hi, t)
	r = fma(-nf, expLn2Lo, r)
	p := fma(expC6, r, expC5)
	p = fma(p, r, expC4)
	p = fma(p, r, expC3)
	p = fma(p, r, expC2)
	p = fma(p, r, 1)
	p = fma(p, r, 1)
	if mid>>63 != 0 {
		return exp32Ref(t)
	}
	n1 := n >> 1
	n2 := n - n1
	s1 := math.Float32frombits(uint32(n1+127) << 23)
	s2 := math.Float32frombits(uint32(n2+127) << 23)
	return p * s1 * s2
}

// exp32Ref is the definition of one lane, with correctly rounded FMAs
// (t is not NaN).
func exp32Ref(t float32) float32 {
	t = min(expHi, max(expLo, t))
	k := fma32(t, expLog2e, expMagic)
	n := int32(math.Float32bits(k) - math.Float32bits(expMagic))
	nf := k - expMagic
	r := fma32(-nf, expLn2Hi, t)
	r = fma32(-nf, expLn2Lo, r)
	p := fma32(expC6, r, expC5)
	p = fma32(p, r, expC4)
	p = fma32(p, r, expC3)
	p = fma32(p, r, expC2)
	p = fma32(p, r, 1)
	p = fma32(p, r, 1)
	n1 := n >> 1
	n2 := n - n1
	s1 := math.Float32frombits(uint32(n1+127) << 23)
	s2 := math.Float32frombits(uint32(n2+127) << 23)
	return p * s1 * s2
}

// fma32 returns a·b + c rounded once to float32 (what VFMADD…PS computes),
// without hardware FMA: fmaFast, and fma32Slow where that is not enough.
func fma32(a, b, c float32) float32 {
	if y, ok := fmaFast(a, b, c); ok != 0 {
		return y
	}
	return fma32Slow(float64(a)*float64(b), float64(c), float64(a)*float64(b)+float64(c))
}

// fmaFast returns y = float32(s) for s = RN₅₃(a·b + c): the product of two
// float32s is exact in float64, so s is rounded once, and rounding it again
// to float32 gives the correctly rounded fma unless s landed exactly on a
// midpoint between two float32s while a·b + c is not that midpoint (the tie
// would then be broken the wrong way half the time; float32(math.FMA(…)) has
// the same problem). ok is 0 in that case, and for nonzero |s| < 2⁻¹²⁶ where
// the float32 midpoints sit elsewhere; the caller must then use fma32Slow.
// The Go compiler may fuse a·b + c here, which is harmless: the product is
// exact.
func fmaFast(a, b, c float32) (y float32, ok uint64) {
	s := float64(a)*float64(b) + float64(c)
	u := math.Float64bits(s)
	ok = u&(1<<29-1) ^ 1<<28 // 0 iff the low 29 bits are 1000…0
	if u&(1<<63-1)-1 < 0x3810000000000000-1 {
		ok = 0
	}
	return float32(s), ok
}

// fma32Slow finishes fma32 for s = RN₅₃(p + c): TwoSum gives the rounding
// error e exactly, and s rounded to odd (RO = RZ | 1 when e ≠ 0, where RZ is
// s or, when e and s have opposite signs, s one step toward zero) keeps the
// sticky information, so rounding it to 24 bits is correct (53 ≥ 24+2).
func fma32Slow(p, c, s float64) float32 {
	bv := s - p
	if e := (p - (s - bv)) + (c - bv); e > 0 || e < 0 { // inexact (false for NaN/Inf: left alone)
		u := math.Float64bits(s)
		s = math.Float64frombits((u - (u^math.Float64bits(e))>>63) | 1)
	}
	return float32(s)
}

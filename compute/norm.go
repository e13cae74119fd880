package compute

// Sum8 is Σx with eight running sums — element i goes to sum i mod 8 of the
// first 8·⌊len/8⌋, the rest to sum 0 — reduced as ((s0+s1)+(s2+s3)) +
// ((s4+s5)+(s6+s7)): independent adds that pipeline, and the same bits on
// every path (AVX2 lanes are those eight sums).
func Sum8(x []float32) float32 {
	var s [8]float32
	n8 := len(x) / 8 * 8
	if useAsm && n8 > 0 {
		sum8AVX(&x[0], n8/8, &s)
	} else {
		for i := 0; i < n8; i += 8 {
			v := x[i : i+8 : i+8]
			s[0] += v[0]
			s[1] += v[1]
			s[2] += v[2]
			s[3] += v[3]
			s[4] += v[4]
			s[5] += v[5]
			s[6] += v[6]
			s[7] += v[7]
		}
	}
	for _, v := range x[n8:] {
		s[0] += v
	}
	return reduce8(&s)
}

// CenteredSquares8 is Σ(x − mu)² with Sum8's eight running sums, each
// square rounded before it is added (no fused multiply-add, as Go).
func CenteredSquares8(x []float32, mu float32) float32 {
	var s [8]float32
	n8 := len(x) / 8 * 8
	if useAsm && n8 > 0 {
		centeredSquares8AVX(&x[0], n8/8, mu, &s)
	} else {
		for i := 0; i < n8; i++ {
			d := x[i] - mu
			s[i&7] += float32(d * d) // float32(): rounded, never fused
		}
	}
	for _, v := range x[n8:] {
		d := v - mu
		s[0] += float32(d * d)
	}
	return reduce8(&s)
}

// NormApply sets out[i] = ((x[i] − mu)·r)·w[i] + b[i], each operation
// rounded (LayerNorm's output).
func NormApply(out, x, w, b []float32, mu, r float32) {
	n := len(x)
	out, w, b = out[:n], w[:n], b[:n]
	n8 := n / 8 * 8
	if useAsm && n8 > 0 {
		normApplyAVX(&out[0], &x[0], &w[0], &b[0], n8/8, mu, r)
	} else {
		n8 = 0
	}
	for i := n8; i < n; i++ {
		out[i] = float32(float32((x[i]-mu)*r)*w[i]) + b[i] // each step rounded, never fused
	}
}

func reduce8(s *[8]float32) float32 {
	return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

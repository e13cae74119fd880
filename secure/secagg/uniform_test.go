package secagg

import (
	"math"
	"math/rand/v2"
	"testing"
)

// chiSquare returns Pearson's statistic for vals against the uniform
// distribution on [0, 2^m).
func chiSquare(vals []uint64, m int) float64 {
	bins := 1 << m
	counts := make([]float64, bins)
	for _, v := range vals {
		counts[v]++
	}
	expected := float64(len(vals)) / float64(bins)
	var x2 float64
	for _, c := range counts {
		d := c - expected
		x2 += d * d / expected
	}
	return x2
}

// chiSquareCritical approximates the upper quantile of χ²(df) at standard
// normal deviate z (Wilson–Hilferty).
func chiSquareCritical(df, z float64) float64 {
	a := 2 / (9 * df)
	return df * math.Pow(1-a+z*math.Sqrt(a), 3)
}

// TestMaskedUniform: one client's masked vector is indistinguishable from
// uniform over its M-bit values by a chi-square test, even though its input
// is as far from uniform as possible; the same test rejects the plain input
// and a vector that is uniform in all but one bit, so it has power.
func TestMaskedUniform(t *testing.T) {
	const m = 8
	cfg := Config{Round: 9, N: 10, Bits: 4, TotalWeight: 16, Length: 64 << m}
	if got := cfg.Bits + ceilLog2(cfg.TotalWeight); got != m {
		t.Fatalf("modulus bits %d, want %d", got, m)
	}
	// Every client encodes the same constant: its plain values take one or
	// two levels out of 256.
	x := make([]float32, cfg.Length)
	for i := range x {
		x[i] = 0.3
	}
	inputs := make([][]uint64, cfg.N)
	for i := range inputs {
		enc, err := Encode(x, 1, cfg.Bits, 1, rand.New(rand.NewPCG(1, uint64(i))))
		if err != nil {
			t.Fatal(err)
		}
		inputs[i] = enc
	}
	_, _, masked := maskedCohort(t, cfg, inputs)
	crit := chiSquareCritical(float64(1<<m-1), 4.75) // p ≈ 1e-6
	for _, id := range []uint32{1, 4, 10} {
		y, err := Unpack(masked[id].Data, cfg.Length, m)
		if err != nil {
			t.Fatal(err)
		}
		x2 := chiSquare(y, m)
		t.Logf("client %d masked: χ² = %.1f (df %d, critical %.1f)", id, x2, 1<<m-1, crit)
		if x2 > crit {
			t.Fatalf("client %d: masked vector fails uniformity: χ² = %.1f > %.1f", id, x2, crit)
		}
	}
	plain := chiSquare(inputs[3], m)
	t.Logf("plain input: χ² = %.1f", plain)
	if plain <= crit {
		t.Fatalf("the test has no power: plain input passes with χ² = %.1f", plain)
	}
	// Subtler: the masked vector with its top bit forced to zero.
	y, _ := Unpack(masked[4].Data, cfg.Length, m)
	for i := range y {
		y[i] &^= 1 << (m - 1)
	}
	weak := chiSquare(y, m)
	t.Logf("masked with top bit cleared: χ² = %.1f", weak)
	if weak <= crit {
		t.Fatalf("the test has no power: a 7-bit-uniform vector passes with χ² = %.1f", weak)
	}
}

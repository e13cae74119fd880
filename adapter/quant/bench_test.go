package quant

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Benchmarks on the factor shapes of a small Kron-LoRA/LoRA adapter: a tall
// 2048×8 (many rows, per-row scales dominate; per-column ones do not) and a
// wide 8×2048. MB/s counts the float32 side (4 bytes per element) in both
// directions.

var benchShapes = [][2]int{{2048, 8}, {8, 2048}}

func benchSchemes() []Scheme {
	return []Scheme{
		{Bits: 4, PerRow: true},
		{Bits: 4, PerRow: true, Stochastic: true},
		{Bits: 8, Symmetric: true, PerRow: true},
		{Bits: 8, Symmetric: true, PerRow: true, Stochastic: true},
		{Bits: 3, PerRow: true},
		{Bits: 4, PerColumn: true},
		{Bits: 8, Symmetric: true, PerColumn: true},
		{Bits: 8, Symmetric: true, PerColumn: true, Stochastic: true},
	}
}

func BenchmarkQuantize(b *testing.B) {
	for _, sh := range benchShapes {
		rows, cols := sh[0], sh[1]
		x := randMatrix(rand.New(rand.NewPCG(1, 2)), rows, cols)
		for _, s := range benchSchemes() {
			b.Run(fmt.Sprintf("%dx%d/%s", rows, cols, s), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(3, 4))
				b.SetBytes(int64(4 * len(x)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Quantize(x, rows, cols, s, rng); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkDequantize(b *testing.B) {
	for _, sh := range benchShapes {
		rows, cols := sh[0], sh[1]
		x := randMatrix(rand.New(rand.NewPCG(1, 2)), rows, cols)
		for _, s := range benchSchemes() {
			if s.Stochastic {
				continue // decoding does not depend on how codes were rounded
			}
			m, err := Quantize(x, rows, cols, s, nil)
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]float32, len(x))
			b.Run(fmt.Sprintf("%dx%d/%s", rows, cols, s), func(b *testing.B) {
				b.SetBytes(int64(4 * len(x)))
				b.ReportAllocs()
				for b.Loop() {
					if err := m.DequantizeInto(dst); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkRoundTripBinary(b *testing.B) {
	x := randMatrix(rand.New(rand.NewPCG(1, 2)), 2048, 8)
	m, err := Quantize(x, 2048, 8, Scheme{Bits: 4, PerRow: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	buf, _ := m.MarshalBinary()
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = m.AppendBinary(buf[:0])
		var got Matrix
		if err := got.UnmarshalBinary(buf); err != nil {
			b.Fatal(err)
		}
	}
}

package compute

import (
	"math/rand/v2"
	"testing"
)

// TestKeepWords8 checks the eight-lane generator against math/rand/v2's PCG
// with one comparison per element, for every stream count (the lanes past
// it must not write), several thresholds and seeds.
func TestKeepWords8(t *testing.T) {
	if !useZMM() || !hasAVX512DQ() {
		if KeepWords8(make([]uint64, 8), 1, 8, 1, 2, 3) {
			t.Fatal("KeepWords8 drew without AVX-512 DQ at full width")
		}
		t.Skip("no AVX-512 DQ at full width: KeepWords8 declines (tested above)")
	}
	const words = 37
	for _, threshold := range []uint64{0, 1, 6554, 32768, 65535, 65536} {
		for streams := 1; streams <= 8; streams++ {
			seed, c0 := uint64(threshold)*0x9e3779b97f4a7c15+1, uint64(streams*100)
			keep := make([]uint64, 9*words)
			const sentinel = 0x5a5a5a5a5a5a5a5a
			for i := range keep {
				keep[i] = sentinel
			}
			if !KeepWords8(keep, words, streams, seed, c0, threshold) {
				t.Fatal("KeepWords8 declined")
			}
			for i := 0; i < 9; i++ {
				src := rand.NewPCG(seed, c0+uint64(i))
				for w := 0; w < words; w++ {
					got := keep[i*words+w]
					if i >= streams {
						if got != sentinel {
							t.Fatalf("threshold %d, %d streams: stream %d word %d written (%#x)", threshold, streams, i, w, got)
						}
						continue
					}
					var want uint64
					for q := 0; q < 64; q += 4 {
						draw := src.Uint64()
						for k := 0; k < 4; k++ {
							if (draw>>(16*k))&0xFFFF >= threshold {
								want |= 1 << (q + k)
							}
						}
					}
					if got != want {
						t.Fatalf("threshold %d, %d streams: stream %d word %d = %#x, want %#x", threshold, streams, i, w, got, want)
					}
				}
			}
		}
	}
}

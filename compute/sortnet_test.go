package compute

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortColumns16 sorts sixteen random columns of every length up to 130
// (values with repeats, ±0 and large magnitudes) and compares each with
// slices.Sort of the same column, on the assembly and the Go path.
func TestSortColumns16(t *testing.T) {
	forBothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for n := 0; n <= 130; n++ {
			net := SortNetwork(n)
			buf := make([]float32, 16*n)
			for i := range buf {
				switch r.IntN(6) {
				case 0:
					buf[i] = float32(r.IntN(3)) // repeats
				case 1:
					buf[i] = float32(r.NormFloat64() * 1e30)
				default:
					buf[i] = float32(r.NormFloat64())
				}
			}
			want := make([][]float32, 16)
			for c := range want {
				for i := 0; i < n; i++ {
					want[c] = append(want[c], buf[16*i+c])
				}
				slices.Sort(want[c])
			}
			net.SortColumns16(buf)
			for c := range want {
				for i := 0; i < n; i++ {
					if got := buf[16*i+c]; got != want[c][i] {
						t.Fatalf("n=%d column %d row %d: %v, want %v", n, c, i, got, want[c][i])
					}
				}
			}
		}
	})
}

// TestSortNetworkZeroOne: by the 0–1 principle a network sorts every input
// iff it sorts every 0/1 input; checked exhaustively up to 16 inputs.
func TestSortNetworkZeroOne(t *testing.T) {
	for n := 1; n <= 16; n++ {
		net := SortNetwork(n)
		for bits := 0; bits < 1<<n; bits++ {
			v := make([]int, n)
			for i := range v {
				v[i] = bits >> i & 1
			}
			for _, c := range net.Pairs() {
				if v[c[1]] < v[c[0]] {
					v[c[0]], v[c[1]] = v[c[1]], v[c[0]]
				}
			}
			if !slices.IsSorted(v) {
				t.Fatalf("n=%d: input %b not sorted: %v", n, bits, v)
			}
		}
	}
}

package compute

import "fmt"

// Sorting sixteen columns at once with a comparator network: the
// coordinate-wise aggregation rules (median, trimmed mean) need every
// coordinate's n client values in order, and quickselect on one
// coordinate at a time spends its time in mispredicted branches. A network
// is branch-free and the same for every coordinate, so sixteen coordinates
// go through it side by side, one min and one max per comparator.

// SortNet is a comparator network that sorts n values.
type SortNet struct {
	n     int
	pairs [][2]int32 // (a, b), a < b < n: min to a, max to b, in order
}

// SortNetwork returns Batcher's odd–even merge sort network for n inputs:
// after its comparators — (a, b) pairs, a < b, min to a and max to b —
// any n values are in ascending order. Built for the next power of two
// with the inputs past n standing for +Inf, which no comparator moves, so
// the pairs that touch them are left out (~1100 comparators for n = 100).
func SortNetwork(n int) *SortNet {
	p := 1
	for p < n {
		p <<= 1
	}
	s := &SortNet{n: n}
	for p2 := 1; p2 < p; p2 <<= 1 {
		for k := p2; k >= 1; k >>= 1 {
			for j := k % p2; j+k < p; j += 2 * k {
				for i := 0; i < min(k, p-j-k); i++ {
					if (i+j)/(2*p2) == (i+j+k)/(2*p2) && i+j+k < n {
						s.pairs = append(s.pairs, [2]int32{int32(i + j), int32(i + j + k)})
					}
				}
			}
		}
	}
	return s
}

// Pairs is the network's comparators in the order they apply.
func (s *SortNet) Pairs() [][2]int32 { return s.pairs }

// SortColumns16 sorts each of the 16 columns of buf (n×16, row-major:
// column c is buf[c], buf[16+c], …) into ascending order. Values must not
// be NaN; −0 and +0 count as equal, so their order among themselves is
// unspecified.
func (s *SortNet) SortColumns16(buf []float32) {
	if len(buf) < 16*s.n {
		panic(fmt.Sprintf("compute: SortColumns16 of %d rows in %d floats", s.n, len(buf)))
	}
	if len(s.pairs) > 0 {
		sortColumns16(buf, s.pairs)
	}
}

func sortColumns16Go(buf []float32, net [][2]int32) {
	for _, c := range net {
		x, y := buf[16*int(c[0]):][:16], buf[16*int(c[1]):][:16]
		for l := range x {
			u, v := x[l], y[l]
			if v < u {
				x[l], y[l] = v, u
			}
		}
	}
}

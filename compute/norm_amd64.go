//go:build amd64 && !purego

package compute

// The eight-lane loops of norm.go, each over 8·blocks elements: a lane of
// the ymm accumulator is one of the eight running sums.

//go:noescape
func sum8AVX(x *float32, blocks int, s *[8]float32)

//go:noescape
func centeredSquares8AVX(x *float32, blocks int, mu float32, s *[8]float32)

//go:noescape
func normApplyAVX(out, x, w, b *float32, blocks int, mu, r float32)

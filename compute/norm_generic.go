//go:build !amd64 || purego

package compute

func sum8AVX(x *float32, blocks int, s *[8]float32)                         { panic("unreachable") }
func centeredSquares8AVX(x *float32, blocks int, mu float32, s *[8]float32) { panic("unreachable") }
func normApplyAVX(out, x, w, b *float32, blocks int, mu, r float32)         { panic("unreachable") }

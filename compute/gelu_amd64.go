//go:build amd64 && !purego

package compute

// geluAVX2 computes 8·blocks elements of out and grad from x (see gelu.go).
//
//go:noescape
func geluAVX2(out, grad, x *float32, blocks int)

func gelu(out, grad, x []float32) {
	n := len(x)
	if !useAsm || grad == nil || n < 8 {
		geluGo(out, grad, x)
		return
	}
	blocks := n / 8
	geluAVX2(&out[0], &grad[0], &x[0], blocks)
	if rest := blocks * 8; rest < n {
		geluGo(out[rest:], grad[rest:], x[rest:])
	}
}

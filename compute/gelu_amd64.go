//go:build amd64 && !purego

package compute

// geluAVX2 computes 8·blocks elements of out and grad from x (see gelu.go).
//
//go:noescape
func geluAVX2(out, grad, x *float32, blocks int)

// geluZMM computes 16·blocks elements, geluAVX2's arithmetic lane for lane.
//
//go:noescape
func geluZMM(out, grad, x *float32, blocks int)

func gelu(out, grad, x []float32) {
	n := len(x)
	if !useAsm || grad == nil || n < 8 {
		geluGo(out, grad, x)
		return
	}
	done := 0
	if useZMM() && n >= 16 {
		geluZMM(&out[0], &grad[0], &x[0], n/16)
		done = n / 16 * 16
	}
	if blocks := (n - done) / 8; blocks > 0 {
		geluAVX2(&out[done], &grad[done], &x[done], blocks)
		done += blocks * 8
	}
	if done < n {
		geluGo(out[done:], grad[done:], x[done:])
	}
}

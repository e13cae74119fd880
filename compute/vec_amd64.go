//go:build amd64 && !purego

package compute

//go:noescape
func axpyAVX(alpha float32, x, y *float32, n int)

//go:noescape
func axpy2AVX(a0 float32, x0 *float32, a1 float32, x1, y *float32, n int)

//go:noescape
func dotAVX(x, y *float32, n int) float32

//go:noescape
func mulAddAVX(alpha float32, x, y *float32, n int)

func mulAdd(alpha float32, x, y []float32) {
	if !useAsm || len(x) == 0 {
		mulAddGo(alpha, x, y)
		return
	}
	mulAddAVX(alpha, &x[0], &y[0], len(x))
}

//go:noescape
func maxAVX(x *float32, n int) float32

//go:noescape
func scaleAVX(alpha float32, x *float32, n int)

// The callers in vec.go have already resliced the operands to one length n;
// the checks here make that an invariant the assembly can rely on.

func axpy(alpha float32, x, y []float32) {
	if !useAsm || len(x) == 0 {
		axpyGo(alpha, x, y)
		return
	}
	y = y[:len(x)]
	axpyAVX(alpha, &x[0], &y[0], len(x))
}

func axpy2(a0 float32, x0 []float32, a1 float32, x1, y []float32) {
	n := len(y)
	if !useAsm || n == 0 {
		axpy2Go(a0, x0, a1, x1, y)
		return
	}
	x0, x1 = x0[:n], x1[:n]
	axpy2AVX(a0, &x0[0], a1, &x1[0], &y[0], n)
}

func dot(x, y []float32) float32 {
	if !useAsm || len(x) == 0 {
		return dotGo(x, y)
	}
	y = y[:len(x)]
	return dotAVX(&x[0], &y[0], len(x))
}

func scale(alpha float32, x []float32) {
	if !useAsm || len(x) == 0 {
		scaleGo(alpha, x)
		return
	}
	scaleAVX(alpha, &x[0], len(x))
}

func maxOf(x []float32) float32 {
	if !useAsm || len(x) == 0 {
		return maxGo(x)
	}
	return maxAVX(&x[0], len(x))
}

package compute

// Matrix-vector products (m == 1 or n == 1). Packing B for one row of A (a
// single token through a linear layer) would copy all of B to use it once,
// and the 6-row micro-kernel would waste 5/6 of its work; reading B once
// with Dot or Axpy is 2–3× faster and touches no scratch memory.

// gemvRow computes the 1×n row C = alpha·op(A)·op(B) + beta·C for m == 1.
func gemvRow(tA, tB Transpose, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32) {
	c = c[:n]
	// The row of op(A): contiguous, or column 0 of a k×1 A gathered.
	var arow []float32
	var tmp *[]float32
	if tA && lda != 1 {
		tmp = getFloats(k)
		defer putFloats(tmp)
		arow = *tmp
		for p := range arow {
			arow[p] = a[p*lda]
		}
	} else {
		arow = a[:k]
	}
	if tB {
		// op(B) column j is row j of the stored n×k B.
		for j := range c {
			d := alpha * Dot(arow, b[j*ldb:j*ldb+k])
			if beta != 0 {
				d += beta * c[j]
			}
			c[j] = d
		}
		return
	}
	scaleRow(beta, c)
	for p, v := range arow {
		if v != 0 {
			Axpy(alpha*v, b[p*ldb:p*ldb+n], c)
		}
	}
}

// gemvCol computes the m×1 column C = alpha·op(A)·op(B) + beta·C for n == 1
// (C's elements are ldc apart).
func gemvCol(tA, tB Transpose, m, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	// op(B) is k×1: contiguous when B is stored as a 1×k row, else gathered.
	var bcol []float32
	var tmp *[]float32
	if !tB && ldb != 1 {
		tmp = getFloats(k)
		defer putFloats(tmp)
		bcol = *tmp
		for p := range bcol {
			bcol[p] = b[p*ldb]
		}
	} else {
		bcol = b[:k]
	}
	if !tA {
		for i := 0; i < m; i++ {
			d := alpha * Dot(a[i*lda:i*lda+k], bcol)
			if beta != 0 {
				d += beta * c[i*ldc]
			}
			c[i*ldc] = d
		}
		return
	}
	// A is k×m: accumulate Σ_p bcol[p]·A[p,:] in a contiguous row.
	acc := getFloats(m)
	defer putFloats(acc)
	r := *acc
	clear(r)
	for p, v := range bcol {
		if v != 0 {
			Axpy(v, a[p*lda:p*lda+m], r)
		}
	}
	for i, v := range r {
		d := alpha * v
		if beta != 0 {
			d += beta * c[i*ldc]
		}
		c[i*ldc] = d
	}
}

// scaleRow sets c = beta·c, clearing when beta is 0 (old NaN ignored).
func scaleRow(beta float32, c []float32) {
	switch beta {
	case 0:
		clear(c)
	case 1:
	default:
		Scale(beta, c)
	}
}

package compute

// Float64 vector kernels for the aggregation's small dense eigenproblems
// (aggregate's Householder tridiagonalization), where float32 would lose
// the digits an exact re-fit promises.

// Dot64 returns Σ x[i]·y[i] over len(x). len(y) must be ≥ len(x).
func Dot64(x, y []float64) float64 {
	return dot64(x, y[:len(x)])
}

// SymRank2Dot applies one row of the symmetric rank-2 update A −= v·wᵀ +
// w·vᵀ to row (row i of A, vi = v[i], wi = w[i]: row[j] −= vi·w[j] +
// wi·v[j]) and returns Σ row[j]·u[j] of the updated row — the next
// Householder step's matrix–vector product, taken in the same pass over
// the row. v, w and u must be at least len(row) long.
func SymRank2Dot(row, v, w, u []float64, vi, wi float64) float64 {
	n := len(row)
	return symRank2Dot(row, v[:n], w[:n], u[:n], vi, wi)
}

func dot64Go(x, y []float64) float64 { return dotN(x, y) }

func symRank2DotGo(row, v, w, u []float64, vi, wi float64) float64 {
	var s float64
	for j := range row {
		a := row[j] - vi*w[j] - wi*v[j]
		row[j] = a
		s += a * u[j]
	}
	return s
}

// gramChunk is how many columns SymGram64 takes per sweep over all pairs
// of rows: 768 rows × 256 float64 = 1.5 MiB stays in L2, where whole
// 3072-long rows made every product stream a row from L3.
const gramChunk = 256

// SymGram64 returns the m×m matrix of the inner products of x's rows (x
// m×n, row-major with stride ld), G_ij = ⟨x_i, x_j⟩, both triangles. Four
// rows against three at a time (gram4x3: 7 loads per 12 FMAs, where one
// dot product at a time takes two per FMA and ran at memory speed), the
// columns in chunks that stay in L2, the chunks' partial sums added.
func SymGram64(x []float64, m, n, ld int) []float64 {
	g := make([]float64, m*m)
	var tile [12]float64
	for lo := 0; lo < n; lo += gramChunk {
		w := min(gramChunk, n-lo)
		w4 := w &^ 3 // gram4x3's part; the last w−w4 columns by dot64
		row := func(i int) []float64 { return x[i*ld+lo:][:w] }
		pair := func(i, j int) float64 { // the columns gram4x3 did not take
			return dot64(row(i)[w4:], row(j)[w4:])
		}
		i := 0
		for ; i+4 <= m; i += 4 {
			j := i
			for ; j+3 <= m; j += 3 {
				gram4x3(x[i*ld+lo:], ld, x[j*ld+lo:], ld, w4, &tile)
				for a := range 4 {
					for b := range 3 {
						if j+b >= i+a { // the upper triangle, the diagonal included
							g[(i+a)*m+j+b] += tile[3*a+b] + pair(i+a, j+b)
						}
					}
				}
			}
			for a := range 4 { // the last columns of the block row
				for jj := max(j, i+a); jj < m; jj++ {
					g[(i+a)*m+jj] += dot64(row(i+a), row(jj))
				}
			}
		}
		for ; i < m; i++ { // the last rows
			for jj := i; jj < m; jj++ {
				g[i*m+jj] += dot64(row(i), row(jj))
			}
		}
	}
	for i := 0; i < m; i++ {
		for j := 0; j < i; j++ {
			g[i*m+j] = g[j*m+i]
		}
	}
	return g
}

func gram4x3Go(a []float64, lda int, b []float64, ldb int, n int, out *[12]float64) {
	for i := range 4 {
		for j := range 3 {
			out[3*i+j] = dotN(a[i*lda:][:n], b[j*ldb:][:n])
		}
	}
}

// AxpyWiden computes y[i] += float32(alpha·float64(x[i])) over len(x)
// (len(y) ≥ len(x)): each product in float64, rounded once to float32,
// then added in float32 — exactly the Go expression, so a weighted sum of
// float32 tensors keeps its bits on the vector path.
func AxpyWiden(alpha float64, x, y []float32) {
	axpyWiden(alpha, x, y[:len(x)])
}

func axpyWidenGo(alpha float64, x, y []float32) {
	for i, v := range x {
		y[i] += float32(alpha * float64(v))
	}
}

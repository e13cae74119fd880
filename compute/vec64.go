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

package aggregate

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/compute"
)

// ModuleError is how far one module's re-fitted ΔW is from the exact
// weighted sum of the clients' ΔW: ‖ΔW_exact − ΔW_new‖F / ‖ΔW_exact‖F.
type ModuleError struct {
	Module string
	Rel    float64
}

// KronExact aggregates Kron-LoRA adapters without the bias of averaging
// factors: for every module it takes the exact weighted sum
//
//	ΔW_exact = Σ_i p_i · A_i ⊗ (B1_i·B2_i)
//
// and re-fits one Kron-LoRA of the same shape to it: the nearest Kronecker
// product (Van Loan–Pitsianis: the top singular pair of the rearrangement
// R = Σ_i p_i vec(A_i)·vec(B_i)ᵀ, from the dA2·dA1-square matrix R·Rᵀ),
// then the best rank-r B1·B2 for B = Rᵀ·u. While the clients' stacked rank
// n·r is below B's smaller side the sum stays factored (R·Rᵀ = U·G·Uᵀ with
// G_ij = ⟨B_i, B_j⟩, the truncation through QR of the stacked factors and
// an (n·r)-square core); beyond it R's dA2·dA1 rows, each a dB2×dB1 matrix,
// are formed by float32 GEMMs whose cost grows linearly in n (refit).
// ΔW itself (d_out × d_in) is never formed. Dense tensors are averaged. It
// returns the new Set and each module's relative error ‖ΔW_exact −
// ΔW_new‖F / ‖ΔW_exact‖F.
func KronExact(updates []Weighted) (*adapter.Set, []ModuleError, error) {
	p, err := check(updates)
	if err != nil {
		return nil, nil, err
	}
	if k := updates[0].Set.Config.Kind; k != adapter.KindKron {
		return nil, nil, fmt.Errorf("aggregate: KronExact needs kron adapters, got %s", k)
	}
	out, err := FedAvg(updates) // dense tensors averaged; factors replaced below
	if err != nil {
		return nil, nil, err
	}
	errs, err := refitModules(out, func(mi int) (float64, error) {
		ks := make([]*adapter.Kron, len(updates))
		for i, u := range updates {
			ks[i] = u.Set.Modules[mi].Layer.(*adapter.Kron)
		}
		return refit(out.Modules[mi].Layer.(*adapter.Kron), ks, p)
	})
	if err != nil {
		return nil, nil, err
	}
	return out, errs, nil
}

// refitModules runs fit for every module of out and returns each one's
// relative error, or the first module's error. The modules' re-fits are
// independent (each writes only its own factors), so they run side by side
// on the CPUs, largest first, each worker taking the next module when it
// is done: a DistilBERT's feed-forward modules cost four times its
// attention ones, and contiguous runs of modules left one core idle for a
// third of kron-exact's time. Which worker fits a module changes nothing
// in its result.
func refitModules(out *adapter.Set, fit func(mi int) (float64, error)) ([]ModuleError, error) {
	n := len(out.Modules)
	errs := make([]ModuleError, n)
	fails := make([]error, n)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	size := func(mi int) int { dOut, dIn := out.Modules[mi].Layer.Dims(); return dOut * dIn }
	slices.SortStableFunc(order, func(a, b int) int { return size(b) - size(a) })
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(compute.Threads(), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				mi := order[i]
				errs[mi].Module = out.Modules[mi].Name
				errs[mi].Rel, fails[mi] = fit(mi)
			}
		}()
	}
	wg.Wait()
	for mi, err := range fails {
		if err != nil {
			return nil, fmt.Errorf("aggregate: module %s: %w", out.Modules[mi].Name, err)
		}
	}
	return errs, nil
}

// preferFactored makes kron-exact's refit and lora-exact take their
// factored paths whatever the sizes (tests check both paths on the same
// inputs).
var preferFactored bool

// refit sets dst's factors to the Kron-LoRA nearest to Σ p_i·ΔW_i of the
// clients ks and returns the relative error left. The rearrangement's rows
// R_a = Σ_i U[a,i]·B_i (U = [p_i·vec(A_i)], na×n) are taken in factored
// form while the clients' stacked rank n·r is below the smaller side of
// B (dB2×dB1), and formed explicitly beyond it, where the factored form
// is no smaller and its n×n client Gram matrix grows as n² (refitExplicit).
func refit(dst *adapter.Kron, ks []*adapter.Kron, p []float64) (float64, error) {
	sh := dst.Shape
	na := sh.DA2 * adapter.KronDA1
	U := mat.NewDense(na, len(ks), nil)
	for i, k := range ks {
		for a, v := range k.A {
			U.Set(a, i, p[i]*float64(v))
		}
	}
	lefts, rights := pairs(ks, func(k *adapter.Kron) ([]float32, []float32) { return k.B1, k.B2 })
	if len(ks)*sh.Rank >= min(sh.DB2(), sh.DB1()) && !preferFactored {
		return refitExplicit(dst, lefts, rights, U)
	}
	return refitFactored(dst, lefts, rights, U)
}

// pairs lists each adapter's low-rank pair (left m×r, right r×cols) as
// stackPairs and pairSums take them.
func pairs[L any](layers []L, pair func(L) (left, right []float32)) (lefts, rights [][]float32) {
	lefts, rights = make([][]float32, len(layers)), make([][]float32, len(layers))
	for i, l := range layers {
		lefts[i], rights[i] = pair(l)
	}
	return lefts, rights
}

// refitFactored is refit through the clients' Gram matrix G_ij = ⟨B_i,
// B_j⟩: R·Rᵀ = U·G·Uᵀ, and B = Σ_i c_i·B1_i·B2_i truncated through QR of
// the stacked factors. The error comes from inner products of the factors.
func refitFactored(dst *adapter.Kron, lefts, rights [][]float32, U *mat.Dense) (float64, error) {
	sh := dst.Shape
	r, dB2, dB1 := sh.Rank, sh.DB2(), sh.DB1()
	na, n := U.Dims()
	G := gram(lefts, rights, r, dB2, dB1)
	// ‖ΔW_exact‖² = Σ_ij ⟨p_i A_i, p_j A_j⟩·G_ij = tr(Uᵀ·U·G).
	var UtU mat.Dense
	UtU.Mul(U.T(), U)
	exact2 := 0.0
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			exact2 += UtU.At(i, j) * G.At(i, j)
		}
	}
	if exact2 <= 0 {
		// Every client's ΔW is 0 (e.g. A = 0 at the start): keep the
		// weighted mean of the factors, which is already in dst.
		return 0, nil
	}
	// R·Rᵀ = U·G·Uᵀ (na×na); its top eigenvector u is vec(A_new) up to scale.
	var UG, RRt mat.Dense
	UG.Mul(U, G)
	RRt.Mul(&UG, U.T())
	u, err := leadingVector(RRt.RawMatrix().Data, na)
	if err != nil {
		return 0, err
	}
	// B_new = Rᵀ·u = Σ_i c_i·B_i with c_i = p_i·⟨vec A_i, u⟩.
	c := make([]float64, n)
	for i := range lefts {
		for a := 0; a < na; a++ {
			c[i] += U.At(a, i) * u[a]
		}
	}
	// B = L·Rtᵀ, L = [c_1·B1_1 … c_n·B1_n] (dB2 × n·r), Rt = [B2_1; …; B2_n]ᵀ.
	L, Rt := stackPairs(lefts, rights, c, dB2, r, dB1)
	b1, b2, _, err := truncate(L, Rt, r)
	if err != nil {
		return 0, err
	}
	store(dst, u, b1, b2)
	// ‖ΔW_exact − ΔW_new‖² from inner products, in float64 on the float32
	// factors that were actually stored.
	aNew := make([]float64, na)
	for a, v := range dst.A {
		aNew[a] = float64(v)
	}
	var cross float64
	for i := range lefts {
		var ai float64
		for a := 0; a < na; a++ {
			ai += U.At(a, i) * aNew[a]
		}
		cross += ai * adapter.LowRankInner(lefts[i], rights[i], dst.B1, dst.B2, dB2, r, dB1)
	}
	var an2 float64
	for _, v := range aNew {
		an2 += v * v
	}
	new2 := an2 * adapter.LowRankInner(dst.B1, dst.B2, dst.B1, dst.B2, dB2, r, dB1)
	diff := math.Max(exact2+new2-2*cross, 0)
	return math.Sqrt(diff / exact2), nil
}

// refitExplicit is refit with R's na rows formed explicitly, each a dB2×dB1
// matrix, by float32 GEMMs whose cost grows linearly in the number of
// clients (pairSums): then R·Rᵀ from their inner products, its top
// eigenvector u, B = Rᵀ·u = Σ_a u_a·R_a, B's top r singular triplets, and
// the error as the residual ‖R − vec(A_new)·vec(B1_new·B2_new)ᵀ‖ itself
// (no cancelling difference of squared norms).
func refitExplicit(dst *adapter.Kron, lefts, rights [][]float32, U *mat.Dense) (float64, error) {
	sh := dst.Shape
	r, dB2, dB1 := sh.Rank, sh.DB2(), sh.DB1()
	na, _ := U.Dims()
	size := dB2 * dB1
	R, scale := pairSums(lefts, rights, U, r, dB2, dB1)       // the true R is scale·R
	row := func(a int) []float32 { return R[a*size:][:size] } // R_a, dB2×dB1
	RRt := make([]float64, na*na)                             // upper triangle
	var exact2 float64
	for a := 0; a < na; a++ {
		for b := a; b < na; b++ {
			RRt[a*na+b] = longDot(row(a), row(b))
		}
		exact2 += RRt[a*na+a]
	}
	if exact2 <= 0 {
		return 0, nil // every ΔW is 0: keep the mean (as refitFactored does)
	}
	u, err := leadingVector(RRt, na)
	if err != nil {
		return 0, err
	}
	B32 := make([]float32, size) // Σ_a u_a·R_a
	for a, ua := range u {
		compute.Axpy(float32(ua), row(a), B32)
	}
	left, right, s, err := topSingular32(B32, dB2, dB1, r)
	if err != nil {
		return 0, fmt.Errorf("%w (the %d×%d sum of the clients' B)", err, dB2, dB1)
	}
	b1, b2 := splitTriplets(left, right, s, r)
	unscale(b1, b2, scale)
	store(dst, u, b1, b2)
	// Residual on the stored float32 factors: Σ_a ‖R_a − A_new[a]·B_new‖²
	// (in R's scaled units, as exact2).
	coef := make([]float64, na)
	for a, v := range dst.A {
		coef[a] = float64(v) / scale
	}
	res := residual2(R, coef, lowRankProduct(dst.B1, dst.B2, dB2, r, dB1))
	return math.Sqrt(res / exact2), nil
}

// pairSumsChunk is how many stacked rows (pairs × r) one pass of pairSums
// takes: compute.Gemm's pass depth (kcMax), so each chunk is one pass and
// the temporaries stay small at any number of clients.
const pairSumsChunk = 384

// pairSums returns the na weighted sums R_a = Σ_i U[a,i]·left_i·right_i
// (a < na; left_i m×r, right_i r×cols, row-major; U na×n) as m×cols
// float32 matrices one after another. For Kron-LoRA these are the
// rearrangement's rows (left = B1, right = B2, U = [p_i·vec(A_i)]); for
// LoRA the one sum Σ p_i·B_i·A_i. Per chunk of pairs, T = [right_i; …]
// (k·r × cols) is packed once and multiplied by S_a = [U[a,i]·left_i …]
// (m × k·r) for every a, accumulating into R_a: 2·m·n·r·na·cols flops in
// all, linear in n. S_a is refilled per a from S = [left_i …] in a buffer
// that stays in cache.
//
// The float32 products would overflow for factors beyond ~1e19 (finite,
// so accepted), where the factored path's float64 did not: the lefts,
// rights and U are brought to magnitudes below 1 by powers of two
// (unitScale; exact) and the sums returned with the factor that undoes
// it: the true R is scale·R.
func pairSums(lefts, rights [][]float32, U *mat.Dense, r, m, cols int) (R []float32, scale float64) {
	na, n := U.Dims()
	fl, fr := unitScale(lefts), unitScale(rights)
	fu, big := 1.0, 0.0
	for _, v := range U.RawMatrix().Data { // U comes from mat.NewDense: no stride gaps
		big = math.Max(big, math.Abs(v))
	}
	if big > 0 {
		_, e := math.Frexp(big)
		fu = math.Ldexp(1, -e)
	}
	size := m * cols
	R = make([]float32, na*size)
	// Pairs per pass: at most pairSumsChunk rows, the passes even (100
	// clients at r = 8 take 34+33+33, not 48+48+4: a shallow last pass
	// would read and write all of R for little work).
	passes := (n*r + pairSumsChunk - 1) / pairSumsChunk
	per := (n + passes - 1) / passes
	width := per * r
	S, Sa := make([]float32, m*width), make([]float32, m*width)
	T := make([]float32, width*cols)
	colScale := make([]float32, width)
	for lo := 0; lo < n; lo += per {
		hi := min(n, lo+per)
		kr := (hi - lo) * r
		for i := lo; i < hi; i++ {
			col := (i - lo) * r
			for row := 0; row < m; row++ {
				scaleInto(S[row*kr+col:][:r], lefts[i][row*r:][:r], fl)
			}
			scaleInto(T[col*cols:][:r*cols], rights[i], fr)
		}
		pb := compute.PackB(compute.NoTrans, kr, cols, T, cols)
		beta := float32(1)
		if lo == 0 {
			beta = 0
		}
		for a := 0; a < na; a++ {
			for i := lo; i < hi; i++ {
				ua := float32(U.At(a, i) * fu)
				for q := range r {
					colScale[(i-lo)*r+q] = ua
				}
			}
			for row := 0; row < m; row++ {
				src, dst := S[row*kr:][:kr], Sa[row*kr:][:kr]
				for c, v := range src {
					dst[c] = v * colScale[c]
				}
			}
			compute.GemmPacked(compute.NoTrans, m, 1, Sa, kr, pb, beta, R[a*size:][:size], cols)
		}
	}
	return R, 1 / (float64(fl) * float64(fr) * fu)
}

// unitScale is the power of two that brings the largest magnitude in xs
// into [0.5, 1) (1 if every value is 0). Multiplying by it is exact, bar
// values 2¹²⁶ times smaller than the largest, which underflow (they are
// far below the float32 products' rounding of the largest anyway).
func unitScale(xs [][]float32) float32 {
	var big uint32 // the largest |v|'s bits: float32 order is integer order
	for _, x := range xs {
		for _, v := range x {
			big = max(big, math.Float32bits(v)&0x7fffffff)
		}
	}
	if big == 0 {
		return 1
	}
	_, e := math.Frexp(float64(math.Float32frombits(big)))
	return float32(math.Ldexp(1, -e))
}

// unscale multiplies both factors of a pair by √scale, so that their
// product is scale times what it was: a truncation of pairSums' scaled
// sums brought back to the true size.
func unscale(left, right []float64, scale float64) {
	sq := math.Sqrt(scale)
	for i := range left {
		left[i] *= sq
	}
	for i := range right {
		right[i] *= sq
	}
}

// scaleInto sets dst = f·src.
func scaleInto(dst, src []float32, f float32) {
	for i, v := range src {
		dst[i] = v * f
	}
}

// lowRankProduct is left·right (m×r times r×cols, float32, row-major) in
// float64, m×cols row-major.
func lowRankProduct(left, right []float32, m, r, cols int) []float64 {
	l, rt := make([]float64, m*r), make([]float64, r*cols)
	for i, v := range left {
		l[i] = float64(v)
	}
	for i, v := range right {
		rt[i] = float64(v)
	}
	var p mat.Dense
	p.Mul(mat.NewDense(m, r, l), mat.NewDense(r, cols, rt))
	return p.RawMatrix().Data
}

// residual2 is Σ_a ‖R_a − coef[a]·p‖² for the sums R_a of pairSums (each
// len(p) long) against one product p: the squared error of an explicit
// re-fit, without a cancelling difference of squared norms.
func residual2(R []float32, coef, p []float64) float64 {
	var res float64
	for a, ca := range coef {
		for j, v := range R[a*len(p):][:len(p)] {
			d := float64(v) - ca*p[j]
			res += d * d
		}
	}
	return res
}

// topSingular32 is topSingular of the float32 m×cols matrix b.
func topSingular32(b []float32, m, cols, r int) (u, v *mat.Dense, s []float64, err error) {
	b64 := make([]float64, len(b))
	for i, x := range b {
		b64[i] = float64(x)
	}
	return topSingular(mat.NewDense(m, cols, b64), r)
}

// longDot is ⟨x, y⟩ of two long float32 vectors: compute.Dot over runs of
// 4096, the runs summed in float64 (float32 accumulation over hundreds of
// thousands of terms would lose digits the re-fit's error report keeps).
func longDot(x, y []float32) float64 {
	var s float64
	for lo := 0; lo < len(x); lo += 4096 {
		hi := min(len(x), lo+4096)
		s += float64(compute.Dot(x[lo:hi], y[lo:hi]))
	}
	return s
}

// leadingVector returns the unit eigenvector of the largest eigenvalue of
// the symmetric na×na matrix s (row-major, upper triangle read; s is
// overwritten).
func leadingVector(s []float64, na int) ([]float64, error) {
	_, v, ok := topEigen(s, na, 1)
	if !ok {
		return nil, fmt.Errorf("eigendecomposition of the %d×%d Kronecker rearrangement failed", na, na)
	}
	return mat.Col(nil, 0, v), nil
}

// store writes the re-fit into dst: A = u (unit norm) and B = b1·b2
// (dB2×r, r×dB1, row-major) carrying the whole size. Part of the size is
// moved into A so neither factor drifts in scale across rounds: A =
// u·√‖B‖F and each of B1, B2 divided by ‖B‖F^¼; the Kronecker product is
// unchanged. Gradients are cleared.
func store(dst *adapter.Kron, u, b1, b2 []float64) {
	r, dB2, dB1 := dst.Shape.Rank, dst.Shape.DB2(), dst.Shape.DB1()
	var g1, g2 mat.Dense
	g1.Mul(mat.NewDense(dB2, r, b1).T(), mat.NewDense(dB2, r, b1))
	g2.Mul(mat.NewDense(r, dB1, b2), mat.NewDense(r, dB1, b2).T())
	bNorm2 := mat.Dot(mat.NewVecDense(r*r, g1.RawMatrix().Data), mat.NewVecDense(r*r, g2.RawMatrix().Data))
	scale := math.Sqrt(math.Sqrt(math.Max(bNorm2, 0)))
	if scale == 0 {
		scale = 1
	}
	for a := range dst.A {
		dst.A[a] = float32(u[a] * scale)
	}
	bScale := 1 / math.Sqrt(scale)
	for i := range dst.B1 {
		dst.B1[i] = float32(b1[i] * bScale)
	}
	for i := range dst.B2 {
		dst.B2[i] = float32(b2[i] * bScale)
	}
	clear(dst.GradA)
	clear(dst.GradB1)
	clear(dst.GradB2)
}

// gram is G_ij = ⟨B1_i·B2_i, B1_j·B2_j⟩_F for every pair of clients, from
// two stacked products instead of n² pairwise ones: with S = [B1_1 … B1_n]
// (dB2 × n·r) and T = [B2_1; …; B2_n] (n·r × dB1),
//
//	G_ij = Σ_ab (SᵀS)[i·r+a, j·r+b] · (T·Tᵀ)[i·r+a, j·r+b],
//
// the two (n·r)-square Gram matrices taken by compute.Gemm in float32 (the
// factors are float32; the products' relative error is ~1e-6, far below a
// re-fit's), the blocks summed in float64.
func gram(lefts, rights [][]float32, r, dB2, dB1 int) *mat.SymDense {
	n := len(lefts)
	N := n * r
	S := make([]float32, dB2*N)
	T := make([]float32, N*dB1)
	// Scaled by powers of two so the float32 products cannot overflow
	// (pairSums says why); G is scaled back at the end.
	f1, f2 := unitScale(lefts), unitScale(rights)
	for i := range lefts {
		for row := 0; row < dB2; row++ {
			scaleInto(S[row*N+i*r:row*N+(i+1)*r], lefts[i][row*r:(row+1)*r], f1)
		}
		scaleInto(T[i*r*dB1:(i+1)*r*dB1], rights[i], f2)
	}
	back := 1 / (float64(f1) * float64(f1) * float64(f2) * float64(f2))
	StS := make([]float32, N*N)
	TTt := make([]float32, N*N)
	compute.Gemm(compute.Trans, compute.NoTrans, N, N, dB2, 1, S, N, S, N, 0, StS, N)
	compute.Gemm(compute.NoTrans, compute.Trans, N, N, dB1, 1, T, dB1, T, dB1, 0, TTt, N)
	G := mat.NewSymDense(n, nil)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			var g float64
			for a := 0; a < r; a++ {
				row := (i*r + a) * N
				for b := 0; b < r; b++ {
					g += float64(StS[row+j*r+b]) * float64(TTt[row+j*r+b])
				}
			}
			G.SetSym(i, j, g*back)
		}
	}
	return G
}

// stackPairs lays n low-rank pairs (left_i m×r, right_i r×n_cols,
// row-major) side by side for truncate: L = [c_1·left_1 … c_k·left_k]
// (m × k·r) and Rt = [right_1; …; right_k]ᵀ (cols × k·r), so that
// L·Rtᵀ = Σ c_i·left_i·right_i.
func stackPairs(lefts, rights [][]float32, c []float64, m, r, cols int) (L, Rt *mat.Dense) {
	k := len(lefts)
	N := k * r
	l, rt := make([]float64, m*N), make([]float64, cols*N) // row-major, N columns
	for i := range lefts {
		for row := 0; row < m; row++ {
			dst, src := l[row*N+i*r:][:r], lefts[i][row*r:][:r]
			for q, v := range src {
				dst[q] = c[i] * float64(v)
			}
		}
		for q := 0; q < r; q++ {
			for col, v := range rights[i][q*cols : (q+1)*cols] {
				rt[col*N+i*r+q] = float64(v)
			}
		}
	}
	return mat.NewDense(m, N, l), mat.NewDense(cols, N, rt)
}

// truncate returns the best rank-r factorization B1 (dB2×r), B2 (r×dB1),
// row-major, of L·Rtᵀ, via thin QR of both tall factors and the top r
// singular triplets of the small core: L = Q1·R1, Rt = Q2·R2, L·Rtᵀ =
// Q1·(R1·R2ᵀ)·Q2ᵀ. Q1 and Q2 are never formed: the core's r kept singular
// vectors are multiplied by them through their Householder reflectors
// (LAPACK's ormqr), which costs O(m·k·r) where forming Q costs O(m²·k) —
// the difference between seconds and milliseconds for a 768-row factor.
// L and Rt are overwritten (stackPairs' temporaries). norm2 is ‖L·Rtᵀ‖²F,
// which is the core's (Q1 and Q2 have orthonormal columns): the exact sum's
// squared norm at no cost.
func truncate(L, Rt *mat.Dense, r int) (b1, b2 []float64, norm2 float64, err error) {
	_, k := L.Dims()
	f1, r1 := householderQR(L)
	f2, r2 := householderQR(Rt)
	var core mat.Dense
	core.Mul(r1, r2.T())
	norm2 = math.Pow(mat.Norm(&core, 2), 2)
	us, vs, s, err := topSingular(&core, r)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w (the core of a rank-%d factorization)", err, k)
	}
	b1, b2 = splitTriplets(f1.mulQ(us), f2.mulQ(vs), s, r)
	return b1, b2, norm2, nil
}

// splitTriplets turns the kept singular triplets (left m×k', right n×k',
// values s, k' ≤ r) into the rank-r pair B1 = left·√s (m×r) and B2 =
// √s·rightᵀ (r×n), row-major; components past k' stay 0.
func splitTriplets(left, right *mat.Dense, s []float64, r int) (b1, b2 []float64) {
	m, _ := left.Dims()
	n, _ := right.Dims()
	b1, b2 = make([]float64, m*r), make([]float64, r*n)
	for q := 0; q < r && q < len(s); q++ {
		sq := math.Sqrt(s[q])
		for row := 0; row < m; row++ {
			b1[row*r+q] = left.At(row, q) * sq
		}
		for col := 0; col < n; col++ {
			b2[q*n+col] = right.At(col, q) * sq
		}
	}
	return b1, b2
}

// transposed returns cᵀ as a new dense matrix, copied in 32×32 tiles
// (gonum's CloneFrom of a transposed view copies with a stride of one row
// per element).
func transposed(c *mat.Dense) *mat.Dense {
	r, k := c.Dims()
	src := c.RawMatrix()
	dst := make([]float64, k*r)
	const tile = 32
	for i0 := 0; i0 < r; i0 += tile {
		for j0 := 0; j0 < k; j0 += tile {
			for i := i0; i < min(i0+tile, r); i++ {
				row := src.Data[i*src.Stride:]
				for j := j0; j < min(j0+tile, k); j++ {
					dst[j*r+i] = row[j]
				}
			}
		}
	}
	return mat.NewDense(k, r, dst)
}

// topSingular returns the r largest singular values of c (c1×c2) and their
// left and right singular vectors (c1×r', c2×r', r' = min(r, c1, c2)),
// from the eigendecomposition of the smaller of cᵀc and c·cᵀ: only r of
// them are needed, and a full SVD of a 768×192 core spent most of its time
// rotating all 192 pairs of vectors. The other side's vectors follow as
// c·v/σ (or cᵀ·u/σ); a zero σ leaves its vectors 0, which the truncation
// multiplies by √σ = 0 anyway.
func topSingular(c *mat.Dense, r int) (u, v *mat.Dense, s []float64, err error) {
	c1, c2 := c.Dims()
	tall := c1 >= c2
	raw := c.RawMatrix()
	var g []float64
	n := c1
	if tall { // cᵀc from the rows of cᵀ
		t := transposed(c).RawMatrix()
		n, g = c2, compute.SymGram64(t.Data, c2, c1, t.Stride)
	} else { // c·cᵀ
		g = compute.SymGram64(raw.Data, c1, c2, raw.Stride)
	}
	vals, small, ok := topEigen(g, n, r) // small: the Gram side's vectors, largest first
	if !ok {
		return nil, nil, nil, fmt.Errorf("eigendecomposition of the %d×%d Gram matrix of a %d×%d core failed", n, n, c1, c2)
	}
	s = make([]float64, len(vals))
	for q, l := range vals {
		s[q] = math.Sqrt(math.Max(l, 0))
	}
	var other mat.Dense // the other side: c·v or cᵀ·u, then divided by σ
	if tall {
		other.Mul(c, small)
	} else {
		other.Mul(c.T(), small)
	}
	o := other.RawMatrix()
	for q, sq := range s {
		inv := 0.0
		if sq > 0 {
			inv = 1 / sq
		}
		for i := 0; i < o.Rows; i++ {
			o.Data[i*o.Stride+q] *= inv
		}
	}
	if tall {
		return &other, small, s, nil
	}
	return small, &other, s, nil
}

// householder is an m×k matrix's QR in LAPACK's compact form (the
// reflectors below R's diagonal, and their scales), or, for a wide matrix
// (m < k), Q = I.
type householder struct {
	a    blas64.General
	tau  []float64
	wide bool
	m    int
}

// householderQR factors a (m×k) as Q·R: R is min(m,k)×k (a itself when
// wide). a is overwritten by the reflectors (the callers' stacked factors
// are temporaries: copying them took an eighth of kron-exact's time).
func householderQR(a *mat.Dense) (*householder, *mat.Dense) {
	m, k := a.Dims()
	if m < k {
		return &householder{wide: true, m: m}, a
	}
	g := a.RawMatrix()
	tau := make([]float64, k)
	work := make([]float64, 1)
	lapack64.Geqrf(g, tau, work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Geqrf(g, tau, work, len(work))
	r := mat.NewDense(k, k, nil)
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			r.Set(i, j, g.Data[i*g.Stride+j])
		}
	}
	return &householder{a: g, tau: tau, m: m}, r
}

// mulQ returns Q·x for x with min(m,k) rows (the thin Q's columns applied),
// an m × cols matrix.
func (h *householder) mulQ(x *mat.Dense) *mat.Dense {
	xr, xc := x.Dims()
	out := mat.NewDense(h.m, xc, nil)
	out.Slice(0, xr, 0, xc).(*mat.Dense).Copy(x)
	if h.wide {
		return out
	}
	c := out.RawMatrix()
	work := make([]float64, 1)
	lapack64.Ormqr(blas.Left, blas.NoTrans, h.a, h.tau, c, work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Ormqr(blas.Left, blas.NoTrans, h.a, h.tau, c, work, len(work))
	return out
}

package adapter

import (
	"math/rand/v2"

	"github.com/kronfed/kronfed/compute"
)

// Kron is a Kron-LoRA adapter: ΔW = A ⊗ (B1·B2), scaled by alpha/r.
type Kron struct {
	Shape KronShape
	Alpha float32

	A  []float32 // dA2×dA1
	B1 []float32 // dB2×r
	B2 []float32 // r×dB1

	GradA, GradB1, GradB2 []float32 // same shapes as the factors
}

// NewKron allocates a Kron-LoRA adapter with PEFT LoKr's initialization:
// A = 0 (so ΔW = 0 and training starts from the frozen model), B1 and B2
// Kaiming-uniform with a = √5. rng seeds the initialization.
func NewKron(shape KronShape, alpha float32, rng *rand.Rand) (*Kron, error) {
	if err := shape.Validate(); err != nil {
		return nil, err
	}
	k := newKronZero(shape, alpha)
	kaimingUniform(k.B1, shape.Rank, rng)
	kaimingUniform(k.B2, shape.DB1(), rng)
	return k, nil
}

// newKronZero allocates all-zero factors for a validated shape.
func newKronZero(shape KronShape, alpha float32) *Kron {
	r, dA2, dB1, dB2 := shape.Rank, shape.DA2, shape.DB1(), shape.DB2()
	return newKronWith(shape, alpha, make([]float32, dA2*KronDA1), make([]float32, dB2*r), make([]float32, r*dB1))
}

// newKronWith wraps factors of a validated shape (a: dA2×2, b1: dB2×r,
// b2: r×dB1, row-major; not copied) with zero gradients.
func newKronWith(shape KronShape, alpha float32, a, b1, b2 []float32) *Kron {
	return &Kron{Shape: shape, Alpha: alpha, A: a, B1: b1, B2: b2,
		GradA: make([]float32, len(a)), GradB1: make([]float32, len(b1)), GradB2: make([]float32, len(b2))}
}

func (k *Kron) Kind() Kind            { return KindKron }
func (k *Kron) Dims() (dOut, dIn int) { return k.Shape.DOut, k.Shape.DIn }
func (k *Kron) Rank() int             { return k.Shape.Rank }
func (k *Kron) Scale() float32        { return k.Alpha / float32(k.Shape.Rank) }
func (k *Kron) NumParams() int        { return k.Shape.Params() }
func (k *Kron) ZeroGrad()             { clear(k.GradA); clear(k.GradB1); clear(k.GradB2) }
func (k *Kron) String() string        { return k.Shape.String() }
func (k *Kron) dims() (r, dA2, dB2, dB1 int) {
	return k.Shape.Rank, k.Shape.DA2, k.Shape.DB2(), k.Shape.DB1()
}

func (k *Kron) Factors() []Factor {
	r, dA2, dB2, dB1 := k.dims()
	return []Factor{
		{Name: "A", Rows: dA2, Cols: KronDA1, Data: k.A, Grad: k.GradA},
		{Name: "B1", Rows: dB2, Cols: r, Data: k.B1, Grad: k.GradB1},
		{Name: "B2", Rows: r, Cols: dB1, Data: k.B2, Grad: k.GradB2},
	}
}

// Forward adds scale·ΔW·dropout(x) to y without forming ΔW. Per token t,
// with X_t = x_t reshaped to dA1×dB1, the adapter output reshaped to dA2×dB2 is
// A·(X_t·B2ᵀ)·B1ᵀ. Associating as (A·T_t)·B1ᵀ turns both big products into
// single GEMMs over the batch, leaving only a tiny per-token mix:
//
//	Xs  = x seen as (n·dA1)×dB1         (token t's X_t is rows t·dA1 …)
//	T   = Xs·B2ᵀ                         (n·dA1)×r      GEMM
//	M_t = A·T_t                          dA2×r per token, stacked (n·dA2)×r
//	y  += scale·M·B1ᵀ                    (n·dA2)×dB2 = y seen as n×d_out   GEMM
//
// Its cost, 2·n·r·(d_in + d_out) flops, equals LoRA-r's.
func (k *Kron) Forward(x []float32, n int, y []float32, acts *Acts, drop *Dropout) {
	r, dA2, dB2, dB1 := k.dims()
	checkBatch("x", x, n, k.Shape.DIn)
	checkBatch("y", y, n, k.Shape.DOut)
	xs := acts.input(x, n, k.Shape.DIn, drop)
	acts.H = grow(acts.H, n*KronDA1*r)
	acts.U = grow(acts.U, n*dA2*r)
	compute.Gemm(compute.NoTrans, compute.Trans, n*KronDA1, r, dB1, 1, xs, dB1, k.B2, dB1, 0, acts.H, r)
	k.mixTokens(acts.H, acts.U, n)
	compute.Gemm(compute.NoTrans, compute.Trans, n*dA2, dB2, r, k.Scale(), acts.U, r, k.B1, r, 1, y, dB2)
}

// mixTokens sets M_t = A·T_t for every token: t (n·dA1)×r, m (n·dA2)×r.
func (k *Kron) mixTokens(t, m []float32, n int) {
	r, dA2 := k.Shape.Rank, k.Shape.DA2
	for tok := 0; tok < n; tok++ {
		t0 := t[(tok*KronDA1)*r : (tok*KronDA1+1)*r]
		t1 := t[(tok*KronDA1+1)*r : (tok*KronDA1+2)*r]
		for i := 0; i < dA2; i++ {
			a0, a1 := k.A[i*KronDA1], k.A[i*KronDA1+1]
			mi := m[(tok*dA2+i)*r : (tok*dA2+i+1)*r]
			for c := range mi {
				mi[c] = a0*t0[c] + a1*t1[c]
			}
		}
	}
}

// Backward accumulates dA, dB1, dB2 and adds the adapter's ∂L/∂x to dx. With
// dy seen as (n·dA2)×dB2:
//
//	dM   = scale·dy·B1                   (n·dA2)×r      GEMM
//	dB1 += scale·dyᵀ·M                   dB2×r          GEMM
//	dA  += Σ_t dM_t·T_tᵀ                 dA2×dA1        per token, tiny
//	dT_t = Aᵀ·dM_t                       dA1×r per token, stacked (n·dA1)×r
//	dB2 += dTᵀ·Xs                        r×dB1          GEMM
//	dXs  = dT·B2                         (n·dA1)×dB1 = n×d_in, through dropout   GEMM
func (k *Kron) Backward(dy []float32, acts *Acts, dx []float32) {
	r, dA2, dB2, dB1 := k.dims()
	n := acts.N
	checkBatch("dy", dy, n, k.Shape.DOut)
	s := k.Scale()
	acts.dU = grow(acts.dU, n*dA2*r)     // dM
	acts.dH = grow(acts.dH, n*KronDA1*r) // dT
	compute.Gemm(compute.NoTrans, compute.NoTrans, n*dA2, r, dB2, s, dy, dB2, k.B1, r, 0, acts.dU, r)
	compute.Gemm(compute.Trans, compute.NoTrans, dB2, r, n*dA2, s, dy, dB2, acts.U, r, 1, k.GradB1, r)
	k.unmixTokens(acts.H, acts.dU, acts.dH, n)
	compute.Gemm(compute.Trans, compute.NoTrans, r, dB1, n*KronDA1, 1, acts.dH, r, acts.X, dB1, 1, k.GradB2, dB1)
	if dx == nil {
		return
	}
	checkBatch("dx", dx, n, k.Shape.DIn)
	if !acts.mask.Active() {
		// No dropout: accumulate straight into dx.
		compute.Gemm(compute.NoTrans, compute.NoTrans, n*KronDA1, dB1, r, 1, acts.dH, r, k.B2, dB1, 1, dx, dB1)
		return
	}
	acts.dX = grow(acts.dX, n*k.Shape.DIn)
	compute.Gemm(compute.NoTrans, compute.NoTrans, n*KronDA1, dB1, r, 1, acts.dH, r, k.B2, dB1, 0, acts.dX, dB1)
	acts.inputGrad(acts.dX, dx)
}

// unmixTokens is mixTokens' backward: given T ((n·dA1)×r) and dM ((n·dA2)×r)
// it accumulates dA += Σ_t dM_t·T_tᵀ and sets dT_t = Aᵀ·dM_t.
func (k *Kron) unmixTokens(t, dm, dt []float32, n int) {
	r, dA2 := k.Shape.Rank, k.Shape.DA2
	for tok := 0; tok < n; tok++ {
		t0 := t[(tok*KronDA1)*r : (tok*KronDA1+1)*r]
		t1 := t[(tok*KronDA1+1)*r : (tok*KronDA1+2)*r]
		dt0 := dt[(tok*KronDA1)*r : (tok*KronDA1+1)*r]
		dt1 := dt[(tok*KronDA1+1)*r : (tok*KronDA1+2)*r]
		clear(dt0)
		clear(dt1)
		for i := 0; i < dA2; i++ {
			a0, a1 := k.A[i*KronDA1], k.A[i*KronDA1+1]
			dmi := dm[(tok*dA2+i)*r : (tok*dA2+i+1)*r]
			var g0, g1 float32
			for c, g := range dmi {
				g0 += g * t0[c]
				g1 += g * t1[c]
				dt0[c] += a0 * g
				dt1[c] += a1 * g
			}
			k.GradA[i*KronDA1] += g0
			k.GradA[i*KronDA1+1] += g1
		}
	}
}

// B returns B1·B2 (dB2×dB1).
func (k *Kron) B() []float32 {
	r, _, dB2, dB1 := k.dims()
	b := make([]float32, dB2*dB1)
	compute.Gemm(compute.NoTrans, compute.NoTrans, dB2, dB1, r, 1, k.B1, r, k.B2, dB1, 0, b, dB1)
	return b
}

// MergeInto adds sign·scale·A⊗(B1·B2) to w (d_out×d_in). It forms B1·B2 once
// (dB2×dB1, a 1/(dA1·dA2) part of W) and scatters its scaled copies.
func (k *Kron) MergeInto(w []float32, sign float32) {
	_, dA2, dB2, dB1 := k.dims()
	dIn := k.Shape.DIn
	checkBatch("w", w, k.Shape.DOut, dIn)
	b := k.B()
	s := sign * k.Scale()
	for i := 0; i < dA2; i++ {
		for j := 0; j < KronDA1; j++ {
			a := s * k.A[i*KronDA1+j]
			if a == 0 {
				continue
			}
			for kk := 0; kk < dB2; kk++ {
				row := w[(i*dB2+kk)*dIn+j*dB1 : (i*dB2+kk)*dIn+(j+1)*dB1]
				compute.Axpy(a, b[kk*dB1:(kk+1)*dB1], row)
			}
		}
	}
}

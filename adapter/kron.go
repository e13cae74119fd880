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
	return &Kron{
		Shape: shape, Alpha: alpha,
		A: make([]float32, dA2*KronDA1), B1: make([]float32, dB2*r), B2: make([]float32, r*dB1),
		GradA: make([]float32, dA2*KronDA1), GradB1: make([]float32, dB2*r), GradB2: make([]float32, r*dB1),
	}
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

// Forward adds scale·ΔW·dropout(x) to y without forming ΔW.
//
//	x: n×DIn, seen as Xs = (n·dA1)×dB1 (token t's X is rows t·dA1 … t·dA1+1)
//	T = Xs·B2ᵀ   (n·dA1)×r
//	U = T·B1ᵀ    (n·dA1)×dB2
//	y_t[i·dB2 : (i+1)·dB2] += scale · Σ_j A[i,j]·U[t·dA1+j, :]
func (k *Kron) Forward(x []float32, n int, y []float32, acts *Acts, drop *Dropout) {
	r, dA2, dB2, dB1 := k.dims()
	checkBatch("x", x, n, k.Shape.DIn)
	checkBatch("y", y, n, k.Shape.DOut)
	xs := acts.input(x, n, k.Shape.DIn, drop)
	rows := n * KronDA1
	acts.H = grow(acts.H, rows*r)
	acts.U = grow(acts.U, rows*dB2)
	compute.Gemm(compute.NoTrans, compute.Trans, rows, r, dB1, 1, xs, dB1, k.B2, dB1, 0, acts.H, r)
	compute.Gemm(compute.NoTrans, compute.Trans, rows, dB2, r, 1, acts.H, r, k.B1, r, 0, acts.U, dB2)
	s := k.Scale()
	dOut := k.Shape.DOut
	for t := 0; t < n; t++ {
		u0 := acts.U[(t*KronDA1)*dB2 : (t*KronDA1+1)*dB2]
		u1 := acts.U[(t*KronDA1+1)*dB2 : (t*KronDA1+2)*dB2]
		yt := y[t*dOut : (t+1)*dOut]
		for i := 0; i < dA2; i++ {
			a0, a1 := s*k.A[i*KronDA1], s*k.A[i*KronDA1+1]
			if a0 == 0 && a1 == 0 {
				continue
			}
			compute.Axpy2(a0, u0, a1, u1, yt[i*dB2:(i+1)*dB2])
		}
	}
}

// Backward accumulates dA, dB1, dB2 and adds the adapter's ∂L/∂x to dx.
//
//	G_t = scale·reshape(dy_t, dA2×dB2)
//	dA  += Σ_t G_t·U_tᵀ                 dA2×dA1
//	dU_t = Aᵀ·G_t                        dA1×dB2, stacked (n·dA1)×dB2
//	dB1 += dUᵀ·T                         dB2×r
//	dT   = dU·B1                         (n·dA1)×r
//	dB2 += dTᵀ·Xs                        r×dB1
//	dXs  = dT·B2                         (n·dA1)×dB1 = n×DIn, then through dropout
func (k *Kron) Backward(dy []float32, acts *Acts, dx []float32) {
	r, dA2, dB2, dB1 := k.dims()
	n := acts.N
	checkBatch("dy", dy, n, k.Shape.DOut)
	rows := n * KronDA1
	s := k.Scale()
	dOut := k.Shape.DOut
	acts.dU = grow(acts.dU, rows*dB2)
	clear(acts.dU)
	for t := 0; t < n; t++ {
		u0 := acts.U[(t*KronDA1)*dB2 : (t*KronDA1+1)*dB2]
		u1 := acts.U[(t*KronDA1+1)*dB2 : (t*KronDA1+2)*dB2]
		du0 := acts.dU[(t*KronDA1)*dB2 : (t*KronDA1+1)*dB2]
		du1 := acts.dU[(t*KronDA1+1)*dB2 : (t*KronDA1+2)*dB2]
		dyt := dy[t*dOut : (t+1)*dOut]
		for i := 0; i < dA2; i++ {
			g := dyt[i*dB2 : (i+1)*dB2]
			k.GradA[i*KronDA1] += s * compute.Dot(g, u0)
			k.GradA[i*KronDA1+1] += s * compute.Dot(g, u1)
			if a0 := s * k.A[i*KronDA1]; a0 != 0 {
				compute.Axpy(a0, g, du0)
			}
			if a1 := s * k.A[i*KronDA1+1]; a1 != 0 {
				compute.Axpy(a1, g, du1)
			}
		}
	}
	acts.dH = grow(acts.dH, rows*r)
	compute.Gemm(compute.Trans, compute.NoTrans, dB2, r, rows, 1, acts.dU, dB2, acts.H, r, 1, k.GradB1, r)
	compute.Gemm(compute.NoTrans, compute.NoTrans, rows, r, dB2, 1, acts.dU, dB2, k.B1, r, 0, acts.dH, r)
	compute.Gemm(compute.Trans, compute.NoTrans, r, dB1, rows, 1, acts.dH, r, acts.X, dB1, 1, k.GradB2, dB1)
	if dx == nil {
		return
	}
	checkBatch("dx", dx, n, k.Shape.DIn)
	if acts.keep == nil {
		// No dropout: accumulate straight into dx.
		compute.Gemm(compute.NoTrans, compute.NoTrans, rows, dB1, r, 1, acts.dH, r, k.B2, dB1, 1, dx, dB1)
		return
	}
	acts.dX = grow(acts.dX, rows*dB1)
	compute.Gemm(compute.NoTrans, compute.NoTrans, rows, dB1, r, 1, acts.dH, r, k.B2, dB1, 0, acts.dX, dB1)
	acts.inputGrad(acts.dX, dx)
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

package adapter

import (
	"math/rand/v2"

	"github.com/kronfed/kronfed/compute"
)

// LoRA is the baseline low-rank adapter in PEFT's convention: ΔW = B·A,
// scaled by alpha/q.
type LoRA struct {
	Shape LoRAShape
	Alpha float32

	A []float32 // q×d_in   (PEFT lora_A.weight)
	B []float32 // d_out×q  (PEFT lora_B.weight)

	GradA, GradB []float32
}

// NewLoRA allocates a LoRA adapter with PEFT's initialization: A Kaiming-uniform
// (a = √5), B = 0.
func NewLoRA(shape LoRAShape, alpha float32, rng *rand.Rand) (*LoRA, error) {
	if err := shape.Validate(); err != nil {
		return nil, err
	}
	l := newLoRAZero(shape, alpha)
	kaimingUniform(l.A, shape.DIn, rng)
	return l, nil
}

func newLoRAZero(shape LoRAShape, alpha float32) *LoRA {
	q := shape.Rank
	return newLoRAWith(shape, alpha, make([]float32, q*shape.DIn), make([]float32, shape.DOut*q))
}

// newLoRAWith wraps factors of a validated shape (a: r×dIn, b: dOut×r,
// row-major; not copied) with zero gradients.
func newLoRAWith(shape LoRAShape, alpha float32, a, b []float32) *LoRA {
	return &LoRA{Shape: shape, Alpha: alpha, A: a, B: b, GradA: make([]float32, len(a)), GradB: make([]float32, len(b))}
}

func (l *LoRA) Kind() Kind            { return KindLoRA }
func (l *LoRA) Dims() (dOut, dIn int) { return l.Shape.DOut, l.Shape.DIn }
func (l *LoRA) Rank() int             { return l.Shape.Rank }
func (l *LoRA) Scale() float32        { return l.Alpha / float32(l.Shape.Rank) }
func (l *LoRA) NumParams() int        { return l.Shape.Params() }
func (l *LoRA) ZeroGrad()             { clear(l.GradA); clear(l.GradB) }
func (l *LoRA) String() string        { return l.Shape.String() }

func (l *LoRA) Factors() []Factor {
	q := l.Shape.Rank
	return []Factor{
		{Name: "A", Rows: q, Cols: l.Shape.DIn, Data: l.A, Grad: l.GradA},
		{Name: "B", Rows: l.Shape.DOut, Cols: q, Data: l.B, Grad: l.GradB},
	}
}

// Forward adds scale·B·A·dropout(x) to y.
//
//	H = X·Aᵀ           n×q
//	y += scale·H·Bᵀ    n×d_out
func (l *LoRA) Forward(x []float32, n int, y []float32, acts *Acts, drop *Dropout) {
	q, dOut, dIn := l.Shape.Rank, l.Shape.DOut, l.Shape.DIn
	checkBatch("x", x, n, dIn)
	checkBatch("y", y, n, dOut)
	xs := acts.input(x, n, dIn, drop)
	acts.H = grow(acts.H, n*q)
	compute.Gemm(compute.NoTrans, compute.Trans, n, q, dIn, 1, xs, dIn, l.A, dIn, 0, acts.H, q)
	compute.Gemm(compute.NoTrans, compute.Trans, n, dOut, q, l.Scale(), acts.H, q, l.B, q, 1, y, dOut)
}

// Backward accumulates dA and dB and adds ∂L/∂x to dx.
//
//	G   = scale·dy     n×d_out (the scale is folded into the GEMMs' alpha)
//	dB += Gᵀ·H         d_out×q
//	dH  = G·B          n×q
//	dA += dHᵀ·X        q×d_in
//	dX  = dH·A         n×d_in, then through dropout
func (l *LoRA) Backward(dy []float32, acts *Acts, dx []float32) {
	q, dOut, dIn := l.Shape.Rank, l.Shape.DOut, l.Shape.DIn
	n := acts.N
	checkBatch("dy", dy, n, dOut)
	s := l.Scale()
	acts.dH = grow(acts.dH, n*q)
	compute.Gemm(compute.Trans, compute.NoTrans, dOut, q, n, s, dy, dOut, acts.H, q, 1, l.GradB, q)
	compute.Gemm(compute.NoTrans, compute.NoTrans, n, q, dOut, s, dy, dOut, l.B, q, 0, acts.dH, q)
	compute.Gemm(compute.Trans, compute.NoTrans, q, dIn, n, 1, acts.dH, q, acts.X, dIn, 1, l.GradA, dIn)
	if dx == nil {
		return
	}
	checkBatch("dx", dx, n, dIn)
	if !acts.mask.Active() {
		compute.Gemm(compute.NoTrans, compute.NoTrans, n, dIn, q, 1, acts.dH, q, l.A, dIn, 1, dx, dIn)
		return
	}
	acts.dX = grow(acts.dX, n*dIn)
	compute.Gemm(compute.NoTrans, compute.NoTrans, n, dIn, q, 1, acts.dH, q, l.A, dIn, 0, acts.dX, dIn)
	acts.inputGrad(acts.dX, dx)
}

// MergeInto adds sign·scale·B·A to w (d_out×d_in) with one GEMM.
func (l *LoRA) MergeInto(w []float32, sign float32) {
	q, dOut, dIn := l.Shape.Rank, l.Shape.DOut, l.Shape.DIn
	checkBatch("w", w, dOut, dIn)
	compute.Gemm(compute.NoTrans, compute.NoTrans, dOut, dIn, q, sign*l.Scale(), l.B, q, l.A, dIn, 1, w, dIn)
}

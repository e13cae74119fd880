package adapter

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/kronfed/kronfed/adapter/quant"
)

// QuantizeLayer quantizes every factor of l with exactly the scheme s and
// returns a new layer holding the dequantized factors (what the receiver of an
// upload quantized with s sees). Unlike Encode it applies s literally: Encode,
// and so an upload, stores a tall factor per-column when s is per-row (see
// FactorScheme).
func QuantizeLayer(l Layer, s quant.Scheme, rng *rand.Rand) (Layer, error) {
	var out Layer
	switch l := l.(type) {
	case *Kron:
		out = newKronZero(l.Shape, l.Alpha)
	case *LoRA:
		out = newLoRAZero(l.Shape, l.Alpha)
	default:
		return nil, fmt.Errorf("quantize: unknown layer type %T", l)
	}
	dst := out.Factors()
	for i, f := range l.Factors() {
		m, err := quant.Quantize(f.Data, f.Rows, f.Cols, s, rng)
		if err != nil {
			return nil, fmt.Errorf("factor %s: %w", f.Name, err)
		}
		if err := m.DequantizeInto(dst[i].Data); err != nil {
			return nil, fmt.Errorf("factor %s: %w", f.Name, err)
		}
	}
	return out, nil
}

// QuantError is how much quantizing a layer's factors moves its ΔW.
type QuantError struct {
	// MaxAbs is ‖F‖max of each factor, in Factors() order.
	MaxAbs []float64
	// Bound is the paper's step-size bound on the entries of the unscaled ΔW:
	// Kron-LoRA 2·r·‖A‖max·‖B1‖max·‖B2‖max/(2^b−1), LoRA 2·q·‖B‖max·‖A‖max/(2^b−1).
	Bound float64
	// Norm is ‖ΔW‖F and Err is ‖ΔW − ΔW_q‖F, both of the unscaled ΔW, computed
	// exactly in float64 from the factors (ΔW is never formed).
	Norm, Err float64
}

// FrobBound is Bound in the units of Err: an entrywise bound b on a
// d_out×d_in ΔW bounds its Frobenius error by b·√(d_out·d_in).
func (e QuantError) FrobBound(dOut, dIn int) float64 {
	return e.Bound * math.Sqrt(float64(dOut)*float64(dIn))
}

// Rel is the relative Frobenius error ‖ΔW − ΔW_q‖F / ‖ΔW‖F (0 when ΔW = 0).
func (e QuantError) Rel() float64 {
	if e.Norm == 0 {
		return 0
	}
	return e.Err / e.Norm
}

// MeasureQuantError compares a layer with its quantized copy (same type and
// shape, e.g. from QuantizeLayer) at the given bit width.
//
// For Kron-LoRA it uses ⟨A⊗B, C⊗D⟩ = ⟨A,C⟩·⟨B,D⟩ and, for the low-rank products,
// ⟨B1·B2, C1·C2⟩ = tr((B1ᵀC1)·(C2·B2ᵀ)) with r×r Gram matrices, so the cost is
// O(params·r) even for a 32000×4096 lm_head.
func MeasureQuantError(l, q Layer, bits int) (QuantError, error) {
	var e QuantError
	levels := math.Exp2(float64(bits)) - 1
	for _, f := range l.Factors() {
		e.MaxAbs = append(e.MaxAbs, maxAbs(f.Data))
	}
	switch l := l.(type) {
	case *Kron:
		qk, ok := q.(*Kron)
		if !ok || qk.Shape != l.Shape {
			return e, fmt.Errorf("quant error: %v compared with %v", l, q)
		}
		r, _, dB2, dB1 := l.dims()
		e.Bound = 2 * float64(r) * e.MaxAbs[0] * e.MaxAbs[1] * e.MaxAbs[2] / levels
		aa, aq, qq := dot64(l.A, l.A), dot64(l.A, qk.A), dot64(qk.A, qk.A)
		bb := LowRankInner(l.B1, l.B2, l.B1, l.B2, dB2, r, dB1)
		bq := LowRankInner(l.B1, l.B2, qk.B1, qk.B2, dB2, r, dB1)
		qbqb := LowRankInner(qk.B1, qk.B2, qk.B1, qk.B2, dB2, r, dB1)
		e.Norm = math.Sqrt(math.Max(aa*bb, 0))
		e.Err = math.Sqrt(math.Max(aa*bb+qq*qbqb-2*aq*bq, 0))
	case *LoRA:
		ql, ok := q.(*LoRA)
		if !ok || ql.Shape != l.Shape {
			return e, fmt.Errorf("quant error: %v compared with %v", l, q)
		}
		k, dOut, dIn := l.Shape.Rank, l.Shape.DOut, l.Shape.DIn
		e.Bound = 2 * float64(k) * e.MaxAbs[0] * e.MaxAbs[1] / levels
		ww := LowRankInner(l.B, l.A, l.B, l.A, dOut, k, dIn)
		wq := LowRankInner(l.B, l.A, ql.B, ql.A, dOut, k, dIn)
		qq := LowRankInner(ql.B, ql.A, ql.B, ql.A, dOut, k, dIn)
		e.Norm = math.Sqrt(math.Max(ww, 0))
		e.Err = math.Sqrt(math.Max(ww+qq-2*wq, 0))
	default:
		return e, fmt.Errorf("quant error: unknown layer type %T", l)
	}
	return e, nil
}

// LowRankInner returns ⟨U1·V1, U2·V2⟩ = tr((U1ᵀ·U2)·(V2·V1ᵀ)) in float64, with
// U1, U2 m×r and V1, V2 r×n.
func LowRankInner(u1, v1, u2, v2 []float32, m, r, n int) float64 {
	gu := make([]float64, r*r) // U1ᵀ·U2
	gv := make([]float64, r*r) // V2·V1ᵀ
	for i := 0; i < m; i++ {
		for a := 0; a < r; a++ {
			x := float64(u1[i*r+a])
			for b := 0; b < r; b++ {
				gu[a*r+b] += x * float64(u2[i*r+b])
			}
		}
	}
	for b := 0; b < r; b++ {
		for a := 0; a < r; a++ {
			gv[b*r+a] = dot64(v2[b*n:(b+1)*n], v1[a*n:(a+1)*n])
		}
	}
	var tr float64
	for a := 0; a < r; a++ {
		for b := 0; b < r; b++ {
			tr += gu[a*r+b] * gv[b*r+a]
		}
	}
	return tr
}

func dot64(x, y []float32) float64 {
	var s float64
	for i, v := range x {
		s += float64(v) * float64(y[i])
	}
	return s
}

func maxAbs(x []float32) float64 {
	var m float64
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

package adapter

import (
	"fmt"
	"math"
)

// Arithmetic on whole Sets, tensor by tensor over Params (every module's
// factors, then the dense tensors), as aggregation and the round's update
// Δ = local − global need it. Operands must have the same shape (SameShape);
// a mismatch is a programming error and panics. Each result element is
// computed in float64 and rounded once to float32, which for Add and Sub is
// exactly float32 addition and subtraction.

// Add sets s = s + o and returns s.
func (s *Set) Add(o *Set) *Set { return s.AddScaled(1, o) }

// Sub sets s = s − o and returns s.
func (s *Set) Sub(o *Set) *Set { return s.AddScaled(-1, o) }

// AddScaled sets s = s + a·o and returns s.
func (s *Set) AddScaled(a float64, o *Set) *Set {
	ps, os := s.Params(), o.Params()
	mustMatch(ps, os)
	for i := range ps {
		for j, v := range os[i].Data {
			ps[i].Data[j] = float32(float64(ps[i].Data[j]) + a*float64(v))
		}
	}
	return s
}

// Scale sets s = f·s and returns s.
func (s *Set) Scale(f float64) *Set {
	for _, p := range s.Params() {
		for j, v := range p.Data {
			p.Data[j] = float32(f * float64(v))
		}
	}
	return s
}

// Norm is the L2 norm of the whole Set — every factor of every module and
// every dense tensor taken as one vector — computed in float64.
func (s *Set) Norm() float64 { return ParamsNorm(s.Params()) }

// ParamsNorm is the L2 norm of tensors taken as one vector, in float64.
func ParamsNorm(ps []Factor) float64 {
	var ss float64
	for _, p := range ps {
		for _, v := range p.Data {
			ss += float64(v) * float64(v)
		}
	}
	return math.Sqrt(ss)
}

func mustMatch(a, b []Factor) {
	if len(a) != len(b) {
		panic(fmt.Sprintf("adapter: arithmetic on Sets of %d and %d tensors", len(a), len(b)))
	}
	for i := range a {
		if len(a[i].Data) != len(b[i].Data) {
			panic(fmt.Sprintf("adapter: arithmetic on %s of %d and %d elements", a[i].Name, len(a[i].Data), len(b[i].Data)))
		}
	}
}

// MaxAbsDiff is the largest |a − b| over two sets' parameters (+Inf when
// their shapes differ).
func MaxAbsDiff(a, b *Set) float64 {
	if a.SameShape(b) != nil {
		return math.Inf(1)
	}
	pa, pb := a.Params(), b.Params()
	var worst float64
	for i := range pa {
		for j, x := range pa[i].Data {
			worst = max(worst, math.Abs(float64(x)-float64(pb[i].Data[j])))
		}
	}
	return worst
}

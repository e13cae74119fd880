package adapter

import (
	"fmt"
	"math"
)

// KronDA1 is the number of columns of the Kronecker factor A: the paper fixes
// dA1 = 2, so every adapted layer must have an even d_in.
const KronDA1 = 2

// KronShape is the geometry of one Kron-LoRA adapter on a d_out×d_in layer.
type KronShape struct {
	DOut, DIn int // the frozen layer's output and input sizes
	DA2       int // rows of A; divides DOut
	Rank      int // r: the inner rank of B1·B2
}

// NewKronShape validates a Kron-LoRA geometry: dA2 must divide d_out, d_in must
// be divisible by dA1 = 2, and the rank must be positive.
func NewKronShape(dOut, dIn, dA2, rank int) (KronShape, error) {
	s := KronShape{DOut: dOut, DIn: dIn, DA2: dA2, Rank: rank}
	return s, s.Validate()
}

// Validate reports why the geometry cannot be built, if it cannot.
func (s KronShape) Validate() error {
	switch {
	case s.DOut <= 0 || s.DIn <= 0:
		return fmt.Errorf("kron-lora shape %d×%d: layer sizes must be positive", s.DOut, s.DIn)
	case s.DA2 <= 0:
		return fmt.Errorf("kron-lora shape %d×%d: dA2 = %d must be positive", s.DOut, s.DIn, s.DA2)
	case s.DOut%s.DA2 != 0:
		return fmt.Errorf("kron-lora shape %d×%d: dA2 = %d does not divide d_out = %d", s.DOut, s.DIn, s.DA2, s.DOut)
	case s.DIn%KronDA1 != 0:
		return fmt.Errorf("kron-lora shape %d×%d: d_in = %d is not divisible by dA1 = %d", s.DOut, s.DIn, s.DIn, KronDA1)
	case s.Rank <= 0:
		return fmt.Errorf("kron-lora shape %d×%d: rank %d must be positive", s.DOut, s.DIn, s.Rank)
	}
	return nil
}

// DA1 is the number of columns of A (always KronDA1).
func (s KronShape) DA1() int { return KronDA1 }

// DB2 is the number of rows of B1 (and of B = B1·B2): d_out / dA2.
func (s KronShape) DB2() int { return s.DOut / s.DA2 }

// DB1 is the number of columns of B2 (and of B): d_in / dA1.
func (s KronShape) DB1() int { return s.DIn / KronDA1 }

// Params is dA2·dA1 + r·(dB2 + dB1), the trainable parameters of the layer.
func (s KronShape) Params() int { return s.DA2*KronDA1 + s.Rank*(s.DB2()+s.DB1()) }

func (s KronShape) String() string {
	return fmt.Sprintf("kron(%d×%d, dA2=%d, r=%d)", s.DOut, s.DIn, s.DA2, s.Rank)
}

// LoRAShape is the geometry of one LoRA adapter (PEFT convention ΔW = B·A,
// A: q×d_in, B: d_out×q).
type LoRAShape struct {
	DOut, DIn int
	Rank      int // q
}

// NewLoRAShape validates a LoRA geometry.
func NewLoRAShape(dOut, dIn, rank int) (LoRAShape, error) {
	s := LoRAShape{DOut: dOut, DIn: dIn, Rank: rank}
	return s, s.Validate()
}

// Validate reports why the geometry cannot be built, if it cannot.
func (s LoRAShape) Validate() error {
	switch {
	case s.DOut <= 0 || s.DIn <= 0:
		return fmt.Errorf("lora shape %d×%d: layer sizes must be positive", s.DOut, s.DIn)
	case s.Rank <= 0:
		return fmt.Errorf("lora shape %d×%d: rank %d must be positive", s.DOut, s.DIn, s.Rank)
	}
	return nil
}

// Params is q·(d_in + d_out).
func (s LoRAShape) Params() int { return s.Rank * (s.DIn + s.DOut) }

func (s LoRAShape) String() string {
	return fmt.Sprintf("lora(%d×%d, q=%d)", s.DOut, s.DIn, s.Rank)
}

// DefaultDA2 is the paper's per-model choice of dA2: the divisor of the hidden
// size closest to hidden/200 (DistilBERT 768 → 4, Mistral-7B 4096 → 16), but
// at least 2 where the hidden size is even. Ties go to the smaller divisor.
// It returns 0 for a non-positive hidden size.
//
// The floor departs from the paper's rule, which gives dA2 = 1 below a
// hidden size of 300 (kronfed-tiny's 128, stories260K's 64): A is then 1×2
// and ΔW = [a₁·B1B2, a₂·B1B2], a LoRA scaled per input half, with no
// Kronecker structure to study. dA2 = 2 is the smallest that keeps it.
func DefaultDA2(hidden int) int {
	if hidden <= 0 {
		return 0
	}
	target := max(float64(hidden)/200, 2)
	best, bestDist := 0, math.Inf(1)
	for d := 1; d <= hidden; d++ {
		if hidden%d != 0 {
			continue
		}
		if dist := math.Abs(float64(d) - target); dist < bestDist {
			best, bestDist = d, dist
		}
	}
	return best
}

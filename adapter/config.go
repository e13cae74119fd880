package adapter

import (
	"fmt"
	"math/rand/v2"
)

// Config chooses the adapter put on every targeted layer of a model.
type Config struct {
	Kind    Kind
	Rank    int     // Kron-LoRA: r of B1·B2; LoRA: q
	DA2     int     // Kron-LoRA only: rows of A; 0 means DefaultDA2(hidden size)
	Alpha   float32 // scale numerator: ΔW is multiplied by Alpha/Rank
	Dropout float32 // adapter input dropout in training
}

// DefaultConfig is the paper's setting: r = 8, alpha = 32, dropout 0.1, dA2
// chosen from the model's hidden size.
func DefaultConfig(kind Kind) Config {
	return Config{Kind: kind, Rank: 8, Alpha: 32, Dropout: 0.1}
}

// Validate checks the model-independent settings.
func (c Config) Validate() error {
	switch {
	case c.Kind != KindKron && c.Kind != KindLoRA:
		return fmt.Errorf("adapter kind %q: want kron or lora", c.Kind)
	case c.Rank <= 0:
		return fmt.Errorf("adapter rank %d must be positive", c.Rank)
	case c.Kind == KindKron && c.DA2 < 0:
		return fmt.Errorf("adapter dA2 %d must be positive (or 0 for the default)", c.DA2)
	case c.Kind == KindLoRA && c.DA2 != 0:
		return fmt.Errorf("adapter dA2 %d: dA2 applies to kron-lora only", c.DA2)
	case c.Dropout < 0 || c.Dropout >= 1:
		return fmt.Errorf("adapter dropout %v must be in [0, 1)", c.Dropout)
	case !(c.Alpha > 0):
		return fmt.Errorf("adapter alpha %v must be positive", c.Alpha)
	}
	return nil
}

// Resolve fills the model-dependent default (dA2 from the hidden size).
func (c Config) Resolve(hidden int) Config {
	if c.Kind == KindKron && c.DA2 == 0 {
		c.DA2 = DefaultDA2(hidden)
	}
	return c
}

// FactorShape is the shape of one factor matrix.
type FactorShape struct {
	Name string `json:"name"`
	Rows int    `json:"rows"`
	Cols int    `json:"cols"`
}

// Factors returns the factor shapes this configuration gives a d_out×d_in layer,
// or why it cannot adapt it. c must be resolved (dA2 set for Kron-LoRA).
func (c Config) Factors(dOut, dIn int) ([]FactorShape, error) {
	switch c.Kind {
	case KindKron:
		s, err := NewKronShape(dOut, dIn, c.DA2, c.Rank)
		if err != nil {
			return nil, err
		}
		return []FactorShape{{"A", s.DA2, KronDA1}, {"B1", s.DB2(), s.Rank}, {"B2", s.Rank, s.DB1()}}, nil
	case KindLoRA:
		s, err := NewLoRAShape(dOut, dIn, c.Rank)
		if err != nil {
			return nil, err
		}
		return []FactorShape{{"A", s.Rank, s.DIn}, {"B", s.DOut, s.Rank}}, nil
	}
	return nil, c.Validate()
}

// NewLayer builds a freshly initialized adapter for a d_out×d_in layer.
func (c Config) NewLayer(dOut, dIn int, rng *rand.Rand) (Layer, error) {
	switch c.Kind {
	case KindKron:
		s, err := NewKronShape(dOut, dIn, c.DA2, c.Rank)
		if err != nil {
			return nil, err
		}
		return NewKron(s, c.Alpha, rng)
	case KindLoRA:
		s, err := NewLoRAShape(dOut, dIn, c.Rank)
		if err != nil {
			return nil, err
		}
		return NewLoRA(s, c.Alpha, rng)
	}
	return nil, c.Validate()
}

func (c Config) String() string {
	if c.Kind == KindKron {
		return fmt.Sprintf("kron-lora (r=%d, dA2=%d, alpha=%g)", c.Rank, c.DA2, c.Alpha)
	}
	return fmt.Sprintf("lora-%d (alpha=%g)", c.Rank, c.Alpha)
}

// UploadBytes is the size of a rows×cols factor sent at the given bit width:
// packed codes plus, below 32 bits, one float32 scale per row or, for a tall
// factor, per column (FactorScheme: the symmetric scheme clients upload with
// takes its scales along the longer side).
func UploadBytes(rows, cols, bits int) int {
	if bits >= 32 {
		return rows * cols * 4
	}
	return (rows*cols*bits+7)/8 + min(rows, cols)*4
}

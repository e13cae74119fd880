package adapter

import (
	"fmt"
	"math/rand/v2"
)

// Target is a frozen linear layer to put an adapter on.
type Target struct {
	Name      string // module name in the base model, e.g. "model.layers.0.mlp.up_proj"
	DOut, DIn int
}

// Module is one adapted layer of a Set.
type Module struct {
	Name  string
	Layer Layer
}

// Dense is a tensor trained in full alongside the adapters (a task head's
// weight or bias): Rows×Cols, row-major. A bias is a 1×n Dense.
type Dense struct {
	Name       string
	Rows, Cols int
	Data, Grad []float32
}

// Set is all of a model's adapters: what a client trains, uploads and saves.
type Set struct {
	Config    Config   // resolved: DA2 is set for Kron-LoRA
	BaseModel string   // identity of the frozen base the adapters belong to
	Modules   []Module // in the base model's layer order
	Dense     []Dense  // fully trained tensors (task heads); may be empty
}

// NewSet puts a freshly initialized adapter on every target. cfg must be
// resolved (see Config.Resolve). rng seeds the initialization.
func NewSet(cfg Config, baseModel string, targets []Target, rng *rand.Rand) (*Set, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Kind == KindKron && cfg.DA2 == 0 {
		return nil, fmt.Errorf("adapter set: dA2 not resolved for kron-lora")
	}
	s := &Set{Config: cfg, BaseModel: baseModel}
	seen := make(map[string]bool, len(targets))
	for _, t := range targets {
		if seen[t.Name] {
			return nil, fmt.Errorf("adapter set: module %s listed twice", t.Name)
		}
		seen[t.Name] = true
		l, err := cfg.NewLayer(t.DOut, t.DIn, rng)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", t.Name, err)
		}
		s.Modules = append(s.Modules, Module{Name: t.Name, Layer: l})
	}
	return s, nil
}

// Layer returns the adapter on the named module, or nil.
func (s *Set) Layer(name string) Layer {
	for _, m := range s.Modules {
		if m.Name == name {
			return m.Layer
		}
	}
	return nil
}

// NumParams counts adapter factors and dense tensors.
func (s *Set) NumParams() int {
	n := 0
	for _, m := range s.Modules {
		n += m.Layer.NumParams()
	}
	for _, d := range s.Dense {
		n += d.Rows * d.Cols
	}
	return n
}

// CheckFinite returns an error naming the first module factor or dense tensor
// holding NaN or ±Inf.
func (s *Set) CheckFinite() error {
	for _, m := range s.Modules {
		if err := CheckFinite(m.Layer); err != nil {
			return fmt.Errorf("module %s: %w", m.Name, err)
		}
	}
	for _, d := range s.Dense {
		if i := firstNonFinite(d.Data); i >= 0 {
			return fmt.Errorf("tensor %s[%d,%d] is %v", d.Name, i/d.Cols, i%d.Cols, d.Data[i])
		}
	}
	return nil
}

// Params lists every trainable tensor of the Set — each module's factors
// (named "<module>.<factor>") then the dense tensors — aliasing their storage,
// in a fixed order, for optimizers, clipping and aggregation.
func (s *Set) Params() []Factor {
	var out []Factor
	for _, m := range s.Modules {
		for _, f := range m.Layer.Factors() {
			f.Name = m.Name + "." + f.Name
			out = append(out, f)
		}
	}
	for _, d := range s.Dense {
		out = append(out, Factor{Name: d.Name, Rows: d.Rows, Cols: d.Cols, Data: d.Data, Grad: d.Grad})
	}
	return out
}

// ZeroGrad clears every gradient of the Set.
func (s *Set) ZeroGrad() {
	for _, p := range s.Params() {
		clear(p.Grad)
	}
}

// Clone returns a deep copy of the Set (factors, gradients, dense tensors).
func (s *Set) Clone() *Set {
	c := &Set{Config: s.Config, BaseModel: s.BaseModel}
	for _, m := range s.Modules {
		var l Layer
		switch src := m.Layer.(type) {
		case *Kron:
			k := newKronZero(src.Shape, src.Alpha)
			l = k
		case *LoRA:
			l = newLoRAZero(src.Shape, src.Alpha)
		}
		dst := l.Factors()
		for i, f := range m.Layer.Factors() {
			copy(dst[i].Data, f.Data)
			copy(dst[i].Grad, f.Grad)
		}
		c.Modules = append(c.Modules, Module{Name: m.Name, Layer: l})
	}
	for _, d := range s.Dense {
		grad := make([]float32, len(d.Data)) // also for a Set whose gradients were released
		copy(grad, d.Grad)
		d.Data, d.Grad = append([]float32(nil), d.Data...), grad
		c.Dense = append(c.Dense, d)
	}
	return c
}

// ReleaseGrads drops the gradient buffers, halving the memory of a Set that
// is only read from now on: a decoded upload waiting for aggregation, a
// global adapter being served. Training it afterwards would fail; train a
// Clone, which has gradients again.
func (s *Set) ReleaseGrads() {
	for _, m := range s.Modules {
		switch l := m.Layer.(type) {
		case *Kron:
			l.GradA, l.GradB1, l.GradB2 = nil, nil, nil
		case *LoRA:
			l.GradA, l.GradB = nil, nil
		}
	}
	for i := range s.Dense {
		s.Dense[i].Grad = nil
	}
}

// SameShape reports why o cannot be combined with s tensor by tensor (a
// different kind, rank, module list or tensor shape), or nil.
func (s *Set) SameShape(o *Set) error {
	if s.Config.Kind != o.Config.Kind || s.Config.Rank != o.Config.Rank || s.Config.DA2 != o.Config.DA2 {
		return fmt.Errorf("adapter %v does not match %v", o.Config, s.Config)
	}
	a, b := s.Params(), o.Params()
	if len(a) != len(b) {
		return fmt.Errorf("adapter has %d tensors, want %d", len(b), len(a))
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Rows != b[i].Rows || a[i].Cols != b[i].Cols {
			return fmt.Errorf("tensor %d is %s %d×%d, want %s %d×%d", i, b[i].Name, b[i].Rows, b[i].Cols, a[i].Name, a[i].Rows, a[i].Cols)
		}
	}
	return nil
}

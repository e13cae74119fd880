package adapter

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kronfed/kronfed/compute"
	"github.com/kronfed/kronfed/safetensors"
)

// PEFT stores adapter tensors under the wrapped model's prefix.
const peftPrefix = "base_model.model."

// PEFTFactorization is PEFT LoKr's factorization(dimension, factor)
// (peft/tuners/lokr/layer.py): when factor divides dimension it returns
// (factor, dimension/factor) as they are — even when factor is the larger,
// e.g. (64, 32) → (32, 2), unlike LyCORIS's version, which swaps them —
// and otherwise the most square split m·n, m ≤ n, whose m does not exceed
// factor (factor < 0: no limit). LoKr puts A's shape at (m of d_out, m of
// d_in).
func PEFTFactorization(dimension, factor int) (m, n int) {
	if factor > 0 && dimension%factor == 0 {
		return factor, dimension / factor
	}
	if factor < 0 {
		factor = dimension
	}
	m, n = 1, dimension
	length := m + n
	for m < n {
		newM := m + 1
		for dimension%newM != 0 {
			newM++
		}
		newN := dimension / newM
		if newM+newN > length || newM > factor {
			break
		}
		m, n = newM, newN
	}
	if m > n {
		m, n = n, m
	}
	return m, n
}

// ErrNotLoKr is wrapped by LoKrDecomposeFactor's error: PEFT's LoKr cannot
// express the adapter; export it as LoRA (exact) or as merged ΔW instead.
var ErrNotLoKr = errors.New("PEFT LoKr cannot express this adapter")

// LoKrDecomposeFactor finds one decompose_factor under which PEFT's LoKr
// builds exactly this Set's factor shapes on every module: with
// factorization(d_in, f) = (dA1, dB1) and factorization(d_out, f) = (dA2, dB2),
// and r < max(dB2, dB1)/2 so that PEFT keeps w2 as the pair w2_a·w2_b.
// It tries the candidates of loKrCandidates, which cover every f that can
// give m = dA2 or m = dA1.
func (s *Set) LoKrDecomposeFactor() (int, error) {
	if s.Config.Kind != KindKron {
		return 0, fmt.Errorf("%w: it is a %s adapter", ErrNotLoKr, s.Config.Kind)
	}
	if len(s.Modules) == 0 {
		return 0, fmt.Errorf("%w: it has no modules", ErrNotLoKr)
	}
	r, dA2 := s.Config.Rank, s.Config.DA2
	var firstFail error
	for _, f := range loKrCandidates(s) {
		ok := true
		for _, m := range s.Modules {
			k := m.Layer.(*Kron)
			if err := loKrFits(k.Shape, f); err != nil {
				ok = false
				if firstFail == nil {
					firstFail = fmt.Errorf("module %s: %w", m.Name, err)
				}
				break
			}
		}
		if ok {
			return f, nil
		}
	}
	for _, m := range s.Modules {
		sh := m.Layer.(*Kron).Shape
		if 2*r >= max(sh.DB2(), sh.DB1()) {
			return 0, fmt.Errorf("%w: module %s: r = %d is not < max(dB2, dB1)/2 = %d, so PEFT would train one full w2 instead of w2_a·w2_b",
				ErrNotLoKr, m.Name, r, max(sh.DB2(), sh.DB1())/2)
		}
	}
	return 0, fmt.Errorf("%w: no single decompose_factor makes PEFT's factorization give A = %d×%d on every module (it splits d_in and d_out with the same factor, so dA2 must equal dA1 = %d, or the split must happen to match; first mismatch: %v)",
		ErrNotLoKr, dA2, KronDA1, KronDA1, firstFail)
}

// loKrFits reports why decompose_factor f does not reproduce the shape.
func loKrFits(sh KronShape, f int) error {
	inM, inN := PEFTFactorization(sh.DIn, f)
	outL, outK := PEFTFactorization(sh.DOut, f)
	if inM != KronDA1 || inN != sh.DB1() || outL != sh.DA2 || outK != sh.DB2() {
		return fmt.Errorf("decompose_factor %d gives w1 %d×%d, w2 %d×%d; need %d×%d and %d×%d", f, outL, inM, outK, inN, sh.DA2, KronDA1, sh.DB2(), sh.DB1())
	}
	if 2*sh.Rank >= max(sh.DB2(), sh.DB1()) {
		return fmt.Errorf("r = %d is not < max(dB2, dB1)/2", sh.Rank)
	}
	return nil
}

// loKrCandidates lists decompose_factor values worth trying: −1, every f up
// to 64, and each module's dA2, dB2 and dB1 (a dividing f yields m = f).
func loKrCandidates(s *Set) []int {
	seen := map[int]bool{}
	var out []int
	add := func(f int) {
		if f != 0 && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	add(-1)
	for f := 1; f <= 64; f++ {
		add(f)
	}
	for _, m := range s.Modules {
		sh := m.Layer.(*Kron).Shape
		add(sh.DA2)
		add(sh.DB2())
		add(sh.DB1())
	}
	return out
}

// ExportPEFTBest writes the Set in the PEFT form that expresses it with the
// fewest parameters: LoKr where PEFT's shape rules can (LoKrDecomposeFactor),
// else the exact rank-2r LoRA rewrite of Kron-LoRA (LoRA adapters export
// as LoRA). It returns which it wrote: "lokr" or "lora".
func (s *Set) ExportPEFTBest(dir string, opts ...PEFTOptions) (string, error) {
	if s.Config.Kind == KindKron {
		err := s.ExportPEFT(dir, opts...)
		if err == nil {
			return "lokr", nil
		}
		if !errors.Is(err, ErrNotLoKr) {
			return "", err
		}
	}
	return "lora", s.ExportPEFTLoRA(dir, opts...)
}

// peftConfig is the subset of PEFT's adapter_config.json we write.
type peftConfig map[string]any

// ExportPEFT writes the Set as a PEFT adapter folder (adapter_config.json and
// adapter_model.safetensors) in dir:
//
//   - Kron-LoRA as LoKr (lokr_w1 = A, lokr_w2_a = B1, lokr_w2_b = B2, alpha and
//     r as trained: PEFT's LoKr scales by alpha/r as we do), when
//     LoKrDecomposeFactor finds a decompose_factor; otherwise the error wraps
//     ErrNotLoKr.
//   - LoRA as LoRA (lora_A.weight q×d_in, lora_B.weight d_out×q, lora_alpha =
//     alpha: PEFT's scaling convention is ours).
//
// Dense tensors go to modules_to_save.
func (s *Set) ExportPEFT(dir string, opts ...PEFTOptions) error {
	var tensors []safetensors.Tensor
	cfg := s.peftCommon(opts)
	switch s.Config.Kind {
	case KindKron:
		f, err := s.LoKrDecomposeFactor()
		if err != nil {
			return err
		}
		for _, m := range s.Modules {
			k := m.Layer.(*Kron)
			p := peftPrefix + m.Name
			tensors = append(tensors,
				safetensors.F32Tensor(p+".lokr_w1", []int{k.Shape.DA2, KronDA1}, k.A),
				safetensors.F32Tensor(p+".lokr_w2_a", []int{k.Shape.DB2(), k.Shape.Rank}, k.B1),
				safetensors.F32Tensor(p+".lokr_w2_b", []int{k.Shape.Rank, k.Shape.DB1()}, k.B2))
		}
		cfg["peft_type"] = "LOKR"
		cfg["r"] = s.Config.Rank
		cfg["alpha"] = shortest(s.Config.Alpha)
		cfg["decompose_factor"] = f
		cfg["decompose_both"] = false
		cfg["rank_dropout"] = 0.0
		cfg["module_dropout"] = 0.0
		cfg["rank_dropout_scale"] = false
		cfg["use_effective_conv2d"] = false
		cfg["init_weights"] = true
	case KindLoRA:
		for _, m := range s.Modules {
			l := m.Layer.(*LoRA)
			p := peftPrefix + m.Name
			tensors = append(tensors,
				safetensors.F32Tensor(p+".lora_A.weight", []int{l.Shape.Rank, l.Shape.DIn}, l.A),
				safetensors.F32Tensor(p+".lora_B.weight", []int{l.Shape.DOut, l.Shape.Rank}, l.B))
		}
		s.peftLoRAConfig(cfg, s.Config.Rank, float64(s.Config.Alpha))
	default:
		return fmt.Errorf("export: unknown adapter kind %q", s.Config.Kind)
	}
	return s.writePEFT(dir, cfg, tensors)
}

// ExportPEFTLoRA writes a Kron-LoRA Set as an exact PEFT LoRA of rank dA1·r.
// By the mixed-product rule
//
//	A ⊗ (B1·B2) = (A ⊗ B1) · (I_dA1 ⊗ B2)
//
// so lora_B = A ⊗ B1 (d_out × dA1·r) and lora_A = I ⊗ B2 (dA1·r × d_in), with
// lora_alpha = dA1·alpha so PEFT's alpha/rank equals our alpha/r. Any PEFT
// version, and any tool that reads PEFT LoRA, can load it; nothing is
// approximated. A LoRA Set exports as itself.
func (s *Set) ExportPEFTLoRA(dir string, opts ...PEFTOptions) error {
	if s.Config.Kind == KindLoRA {
		return s.ExportPEFT(dir, opts...)
	}
	var tensors []safetensors.Tensor
	r := s.Config.Rank
	q := KronDA1 * r
	for _, m := range s.Modules {
		k := m.Layer.(*Kron)
		dA2, dB2, dB1 := k.Shape.DA2, k.Shape.DB2(), k.Shape.DB1()
		// lora_B[i·dB2+a, j·r+b] = A[i,j]·B1[a,b]
		loraB := make([]float32, k.Shape.DOut*q)
		for i := 0; i < dA2; i++ {
			for j := 0; j < KronDA1; j++ {
				for a := 0; a < dB2; a++ {
					row := loraB[(i*dB2+a)*q+j*r : (i*dB2+a)*q+(j+1)*r]
					compute.Axpy(k.A[i*KronDA1+j], k.B1[a*r:(a+1)*r], row)
				}
			}
		}
		// lora_A[j·r+b, j·dB1+c] = B2[b,c]; zero off the diagonal blocks.
		loraA := make([]float32, q*k.Shape.DIn)
		for j := 0; j < KronDA1; j++ {
			for b := 0; b < r; b++ {
				copy(loraA[(j*r+b)*k.Shape.DIn+j*dB1:], k.B2[b*dB1:(b+1)*dB1])
			}
		}
		p := peftPrefix + m.Name
		tensors = append(tensors,
			safetensors.F32Tensor(p+".lora_A.weight", []int{q, k.Shape.DIn}, loraA),
			safetensors.F32Tensor(p+".lora_B.weight", []int{k.Shape.DOut, q}, loraB))
	}
	cfg := s.peftCommon(opts)
	s.peftLoRAConfig(cfg, q, float64(KronDA1)*shortest(s.Config.Alpha))
	return s.writePEFT(dir, cfg, tensors)
}

// PEFTOptions say what a PEFT export records about the base model.
type PEFTOptions struct {
	// BaseModel is base_model_name_or_path: the model's Hugging Face id
	// (config.json's _name_or_path) so PeftModel.from_pretrained finds it;
	// "" writes the Set's BaseModel.
	BaseModel string
	// TaskType is PEFT's task_type; "" infers it: CAUSAL_LM for decoders
	// (adapters on model.layers.* or lm_head), none for encoders, since PEFT
	// has no multiple-choice task type (load those with PeftModel on an
	// AutoModelForMultipleChoice; the head travels in modules_to_save).
	TaskType string
}

func (s *Set) peftCommon(opts []PEFTOptions) peftConfig {
	var o PEFTOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	var saves []string
	for _, d := range s.Dense {
		saves = append(saves, d.Name)
	}
	base := s.BaseModel
	if o.BaseModel != "" {
		base = o.BaseModel
	}
	var task any
	switch {
	case o.TaskType != "":
		task = o.TaskType
	case s.isDecoder():
		task = "CAUSAL_LM"
	}
	return peftConfig{
		"base_model_name_or_path": base,
		"target_modules":          s.ModuleNames(),
		"modules_to_save":         saves,
		"inference_mode":          true,
		"revision":                nil,
		"task_type":               task,
	}
}

// isDecoder reports adapters on a Llama-family decoder (Hugging Face's
// module names model.layers.N.… and lm_head).
func (s *Set) isDecoder() bool {
	for _, m := range s.Modules {
		if m.Name == "lm_head" || strings.HasPrefix(m.Name, "model.layers.") {
			return true
		}
	}
	return false
}

// shortest is a float32 setting as the shortest decimal that reads back to
// it, so 0.1 is written as 0.1, not 0.10000000149.
func shortest(v float32) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', -1, 32), 64)
	return f
}

func (s *Set) peftLoRAConfig(cfg peftConfig, rank int, alpha float64) {
	cfg["peft_type"] = "LORA"
	cfg["r"] = rank
	cfg["lora_alpha"] = alpha
	cfg["lora_dropout"] = shortest(s.Config.Dropout)
	cfg["bias"] = "none"
	cfg["fan_in_fan_out"] = false
	cfg["use_rslora"] = false
	cfg["use_dora"] = false
	cfg["init_lora_weights"] = true
}

func (s *Set) writePEFT(dir string, cfg peftConfig, tensors []safetensors.Tensor) error {
	if err := s.CheckFinite(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	for _, d := range s.Dense {
		tensors = append(tensors, safetensors.F32Tensor(peftPrefix+d.Name, []int{d.Rows, d.Cols}, d.Data))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	js, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "adapter_model.safetensors"), map[string]string{"format": "pt"}, tensors); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// ExportMerged writes scale·ΔW of every module as a dense F32 tensor
// "<module>.weight" (d_out×d_in) to a safetensors file: add it to the base
// model's weight of the same name to merge the adapter. It works for every
// adapter, at the cost of d_out·d_in floats per module.
func (s *Set) ExportMerged(path string) error {
	var tensors []safetensors.Tensor
	for _, m := range s.Modules {
		dOut, dIn := m.Layer.Dims()
		w := make([]float32, dOut*dIn)
		m.Layer.MergeInto(w, 1)
		tensors = append(tensors, safetensors.F32Tensor(m.Name+".weight", []int{dOut, dIn}, w))
	}
	for _, d := range s.Dense {
		tensors = append(tensors, safetensors.F32Tensor(d.Name, []int{d.Rows, d.Cols}, d.Data))
	}
	meta := map[string]string{"format": "kronfed-delta", "base_model": s.BaseModel,
		"note": "each <module>.weight is the adapter's scaled ΔW: add it to the base weight; other tensors replace the base's"}
	if err := safetensors.WriteFile(path, meta, tensors); err != nil {
		return fmt.Errorf("export merged: %w", err)
	}
	return nil
}

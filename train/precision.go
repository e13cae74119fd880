package train

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kronfed/kronfed/compute"
	"github.com/kronfed/kronfed/gpu"
	"github.com/kronfed/kronfed/model"
)

// AutoBF16MinHidden is the smallest hidden size for which --precision auto
// picks bf16 frozen weights on a CPU where bf16 pays (compute.BF16Pays:
// AVX512_BF16, and its products measured faster than fp32 FMAs — a Zen 5
// runs them at 1.8×, an Emerald Rapids VM at 0.5×). At transformer sizes
// (DistilBERT 768, Llama 4096) the frozen GEMMs dominate a step and bf16
// makes it 1.3–1.5× faster on Zen 5 (BENCHMARKS.md); the small research bases (the
// built-in model, hidden 128; stories260K, 64) stay fp32, so their runs —
// the README's default simulation among them — give the same numbers bit
// for bit on every x86-64 CPU, AVX2 or AVX-512, bf16 or not.
const AutoBF16MinHidden = 512

// ParsePrecision checks a --precision value and returns it normalized:
// "auto" (also ""), "bf16", "bf16-lean" (CPU: bf16 with one packed copy
// of each frozen weight, model.Model.LeanBF16) or "fp32".
func ParsePrecision(s string) (string, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "", "auto":
		return "auto", nil
	case "bf16", "bfloat16":
		return "bf16", nil
	case "bf16-lean":
		return v, nil
	case "fp32", "float32":
		return "fp32", nil
	}
	return "", fmt.Errorf("unknown precision %q (want auto, bf16, bf16-lean or fp32)", s)
}

// FrozenPrecision resolves a --precision value for the frozen weights of
// base m (nil: not known yet) on device. "auto" is bf16 on a GPU; on a CPU,
// bf16 where bf16 pays (compute.BF16Pays) and m is at least
// AutoBF16MinHidden wide, else fp32. "bf16" on a CPU without AVX512_BF16 is
// an error; where it is there but slower, it is what was asked for.
func FrozenPrecision(s, device string, m *model.Model) (gpu.Precision, error) {
	p, err := ParsePrecision(s)
	if err != nil {
		return 0, err
	}
	d, err := ParseDevice(device)
	if err != nil {
		return 0, err
	}
	switch {
	case p == "fp32":
		return gpu.FP32, nil
	case p == "bf16-lean" && d != "cpu":
		return 0, fmt.Errorf("precision bf16-lean is a CPU layout (one packed copy per frozen weight); on %s use bf16", d)
	case d != "cpu":
		return gpu.BF16, nil
	case (p == "bf16" || p == "bf16-lean") && !compute.HasBF16():
		return 0, errNoCPUBF16
	case p == "bf16" || p == "bf16-lean":
		return gpu.BF16, nil
	case bf16Pays() && m != nil && m.Cfg.Hidden >= AutoBF16MinHidden:
		return gpu.BF16, nil
	}
	return gpu.FP32, nil
}

// UsePrecision puts the CPU base m in the precision a --precision value
// resolves to for it (FrozenPrecision) — UseBF16, and LeanBF16 for
// bf16-lean — and returns what it is now: "fp32", "bf16" or "bf16-lean".
func UsePrecision(s string, m *model.Model) (string, error) {
	p, err := FrozenPrecision(s, "cpu", m)
	if err != nil || p == gpu.FP32 {
		return "fp32", err
	}
	if err := m.UseBF16(); err != nil {
		return "", err
	}
	if v, _ := ParsePrecision(s); v == "bf16-lean" {
		return v, m.LeanBF16()
	}
	return "bf16", nil
}

// PrecisionText says what a CPU --precision value means on this machine,
// for the lines commands print before they start.
func PrecisionText(s string) string {
	p, err := ParsePrecision(s)
	if err != nil || p != "auto" {
		return p
	}
	if !compute.HasBF16() {
		return "auto: fp32 (no AVX512_BF16)"
	}
	if pays, why := compute.BF16Pays(); !pays {
		return fmt.Sprintf("auto: fp32 (%s; --precision bf16 forces it)", why)
	}
	return fmt.Sprintf("auto: bf16 for bases of hidden ≥ %d, else fp32", AutoBF16MinHidden)
}

// bf16Pays is compute.BF16Pays' verdict alone.
func bf16Pays() bool {
	pays, _ := compute.BF16Pays()
	return pays
}

var errNoCPUBF16 = errors.New("bf16 frozen weights on the CPU need AVX512_BF16 (Zen 4 and later, Sapphire Rapids and later), which this CPU lacks: use --precision fp32 or auto")

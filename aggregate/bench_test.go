package aggregate

import (
	"fmt"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/internal/adaptertest"
)

// distilbertTargets are DistilBERT's adapted linears: 6 layers of q, k, v,
// o (768×768) and the feed-forward pair (3072×768, 768×3072).
func distilbertTargets() []adapter.Target {
	var ts []adapter.Target
	for l := range 6 {
		p := fmt.Sprintf("distilbert.transformer.layer.%d.", l)
		for _, n := range []string{"attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin"} {
			ts = append(ts, adapter.Target{Name: p + n, DOut: 768, DIn: 768})
		}
		ts = append(ts, adapter.Target{Name: p + "ffn.lin1", DOut: 3072, DIn: 768}, adapter.Target{Name: p + "ffn.lin2", DOut: 768, DIn: 3072})
	}
	return ts
}

// BenchmarkRules aggregates n DistilBERT-sized client adapters (Kron-LoRA
// r8 dA2 4, and LoRA-8) under each rule, n = 10, 100 and 1000:
//
//	go test ./aggregate -run '^$' -bench Rules -benchtime 3x
//
// The clients' sets are built only for the sub-benchmarks selected (1000
// LoRA-8 clients hold 2.6 GB).
func BenchmarkRules(b *testing.B) {
	for _, kind := range []adapter.Kind{adapter.KindKron, adapter.KindLoRA} {
		ac := adapter.DefaultConfig(kind)
		if kind == adapter.KindKron {
			ac.DA2 = 4
		}
		for _, n := range []int{10, 100, 1000} {
			var built []Weighted // sub-benchmarks run one at a time
			clients := func(b *testing.B) []Weighted {
				for i := len(built); i < n; i++ {
					built = append(built, Weighted{Set: adaptertest.Random(b, ac, "distilbert", distilbertTargets(), uint64(i+1)), Weight: float64(1 + i%7)})
				}
				return built
			}
			rules := map[string]func(ws []Weighted) error{
				"fedavg":       func(ws []Weighted) error { _, err := FedAvg(ws); return err },
				"median":       func(ws []Weighted) error { _, err := Median(ws); return err },
				"trimmed-mean": func(ws []Weighted) error { _, err := TrimmedMean(ws, 0.1); return err },
			}
			if kind == adapter.KindKron {
				rules["kron-exact"] = func(ws []Weighted) error { _, _, err := KronExact(ws); return err }
			} else {
				rules["lora-exact"] = func(ws []Weighted) error { _, _, err := LoRAExact(ws); return err }
			}
			for _, name := range []string{"fedavg", "kron-exact", "lora-exact", "median", "trimmed-mean"} {
				f, ok := rules[name]
				if !ok {
					continue
				}
				b.Run(fmt.Sprintf("%s/%s/n=%d", kind, name, n), func(b *testing.B) {
					ws := clients(b)
					for b.Loop() {
						if err := f(ws); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

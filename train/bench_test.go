package train

import (
	"strings"
	"testing"

	"github.com/kronfed/kronfed/compute"
)

// BenchmarkTrainStep: one DistilBERT-shaped training step, 8 sequences of 128
// tokens (2 questions × 4 choices), Kron-LoRA and LoRA-8. `client bench
// train` prints the same figures with tokens/s and the Kron/LoRA ratio.
// The bf16/ variants pack the frozen weights as bf16, bf16-lean/ with one
// copy each (where the CPU can).
func BenchmarkTrainStep(b *testing.B) {
	for _, v := range []string{"kron", "lora8", "bf16/kron", "bf16/lora8", "bf16-lean/kron"} {
		prec, kind, ok := strings.Cut(v, "/")
		if !ok {
			prec, kind = "fp32", v
		}
		b.Run(v, func(b *testing.B) {
			if prec != "fp32" && !compute.HasBF16() {
				b.Skip("no AVX512_BF16")
			}
			s, err := NewBenchStep(DistilBERTConfig(), kind, 8, 128, 1, prec)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Run(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(s.Flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(float64(s.Tokens)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

package train

import "testing"

// BenchmarkTrainStep: one DistilBERT-shaped training step, 8 sequences of 128
// tokens (2 questions × 4 choices), Kron-LoRA and LoRA-8. `client bench
// train` prints the same figures with tokens/s and the Kron/LoRA ratio.
func BenchmarkTrainStep(b *testing.B) {
	for _, kind := range []string{"kron", "lora8"} {
		b.Run(kind, func(b *testing.B) {
			s, err := NewBenchStep(DistilBERTConfig(), kind, 8, 128, 1, false)
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

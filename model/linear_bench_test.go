package model

import (
	"testing"
)

// BenchmarkAdaptedLinearTrainStep times forward + backward (with dx) of a
// 768×768 layer on 1024 tokens with dropout 0.1, as training runs it: frozen
// alone, Kron-LoRA (dA2 4, r 8) and LoRA-8. `client bench kernels` reports the
// Kron/LoRA ratio from the same harness.
func BenchmarkAdaptedLinearTrainStep(b *testing.B) {
	const d, n = 768, 1024
	for _, kind := range []string{"frozen", "kron", "lora8"} {
		b.Run(kind, func(b *testing.B) {
			step, err := NewTrainStepBench(kind, d, d, n, 1)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step()
			}
		})
	}
}

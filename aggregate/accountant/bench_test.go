package accountant

import "testing"

// The benchmarks time one round's RDP vector over DefaultOrders (72 orders),
// without the accountant's cache.

func BenchmarkStepPoisson(b *testing.B) {
	a, _ := NewAccountant(Poisson{}, DefaultOrders())
	for i := 0; i < b.N; i++ {
		if _, err := a.computeStepRDP(1.1, 0.01); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStepWithoutReplacement(b *testing.B) {
	benchWithoutReplacement(b, 1.1)
}

// Large noise: the forward differences go through the quadrature.
func BenchmarkStepWithoutReplacementLargeNoise(b *testing.B) {
	benchWithoutReplacement(b, 40)
}

func benchWithoutReplacement(b *testing.B, z float64) {
	s := WithoutReplacement{Cohort: 100, Population: 10000}
	a, _ := NewAccountant(s, DefaultOrders())
	for i := 0; i < b.N; i++ {
		if _, err := a.computeStepRDP(z, s.Rate()); err != nil {
			b.Fatal(err)
		}
	}
}

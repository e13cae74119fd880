package accountant

// Cost of one round's RDP vector over DefaultOrders (72 orders), uncached.

import "testing"

func BenchmarkStepPoisson(b *testing.B) {
	a, _ := NewAccountant(Poisson{}, DefaultOrders())
	for i := 0; i < b.N; i++ {
		if _, err := a.computeStepRDP(1.1, 0.01); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStepWithoutReplacement(b *testing.B) {
	s := WithoutReplacement{Cohort: 100, Population: 10000}
	a, _ := NewAccountant(s, DefaultOrders())
	for i := 0; i < b.N; i++ {
		if _, err := a.computeStepRDP(1.1, s.Rate()); err != nil {
			b.Fatal(err)
		}
	}
}

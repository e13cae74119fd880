// Package adaptertest makes adapter sets for tests: random non-zero factors
// on given targets, so every factor has a gradient (a fresh Kron-LoRA has
// A = 0, which would leave B1 and B2 without one).
package adaptertest

import (
	"math/rand/v2"
	"testing"

	"github.com/kronfed/kronfed/adapter"
)

// Random puts adapters of config ac on targets, named for base model base,
// with every factor entry drawn from N(0, 0.05²) by a generator seeded with
// (seed, 9).
func Random(t testing.TB, ac adapter.Config, base string, targets []adapter.Target, seed uint64) *adapter.Set {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 9))
	set, err := adapter.NewSet(ac, base, targets, rng)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range set.Modules {
		for _, f := range m.Layer.Factors() {
			for i := range f.Data {
				f.Data[i] = 0.05 * float32(rng.NormFloat64())
			}
		}
	}
	return set
}

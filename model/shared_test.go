package model

import (
	"slices"
	"sync"
	"testing"

	"github.com/kronfed/kronfed/adapter"
)

// TestClientsShareOneBase runs several clients' training passes on one frozen
// model concurrently (as the simulator does); each must get exactly what it
// gets alone. Run under -race this also shows the base is only read.
func TestClientsShareOneBase(t *testing.T) {
	cfg := tinyLlamaConfig()
	m, err := NewLlama(cfg, RopeHalf, newRandomSource(1).get)
	if err != nil {
		t.Fatal(err)
	}
	const clients = 4
	tokens := []int{1, 4, 2, 7, 3, 3, 9, 0, 5, 6}
	targets := []int{4, 2, 7, 3, 3, 9, 0, 5, 6, -1}
	sets := make([]*adapter.Set, clients)
	for c := range sets {
		sets[c] = randomAdapters(t, cfg, adapter.KindKron, uint64(c+10))
	}
	step := func(c int) []float32 {
		run, err := m.NewRun(sets[c])
		if err != nil {
			t.Error(err)
			return nil
		}
		sets[c].ZeroGrad()
		if err := run.Forward(tokens, 1, len(tokens)); err != nil {
			t.Error(err)
			return nil
		}
		if _, _, err := run.LossAndGrad(targets); err != nil {
			t.Error(err)
			return nil
		}
		run.Backward()
		var g []float32
		for _, p := range sets[c].Params() {
			g = append(g, p.Grad...)
		}
		return g
	}
	alone := make([][]float32, clients)
	for c := range alone {
		alone[c] = step(c)
	}
	together := make([][]float32, clients)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			together[c] = step(c)
		}()
	}
	wg.Wait()
	for c := range alone {
		if !slices.Equal(alone[c], together[c]) {
			t.Fatalf("client %d: gradients differ when clients run concurrently", c)
		}
	}
}

package train

import (
	"context"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/model"
)

// TestSweepLR: on the random built-in model, word-category is learned in a
// few dozen steps at 3e-3 and not at 1e-6 (the factors hardly move), and a
// learning rate of 1e4 blows the adapter up: the sweep must keep 3e-3 and
// say what each rate did.
func TestSweepLR(t *testing.T) {
	m, err := LoadModel(model.BuiltinRandomPath)
	if err != nil {
		t.Fatal(err)
	}
	splits, err := LoadSplits("word-category", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LRSweepConfig{Grid: []float64{1e-6, 3e-3, 1e4}, TrainItems: 160, ValItems: 40, Fit: Config{Epochs: 2, Seed: 1}}
	sw, err := SweepLR(context.Background(), m, adapter.DefaultConfig(adapter.KindKron), splits, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(sw)
	if sw.Best != 3e-3 || len(sw.Points) != 3 {
		t.Fatalf("best %v of %+v, want 3e-3", sw.Best, sw.Points)
	}
	slow, good, huge := sw.Points[0], sw.Points[1], sw.Points[2]
	if good.ValAcc < 0.6 || slow.ValAcc > good.ValAcc-0.2 || !(huge.Diverged || huge.ValAcc < good.ValAcc) {
		t.Errorf("points %+v", sw.Points)
	}
	if s := sw.String(); !strings.HasPrefix(s, "0.003 (validation accuracy 1e-06: ") {
		t.Errorf("String %q", s)
	}
	// Bad grids are refused before any training.
	for _, g := range [][]float64{{1e-3, 0}, {-1}} {
		if _, err := SweepLR(context.Background(), m, adapter.DefaultConfig(adapter.KindKron), splits, LRSweepConfig{Grid: g}); err == nil ||
			!strings.Contains(err.Error(), "want > 0") {
			t.Errorf("grid %v: %v", g, err)
		}
	}
}

package simulate

import (
	"strings"
	"testing"
)

// TestClientRanksChecked: the global adapter's rank must be the largest
// client rank, ranks positive, and no canaries (one shape each).
func TestClientRanksChecked(t *testing.T) {
	for want, ranks := range map[string][]int{
		"must be the largest of them (4)": {2, 4},
		"every rank must be ≥ 1":          {0, 8},
	} {
		e := tinyExperiment(t, t.TempDir())
		opts := e.Base
		opts.Adapter, opts.Dir, opts.ClientRanks = e.Adapters[0].Adapter, t.TempDir(), ranks
		if _, err := New(opts); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ranks %v: %v, want %q", ranks, err, want)
		}
	}
}

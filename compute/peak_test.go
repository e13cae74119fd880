package compute

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestMeasureFMAPeak: the ymm peak is measured wherever AVX2+FMA runs, the
// zmm peak where AVX-512 does, and an unavailable or unknown width is an
// error naming it. (Speed is not asserted: BENCHMARKS.md records it.)
func TestMeasureFMAPeak(t *testing.T) {
	for _, w := range []string{"ymm", "zmm", "bf16"} {
		g, err := MeasureFMAPeak(w, 50*time.Millisecond)
		if err != nil {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v", w, err)
			}
			t.Logf("%s: %v", w, err)
			continue
		}
		if !(g > 0) || math.IsInf(g, 0) {
			t.Errorf("%s peak %v", w, g)
		}
		t.Logf("%s FMA peak: %.1f GFLOP/s on one core", w, g)
	}
	if _, err := MeasureFMAPeak("xmm", time.Millisecond); err == nil {
		t.Error("width xmm accepted")
	}
}

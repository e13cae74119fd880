package compute

import (
	"os"
	"testing"
	"time"
)

// TestMeasureTable prints best-of GFLOP/s for the benchmark shapes using
// MeasureGemm. It only runs with KRONFED_GEMM_TABLE=1 (it takes ~a minute);
// best-of-several filters out time slices lost to other processes on a
// shared machine.
func TestMeasureTable(t *testing.T) {
	if os.Getenv("KRONFED_GEMM_TABLE") == "" {
		t.Skip("set KRONFED_GEMM_TABLE=1 to print the GEMM speed table")
	}
	for _, s := range benchShapes {
		for _, th := range []int{1, 2} {
			best := 0.0
			for i := 0; i < 1; i++ {
				best = max(best, MeasureGemm(s.tA, s.tB, s.m, s.n, s.k, th, 2*time.Second))
			}
			t.Logf("%-20s threads=%d  %6.1f GFLOP/s", s.name, th, best)
		}
	}
}

package secagg

import "testing"

// TestRecommendedParams: the search reproduces the degrees published with
// Google's SecAgg+ implementation (fcp/secagg graph_parameter_finder tests)
// for σ = 40, η = 20, and thresholds no larger than theirs.
func TestRecommendedParams(t *testing.T) {
	for _, tc := range []struct {
		n                int
		corrupt, dropout float64
		semiMalicious    bool
		k, maxT          int
	}{
		{10, 0.33, 0.33, false, 8, 4},
		{100, 0.33, 0.33, false, 68, 34},
		{1000, 0.33, 0.33, false, 286, 150},
		{100, 0.45, 0.45, false, 92, 46},
		{10, 0.05, 0.33, false, 4, 2},
		{100, 0.05, 0.33, false, 28, 6},
		{1000, 0.05, 0.33, false, 72, 24},
		{10000, 0.05, 0.33, false, 86, 29},
		{10, 0.33, 0.05, false, 4, 4},
		{100, 0.33, 0.05, false, 34, 29},
		{1000, 0.33, 0.05, false, 78, 60},
		{100, 0.3, 0.3, true, 92, 62},
		{1000, 0.3, 0.3, true, 872, 584},
		{10, 0.05, 0.33, true, 8, 5},
		{100, 0.05, 0.33, true, 72, 39},
		{1000, 0.05, 0.33, true, 398, 223},
		{10, 0.33, 0.05, true, 4, 4},
		{100, 0.33, 0.05, true, 42, 37},
		{1000, 0.33, 0.05, true, 132, 109},
	} {
		k, th, err := RecommendedParams(tc.n, tc.corrupt, tc.dropout, tc.semiMalicious)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if k != tc.k || th > tc.maxT || th < 2 || th > k {
			t.Errorf("n=%d γ=%v δ=%v semi-malicious=%v: k=%d t=%d, want k=%d t<=%d", tc.n, tc.corrupt, tc.dropout, tc.semiMalicious, k, th, tc.k, tc.maxT)
		}
		if _, err := (Config{N: tc.n, Neighbours: k, Threshold: th, Bits: 1, TotalWeight: 1, Length: 1}).Normalize(); err != nil {
			t.Errorf("recommended parameters are not a valid config: %v", err)
		}
	}
	if k, th, err := RecommendedParams(50, 0, 0, false); err != nil || k != 2 || th != 2 {
		t.Fatalf("no adversary, no dropouts: k=%d t=%d %v", k, th, err)
	}
	if _, _, err := RecommendedParams(1000, 0.3, 0.3, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := RecommendedParams(1000, 0.3, 0.31, true); err == nil {
		t.Fatal("semi-malicious 0.3 + 2·0.31 accepted")
	}
	for _, bad := range [][2]float64{{-0.1, 0}, {0, 1}, {1, 0}, {0.5, 0.45}} {
		if _, _, err := RecommendedParams(10, bad[0], bad[1], false); err == nil {
			t.Fatalf("fractions %v accepted", bad)
		}
	}
	if _, _, err := RecommendedParams(2, 0, 0, false); err == nil {
		t.Fatal("two clients accepted")
	}
}

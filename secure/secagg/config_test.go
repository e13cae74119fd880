package secagg

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestDefaults: the documented neighbour and threshold rules.
func TestDefaults(t *testing.T) {
	for _, tc := range []struct{ n, k, t int }{
		{3, 2, 2}, {4, 3, 2}, {5, 4, 3}, {8, 6, 4}, {10, 8, 6}, {30, 10, 7}, {100, 14, 9}, {1000, 20, 13}, {1 << 20, 40, 26},
	} {
		cfg, err := Config{N: tc.n, Bits: 4, TotalWeight: 1, Length: 1}.Normalize()
		if err != nil {
			t.Fatalf("n=%d: %v", tc.n, err)
		}
		if cfg.Neighbours != tc.k || cfg.Threshold != tc.t || cfg.KeyAgreement != X25519 {
			t.Fatalf("n=%d: k=%d t=%d %v, want k=%d t=%d X25519", tc.n, cfg.Neighbours, cfg.Threshold, cfg.KeyAgreement, tc.k, tc.t)
		}
	}
}

// TestConfigValidation: every documented constraint is enforced.
func TestConfigValidation(t *testing.T) {
	ok := Config{N: 10, Bits: 4, TotalWeight: 10, Length: 5}
	if _, err := ok.Normalize(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.N = 2 }, "cohort of 2"},
		{func(c *Config) { c.N = MaxClients + 1 }, "cohort of"},
		{func(c *Config) { c.Neighbours = 7 }, "must be even"},
		{func(c *Config) { c.Neighbours = 10 }, "10 neighbours for 10 clients"},
		{func(c *Config) { c.Neighbours = 4; c.Threshold = 5 }, "threshold 5"},
		{func(c *Config) { c.Threshold = 1 }, "threshold 1"},
		{func(c *Config) { c.Bits = 0 }, "0 value bits"},
		{func(c *Config) { c.Bits = 33 }, "33 value bits"},
		{func(c *Config) { c.TotalWeight = 0 }, "total weight"},
		{func(c *Config) { c.Bits = 32; c.TotalWeight = 1 << 33 }, "more than 64"},
		{func(c *Config) { c.Length = 0 }, "vector length 0"},
		{func(c *Config) { c.KeyAgreement = 9 }, "unknown key agreement"},
	} {
		c := ok
		tc.mod(&c)
		_, err := c.Normalize()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%+v: error %v, want %q", c, err, tc.want)
		}
	}
	// The complete graph may have odd degree.
	if _, err := (Config{N: 6, Neighbours: 5, Bits: 4, TotalWeight: 1, Length: 1}).Normalize(); err != nil {
		t.Fatal(err)
	}
}

// TestModulusBits: M = b + ⌈log2 W⌉, and the worst-case sum fits.
func TestModulusBits(t *testing.T) {
	for _, tc := range []struct {
		b    int
		w    uint64
		want int
	}{{4, 1, 4}, {4, 2, 5}, {4, 3, 6}, {4, 100, 11}, {8, 100, 15}, {4, 128, 11}, {4, 129, 12}, {32, 1 << 32, 64}} {
		c := Config{Bits: tc.b, TotalWeight: tc.w}
		if got := c.ModulusBits(); got != tc.want {
			t.Fatalf("b=%d W=%d: M=%d, want %d", tc.b, tc.w, got, tc.want)
		}
		// W·(2^b − 1) < 2^M.
		if tc.want < 64 {
			if worst := tc.w * (1<<tc.b - 1); worst >= 1<<tc.want {
				t.Fatalf("b=%d W=%d: worst sum %d does not fit %d bits", tc.b, tc.w, worst, tc.want)
			}
		}
	}
}

// TestGraph: the neighbour graph is k-regular, symmetric, free of self
// loops, deterministic in (seed, round), different for different seeds, and
// complete when k = n−1.
func TestGraph(t *testing.T) {
	for _, n := range []int{3, 5, 6, 10, 31, 100} {
		cfg, err := Config{Round: 3, Seed: [32]byte{1}, N: n, Bits: 1, TotalWeight: 1, Length: 1}.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		g, err := cfg.Graph()
		if err != nil {
			t.Fatal(err)
		}
		for a := uint32(1); a <= uint32(n); a++ {
			nb := g.Neighbours(a)
			if len(nb) != cfg.Neighbours || !slices.IsSorted(nb) || slices.Contains(nb, a) {
				t.Fatalf("n=%d: neighbours of %d = %v (k=%d)", n, a, nb, cfg.Neighbours)
			}
			for b := uint32(1); b <= uint32(n); b++ {
				if g.Adjacent(a, b) != slices.Contains(nb, b) || g.Adjacent(a, b) != g.Adjacent(b, a) {
					t.Fatalf("n=%d: adjacency of %d,%d inconsistent", n, a, b)
				}
			}
		}
		if g.Adjacent(0, 1) || g.Adjacent(1, uint32(n+1)) || g.Neighbours(0) != nil {
			t.Fatal("ids outside the cohort have neighbours")
		}
		g2, _ := cfg.Graph()
		cfg3 := cfg
		cfg3.Seed[0] = 2
		g3, _ := cfg3.Graph()
		cfg4 := cfg
		cfg4.Round = 4
		g4, _ := cfg4.Graph()
		same := func(x, y *Graph) bool {
			for a := uint32(1); a <= uint32(n); a++ {
				if !slices.Equal(x.Neighbours(a), y.Neighbours(a)) {
					return false
				}
			}
			return true
		}
		if !same(g, g2) {
			t.Fatal("graph is not deterministic")
		}
		if cfg.Neighbours < n-1 && (same(g, g3) || same(g, g4)) {
			t.Fatalf("n=%d: graph does not depend on seed and round", n)
		}
	}
}

// TestGraphConnectivity: removing any k−1 clients from a Harary graph
// leaves it connected (checked exhaustively on a small cohort).
func TestGraphConnectivity(t *testing.T) {
	cfg, _ := Config{Seed: [32]byte{5}, N: 12, Neighbours: 4, Bits: 1, TotalWeight: 1, Length: 1}.Normalize()
	g, _ := cfg.Graph()
	n := cfg.N
	for a := 1; a <= n; a++ {
		for b := a + 1; b <= n; b++ {
			for c := b + 1; c <= n; c++ {
				gone := []uint32{uint32(a), uint32(b), uint32(c)}
				var start uint32
				for id := uint32(1); id <= uint32(n); id++ {
					if !member(gone, id) {
						start = id
						break
					}
				}
				seen := map[uint32]bool{start: true}
				queue := []uint32{start}
				for len(queue) > 0 {
					v := queue[0]
					queue = queue[1:]
					for _, w := range g.Neighbours(v) {
						if !seen[w] && !member(gone, w) {
							seen[w] = true
							queue = append(queue, w)
						}
					}
				}
				if len(seen) != n-3 {
					t.Fatalf("removing %v disconnects the graph", gone)
				}
			}
		}
	}
}

// TestConfigBinary: a configuration survives its encoding, and its digest
// changes with every field.
func TestConfigBinary(t *testing.T) {
	cfg, _ := Config{Round: 77, Seed: [32]byte{9, 8}, N: 50, Bits: 8, TotalWeight: 123, Length: 249120, KeyAgreement: XWing}.Normalize()
	b, _ := cfg.MarshalBinary()
	var got Config
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got != cfg {
		t.Fatalf("round trip: %+v, want %+v", got, cfg)
	}
	d := cfg.Digest()
	for i, mod := range []func(*Config){
		func(c *Config) { c.Round++ }, func(c *Config) { c.Seed[31]++ }, func(c *Config) { c.N++ },
		func(c *Config) { c.Neighbours += 2 }, func(c *Config) { c.Threshold++ }, func(c *Config) { c.Bits++ },
		func(c *Config) { c.TotalWeight++ }, func(c *Config) { c.Length++ }, func(c *Config) { c.KeyAgreement = X25519 },
	} {
		c := cfg
		mod(&c)
		if c.Digest() == d {
			t.Fatalf("field %d does not change the digest", i)
		}
	}
	bad := append([]byte(nil), b...)
	bad[len(bad)-1] = 7
	if err := got.UnmarshalBinary(bad); err == nil {
		t.Fatal("invalid key agreement decoded")
	}
	if err := got.UnmarshalBinary(b[:len(b)-1]); err == nil {
		t.Fatal("truncated config decoded")
	}
	if fmt.Sprint(X25519, XWing, KeyAgreement(5)) != "X25519 X-Wing KeyAgreement(5)" {
		t.Fatal("KeyAgreement names")
	}
}

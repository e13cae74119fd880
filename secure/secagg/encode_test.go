package secagg

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestEncodeRange: outputs lie in [0, w·(2^b − 1)], the ends of the range
// map to the ends of the grid, and out-of-range input is an error.
func TestEncodeRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, b := range []int{1, 4, 8, 16, 32} {
		for _, w := range []uint64{1, 3, 1000} {
			x := make([]float32, 500)
			for i := range x {
				x[i] = float32(rng.Float64()*4 - 2)
			}
			x[0], x[1] = -2, 2
			enc, err := Encode(x, 2, b, w, rng)
			if err != nil {
				t.Fatal(err)
			}
			max := w * (1<<b - 1)
			for i, v := range enc {
				if v > max || v%w != 0 {
					t.Fatalf("b=%d w=%d: value %d at %d outside the weighted grid (max %d)", b, w, v, i, max)
				}
			}
			if enc[0] != 0 || enc[1] != max {
				t.Fatalf("b=%d w=%d: ends map to %d and %d, want 0 and %d", b, w, enc[0], enc[1], max)
			}
		}
	}
	for _, tc := range []struct {
		x    float32
		want string
	}{{1.5, "index 0 is outside"}, {float32(math.NaN()), "outside"}, {float32(math.Inf(-1)), "outside"}} {
		if _, err := Encode([]float32{tc.x}, 1, 4, 1, rng); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("Encode(%v): %v", tc.x, err)
		}
	}
	for _, bad := range []struct {
		clip float64
		b    int
		w    uint64
	}{{0, 4, 1}, {math.Inf(1), 4, 1}, {math.NaN(), 4, 1}, {1, 0, 1}, {1, 33, 1}, {1, 4, 0}, {1, 32, 1 << 33}} {
		if _, err := Encode([]float32{0}, bad.clip, bad.b, bad.w, rng); err == nil {
			t.Fatalf("Encode accepted clip %v, %d bits, weight %d", bad.clip, bad.b, bad.w)
		}
	}
	if _, err := Encode([]float32{0.25}, 1, 4, 1, nil); err != nil {
		t.Fatalf("nil rng: %v", err)
	}
}

// TestEncodeUnbiased: the decoded weighted sum of many independently
// rounded encodings averages to the true weighted sum, within a few
// standard errors, for values on and off the grid.
func TestEncodeUnbiased(t *testing.T) {
	const clip, b = 1.0, 4
	weights := []uint64{1, 2, 5}
	xs := []float32{-0.97, -0.31, 0.0, 0.123, 0.5, 0.999}
	const trials = 20000
	rng := rand.New(rand.NewPCG(3, 4))
	var W uint64
	for _, w := range weights {
		W += w
	}
	step := 2 * clip / float64(1<<b-1)
	for _, xv := range xs {
		want := float64(xv) * float64(W) // Σ w_i x with every client at xv
		x := make([]float32, trials)
		for i := range x {
			x[i] = xv
		}
		sum := make([]uint64, trials)
		for _, w := range weights {
			enc, err := Encode(x, clip, b, w, rng)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range enc {
				sum[i] += v
			}
		}
		dec, err := DecodeSum(sum, clip, b, W)
		if err != nil {
			t.Fatal(err)
		}
		var mean float64
		for _, d := range dec {
			mean += d
		}
		mean /= trials
		// Each client's rounding error is at most one step times its
		// weight; its standard deviation at most half that.
		var sd float64
		for _, w := range weights {
			sd += float64(w*w) * step * step / 4
		}
		se := math.Sqrt(sd / trials)
		if math.Abs(mean-want) > 5*se+1e-12 {
			t.Fatalf("x=%v: mean decoded %v, want %v (5 s.e. = %v)", xv, mean, want, 5*se)
		}
	}
}

// TestEncodeExact: values on the grid encode deterministically, the integer
// sums are exact, and DecodeSum returns the weighted sum exactly when it is
// representable.
func TestEncodeExact(t *testing.T) {
	// 2C = 2^b − 1 makes the grid the half-integers −7.5 … 7.5.
	const b = 4
	const clip = 7.5
	rng := rand.New(rand.NewPCG(5, 6))
	weights := []uint64{1, 4, 7}
	var W uint64
	levels := make([][]uint64, len(weights))
	xs := make([][]float32, len(weights))
	for c, w := range weights {
		W += w
		xs[c] = make([]float32, 64)
		levels[c] = make([]uint64, 64)
		for i := range xs[c] {
			q := rng.Uint64N(16)
			levels[c][i] = q
			xs[c][i] = float32(q) - clip
		}
		enc, err := Encode(xs[c], clip, b, w, rng)
		if err != nil {
			t.Fatal(err)
		}
		for i := range enc {
			if enc[i] != w*levels[c][i] {
				t.Fatalf("client %d index %d: %d, want %d", c, i, enc[i], w*levels[c][i])
			}
		}
	}
	sum := make([]uint64, 64)
	for c, w := range weights {
		for i := range sum {
			sum[i] += w * levels[c][i]
		}
	}
	dec, err := DecodeSum(sum, clip, b, W)
	if err != nil {
		t.Fatal(err)
	}
	for i := range dec {
		var want float64
		for c, w := range weights {
			want += float64(w) * float64(xs[c][i])
		}
		if dec[i] != want {
			t.Fatalf("index %d: decoded %v, want %v exactly", i, dec[i], want)
		}
	}
	if _, err := DecodeSum([]uint64{W*15 + 1}, clip, b, W); err == nil {
		t.Fatal("a sum above W·(2^b−1) decoded")
	}
}

package compute

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// vecLens covers every tail length around the 8- and 32-wide loops and the
// Kron-LoRA per-token lengths (100–3000).
func vecLens() []int {
	var l []int
	for n := 0; n <= 80; n++ {
		l = append(l, n)
	}
	return append(l, 100, 255, 256, 257, 1000, 1023, 3000)
}

// randMag returns values with |v| in [0.5, 1) and random sign, so every term
// of a sum is large enough that dropping or repeating one exceeds the
// rounding bounds below.
func randMag(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		v := float32(0.5 + r.Float64()/2)
		if r.IntN(2) == 0 {
			v = -v
		}
		s[i] = v
	}
	return s
}

// forBothPaths runs f with the assembly kernels (where present) and with
// the portable Go ones.
func forBothPaths(t *testing.T, f func(t *testing.T)) {
	t.Run("default", f)
	t.Run("portable", func(t *testing.T) { withPortable(func() { f(t) }) })
}

func TestAxpy(t *testing.T) {
	forBothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 9))
		for _, n := range vecLens() {
			off := r.IntN(8) // misalign the start
			x := randMag(r, n+off)[off:]
			y := randMag(r, n+off+3)[off:] // y longer than x: the extra stays
			y0 := append([]float32(nil), y...)
			alpha := float32(r.NormFloat64())
			Axpy(alpha, x, y)
			for i := range y {
				if i >= n {
					if y[i] != y0[i] {
						t.Fatalf("n=%d: y[%d] beyond len(x) changed", n, i)
					}
					continue
				}
				ax := float64(alpha) * float64(x[i])
				want := float64(y0[i]) + ax
				// One product and one sum (or one FMA): at most 2 roundings.
				if d := math.Abs(float64(y[i]) - want); d > 2*u32*(math.Abs(float64(y0[i]))+math.Abs(ax)) {
					t.Fatalf("n=%d: y[%d] = %g, want %g", n, i, y[i], want)
				}
			}
		}
	})
}

func TestAxpy2(t *testing.T) {
	forBothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(2, 9))
		for _, n := range vecLens() {
			off := r.IntN(8)
			x0 := randMag(r, n+off+2)[off:] // x longer than y: only len(y) used
			x1 := randMag(r, n+off+1)[off:]
			y := randMag(r, n+off)[off:]
			y0 := append([]float32(nil), y...)
			a0, a1 := float32(r.NormFloat64()), float32(r.NormFloat64())
			Axpy2(a0, x0, a1, x1, y)
			for i := range y {
				t0 := float64(a0) * float64(x0[i])
				t1 := float64(a1) * float64(x1[i])
				want := float64(y0[i]) + t0 + t1
				mag := math.Abs(float64(y0[i])) + math.Abs(t0) + math.Abs(t1)
				if d := math.Abs(float64(y[i]) - want); d > 4*u32*mag {
					t.Fatalf("n=%d: y[%d] = %g, want %g", n, i, y[i], want)
				}
			}
		}
	})
}

func TestDot(t *testing.T) {
	forBothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 9))
		for _, n := range vecLens() {
			off := r.IntN(8)
			x := randMag(r, n+off)[off:]
			y := randMag(r, n+off+5)[off:]
			got := Dot(x, y)
			var want, mag float64
			for i := range x {
				p := float64(x[i]) * float64(y[i])
				want += p
				mag += math.Abs(p)
			}
			// Any summation with at least 4 independent partial sums:
			// depth ≤ n/4 + 8 roundings. Dropping a term (|x·y| ≥ 0.25)
			// exceeds this for n ≤ 3000.
			if d := math.Abs(float64(got) - want); d > float64(n/4+8)*u32*mag {
				t.Fatalf("n=%d: Dot = %g, want %g (diff %g)", n, got, want, d)
			}
		}
	})
}

func TestScale(t *testing.T) {
	forBothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(4, 9))
		for _, n := range vecLens() {
			off := r.IntN(8)
			x := randMag(r, n+off)[off:]
			x0 := append([]float32(nil), x...)
			alpha := float32(r.NormFloat64())
			Scale(alpha, x)
			for i := range x {
				// Exactly one rounding: the float32 product is the answer.
				if want := alpha * x0[i]; x[i] != want {
					t.Fatalf("n=%d: x[%d] = %g, want %g", n, i, x[i], want)
				}
			}
		}
	})
}

func BenchmarkVec(b *testing.B) {
	for _, n := range []int{100, 768, 3000} {
		r := rand.New(rand.NewPCG(1, 1))
		x, x1, y := randSlice(r, n), randSlice(r, n), randSlice(r, n)
		b.Run(fmt.Sprintf("Axpy/%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				Axpy(1e-3, x, y)
			}
		})
		b.Run(fmt.Sprintf("Axpy2/%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				Axpy2(1e-3, x, -1e-3, x1, y)
			}
		})
		b.Run(fmt.Sprintf("Dot/%d", n), func(b *testing.B) {
			var s float32
			for i := 0; i < b.N; i++ {
				s += Dot(x, y)
			}
			_ = s
		})
		b.Run(fmt.Sprintf("Scale/%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				Scale(1.0000001, y)
			}
		})
		b.Run(fmt.Sprintf("AxpyGo/%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				axpyGo(1e-3, x, y)
			}
		})
		b.Run(fmt.Sprintf("DotGo/%d", n), func(b *testing.B) {
			var s float32
			for i := 0; i < b.N; i++ {
				s += dotGo(x, y)
			}
			_ = s
		})
	}
}

// TestMax checks Max against a plain loop at every tail length: the largest
// element wherever it sits, −Inf rows (masked attention keys), and a NaN
// anywhere making the result NaN.
func TestMax(t *testing.T) {
	forBothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		if got := Max(nil); !math.IsInf(float64(got), -1) {
			t.Fatalf("Max(nil) = %v, want -Inf", got)
		}
		for _, n := range vecLens() {
			if n == 0 {
				continue
			}
			x := randMag(r, n)
			for pos := 0; pos < n; pos += max(1, n/7) {
				y := append([]float32(nil), x...)
				y[pos] = 3 // the unique largest element
				if got := Max(y); got != 3 {
					t.Fatalf("n=%d largest at %d: Max = %v, want 3", n, pos, got)
				}
				for i := range y {
					y[i] = float32(math.Inf(-1))
				}
				y[pos] = -2
				if got := Max(y); got != -2 {
					t.Fatalf("n=%d all -Inf but %d: Max = %v, want -2", n, pos, got)
				}
				y[pos] = float32(math.Inf(-1))
				if got := Max(y); !math.IsInf(float64(got), -1) {
					t.Fatalf("n=%d all -Inf: Max = %v", n, got)
				}
				copy(y, x)
				y[pos] = float32(math.NaN())
				if got := Max(y); !math.IsNaN(float64(got)) {
					t.Fatalf("n=%d NaN at %d: Max = %v, want NaN", n, pos, got)
				}
			}
			if got, want := Max(x), maxGo(x); got != want {
				t.Fatalf("n=%d: Max = %v, loop %v", n, got, want)
			}
		}
	})
}

// TestMulAdd: MulAdd gives the unfused Go expression's bits at every tail
// length (an FMA would differ in the last bit for many of these).
func TestMulAdd(t *testing.T) {
	forBothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 5))
		for _, n := range vecLens() {
			x, y := randMag(r, n), randMag(r, n+1)
			alpha := float32(r.NormFloat64())
			want := append([]float32(nil), y...)
			mulAddGo(alpha, x, want[:n])
			MulAdd(alpha, x, y)
			for i := range y {
				if math.Float32bits(y[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n=%d: y[%d] = %v, want %v", n, i, y[i], want[i])
				}
			}
		}
	})
}

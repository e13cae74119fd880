package compute

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// u32 is the float32 unit roundoff.
const u32 = 1.0 / (1 << 24)

// refGemm computes alpha·op(A)·op(B) + beta·C0 in float64 from the float32
// inputs and, per element, the magnitude |alpha|·Σ|a||b| + |beta·c0| that
// bounds the rounding error of any float32 evaluation order.
func refGemm(tA, tB Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c0 []float32, ldc int) (want, mag []float64) {
	want = make([]float64, m*n)
	mag = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, sa float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if tA {
					av = float64(a[p*lda+i])
				} else {
					av = float64(a[i*lda+p])
				}
				if tB {
					bv = float64(b[j*ldb+p])
				} else {
					bv = float64(b[p*ldb+j])
				}
				s += av * bv
				sa += math.Abs(av * bv)
			}
			w := float64(alpha) * s
			g := math.Abs(float64(alpha)) * sa
			if beta != 0 {
				cv := float64(beta) * float64(c0[i*ldc+j])
				w += cv
				g += math.Abs(cv)
			}
			want[i*n+j] = w
			mag[i*n+j] = g
		}
	}
	return want, mag
}

// gemmTol is the error allowed relative to mag: the worst-case bound for a
// float32 dot product of length k, γ_{k+3} ≈ (k+3)·u (k products summed in
// any order, alpha folded into A, beta·C added), with a factor 2 of slack.
// A wrong kernel (a dropped, doubled or misplaced term) is off by about
// mag/k, far above this for the k ≤ 1200 used here.
func gemmTol(k int) float64 { return 2 * float64(k+3) * u32 }

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.Float64()*2 - 1)
	}
	return s
}

type gemmCase struct {
	tA, tB      Transpose
	m, n, k     int
	padA, padB  int // extra leading-dimension elements
	padC        int
	alpha, beta float32
}

func (tc gemmCase) String() string {
	t := func(x Transpose) string {
		if x {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s/m%d_n%d_k%d/pad%d,%d,%d/a%g_b%g", t(tc.tA), t(tc.tB), tc.m, tc.n, tc.k, tc.padA, tc.padB, tc.padC, tc.alpha, tc.beta)
}

// operands builds A, B and C for the case; C starts with NaN when beta is 0
// (it must be ignored) and sentinel values in the ldc padding.
func (tc gemmCase) operands(r *rand.Rand) (a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	rowsA, colsA := tc.m, tc.k
	if tc.tA {
		rowsA, colsA = tc.k, tc.m
	}
	rowsB, colsB := tc.k, tc.n
	if tc.tB {
		rowsB, colsB = tc.n, tc.k
	}
	lda, ldb, ldc = colsA+tc.padA, colsB+tc.padB, tc.n+tc.padC
	a = randSlice(r, max(0, (rowsA-1)*lda+colsA))
	b = randSlice(r, max(0, (rowsB-1)*ldb+colsB))
	c = randSlice(r, max(0, (tc.m-1)*ldc+tc.n))
	for i := 0; i < tc.m; i++ {
		for j := tc.n; j < ldc && i*ldc+j < len(c); j++ {
			c[i*ldc+j] = 12345
		}
		if tc.beta == 0 {
			for j := 0; j < tc.n; j++ {
				c[i*ldc+j] = float32(math.NaN())
			}
		}
	}
	return
}

// check compares got (C after the product) with the float64 reference.
func (tc gemmCase) check(t *testing.T, what string, got []float32, ldc int, want, mag []float64) {
	t.Helper()
	tol := gemmTol(tc.k)
	bad := 0
	for i := 0; i < tc.m; i++ {
		for j := 0; j < ldc && i*ldc+j < len(got); j++ {
			g := got[i*ldc+j]
			if j >= tc.n {
				if g != 12345 {
					t.Errorf("%s %v: C[%d][%d] (ldc padding) overwritten: %g", what, tc, i, j, g)
					return
				}
				continue
			}
			w, e := want[i*tc.n+j], mag[i*tc.n+j]*tol+1e-30
			if d := math.Abs(float64(g) - w); !(d <= e) {
				if bad++; bad <= 3 {
					t.Errorf("%s %v: C[%d][%d] = %g, want %g (|diff| %.3g > bound %.3g)", what, tc, i, j, g, w, d, e)
				}
			}
		}
	}
}

// run computes the case with Gemm and with PackB+GemmPacked and checks both.
func (tc gemmCase) run(t *testing.T, r *rand.Rand) {
	t.Helper()
	a, lda, b, ldb, c, ldc := tc.operands(r)
	want, mag := refGemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	got := append([]float32(nil), c...)
	Gemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, got, ldc)
	tc.check(t, "Gemm", got, ldc, want, mag)

	pb := PackB(tc.tB, tc.k, tc.n, b, ldb)
	if pb.K() != tc.k || pb.N() != tc.n {
		t.Fatalf("PackB dims %d×%d, want %d×%d", pb.K(), pb.N(), tc.k, tc.n)
	}
	got2 := append([]float32(nil), c...)
	GemmPacked(tc.tA, tc.m, tc.alpha, a, lda, pb, tc.beta, got2, ldc)
	tc.check(t, "GemmPacked", got2, ldc, want, mag)
}

var transCases = [][2]Transpose{{NoTrans, NoTrans}, {NoTrans, Trans}, {Trans, NoTrans}, {Trans, Trans}}

// shapes covers: empty dimensions, 1, sizes around mr=6 and nr=16 (and the
// 12×8 narrow-panel kernel: n mod 16 ≤ 8), k around the 8-step unroll and
// the kcMax=384 pass split, m past mcMax=96 (several row blocks), products
// big enough (≥ parallelMinFlops) to be threaded — including small m with
// wide n, which is split by columns — and the m==1, n==1 and n ≤ 8 paths.
var shapes = [][3]int{
	{0, 5, 7}, {4, 0, 3}, {3, 4, 0}, {1, 1, 1}, {1, 17, 9}, {7, 1, 13},
	{6, 16, 8}, {5, 15, 7}, {7, 17, 9}, {12, 32, 1}, {13, 33, 31},
	{6, 16, 256}, {11, 20, 257}, {30, 50, 300}, {12, 32, 384}, {9, 20, 385}, {150, 40, 70},
	{97, 130, 90}, {300, 65, 120}, {5, 700, 400}, {64, 48, 517},
	{1, 300, 200}, {1, 40, 700}, {250, 1, 100}, {30, 1, 600},
	{40, 8, 100}, {200, 3, 1100}, {2050, 8, 30}, {17, 5, 16}, {3000, 7, 64},
	// around the AVX-512 kernel's 24-row tile
	{24, 16, 8}, {25, 17, 9}, {48, 32, 20}, {23, 40, 33}, {120, 48, 700}, {196, 24, 150},
	// B wide enough for its columns to be split between threads, with an
	// odd panel left to the 24×16 kernel
	{100, 2060, 24},
}

func testGemmAll(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1))
	for _, s := range shapes {
		for _, tr := range transCases {
			for _, ab := range [][2]float32{{1, 0}, {-0.7, 1}, {2.5, 0.5}} {
				pads := [3]int{0, 0, 0}
				if r.IntN(2) == 0 {
					pads = [3]int{r.IntN(5) + 1, r.IntN(5) + 1, r.IntN(5) + 1}
				}
				tc := gemmCase{tA: tr[0], tB: tr[1], m: s[0], n: s[1], k: s[2],
					padA: pads[0], padB: pads[1], padC: pads[2], alpha: ab[0], beta: ab[1]}
				tc.run(t, r)
			}
		}
	}
}

// withThreads runs f with SetThreads(n) and restores the setting.
func withThreads(n int, f func()) {
	prev := SetThreads(n)
	defer SetThreads(prev)
	f()
}

// withPortable runs f with the assembly kernels switched off.
func withPortable(f func()) {
	prev := useAsm
	useAsm = false
	defer func() { useAsm = prev }()
	f()
}

// withKernel runs f with the kernel width forced: -1 the AVX2 6×16 kernel,
// +1 the AVX-512 24×16 one (where the CPU has AVX-512F).
func withKernel(force int, f func()) {
	prev := kernelOverride
	kernelOverride = force
	defer func() { kernelOverride = prev }()
	f()
}

type kernelWidth struct {
	name  string
	force int
}

// kernelWidths are the kernel paths this machine can run, so every GEMM
// test covers each of them, whatever the start-up measurement chose.
func kernelWidths() []kernelWidth {
	w := []kernelWidth{{"avx2", -1}}
	var zmm bool
	withKernel(1, func() { zmm = useZMM() })
	if zmm {
		w = append(w, kernelWidth{"avx512", 1})
	}
	return w
}

func TestGemm(t *testing.T) {
	for _, kw := range kernelWidths() {
		for _, th := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/threads%d", kw.name, th), func(t *testing.T) {
				withKernel(kw.force, func() {
					withThreads(th, func() { testGemmAll(t, uint64(th)) })
				})
			})
		}
	}
}

func TestGemmPortable(t *testing.T) {
	withPortable(func() {
		withThreads(2, func() { testGemmAll(t, 7) })
	})
}

// TestGemmRandom tries random shapes and settings beyond the fixed table.
func TestGemmRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 2))
	n := 60
	if testing.Short() {
		n = 15
	}
	for it := 0; it < n; it++ {
		tc := gemmCase{
			tA: Transpose(r.IntN(2) == 0), tB: Transpose(r.IntN(2) == 0),
			m: r.IntN(90), n: r.IntN(90), k: r.IntN(600),
			padA: r.IntN(3), padB: r.IntN(3), padC: r.IntN(3),
			alpha: float32(r.NormFloat64()), beta: []float32{0, 1, 0.5, -2}[r.IntN(4)],
		}
		kw := kernelWidths()
		withKernel(kw[r.IntN(len(kw))].force, func() {
			withThreads(1+r.IntN(3), func() { tc.run(t, r) })
		})
	}
}

// TestGemmLargeK covers several kc passes with accumulation into C and a
// column-chunked B (maxPackedB) is exercised with a tiny product via the
// PackedB of a wide matrix.
func TestGemmLargeK(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, tr := range transCases {
		tc := gemmCase{tA: tr[0], tB: tr[1], m: 20, n: 24, k: 1200, alpha: 0.3, beta: 0.5, padA: 1, padC: 2}
		tc.run(t, r)
	}
}

// TestGemmConcurrent calls Gemm and GemmPacked from several goroutines at
// once, sharing one PackedB, with the product big enough to be threaded.
func TestGemmConcurrent(t *testing.T) {
	withThreads(2, func() {
		r := rand.New(rand.NewPCG(5, 5))
		const m, n, k = 70, 90, 200
		tc := gemmCase{tA: NoTrans, tB: Trans, m: m, n: n, k: k, alpha: 1, beta: 0}
		a, lda, b, ldb, c, ldc := tc.operands(r)
		want, mag := refGemm(tc.tA, tc.tB, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
		pb := PackB(Trans, k, n, b, ldb)
		var wg sync.WaitGroup
		for g := 0; g < 6; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for it := 0; it < 4; it++ {
					got := make([]float32, len(c))
					if (g+it)%2 == 0 {
						Gemm(tc.tA, tc.tB, m, n, k, 1, a, lda, b, ldb, 0, got, ldc)
					} else {
						GemmPacked(tc.tA, m, 1, a, lda, pb, 0, got, ldc)
					}
					tc.check(t, "concurrent", got, ldc, want, mag)
				}
			}()
		}
		wg.Wait()
	})
}

// TestGemmDeterministic checks the documented bit-for-bit agreement between
// thread counts, kernel widths, and Gemm and GemmPacked.
func TestGemmDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for _, tr := range transCases {
		tc := gemmCase{tA: tr[0], tB: tr[1], m: 150, n: 70, k: 600, alpha: 0.5, beta: 0.5}
		a, lda, b, ldb, c, ldc := tc.operands(r)
		var outs [][]float32
		// Every kernel accumulates every element in the same order (one
		// FMA per k step from zero, passes added in order), so models
		// trained on AVX2 and AVX-512 machines match bit for bit; the
		// AVX-512 runs take the 12×32 pair kernel where two whole panels
		// sit side by side, and with noPair the 24×16 kernel everywhere.
		for _, run := range []struct {
			th, kw int
			noPair bool
		}{{1, 0, false}, {2, 0, false}, {3, 0, false}, {1, 1, false}, {2, 1, false}, {1, 1, true}, {2, 1, true}} {
			kw := kernelWidths()
			prev := usePairKernel
			usePairKernel = !run.noPair
			defer func() { usePairKernel = prev }()
			withKernel(kw[min(run.kw, len(kw)-1)].force, func() {
				withThreads(run.th, func() {
					got := append([]float32(nil), c...)
					Gemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, got, ldc)
					outs = append(outs, got)
					got = append([]float32(nil), c...)
					GemmPacked(tc.tA, tc.m, tc.alpha, a, lda, PackB(tc.tB, tc.k, tc.n, b, ldb), tc.beta, got, ldc)
					outs = append(outs, got)
				})
			})
		}
		for i := 1; i < len(outs); i++ {
			for j := range outs[0] {
				if math.Float32bits(outs[i][j]) != math.Float32bits(outs[0][j]) {
					t.Fatalf("%v: run %d differs at %d: %g vs %g", tc, i, j, outs[i][j], outs[0][j])
				}
			}
		}
	}
}

func TestSetThreads(t *testing.T) {
	prev := SetThreads(3)
	if got := Threads(); got != 3 {
		t.Fatalf("Threads() = %d after SetThreads(3)", got)
	}
	if p := SetThreads(1); p != 3 {
		t.Fatalf("SetThreads returned %d, want 3", p)
	}
	SetThreads(0)
	if Threads() < 1 {
		t.Fatalf("SetThreads(0) gave %d threads", Threads())
	}
	SetThreads(prev)
}

func TestGemmPanics(t *testing.T) {
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	a := make([]float32, 6)
	mustPanic("short A", func() { Gemm(NoTrans, NoTrans, 2, 2, 4, 1, a, 4, a, 2, 0, a, 2) })
	mustPanic("bad lda", func() { Gemm(NoTrans, NoTrans, 2, 2, 3, 1, a, 2, a, 2, 0, a, 2) })
	mustPanic("negative", func() { Gemm(NoTrans, NoTrans, -1, 2, 3, 1, a, 3, a, 2, 0, a, 2) })
	pb := PackB(NoTrans, 2, 3, a, 3)
	mustPanic("packed short C", func() { GemmPacked(NoTrans, 2, 1, a, 2, pb, 0, a[:4], 3) })
}

// TestGemmSmall: the tiny-product path gives gemmRef's bits exactly, for
// every transpose pair, shapes up to smallGemm multiply-adds (k·n = 4096
// for one row), beta 0, 1 and 0.3, zeros in A (whose products are skipped,
// so ±Inf and NaN in B's matching rows must not reach C) and −0 in C.
func TestGemmSmall(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 3))
	shapes := [][3]int{{1, 1, 1}, {3, 5, 7}, {16, 16, 16}, {1, 64, 64}, {12, 12, 28}, {7, 9, 1}, {2, 33, 31}}
	for _, sh := range shapes {
		m, n, k := sh[0], sh[1], sh[2]
		for _, tA := range []Transpose{NoTrans, Trans} {
			for _, tB := range []Transpose{NoTrans, Trans} {
				for _, beta := range []float32{0, 1, 0.3} {
					a := make([]float32, m*k)
					for i := range a {
						a[i] = float32(r.NormFloat64())
						if r.IntN(5) == 0 {
							a[i] = 0
						}
					}
					b := make([]float32, k*n)
					for i := range b {
						b[i] = float32(r.NormFloat64())
					}
					// Poison B where an A column (tA: row) is all zeros:
					// gemmRef skips those products.
					for p := 0; p < k; p++ {
						zero := true
						for i := 0; i < m; i++ {
							if (tA && a[p*m+i] != 0) || (!tA && a[i*k+p] != 0) {
								zero = false
							}
						}
						if zero {
							for j := 0; j < n; j++ {
								if tB {
									b[j*k+p] = float32(math.Inf(1))
								} else {
									b[p*n+j] = float32(math.NaN())
								}
							}
						}
					}
					c0 := make([]float32, m*n)
					for i := range c0 {
						c0[i] = float32(r.NormFloat64())
						if i%7 == 0 {
							c0[i] = float32(math.Copysign(0, -1))
						}
					}
					lda, ldb := k, n
					if tA {
						lda = m
					}
					if tB {
						ldb = k
					}
					want := append([]float32(nil), c0...)
					gemmRef(tA, tB, m, n, k, 1.5, a, lda, b, ldb, beta, want, n)
					forBothPaths(t, func(t *testing.T) {
						got := append([]float32(nil), c0...)
						gemmSmall(tA, tB, m, n, k, 1.5, a, lda, b, ldb, beta, got, n)
						for i := range got {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(math.IsNaN(float64(got[i])) && math.IsNaN(float64(want[i]))) {
								t.Fatalf("%d×%d×%d tA=%v tB=%v beta=%v: C[%d] = %v, gemmRef %v", m, n, k, tA, tB, beta, i, got[i], want[i])
							}
						}
					})
				}
			}
		}
	}
}

// gemmRef is the plain triple loop: the oracle TestGemmSmall holds gemmSmall
// to, bit for bit.
func gemmRef(tA, tB Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(ci)
		} else if beta != 1 {
			for j := range ci {
				ci[j] *= beta
			}
		}
		for p := 0; p < k; p++ {
			var aip float32
			if tA {
				aip = a[p*lda+i]
			} else {
				aip = a[i*lda+p]
			}
			aip *= alpha
			if aip == 0 {
				continue
			}
			if tB {
				for j := range ci {
					ci[j] += aip * b[j*ldb+p]
				}
			} else {
				bp := b[p*ldb : p*ldb+n]
				for j, v := range bp {
					ci[j] += aip * v
				}
			}
		}
	}
}

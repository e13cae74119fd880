package cuda

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// rowRef is the row-major product, the way compute.Gemm defines it, in float64.
func rowRef(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				var av, bv float64
				if tA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if tB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
		}
	}
}

// colRef is reference BLAS's column-major GEMM: C (m×n) = alpha·op(A)·op(B) + beta·C,
// element (r, c) of X at X[r + c·ld].
func colRef(opA, opB int, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for j := range n {
		for i := range m {
			var s float64
			for p := range k {
				var av, bv float64
				if opA == cublasOpT {
					av = a[p+i*lda]
				} else {
					av = a[i+p*lda]
				}
				if opB == cublasOpT {
					bv = b[j+p*ldb]
				} else {
					bv = b[p+j*ldb]
				}
				s += av * bv
			}
			c[i+j*ldc] = alpha*s + beta*c[i+j*ldc]
		}
	}
}

func randSlice(r *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = r.Float64()*2 - 1
	}
	return x
}

func TestGemmColumnMajorMapping(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const m, n, k = 5, 3, 4
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			aRows, aCols := m, k
			if tA {
				aRows, aCols = k, m
			}
			bRows, bCols := k, n
			if tB {
				bRows, bCols = n, k
			}
			lda, ldb, ldc := aCols+2, bCols+1, n+3 // padded rows catch ld mix-ups
			a := randSlice(r, aRows*lda)
			b := randSlice(r, bRows*ldb)
			c0 := randSlice(r, m*ldc)
			want := append([]float64(nil), c0...)
			rowRef(tA, tB, m, n, k, 0.75, a, lda, b, ldb, -0.5, want, ldc)

			g, err := toColMajor(rowGemm{transA: tA, transB: tB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, batch: 1})
			if err != nil {
				t.Fatal(err)
			}
			if !g.swapped {
				t.Fatal("mapping must swap the operands")
			}
			got := append([]float64(nil), c0...)
			// cuBLAS's A is our B's buffer, its B our A's.
			colRef(g.opA, g.opB, g.m, g.n, g.k, 0.75, b, g.lda, a, g.ldb, -0.5, got, g.ldc)
			for i := range got {
				if math.Abs(got[i]-want[i]) > 1e-12 {
					t.Fatalf("transA=%v transB=%v: C[%d] = %v, want %v", tA, tB, i, got[i], want[i])
				}
			}
		}
	}
}

func TestGemmStridedMapping(t *testing.T) {
	g, err := toColMajor(rowGemm{m: 2, n: 3, k: 4, lda: 4, ldb: 3, ldc: 3, strideA: 8, strideB: 0, strideC: 6, batch: 5})
	if err != nil {
		t.Fatal(err)
	}
	if g.strideA != 0 || g.strideB != 8 || g.strideC != 6 {
		t.Errorf("strides %d %d %d, want 0 8 6 (A and B swapped)", g.strideA, g.strideB, g.strideC)
	}
}

func TestGemmValidation(t *testing.T) {
	for _, c := range []struct {
		g    rowGemm
		want string
	}{
		{rowGemm{m: 2, n: 3, k: 4, lda: 3, ldb: 3, ldc: 3, batch: 1}, "lda=3 < 4"},
		{rowGemm{transA: true, m: 5, n: 3, k: 4, lda: 4, ldb: 3, ldc: 3, batch: 1}, "lda=4 < 5"},
		{rowGemm{m: 2, n: 3, k: 4, lda: 4, ldb: 2, ldc: 3, batch: 1}, "ldb=2 < 3"},
		{rowGemm{transB: true, m: 2, n: 3, k: 4, lda: 4, ldb: 3, ldc: 3, batch: 1}, "ldb=3 < 4"},
		{rowGemm{m: 2, n: 3, k: 4, lda: 4, ldb: 3, ldc: 2, batch: 1}, "ldc=2 < 3"},
		{rowGemm{m: -1, n: 3, k: 4, lda: 4, ldb: 3, ldc: 3, batch: 1}, "negative"},
		{rowGemm{m: 2, n: 3, k: 4, lda: 4, ldb: 3, ldc: 3, strideC: 5, batch: 2}, "overlap"},
		{rowGemm{m: 2, n: 3, k: 4, lda: 4, ldb: 3, ldc: 3, strideA: -1, strideC: 6, batch: 2}, "negative"},
	} {
		_, err := toColMajor(c.g)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error with %q", c.g, err, c.want)
		}
	}
	if huge := int64(math.MaxInt32) + 1; int64(int(huge)) == huge { // 64-bit int
		g := rowGemm{m: 2, n: 3, k: int(huge), lda: int(huge), ldb: 3, ldc: 3, batch: 1}
		if _, err := toColMajor(g); err == nil || !strings.Contains(err.Error(), "32-bit") {
			t.Errorf("k = 2³¹: %v", err)
		}
	}
	// Empty products are valid (Gemm makes them no-ops).
	if _, err := toColMajor(rowGemm{m: 0, n: 0, k: 0, lda: 1, ldb: 1, ldc: 1, batch: 1}); err != nil {
		t.Error(err)
	}
}

func TestGemmTypes(t *testing.T) {
	ok := [][3]DataType{{R32F, R32F, R32F}, {R16BF, R16BF, R32F}, {R16BF, R16BF, R16BF}, {R16F, R16F, R32F}}
	for _, c := range ok {
		if err := checkTypes(c[0], c[1], c[2]); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
	bad := [][3]DataType{{R32F, R16BF, R32F}, {R32F, R32F, R16BF}, {R16F, R16F, R16BF}, {DataType(7), DataType(7), R32F}}
	for _, c := range bad {
		if err := checkTypes(c[0], c[1], c[2]); err == nil {
			t.Errorf("%v accepted", c)
		}
	}
}

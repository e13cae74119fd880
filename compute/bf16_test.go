package compute

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestBF16Round(t *testing.T) {
	for _, c := range []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // tie, even below: stays
		{0x3f818000, 0x3f82}, // tie, odd below: rounds up to even
		{0x3f808001, 0x3f81}, // above the tie
		{0xbf80ffff, 0xbf81}, // negative, rounds away in magnitude
		{0x7f7fffff, 0x7f80}, // largest float32 rounds to +Inf
		{0x7f800000, 0x7f80}, // +Inf
		{0xff800000, 0xff80}, // -Inf
		{0x00000001, 0x0000}, // tiny denormal rounds to zero
	} {
		if got := BF16(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("BF16(%#08x) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	for _, nan := range []uint32{0x7fc00000, 0x7f800001, 0xffffffff} {
		if g := BF16ToFloat32(BF16(math.Float32frombits(nan))); g == g {
			t.Errorf("BF16(NaN %#08x) = %v, not NaN", nan, g)
		}
	}
	if g := BF16ToFloat32(0x4049); g != 3.140625 {
		t.Errorf("BF16ToFloat32(0x4049) = %v", g)
	}
}

func needBF16(t testing.TB) {
	if !HasBF16() {
		t.Skip("this CPU has no AVX512_BF16")
	}
}

// TestVDPBF16PSEncoding runs the hand-encoded instruction in every form the
// kernel uses (register form; broadcast from a base with no index, base AX
// with index DX, base R11 with index DX; source and destination registers
// above 7 and above 15) against a scalar reference:
//
//	dst[i] += src1[2i]·src2[2i] + src1[2i+1]·src2[2i+1]   (bf16 → fp32)
func TestVDPBF16PSEncoding(t *testing.T) {
	needBF16(t)
	r := rand.New(rand.NewPCG(5, 5))
	pack := func(lo, hi float32) float32 {
		return math.Float32frombits(uint32(BF16(hi))<<16 | uint32(BF16(lo)))
	}
	for form := 0; form < 4; form++ {
		var dst, src1, src2 [16]float32
		var a1, a2 [32]float32 // the bf16 values as float32
		for i := 0; i < 16; i++ {
			dst[i] = float32(r.NormFloat64())
			for h := 0; h < 2; h++ {
				a1[2*i+h] = BF16ToFloat32(BF16(float32(r.NormFloat64())))
				a2[2*i+h] = BF16ToFloat32(BF16(float32(r.NormFloat64())))
			}
			src1[i] = pack(a1[2*i], a1[2*i+1])
			src2[i] = pack(a2[2*i], a2[2*i+1])
		}
		want := dst
		for i := 0; i < 16; i++ {
			j := i // register form: lane by lane
			if form > 0 {
				j = 2 // broadcast forms read the 32-bit word at byte 8
			}
			w := float64(dst[i]) + float64(a1[2*i])*float64(a2[2*j]) + float64(a1[2*i+1])*float64(a2[2*j+1])
			want[i] = float32(w)
		}
		bf16DotTest(&dst, &src1, &src2, form)
		for i := range dst {
			if d := math.Abs(float64(dst[i] - want[i])); d > 4e-7*(1+math.Abs(float64(want[i]))) {
				t.Errorf("form %d lane %d: %v, want %v", form, i, dst[i], want[i])
			}
		}
	}
}

// refGemmBF16 is refGemm on the values the bf16 path multiplies: bf16(alpha·a)
// and bf16(b), exactly widened, products summed in float64.
func refGemmBF16(tc gemmCase, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) (want, mag []float64) {
	ar := make([]float32, len(a))
	for i, v := range a {
		ar[i] = BF16ToFloat32(BF16(tc.alpha * v))
	}
	br := make([]float32, len(b))
	for i, v := range b {
		br[i] = BF16ToFloat32(BF16(v))
	}
	return refGemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, 1, ar, lda, br, ldb, tc.beta, c, ldc)
}

// TestGemmBF16 checks GemmPacked over PackBBF16 against the float64 product
// of the bf16-rounded operands (so the bound is fp32 accumulation error
// only), over the GEMM shape table, every transpose, alpha/beta and thread
// count — and that the result differs from the fp32 product by no more
// than bf16 rounding of the inputs allows.
func TestGemmBF16(t *testing.T) {
	needBF16(t)
	for _, th := range []int{1, 2} {
		t.Run(fmt.Sprintf("threads%d", th), func(t *testing.T) {
			withThreads(th, func() {
				r := rand.New(rand.NewPCG(uint64(th), 9))
				for _, s := range append(shapes, [3]int{100, 70, 1537}, [3]int{48, 33, 769}) {
					for _, tr := range transCases {
						for _, ab := range [][2]float32{{1, 0}, {-0.7, 1}, {2.5, 0.5}} {
							tc := gemmCase{tA: tr[0], tB: tr[1], m: s[0], n: s[1], k: s[2], alpha: ab[0], beta: ab[1]}
							if r.IntN(2) == 0 {
								tc.padA, tc.padB, tc.padC = r.IntN(5)+1, r.IntN(5)+1, r.IntN(5)+1
							}
							a, lda, b, ldb, c, ldc := tc.operands(r)
							pb, err := PackBBF16(tc.tB, tc.k, tc.n, b, ldb)
							if err != nil {
								t.Fatal(err)
							}
							if !pb.BF16() || pb.K() != tc.k || pb.N() != tc.n {
								t.Fatalf("%v: packed %d×%d bf16=%v", tc, pb.K(), pb.N(), pb.BF16())
							}
							got := append([]float32(nil), c...)
							GemmPacked(tc.tA, tc.m, tc.alpha, a, lda, pb, tc.beta, got, ldc)
							want, mag := refGemmBF16(tc, a, lda, b, ldb, c, ldc)
							tc.check(t, "GemmPacked bf16", got, ldc, want, mag)
							// Against the fp32 product: bf16 keeps 8
							// significant bits, so each product is off
							// by at most ~2·2⁻⁸ of its magnitude.
							want32, mag32 := refGemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
							for i := 0; i < tc.m; i++ {
								for j := 0; j < tc.n; j++ {
									if d := math.Abs(float64(got[i*ldc+j]) - want32[i*tc.n+j]); d > 2*0x1p-8*mag32[i*tc.n+j]+1e-30 {
										t.Fatalf("%v: C[%d][%d] = %v, fp32 product %v: beyond bf16 rounding", tc, i, j, got[i*ldc+j], want32[i*tc.n+j])
									}
								}
							}
						}
					}
				}
			})
		})
	}
}

func TestPackBBF16Refuses(t *testing.T) {
	b := []float32{1, 2, 3, 4, 5, 6}
	if HasBF16() {
		b[4] = float32(math.Inf(-1))
		_, err := PackBBF16(NoTrans, 2, 3, b, 3)
		if err == nil || !strings.Contains(err.Error(), "element (1, 1)") || !strings.Contains(err.Error(), "-Inf") {
			t.Errorf("Inf in B: %v", err)
		}
		b[4] = float32(math.NaN())
		_, err = PackBBF16(Trans, 3, 2, b, 3) // op(B)[1][1] = B[1][1] = b[4]
		if err == nil || !strings.Contains(err.Error(), "element (1, 1)") || !strings.Contains(err.Error(), "NaN") {
			t.Errorf("NaN in B: %v", err)
		}
		b[4] = 5
	}
	withPortable(func() {
		if _, err := PackBBF16(NoTrans, 2, 3, b, 3); err == nil || !strings.Contains(err.Error(), "AVX512_BF16") {
			t.Errorf("without the bf16 kernels: %v", err)
		}
	})
}

// TestBF16Pairs: the vector rounding of activations (bf16Pairs) gives the
// bits of BF16 on every finite value — ties both ways, the largest float32,
// denormals, signed zeros — and keeps NaN NaN, at lengths with and without
// a 16-wide tail and an odd last value.
func TestBF16Pairs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	special := []uint32{0x3f808000, 0x3f818000, 0x3f808001, 0xbf80ffff, 0x7f7fffff, 0xff7fffff,
		0x00000001, 0x80000001, 0x007fffff, 0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000}
	for _, n := range []int{1, 2, 15, 16, 17, 31, 32, 33, 64, 333} {
		for _, alpha := range []float32{1, -0.75} {
			src := make([]float32, n)
			for i := range src {
				if r.IntN(3) == 0 {
					src[i] = math.Float32frombits(special[r.IntN(len(special))])
				} else {
					src[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(8)-4)))
				}
			}
			got := make([]uint32, (n+1)/2)
			bf16Pairs(got, src, alpha)
			want := make([]uint32, (n+1)/2)
			bf16PairsGo(want, src, alpha)
			for q := range got {
				for h := 0; h < 2; h++ {
					g, w := uint16(got[q]>>(16*h)), uint16(want[q]>>(16*h))
					gf, wf := BF16ToFloat32(g), BF16ToFloat32(w)
					if g != w && !(gf != gf && wf != wf) {
						t.Fatalf("n=%d alpha=%v pair %d half %d: %#04x, want %#04x (from %v)", n, alpha, q, h, g, w, alpha*src[min(2*q+h, n-1)])
					}
				}
			}
		}
	}
}

// TestGemmPackedT: the backward layout rebuilt from the forward copy
// (transposeBF16) is bit for bit what PackBBF16 makes of the transposed
// matrix — for shapes whose blocks all take the fast path, shapes with
// ragged edges, and passes that are not multiples of 16 (k 1000: passes of
// 500) — and GemmPackedT equals GemmPacked over that second copy.
func TestGemmPackedT(t *testing.T) {
	needBF16(t)
	r := rand.New(rand.NewPCG(12, 12))
	for _, s := range [][2]int{{768, 768}, {768, 3072}, {3072, 768}, {64, 48}, {37, 53}, {1000, 80}, {96, 1000}, {1537, 33}, {1, 17}, {16, 1}} {
		dOut, dIn := s[0], s[1]
		w := randSlice(r, dOut*dIn)
		fwd, err := PackBBF16(Trans, dIn, dOut, w, dIn) // Wᵀ: d_in×d_out
		if err != nil {
			t.Fatal(err)
		}
		bwd, err := PackBBF16(NoTrans, dOut, dIn, w, dIn) // W: d_out×d_in
		if err != nil {
			t.Fatal(err)
		}
		got := &PackedB{k: dOut, n: dIn, kc: chooseKCBF16(dOut), bf: make([]uint16, len(bwd.bf))}
		transposeBF16(fwd, got)
		if got.kc != bwd.kc {
			t.Fatalf("%dx%d: kc %d, PackBBF16 %d", dOut, dIn, got.kc, bwd.kc)
		}
		for i := range got.bf {
			if got.bf[i] != bwd.bf[i] {
				t.Fatalf("%d×%d: packed value %d is %#04x, PackBBF16 of W gives %#04x", dOut, dIn, i, got.bf[i], bwd.bf[i])
			}
		}
		const m = 30
		dy := randSlice(r, m*dOut)
		want, res := make([]float32, m*dIn), make([]float32, m*dIn)
		for i := range want {
			want[i] = float32(i%7) - 3
			res[i] = want[i]
		}
		GemmPacked(NoTrans, m, 0.5, dy, dOut, bwd, 1, want, dIn)
		GemmPackedT(NoTrans, m, 0.5, dy, dOut, fwd, 1, res, dIn)
		for i := range want {
			if res[i] != want[i] {
				t.Fatalf("%d×%d: GemmPackedT [%d] = %v, GemmPacked over the second copy %v", dOut, dIn, i, res[i], want[i])
			}
		}
	}
}

// TestBF16Pays: without AVX512_BF16 bf16 never pays; with it, the verdict
// agrees with the rate ratio it reports against the 1.3 threshold.
func TestBF16Pays(t *testing.T) {
	pays, why := BF16Pays()
	if !HasBF16() {
		if pays {
			t.Fatalf("BF16Pays on a CPU without AVX512_BF16 (%s)", why)
		}
		return
	}
	var ratio float64
	i := strings.Index(why, "measured at ")
	if i < 0 {
		t.Fatalf("BF16Pays reason %q names no measurement", why)
	}
	rest := strings.TrimPrefix(why[i+len("measured at "):], "only ")
	if _, err := fmt.Sscanf(rest, "%f×", &ratio); err != nil {
		t.Fatalf("BF16Pays reason %q: %v", why, err)
	}
	if pays != (ratio >= bf16MinSpeedup) {
		t.Fatalf("BF16Pays = %v with a measured ratio of %.2f (threshold %.1f)", pays, ratio, bf16MinSpeedup)
	}
	t.Log(why)
}

package secagg

import (
	"math/rand/v2"
	"testing"
)

// gfMulReference multiplies by a full 256-bit carry-less product and a
// separate reduction, independently of gf128.mul.
func gfMulReference(a, b gf128) gf128 {
	var p [4]uint64 // 256-bit product, little-endian words
	av := [2]uint64{a.lo, a.hi}
	bv := [2]uint64{b.lo, b.hi}
	for i := 0; i < 128; i++ {
		if bv[i/64]>>(i%64)&1 == 0 {
			continue
		}
		// p ^= a << i
		w, s := i/64, uint(i%64)
		for k := 0; k < 2; k++ {
			p[w+k] ^= av[k] << s
			if s != 0 {
				p[w+k+1] ^= av[k] >> (64 - s)
			}
		}
	}
	// Reduce bits 255..128 with x^128 = x^7 + x^2 + x + 1.
	for i := 255; i >= 128; i-- {
		if p[i/64]>>(i%64)&1 == 0 {
			continue
		}
		p[i/64] ^= 1 << (i % 64)
		for _, e := range []int{7, 2, 1, 0} {
			j := i - 128 + e
			p[j/64] ^= 1 << (j % 64)
		}
	}
	return gf128{p[0], p[1]}
}

func randGF(rng *rand.Rand) gf128 { return gf128{rng.Uint64(), rng.Uint64()} }

// TestGF128: multiplication matches an independent reference and the
// field laws hold; inversion inverts.
func TestGF128(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	one := gf128{lo: 1}
	for i := 0; i < 300; i++ {
		a, b, c := randGF(rng), randGF(rng), randGF(rng)
		if a.mul(b) != gfMulReference(a, b) {
			t.Fatalf("mul(%x, %x) differs from reference", a, b)
		}
		if a.mul(b) != b.mul(a) || a.mul(b).mul(c) != a.mul(b.mul(c)) || a.mul(b.add(c)) != a.mul(b).add(a.mul(c)) {
			t.Fatal("field laws fail")
		}
		if a.mul(one) != a {
			t.Fatal("1 is not the identity")
		}
		if !a.isZero() && a.mul(a.inv()) != one {
			t.Fatalf("a·a⁻¹ ≠ 1 for %x", a)
		}
	}
	// x^127 · x = x^128 = x^7 + x^2 + x + 1.
	if got := (gf128{hi: 1 << 63}).mul(gf128{lo: 2}); got != (gf128{lo: 0x87}) {
		t.Fatalf("x^128 = %x", got)
	}
	if !(gf128{}).inv().isZero() {
		t.Fatal("inv(0) ≠ 0")
	}
}

// TestShamir: any t of the shares recover the secret, in any order; t−1
// shares plus a wrong one, or shares of another split, do not.
func TestShamir(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	src := rand.NewChaCha8([32]byte{1})
	for _, tc := range []struct{ t, n int }{{2, 2}, {2, 5}, {3, 4}, {6, 8}, {13, 20}} {
		var secret [32]byte
		for i := range secret {
			secret[i] = byte(rng.Uint32())
		}
		xs := make([]uint32, tc.n)
		for i := range xs {
			xs[i] = uint32(1 + 3*i + rng.IntN(3)) // distinct, non-consecutive ids
		}
		shares, err := shamirSplit(secret, tc.t, xs, src)
		if err != nil {
			t.Fatal(err)
		}
		for trial := 0; trial < 20; trial++ {
			perm := rng.Perm(tc.n)[:tc.t]
			px := make([]uint32, tc.t)
			ps := make([][shareSize]byte, tc.t)
			for i, p := range perm {
				px[i], ps[i] = xs[p], shares[p]
			}
			got, err := shamirCombine(px, ps)
			if err != nil {
				t.Fatal(err)
			}
			if got != secret {
				t.Fatalf("t=%d n=%d: subset %v recovers a different secret", tc.t, tc.n, perm)
			}
			ps[0][5] ^= 1
			if got, _ := shamirCombine(px, ps); got == secret {
				t.Fatal("a corrupted share still recovers the secret")
			}
		}
		if tc.t > 2 {
			got, _ := shamirCombine(xs[:tc.t-1], shares[:tc.t-1])
			if got == secret {
				t.Fatal("t−1 shares recover the secret")
			}
		}
	}
	if _, err := shamirSplit([32]byte{}, 3, []uint32{1, 2}, src); err == nil {
		t.Fatal("threshold above holders accepted")
	}
	if _, err := shamirSplit([32]byte{}, 2, []uint32{1, 1}, src); err == nil {
		t.Fatal("repeated point accepted")
	}
	if _, err := shamirSplit([32]byte{}, 2, []uint32{0, 1}, src); err == nil {
		t.Fatal("zero point accepted")
	}
	if _, err := shamirCombine([]uint32{1, 1}, make([][shareSize]byte, 2)); err == nil {
		t.Fatal("repeated point accepted by combine")
	}
}

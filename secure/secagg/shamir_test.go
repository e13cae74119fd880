package secagg

import (
	"bytes"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// groupOrder is ℓ, the order of Ristretto255, written out here rather than
// taken from circl or go-ristretto.
var groupOrder = func() *big.Int {
	c, ok := new(big.Int).SetString("27742317777372353535851937790883648493", 10)
	if !ok {
		panic("bad constant")
	}
	return c.Add(c, new(big.Int).Lsh(big.NewInt(1), 252))
}()

// leInt reads b as a little-endian integer.
func leInt(b []byte) *big.Int {
	be := slices.Clone(b)
	slices.Reverse(be)
	return new(big.Int).SetBytes(be)
}

// leBytes writes v < 2^256 as 32 little-endian bytes.
func leBytes(v *big.Int) [32]byte {
	var out [32]byte
	v.FillBytes(out[:])
	slices.Reverse(out[:])
	return out
}

// lagrangeAt interpolates the points (xs[i], ys[i]) and evaluates the
// polynomial at x, with math/big modulo ℓ, independently of circl.
func lagrangeAt(xs []uint32, ys []*big.Int, x int64) *big.Int {
	sum := new(big.Int)
	for i := range xs {
		num, den := big.NewInt(1), big.NewInt(1)
		xi := big.NewInt(int64(xs[i]))
		for j := range xs {
			if j == i {
				continue
			}
			xj := big.NewInt(int64(xs[j]))
			num.Mul(num, new(big.Int).Sub(big.NewInt(x), xj))
			den.Mul(den, new(big.Int).Sub(xi, xj))
		}
		den.Mod(den, groupOrder)
		term := new(big.Int).Mul(ys[i], num)
		term.Mul(term, new(big.Int).ModInverse(den, groupOrder))
		sum.Add(sum, term)
	}
	return sum.Mod(sum, groupOrder)
}

func randomIDs(rng *rand.Rand, n int) []uint32 {
	xs := make([]uint32, n)
	for i := range xs {
		xs[i] = uint32(1 + 3*i + rng.IntN(3)) // distinct, non-consecutive ids
	}
	rng.Shuffle(n, func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
	return xs
}

// TestNewSeed: seeds are canonical scalars (below ℓ), reproducible from the
// reader and different from draw to draw.
func TestNewSeed(t *testing.T) {
	a, b := seededReader(5, 1), seededReader(5, 1)
	seen := map[[32]byte]bool{}
	for i := 0; i < 200; i++ {
		s, err := newSeed(a)
		if err != nil {
			t.Fatal(err)
		}
		if s2, _ := newSeed(b); s2 != s {
			t.Fatal("newSeed is not a function of the reader's bytes")
		}
		if leInt(s[:]).Cmp(groupOrder) >= 0 {
			t.Fatalf("seed %x is not below ℓ", s)
		}
		if seen[s] {
			t.Fatal("repeated seed")
		}
		seen[s] = true
	}
	if _, err := newSeed(bytes.NewReader(make([]byte, 63))); err == nil {
		t.Fatal("short randomness accepted")
	}
}

// TestShamir: any t of the shares recover the secret, in any order, and
// agree with an independent big.Int interpolation modulo ℓ; t−1 shares, a
// corrupted share or a share of another split do not recover it.
func TestShamir(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	src := rand.NewChaCha8([32]byte{1})
	for _, tc := range []struct{ t, n int }{{1, 3}, {2, 2}, {2, 5}, {3, 4}, {6, 8}, {13, 20}} {
		secret, err := newSeed(src)
		if err != nil {
			t.Fatal(err)
		}
		xs := randomIDs(rng, tc.n)
		shares, err := shamirSplit(secret, tc.t, xs, src)
		if err != nil {
			t.Fatal(err)
		}
		ys := make([]*big.Int, tc.n)
		for i := range shares {
			ys[i] = leInt(shares[i][:])
			if ys[i].Cmp(groupOrder) >= 0 {
				t.Fatalf("share %x is not a canonical scalar", shares[i])
			}
		}
		// The shares lie on one polynomial of degree t−1 whose value at 0
		// is the secret: interpolating any t of them (big.Int, mod ℓ) gives
		// the secret at 0 and the other shares at their points.
		if tc.t < tc.n {
			if got := lagrangeAt(xs[:tc.t], ys[:tc.t], int64(xs[tc.t])); got.Cmp(ys[tc.t]) != 0 {
				t.Fatalf("t=%d n=%d: share at %d is not on the polynomial through the first t", tc.t, tc.n, xs[tc.t])
			}
		}
		other, err := shamirSplit(secret, tc.t, xs, src)
		if err != nil {
			t.Fatal(err)
		}
		if tc.t > 1 && slices.Equal(other, shares) {
			t.Fatal("two splits of one secret gave the same shares")
		}
		for trial := 0; trial < 20; trial++ {
			perm := rng.Perm(tc.n)[:tc.t]
			px := make([]uint32, tc.t)
			ps := make([][shareSize]byte, tc.t)
			py := make([]*big.Int, tc.t)
			for i, p := range perm {
				px[i], ps[i], py[i] = xs[p], shares[p], ys[p]
			}
			if ref := leBytes(lagrangeAt(px, py, 0)); ref != secret {
				t.Fatalf("t=%d n=%d: big.Int interpolation of subset %v gives %x, want %x", tc.t, tc.n, perm, ref, secret)
			}
			got, err := shamirCombine(px, ps)
			if err != nil {
				t.Fatal(err)
			}
			if got != secret {
				t.Fatalf("t=%d n=%d: subset %v recovers a different secret", tc.t, tc.n, perm)
			}
			// A share of another split of the same secret, at the same
			// point, breaks recovery (for t = 1 every share is the secret).
			if tc.t > 1 {
				mixed := slices.Clone(ps)
				k := rng.IntN(tc.t)
				mixed[k] = other[perm[k]]
				if got, err := shamirCombine(px, mixed); err != nil || got == secret {
					t.Fatalf("a share of another split still recovers the secret (err %v)", err)
				}
			}
			// A changed (still canonical) share breaks recovery.
			ps[0][5] ^= 1
			if got, err := shamirCombine(px, ps); err != nil || got == secret {
				t.Fatalf("a corrupted share still recovers the secret (err %v)", err)
			}
		}
		if tc.t > 1 {
			got, err := shamirCombine(xs[:tc.t-1], shares[:tc.t-1])
			if err != nil {
				t.Fatal(err)
			}
			if got == secret {
				t.Fatal("t−1 shares recover the secret")
			}
		}
	}
}

// TestShamirRefuses: bad inputs are errors, never panics.
func TestShamirRefuses(t *testing.T) {
	src := rand.NewChaCha8([32]byte{2})
	secret, _ := newSeed(src)
	ell := leBytes(groupOrder)
	var ones [32]byte
	for i := range ones {
		ones[i] = 0xff
	}
	split := []struct {
		name   string
		secret [32]byte
		t      int
		xs     []uint32
	}{
		{"threshold above holders", secret, 3, []uint32{1, 2}},
		{"threshold zero", secret, 0, []uint32{1, 2}},
		{"no holders", secret, 1, nil},
		{"repeated point", secret, 2, []uint32{1, 1}},
		{"zero point", secret, 2, []uint32{0, 1}},
		{"secret ℓ (non-canonical)", ell, 2, []uint32{1, 2}},
		{"secret 2^256−1", ones, 2, []uint32{1, 2}},
	}
	for _, c := range split {
		if _, err := shamirSplit(c.secret, c.t, c.xs, src); err == nil {
			t.Errorf("shamirSplit: %s accepted", c.name)
		}
	}
	shares, err := shamirSplit(secret, 2, []uint32{1, 2, 3}, src)
	if err != nil {
		t.Fatal(err)
	}
	bad := func(i int, v [32]byte) [][shareSize]byte {
		s := slices.Clone(shares[:2])
		s[i] = v
		return s
	}
	combine := []struct {
		name   string
		xs     []uint32
		shares [][shareSize]byte
	}{
		{"nothing", nil, nil},
		{"more points than shares", []uint32{1, 2, 3}, shares[:2]},
		{"more shares than points", []uint32{1}, shares[:2]},
		{"repeated point", []uint32{1, 1}, shares[:2]},
		{"zero point", []uint32{0, 2}, shares[:2]},
		{"share ℓ", []uint32{1, 2}, bad(1, ell)},
		{"share 2^256−1", []uint32{1, 2}, bad(0, ones)},
	}
	for _, c := range combine {
		if _, err := shamirCombine(c.xs, c.shares); err == nil {
			t.Errorf("shamirCombine: %s accepted", c.name)
		}
	}
	// The error for a non-canonical share names the point holding it.
	if _, err := shamirCombine([]uint32{1, 2}, bad(1, ell)); err == nil || !strings.Contains(err.Error(), "client 2") {
		t.Errorf("non-canonical share: error %v does not name client 2", err)
	}
	// ℓ−1 is canonical: accepted.
	lm1 := leBytes(new(big.Int).Sub(groupOrder, big.NewInt(1)))
	if _, err := shamirSplit(lm1, 2, []uint32{1, 2}, src); err != nil {
		t.Errorf("secret ℓ−1 refused: %v", err)
	}
	if _, err := shamirCombine([]uint32{1, 2}, bad(0, lm1)); err != nil {
		t.Errorf("share ℓ−1 refused: %v", err)
	}
}

// FuzzShamir: combining arbitrary bytes never panics and, when it succeeds,
// yields a canonical scalar; splitting an arbitrary 32-byte secret either
// refuses it (non-canonical) or shares it so that the first and the last t
// shares both recover it.
func FuzzShamir(f *testing.F) {
	f.Add(make([]byte, 32), uint8(2), uint8(3))
	f.Add(bytes.Repeat([]byte{0xff}, 100), uint8(1), uint8(1))
	ell := leBytes(groupOrder)
	f.Add(ell[:], uint8(3), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, th, n uint8) {
		// Combine: data is a sequence of (2-byte id, 32-byte share).
		var xs []uint32
		var shares [][shareSize]byte
		for rest := data; len(rest) >= 34; rest = rest[34:] {
			xs = append(xs, uint32(rest[0])|uint32(rest[1])<<8)
			shares = append(shares, [shareSize]byte(rest[2:34]))
		}
		if got, err := shamirCombine(xs, shares); err == nil && leInt(got[:]).Cmp(groupOrder) >= 0 {
			t.Fatalf("combine returned a non-canonical secret %x", got)
		}
		// Split.
		var secret [32]byte
		copy(secret[:], data)
		holders := int(n%16) + 1
		thr := int(th)%holders + 1
		xs = make([]uint32, holders)
		for i := range xs {
			xs[i] = uint32(3*i + 1)
		}
		shares, err := shamirSplit(secret, thr, xs, rand.NewChaCha8([32]byte{}))
		canonical := leInt(secret[:]).Cmp(groupOrder) < 0
		if (err == nil) != canonical {
			t.Fatalf("split of %x: err %v, canonical %v", secret, err, canonical)
		}
		if err != nil {
			return
		}
		for _, from := range []int{0, holders - thr} {
			got, err := shamirCombine(xs[from:from+thr], shares[from:from+thr])
			if err != nil || got != secret {
				t.Fatalf("shares %d..%d of %x recover %x (err %v)", from, from+thr-1, secret, got, err)
			}
		}
	})
}

// TestServerBadRevealedShare: a revealed share that is not a canonical
// scalar makes Result fail naming its holder; a canonical but wrong one
// fails the commitment check. Neither yields a sum.
func TestServerBadRevealedShare(t *testing.T) {
	ell := leBytes(groupOrder)
	for _, tc := range []struct {
		name string
		bad  func(v *[shareSize]byte)
		want string
	}{
		{"non-canonical", func(v *[shareSize]byte) { *v = ell }, "is not a canonical Ristretto255 scalar"},
		{"wrong", func(v *[shareSize]byte) { v[0] ^= 1 }, "does not match its commitment"},
	} {
		cfg, inputs := randomInputs(t, Config{Round: 7, N: 10, Bits: 4, Length: 8}, 3)
		clients, srv, _ := maskedCohort(t, cfg, inputs)
		g, _ := srv.Config().Graph()
		req, err := srv.UnmaskRequest()
		if err != nil {
			t.Fatal(err)
		}
		const owner = 4
		holder := slices.Min(g.Neighbours(owner)) // its share is among the first t
		for id, c := range clients {
			resp, err := c.Unmask(req)
			if err != nil {
				t.Fatal(err)
			}
			if id == holder {
				for i := range resp.Shares {
					if resp.Shares[i].Owner == owner {
						tc.bad(&resp.Shares[i].Value)
					}
				}
			}
			if err := srv.AddUnmask(resp); err != nil {
				t.Fatal(err)
			}
		}
		sum, err := srv.Result()
		if err == nil || sum != nil {
			t.Fatalf("%s: a bad share of client %d gave a sum", tc.name, owner)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: error %q does not contain %q", tc.name, err, tc.want)
		}
		if tc.name == "non-canonical" && !strings.Contains(err.Error(), fmt.Sprintf("held by client %d", holder)) {
			t.Fatalf("%s: error %q does not name holder %d", tc.name, err, holder)
		}
	}
}

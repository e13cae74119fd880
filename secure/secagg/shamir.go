package secagg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Shamir secret sharing of 32-byte secrets over GF(2^128).
//
// A secret is split into two 16-byte halves; each half is an element of
// GF(2^128) and is shared with its own random polynomial of degree t−1 whose
// constant term is the half. Both polynomials are evaluated at the same
// point, the receiving client's id (ids are 1..N, distinct and non-zero, so
// they are valid evaluation points), and a share is the two 16-byte values.
// Any t shares determine the secret by Lagrange interpolation at zero; any
// t−1 are uniformly distributed whatever the secret (perfect secrecy), as
// in every Shamir scheme over a field.
//
// Why not circl's secretsharing over a group scalar field: that package
// needs circl/group, which imports github.com/bwesterb/go-ristretto, and the
// module's go.sum has no entry for it. A binary field also sidesteps the
// "does the secret fit below the group order" question: every 128-bit
// string is a field element.
//
// The field is GF(2)[x]/(x^128 + x^7 + x^2 + x + 1) (the GCM polynomial, in
// the natural bit order: bit i of the 128-bit little-endian integer is the
// coefficient of x^i). Multiplication is a branch-free shift-and-add over
// all 128 bits, so its timing does not depend on secret data.

// shareSize is the size of one share of one 32-byte secret.
const shareSize = 32

type gf128 struct{ lo, hi uint64 }

func (a gf128) add(b gf128) gf128 { return gf128{a.lo ^ b.lo, a.hi ^ b.hi} }

func (a gf128) isZero() bool { return a.lo|a.hi == 0 }

// mul returns a·b in constant time.
func (a gf128) mul(b gf128) gf128 {
	var r gf128
	for i := 0; i < 128; i++ {
		var bit uint64
		if i < 64 {
			bit = (b.lo >> uint(i)) & 1
		} else {
			bit = (b.hi >> uint(i-64)) & 1
		}
		m := -bit
		r.lo ^= a.lo & m
		r.hi ^= a.hi & m
		// a ← a·x mod P
		carry := a.hi >> 63
		a.hi = a.hi<<1 | a.lo>>63
		a.lo = a.lo<<1 ^ (0x87 & -carry)
	}
	return r
}

// inv returns a^(2^128 − 2), which is 1/a for a ≠ 0 (and 0 for a = 0).
func (a gf128) inv() gf128 {
	// 2^128 − 2 = 0b111...10: square-and-multiply over 127 ones then a
	// final squaring.
	r := a
	for i := 0; i < 126; i++ {
		r = r.mul(r).mul(a)
	}
	return r.mul(r)
}

func gfFromBytes(b []byte) gf128 {
	return gf128{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:16])}
}

func (a gf128) put(b []byte) {
	binary.LittleEndian.PutUint64(b[:8], a.lo)
	binary.LittleEndian.PutUint64(b[8:16], a.hi)
}

func gfFromID(id uint32) gf128 { return gf128{lo: uint64(id)} }

// shamirSplit shares secret among the points xs with threshold t: it returns
// one share per point, in the order of xs. Points must be distinct and
// non-zero.
func shamirSplit(secret [32]byte, t int, xs []uint32, rnd io.Reader) ([][shareSize]byte, error) {
	if t < 1 || t > len(xs) {
		return nil, fmt.Errorf("secagg: cannot split with threshold %d among %d holders", t, len(xs))
	}
	seen := make(map[uint32]bool, len(xs))
	for _, x := range xs {
		if x == 0 || seen[x] {
			return nil, fmt.Errorf("secagg: share point %d is zero or repeated", x)
		}
		seen[x] = true
	}
	// coef[h][d]: coefficient of degree d of the polynomial for half h.
	var coef [2][]gf128
	buf := make([]byte, 16)
	for h := range coef {
		coef[h] = make([]gf128, t)
		coef[h][0] = gfFromBytes(secret[16*h : 16*h+16])
		for d := 1; d < t; d++ {
			if _, err := io.ReadFull(rnd, buf); err != nil {
				return nil, fmt.Errorf("secagg: randomness for secret sharing: %w", err)
			}
			coef[h][d] = gfFromBytes(buf)
		}
	}
	clear(buf)
	out := make([][shareSize]byte, len(xs))
	for i, x := range xs {
		px := gfFromID(x)
		for h := range coef {
			// Horner's rule.
			var y gf128
			for d := t - 1; d >= 0; d-- {
				y = y.mul(px).add(coef[h][d])
			}
			y.put(out[i][16*h:])
		}
	}
	for h := range coef {
		clear(coef[h])
	}
	return out, nil
}

var errShamirInput = errors.New("secagg: shamir: points and shares differ in number, or a point is zero or repeated")

// shamirCombine reconstructs a secret from exactly t shares taken at the
// points xs. With shares from a different polynomial, or fewer than the
// threshold used to split, it returns a wrong secret: callers check the
// result against a commitment or a public key.
func shamirCombine(xs []uint32, shares [][shareSize]byte) ([32]byte, error) {
	var secret [32]byte
	t := len(xs)
	if t == 0 || len(shares) != t {
		return secret, errShamirInput
	}
	pts := make([]gf128, t)
	for i, x := range xs {
		if x == 0 {
			return secret, errShamirInput
		}
		pts[i] = gfFromID(x)
		for j := 0; j < i; j++ {
			if xs[j] == x {
				return secret, errShamirInput
			}
		}
	}
	// λ_i = Π_{j≠i} x_j / (x_j − x_i); in characteristic 2, minus is plus.
	num := make([]gf128, t)
	den := make([]gf128, t)
	for i := range pts {
		n, d := gf128{lo: 1}, gf128{lo: 1}
		for j := range pts {
			if j == i {
				continue
			}
			n = n.mul(pts[j])
			d = d.mul(pts[j].add(pts[i]))
		}
		num[i], den[i] = n, d
	}
	// Invert all denominators with one field inversion (Montgomery's trick).
	prefix := make([]gf128, t)
	acc := gf128{lo: 1}
	for i := range den {
		prefix[i] = acc
		acc = acc.mul(den[i])
	}
	inv := acc.inv()
	for i := t - 1; i >= 0; i-- {
		d := den[i]
		den[i] = inv.mul(prefix[i])
		inv = inv.mul(d)
	}
	for h := 0; h < 2; h++ {
		var s gf128
		for i := range pts {
			y := gfFromBytes(shares[i][16*h:])
			s = s.add(y.mul(num[i].mul(den[i])))
		}
		s.put(secret[16*h:])
	}
	return secret, nil
}

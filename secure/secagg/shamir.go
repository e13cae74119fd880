package secagg

import (
	"errors"
	"fmt"
	"io"

	"github.com/bwesterb/go-ristretto"
	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"
)

// Shamir secret sharing of the two 32-byte seeds a client shares (self-mask
// seed, mask-key seed), with circl's secretsharing package over the scalar
// field of Ristretto255, the integers modulo the prime group order
// ℓ = 2^252 + 27742317777372353535851937790883648493. circl's Ristretto255
// scalar arithmetic (go-ristretto) is constant time; its P-256/384/521
// scalars are not, so those groups are not used.
//
// A seed is a scalar: [newSeed] draws it uniformly below ℓ and the seed is
// its canonical 32-byte little-endian encoding. A share is the value of a
// random polynomial of degree t−1 with the seed as constant term, evaluated
// at the holder's client id (ids are 1..N, distinct, non-zero and below ℓ,
// so valid evaluation points), encoded the same way in 32 bytes; the id is
// implicit (the share's holder), so a share is exactly shareSize bytes on
// the wire. Any t shares determine the seed by Lagrange interpolation at
// zero; any t−1 are uniformly distributed whatever the seed.

// shareSize is the size of one share of one 32-byte seed: one canonically
// encoded Ristretto255 scalar.
const shareSize = 32

// scalars is the group whose scalar field the shares live in.
var scalars = group.Ristretto255

// newSeed draws a seed that can be Shamir-shared: a uniformly random
// Ristretto255 scalar, as its canonical 32-byte little-endian encoding.
// It reads 64 bytes from rnd and reduces them modulo ℓ in constant time
// (statistical distance from uniform below 2^−259), so a seed has
// log2 ℓ ≈ 252 bits of entropy rather than 256, ample for a key-derivation
// seed.
//
// It does not use circl's group.Ristretto255.RandomScalar, which ignores its
// io.Reader argument and always reads crypto/rand: seeds must come from the
// client's rnd (so that seeded test rounds are reproducible).
func newSeed(rnd io.Reader) ([32]byte, error) {
	var seed [32]byte
	var wide [64]byte
	if _, err := io.ReadFull(rnd, wide[:]); err != nil {
		return seed, err
	}
	var s ristretto.Scalar
	s.SetReduced(&wide).BytesInto(&seed)
	clear(wide[:])
	s.SetZero()
	return seed, nil
}

// checkPoints checks that the evaluation points xs are non-zero and
// distinct (circl panics on a zero or repeated id).
func checkPoints(xs []uint32) error {
	seen := make(map[uint32]bool, len(xs))
	for _, x := range xs {
		if x == 0 {
			return errors.New("secagg: shamir: share point 0 (ids start at 1)")
		}
		if seen[x] {
			return fmt.Errorf("secagg: shamir: share point %d repeated", x)
		}
		seen[x] = true
	}
	return nil
}

// shamirSplit shares secret among the points xs with threshold t (any t
// shares recover it, t−1 reveal nothing): it returns one share per point,
// in the order of xs. Points must be distinct and non-zero; the secret must
// be a canonical scalar encoding, such as [newSeed] returns.
//
// rnd is passed to circl for the polynomial's coefficients, but circl's
// Ristretto255 draws them from crypto/rand whatever rnd is, so shares are
// not reproducible from rnd (the seeds they share are). circl keeps the
// coefficients in its SecretSharing value, which cannot be wiped here.
func shamirSplit(secret [32]byte, t int, xs []uint32, rnd io.Reader) ([][shareSize]byte, error) {
	if t < 1 || t > len(xs) {
		return nil, fmt.Errorf("secagg: cannot split with threshold %d among %d holders", t, len(xs))
	}
	if err := checkPoints(xs); err != nil {
		return nil, err
	}
	s := scalars.NewScalar()
	if err := s.UnmarshalBinary(secret[:]); err != nil {
		return nil, errors.New("secagg: shamir: the secret is not a canonical Ristretto255 scalar")
	}
	// circl's threshold is the number of shares that reveal nothing (t−1);
	// recovery needs one more.
	ss := secretsharing.New(rnd, uint(t-1), s)
	s.SetUint64(0)
	id := scalars.NewScalar()
	out := make([][shareSize]byte, len(xs))
	for i, x := range xs {
		sh := ss.ShareWithID(id.SetUint64(uint64(x)))
		b, err := sh.Value.MarshalBinary()
		if err != nil || len(b) != shareSize {
			return nil, fmt.Errorf("secagg: shamir: encoding a share: %d bytes, %v", len(b), err)
		}
		copy(out[i][:], b)
		clear(b)
		sh.Value.SetUint64(0)
	}
	return out, nil
}

var errShamirInput = errors.New("secagg: shamir: no shares, or points and shares differ in number")

// shamirCombine reconstructs a secret from exactly t shares taken at the
// points xs. With shares from a different polynomial, or fewer than the
// threshold used to split, it returns a wrong secret: callers check the
// result against a commitment or a public key. A zero or repeated point, or
// a share that is not a canonical scalar encoding (which no honest client
// produces), is an error naming the point.
func shamirCombine(xs []uint32, shares [][shareSize]byte) ([32]byte, error) {
	var secret [32]byte
	t := len(xs)
	if t == 0 || len(shares) != t {
		return secret, errShamirInput
	}
	if err := checkPoints(xs); err != nil {
		return secret, err
	}
	pts := make([]secretsharing.Share, t)
	for i, x := range xs {
		v := scalars.NewScalar()
		if err := v.UnmarshalBinary(shares[i][:]); err != nil {
			return secret, fmt.Errorf("secagg: shamir: the share held by client %d is not a canonical Ristretto255 scalar", x)
		}
		pts[i] = secretsharing.Share{ID: scalars.NewScalar().SetUint64(uint64(x)), Value: v}
	}
	s, err := secretsharing.Recover(uint(t-1), pts)
	for i := range pts {
		pts[i].Value.SetUint64(0)
	}
	if err != nil {
		return secret, fmt.Errorf("secagg: shamir: %w", err)
	}
	b, err := s.MarshalBinary()
	s.SetUint64(0)
	if err != nil || len(b) != len(secret) {
		return secret, fmt.Errorf("secagg: shamir: encoding the secret: %d bytes, %v", len(b), err)
	}
	copy(secret[:], b)
	clear(b)
	return secret, nil
}

package secagg

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// KeyAgreement selects the public-key primitives a round uses for both of its
// channels: the one that carries encrypted secret shares and the one that
// agrees on pairwise masks.
type KeyAgreement uint8

const (
	// X25519 uses two X25519 key pairs per client: static-static
	// Diffie-Hellman keys both the share channel and the pairwise masks. It
	// is the default.
	X25519 KeyAgreement = 1
	// XWing uses two X-Wing (ML-KEM-768 + X25519) key pairs per client. The
	// sender of a share encapsulates to the receiver's share key; for a
	// pairwise mask the lower id encapsulates to the higher id's mask key,
	// deterministically from its own mask seed, and the server relays the
	// ciphertext. Public keys are 1216 bytes and every ciphertext 1120, so key
	// and share traffic grows about fortyfold; the masked input does not.
	XWing KeyAgreement = 2
)

func (k KeyAgreement) String() string {
	switch k {
	case X25519:
		return "X25519"
	case XWing:
		return "X-Wing"
	}
	return fmt.Sprintf("KeyAgreement(%d)", uint8(k))
}

// Limits on a configuration. They keep every size computation inside an int
// and bound what a decoder may be asked to allocate.
const (
	// MinClients is the smallest cohort: with fewer than three clients no
	// threshold 1 < t <= k exists.
	MinClients = 3
	// MaxClients bounds the cohort size.
	MaxClients = 1 << 20
	// MaxLength bounds the vector length.
	MaxLength = 1 << 30
	// MaxValueBits bounds b, the bits of one encoded value (see [Encode]).
	MaxValueBits = 32
)

// Config is the public description of one secure-aggregation round. Every
// client and the server must hold the same Config (its [Config.Digest] is
// bound into every key derivation, so a client with a different one produces
// shares nobody can open and masks nobody can remove).
//
// The cohort has N clients with ids 1..N. Each client shares its secrets with,
// and masks against, Neighbours other clients on a graph derived from the
// public Seed (see [Graph]); any Threshold of a client's neighbours can
// reconstruct its secrets, fewer learn nothing about them.
//
// Inputs are vectors of Length integers. A client with integer weight w sends
// values in [0, w·(2^Bits − 1)] (see [Encode]); the weights of the cohort sum
// to at most TotalWeight, and all arithmetic is modulo 2^M with
// M = Bits + ⌈log2 TotalWeight⌉ ([Config.ModulusBits]).
type Config struct {
	// Round names the federated round; it is bound into every derivation and
	// every message.
	Round uint64
	// Seed is public randomness for this round (for example a hash of the
	// round's signed assignment). It fixes the neighbour graph; it is not a
	// secret and does not need to be.
	Seed [32]byte
	// N is the cohort size; client ids are 1..N.
	N int
	// Neighbours is k, the degree of the graph. Zero selects
	// [DefaultNeighbours](N). It must be even, or N−1 (the complete graph,
	// which is the original SecAgg of Bonawitz et al.).
	Neighbours int
	// Threshold is t, the number of shares that reconstruct a secret.
	// Zero selects [DefaultThreshold](Neighbours). It must satisfy
	// 1 < t <= k.
	Threshold int
	// Bits is b, the fixed-point resolution of one value, 1..32.
	Bits int
	// TotalWeight is W >= 1, an upper bound on the sum of the integer weights
	// of the cohort's clients (N when every client has weight 1).
	TotalWeight uint64
	// Length is L, the number of values in a vector.
	Length int
	// KeyAgreement selects X25519 (the default when zero) or XWing.
	KeyAgreement KeyAgreement
}

// DefaultNeighbours returns the neighbour count used when Config.Neighbours
// is zero: 2⌈log2 n⌉ (always even), capped at n−1, where the graph becomes
// complete.
//
// SecAgg+ needs k = O(log n) neighbours. The paper (Bell et al. 2020, §3–4)
// picks the smallest even k for which, with a statistical security
// parameter σ = 40 and a correctness parameter η = 20, a random Harary graph
// with an assumed fraction γ of corrupt clients and δ of dropouts stays
// connected among honest survivors and admits a valid threshold; for
// thousands of clients and γ = δ = 1/3 that gives k in the low hundreds, for
// small γ and δ a few dozen. [RecommendedParams] performs that search. The
// default 2⌈log2 n⌉ (8 at n = 10, 14 at n = 100, 20 at n = 1000) is a
// cheaper rule of thumb from the same family: it keeps per-client work
// logarithmic but carries no σ = 40 guarantee for large γ or δ. Deployments
// with a stated threat model should set Neighbours and Threshold from
// RecommendedParams.
func DefaultNeighbours(n int) int {
	if n < MinClients {
		return n - 1
	}
	k := 2 * ceilLog2(uint64(n))
	if k >= n-1 {
		return n - 1
	}
	return k
}

// DefaultThreshold returns the threshold used when Config.Threshold is zero:
// ⌊k/2⌋ + 1 + ⌊k/8⌋, at least 2 and at most k.
//
// Against an honest-but-curious server, t only has to exceed the number c of
// a client's neighbours that collude with the server. Against a server that
// lies about who dropped (asking some neighbours for a client's self-mask
// share and others for its mask-key share), each honest client reveals at
// most one of the two, so the server gets both secrets only if
// 2t <= k + c: the paper's semi-malicious analysis therefore requires
// 2t − k > c. The default takes the strict majority ⌊k/2⌋ + 1 (the bound for
// c = 0) plus ⌊k/8⌋ of headroom, which keeps both guarantees for up to
// 1 + 2⌊k/8⌋ colluding neighbours while each client still tolerates
// k − t = ⌈k/2⌉ − 1 − ⌊k/8⌋ neighbours dropping out.
func DefaultThreshold(k int) int {
	t := k/2 + 1 + k/8
	if t > k {
		t = k
	}
	if t < 2 {
		t = 2
	}
	return t
}

// ceilLog2 returns ⌈log2 x⌉ for x >= 1 (0 for x = 1).
func ceilLog2(x uint64) int {
	if x <= 1 {
		return 0
	}
	return bits.Len64(x - 1)
}

// Normalize fills the zero fields that have defaults (Neighbours, Threshold,
// KeyAgreement) and checks the result. Clients and the server normalize the
// configuration they are given, so the zero defaults are part of the
// agreement: two parties that disagree on a non-zero value fail loudly.
func (c Config) Normalize() (Config, error) {
	if c.N < MinClients || c.N > MaxClients {
		return c, fmt.Errorf("secagg: config: cohort of %d clients, want %d..%d", c.N, MinClients, MaxClients)
	}
	if c.Neighbours == 0 {
		c.Neighbours = DefaultNeighbours(c.N)
	}
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold(c.Neighbours)
	}
	if c.KeyAgreement == 0 {
		c.KeyAgreement = X25519
	}
	return c, c.validate()
}

func (c Config) validate() error {
	if c.N < MinClients || c.N > MaxClients {
		return fmt.Errorf("secagg: config: cohort of %d clients, want %d..%d", c.N, MinClients, MaxClients)
	}
	k := c.Neighbours
	if k < 2 || k > c.N-1 {
		return fmt.Errorf("secagg: config: %d neighbours for %d clients, want 2..%d", k, c.N, c.N-1)
	}
	if k%2 != 0 && k != c.N-1 {
		return fmt.Errorf("secagg: config: %d neighbours: must be even (or %d, the complete graph)", k, c.N-1)
	}
	if c.Threshold <= 1 || c.Threshold > k {
		return fmt.Errorf("secagg: config: threshold %d, want 1 < t <= %d (neighbours)", c.Threshold, k)
	}
	if c.Bits < 1 || c.Bits > MaxValueBits {
		return fmt.Errorf("secagg: config: %d value bits, want 1..%d", c.Bits, MaxValueBits)
	}
	if c.TotalWeight < 1 {
		return errors.New("secagg: config: total weight must be at least 1")
	}
	if m := c.Bits + ceilLog2(c.TotalWeight); m > 64 {
		return fmt.Errorf("secagg: config: %d value bits and total weight %d need a %d-bit modulus, more than 64", c.Bits, c.TotalWeight, m)
	}
	if c.Length < 1 || c.Length > MaxLength {
		return fmt.Errorf("secagg: config: vector length %d, want 1..%d", c.Length, MaxLength)
	}
	if c.KeyAgreement != X25519 && c.KeyAgreement != XWing {
		return fmt.Errorf("secagg: config: unknown key agreement %d", uint8(c.KeyAgreement))
	}
	return nil
}

// ModulusBits returns M = Bits + ⌈log2 TotalWeight⌉: the masked values and
// the sum live in Z/2^M.
//
// The sum cannot wrap. Client i sends values in [0, w_i·(2^b − 1)] and
// Σ w_i <= W, so every coordinate of the true sum is at most
// W·(2^b − 1). Since W <= 2^⌈log2 W⌉,
//
//	W·(2^b − 1) <= 2^⌈log2 W⌉·(2^b − 1) = 2^M − 2^⌈log2 W⌉ < 2^M,
//
// so the sum is its own residue mod 2^M and no extra bit is needed. The same
// bound shows that Σ w_i itself (at most W < 2^M when b >= 1) fits, so
// private weights can travel as one more masked coordinate.
func (c Config) ModulusBits() int { return c.Bits + ceilLog2(c.TotalWeight) }

// modMask returns 2^M − 1.
func (c Config) modMask() uint64 {
	m := c.ModulusBits()
	if m >= 64 {
		return ^uint64(0)
	}
	return 1<<m - 1
}

// MaskedInputBytes returns the size of a packed masked vector, ⌈L·M/8⌉.
func (c Config) MaskedInputBytes() int { return PackedLen(c.Length, c.ModulusBits()) }

const configLen = 2 + 8 + 32 + 4 + 4 + 4 + 1 + 8 + 4 + 1

// MarshalBinary encodes the configuration (versioned, fixed size).
func (c Config) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, configLen)
	b = append(b, wireVersion, tagConfig)
	b = binary.BigEndian.AppendUint64(b, c.Round)
	b = append(b, c.Seed[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(c.N))
	b = binary.BigEndian.AppendUint32(b, uint32(c.Neighbours))
	b = binary.BigEndian.AppendUint32(b, uint32(c.Threshold))
	b = append(b, uint8(c.Bits))
	b = binary.BigEndian.AppendUint64(b, c.TotalWeight)
	b = binary.BigEndian.AppendUint32(b, uint32(c.Length))
	b = append(b, uint8(c.KeyAgreement))
	return b, nil
}

// UnmarshalBinary decodes a configuration written by MarshalBinary and
// normalizes it; an invalid configuration is an error.
func (c *Config) UnmarshalBinary(data []byte) error {
	r, err := newReader(data, tagConfig, "config")
	if err != nil {
		return err
	}
	var d Config
	d.Round = r.u64()
	copy(d.Seed[:], r.bytes(32))
	d.N = int(r.u32())
	d.Neighbours = int(r.u32())
	d.Threshold = int(r.u32())
	d.Bits = int(r.u8())
	d.TotalWeight = r.u64()
	d.Length = int(r.u32())
	d.KeyAgreement = KeyAgreement(r.u8())
	if err := r.done(); err != nil {
		return err
	}
	d, err = d.Normalize()
	if err != nil {
		return err
	}
	*c = d
	return nil
}

// Digest returns SHA-256 of the configuration's encoding. It salts every key
// derivation of the round, so parties with different configurations cannot
// accidentally interoperate.
func (c Config) Digest() [32]byte {
	b, _ := c.MarshalBinary()
	return sha256.Sum256(b)
}

// Graph is the round's neighbour relation: a Harary graph H(k, n) whose
// vertices are the client ids in a random order.
//
// The n ids are placed on a ring in the order of a Fisher–Yates shuffle
// driven by ChaCha8 keyed with SHA-256("kronfed/secagg/v1/graph" ‖ round ‖
// seed); each position is joined to the k/2 positions on either side. The
// result is k-regular and k-connected (removing fewer than k clients never
// disconnects it), and because the order is random, which clients end up
// adjacent is unpredictable before the seed is fixed. This is the "random
// Harary graph" of Bell et al.: its connectivity is what the paper's
// security argument needs, with fewer edges than a random k-regular graph
// of the same degree would need for the same guarantee. With k = n−1 it is
// the complete graph.
type Graph struct {
	n, k int
	pos  []int    // pos[id-1] is the ring position of id
	ids  []uint32 // ids[p] is the id at ring position p
}

// Graph builds the neighbour graph of a normalized configuration.
func (c Config) Graph() (*Graph, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte("kronfed/secagg/v1/graph"))
	var rb [8]byte
	binary.BigEndian.PutUint64(rb[:], c.Round)
	h.Write(rb[:])
	h.Write(c.Seed[:])
	var key [32]byte
	h.Sum(key[:0])
	src := rand.NewChaCha8(key)
	g := &Graph{n: c.N, k: c.Neighbours, pos: make([]int, c.N), ids: make([]uint32, c.N)}
	for i := range g.ids {
		g.ids[i] = uint32(i + 1)
	}
	// Fisher–Yates with our own unbiased bounded draws, so the order does not
	// depend on the standard library's choice of algorithm.
	for i := c.N - 1; i > 0; i-- {
		j := int(uniformBelow(src, uint64(i+1)))
		g.ids[i], g.ids[j] = g.ids[j], g.ids[i]
	}
	for p, id := range g.ids {
		g.pos[id-1] = p
	}
	return g, nil
}

// uniformBelow returns a uniform integer in [0, n) by rejection sampling.
func uniformBelow(src *rand.ChaCha8, n uint64) uint64 {
	// Reject the top partial block so every residue is equally likely.
	limit := ^uint64(0) - (^uint64(0)%n+1)%n
	for {
		v := src.Uint64()
		if v <= limit {
			return v % n
		}
	}
}

// N returns the number of clients.
func (g *Graph) N() int { return g.n }

// K returns the degree.
func (g *Graph) K() int { return g.k }

func (g *Graph) valid(id uint32) bool { return id >= 1 && uint64(id) <= uint64(g.n) }

// Adjacent reports whether clients a and b are neighbours. A client is not
// its own neighbour; ids outside 1..N are nobody's.
func (g *Graph) Adjacent(a, b uint32) bool {
	if a == b || !g.valid(a) || !g.valid(b) {
		return false
	}
	if g.k >= g.n-1 {
		return true
	}
	d := g.pos[a-1] - g.pos[b-1]
	if d < 0 {
		d = -d
	}
	d = min(d, g.n-d)
	return d <= g.k/2
}

// Neighbours returns the neighbours of id in increasing order (nil for an id
// outside 1..N).
func (g *Graph) Neighbours(id uint32) []uint32 {
	if !g.valid(id) {
		return nil
	}
	out := make([]uint32, 0, g.k)
	if g.k >= g.n-1 {
		for j := uint32(1); j <= uint32(g.n); j++ {
			if j != id {
				out = append(out, j)
			}
		}
		return out
	}
	p := g.pos[id-1]
	for d := 1; d <= g.k/2; d++ {
		out = append(out, g.ids[(p+d)%g.n], g.ids[(p-d+g.n)%g.n])
	}
	slices.Sort(out)
	return out
}

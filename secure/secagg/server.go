package secagg

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
)

type serverState uint8

const (
	serverKeys serverState = iota
	serverShares
	serverMasked
	serverUnmask
	serverDone
	serverAbandoned
)

// sealedShareSize is the size of EncryptedShare.Sealed: a GCM nonce, the two
// 32-byte shares and a GCM tag.
const sealedShareSize = 12 + 2*shareSize + 16

type pointShare struct {
	x uint32
	v [shareSize]byte
}

// Server is the coordinator's side of a round. It relays keys and shares,
// adds up masked inputs as they arrive (keeping one running sum, not the
// inputs) and finally removes the masks. The Add methods validate a message
// completely before accepting it; a refused message changes nothing. The
// closing methods (KeyBundles, ShareBundles, UnmaskRequest, Result) end a
// phase: whatever has not arrived by then counts as dropped. A Server is
// safe for concurrent use, so transport handlers may call Add methods in
// parallel.
type Server struct {
	mu     sync.Mutex
	cfg    Config
	digest [32]byte
	graph  *Graph
	state  serverState

	keys   map[uint32]*AdvertiseKeys // U1: advertised keys
	shares map[uint32]*ShareKeys     // U2: shared keys
	acc    []uint64                  // running sum of masked inputs
	masked map[uint32]bool           // U3: sent masked input

	request    *UnmaskRequest
	dropped    map[uint32]bool
	responded  map[uint32]bool
	selfShares map[uint32][]pointShare
	maskShares map[uint32][]pointShare
	result     []uint64
}

// NewServer prepares the server side of a round.
func NewServer(cfg Config) (*Server, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	g, err := cfg.Graph()
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg: cfg, digest: cfg.Digest(), graph: g,
		keys:   map[uint32]*AdvertiseKeys{},
		shares: map[uint32]*ShareKeys{},
		masked: map[uint32]bool{},
	}, nil
}

// Config returns the server's normalized configuration.
func (s *Server) Config() Config { return s.cfg }

func (s *Server) phaseErr(what string) error {
	return fmt.Errorf("secagg: server: %s: not accepted in this phase of the round", what)
}

func (s *Server) abandon(format string, args ...any) error {
	s.state = serverAbandoned
	return fmt.Errorf("secagg: round abandoned: "+format, args...)
}

// AddKeys accepts a client's round-1 message.
func (s *Server) AddKeys(m *AdvertiseKeys) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != serverKeys {
		return s.phaseErr("advertised keys")
	}
	switch {
	case m.Round != s.cfg.Round:
		return fmt.Errorf("secagg: server: keys for round %d, this is round %d", m.Round, s.cfg.Round)
	case !s.graph.valid(m.ID):
		return fmt.Errorf("secagg: server: keys from client %d, outside 1..%d", m.ID, s.cfg.N)
	case s.keys[m.ID] != nil:
		return fmt.Errorf("secagg: server: client %d advertised keys twice", m.ID)
	case m.ConfigDigest != s.digest:
		return fmt.Errorf("secagg: server: client %d holds a different round configuration", m.ID)
	}
	if err := checkPublicKey(s.cfg.KeyAgreement, m.ShareKey); err != nil {
		return fmt.Errorf("secagg: server: share key of client %d: %w", m.ID, err)
	}
	if err := checkPublicKey(s.cfg.KeyAgreement, m.MaskKey); err != nil {
		return fmt.Errorf("secagg: server: mask key of client %d: %w", m.ID, err)
	}
	c := *m
	c.ShareKey, c.MaskKey = slices.Clone(m.ShareKey), slices.Clone(m.MaskKey)
	s.keys[m.ID] = &c
	return nil
}

func sortedIDs[V any](m map[uint32]V) []uint32 {
	ids := make([]uint32, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// KeyBundles closes round 1 and returns, for every client that advertised
// keys, the keys of its neighbours that did. Fewer than t clients with keys
// abandons the round.
func (s *Server) KeyBundles() (map[uint32]*KeyBundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != serverKeys {
		return nil, s.phaseErr("closing round 1")
	}
	if len(s.keys) < s.cfg.Threshold {
		return nil, s.abandon("%d clients advertised keys, threshold %d", len(s.keys), s.cfg.Threshold)
	}
	out := make(map[uint32]*KeyBundle, len(s.keys))
	for id := range s.keys {
		kb := &KeyBundle{Round: s.cfg.Round, To: id}
		for _, j := range s.graph.Neighbours(id) {
			if k := s.keys[j]; k != nil {
				kb.Keys = append(kb.Keys, *k)
			}
		}
		out[id] = kb
	}
	s.state = serverShares
	return out, nil
}

// AddShares accepts a client's round-2 message. It must hold exactly one
// well-formed share for each neighbour that advertised keys.
func (s *Server) AddShares(m *ShareKeys) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != serverShares {
		return s.phaseErr("shares")
	}
	from := m.From
	switch {
	case m.Round != s.cfg.Round:
		return fmt.Errorf("secagg: server: shares for round %d, this is round %d", m.Round, s.cfg.Round)
	case s.keys[from] == nil:
		return fmt.Errorf("secagg: server: shares from client %d, which did not advertise keys", from)
	case s.shares[from] != nil:
		return fmt.Errorf("secagg: server: client %d sent shares twice", from)
	}
	ka := s.cfg.KeyAgreement
	seen := map[uint32]bool{}
	for i := range m.Shares {
		es := &m.Shares[i]
		wantMaskCT := 0
		if ka == XWing && from < es.To {
			wantMaskCT = ka.kemCiphertextSize()
		}
		switch {
		case es.From != from:
			return fmt.Errorf("secagg: server: client %d sent a share labelled as from client %d", from, es.From)
		case !s.graph.Adjacent(from, es.To) || s.keys[es.To] == nil:
			return fmt.Errorf("secagg: server: client %d sent a share to client %d, not a neighbour with keys", from, es.To)
		case seen[es.To]:
			return fmt.Errorf("secagg: server: client %d sent two shares to client %d", from, es.To)
		case len(es.KEMCiphertext) != ka.kemCiphertextSize():
			return fmt.Errorf("secagg: server: share from client %d to %d: KEM ciphertext of %d bytes, want %d", from, es.To, len(es.KEMCiphertext), ka.kemCiphertextSize())
		case len(es.MaskCiphertext) != wantMaskCT:
			return fmt.Errorf("secagg: server: share from client %d to %d: mask ciphertext of %d bytes, want %d", from, es.To, len(es.MaskCiphertext), wantMaskCT)
		case len(es.Sealed) != sealedShareSize:
			return fmt.Errorf("secagg: server: share from client %d to %d: %d sealed bytes, want %d", from, es.To, len(es.Sealed), sealedShareSize)
		}
		seen[es.To] = true
	}
	for _, j := range s.graph.Neighbours(from) {
		if s.keys[j] != nil && !seen[j] {
			return fmt.Errorf("secagg: server: client %d sent no share to neighbour %d", from, j)
		}
	}
	c := &ShareKeys{Round: m.Round, From: from, Shares: make([]EncryptedShare, len(m.Shares))}
	for i, es := range m.Shares {
		c.Shares[i] = EncryptedShare{
			From: es.From, To: es.To,
			KEMCiphertext:  slices.Clone(es.KEMCiphertext),
			MaskCiphertext: slices.Clone(es.MaskCiphertext),
			Sealed:         slices.Clone(es.Sealed),
		}
	}
	s.shares[from] = c
	return nil
}

// ShareBundles closes round 2 and returns, for every client that shared,
// the shares addressed to it by the other clients that shared. Fewer than t
// such clients abandons the round.
func (s *Server) ShareBundles() (map[uint32]*ShareBundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != serverShares {
		return nil, s.phaseErr("closing round 2")
	}
	if len(s.shares) < s.cfg.Threshold {
		return nil, s.abandon("%d clients shared keys, threshold %d", len(s.shares), s.cfg.Threshold)
	}
	out := make(map[uint32]*ShareBundle, len(s.shares))
	for id := range s.shares {
		out[id] = &ShareBundle{Round: s.cfg.Round, To: id}
	}
	for _, from := range sortedIDs(s.shares) {
		for _, es := range s.shares[from].Shares {
			if b := out[es.To]; b != nil {
				b.Shares = append(b.Shares, es)
			}
		}
	}
	s.acc = make([]uint64, s.cfg.Length)
	s.state = serverMasked
	return out, nil
}

// AddMaskedInput accepts a client's round-3 message and adds it to the
// running sum.
func (s *Server) AddMaskedInput(m *MaskedInput) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != serverMasked {
		return s.phaseErr("masked input")
	}
	switch {
	case m.Round != s.cfg.Round:
		return fmt.Errorf("secagg: server: masked input for round %d, this is round %d", m.Round, s.cfg.Round)
	case s.shares[m.ID] == nil:
		return fmt.Errorf("secagg: server: masked input from client %d, which did not share keys", m.ID)
	case s.masked[m.ID]:
		return fmt.Errorf("secagg: server: client %d sent masked input twice", m.ID)
	}
	// unpackAdd checks size and padding before it adds anything.
	if err := unpackAdd(s.acc, m.Data, s.cfg.ModulusBits()); err != nil {
		return fmt.Errorf("secagg: server: masked input from client %d: %w", m.ID, err)
	}
	s.masked[m.ID] = true
	return nil
}

// UnmaskRequest closes round 3 and returns the request to send to every
// survivor: the clients whose masked input arrived, and those that shared
// keys but sent none. Fewer than t survivors abandons the round. Called
// again during round 4, it returns the same request.
func (s *Server) UnmaskRequest() (*UnmaskRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == serverUnmask {
		return cloneRequest(s.request), nil
	}
	if s.state != serverMasked {
		return nil, s.phaseErr("closing round 3")
	}
	if len(s.masked) < s.cfg.Threshold {
		s.acc = nil
		return nil, s.abandon("%d survivors, threshold %d", len(s.masked), s.cfg.Threshold)
	}
	req := &UnmaskRequest{Round: s.cfg.Round, Survivors: sortedIDs(s.masked)}
	s.dropped = map[uint32]bool{}
	for _, id := range sortedIDs(s.shares) {
		if !s.masked[id] {
			req.Dropped = append(req.Dropped, id)
			s.dropped[id] = true
		}
	}
	s.request = req
	s.responded = map[uint32]bool{}
	s.selfShares = map[uint32][]pointShare{}
	s.maskShares = map[uint32][]pointShare{}
	s.state = serverUnmask
	return cloneRequest(req), nil
}

func cloneRequest(r *UnmaskRequest) *UnmaskRequest {
	return &UnmaskRequest{Round: r.Round, Survivors: slices.Clone(r.Survivors), Dropped: slices.Clone(r.Dropped)}
}

// Survivors returns the clients whose inputs are in the sum (nil before
// round 3 is closed). Callers need it to decode the sum: the total weight
// is that of the survivors.
func (s *Server) Survivors() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.request == nil {
		return nil
	}
	return slices.Clone(s.request.Survivors)
}

// AddUnmask accepts a survivor's round-4 response.
func (s *Server) AddUnmask(m *UnmaskResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != serverUnmask {
		return s.phaseErr("unmask response")
	}
	from := m.From
	switch {
	case m.Round != s.cfg.Round:
		return fmt.Errorf("secagg: server: unmask response for round %d, this is round %d", m.Round, s.cfg.Round)
	case !s.masked[from]:
		return fmt.Errorf("secagg: server: unmask response from client %d, which is not a survivor", from)
	case s.responded[from]:
		return fmt.Errorf("secagg: server: client %d responded twice", from)
	}
	seen := map[uint32]bool{}
	for _, rs := range m.Shares {
		var want ShareKind
		switch {
		case s.masked[rs.Owner]:
			want = SelfMaskShare
		case s.dropped[rs.Owner]:
			want = MaskKeyShare
		default:
			return fmt.Errorf("secagg: server: client %d revealed a share of client %d, which is neither a survivor nor dropped", from, rs.Owner)
		}
		switch {
		case !s.graph.Adjacent(from, rs.Owner):
			return fmt.Errorf("secagg: server: client %d revealed a share of client %d, not a neighbour", from, rs.Owner)
		case seen[rs.Owner]:
			return fmt.Errorf("secagg: server: client %d revealed two shares of client %d", from, rs.Owner)
		case rs.Kind != want:
			return fmt.Errorf("secagg: server: client %d revealed the %s share of client %d, expected the %s share", from, rs.Kind, rs.Owner, want)
		}
		seen[rs.Owner] = true
	}
	for _, rs := range m.Shares {
		ps := pointShare{x: from, v: rs.Value}
		if rs.Kind == SelfMaskShare {
			s.selfShares[rs.Owner] = append(s.selfShares[rs.Owner], ps)
		} else {
			s.maskShares[rs.Owner] = append(s.maskShares[rs.Owner], ps)
		}
	}
	s.responded[from] = true
	return nil
}

// reconstruct recovers a secret from the first t shares (by holder id).
func (s *Server) reconstruct(shares []pointShare) ([32]byte, error) {
	slices.SortFunc(shares, func(a, b pointShare) int { return cmp.Compare(a.x, b.x) })
	t := s.cfg.Threshold
	xs := make([]uint32, t)
	vs := make([][shareSize]byte, t)
	for i := range t {
		xs[i], vs[i] = shares[i].x, shares[i].v
	}
	return shamirCombine(xs, vs)
}

// Result closes round 4 and returns Σ_{i ∈ survivors} x_i mod 2^M. Every
// survivor's self-mask seed and every dropped client's mask-key seed needs
// t shares; with fewer it returns an error naming the client and nothing
// else (responses that arrive later may still be added, and Result called
// again). Reconstructed seeds are checked against the advertised
// commitment and mask key, so inconsistent shares are an error, never a
// wrong sum.
func (s *Server) Result() ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == serverDone {
		return slices.Clone(s.result), nil
	}
	if s.state != serverUnmask {
		return nil, s.phaseErr("closing round 4")
	}
	t := s.cfg.Threshold
	if len(s.responded) < t {
		return nil, fmt.Errorf("secagg: round cannot be unmasked yet: %d survivors responded, threshold %d", len(s.responded), t)
	}
	for _, id := range s.request.Survivors {
		if n := len(s.selfShares[id]); n < t {
			return nil, fmt.Errorf("secagg: round cannot be unmasked: the self-mask seed of client %d has %d shares, threshold %d", id, n, t)
		}
	}
	for _, id := range s.request.Dropped {
		if n := len(s.maskShares[id]); n < t {
			return nil, fmt.Errorf("secagg: round cannot be unmasked: the mask-key seed of dropped client %d has %d shares, threshold %d", id, n, t)
		}
	}
	round, ka := s.cfg.Round, s.cfg.KeyAgreement
	sum := slices.Clone(s.acc)
	mk := newMasker(s.cfg.ModulusBits())
	for _, id := range s.request.Survivors {
		seed, err := s.reconstruct(s.selfShares[id])
		if err != nil {
			return nil, fmt.Errorf("secagg: server: self-mask seed of client %d: %w", id, err)
		}
		if c := selfCommit(&seed, &s.digest, round, id); !ctEqual(c[:], s.keys[id].SelfCommit[:]) {
			return nil, fmt.Errorf("secagg: server: the reconstructed self-mask seed of client %d does not match its commitment (inconsistent shares)", id)
		}
		key := selfStreamKey(&seed, &s.digest, round, id)
		mk.apply(sum, &key, true)
	}
	for _, d := range s.request.Dropped {
		seed, err := s.reconstruct(s.maskShares[d])
		if err != nil {
			return nil, fmt.Errorf("secagg: server: mask-key seed of client %d: %w", d, err)
		}
		kp := maskKeyPair(ka, &seed, &s.digest, round, d)
		if !ctEqual(kp.pub, s.keys[d].MaskKey) {
			return nil, fmt.Errorf("secagg: server: the reconstructed mask-key seed of client %d does not match its mask key (inconsistent shares)", d)
		}
		for _, j := range s.graph.Neighbours(d) {
			if !s.masked[j] {
				continue
			}
			var ss []byte
			if d < j {
				var ct []byte
				ss, ct, err = pairSecretLow(ka, &kp, &seed, s.keys[j].MaskKey, &s.digest, round, d, j)
				if err == nil && ka == XWing && !ctEqual(ct, s.maskCiphertext(d, j)) {
					err = fmt.Errorf("re-encapsulation does not match the ciphertext client %d sent", d)
				}
			} else {
				ss, err = pairSecretHigh(ka, &kp, s.keys[j].MaskKey, s.maskCiphertext(j, d))
			}
			if err != nil {
				return nil, fmt.Errorf("secagg: server: pairwise mask of dropped client %d and client %d: %w", d, j, err)
			}
			// Survivor j added +PRG(s_jd) if d > j and −PRG(s_jd) if d < j;
			// take it back out.
			key := pairStreamKey(ss, &s.digest, round, d, j)
			mk.apply(sum, &key, d > j)
		}
	}
	mod := s.cfg.modMask()
	for i := range sum {
		sum[i] &= mod
	}
	s.result = sum
	s.acc = nil
	s.state = serverDone
	return slices.Clone(sum), nil
}

// maskCiphertext returns the X-Wing mask ciphertext low sent to high.
func (s *Server) maskCiphertext(low, high uint32) []byte {
	for _, es := range s.shares[low].Shares {
		if es.To == high {
			return es.MaskCiphertext
		}
	}
	return nil
}

package secagg

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

type clientState uint8

const (
	clientNew clientState = iota
	clientAdvertised
	clientShared
	clientMasked
)

// heldShares are the two shares a neighbour gave this client.
type heldShares struct {
	self, mask [shareSize]byte
}

// Client is one cohort member's side of a round. Its methods are the four
// protocol steps, called in order with the server's relayed messages; each
// validates its input completely before changing any state, so a refused
// message leaves the client as it was. A Client is safe for concurrent use
// but the protocol is sequential.
type Client struct {
	mu     sync.Mutex
	cfg    Config
	digest [32]byte
	graph  *Graph
	id     uint32
	rnd    io.Reader
	state  clientState

	shareKP  keyPair
	maskKP   keyPair
	maskSeed [32]byte
	selfSeed [32]byte

	peers    map[uint32]*AdvertiseKeys // neighbours whose keys arrived in round 1
	pairLow  map[uint32][]byte         // X-Wing: secrets encapsulated to higher neighbours
	lowCT    map[uint32][]byte         // X-Wing: the matching ciphertexts
	held     map[uint32]heldShares     // neighbours that shared in round 2
	revealed map[uint32]ShareKind      // what round 4 has handed out, per owner
}

// NewClient prepares client id (1..N) for a round. rnd supplies the
// client's randomness (key pairs, seeds, nonces); nil means crypto/rand.
// Tests pass a seeded ChaCha8 stream for reproducible rounds; production
// must not. The coefficients of the Shamir polynomials always come from
// crypto/rand (circl's Ristretto255 ignores the reader it is given), so the
// shares differ from run to run; the seeds and the sum do not.
func NewClient(cfg Config, id uint32, rnd io.Reader) (*Client, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	g, err := cfg.Graph()
	if err != nil {
		return nil, err
	}
	if !g.valid(id) {
		return nil, fmt.Errorf("secagg: client id %d outside 1..%d", id, cfg.N)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	return &Client{cfg: cfg, digest: cfg.Digest(), graph: g, id: id, rnd: rnd}, nil
}

// ID returns the client's id.
func (c *Client) ID() uint32 { return c.id }

// Config returns the client's normalized configuration.
func (c *Client) Config() Config { return c.cfg }

func (c *Client) errorf(format string, args ...any) error {
	return fmt.Errorf("secagg: client %d: %s", c.id, fmt.Sprintf(format, args...))
}

// AdvertiseKeys is round 1: it draws the client's share key pair, its
// mask-key seed (from which the mask key pair is derived) and its self-mask
// seed, and returns the public keys for the server to relay.
func (c *Client) AdvertiseKeys() (*AdvertiseKeys, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != clientNew {
		return nil, c.errorf("keys already advertised")
	}
	// The share key pair's seed is never shared: 32 random bytes. The two
	// seeds that are Shamir-shared are Ristretto255 scalars (see newSeed).
	var shareSeed, maskSeed, selfSeed [32]byte
	if _, err := io.ReadFull(c.rnd, shareSeed[:]); err != nil {
		return nil, c.errorf("randomness: %v", err)
	}
	for _, s := range []*[32]byte{&maskSeed, &selfSeed} {
		var err error
		if *s, err = newSeed(c.rnd); err != nil {
			return nil, c.errorf("randomness: %v", err)
		}
	}
	c.shareKP = newKeyPair(c.cfg.KeyAgreement, &shareSeed)
	clear(shareSeed[:])
	c.maskSeed, c.selfSeed = maskSeed, selfSeed
	c.maskKP = maskKeyPair(c.cfg.KeyAgreement, &c.maskSeed, &c.digest, c.cfg.Round, c.id)
	c.state = clientAdvertised
	return &AdvertiseKeys{
		Round:        c.cfg.Round,
		ConfigDigest: c.digest,
		ID:           c.id,
		ShareKey:     slices.Clone(c.shareKP.pub),
		MaskKey:      slices.Clone(c.maskKP.pub),
		SelfCommit:   selfCommit(&c.selfSeed, &c.digest, c.cfg.Round, c.id),
	}, nil
}

// ShareKeys is round 2: given the keys of its neighbours, the client
// Shamir-shares its self-mask seed and its mask-key seed among them
// (threshold t, evaluation point = the holder's id) and seals each
// neighbour's pair of shares to that neighbour. Fewer than t neighbours with
// keys is an error: the client's secrets could not be recovered.
func (c *Client) ShareKeys(kb *KeyBundle) (*ShareKeys, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != clientAdvertised {
		return nil, c.errorf("share keys: not expecting a key bundle now")
	}
	if kb.Round != c.cfg.Round {
		return nil, c.errorf("key bundle for round %d, this is round %d", kb.Round, c.cfg.Round)
	}
	if kb.To != c.id {
		return nil, c.errorf("key bundle addressed to client %d", kb.To)
	}
	ka := c.cfg.KeyAgreement
	peers := make(map[uint32]*AdvertiseKeys, len(kb.Keys))
	for i := range kb.Keys {
		k := &kb.Keys[i]
		switch {
		case !c.graph.Adjacent(c.id, k.ID):
			return nil, c.errorf("key bundle holds keys of client %d, not a neighbour", k.ID)
		case peers[k.ID] != nil:
			return nil, c.errorf("key bundle holds client %d twice", k.ID)
		case k.Round != c.cfg.Round:
			return nil, c.errorf("keys of client %d are for round %d", k.ID, k.Round)
		case k.ConfigDigest != c.digest:
			return nil, c.errorf("client %d holds a different round configuration", k.ID)
		}
		if err := checkPublicKey(ka, k.ShareKey); err != nil {
			return nil, c.errorf("share key of client %d: %v", k.ID, err)
		}
		if err := checkPublicKey(ka, k.MaskKey); err != nil {
			return nil, c.errorf("mask key of client %d: %v", k.ID, err)
		}
		kc := *k
		kc.ShareKey, kc.MaskKey = slices.Clone(k.ShareKey), slices.Clone(k.MaskKey)
		peers[k.ID] = &kc
	}
	if len(peers) < c.cfg.Threshold {
		return nil, c.errorf("only %d neighbours advertised keys, threshold %d", len(peers), c.cfg.Threshold)
	}
	ids := make([]uint32, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	selfShares, err := shamirSplit(c.selfSeed, c.cfg.Threshold, ids, c.rnd)
	if err != nil {
		return nil, c.errorf("%v", err)
	}
	maskShares, err := shamirSplit(c.maskSeed, c.cfg.Threshold, ids, c.rnd)
	if err != nil {
		return nil, c.errorf("%v", err)
	}
	out := &ShareKeys{Round: c.cfg.Round, From: c.id, Shares: make([]EncryptedShare, len(ids))}
	pairLow := map[uint32][]byte{}
	lowCT := map[uint32][]byte{}
	var pt [2 * shareSize]byte
	for i, j := range ids {
		copy(pt[:shareSize], selfShares[i][:])
		copy(pt[shareSize:], maskShares[i][:])
		kemCT, sealed, err := seal(ka, &c.shareKP, peers[j].ShareKey, &c.digest, c.cfg.Round, c.id, j, pt[:], c.rnd)
		if err != nil {
			return nil, c.errorf("seal shares for client %d: %v", j, err)
		}
		es := EncryptedShare{From: c.id, To: j, KEMCiphertext: kemCT, Sealed: sealed}
		if ka == XWing && c.id < j {
			ss, ct, err := pairSecretLow(ka, &c.maskKP, &c.maskSeed, peers[j].MaskKey, &c.digest, c.cfg.Round, c.id, j)
			if err != nil {
				return nil, c.errorf("pairwise secret with client %d: %v", j, err)
			}
			pairLow[j], lowCT[j] = ss, ct
			es.MaskCiphertext = ct
		}
		out.Shares[i] = es
	}
	clear(pt[:])
	for i := range selfShares {
		clear(selfShares[i][:])
		clear(maskShares[i][:])
	}
	c.peers, c.pairLow, c.lowCT = peers, pairLow, lowCT
	c.state = clientShared
	return out, nil
}

// MaskedInput is round 3: the client opens the shares its neighbours sent
// (a share that fails authentication is an error naming its sender) and
// returns x masked as
//
//	y = x + PRG(b_i) + Σ_{j ∈ S, j > i} PRG(s_ij) − Σ_{j ∈ S, j < i} PRG(s_ij)  (mod 2^M)
//
// where S is the set of neighbours in the bundle (those that completed round
// 2), b_i the self-mask seed and s_ij the pairwise secret. x must have
// Length values below 2^M, e.g. the output of [Encode]. The client masks
// only once per round.
func (c *Client) MaskedInput(sb *ShareBundle, x []uint64) (*MaskedInput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != clientShared {
		return nil, c.errorf("masked input: not expecting a share bundle now")
	}
	if sb.Round != c.cfg.Round {
		return nil, c.errorf("share bundle for round %d, this is round %d", sb.Round, c.cfg.Round)
	}
	if sb.To != c.id {
		return nil, c.errorf("share bundle addressed to client %d", sb.To)
	}
	if len(x) != c.cfg.Length {
		return nil, c.errorf("input of %d values, the round has %d", len(x), c.cfg.Length)
	}
	mod := c.cfg.modMask()
	for i, v := range x {
		if v > mod {
			return nil, c.errorf("input value %d at index %d does not fit in %d bits", v, i, c.cfg.ModulusBits())
		}
	}
	ka := c.cfg.KeyAgreement
	held := make(map[uint32]heldShares, len(sb.Shares))
	pairSecrets := make(map[uint32][]byte, len(sb.Shares))
	for i := range sb.Shares {
		es := &sb.Shares[i]
		from := es.From
		peer := c.peers[from]
		switch {
		case peer == nil:
			return nil, c.errorf("share bundle holds shares from client %d, which is not a neighbour that advertised keys", from)
		case es.To != c.id:
			return nil, c.errorf("share from client %d is addressed to client %d", from, es.To)
		case pairSecrets[from] != nil:
			return nil, c.errorf("share bundle holds client %d twice", from)
		case len(es.KEMCiphertext) != ka.kemCiphertextSize():
			return nil, c.errorf("share from client %d: KEM ciphertext of %d bytes, want %d", from, len(es.KEMCiphertext), ka.kemCiphertextSize())
		}
		wantMaskCT := 0
		if ka == XWing && from < c.id {
			wantMaskCT = ka.kemCiphertextSize()
		}
		if len(es.MaskCiphertext) != wantMaskCT {
			return nil, c.errorf("share from client %d: mask ciphertext of %d bytes, want %d", from, len(es.MaskCiphertext), wantMaskCT)
		}
		pt, err := open(ka, &c.shareKP, peer.ShareKey, es.KEMCiphertext, es.Sealed, &c.digest, c.cfg.Round, from, c.id)
		if err != nil {
			return nil, c.errorf("share from client %d: %v", from, err)
		}
		if len(pt) != 2*shareSize {
			return nil, c.errorf("share from client %d: %d bytes of shares, want %d", from, len(pt), 2*shareSize)
		}
		var h heldShares
		copy(h.self[:], pt[:shareSize])
		copy(h.mask[:], pt[shareSize:])
		clear(pt)
		var ss []byte
		switch {
		case from > c.id && ka == XWing:
			ss = c.pairLow[from]
		case from > c.id:
			ss, _, err = pairSecretLow(ka, &c.maskKP, &c.maskSeed, peer.MaskKey, &c.digest, c.cfg.Round, c.id, from)
		default:
			ss, err = pairSecretHigh(ka, &c.maskKP, peer.MaskKey, es.MaskCiphertext)
		}
		if err != nil {
			return nil, c.errorf("pairwise secret with client %d: %v", from, err)
		}
		held[from] = h
		pairSecrets[from] = ss
	}
	if len(held) < c.cfg.Threshold {
		return nil, c.errorf("only %d neighbours shared keys, threshold %d", len(held), c.cfg.Threshold)
	}
	y := slices.Clone(x)
	mk := newMasker(c.cfg.ModulusBits())
	key := selfStreamKey(&c.selfSeed, &c.digest, c.cfg.Round, c.id)
	mk.apply(y, &key, false)
	for j, ss := range pairSecrets {
		key = pairStreamKey(ss, &c.digest, c.cfg.Round, c.id, j)
		mk.apply(y, &key, j < c.id)
		clear(ss)
	}
	clear(key[:])
	for i := range y {
		y[i] &= mod
	}
	data, err := Pack(y, c.cfg.ModulusBits())
	if err != nil {
		return nil, c.errorf("%v", err)
	}
	c.held = held
	c.revealed = map[uint32]ShareKind{}
	c.pairLow = nil
	c.state = clientMasked
	return &MaskedInput{Round: c.cfg.Round, ID: c.id, Data: data}, nil
}

// ErrRefused marks an unmask request the client will not answer because
// answering could reveal a client's input; errors.Is(err, ErrRefused)
// identifies it.
var ErrRefused = errors.New("unmask request refused")

func (c *Client) refuse(format string, args ...any) error {
	return fmt.Errorf("secagg: client %d: %w: %s", c.id, ErrRefused, fmt.Sprintf(format, args...))
}

// Unmask is round 4. For every neighbour whose shares it holds, the client
// returns the share of its self-mask seed if the request lists it as a
// survivor, or of its mask-key seed if it lists it as dropped. It refuses
// (ErrRefused) a request that could reveal both secrets of one client or
// that contradicts what it knows:
//
//   - fewer than t survivors;
//   - an id listed twice, or both as survivor and as dropped;
//   - this client listed as dropped, or not listed as a survivor, although it
//     sent its masked input;
//   - a neighbour it holds shares of listed in neither list, or a neighbour
//     that sent it no shares in round 2 listed in either;
//   - a neighbour whose other secret it revealed in an earlier request (the
//     client remembers every share it handed out).
//
// It may be called again (a retried round 4) with a consistent request.
func (c *Client) Unmask(req *UnmaskRequest) (*UnmaskResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != clientMasked {
		return nil, c.errorf("unmask: this client has not sent its masked input")
	}
	if req.Round != c.cfg.Round {
		return nil, c.refuse("request for round %d, this is round %d", req.Round, c.cfg.Round)
	}
	status := make(map[uint32]ShareKind, len(req.Survivors)+len(req.Dropped))
	for _, list := range []struct {
		ids  []uint32
		kind ShareKind
	}{{req.Survivors, SelfMaskShare}, {req.Dropped, MaskKeyShare}} {
		for _, id := range list.ids {
			if !c.graph.valid(id) {
				return nil, c.refuse("client %d is not in the cohort", id)
			}
			if prev, ok := status[id]; ok {
				if prev == list.kind {
					return nil, c.refuse("client %d is listed twice", id)
				}
				return nil, c.refuse("client %d is listed both as a survivor and as dropped", id)
			}
			status[id] = list.kind
		}
	}
	if len(req.Survivors) < c.cfg.Threshold {
		return nil, c.refuse("only %d survivors, threshold %d", len(req.Survivors), c.cfg.Threshold)
	}
	switch status[c.id] {
	case MaskKeyShare:
		return nil, c.refuse("the request lists this client as dropped, but it sent its masked input")
	case 0:
		return nil, c.refuse("the request does not list this client as a survivor, but it sent its masked input")
	}
	for id := range status {
		if _, ok := c.held[id]; !ok && c.graph.Adjacent(c.id, id) {
			return nil, c.refuse("neighbour %d is listed, but it sent this client no shares in round 2", id)
		}
	}
	resp := &UnmaskResponse{Round: c.cfg.Round, From: c.id}
	owners := make([]uint32, 0, len(c.held))
	for id := range c.held {
		owners = append(owners, id)
	}
	slices.Sort(owners)
	for _, id := range owners {
		kind, ok := status[id]
		if !ok {
			return nil, c.refuse("neighbour %d is listed neither as a survivor nor as dropped", id)
		}
		if prev, ok := c.revealed[id]; ok && prev != kind {
			return nil, c.refuse("revealing the %s share of client %d would reveal both its secrets: its %s share was revealed earlier", kind, id, prev)
		}
		rs := RevealedShare{Owner: id, Kind: kind}
		if kind == SelfMaskShare {
			rs.Value = c.held[id].self
		} else {
			rs.Value = c.held[id].mask
		}
		resp.Shares = append(resp.Shares, rs)
	}
	for _, rs := range resp.Shares {
		c.revealed[rs.Owner] = rs.Kind
	}
	return resp, nil
}

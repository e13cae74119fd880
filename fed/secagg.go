package fed

import (
	"crypto/rand"
	"encoding"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/secure/secagg"
)

// SecAggPolicy turns on secure aggregation (SecAgg+, package secagg): the
// coordinator learns only the sum of the survivors' quantized updates.
//
// A round then runs, inside the collecting phase: a key stage and a share
// stage right after the cohort is selected (before training, so they cost
// the clients no waiting afterwards), the masked inputs as the round's
// uploads (age-encrypted and signed like any upload), and, once uploads
// close, an unmask stage from which the coordinator reconstructs the sum.
// Clients that miss the key or share stage are left out of the round's
// masks and cannot upload; clients that shared but send no input are
// unmasked as dropped. Fewer survivors than the Shamir threshold abandon the
// round: nothing is published.
//
// Every client quantizes on one common grid, [−Range, Range] at the round's
// upload bits (DESIGN §3), with stochastic rounding so the sum is unbiased,
// and clips every coordinate of its update to that range first.
//
// Trust: every stage message is signed with the client's certificate key
// and checked by the coordinator against the caller's TLS identity, so no
// one else can advertise keys in a client's name. Clients do not check
// their neighbours' keys themselves: the coordinator issues the
// certificates (it holds the CA), so such a check would not bind it; the
// guarantee is SecAgg+'s against an honest-but-curious coordinator (see
// package secagg). The key and share exchange lives in memory only: a
// coordinator restart abandons the open round (the next one starts fresh).
type SecAggPolicy struct {
	// Range bounds each coordinate of an update. Zero derives it from the
	// round's training settings: learning rate × the most local optimizer
	// steps any cohort member takes (AdamW moves a parameter by about the
	// learning rate per step). With DP it is at most the clipping norm.
	Range float64
	// Neighbours (k) and Threshold (t): zero picks secagg's defaults
	// (k = 2⌈log2 n⌉, t = ⌊k/2⌋ + 1 + ⌊k/8⌋).
	Neighbours, Threshold int
	// KeyAgreement is X25519 (default) or the hybrid post-quantum X-Wing.
	KeyAgreement secagg.KeyAgreement
	// StageTimeout bounds the key, share and unmask stages (default: a
	// quarter of the round timeout).
	StageTimeout time.Duration
}

// ParseKeyAgreement reads a key agreement name: x25519 or xwing (the
// hybrid post-quantum X-Wing KEM).
func ParseKeyAgreement(s string) (secagg.KeyAgreement, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "-", "")) {
	case "", "x25519":
		return secagg.X25519, nil
	case "xwing":
		return secagg.XWing, nil
	}
	return 0, fmt.Errorf("key agreement %q: want x25519 or xwing", s)
}

// MinSecAggCohort is the smallest cohort secure aggregation runs with
// (secagg needs a threshold of at least 2 among each client's neighbours).
const MinSecAggCohort = 3

func (p *SecAggPolicy) validate(pol Policy) error {
	switch {
	case p.Range < 0 || math.IsNaN(p.Range) || math.IsInf(p.Range, 0):
		return fmt.Errorf("secure aggregation: range %v must be positive (or 0 to derive it)", p.Range)
	case p.Neighbours < 0 || p.Threshold < 0:
		return fmt.Errorf("secure aggregation: neighbours %d and threshold %d must not be negative", p.Neighbours, p.Threshold)
	case p.StageTimeout < 0:
		return fmt.Errorf("secure aggregation: stage timeout %v must not be negative", p.StageTimeout)
	case p.KeyAgreement != 0 && p.KeyAgreement != secagg.X25519 && p.KeyAgreement != secagg.XWing:
		return fmt.Errorf("secure aggregation: unknown key agreement %d", p.KeyAgreement)
	case pol.CohortSize > 0 && pol.CohortSize < MinSecAggCohort:
		return fmt.Errorf("secure aggregation needs a cohort of at least %d clients (cohort %d)", MinSecAggCohort, pol.CohortSize)
	}
	if b := pol.Train.GetBits(); b < 2 || b > 8 {
		return fmt.Errorf("secure aggregation sums integers on a common grid: upload bits %d, want 2, 3, 4 or 8", b)
	}
	return nil
}

func (p *SecAggPolicy) stageTimeout(round time.Duration) time.Duration {
	if p.StageTimeout > 0 {
		return p.StageTimeout
	}
	return round / 4
}

// SecAggSigningBytes is what a client signs for a secure-aggregation step,
// binding the message to its round, sender and stage.
func SecAggSigningBytes(round uint64, client string, stage fedpb.SecAggStage, msg []byte) []byte {
	return newCanon("kronfed/secagg/v1").u64(round).str(client).u64(uint64(stage)).bytes(msg)
}

// secAggSetupBytes extends a round assignment's signing bytes with its
// secure-aggregation setup.
func (c canon) secAggSetup(s *fedpb.SecAggSetup) canon {
	if s == nil {
		return c
	}
	c = append(c.str("secagg"), s.Config...)
	c = c.u64(uint64(len(s.Cohort)))
	for i, name := range s.Cohort {
		c = c.str(name).u64(s.Weights[i])
	}
	c = c.f64(s.Range).f64(s.Clip)
	if s.ClipBit {
		c = c.u64(1)
	}
	return c
}

// secAggVectorLen is the length of a round's masked vector: every tensor
// of the adapter, flattened in Params order, plus one coordinate for the
// client's clipping bit under adaptive DP.
func secAggVectorLen(set *adapter.Set, clipBit bool) int {
	n := 0
	for _, p := range set.Params() {
		n += len(p.Data)
	}
	if clipBit {
		n++
	}
	return n
}

// saStage is where a secure-aggregation round stands.
type saStage int

const (
	saKeys saStage = iota
	saShares
	saInput  // uploads of masked inputs (the machine's collecting phase)
	saUnmask // uploads closed; survivors reveal shares
	saDone   // the sum is ready to reconstruct (or the round failed)
)

func (s saStage) String() string {
	return [...]string{"keys", "shares", "input", "unmask", "done"}[s]
}

// secAggRound is the coordinator's side of one secure-aggregation round:
// the secagg.Server with the stage clock, the cohort's ids and the relayed
// bundles around it. The Server's lock guards it.
type secAggRound struct {
	round    uint64
	setup    *fedpb.SecAggSetup
	cfg      secagg.Config
	ids      map[string]uint32
	srv      *secagg.Server
	stage    saStage
	deadline time.Time // of the keys, shares and unmask stages
	timeout  time.Duration
	sent     map[uint32][]byte // this stage's messages, for idempotent retries
	// relays holds each closed stage's bundle per client (saKeys: key
	// bundles, saShares: share bundles); a client without one missed it.
	relays   map[saStage]map[uint32][]byte
	request  []byte          // the unmask request
	uploaded map[uint32]bool // masked inputs added to the sum
	answered map[uint32]bool // unmask responses
	failed   error           // the round cannot complete
}

// newSecAggRound sets up a round for cohort (sorted names) with the given
// integer weights and a vector of length values.
func newSecAggRound(p *SecAggPolicy, round uint64, cohort []string, weights []uint64, bits int, length int,
	rangeBound, clip float64, clipBit bool, now time.Time, roundTimeout time.Duration) (*secAggRound, error) {
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	total := uint64(0)
	for _, w := range weights {
		total += w
	}
	cfg := secagg.Config{Round: round, Seed: seed, N: len(cohort), Neighbours: p.Neighbours, Threshold: p.Threshold,
		Bits: bits, TotalWeight: total, Length: length, KeyAgreement: p.KeyAgreement}
	srv, err := secagg.NewServer(cfg)
	if err != nil {
		return nil, fmt.Errorf("secure aggregation: %w", err)
	}
	cfg = srv.Config()
	cb, err := cfg.MarshalBinary()
	if err != nil {
		return nil, err
	}
	sa := &secAggRound{round: round, cfg: cfg, srv: srv, ids: map[string]uint32{}, stage: saKeys,
		timeout: p.stageTimeout(roundTimeout), sent: map[uint32][]byte{}, relays: map[saStage]map[uint32][]byte{}, uploaded: map[uint32]bool{}, answered: map[uint32]bool{},
		setup: &fedpb.SecAggSetup{Config: cb, Cohort: slices.Clone(cohort), Weights: slices.Clone(weights),
			Range: rangeBound, Clip: clip, ClipBit: clipBit}}
	sa.deadline = now.Add(sa.timeout)
	for i, name := range cohort {
		sa.ids[name] = uint32(i + 1)
	}
	return sa, nil
}

// describe is the round's setting for results and logs.
func (sa *secAggRound) describe() string {
	return fmt.Sprintf("secagg+ %s k=%d t=%d M=%d", sa.cfg.KeyAgreement, sa.cfg.Neighbours, sa.cfg.Threshold, sa.cfg.ModulusBits())
}

// offer takes a client's message for the open stage. A retry with the same
// bytes is accepted again; a different second message is refused.
func (sa *secAggRound) offer(id uint32, stage fedpb.SecAggStage, msg []byte) *Refusal {
	if st := stageOf(stage); st != sa.stage {
		if st < sa.stage {
			return nil // a retry after the stage closed: answered from its relay
		}
		return refuse(RefuseNotNow, "secagg_stage", "secure aggregation of round %d is in its %s stage, not %s", sa.round, sa.stage, st)
	}
	if prev, ok := sa.sent[id]; ok {
		if string(prev) == string(msg) {
			return nil
		}
		return refuse(RefuseDuplicate, "duplicate", "client %d already sent a different %s message in round %d", id, stage, sa.round)
	}
	var err error
	switch stage {
	case fedpb.SecAggStage_SECAGG_STAGE_KEYS:
		var m secagg.AdvertiseKeys
		if err = m.UnmarshalBinary(msg); err == nil {
			if m.ID != id {
				return refuse(RefuseDenied, "identity", "keys claim client id %d; the caller is id %d", m.ID, id)
			}
			err = sa.srv.AddKeys(&m)
		}
	case fedpb.SecAggStage_SECAGG_STAGE_SHARES:
		var m secagg.ShareKeys
		if err = m.UnmarshalBinary(msg); err == nil {
			if m.From != id {
				return refuse(RefuseDenied, "identity", "shares claim client id %d; the caller is id %d", m.From, id)
			}
			err = sa.srv.AddShares(&m)
		}
	}
	if err != nil {
		return refuse(RefuseInvalid, "bad_secagg", "%s message of client %d: %v", stage, id, err)
	}
	sa.sent[id] = msg
	return nil
}

// stageOf maps a wire stage to the round's stage that receives it.
func stageOf(s fedpb.SecAggStage) saStage {
	switch s {
	case fedpb.SecAggStage_SECAGG_STAGE_KEYS:
		return saKeys
	case fedpb.SecAggStage_SECAGG_STAGE_SHARES:
		return saShares
	}
	return saUnmask
}

// stageComplete reports whether every client that can still send the
// open stage's message has sent it.
func (sa *secAggRound) stageComplete(live func(name string) bool) bool {
	for name, id := range sa.ids {
		if _, ok := sa.sent[id]; ok || !live(name) {
			continue
		}
		if sa.stage == saShares && sa.relays[saKeys][id] == nil {
			continue // not in the key bundles: cannot share
		}
		return false
	}
	return true
}

// advance closes the keys or shares stage when everyone has sent or its
// deadline passed. It returns the names that can no longer upload (they
// missed a stage), for the machine.
func (sa *secAggRound) advance(now time.Time, live func(string) bool) (left []string, err error) {
	if sa.failed != nil || (sa.stage != saKeys && sa.stage != saShares) {
		return nil, nil
	}
	if now.Before(sa.deadline) && !sa.stageComplete(live) {
		return nil, nil
	}
	relay := map[uint32][]byte{}
	switch sa.stage {
	case saKeys:
		var kbs map[uint32]*secagg.KeyBundle
		if kbs, err = sa.srv.KeyBundles(); err == nil {
			err = marshalAll(kbs, relay)
		}
	case saShares:
		var sbs map[uint32]*secagg.ShareBundle
		if sbs, err = sa.srv.ShareBundles(); err == nil {
			err = marshalAll(sbs, relay)
		}
	}
	if err != nil {
		sa.failed = err
		return nil, err
	}
	sa.relays[sa.stage], sa.sent = relay, map[uint32][]byte{}
	sa.stage++
	sa.deadline = now.Add(sa.timeout)
	for name, id := range sa.ids {
		if relay[id] == nil {
			left = append(left, name)
		}
	}
	slices.Sort(left)
	return left, nil
}

func marshalAll[M encoding.BinaryMarshaler](in map[uint32]M, out map[uint32][]byte) error {
	for id, m := range in {
		b, err := m.MarshalBinary()
		if err != nil {
			return err
		}
		out[id] = b
	}
	return nil
}

// canUpload reports whether client may send a masked input.
func (sa *secAggRound) canUpload(client string) *Refusal {
	id := sa.ids[client]
	switch {
	case sa.failed != nil:
		return refuse(RefuseAborted, "secagg_failed", "secure aggregation of round %d failed: %v", sa.round, sa.failed)
	case sa.stage < saInput:
		return refuse(RefuseNotNow, "secagg_stage", "secure aggregation of round %d is still in its %s stage", sa.round, sa.stage)
	case sa.stage > saInput:
		return refuse(RefuseNotNow, "late", "round %d's masked inputs are closed", sa.round)
	case sa.relays[saShares][id] == nil:
		return refuse(RefuseNotNow, "not_in_secagg", "client %s missed round %d's key or share exchange and is not in its masks", client, sa.round)
	}
	return nil
}

// addInput adds a client's masked input (decrypted payload) to the sum.
func (sa *secAggRound) addInput(client string, payload []byte) *Refusal {
	if r := sa.canUpload(client); r != nil {
		return r
	}
	id := sa.ids[client]
	var m secagg.MaskedInput
	if err := m.UnmarshalBinary(payload); err != nil {
		return refuse(RefuseInvalid, "bad_payload", "masked input of %s: %v", client, err)
	}
	if m.ID != id {
		return refuse(RefuseDenied, "identity", "masked input claims client id %d; %s is id %d", m.ID, client, id)
	}
	if err := sa.srv.AddMaskedInput(&m); err != nil {
		return refuse(RefuseInvalid, "bad_payload", "masked input of %s: %v", client, err)
	}
	sa.uploaded[id] = true
	return nil
}

// closeInput ends the input stage: survivors are asked to unmask.
func (sa *secAggRound) closeInput(now time.Time) error {
	if sa.failed != nil {
		return sa.failed
	}
	if sa.stage != saInput {
		return fmt.Errorf("secure aggregation of round %d closed in its %s stage", sa.round, sa.stage)
	}
	req, err := sa.srv.UnmaskRequest()
	if err == nil {
		sa.request, err = req.MarshalBinary()
	}
	if err != nil {
		sa.failed = err
		return err
	}
	sa.stage, sa.deadline = saUnmask, now.Add(sa.timeout)
	return nil
}

// unmask takes a survivor's revealed shares.
func (sa *secAggRound) unmask(id uint32, msg []byte) *Refusal {
	if sa.stage != saUnmask {
		if sa.stage == saDone && sa.answered[id] {
			return nil // a retry after the stage closed
		}
		return refuse(RefuseNotNow, "secagg_stage", "secure aggregation of round %d is in its %s stage, not unmasking", sa.round, sa.stage)
	}
	if sa.answered[id] {
		return nil
	}
	if !sa.uploaded[id] {
		return refuse(RefuseDenied, "not_in_secagg", "client %d sent no masked input in round %d", id, sa.round)
	}
	var m secagg.UnmaskResponse
	if err := m.UnmarshalBinary(msg); err != nil {
		return refuse(RefuseInvalid, "bad_secagg", "unmask response of client %d: %v", id, err)
	}
	if m.From != id {
		return refuse(RefuseDenied, "identity", "unmask response claims client id %d; the caller is id %d", m.From, id)
	}
	if err := sa.srv.AddUnmask(&m); err != nil {
		return refuse(RefuseInvalid, "bad_secagg", "unmask response of client %d: %v", id, err)
	}
	sa.answered[id] = true
	return nil
}

// unmaskComplete reports whether the unmask stage may close.
func (sa *secAggRound) unmaskComplete(now time.Time, live func(string) bool) bool {
	if sa.stage != saUnmask {
		return false
	}
	if !now.Before(sa.deadline) {
		return true
	}
	for name, id := range sa.ids {
		if sa.uploaded[id] && !sa.answered[id] && live(name) {
			return false
		}
	}
	return true
}

// survivorWeight is the total weight of the inputs in the sum.
func (sa *secAggRound) survivorWeight() (uint64, int) {
	w, n := uint64(0), 0
	for _, id := range sa.srv.Survivors() {
		w += sa.setup.Weights[id-1]
		n++
	}
	return w, n
}

// decodeSecAggSum turns the unmasked integer sum into Σ w_i x_i as a Set of
// global's shape, and, with a clipping bit, the number of survivors whose
// update was not clipped.
func decodeSecAggSum(sum []uint64, setup *fedpb.SecAggSetup, bits int, weight uint64, survivors int, global *adapter.Set) (*adapter.Set, int, error) {
	vals, err := secagg.DecodeSum(sum, setup.Range, bits, weight)
	if err != nil {
		return nil, 0, err
	}
	want := secAggVectorLen(global, setup.ClipBit)
	if len(vals) != want {
		return nil, 0, fmt.Errorf("secure sum has %d values, the adapter %d", len(vals), want)
	}
	out := global.Clone()
	k := 0
	for _, p := range out.Params() {
		for j := range p.Data {
			p.Data[j] = float32(vals[k])
			k++
		}
		clear(p.Grad)
	}
	unclipped := 0
	if setup.ClipBit {
		// Each survivor sent +range (not clipped) or −range (clipped),
		// exact grid points: the sum is range·(2u − n).
		u := math.Round((vals[k]/setup.Range + float64(survivors)) / 2)
		unclipped = int(max(0, min(u, float64(survivors))))
	}
	return out, unclipped, nil
}

// errSecAggRestart is why a secure-aggregation round cannot survive a
// coordinator restart: the key and share exchange is held in memory only.
var errSecAggRestart = errors.New("the coordinator restarted during a secure-aggregation round; its key and share exchange is held in memory only, so the masked inputs cannot be unmasked")

package fed

// Replaying a published round offline, from a stopped coordinator's store:
// an operator (or a test that crashed the coordinator on purpose) checks
// that the global adapter the federation published is exactly what its rule
// makes of the uploads the coordinator accepted — none lost, none counted
// twice, none it never accepted.

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"filippo.io/age"
	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/store"
)

// ReplayedUpload is one accepted upload of a replayed round, decrypted,
// its signature checked, and decoded as the client's change Δ.
type ReplayedUpload struct {
	Client   string
	Examples int64 // its FedAvg weight, as the signed header announced
	Delta    *adapter.Set
}

// Replay is one round recomputed from the store.
type Replay struct {
	Round  uint64
	Result *fedpb.RoundResult // as the coordinator recorded it
	// Skipped says why the round cannot be recomputed ("" when it was): it
	// was not published, its noise was random, or its uploads or base
	// version were pruned (keep_uploads, keep_globals).
	Skipped         string
	Base, Published *StoredVersion
	Uploads         []ReplayedUpload // in the order they were accepted (and aggregated)
	Next            *adapter.Set     // what the rule makes of them
	// Equal: Next, encoded as published, is byte for byte the published
	// file. MaxAbsDiff is the largest coordinate difference.
	Equal      bool
	MaxAbsDiff float64
}

// ReplayRound recomputes published round from st: its base version and
// the server optimizer's state from the store, each accepted upload
// decrypted with id (the coordinator's age identity), its digest and its
// client's signature checked, decoded as in the round, and combined by rule
// under policy (the federation's config). An error means the store is
// inconsistent with what was published, or unreadable; a round that cannot
// be replayed for a legitimate reason comes back with Skipped set.
func ReplayRound(st *store.Store, id age.Identity, policy Policy, rule Rule, round uint64) (*Replay, error) {
	rec, err := st.Round(round)
	if err != nil {
		return nil, fmt.Errorf("round %d: %w", round, err)
	}
	rp := &Replay{Round: round, Result: &fedpb.RoundResult{}}
	if err := proto.Unmarshal(rec, rp.Result); err != nil {
		return nil, fmt.Errorf("round %d's result: %w", round, err)
	}
	res := rp.Result
	switch {
	case res.Outcome != "published":
		rp.Skipped = res.Outcome
		return rp, nil
	case policy.SecAgg != nil:
		rp.Skipped = "secure aggregation: the coordinator only ever saw the sum"
		return rp, nil
	case policy.DP != nil && !policy.DP.Local:
		rp.Skipped = "central DP: its noise was drawn at random"
		return rp, nil
	case res.GlobalVersion < 2:
		return nil, fmt.Errorf("round %d: published as version %d, which no round can publish", round, res.GlobalVersion)
	}
	if rp.Base, err = ReadStoredGlobal(st, res.GlobalVersion-1); errors.Is(err, store.ErrNotFound) {
		rp.Skipped = fmt.Sprintf("its base, version %d, was pruned (keep_globals)", res.GlobalVersion-1)
		return rp, nil
	} else if err != nil {
		return nil, fmt.Errorf("round %d: %w", round, err)
	}
	if rp.Published, err = ReadStoredGlobal(st, res.GlobalVersion); errors.Is(err, store.ErrNotFound) {
		rp.Skipped = fmt.Sprintf("its result, version %d, was pruned (keep_globals)", res.GlobalVersion)
		return rp, nil
	} else if err != nil {
		return nil, fmt.Errorf("round %d: %w", round, err)
	}
	if rp.Published.Round != round {
		return nil, fmt.Errorf("round %d: version %d says round %d published it", round, res.GlobalVersion, rp.Published.Round)
	}

	bits := 32
	if policy.Train != nil && policy.Train.Bits != 0 {
		bits = int(policy.Train.Bits)
	}
	byClient := map[string]ReplayedUpload{}
	err = st.Uploads(round, func(client string, rec []byte) error {
		u, err := replayUpload(rec, id, rp.Base, round, client, bits, rule.Whole())
		if err != nil {
			return fmt.Errorf("accepted upload of %s: %w", client, err)
		}
		byClient[client] = u
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("round %d: %w", round, err)
	}
	if len(byClient) == 0 {
		rp.Skipped = "its uploads were pruned (keep_uploads)"
		return rp, nil
	}
	stored := make([]string, 0, len(byClient))
	for c := range byClient {
		stored = append(stored, c)
	}
	slices.Sort(stored)
	aggregated := slices.Sorted(slices.Values(res.Clients))
	if !slices.Equal(stored, aggregated) {
		return nil, fmt.Errorf("round %d: the store holds accepted uploads of %v, the published round aggregated %v", round, stored, aggregated)
	}
	var examples int64
	r := aggregate.Round{Base: rp.Base.Set, Cohort: len(res.Clients)}
	for _, c := range res.Clients { // the acceptance order: sums add up as they did
		u := byClient[c]
		rp.Uploads = append(rp.Uploads, u)
		r.Updates = append(r.Updates, aggregate.Update{Delta: u.Delta, Weight: float64(u.Examples)})
		examples += u.Examples
	}
	if examples != res.Examples {
		return nil, fmt.Errorf("round %d: its uploads announced %d examples, the published result says %d", round, examples, res.Examples)
	}

	strategy, err := rule.Strategy(rp.Base.Set.Config.Kind, policy, nil)
	if err != nil {
		return nil, err
	}
	if _, err := strategy.Restore(rp.Base.Optimizer, rp.Base.Set); err != nil {
		return nil, fmt.Errorf("round %d: the server optimizer's state at version %d: %w", round, rp.Base.Version, err)
	}
	out, err := strategy.Aggregate(r)
	if err != nil {
		return nil, fmt.Errorf("round %d: aggregate (%s): %w", round, strategy, err)
	}
	rp.Next = out.Next
	file, err := EncodeAdapter(out.Next, adapter.Float32, nil)
	if err != nil {
		return nil, err
	}
	rp.Equal = bytes.Equal(file, rp.Published.File)
	rp.MaxAbsDiff = adapter.MaxAbsDiff(out.Next, rp.Published.Set)
	return rp, nil
}

// replayUpload opens one stored upload as the coordinator did when it
// accepted it, and checks that its client signed it.
func replayUpload(rec []byte, id age.Identity, base *StoredVersion, round uint64, client string, bits int, whole bool) (ReplayedUpload, error) {
	var su fedpb.StoredUpload
	if err := proto.Unmarshal(rec, &su); err != nil {
		return ReplayedUpload{}, err
	}
	h := su.GetHeader()
	switch {
	case h == nil:
		return ReplayedUpload{}, errors.New("stored without its header")
	case h.Round != round || h.Client != client || h.BaseVersion != base.Version:
		return ReplayedUpload{}, fmt.Errorf("its header says round %d, client %q, base version %d", h.Round, h.Client, h.BaseVersion)
	case !bytes.Equal(Digest(su.Ciphertext), h.Digest):
		return ReplayedUpload{}, errors.New("its ciphertext no longer matches its signed digest")
	}
	cert, err := x509.ParseCertificate(su.CertDer)
	if err != nil {
		return ReplayedUpload{}, fmt.Errorf("the client certificate stored with it: %w", err)
	}
	if cert.Subject.CommonName != client {
		return ReplayedUpload{}, fmt.Errorf("stored with the certificate of %q", cert.Subject.CommonName)
	}
	if err := verifyPeerSignature(Peer{Name: client, PublicKey: cert.PublicKey}, UploadSigningBytes(h), h.Signature); err != nil {
		return ReplayedUpload{}, err
	}
	plain, err := decryptUpload(id, su.Ciphertext, base.File)
	if err != nil {
		return ReplayedUpload{}, err
	}
	delta, err := DecodeUpdate(plain, base.Set, round, client, base.Version, bits, whole)
	if err != nil {
		return ReplayedUpload{}, err
	}
	return ReplayedUpload{Client: client, Examples: h.Examples, Delta: delta}, nil
}

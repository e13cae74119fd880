package fed

// The coordinator's publish path: when a round closes, the accepted updates
// go to the aggregation strategy; the new global adapter, the strategy's
// state and the machine's state are persisted together; old uploads and
// versions are pruned.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/store"
)

// publishedGlobal is one published global adapter version, decoded.
type publishedGlobal struct {
	version uint64
	round   uint64
	file    []byte
	digest  []byte
	set     *adapter.Set
}

func newGlobal(version, round uint64, set *adapter.Set) (*publishedGlobal, error) {
	file, err := EncodeAdapter(set, adapter.Float32, nil)
	if err != nil {
		return nil, err
	}
	return &publishedGlobal{version: version, round: round, file: file, digest: Digest(file), set: set}, nil
}

// loadGlobal reads a stored version and the server optimizer's state kept
// with it (nil for none).
func (s *Server) loadGlobal(version uint64) (g *publishedGlobal, optimizer []byte, err error) {
	if version == 0 {
		return nil, nil, fmt.Errorf("global adapter version 0: %w (versions count from 1)", store.ErrNotFound)
	}
	v, err := ReadStoredGlobal(s.store, version)
	if err != nil {
		return nil, nil, err
	}
	return &publishedGlobal{version: v.Version, round: v.Round, file: v.File, digest: Digest(v.File), set: v.Set}, v.Optimizer, nil
}

// putGlobal stores a version with the server optimizer's state after it
// (optimizer, nil for none) and the coordinator state, in one transaction.
func (s *Server) putGlobal(g *publishedGlobal, optimizer []byte, state []byte) error {
	rec, err := proto.Marshal(&fedpb.StoredGlobal{Version: g.version, Round: g.round, Adapter: g.file, Digest: g.digest, Optimizer: optimizer})
	if err != nil {
		return err
	}
	return s.store.PutGlobal(g.version, rec, state)
}

// prune applies the retention settings after round was published: old
// uploads (already aggregated) and old global versions are deleted, so the
// store does not grow without bound.
func (s *Server) prune(round uint64) {
	if round >= uint64(s.cfg.KeepUploads) {
		if _, err := s.store.DeleteUploads(round - uint64(s.cfg.KeepUploads) + 1); err != nil {
			s.log.Error("prune uploads", "err", err)
		}
	}
	if _, err := s.store.PruneGlobals(s.cfg.KeepGlobals); err != nil {
		s.log.Error("prune global adapters", "err", err)
	}
}

func (s *Server) recordResult(r *fedpb.RoundResult, st State) {
	rec, err := proto.Marshal(r)
	if err == nil {
		var sb []byte
		if sb, err = MarshalState(st); err == nil {
			err = s.store.PutRound(r.Round, rec, sb)
		}
	}
	if err != nil {
		s.log.Error("persist round result", "round", r.Round, "err", err)
	}
	s.pushResult(r)
}

func (s *Server) pushResult(r *fedpb.RoundResult) {
	// A round number can close more than once only if it was abandoned
	// and re-run; keep the latest.
	s.results = slices.DeleteFunc(s.results, func(x *fedpb.RoundResult) bool { return x.Round == r.Round })
	s.results = append(s.results, r)
	if len(s.results) > s.cfg.Results {
		s.results = s.results[len(s.results)-s.cfg.Results:]
	}
}

// aggregate runs one round's aggregation outside the lock and feeds the
// outcome back into the state machine.
func (s *Server) aggregate(ctx context.Context, job StartAggregation) {
	start := time.Now()
	out, res, err := s.combine(job)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.log.Error("aggregation failed", "round", job.Round, "err", err)
		s.step(func() []Effect { return s.m.AggregationFailed(job.Round, err.Error()) })
		return
	}
	started := s.m.State().Started
	effects := s.m.Aggregated(job.Round, job.BaseVersion+1, out.NextClip)
	if _, changed := s.m.Ready(); !changed {
		s.log.Error("aggregation finished for a round that is not aggregating", "round", job.Round)
		return
	}
	after := s.m.State()
	res.Epsilon = after.Epsilon
	// The global adapter, the strategy's state and the machine's state go
	// to disk in one transaction before anyone hears of the new version.
	g, err := newGlobal(job.BaseVersion+1, job.Round, out.Next)
	if err == nil {
		err = s.commit(func(state []byte) error { return s.putGlobal(g, out.State, state) })
	}
	if err != nil {
		s.log.Error("persist global adapter", "round", job.Round, "err", err)
		s.step(func() []Effect { return s.m.AggregationFailed(job.Round, err.Error()) })
		return
	}
	out.Commit()
	s.prev, s.cur = s.cur, g
	elapsed := time.Since(start).Seconds()
	s.met.AggregateSecond.Observe(elapsed)
	s.met.AggregationErr.Set(res.AggregationError)
	s.met.Epsilon.Set(after.Epsilon)
	s.met.SecAggSurvivors.Set(float64(res.Survivors))
	s.met.RoundSeconds.WithLabelValues("published").Observe(s.cfg.Now().Sub(started).Seconds())
	res.Round, res.Outcome, res.GlobalVersion = job.Round, "published", g.version
	res.AggregateSeconds = elapsed
	res.StartedUnixMs, res.FinishedUnixMs = started.UnixMilli(), s.cfg.Now().UnixMilli()
	s.recordResult(res, after)
	s.log.Info("aggregated", "round", job.Round, "rule", s.strategy.String(), "clients", len(job.Uploads), "examples", res.Examples,
		"train_loss", res.TrainLoss, "val_accuracy", res.ValAccuracy, "wire_bytes", res.WireBytes, "raw_bytes", res.RawBytes,
		"aggregation_error", res.AggregationError, "epsilon", res.Epsilon, "secure_aggregation", res.SecureAggregation, "seconds", elapsed)
	s.handle(effects)
}

// combine hands the round's updates — decrypted and decoded as the clients'
// changes Δ, or with secure aggregation only their sum — to the strategy,
// and starts the round's result.
func (s *Server) combine(job StartAggregation) (*aggregate.Result, *fedpb.RoundResult, error) {
	s.mu.Lock()
	base, st := s.cur, s.m.State()
	var cached map[string]*adapter.Set // read-only from here: uploads are closed
	if s.decodedRound == job.Round {
		cached = s.decoded
	}
	s.mu.Unlock()
	if base.version != job.BaseVersion {
		return nil, nil, fmt.Errorf("round %d trains from version %d but version %d is current", job.Round, job.BaseVersion, base.version)
	}
	if len(job.Uploads) == 0 {
		return nil, nil, errors.New("no uploads to aggregate")
	}
	res := summarize(job.Uploads)
	var out *aggregate.Result
	var err error
	if s.cfg.Policy.SecAgg != nil {
		out, err = s.secureSum(job, base, st, res)
	} else {
		r := aggregate.Round{Base: base.set, Cohort: s.cfg.Policy.dpDenominator(st), Clip: st.Clip}
		for _, u := range job.Uploads {
			delta := cached[u.Client]
			if delta == nil {
				if delta, err = s.loadUpload(job, u.Client, base); err != nil {
					return nil, nil, err
				}
			}
			r.Updates = append(r.Updates, aggregate.Update{Delta: delta, Weight: float64(u.Examples)})
		}
		out, err = s.strategy.Aggregate(r)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("aggregate (%s): %w", s.strategy, err)
	}
	res.AggregationError = out.AggregationError
	if rep := out.DP; rep != nil {
		res.Clip, res.NoiseStd, res.Noise = rep.Clip, rep.NoiseStd, rep.Noise
		s.log.Info("differential privacy", "round", job.Round, "accountant", s.cfg.Policy.DP.AccountantName(), "clip", rep.Clip, "next_clip", out.NextClip, "noise_std", rep.NoiseStd,
			"noise", rep.Noise, "clipped", rep.Clipped, "unclipped", rep.Unclipped, "clients", rep.Clients)
	}
	if dp := s.cfg.Policy.DP; dp != nil && dp.Local {
		res.Clip = st.Clip
		res.NoiseStd, res.Noise = dp.Noise*res.Clip, "local: each client noised its own update"
	}
	return out, res, nil
}

// summarize starts a round's result from its accepted uploads: clients,
// examples, bytes, and the example-weighted loss and accuracy they
// reported.
func summarize(uploads []Receipt) *fedpb.RoundResult {
	res := &fedpb.RoundResult{}
	var lossW, accW float64
	for _, r := range uploads {
		res.Clients = append(res.Clients, r.Client)
		res.Examples += r.Examples
		res.WireBytes += r.WireBytes
		res.RawBytes += r.RawBytes
		lossW += r.Loss * float64(r.Examples)
		accW += r.Accuracy * float64(r.Examples)
	}
	res.TrainLoss, res.ValAccuracy = lossW/float64(res.Examples), accW/float64(res.Examples)
	return res
}

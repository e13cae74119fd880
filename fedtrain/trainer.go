// Package fedtrain is a federated client's local training: a fed.Trainer
// over a train.Learner (either engine), so the protocol package never
// depends on the model or the training code. cmd/client and simulate use it.
package fedtrain

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate"
	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/task"
	"github.com/kronfed/kronfed/train"
)

// Trainer trains rounds with kronfed's transformer engine: a Learner bound
// to the client's shared frozen model, its training shard and a validation
// shard (for the best-epoch choice and the reported accuracy).
type Trainer struct {
	Learner    train.Learner
	TrainItems []task.Item
	ValItems   []task.Item
	// EvalBatch is the scoring batch (default 8).
	EvalBatch int
	// Penalty regularizes local training (a forgetting mitigation; nil:
	// none).
	Penalty train.Penalty
}

var _ fed.Trainer = (*Trainer)(nil)

// Train copies local's tensors into the learner's Set, fits one round with
// the round's settings, and copies the trained tensors back.
func (t *Trainer) Train(ctx context.Context, local *adapter.Set, rc *fedpb.RoundConfig) (fed.TrainStats, error) {
	set := t.Learner.Set()
	if err := set.SameShape(local); err != nil {
		return fed.TrainStats{}, fmt.Errorf("global adapter does not fit the client's model: %w", err)
	}
	if len(t.TrainItems) == 0 || len(t.ValItems) == 0 {
		return fed.TrainStats{}, errors.New("client has no training or no validation items")
	}
	copyParams(set, local)
	items := t.TrainItems
	if n := int(rc.MaxItems); n > 0 && n < len(items) {
		// A different seeded sample each round, so a capped client still
		// sees all its data over the rounds.
		idx := rand.New(rand.NewPCG(rc.Seed, 0x6974656d73)).Perm(len(items))[:n]
		sub := make([]task.Item, n)
		for i, j := range idx {
			sub[i] = items[j]
		}
		items = sub
	}
	optim := train.DefaultAdamW()
	optim.LR = rc.LearningRate
	res, err := train.Fit(ctx, t.Learner, items, t.ValItems, nil, train.Config{
		Epochs: int(rc.LocalEpochs), BatchSize: int(rc.BatchSize), EvalBatch: t.EvalBatch, Seed: rc.Seed, Optim: optim,
		Penalty: t.Penalty,
	}, nil)
	if err != nil {
		return fed.TrainStats{}, err
	}
	copyParams(local, set)
	loss := 0.0
	for _, e := range res.Epochs {
		loss += e.TrainLoss
	}
	return fed.TrainStats{Examples: len(items), Loss: loss / float64(len(res.Epochs)), Accuracy: res.BestVal.Acc}, nil
}

// copyParams copies src's tensors into dst (same shape); nothing to do
// when the learner trains the client's Set itself (the simulator's case).
func copyParams(dst, src *adapter.Set) {
	if dst == src {
		return
	}
	d, s := dst.Params(), src.Params()
	for i := range d {
		copy(d[i].Data, s[i].Data)
	}
}

// Shaped trains a client's adapter of its own shape — a rank or dA2 other
// than the global's, for a weak device or a strong one — in a federation
// with rule hetero-exact (fed.ShapedTrainer): each round the global is
// re-fitted to Own's shape (aggregate.HeteroExact: its ΔW, nearest in
// Own's shape), trained, and returned whole for upload.
type Shaped struct {
	Trainer              // Learner must be bound to Own
	Own     *adapter.Set // the client's adapter
	// OnRefit, when set, is told each round's mean relative ΔW error of
	// re-fitting the global to Own's shape.
	OnRefit func(rel float64)
}

var _ fed.ShapedTrainer = (*Shaped)(nil)

// TrainOwn re-fits global into Own, trains it with the round's settings and
// returns a copy of it.
func (s *Shaped) TrainOwn(ctx context.Context, global *adapter.Set, rc *fedpb.RoundConfig) (*adapter.Set, fed.TrainStats, error) {
	fit, errs, err := aggregate.HeteroExact([]aggregate.Weighted{{Set: global, Weight: 1}}, s.Own)
	if err != nil {
		return nil, fed.TrainStats{}, fmt.Errorf("re-fit the global adapter to the client's shape: %w", err)
	}
	copyParams(s.Own, fit)
	if s.OnRefit != nil {
		var mean float64
		for _, e := range errs {
			mean += e.Rel
		}
		s.OnRefit(mean / float64(max(len(errs), 1)))
	}
	stats, err := s.Trainer.Train(ctx, s.Own, rc)
	if err != nil {
		return nil, fed.TrainStats{}, err
	}
	return s.Own.Clone(), stats, nil
}

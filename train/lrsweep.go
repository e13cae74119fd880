package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/task"
)

// DefaultLRGrid is the learning rates an LR sweep tries: half-decades from
// the paper's 3e-4 up to 3e-2, which small models want (on the pretrained
// built-in model Kron-LoRA learns add-mod-10 in 100 steps at 1e-2 and not
// at 3e-3; see BENCHMARKS.md).
var DefaultLRGrid = []float64{3e-4, 1e-3, 3e-3, 1e-2, 3e-2}

// LRSweepConfig is a small validation sweep that picks one adapter's
// learning rate: fine-tune a fresh adapter on TrainItems training items for
// each learning rate of Grid (everything else as Fit), score ValItems
// validation items, and keep the best.
type LRSweepConfig struct {
	Grid       []float64 // default DefaultLRGrid
	TrainItems int       // default 512
	ValItems   int       // default 100
	Fit        Config    // epochs, batch, seed; Optim.LR is replaced by each grid value
	Engine     *Engine   // where the fits run (nil: the CPU)
}

// LRPoint is one learning rate's result.
type LRPoint struct {
	LR      float64 `json:"lr"`
	ValAcc  float64 `json:"val_acc"`
	ValLoss float64 `json:"val_loss"` // mean gold-continuation loss, the tie-break
	// Diverged: the fit produced a non-finite factor (never chosen).
	Diverged bool `json:"diverged,omitempty"`
}

// LRSweep is a sweep's outcome: Best is the learning rate with the highest
// validation accuracy, ties broken by the lower validation loss.
type LRSweep struct {
	Best   float64   `json:"best"`
	Points []LRPoint `json:"points"`
}

// String is "3e-3 (3e-4: 0.41, 1e-3: 0.62, 3e-3: 0.95, 1e-2: 0.90)".
func (s *LRSweep) String() string {
	var parts []string
	for _, p := range s.Points {
		if p.Diverged {
			parts = append(parts, fmt.Sprintf("%g: diverged", p.LR))
			continue
		}
		parts = append(parts, fmt.Sprintf("%g: %.3f", p.LR, p.ValAcc))
	}
	return fmt.Sprintf("%g (validation accuracy %s)", s.Best, strings.Join(parts, ", "))
}

// SweepLR runs the sweep for adapter ac on m over splits' training and
// validation items. Each grid point starts from the same initialization
// (cfg.Fit.Seed), so only the learning rate differs.
func SweepLR(ctx context.Context, m *model.Model, ac adapter.Config, splits *task.Splits, cfg LRSweepConfig) (*LRSweep, error) {
	if len(cfg.Grid) == 0 {
		cfg.Grid = DefaultLRGrid
	}
	if cfg.TrainItems <= 0 {
		cfg.TrainItems = 512
	}
	if cfg.ValItems <= 0 {
		cfg.ValItems = 100
	}
	for _, lr := range cfg.Grid {
		if !(lr > 0) || math.IsInf(lr, 0) {
			return nil, fmt.Errorf("lr sweep: learning rate %v, want > 0", lr)
		}
	}
	if splits.Train == nil || len(splits.Train.Items) == 0 || splits.Validation == nil || len(splits.Validation.Items) == 0 {
		return nil, fmt.Errorf("lr sweep on %s: needs training and validation items", splits.Name)
	}
	trainItems := splits.Train.Items[:min(cfg.TrainItems, len(splits.Train.Items))]
	val := splits.Validation.Items[:min(cfg.ValItems, len(splits.Validation.Items))]
	out := &LRSweep{}
	best := -1
	for _, lr := range cfg.Grid {
		set, err := NewAdapterSet(m, ac, cfg.Fit.Seed)
		if err != nil {
			return nil, err
		}
		eng := cfg.Engine
		if eng == nil {
			eng = CPU
		}
		l, err := eng.NewLearner(m, set, 0, rand.New(rand.NewPCG(cfg.Fit.Seed, 0x6c72)))
		if err != nil {
			return nil, err
		}
		fc := cfg.Fit
		fc.Optim = DefaultAdamW()
		if cfg.Fit.Optim != (AdamWConfig{}) {
			fc.Optim = cfg.Fit.Optim
		}
		fc.Optim.LR = lr
		p := LRPoint{LR: lr}
		res, err := Fit(ctx, l, trainItems, val, nil, fc, nil)
		l.Close()
		switch {
		case errors.Is(err, ErrDiverged):
			p.Diverged = true
		case err != nil:
			return nil, fmt.Errorf("lr sweep %g: %w", lr, err)
		default:
			p.ValAcc = res.BestVal.Acc
			if p.ValLoss, err = l.Loss(val); err != nil {
				return nil, fmt.Errorf("lr sweep %g: %w", lr, err)
			}
		}
		out.Points = append(out.Points, p)
		if p.Diverged {
			continue
		}
		if best < 0 || p.ValAcc > out.Points[best].ValAcc || (p.ValAcc == out.Points[best].ValAcc && p.ValLoss < out.Points[best].ValLoss) {
			best = len(out.Points) - 1
		}
	}
	if best < 0 {
		return nil, fmt.Errorf("lr sweep on %s: every learning rate of %v diverged", splits.Name, cfg.Grid)
	}
	out.Best = out.Points[best].LR
	return out, nil
}

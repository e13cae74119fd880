package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kronfed/kronfed/simulate"
	"github.com/kronfed/kronfed/task"
	"github.com/kronfed/kronfed/train"
)

// tuneArms gives every adapter without a learning rate of its own (an
// @lr, an [[adapter]] lr, or --lr) one chosen by a validation sweep: each
// rate of the grid fine-tunes a fresh adapter centrally on 512 training
// items of splits (taskName's) for the run's local epochs and batch, scores 100
// validation items, and the most accurate rate wins (ties: the lower
// validation loss). It is a stand-in for one client's local training,
// cheap enough to run before every experiment, so that adapters are
// compared each at a rate that suits it. It records the chosen rates in
// cfg.Adapters ("kind:rank:dA2@lr"), so the resolved config reruns the
// same comparison without sweeping again.
func tuneArms(ctx context.Context, exp *simulate.Experiment, cfg *simConfig, taskName string, splits *task.Splits, stdout io.Writer) error {
	specs := adapterSpecs(*cfg)
	for i := range exp.Adapters {
		arm := &exp.Adapters[i]
		if arm.LR == 0 && cfg.LR > 0 {
			arm.LR = cfg.LR
		}
		if arm.LR > 0 {
			continue
		}
		start := time.Now()
		fmt.Fprintf(stdout, "  choosing the learning rate of %s on %s's validation split (%s) ...", specs[i], taskName, joinNums(lrGrid(*cfg)))
		sw, err := train.SweepLR(ctx, exp.Base.Model, arm.Adapter, splits, train.LRSweepConfig{
			Grid:   lrGrid(*cfg),
			Fit:    train.Config{Epochs: cfg.Epochs, BatchSize: cfg.Batch, Seed: cfg.Seed},
			Engine: exp.Base.Engine,
		})
		if err != nil {
			fmt.Fprintln(stdout)
			return fmt.Errorf("learning rate of %s: %w", specs[i], err)
		}
		arm.LR = sw.Best
		arm.LRSweep = fmt.Sprintf("chosen on %s: %s", taskName, sw)
		fmt.Fprintf(stdout, " %g (%s)\n", sw.Best, time.Since(start).Round(time.Second))
	}
	// The resolved config names every rate.
	cfg.Adapters, cfg.AdapterTables = nil, nil
	for i, arm := range exp.Adapters {
		spec, _, _ := strings.Cut(specs[i], "@")
		cfg.Adapters = append(cfg.Adapters, spec+"@"+strconv.FormatFloat(arm.LR, 'g', -1, 64))
	}
	return nil
}

// armLines are the resolved config's lines about the adapters' rates.
func armLines(exp *simulate.Experiment) []string {
	var out []string
	for _, arm := range exp.Adapters {
		line := fmt.Sprintf("learning rate of %s: %g", arm.Adapter.Resolve(exp.Base.Model.Cfg.Hidden), arm.LR)
		if arm.LRSweep != "" {
			line += ", " + arm.LRSweep
		}
		out = append(out, line)
	}
	return out
}

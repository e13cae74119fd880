package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kronfed/kronfed/simulate"
)

// sweepGrid is the [sweep] table: the task every point trains on and the
// axes whose product is the grid. The adapter axis is the top-level
// adapters list.
type sweepGrid struct {
	Task   string    `toml:"task,omitempty"`
	Rounds int       `toml:"rounds,omitempty"`
	Noise  []float64 `toml:"noise,omitempty"` // noise multipliers z; 0 is the run without DP
	Clip   []float64 `toml:"clip,omitempty"`  // clipping norms C (default: dp_clip)
	Bits   []int     `toml:"bits,omitempty"`  // upload bits (default: bits)
	// LR are local learning rates (default: lr). Kron-LoRA and LoRA want
	// different ones, so comparing them at one rate can mislead.
	LR []float64 `toml:"lr,omitempty"`
}

// Without a [sweep] table or flags: 32 clients of which 16 take part in
// each round (the accountant's q = 1/2), about a minute a point on 2 cores.
// The clients' whole updates measure between 0.3 and 1 in L2 norm on the
// default task (every update clipped at C = 0.3, none at 1), hence C = 0.5.
// With 16 clients a round the noise on the average, z·C/16 per coordinate,
// swamps the signal unless z is small: the default noise runs from nearly
// no harm to no learning, which is the honest curve at this cohort size.
func defaultSweep() simConfig {
	cfg := defaultForgetting()
	cfg.Clients, cfg.Cohort, cfg.MaxItems, cfg.DPClip = 32, 16, 32, 0.5
	// One rate for every point unless lr is an axis: a sweep measures its
	// axes, so it never chooses rates by itself.
	cfg.LR = 1e-3
	cfg.Seeds = 0 // each point runs once, at --seed
	cfg.Sweep = sweepGrid{Task: "word-category", Rounds: 4}
	return cfg
}

var defaultSweepNoise = []float64{0, 0.1, 0.3, 1}

// sweepPoint is one resolved point of the grid.
type sweepPoint struct {
	simulate.SweepPoint
	set settings
}

// runSweep is `simulate sweep`: the product of adapters × lr × bits × noise
// × clip, each point one federated run on the sweep's task, summarised as an
// accuracy-vs-ε table and plot.
func runSweep(args []string, stdout io.Writer) error {
	cfg := defaultSweep()
	var noise, clip, lr []float64
	var bits []int
	err := loadConfig("sweep", args, &cfg, func(fs *flag.FlagSet) {
		fs.StringVar(&cfg.Sweep.Task, "task", cfg.Sweep.Task, "the task every point trains on")
		fs.IntVar(&cfg.Sweep.Rounds, "rounds", cfg.Sweep.Rounds, "federated rounds of every point")
		fs.Var(numList[float64]{&noise, parseFloat}, "sweep-noise", "noise multipliers z, comma-separated; 0 is the same run without DP (default "+
			joinNums(defaultSweepNoise)+")")
		fs.Var(numList[float64]{&clip, parseFloat}, "sweep-clip", "clipping norms C, comma-separated (default: --dp-clip)")
		fs.Var(numList[int]{&bits, strconv.Atoi}, "sweep-bits", "upload bits, comma-separated (default: --bits)")
		fs.Var(numList[float64]{&lr, parseFloat}, "sweep-lr", "local learning rates, comma-separated (default: --lr)")
	})
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	// Flags replace the file's lists; then the defaults fill what is unset.
	g := &cfg.Sweep
	if noise != nil {
		g.Noise = noise
	}
	if clip != nil {
		g.Clip = clip
	}
	if bits != nil {
		g.Bits = bits
	}
	if lr != nil {
		g.LR = lr
	}
	if cfg.DPNoise != 0 {
		return errors.New("sweep: the noise is an axis of the sweep: give --sweep-noise (or [sweep] noise), not --dp-noise")
	}
	fillGridDefaults(&cfg)
	if cfg.Out == "" {
		cfg.Out = filepath.Join("runs", "sweep-"+time.Now().Format("20060102-150405"))
	}
	points, err := sweepPoints(cfg)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	// One experiment loads the model and the task once and checks every
	// adapter's shape against the model; the points vary its settings.
	base := cfg
	base.Pairs, base.PairTables, base.RoundsA, base.RoundsB = []string{g.Task + ":" + g.Task}, nil, g.Rounds, 1
	exp, err := buildExperiment(&base)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	defer exp.Base.Engine.Close()
	splits, _ := exp.Splits(g.Task)
	closeLog, err := startRunFolder(exp)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	defer closeLog()
	// The sweep's file holds the sweep's keys: none of forgetting's pairs
	// and phase schedule.
	sweepCfg := cfg
	sweepCfg.Precision = base.Precision // as resolved for the base
	sweepCfg.Pairs, sweepCfg.PairTables, sweepCfg.Preset, sweepCfg.Scale, sweepCfg.RoundsA, sweepCfg.RoundsB = nil, nil, "", 0, 0, 0
	if err := writeResolvedConfig(exp.Out, sweepCfg, []string{fmt.Sprintf("Resolved settings of this sweep (%d points).", len(points)), reproduceLine("sweep", exp.Out)}); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	fmt.Fprintf(stdout, "sweep: %d points (adapters %s × lr %s × bits %s × noise %s × clip %s; no clip axis without DP) on %s, %d rounds each, "+
		"%d clients (%s a round), %s; results in %s\n",
		len(points), strings.Join(cfg.Adapters, ","), joinNums(g.LR), joinNums(g.Bits), joinNums(g.Noise), joinNums(g.Clip), g.Task, g.Rounds,
		cfg.Clients, cohortText(cfg), modelText(base, exp), exp.Out)
	if !cfg.DPCryptoNoise {
		fmt.Fprintln(stdout, "  DP noise is seeded for reproducibility: these runs measure utility, they are NOT private (--dp-crypto-noise for real noise)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var done []simulate.SweepPoint
	var table string
	progress := newETA(len(points) * g.Rounds)
	for i, pt := range points {
		opts := exp.Base
		opts.Adapter, opts.Train, opts.DP, opts.SecAgg = pt.set.adapters[0].Adapter, pt.set.train, pt.set.dp, pt.set.secAgg
		dir := filepath.Join(exp.Out, pt.Name)
		prefix := fmt.Sprintf("[%d/%d] %s  ", i+1, len(points), pt.Name)
		start := time.Now()
		records, _, runErr := trainOne(ctx, opts, splits, nil, g.Rounds, cfg.EvalItems, dir, prefix, progress, stdout)
		pt.Summarize(records)
		pt.Seconds = time.Since(start).Seconds()
		if len(records) > 0 || runErr == nil {
			done = append(done, pt.SweepPoint)
		}
		// The summary is rewritten after every point: an interrupted sweep
		// keeps the points it finished.
		if table, err = simulate.WriteSweepResults(exp.Out, done); err != nil {
			return fmt.Errorf("sweep: write results: %w", err)
		}
		if runErr != nil {
			return fmt.Errorf("sweep: point %s: %w", pt.Name, runErr)
		}
	}
	fmt.Fprintf(stdout, "\n%s\nε at δ = %g after each point's last round (∞: no DP). Results: %s\n", table, cfg.DPDelta, runFolderListing(exp.Out))
	return nil
}

// fillGridDefaults gives every axis the flags, file and defaults left
// empty its single default value: the default noise list, --dp-clip,
// --bits, --lr.
func fillGridDefaults(cfg *simConfig) {
	g := &cfg.Sweep
	if len(g.Noise) == 0 {
		g.Noise = defaultSweepNoise
	}
	if len(g.Clip) == 0 {
		g.Clip = []float64{cfg.DPClip}
	}
	if len(g.Bits) == 0 {
		g.Bits = []int{cfg.Bits}
	}
	if len(g.LR) == 0 {
		g.LR = []float64{cfg.LR}
	}
}

// sweepPoints expands the grid and resolves every point's settings, so a
// bad value anywhere fails before the first run. Without DP the clipping
// norm does nothing: the no-DP point of an adapter and bits runs once.
func sweepPoints(cfg simConfig) ([]sweepPoint, error) {
	g := cfg.Sweep
	switch {
	case g.Task == "":
		return nil, errors.New("give the task to sweep on (--task or [sweep] task)")
	case g.Rounds < 1:
		return nil, fmt.Errorf("rounds %d < 1", g.Rounds)
	case len(cfg.Adapters) == 0 || len(g.Noise) == 0 || len(g.Clip) == 0 || len(g.Bits) == 0 || len(g.LR) == 0:
		return nil, fmt.Errorf("an axis of the grid is empty: adapters %v, lr %v, bits %v, noise %v, clip %v", cfg.Adapters, g.LR, g.Bits, g.Noise, g.Clip)
	}
	for _, axis := range []struct {
		name string
		vals []string
	}{{"adapters", cfg.Adapters}, {"noise", numStrings(g.Noise)}, {"clip", numStrings(g.Clip)}, {"bits", numStrings(g.Bits)}, {"lr", numStrings(g.LR)}} {
		for i, v := range axis.vals {
			if slices.Contains(axis.vals[:i], v) {
				return nil, fmt.Errorf("sweep %s lists %s twice", axis.name, v)
			}
		}
	}
	for _, lr := range g.LR {
		if !(lr > 0) {
			return nil, fmt.Errorf("sweep lr %v: a sweep needs its learning rates (give --lr or --sweep-lr; the validation sweep of forgetting and run does not apply)", lr)
		}
	}
	for _, a := range adapterSpecs(cfg) {
		if strings.Contains(a, "@") {
			return nil, fmt.Errorf("sweep adapter %q: the learning rate is the sweep's lr axis, not an @lr", a)
		}
	}
	for _, z := range g.Noise {
		if z < 0 || math.IsNaN(z) || math.IsInf(z, 0) {
			return nil, fmt.Errorf("sweep noise %v: a noise multiplier must be > 0 (or 0 for the run without DP)", z)
		}
	}
	var points []sweepPoint
	for _, a := range cfg.Adapters {
		for _, lr := range g.LR {
			// The folder names a rate only when the rate is an axis.
			stem := strings.ReplaceAll(a, ":", "_")
			if len(g.LR) > 1 {
				stem += "-lr" + fmtNum(lr)
			}
			for _, b := range g.Bits {
				for _, z := range g.Noise {
					for ci, c := range g.Clip {
						if z == 0 && ci > 0 {
							break
						}
						pc := cfg
						pc.Adapters, pc.LR, pc.Bits, pc.DPNoise, pc.DPClip = []string{a}, lr, b, z, c
						name := fmt.Sprintf("%s-b%d-nodp", stem, b)
						if z > 0 {
							name = fmt.Sprintf("%s-b%d-z%s-c%s", stem, b, fmtNum(z), fmtNum(c))
						}
						set, err := resolveSettings(pc)
						if err != nil {
							return nil, fmt.Errorf("point %s: %w", name, err)
						}
						pt := sweepPoint{SweepPoint: simulate.SweepPoint{Name: name, Adapter: a, LR: lr, Noise: z, Bits: b}, set: set}
						if z > 0 {
							pt.Clip, pt.Delta = c, cfg.DPDelta
						}
						points = append(points, pt)
					}
				}
			}
		}
	}
	return points, nil
}

func cohortText(cfg simConfig) string {
	if cfg.Cohort > 0 {
		return strconv.Itoa(cfg.Cohort)
	}
	return "fraction " + fmtNum(cfg.Fraction)
}

// numList is a comma-separated flag of numbers; setting it replaces the
// list (and a TOML file's).
type numList[T int | float64] struct {
	dst   *[]T
	parse func(string) (T, error)
}

func (l numList[T]) String() string {
	if l.dst == nil {
		return ""
	}
	return joinNums(*l.dst)
}

func (l numList[T]) Set(s string) error {
	var out []T
	for _, f := range strings.Split(s, ",") {
		v, err := l.parse(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("%q is not a number", f)
		}
		out = append(out, v)
	}
	*l.dst = out
	return nil
}

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

func fmtNum[T int | float64](v T) string { return strconv.FormatFloat(float64(v), 'g', -1, 64) }

func numStrings[T int | float64](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmtNum(v)
	}
	return out
}

func joinNums[T int | float64](vs []T) string { return strings.Join(numStrings(vs), ",") }

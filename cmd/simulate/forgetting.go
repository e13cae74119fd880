package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/gpu"
	"github.com/kronfed/kronfed/simulate"
	"github.com/kronfed/kronfed/task"
	"github.com/kronfed/kronfed/train"
)

func runForgetting(args []string, stdout io.Writer) error {
	cfg := defaultForgetting()
	if err := loadForgetting(args, &cfg); err != nil {
		return fmt.Errorf("forgetting: %w", err)
	}
	exp, err := buildExperiment(&cfg)
	if err != nil {
		return fmt.Errorf("forgetting: %w", err)
	}
	defer exp.Base.Engine.Close()
	closeLog, err := startRunFolder(exp)
	if err != nil {
		return fmt.Errorf("forgetting: %w", err)
	}
	defer closeLog()
	schedule := scheduleLines(cfg, exp)
	fmt.Fprintf(stdout, "forgetting: %d clients, %s, %d pairs, adapters %s, %d-bit uploads, %s; results in %s\n",
		cfg.Clients, modelText(cfg, exp), len(exp.Pairs), strings.Join(adapterSpecs(cfg), " "), cfg.Bits, seedsText(exp.Seeds), exp.Out)
	for _, l := range schedule {
		fmt.Fprintln(stdout, "  "+l)
	}
	if len(exp.Mitigations) > 0 {
		fmt.Fprintf(stdout, "  mitigations: %s\n", strings.Join(cfg.Mitigations, " "))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	first := exp.Pairs[0].A
	splitsA, err := exp.Splits(first)
	if err != nil {
		return fmt.Errorf("forgetting: %w", err)
	}
	if err := tuneArms(ctx, exp, &cfg, first, splitsA, stdout); err != nil {
		return fmt.Errorf("forgetting: %w", err)
	}
	lrs := armLines(exp)
	for _, l := range lrs {
		fmt.Fprintln(stdout, "  "+l)
	}
	header := []string{"Resolved settings of this run of simulate forgetting.", reproduceLine("forgetting", exp.Out), ""}
	if err := writeResolvedConfig(exp.Out, cfg, append(append(header, schedule...), lrs...)); err != nil {
		return fmt.Errorf("forgetting: %w", err)
	}
	status := newStatusLine(stdout)
	total := 0
	for range max(len(exp.Seeds), 1) * len(exp.Adapters) * max(len(exp.Mitigations), 1) {
		for _, p := range exp.Pairs {
			a, b := exp.Schedule(p)
			total += a + b
		}
	}
	progress := newETA(total)
	status.progress = progress
	exp.Base.Uploads = status.uploads("  this round: ")
	seeded := len(exp.Seeds) > 1
	exp.Progress = func(p simulate.Progress) {
		seed := ""
		if len(exp.Mitigations) > 0 {
			seed = " " + p.Mitigation
		}
		if seeded {
			seed += fmt.Sprintf(" seed %d", p.Seed)
		}
		status.printf("[%d/%d] %-8s %-8s%s phase %s round %d/%d  loss %.3f  acc %s %.3f  acc %s %.3f%s  (%s)  %s\n",
			p.Run, p.Runs, p.Adapter, p.Pair.Name(), seed, p.Phase, p.Round, p.Rounds, p.Loss, p.Pair.A, p.AccA, p.Pair.B, p.AccB, epsilonNote(p.Epsilon, p.Accountant),
			p.Elapsed.Round(time.Second), progress.step())
	}
	outcomes, records, runErr := exp.Run(ctx)
	table, err := simulate.WriteResults(exp.Out, outcomes, records)
	if err != nil {
		return fmt.Errorf("forgetting: write results: %w", err)
	}
	if runErr != nil {
		return fmt.Errorf("forgetting: %w (partial results in %s)", runErr, exp.Out)
	}
	fmt.Fprintf(stdout, "\n%s\nforgetting = acc A after A − acc A after B. Results: %s\n", table, runFolderListing(exp.Out))
	return nil
}

// seedsText is "seed 1" or "seeds 1–3".
func seedsText(seeds []uint64) string {
	if len(seeds) == 1 {
		return fmt.Sprintf("seed %d", seeds[0])
	}
	return fmt.Sprintf("seeds %d–%d", seeds[0], seeds[len(seeds)-1])
}

// reproduceLine is config.toml's "reproduce: …" comment, which `simulate
// report` shows as the run's command.
func reproduceLine(command, dir string, extra ...string) string {
	return strings.Join(append([]string{"reproduce: go run ./cmd/simulate", command, "--config", filepath.Join(dir, "config.toml")}, extra...), " ")
}

// writeResolvedConfig writes config.toml into the run folder: the comment
// lines, then cfg as TOML, itself a valid --config for the same run.
func writeResolvedConfig(dir string, cfg simConfig, comments []string) error {
	var b strings.Builder
	for _, l := range comments {
		b.WriteString(strings.TrimRight("# "+l, " ") + "\n")
	}
	b.WriteString("\n")
	if err := toml.NewEncoder(&b).Encode(cfg); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.toml"), []byte(b.String()), 0o644)
}

// runFolderListing is "DIR (file, file, ...)": what the run wrote, read
// back from the folder so the list never drifts from the writers.
func runFolderListing(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return dir
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return fmt.Sprintf("%s (%s)", dir, strings.Join(names, ", "))
}

// startRunFolder creates the run folder and sends the coordinator's and
// clients' logs to simulate.log in it.
func startRunFolder(exp *simulate.Experiment) (closeLog func() error, err error) {
	if err := os.MkdirAll(exp.Out, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(exp.Out, "simulate.log"))
	if err != nil {
		return nil, err
	}
	exp.Base.Logger = slog.New(slog.NewTextHandler(f, nil))
	return f.Close, nil
}

// modelText names the base, the precision its frozen weights run in and,
// on a GPU, the device.
func modelText(cfg simConfig, exp *simulate.Experiment) string {
	if e := exp.Base.Engine; e != nil && e.GPU() != nil {
		return fmt.Sprintf("%s (%s frozen weights on %s)", exp.Base.Model.Name, cfg.Precision, e.Device())
	}
	return fmt.Sprintf("%s (%s frozen weights)", exp.Base.Model.Name, cfg.Precision)
}

// epsilonNote is the progress lines' privacy column ("" without DP).
func epsilonNote(eps float64, accountant string) string {
	if eps > 0 {
		return fmt.Sprintf("  ε %.3g (%s)", eps, accountant)
	}
	return ""
}

// buildExperiment checks the whole configuration before any work starts.
// It resolves cfgp.Precision for the base (auto → bf16 or fp32) and opens
// the engine of cfgp.Device with the base on it: the caller closes
// exp.Base.Engine.
func buildExperiment(cfgp *simConfig) (exp *simulate.Experiment, err error) {
	cfg := *cfgp
	switch {
	case cfg.Clients < 1:
		return nil, fmt.Errorf("clients %d < 1", cfg.Clients)
	case cfg.Cohort > cfg.Clients:
		return nil, fmt.Errorf("cohort %d exceeds the %d clients", cfg.Cohort, cfg.Clients)
	case cfg.RoundsA < 1 || cfg.RoundsB < 1:
		return nil, errors.New("rounds-a and rounds-b must be ≥ 1")
	case len(cfg.Pairs)+len(cfg.PairTables) == 0 || len(cfg.Adapters) == 0:
		return nil, errors.New("give at least one pair and one adapter")
	case cfg.MaxItems < 0 || cfg.EvalItems < 0 || cfg.Workers < 0:
		return nil, errors.New("max-items, eval-items and workers must not be negative")
	case cfg.Transport != "memory" && cfg.Transport != "grpc":
		return nil, fmt.Errorf("transport %q: want memory or grpc", cfg.Transport)
	}
	if err := checkScale(cfg.Scale); err != nil {
		return nil, err
	}
	// The device first: a machine without the GPU asked for fails before
	// any data is read.
	opt := gpu.Options{}
	if cfg.HostDropout {
		opt.Masks = gpu.HostDropout
	}
	engine, err := train.OpenEngine(cfg.Device, cfg.Precision, opt)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", cfg.Device, err)
	}
	defer func() {
		if err != nil {
			engine.Close()
		}
	}()
	if cfg.Preset != "" {
		if _, ok := presets[cfg.Preset]; !ok {
			return nil, fmt.Errorf("unknown preset %q (known: %s)", cfg.Preset, presetNames())
		}
		if err := checkPresetFiles(cfg); err != nil {
			return nil, err
		}
	}
	set, err := resolveSettings(cfg)
	if err != nil {
		return nil, err
	}
	pairs, err := resolvePairs(cfg)
	if err != nil {
		return nil, err
	}
	// Load every task once now, so a missing data file fails before training.
	splits := map[string]*task.Splits{}
	for _, p := range pairs {
		for _, n := range []string{p.A, p.B} {
			if splits[n] != nil {
				continue
			}
			s, err := train.LoadSplits(n, cfg.Data, cfg.Seed)
			if err != nil {
				if cfg.Preset != "" {
					return nil, fmt.Errorf("preset %s: %w (the shared data is looked up in $KRONFED_SHARED/data or ../shared/data; or give --data)", cfg.Preset, err)
				}
				return nil, err
			}
			if s.Validation == nil || len(s.Validation.Items) == 0 {
				return nil, fmt.Errorf("task %s has no validation split", n)
			}
			splits[n] = s
		}
	}
	m, err := train.LoadModel(cfg.Model)
	if err != nil {
		return nil, err
	}
	prec, err := engine.PrepareBase(m)
	if err != nil {
		return nil, err
	}
	// Only the reinit mitigation folds adapters into the base (reading its
	// fp32 weights); otherwise a CPU bf16 base needs its packed copies alone
	// (a GPU holds its own copy; the host's is what a folded base uploads).
	if engine.GPU() == nil && prec != "fp32" && !slices.ContainsFunc(cfg.Mitigations, func(s string) bool { return strings.HasPrefix(s, "reinit") }) {
		if err := m.ReleaseFP32(); err != nil {
			return nil, err
		}
	}
	cfg.Precision, cfgp.Precision = prec, prec
	for _, c := range set.adapters { // an adapter shape the model cannot take fails here
		s, err := train.NewAdapterSet(m, c.Adapter, 0)
		if err != nil {
			return nil, fmt.Errorf("adapter %s on %s: %w", c.Adapter, m.Name, err)
		}
		if len(cfg.Ranks) > 0 {
			if err := simulate.CheckRanksFit(s, slices.Max(cfg.Ranks)); err != nil {
				return nil, err
			}
		}
		for _, d := range cfg.DA2s { // every client shape must fit the model
			for _, r := range append(slices.Clone(cfg.Ranks), c.Adapter.Rank) {
				ac := c.Adapter
				ac.DA2, ac.Rank = d, r
				if _, err := train.NewAdapterSet(m, ac, 0); err != nil {
					return nil, fmt.Errorf("client shape dA2 %d, rank %d on %s: %w", d, r, m.Name, err)
				}
			}
		}
	}
	var seeds []uint64
	for i := range max(cfg.Seeds, 1) {
		seeds = append(seeds, cfg.Seed+uint64(i))
	}
	var mits []simulate.Mitigation
	for _, s := range cfg.Mitigations {
		mit, err := simulate.ParseMitigation(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		if slices.Contains(mits, mit) {
			return nil, fmt.Errorf("mitigation %s is listed twice", mit)
		}
		mits = append(mits, mit)
	}
	out := cfg.Out
	if out == "" {
		out = filepath.Join("runs", "forgetting-"+time.Now().Format("20060102-150405"))
	}
	exp = &simulate.Experiment{
		Base: simulate.Options{Model: m, Engine: engine, Clients: cfg.Clients, CohortSize: cfg.Cohort, Fraction: cfg.Fraction, Rule: set.rule,
			Train: set.train, Partition: cfg.Partition, Seed: cfg.Seed, Workers: cfg.Workers, DP: set.dp, SecAgg: set.secAgg,
			Transport: cfg.Transport, Canaries: cfg.Audit, Sampling: cfg.Sampling, Logger: slog.New(slog.DiscardHandler)},
		Adapters: set.adapters, Seeds: seeds, Mitigations: mits, Pairs: pairs, RoundsA: simulate.ScaleRounds(cfg.RoundsA, cfg.Scale), RoundsB: simulate.ScaleRounds(cfg.RoundsB, cfg.Scale),
		Splits:    func(name string) (*task.Splits, error) { return splits[name], nil },
		EvalItems: cfg.EvalItems, Out: out,
	}
	for _, mit := range mits {
		if err := mit.Check(exp.Base); err != nil {
			return nil, err
		}
	}
	return exp, nil
}

// pairSpec is a parsed pair and where it came from, for error messages.
type pairSpec struct {
	pair   simulate.Pair
	source string
}

// pairSpecs parses pairs (strings) and then [[pair]] tables.
func pairSpecs(cfg simConfig) ([]pairSpec, error) {
	var out []pairSpec
	for _, s := range cfg.Pairs {
		p, err := simulate.ParsePair(s)
		if err != nil {
			return nil, err
		}
		out = append(out, pairSpec{p, fmt.Sprintf("%q", s)})
	}
	for i, t := range cfg.PairTables {
		src := fmt.Sprintf("table %d (%s→%s)", i+1, t.A, t.B)
		switch {
		case t.A == "" || t.B == "":
			return nil, fmt.Errorf("[[pair]] %s: needs both a and b", src)
		case t.RoundsA < 0 || t.RoundsB < 0:
			return nil, fmt.Errorf("[[pair]] %s: rounds_a %d, rounds_b %d: want ≥ 1 (or 0 for the global rounds)", src, t.RoundsA, t.RoundsB)
		}
		out = append(out, pairSpec{simulate.Pair{A: t.A, B: t.B, Label: t.Label, RoundsA: t.RoundsA, RoundsB: t.RoundsB}, "[[pair]] " + src})
	}
	return out, nil
}

// resolvePairs parses every pair, checks its tasks exist and scales its own
// phase lengths (the global ones are scaled in buildExperiment).
func resolvePairs(cfg simConfig) ([]simulate.Pair, error) {
	specs, err := pairSpecs(cfg)
	if err != nil {
		return nil, err
	}
	all := append(task.SyntheticNames(), task.Names()...)
	var pairs []simulate.Pair
	for _, sp := range specs {
		p := sp.pair
		for _, n := range []string{p.A, p.B} {
			if !slices.Contains(all, n) && !task.IsJSONLPath(n) {
				return nil, fmt.Errorf("pair %s: unknown task %q (known: %s; or a .jsonl file of your own questions)", sp.source, n, strings.Join(all, ", "))
			}
		}
		if p.RoundsA > 0 {
			p.RoundsA = simulate.ScaleRounds(p.RoundsA, cfg.Scale)
		}
		if p.RoundsB > 0 {
			p.RoundsB = simulate.ScaleRounds(p.RoundsB, cfg.Scale)
		}
		pairs = append(pairs, p)
	}
	return pairs, nil
}

// checkPresetFiles fails before any work when a preset's model or data
// folder is missing, naming where they were looked for.
func checkPresetFiles(cfg simConfig) error {
	hint := "the shared assets are looked up in $KRONFED_SHARED, else ../shared beside the working directory"
	if cfg.Model != "builtin" {
		if _, err := os.Stat(cfg.Model); err != nil {
			return fmt.Errorf("preset %s: model %s not found (%s; or give --model)", cfg.Preset, cfg.Model, hint)
		}
	}
	if st, err := os.Stat(cfg.Data); err != nil || !st.IsDir() {
		return fmt.Errorf("preset %s: data folder %s not found (%s; or give --data)", cfg.Preset, cfg.Data, hint)
	}
	return nil
}

// scheduleLines describes the resolved schedule: what a round is, then
// every pair's phases in rounds (before and after scaling).
func scheduleLines(cfg simConfig, exp *simulate.Experiment) []string {
	cohort := fmt.Sprintf("fraction %g of %d clients", cfg.Fraction, cfg.Clients)
	if cfg.Cohort > 0 {
		cohort = fmt.Sprintf("cohort %d of %d clients", cfg.Cohort, cfg.Clients)
	}
	items := "each client's whole shard"
	if cfg.MaxItems > 0 {
		items = fmt.Sprintf("at most %d items of each client's shard", cfg.MaxItems)
	}
	eval := "all test items"
	if cfg.EvalItems > 0 {
		eval = fmt.Sprintf("%d test items per task", cfg.EvalItems)
	}
	lines := []string{
		fmt.Sprintf("schedule (scale %g): a round is %d local epoch(s) on %s, %s; %s scored after every round", cfg.Scale, cfg.Epochs, items, cohort, eval),
	}
	if cfg.Preset != "" { // the paper's schedules are in epochs
		lines = append(lines, "epochs → rounds: "+epochMapping)
	}
	specs, _ := pairSpecs(cfg) // buildExperiment has parsed them already
	for i, p := range exp.Pairs {
		a, b := exp.Schedule(p)
		ua, ub := cfg.RoundsA, cfg.RoundsB
		if i < len(specs) {
			if r := specs[i].pair.RoundsA; r > 0 {
				ua = r
			}
			if r := specs[i].pair.RoundsB; r > 0 {
				ub = r
			}
		}
		l := fmt.Sprintf("%s: phase A %s %s, phase B %s %s", p.Name(), p.A, roundsText(a), p.B, roundsText(b))
		if cfg.Scale != 1 {
			l += fmt.Sprintf(" (%d + %d before scale %g)", ua, ub, cfg.Scale)
		}
		lines = append(lines, l)
	}
	if note := dpNote(cfg); note != "" {
		lines = append(lines, note)
	}
	return lines
}

// dpNote says how a run's ε is accounted and where its noise comes from,
// or "" without DP: every output that shows an ε is read with it.
func dpNote(cfg simConfig) string {
	if cfg.DPNoise == 0 {
		return ""
	}
	cohort := cfg.Cohort
	if cohort == 0 {
		cohort = int(math.Ceil(cfg.Fraction*float64(cfg.Clients) - 1e-9))
	}
	kind, where := "central", "added by the coordinator to the sum of the clipped updates"
	if cfg.DPLocal {
		kind, where = "local", "added by each client to its own clipped update"
	}
	noise := "seeded from --seed: reproducible, NOT private (a simulation)"
	if cfg.DPCryptoNoise {
		noise = "drawn from the OS's CSPRNG (crypto/rand)"
	}
	accounted := fmt.Sprintf("a fixed cohort of %d of %d clients sampled without replacement each round (Rényi DP; `simulate accountant --cohort %d --population %d` gives the same figure)",
		cohort, cfg.Clients, cohort, cfg.Clients)
	if cfg.Sampling == fed.SamplingPoisson && !cfg.DPLocal {
		method, flag := "Rényi DP", ""
		if cfg.DPAccountant == fed.AccountantPLD {
			method, flag = "its privacy loss distribution, pessimistic", " --method pld"
		}
		accounted = fmt.Sprintf("each client joining a round with probability %g (Poisson sampling, %s; `simulate accountant%s --sample-rate %g` gives the same figure)",
			cfg.Fraction, method, flag, cfg.Fraction)
	}
	return fmt.Sprintf("differential privacy (%s): noise multiplier %g, clip %g, %s; ε at δ = %g accounts %s; noise %s",
		kind, cfg.DPNoise, cfg.DPClip, where, cfg.DPDelta, accounted, noise)
}

func roundsText(n int) string {
	if n == 1 {
		return "1 round"
	}
	return fmt.Sprintf("%d rounds", n)
}

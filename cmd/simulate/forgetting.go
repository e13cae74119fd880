package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/internal/cli"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/simulate"
	"github.com/kronfed/kronfed/task"
	"github.com/kronfed/kronfed/train"
)

// forgettingConfig is the experiment, from a TOML file and/or flags (flags
// win). The defaults are the README's main job: no downloads, a few minutes
// on two cores.
type forgettingConfig struct {
	Model     string   `toml:"model"`
	Data      string   `toml:"data"`
	Clients   int      `toml:"clients"`
	Cohort    int      `toml:"cohort"`
	Fraction  float64  `toml:"fraction"`
	Partition string   `toml:"partition"`
	Pairs     []string `toml:"pairs"`    // "A:B" or "A:B:label"
	Adapters  []string `toml:"adapters"` // "kron:8", "lora:8", "kron:8:dA2"
	RoundsA   int      `toml:"rounds_a"`
	RoundsB   int      `toml:"rounds_b"`
	Epochs    int      `toml:"epochs"`
	Batch     int      `toml:"batch"`
	LR        float64  `toml:"lr"`
	Bits      int      `toml:"bits"`
	MaxItems  int      `toml:"max_items"`
	EvalItems int      `toml:"eval_items"`
	Rule      string   `toml:"rule"`
	Seed      uint64   `toml:"seed"`
	Workers   int      `toml:"workers"`
	Out       string   `toml:"out"`
	Transport string   `toml:"transport"`
	// Differential privacy (off when dp_noise is 0).
	DPNoise    float64 `toml:"dp_noise"`
	DPClip     float64 `toml:"dp_clip"`
	DPAdaptive bool    `toml:"dp_adaptive"`
	DPBudget   float64 `toml:"dp_budget"`
	DPDelta    float64 `toml:"dp_delta"`
	// DPCryptoNoise draws the noise from a cryptographic generator; by
	// default a simulation seeds it (reproducible, NOT private).
	DPCryptoNoise bool `toml:"dp_crypto_noise"`
}

func defaultForgetting() forgettingConfig {
	return forgettingConfig{
		Model: "builtin", Data: cli.DefaultDataDir(), Clients: 8, Fraction: 1, Partition: "iid",
		Pairs:    []string{"add-mod-10:add-mod-10-alt:related", "add-mod-10:word-category:shifted"},
		Adapters: []string{"kron:8", "lora:8"},
		RoundsA:  4, RoundsB: 4, Epochs: 2, Batch: 8, LR: 1e-3, Bits: 8, MaxItems: 96, EvalItems: 200,
		Rule: "fedavg", Seed: 1, DPClip: 1, DPDelta: 1e-5, Transport: "memory",
	}
}

// configFlag finds --config in args before the flags are defined, so the
// file's values become the flags' defaults and explicit flags override them.
func configFlag(args []string) (string, error) {
	for i, a := range args {
		for _, p := range []string{"--config", "-config"} {
			if a == p {
				if i+1 >= len(args) {
					return "", fmt.Errorf("%s needs a file", p)
				}
				return args[i+1], nil
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, nil
			}
		}
	}
	return "", nil
}

type listFlag struct{ dst *[]string }

func (l listFlag) String() string {
	if l.dst == nil {
		return ""
	}
	return strings.Join(*l.dst, ",")
}
func (l listFlag) Set(s string) error { *l.dst = strings.Split(s, ","); return nil }

func parseAdapterSpec(s string) (adapter.Config, error) {
	parts := strings.Split(s, ":")
	k, err := adapter.ParseKind(parts[0])
	if err != nil {
		return adapter.Config{}, fmt.Errorf("adapter %q: %w", s, err)
	}
	c := adapter.DefaultConfig(k)
	if len(parts) > 1 {
		if c.Rank, err = strconv.Atoi(parts[1]); err != nil {
			return c, fmt.Errorf("adapter %q: rank %q is not a number", s, parts[1])
		}
	}
	if len(parts) > 2 { // Validate refuses a dA2 on LoRA
		if c.DA2, err = strconv.Atoi(parts[2]); err != nil {
			return c, fmt.Errorf("adapter %q: dA2 %q is not a number", s, parts[2])
		}
	}
	if len(parts) > 3 {
		return c, fmt.Errorf("adapter %q: want kind[:rank[:dA2]]", s)
	}
	return c, c.Validate()
}

func parsePair(s string) (simulate.Pair, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return simulate.Pair{}, fmt.Errorf("pair %q: want A:B or A:B:label", s)
	}
	p := simulate.Pair{A: parts[0], B: parts[1]}
	if len(parts) == 3 {
		p.Label = parts[2]
	}
	return p, nil
}

// loadConfig reads --config (whose values become the flags' defaults) and
// then the flags, shared by forgetting and run; extra adds a command's own
// flags.
func loadConfig(name string, args []string, cfg *forgettingConfig, extra func(*flag.FlagSet)) error {
	path, err := configFlag(args)
	if err != nil {
		return err
	}
	if path != "" {
		if err := cli.DecodeTOML(path, cfg); err != nil {
			return err
		}
	}
	fs := newFlags(name)
	fs.String("config", path, "TOML file with any of the settings below (flags override it)")
	fs.StringVar(&cfg.Model, "model", cfg.Model, `base model: "builtin" (no download), a .gguf file or a Hugging Face folder`)
	fs.StringVar(&cfg.Data, "data", cfg.Data, "folder with the real datasets (for arc-easy, arc-challenge, hellaswag, ...)")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "simulated clients")
	fs.IntVar(&cfg.Cohort, "cohort", cfg.Cohort, "clients per round (0: --fraction of them)")
	fs.Float64Var(&cfg.Fraction, "fraction", cfg.Fraction, "fraction of the clients per round when --cohort is 0")
	fs.StringVar(&cfg.Partition, "partition", cfg.Partition, "how training items are split: iid or dirichlet:ALPHA")
	fs.Var(listFlag{&cfg.Pairs}, "pairs", "task pairs A:B[:label], comma-separated (tasks: "+strings.Join(append(task.SyntheticNames(), task.Names()...), ", ")+")")
	fs.Var(listFlag{&cfg.Adapters}, "adapters", "adapters kind:rank[:dA2], comma-separated, compared side by side")
	fs.IntVar(&cfg.RoundsA, "rounds-a", cfg.RoundsA, "federated rounds on task A")
	fs.IntVar(&cfg.RoundsB, "rounds-b", cfg.RoundsB, "federated rounds on task B")
	fs.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "local epochs per round")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "local micro-batch")
	fs.Float64Var(&cfg.LR, "lr", cfg.LR, "local AdamW learning rate")
	fs.IntVar(&cfg.Bits, "bits", cfg.Bits, "upload quantization: 2, 3, 4, 8 or 32")
	fs.IntVar(&cfg.MaxItems, "max-items", cfg.MaxItems, "local training items per client and round (0: the whole shard)")
	fs.IntVar(&cfg.EvalItems, "eval-items", cfg.EvalItems, "test items scored per task after each round (0: all)")
	fs.StringVar(&cfg.Rule, "rule", cfg.Rule, "aggregation: "+strings.Join(fed.RuleNames, ", "))
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of everything: same seed, same machine, same numbers")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "clients training at once (0: the number of CPUs)")
	fs.StringVar(&cfg.Out, "out", cfg.Out, "run folder (default runs/forgetting-TIME)")
	fs.StringVar(&cfg.Transport, "transport", cfg.Transport, "memory (direct calls) or grpc (real gRPC with mutual TLS on loopback)")
	fs.Float64Var(&cfg.DPNoise, "dp-noise", cfg.DPNoise, "client-level DP: noise multiplier z (0: DP off)")
	fs.Float64Var(&cfg.DPClip, "dp-clip", cfg.DPClip, "DP: clipping norm of each client's whole update")
	fs.BoolVar(&cfg.DPAdaptive, "dp-adaptive", cfg.DPAdaptive, "DP: adaptive clipping (Andrew et al. 2021)")
	fs.Float64Var(&cfg.DPBudget, "dp-budget", cfg.DPBudget, "DP: stop before ε would pass this (0: no budget)")
	fs.Float64Var(&cfg.DPDelta, "dp-delta", cfg.DPDelta, "DP: δ")
	fs.BoolVar(&cfg.DPCryptoNoise, "dp-crypto-noise", cfg.DPCryptoNoise, "DP: cryptographic noise (default: seeded noise, reproducible but NOT private)")
	if extra != nil {
		extra(fs)
	}
	return parseFlags(fs, args)
}

func runForgetting(args []string, stdout io.Writer) error {
	cfg := defaultForgetting()
	if err := loadConfig("forgetting", args, &cfg, nil); err != nil {
		return fmt.Errorf("forgetting: %w", err)
	}
	exp, err := buildExperiment(cfg)
	if err != nil {
		return fmt.Errorf("forgetting: %w", err)
	}
	closeLog, err := startRunFolder(exp)
	if err != nil {
		return fmt.Errorf("forgetting: %w", err)
	}
	defer closeLog()
	var resolved strings.Builder
	if err := toml.NewEncoder(&resolved).Encode(cfg); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(exp.Out, "config.toml"), []byte(resolved.String()), 0o644); err != nil {
		return fmt.Errorf("forgetting: %w", err)
	}
	fmt.Fprintf(stdout, "forgetting: %d clients, %s, pairs %s, adapters %s, %d+%d rounds, %d-bit uploads; results in %s\n",
		cfg.Clients, exp.Base.Model.Name, strings.Join(cfg.Pairs, " "), strings.Join(cfg.Adapters, " "), cfg.RoundsA, cfg.RoundsB, cfg.Bits, exp.Out)
	exp.Progress = func(p simulate.Progress) {
		fmt.Fprintf(stdout, "[%d/%d] %-8s %-8s phase %s round %d/%d  loss %.3f  acc %s %.3f  acc %s %.3f%s  (%s)\n",
			p.Run, p.Runs, p.Adapter, p.Pair.Label, p.Phase, p.Round, p.Rounds, p.Loss, p.Pair.A, p.AccA, p.Pair.B, p.AccB, epsilonNote(p.Epsilon),
			p.Elapsed.Round(time.Second))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	outcomes, records, runErr := exp.Run(ctx)
	table, err := simulate.WriteResults(exp.Out, outcomes, records)
	if err != nil {
		return fmt.Errorf("forgetting: write results: %w", err)
	}
	if runErr != nil {
		return fmt.Errorf("forgetting: %w (partial results in %s)", runErr, exp.Out)
	}
	fmt.Fprintf(stdout, "\n%s\nforgetting = acc A after A − acc A after B. Results: %s (rounds.jsonl, summary.csv, table.md, accuracy.svg, forgetting.svg, bytes.svg)\n",
		table, exp.Out)
	return nil
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

// epsilonNote is the progress lines' privacy column ("" without DP).
func epsilonNote(eps float64) string {
	if eps > 0 {
		return fmt.Sprintf("  ε %.3g", eps)
	}
	return ""
}

// buildExperiment checks the whole configuration before any work starts.
func buildExperiment(cfg forgettingConfig) (*simulate.Experiment, error) {
	switch {
	case cfg.Clients < 1:
		return nil, fmt.Errorf("clients %d < 1", cfg.Clients)
	case cfg.Cohort > cfg.Clients:
		return nil, fmt.Errorf("cohort %d exceeds the %d clients", cfg.Cohort, cfg.Clients)
	case cfg.RoundsA < 1 || cfg.RoundsB < 1:
		return nil, errors.New("rounds-a and rounds-b must be ≥ 1")
	case len(cfg.Pairs) == 0 || len(cfg.Adapters) == 0:
		return nil, errors.New("give at least one pair and one adapter")
	case cfg.MaxItems < 0 || cfg.EvalItems < 0 || cfg.Workers < 0:
		return nil, errors.New("max-items, eval-items and workers must not be negative")
	case cfg.Transport != "memory" && cfg.Transport != "grpc":
		return nil, fmt.Errorf("transport %q: want memory or grpc", cfg.Transport)
	}
	if _, _, err := simulate.ParsePartition(cfg.Partition); err != nil {
		return nil, err
	}
	rule, err := fed.ParseRule(cfg.Rule)
	if err != nil {
		return nil, err
	}
	var adapters []adapter.Config
	for _, s := range cfg.Adapters {
		c, err := parseAdapterSpec(s)
		if err != nil {
			return nil, err
		}
		if err := rule.Check(c.Kind); err != nil {
			return nil, err
		}
		adapters = append(adapters, c)
	}
	known := map[string]bool{}
	for _, n := range append(task.SyntheticNames(), task.Names()...) {
		known[n] = true
	}
	var pairs []simulate.Pair
	for _, s := range cfg.Pairs {
		p, err := parsePair(s)
		if err != nil {
			return nil, err
		}
		for _, n := range []string{p.A, p.B} {
			if !known[n] {
				return nil, fmt.Errorf("pair %q: unknown task %q (known: %s)", s, n, strings.Join(append(task.SyntheticNames(), task.Names()...), ", "))
			}
		}
		pairs = append(pairs, p)
	}
	rc := &fedpb.RoundConfig{LocalEpochs: uint32(max(cfg.Epochs, 0)), BatchSize: uint32(max(cfg.Batch, 0)), LearningRate: cfg.LR,
		Bits: uint32(max(cfg.Bits, 0)), Seed: cfg.Seed, MaxItems: uint32(cfg.MaxItems)}
	var dp *fed.DPPolicy
	if cfg.DPNoise != 0 {
		dp = &fed.DPPolicy{Clip: cfg.DPClip, Noise: cfg.DPNoise, Adaptive: cfg.DPAdaptive, Epsilon: cfg.DPBudget,
			Delta: cfg.DPDelta, SeededNoise: !cfg.DPCryptoNoise, Seed: cfg.Seed}
		if rule.Name != "fedavg" {
			return nil, fmt.Errorf("differential privacy needs rule fedavg, not %s", rule)
		}
	}
	probe := fed.Policy{CohortSize: cfg.Cohort, Fraction: cfg.Fraction, RoundTimeout: time.Hour, Train: rc, DP: dp}
	if err := probe.Validate(); err != nil {
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
				return nil, err
			}
			if s.Validation == nil || len(s.Validation.Items) == 0 {
				return nil, fmt.Errorf("task %s has no validation split", n)
			}
			splits[n] = s
		}
	}
	m, err := model.Load(cfg.Model)
	if err != nil {
		return nil, err
	}
	for _, c := range adapters { // an adapter shape the model cannot take fails here
		if _, err := train.NewAdapterSet(m, c, 0); err != nil {
			return nil, fmt.Errorf("adapter %s on %s: %w", c, m.Name, err)
		}
	}
	out := cfg.Out
	if out == "" {
		out = filepath.Join("runs", "forgetting-"+time.Now().Format("20060102-150405"))
	}
	return &simulate.Experiment{
		Base: simulate.Options{Model: m, Clients: cfg.Clients, CohortSize: cfg.Cohort, Fraction: cfg.Fraction, Rule: rule,
			Train: rc, Partition: cfg.Partition, Seed: cfg.Seed, Workers: cfg.Workers, DP: dp, Transport: cfg.Transport,
			Logger: slog.New(slog.DiscardHandler)},
		Adapters: adapters, Pairs: pairs, RoundsA: cfg.RoundsA, RoundsB: cfg.RoundsB,
		Splits:    func(name string) (*task.Splits, error) { return splits[name], nil },
		EvalItems: cfg.EvalItems, Out: out,
	}, nil
}

package main

// The configuration every simulate command reads (forgetting, run, sweep):
// one TOML file and/or flags, flags winning. Its common part is the
// federation (model, clients, cohort, rule), the local training, DP and
// SecAgg; forgetting adds the task pairs and their schedule, sweep its
// [sweep] grid.

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/internal/cli"
	"github.com/kronfed/kronfed/simulate"
	"github.com/kronfed/kronfed/task"
	"github.com/kronfed/kronfed/train"
)

// simConfig is a simulate command's configuration, from a TOML file and/or
// flags (flags win): the federation and training every command shares, the
// pairs and schedule of forgetting, the [sweep] grid of sweep.
// defaultForgetting's values are the README's main job: no downloads, a few
// minutes on two cores.
type simConfig struct {
	Model     string   `toml:"model"`
	Data      string   `toml:"data"`
	Clients   int      `toml:"clients"`
	Cohort    int      `toml:"cohort"`
	Fraction  float64  `toml:"fraction"`
	Partition string   `toml:"partition"`
	Pairs     []string `toml:"pairs,omitempty"` // "A:B", "A:B:label", "A:B:RA:RB" or "A:B:label:RA:RB"
	// PairTables are [[pair]] tables, the TOML form of a pair with its own
	// schedule; they follow Pairs.
	PairTables []pairTable `toml:"pair,omitempty"`
	// Preset names a set of defaults (presets); Scale multiplies every
	// phase length (and with a preset, below 1, caps the items).
	Preset   string   `toml:"preset,omitempty"`
	Scale    float64  `toml:"scale,omitzero"`
	Adapters []string `toml:"adapters"` // "kron:8", "lora:8", "kron:8:dA2", each with an optional "@LR"
	// AdapterTables are [[adapter]] tables (kind, rank, dA2, lr); they
	// follow Adapters.
	AdapterTables []adapterTable `toml:"adapter,omitempty"`
	RoundsA       int            `toml:"rounds_a,omitzero"`
	RoundsB       int            `toml:"rounds_b,omitzero"`
	Epochs        int            `toml:"epochs"`
	Batch         int            `toml:"batch"`
	// LR is the learning rate of every adapter without its own; 0 chooses
	// each adapter's by a validation sweep over LRGrid (see tuneArms).
	LR        float64   `toml:"lr"`
	LRGrid    []float64 `toml:"lr_grid,omitempty"`
	Bits      int       `toml:"bits"`
	MaxItems  int       `toml:"max_items"`
	EvalItems int       `toml:"eval_items"`
	Rule      string    `toml:"rule"`
	Seed      uint64    `toml:"seed"`
	// Ranks gives simulate run's clients different ranks (cycled over the
	// clients; the global adapter has the largest), and Hetero how they
	// aggregate: exact, zeropad or truncate (see heteroRule).
	Ranks  []int  `toml:"ranks,omitempty"`
	DA2s   []int  `toml:"da2s,omitempty"`
	Hetero string `toml:"hetero,omitempty"`
	// Mitigations against forgetting, each run side by side: "none",
	// "merge", "ties[:DENSITY]", "reinit", "l2sp[:λ]", "ortho[:λ]".
	Mitigations []string `toml:"mitigations,omitempty"`
	// Seeds: forgetting runs every (adapter, pair) with seeds Seed,
	// Seed+1, …, Seed+Seeds−1 and reports mean ± spread.
	Seeds     int    `toml:"seeds,omitzero"`
	Workers   int    `toml:"workers"`
	Out       string `toml:"out"`
	Transport string `toml:"transport"`
	// Precision of the frozen base weights: auto, bf16 or fp32; resolved
	// for the base (train.FrozenPrecision) when the experiment is built, so
	// config.toml and the reproduce line name what ran.
	Precision string `toml:"precision"`
	// Device the clients train on: cpu, cuda or cuda:N. On a GPU every
	// simulated client shares one device copy of the base.
	Device string `toml:"device"`
	// HostDropout: on a GPU, dropout masks are drawn on the host as the CPU
	// draws them (gpu.HostDropout), so the run reproduces the CPU's.
	HostDropout bool `toml:"host_dropout,omitempty"`
	// Differential privacy (off when dp_noise is 0).
	DPNoise    float64 `toml:"dp_noise"`
	DPClip     float64 `toml:"dp_clip"`
	DPAdaptive bool    `toml:"dp_adaptive"`
	DPBudget   float64 `toml:"dp_budget"`
	DPDelta    float64 `toml:"dp_delta"`
	// DPCryptoNoise draws the noise from a cryptographic generator; by
	// default a simulation seeds it (reproducible, NOT private).
	DPCryptoNoise bool `toml:"dp_crypto_noise"`
	// DPLocal: clients clip and noise their own updates (local DP).
	DPLocal bool `toml:"dp_local"`
	// DPAccountant: rdp (default) or pld (Poisson sampling only).
	DPAccountant string `toml:"dp_accountant"`
	// Sampling: fixed (default) or poisson cohorts (fraction = each
	// client's probability).
	Sampling string `toml:"sampling"`
	// Audit: canary clients for the one-shot empirical privacy estimate
	// (0: no audit).
	Audit int `toml:"audit"`
	// Secure aggregation (SecAgg+) of every round: range bounds each
	// update coordinate (0: learning rate × local steps).
	SecAgg             bool    `toml:"secagg"`
	SecAggRange        float64 `toml:"secagg_range"`
	SecAggKeyAgreement string  `toml:"secagg_key_agreement"`
	// Sweep is simulate sweep's grid, the [sweep] table.
	Sweep sweepGrid `toml:"sweep,omitempty"`
}

func defaultForgetting() simConfig {
	return simConfig{
		Model: "builtin", Data: cli.DefaultDataDir(), Clients: 8, Fraction: 0.5, Partition: "iid",
		Pairs:    []string{"add-mod-10:add-mod-10-alt:related", "add-mod-10:word-category:shifted"},
		Adapters: []string{"kron:8", "lora:8"},
		RoundsA:  8, RoundsB: 6, Epochs: 2, Batch: 8, LR: 0, Bits: 8, MaxItems: 96, EvalItems: 100,
		Rule: "fedavg", Seed: 1, Seeds: 3, DPClip: 1, DPDelta: 1e-5, Transport: "memory", Scale: 1, Precision: "auto", Device: "cpu",
	}
}

// lrGrid is the learning rates the validation sweep tries.
func lrGrid(cfg simConfig) []float64 {
	if len(cfg.LRGrid) > 0 {
		return cfg.LRGrid
	}
	return train.DefaultLRGrid
}

// adapterTable is one [[adapter]] table: kind = "kron", rank = 8, dA2 = 2,
// lr = 3e-3 (0 or absent: the default dA2; lr or the sweep's).
type adapterTable struct {
	Kind string  `toml:"kind"`
	Rank int     `toml:"rank"`
	DA2  int     `toml:"dA2,omitzero"`
	LR   float64 `toml:"lr,omitzero"`
}

// spec is the table as an --adapters entry.
func (t adapterTable) spec() string {
	s := fmt.Sprintf("%s:%d", t.Kind, t.Rank)
	if t.DA2 != 0 {
		s += fmt.Sprintf(":%d", t.DA2)
	}
	if t.LR != 0 {
		s += "@" + strconv.FormatFloat(t.LR, 'g', -1, 64)
	}
	return s
}

// adapterSpecs is every adapter of the configuration as an --adapters
// entry: the list, then the [[adapter]] tables.
func adapterSpecs(cfg simConfig) []string {
	out := slices.Clone(cfg.Adapters)
	for _, t := range cfg.AdapterTables {
		out = append(out, t.spec())
	}
	return out
}

// pairTable is one [[pair]] table: a = "hellaswag", b = "arc-easy",
// rounds_a = 5, rounds_b = 10 (0 or absent: the global rounds_a/rounds_b).
type pairTable struct {
	A       string `toml:"a"`
	B       string `toml:"b"`
	Label   string `toml:"label,omitempty"`
	RoundsA int    `toml:"rounds_a,omitzero"`
	RoundsB int    `toml:"rounds_b,omitempty"`
}

// epochMapping is how the paper's epochs become federated rounds, said in
// the help text, at the start of a run and in its config.toml.
const epochMapping = "a phase of E paper epochs is E federated rounds of 1 local epoch each, with the cohort " +

	"covering every client (fraction 1) and each client training on its whole shard (max-items 0), so every " +
	"round is one pass over the task's training data; in general a round is fraction × local epochs passes, " +
	"fewer when max-items caps the shard"

// presets are named starting points; TOML keys and flags still override
// every value they set.
var presets = map[string]func(cfg *simConfig, scale float64){
	"paper": paperPreset,
}

func presetNames() string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// paperPreset is the Kron-LoRA paper's sequential-task protocol on the real
// model and data: ARC-Challenge → ARC-Easy and back at 10 + 10 epochs,
// HellaSwag → ARC-Easy (5 + 10) and back (10 + 5: the epochs belong to the
// task, HellaSwag being 9× larger than ARC), Kron-LoRA r8 against LoRA-4,
// -8 and -16, the paper's AdamW lr 3e-4 and micro-batch 8 (see
// epochMapping for epochs → rounds). At scale 1 it trains on whole shards
// and scores whole test splits, as the paper does, which takes hours on a
// laptop; below 1 it also caps the local items per client and round at
// max(4, 80·scale) and the scored items per task at max(50, 1000·scale), so
// --scale 0.1 is minutes on two cores. Those caps make a round less than an
// epoch; the run says so at its start.
func paperPreset(cfg *simConfig, scale float64) {
	cfg.Model = filepath.Join(sharedDir(), "models", "stories260K.gguf")
	cfg.Data = cli.DefaultDataDir()
	cfg.Pairs = []string{"arc-challenge:arc-easy:10:10", "arc-easy:arc-challenge:10:10", "hellaswag:arc-easy:5:10", "arc-easy:hellaswag:10:5"}
	cfg.Adapters = []string{"kron:8", "lora:4", "lora:8", "lora:16"}
	cfg.Clients, cfg.Cohort, cfg.Fraction, cfg.Partition = 8, 0, 1, "iid"
	cfg.RoundsA, cfg.RoundsB, cfg.Epochs, cfg.Batch, cfg.LR = 10, 10, 1, 8, 3e-4
	cfg.Bits, cfg.Rule = 8, "fedavg"
	cfg.MaxItems, cfg.EvalItems = 0, 0
	if scale < 1 {
		cfg.MaxItems = max(4, int(math.Round(80*scale)))
		cfg.EvalItems = max(50, int(math.Round(1000*scale)))
	}
}

// sharedDir is the shared-assets folder, found as the data folder is:
// $KRONFED_SHARED, else ../shared.
func sharedDir() string { return filepath.Dir(cli.DefaultDataDir()) }

// argValue finds a flag's value in args before the flags are defined
// (--name V, --name=V, one dash or two); ok is false when it is absent.
func argValue(args []string, name string) (v string, ok bool, err error) {
	for i, a := range args {
		for _, p := range []string{"--" + name, "-" + name} {
			if a == p {
				if i+1 >= len(args) {
					return "", false, fmt.Errorf("%s needs a value", p)
				}
				v, ok = args[i+1], true
			} else if x, found := strings.CutPrefix(a, p+"="); found {
				v, ok = x, true
			}
		}
	}
	return v, ok, nil
}

// loadForgetting resolves forgetting's settings in the order defaults,
// preset, TOML file, flags: each overrides the one before. The preset (and
// the scale its item caps depend on) can come from the file or a flag, so
// both are looked up first.
func loadForgetting(args []string, cfg *simConfig) error {
	path, err := configFlag(args)
	if err != nil {
		return err
	}
	// A copy with its own slices: the TOML decoder reuses a slice's
	// backing array, which would write the file's lists into cfg's.
	file := *cfg
	file.Pairs, file.Adapters, file.PairTables = slices.Clone(cfg.Pairs), slices.Clone(cfg.Adapters), slices.Clone(cfg.PairTables)
	if path != "" {
		if err := cli.DecodeTOML(path, &file); err != nil {
			return err
		}
	}
	name, scale := file.Preset, file.Scale
	if v, ok, err := argValue(args, "preset"); err != nil {
		return err
	} else if ok {
		name = v
	}
	if v, ok, err := argValue(args, "scale"); err != nil {
		return err
	} else if ok {
		if scale, err = strconv.ParseFloat(v, 64); err != nil {
			return fmt.Errorf("--scale %q: not a number", v)
		}
	}
	if err := checkScale(scale); err != nil {
		return err
	}
	if name != "" {
		apply, ok := presets[name]
		if !ok {
			return fmt.Errorf("unknown preset %q (known: %s)", name, presetNames())
		}
		// [[pair]] tables in the file replace the preset's pairs unless the
		// file sets pairs too.
		tablesOnly := len(file.PairTables) > 0 && slices.Equal(file.Pairs, cfg.Pairs)
		apply(cfg, scale)
		cfg.Preset = name
		if tablesOnly {
			cfg.Pairs = nil
		}
	}
	return loadConfig("forgetting", args, cfg, func(fs *flag.FlagSet) {
		fs.StringVar(&cfg.Preset, "preset", cfg.Preset, "start from a named set of settings ("+presetNames()+"); the file and the other flags override it. "+
			"paper: stories260K from the shared folder ($KRONFED_SHARED or ../shared), the shared data, ARC-Challenge→ARC-Easy and back (10+10 epochs), "+
			"HellaSwag→ARC-Easy (5+10) and back (10+5), kron:8 vs lora:4, lora:8, lora:16, 8 clients, lr 3e-4; "+epochMapping)
		fs.Var(listFlag{&cfg.Mitigations}, "mitigation", "mitigations against forgetting, comma-separated, each run side by side: "+
			"none, merge (average of the tasks' ΔW, exact re-fit), ties[:DENSITY] (TIES-merging, default 0.2), reinit (task A folded into the base, a fresh adapter for B), "+
			"l2sp[:λ] (L2-SP toward task A's factors, default 0.1), ortho[:λ] (reinit plus O-LoRA orthogonality to task A's input-side factors, default 0.5)")
		fs.IntVar(&cfg.Seeds, "seeds", cfg.Seeds, "run every (adapter, pair) with seeds --seed … --seed+N−1 and report mean ± standard deviation")
		fs.Float64Var(&cfg.Scale, "scale", cfg.Scale, "multiply every phase length by this (0 < scale ≤ 1; rounded, at least 1 round); "+
			"with --preset paper below 1 it also caps max-items at max(4, 80·scale) and eval-items at max(50, 1000·scale)")
	})
}

func checkScale(f float64) error {
	if !(f > 0 && f <= 1) {
		return fmt.Errorf("scale %v: want 0 < scale ≤ 1", f)
	}
	return nil
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

// parseAdapterSpec reads kind[:rank[:dA2]][@lr]: "kron:8", "kron:8:2@3e-3",
// "lora:8@1e-3" (lr 0 when absent).
func parseAdapterSpec(s string) (adapter.Config, float64, error) {
	spec, lrText, hasLR := strings.Cut(s, "@")
	parts := strings.Split(spec, ":")
	k, err := adapter.ParseKind(parts[0])
	if err != nil {
		return adapter.Config{}, 0, fmt.Errorf("adapter %q: %w", s, err)
	}
	c := adapter.DefaultConfig(k)
	if len(parts) > 1 {
		if c.Rank, err = strconv.Atoi(parts[1]); err != nil {
			return c, 0, fmt.Errorf("adapter %q: rank %q is not a number", s, parts[1])
		}
	}
	if len(parts) > 2 { // Validate refuses a dA2 on LoRA
		if c.DA2, err = strconv.Atoi(parts[2]); err != nil {
			return c, 0, fmt.Errorf("adapter %q: dA2 %q is not a number", s, parts[2])
		}
	}
	if len(parts) > 3 {
		return c, 0, fmt.Errorf("adapter %q: want kind[:rank[:dA2]][@lr]", s)
	}
	var lr float64
	if hasLR {
		if lr, err = strconv.ParseFloat(lrText, 64); err != nil || !(lr > 0) || math.IsInf(lr, 0) {
			return c, 0, fmt.Errorf("adapter %q: learning rate %q: want a number > 0", s, lrText)
		}
	}
	return c, lr, c.Validate()
}

// loadConfig reads --config (whose values become the flags' defaults) and
// then the flags, shared by forgetting and run; extra adds a command's own
// flags.
func loadConfig(name string, args []string, cfg *simConfig, extra func(*flag.FlagSet)) error {
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
	fs.Var(listFlag{&cfg.Pairs}, "pairs", "task pairs A:B[:label][:ROUNDS_A:ROUNDS_B], comma-separated; a pair's own rounds override --rounds-a/--rounds-b "+
		"(tasks: "+strings.Join(append(task.SyntheticNames(), task.Names()...), ", ")+")")
	fs.Var(listFlag{&cfg.Adapters}, "adapters", "adapters kind:rank[:dA2][@lr], comma-separated, compared side by side (an @lr is that adapter's learning rate)")
	fs.IntVar(&cfg.RoundsA, "rounds-a", cfg.RoundsA, "federated rounds on task A, for pairs without their own")
	fs.IntVar(&cfg.RoundsB, "rounds-b", cfg.RoundsB, "federated rounds on task B, for pairs without their own")
	fs.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "local epochs per round")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "local micro-batch")
	fs.Float64Var(&cfg.LR, "lr", cfg.LR, "local AdamW learning rate of every adapter without its own @lr (0: each adapter's by a validation sweep over --lr-grid on the first task)")
	fs.Var(numList[float64]{&cfg.LRGrid, parseFloat}, "lr-grid", "learning rates the validation sweep tries, comma-separated (default "+joinNums(train.DefaultLRGrid)+")")
	fs.IntVar(&cfg.Bits, "bits", cfg.Bits, "upload quantization: 2, 3, 4, 8 or 32")
	fs.IntVar(&cfg.MaxItems, "max-items", cfg.MaxItems, "local training items per client and round (0: the whole shard)")
	fs.IntVar(&cfg.EvalItems, "eval-items", cfg.EvalItems, "test items scored per task after each round (0: all)")
	fs.StringVar(&cfg.Rule, "rule", cfg.Rule, "aggregation: "+strings.Join(fed.RuleNames, ", "))
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of everything: same seed, same machine, same numbers")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "clients training at once (0: the number of CPUs)")
	fs.StringVar(&cfg.Out, "out", cfg.Out, "run folder (default runs/forgetting-TIME)")
	fs.StringVar(&cfg.Transport, "transport", cfg.Transport, "memory (direct calls) or grpc (real gRPC with mutual TLS on loopback)")
	fs.StringVar(&cfg.Precision, "precision", cfg.Precision, "frozen base weights: bf16, bf16-lean (CPU: one packed copy per weight, half bf16's memory, backward ~13% slower), fp32, or auto (bf16 on a GPU; on a CPU bf16 where it has AVX512_BF16, its bf16 products measure ≥ 1.3× the fp32 FMA rate and the base's hidden size is ≥ 512, else fp32); adapters and their training are fp32 either way")
	fs.BoolVar(&cfg.HostDropout, "host-dropout", cfg.HostDropout, "with --device cuda: draw dropout masks on the host exactly as the CPU does (slower), so the run reproduces a CPU run of the same seed within float rounding")
	fs.StringVar(&cfg.Device, "device", cfg.Device, "where the clients train: cpu, cuda or cuda:N (an NVIDIA GPU; every simulated client shares one device copy of the base and they take turns on it; KRONFED_CUDA_PATH names the CUDA libraries' folder)")
	fs.Float64Var(&cfg.DPNoise, "dp-noise", cfg.DPNoise, "client-level DP: noise multiplier z (0: DP off)")
	fs.Float64Var(&cfg.DPClip, "dp-clip", cfg.DPClip, "DP: clipping norm of each client's whole update")
	fs.BoolVar(&cfg.DPAdaptive, "dp-adaptive", cfg.DPAdaptive, "DP: adaptive clipping (Andrew et al. 2021)")
	fs.Float64Var(&cfg.DPBudget, "dp-budget", cfg.DPBudget, "DP: stop before ε would pass this (0: no budget)")
	fs.Float64Var(&cfg.DPDelta, "dp-delta", cfg.DPDelta, "DP: δ")
	fs.BoolVar(&cfg.DPCryptoNoise, "dp-crypto-noise", cfg.DPCryptoNoise, "DP: cryptographic noise (default: seeded noise, reproducible but NOT private)")
	fs.BoolVar(&cfg.DPLocal, "dp-local", cfg.DPLocal, "DP: local DP, each client clips and noises its own update before upload")
	fs.StringVar(&cfg.DPAccountant, "dp-accountant", cfg.DPAccountant, "DP: rdp (Rényi DP at its best order) or pld (privacy loss distribution; needs --sampling poisson)")
	fs.StringVar(&cfg.Sampling, "sampling", cfg.Sampling, "cohorts: fixed (--cohort clients, or --fraction of them, without replacement) or poisson (each client joins a round with probability --fraction)")
	fs.IntVar(&cfg.Audit, "audit", cfg.Audit, "empirical privacy audit: this many canary clients join, and ε̂ of the published adapter is estimated each round (0: off)")
	fs.BoolVar(&cfg.SecAgg, "secagg", cfg.SecAgg, "secure aggregation (SecAgg+): the coordinator sees only each round's sum; needs rule fedavg and bits 2..8")
	fs.Float64Var(&cfg.SecAggRange, "secagg-range", cfg.SecAggRange, "secure aggregation: bound on every update coordinate (0: learning rate × local steps)")
	fs.StringVar(&cfg.SecAggKeyAgreement, "secagg-key-agreement", cfg.SecAggKeyAgreement, "secure aggregation: x25519 or xwing (hybrid post-quantum)")
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := train.ParseDevice(cfg.Device); err != nil {
		return fmt.Errorf("device: %w", err)
	}
	if _, err := train.FrozenPrecision(cfg.Precision, cfg.Device, nil); err != nil {
		return fmt.Errorf("precision: %w", err)
	}
	// A command that does not offer presets must not silently ignore a
	// file's preset or scale.
	if fs.Lookup("preset") == nil && (cfg.Preset != "" || cfg.Scale != 1) {
		return fmt.Errorf("preset and scale apply to simulate forgetting only, not %s", name)
	}
	if name != "run" && (len(cfg.Ranks) > 0 || len(cfg.DA2s) > 0 || cfg.Hetero != "") {
		return fmt.Errorf("ranks, da2s and hetero apply to simulate run only, not %s", name)
	}
	if name != "forgetting" && len(cfg.Mitigations) > 0 {
		return fmt.Errorf("mitigations apply to simulate forgetting only, not %s", name)
	}
	if name != "forgetting" && cfg.Seeds > 1 {
		return fmt.Errorf("seeds apply to simulate forgetting only; %s runs --seed alone", name)
	}
	if name != "sweep" && !reflect.DeepEqual(cfg.Sweep, sweepGrid{}) {
		return fmt.Errorf("a [sweep] table applies to simulate sweep only, not %s", name)
	}
	return nil
}

// settings is what a configuration's training, privacy and aggregation
// keys resolve to; resolving reads no file, so a sweep checks every point
// this way before any work starts.
type settings struct {
	rule     fed.Rule
	adapters []simulate.Arm
	train    *fedpb.RoundConfig
	dp       *fed.DPPolicy
	secAgg   *fed.SecAggPolicy
}

func resolveSettings(cfg simConfig) (settings, error) {
	if _, _, err := simulate.ParsePartition(cfg.Partition); err != nil {
		return settings{}, err
	}
	rule, err := fed.ParseRule(cfg.Rule)
	if err != nil {
		return settings{}, err
	}
	var adapters []simulate.Arm
	for _, s := range adapterSpecs(cfg) {
		c, lr, err := parseAdapterSpec(s)
		if err != nil {
			return settings{}, err
		}
		adapters = append(adapters, simulate.Arm{Adapter: c, LR: lr})
	}
	switch {
	case cfg.LR < 0 || math.IsNaN(cfg.LR) || math.IsInf(cfg.LR, 0):
		return settings{}, fmt.Errorf("lr %v: want > 0, or 0 to choose each adapter's by a validation sweep", cfg.LR)
	case cfg.Seeds < 0:
		return settings{}, fmt.Errorf("seeds %d: want ≥ 1 (0: one)", cfg.Seeds)
	}
	for _, lr := range cfg.LRGrid {
		if !(lr > 0) || math.IsInf(lr, 0) {
			return settings{}, fmt.Errorf("lr_grid %v: every learning rate must be > 0", cfg.LRGrid)
		}
	}
	// With the sweep still to choose the rates, the round checks below run
	// at the grid's first.
	probeLR := cfg.LR
	if probeLR == 0 {
		probeLR = slices.Min(lrGrid(cfg))
	}
	rc := &fedpb.RoundConfig{LocalEpochs: uint32(max(cfg.Epochs, 0)), BatchSize: uint32(max(cfg.Batch, 0)), LearningRate: probeLR,
		Bits: uint32(max(cfg.Bits, 0)), Seed: cfg.Seed, MaxItems: uint32(cfg.MaxItems)}
	var dp *fed.DPPolicy
	if cfg.DPNoise != 0 {
		dp = &fed.DPPolicy{Clip: cfg.DPClip, Noise: cfg.DPNoise, Adaptive: cfg.DPAdaptive, Epsilon: cfg.DPBudget,
			Delta: cfg.DPDelta, SeededNoise: !cfg.DPCryptoNoise, Seed: cfg.Seed, Local: cfg.DPLocal, Accountant: cfg.DPAccountant}
	}
	var sa *fed.SecAggPolicy
	if cfg.SecAgg {
		ka, err := fed.ParseKeyAgreement(cfg.SecAggKeyAgreement)
		if err != nil {
			return settings{}, fmt.Errorf("secagg_key_agreement: %w", err)
		}
		sa = &fed.SecAggPolicy{Range: cfg.SecAggRange, KeyAgreement: ka}
		if n := cfg.Cohort; n == 0 && int(math.Ceil(cfg.Fraction*float64(cfg.Clients)-1e-9)) < fed.MinSecAggCohort {
			return settings{}, fmt.Errorf("secure aggregation needs cohorts of at least %d clients (fraction %v of %d clients)", fed.MinSecAggCohort, cfg.Fraction, cfg.Clients)
		}
	}
	probe := fed.Policy{CohortSize: cfg.Cohort, Fraction: cfg.Fraction, RoundTimeout: time.Hour, Train: rc, DP: dp, SecAgg: sa, Sampling: cfg.Sampling}
	for _, c := range adapters {
		if err := rule.Check(c.Adapter.Kind, probe); err != nil {
			return settings{}, err
		}
	}
	if err := probe.Validate(); err != nil {
		return settings{}, err
	}
	if err := checkBudget(probe, cfg); err != nil {
		return settings{}, err
	}
	switch {
	case cfg.Audit < 0 || cfg.Audit == 1:
		return settings{}, fmt.Errorf("audit %d: want 0 (off) or at least 2 canaries", cfg.Audit)
	case cfg.Audit > 0 && sa != nil:
		return settings{}, errors.New("audit with secagg: the one-shot audit estimates central DP-FedAvg; secure aggregation is not covered")
	case cfg.Audit > 0 && cfg.DPLocal:
		return settings{}, errors.New("audit with dp_local: the one-shot audit estimates central DP-FedAvg, not local DP")
	case cfg.Audit > 0 && cfg.Transport == "grpc":
		return settings{}, errors.New("audit with transport grpc: canaries run over the memory transport only")
	}
	return settings{rule: rule, adapters: adapters, train: rc, dp: dp, secAgg: sa}, nil
}

// checkBudget refuses a privacy budget that not even one round fits, before
// any work (the accountant knows a round's cost from the noise, the cohort
// and the population).
func checkBudget(p fed.Policy, cfg simConfig) error {
	dp := p.DP
	if dp == nil || dp.Epsilon <= 0 {
		return nil
	}
	cohort := cfg.Cohort
	if cohort == 0 {
		cohort = int(math.Ceil(cfg.Fraction*float64(cfg.Clients) - 1e-9))
	}
	eps, err := p.SpentAfter(1, cohort, cfg.Clients)
	if err != nil {
		return fmt.Errorf("dp: %w", err)
	}
	if eps > dp.Epsilon {
		return fmt.Errorf("dp_budget %g cannot be met: one round already spends ε = %.4g (noise %g, cohort %d of %d clients sampled without replacement, δ = %g); raise dp_budget or dp_noise, or take a smaller share of the clients a round",
			dp.Epsilon, eps, dp.Noise, cohort, cfg.Clients, dp.Delta)
	}
	return nil
}

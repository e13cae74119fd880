package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate"
	"github.com/kronfed/kronfed/aggregate/audit"
	"github.com/kronfed/kronfed/simulate"
	"github.com/kronfed/kronfed/task"
)

// runRun is `simulate run`: one federated training run on one task, with
// every setting of `forgetting` (the first of --adapters is used), test
// accuracy and ε after every round.
func runRun(args []string, stdout io.Writer) error { return runAudited("run", args, stdout, 0) }

// runAudit is `simulate audit`: `run` with the one-shot empirical privacy
// audit on (32 canaries unless --audit or the config says otherwise), so
// ε̂ is printed next to the accountant's ε every round.
func runAudit(args []string, stdout io.Writer) error { return runAudited("audit", args, stdout, 32) }

func runAudited(name string, args []string, stdout io.Writer, canaries int) error {
	cfg := defaultForgetting()
	cfg.Adapters = []string{"kron:8"}
	cfg.Audit = canaries
	cfg.Seeds = 0    // one run, at --seed
	cfg.Fraction = 1 // every client every round unless told otherwise
	taskName, rounds, taskDir := "word-category", 5, ""
	err := loadConfig(name, args, &cfg, func(fs *flag.FlagSet) {
		fs.StringVar(&taskName, "task", taskName, "the task to train on: a built-in task, or a .jsonl file of your own data (docs/data.md)")
		fs.StringVar(&taskDir, "task-dir", "", "clients' own data instead of --task: a folder of .jsonl files, one per client (their validation and test items pooled)")
		fs.IntVar(&rounds, "rounds", rounds, "federated rounds")
		fs.Var(numList[int]{&cfg.Ranks, strconv.Atoi}, "ranks", "clients of different capacity: ranks cycled over the clients, e.g. 2,4,8 (the global adapter takes the largest)")
		fs.Var(numList[int]{&cfg.DA2s, strconv.Atoi}, "da2s", "clients of different Kronecker dA2, cycled over the clients, e.g. 2,4 (kron only): they upload whole adapters, summed exactly as ΔW by rule hetero-exact")
		fs.StringVar(&cfg.Hetero, "hetero", cfg.Hetero, "with --ranks: exact (SVD down, exact lift up, kron-exact or lora-exact sum; the default), zeropad (HeteroLoRA: first components down, zero-padded factor averaging) or truncate (SVD down, factor averaging)")
	})
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	var shards [][]task.Item
	var own *task.Splits
	if taskDir != "" {
		var names []string
		if shards, own, names, err = simulate.OwnData(taskDir, cfg.Seed); err != nil {
			return fmt.Errorf("run: --task-dir: %w", err)
		}
		if own.Validation.Len() == 0 {
			return fmt.Errorf("run: --task-dir %s: no client file has validation items", taskDir)
		}
		// One client per file; the first file stands for the task in the checks.
		cfg.Clients, taskName = len(shards), filepath.Join(taskDir, names[0]+task.JSONLExt)
	}
	if rounds < 1 {
		return fmt.Errorf("run: --rounds %d < 1", rounds)
	}
	if err := applyRanks(&cfg); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if all := append(task.SyntheticNames(), task.Names()...); !slices.Contains(all, taskName) && !task.IsJSONLPath(taskName) {
		return fmt.Errorf("run: --task: unknown task %q (known: %s; or a .jsonl file of your own questions)", taskName, strings.Join(all, ", "))
	}
	if len(cfg.Adapters) != 1 {
		return fmt.Errorf("run: give one adapter (--adapters %v); forgetting compares several", cfg.Adapters)
	}
	if cfg.Out == "" {
		cfg.Out = filepath.Join("runs", "run-"+time.Now().Format("20060102-150405"))
	}
	// The same checks as forgetting: one "pair" of the task with itself.
	cfg.Pairs, cfg.RoundsA, cfg.RoundsB = []string{taskName + ":" + taskName}, rounds, 1
	exp, err := buildExperiment(&cfg)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer exp.Base.Engine.Close()
	splits, _ := exp.Splits(taskName)
	if own != nil {
		splits = own
		taskName = taskDir
	}
	closeLog, err := startRunFolder(exp)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer closeLog()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Fprintf(stdout, "run: %d clients, %s on %s, %s, %d rounds, %d-bit uploads over %s; results in %s\n",
		cfg.Clients, cfg.Adapters[0], modelText(cfg, exp), taskName, rounds, cfg.Bits, cfg.Transport, exp.Out)
	if note := dpNote(cfg); note != "" {
		fmt.Fprintln(stdout, "  "+note)
	}
	if err := tuneArms(ctx, exp, &cfg, taskName, splits, stdout); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	base := exp.ArmOptions(exp.Adapters[0], cfg.Seed)
	if len(cfg.Ranks) > 0 || len(cfg.DA2s) > 0 {
		base.ClientRanks, base.ClientDA2s = cfg.Ranks, cfg.DA2s
		if base.RankDown, err = heteroMethod(cfg.Hetero); err != nil {
			return fmt.Errorf("run: %w", err)
		}
		shapes := "ranks " + joinNums(cfg.Ranks)
		if len(cfg.Ranks) == 0 {
			shapes = fmt.Sprintf("rank %d", base.Adapter.Rank)
		}
		if len(cfg.DA2s) > 0 {
			shapes += " and dA2 " + joinNums(cfg.DA2s)
		}
		fmt.Fprintf(stdout, "  clients of %s (cycled), global rank %d, %s aggregation (rule %s)\n", shapes, base.Adapter.Rank, cfg.Hetero, cfg.Rule)
	}
	resolved := cfg
	resolved.Pairs, resolved.RoundsA, resolved.RoundsB = nil, 0, 0 // run's --task and --rounds say these
	taskArgs := []string{"--task", taskName}
	if taskDir != "" {
		taskArgs = []string{"--task-dir", taskDir}
	}
	header := []string{"Resolved settings of this run of simulate " + name + ".",
		reproduceLine(name, exp.Out, append(taskArgs, "--rounds", strconv.Itoa(rounds))...), ""}
	if err := writeResolvedConfig(exp.Out, resolved, append(header, armLines(exp)...)); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	_, table, err := trainOne(ctx, base, splits, shards, rounds, cfg.EvalItems, exp.Out, "", newETA(rounds), stdout)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	fmt.Fprintf(stdout, "\n%s\nResults: %s\n", table, runFolderListing(exp.Out))
	return nil
}

// applyRanks resolves --ranks and --hetero before the checks: the global
// adapter takes the largest rank, and the method its rule — exact sums the
// clients' ΔW with kron-exact (lora-exact for LoRA), zeropad and truncate
// average factors with fedavg.
func applyRanks(cfg *simConfig) error {
	if len(cfg.Ranks) == 0 && len(cfg.DA2s) == 0 {
		if cfg.Hetero != "" {
			return errors.New("--hetero applies with --ranks")
		}
		return nil
	}
	if len(cfg.Ranks) > 0 && slices.Min(cfg.Ranks) < 1 {
		return fmt.Errorf("ranks %v: every rank must be ≥ 1", cfg.Ranks)
	}
	if len(cfg.DA2s) > 0 && slices.Min(cfg.DA2s) < 1 {
		return fmt.Errorf("da2s %v: every dA2 must be ≥ 1", cfg.DA2s)
	}
	h := cmp.Or(cfg.Hetero, "exact")
	if _, err := heteroMethod(h); err != nil {
		return err
	}
	ac, lr, err := parseAdapterSpec(cfg.Adapters[0])
	if err != nil {
		return err
	}
	rule := "fedavg"
	switch {
	case len(cfg.DA2s) > 0 && ac.Kind != adapter.KindKron:
		return fmt.Errorf("--da2s applies to kron adapters, not %s", ac.Kind)
	case len(cfg.DA2s) > 0 && h != "exact":
		return fmt.Errorf("--da2s: clients of different dA2 can only be summed exactly as ΔW (hetero exact), not %s", h)
	case len(cfg.DA2s) > 0:
		rule = "hetero-exact"
	case h == "exact" && ac.Kind == adapter.KindLoRA:
		rule = "lora-exact"
	case h == "exact":
		rule = "kron-exact"
	}
	if cfg.Rule != "fedavg" && cfg.Rule != rule {
		return fmt.Errorf("--hetero %s aggregates with rule %s, not %s", h, rule, cfg.Rule)
	}
	rank := ac.Rank
	if len(cfg.Ranks) > 0 {
		rank = slices.Max(cfg.Ranks)
	}
	spec := fmt.Sprintf("%s:%d", ac.Kind, rank)
	if ac.DA2 > 0 {
		spec += fmt.Sprintf(":%d", ac.DA2)
	}
	if lr > 0 {
		spec += "@" + strconv.FormatFloat(lr, 'g', -1, 64)
	}
	cfg.Adapters, cfg.Rule, cfg.Hetero = []string{spec}, rule, h
	return nil
}

// heteroMethod is how clients of --hetero h take the global down to their
// rank.
func heteroMethod(h string) (aggregate.RankMethod, error) {
	switch h {
	case "", "exact", "truncate":
		return aggregate.RankSVD, nil
	case "zeropad":
		return aggregate.RankIndex, nil
	}
	return 0, fmt.Errorf("hetero %q: want exact, zeropad or truncate", h)
}

// trainOne is one federated training run of opts on splits in the run
// folder out: a progress line per round (after prefix), then the run's
// result files. It returns the records and the Markdown table; after an
// error the files hold what was published so far.
func trainOne(ctx context.Context, opts simulate.Options, splits *task.Splits, shards [][]task.Item, rounds, evalItems int, out, prefix string,
	progress *eta, stdout io.Writer) ([]simulate.RoundRecord, string, error) {
	status := newStatusLine(stdout)
	status.progress = progress
	opts.Uploads = status.uploads(prefix + "this round: ")
	single := &simulate.Single{Base: opts, Splits: splits, Shards: shards, Rounds: rounds, EvalItems: evalItems, Out: out,
		Progress: func(p simulate.Progress) {
			refit := ""
			if p.RefitErrorMax > 0 {
				refit = fmt.Sprintf("  rank re-fit error %.3f (max %.3f)", p.RefitError, p.RefitErrorMax)
			}
			status.printf("%sround %d/%d  loss %.3f  test acc %.3f%s%s%s  (%s)  %s\n", prefix, p.Round, p.Rounds, p.Loss, p.AccA,
				epsilonNote(p.Epsilon, p.Accountant), auditNote(p.Audit), refit, p.Elapsed.Round(time.Second), progress.step())
		}}
	records, runErr := single.Run(ctx)
	table, err := simulate.WriteRunResults(out, records)
	if err != nil {
		return records, "", fmt.Errorf("write results: %w", err)
	}
	if runErr != nil {
		return records, table, fmt.Errorf("%w (partial results in %s)", runErr, out)
	}
	return records, table, nil
}

// auditNote is the progress line's empirical ε̂, when audited.
func auditNote(a *audit.Estimate) string {
	if a == nil {
		return ""
	}
	return fmt.Sprintf("  audit ε̂ %.3g [%.3g, %.3g]", a.Epsilon, a.Low, a.High)
}

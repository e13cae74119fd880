package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/internal/cli"
	"github.com/kronfed/kronfed/task"
	"github.com/kronfed/kronfed/train"
)

func defaultDataDir() string { return cli.DefaultDataDir() }

func limit(t *task.Task, n int) []task.Item {
	if t == nil {
		return nil
	}
	if n > 0 && n < len(t.Items) {
		return t.Items[:n]
	}
	return t.Items
}

// progressBar redraws one status line on w at most every 100 ms; when w is
// not a terminal (a log file, CI) it prints a plain line per phase change
// instead, so logs stay readable.
type progressBar struct {
	w     io.Writer
	start time.Time
	last  time.Time
	on    bool
	plain bool
	phase string
	epoch int
	tenth int // the last tenth of the steps a plain line reported
}

func newProgressBar(f *os.File) *progressBar {
	st, err := f.Stat()
	return &progressBar{w: f, start: time.Now(), plain: err != nil || st.Mode()&os.ModeCharDevice == 0}
}

// timing is "elapsed 12s, ETA 40s" at step of steps (training steps; the
// evaluations between epochs fold into the pace).
func (p *progressBar) timing(step, steps int) string {
	elapsed := time.Since(p.start)
	t := "elapsed " + elapsed.Round(time.Second).String()
	if step > 0 && step < steps {
		t += ", ETA " + time.Duration(float64(elapsed)/float64(step)*float64(steps-step)).Round(time.Second).String()
	}
	return t
}

func (p *progressBar) update(pr train.Progress) {
	if p.plain { // a line per phase, and one per tenth of the training steps
		tenth := 10 * pr.Step / max(pr.Steps, 1)
		if pr.Phase != p.phase || pr.Epoch != p.epoch || (pr.Phase == "train" && tenth > p.tenth) {
			p.phase, p.epoch, p.tenth = pr.Phase, pr.Epoch, tenth
			fmt.Fprintf(p.w, "epoch %d/%d: %s (step %d/%d, %s)\n", pr.Epoch, pr.Epochs, pr.Phase, pr.Step, pr.Steps, p.timing(pr.Step, pr.Steps))
		}
		return
	}
	if time.Since(p.last) < 100*time.Millisecond && pr.Step != pr.Steps && pr.Phase == "train" {
		return
	}
	p.last = time.Now()
	const width = 30
	filled := width * pr.Step / max(pr.Steps, 1)
	bar := strings.Repeat("#", filled) + strings.Repeat(".", width-filled)
	status := fmt.Sprintf("loss %.4f", pr.Loss)
	if pr.Phase != "train" {
		status = pr.Phase + "…"
	}
	fmt.Fprintf(p.w, "\r\033[K[%s] epoch %d/%d step %d/%d %-16s %s", bar, pr.Epoch, pr.Epochs, pr.Step, pr.Steps, status, p.timing(pr.Step, pr.Steps))
	p.on = true
}

func (p *progressBar) done() {
	if p.on && !p.plain {
		fmt.Fprintln(p.w)
	}
}

type trainReport struct {
	Model     string        `json:"model"`
	Task      string        `json:"task"`
	DataNote  string        `json:"data_note,omitempty"`
	Adapter   string        `json:"adapter"`
	Rank      int           `json:"rank"`
	DA2       int           `json:"dA2,omitempty"`
	Seed      uint64        `json:"seed"`
	TrainSize int           `json:"train_items"`
	ValSize   int           `json:"validation_items"`
	TestSize  int           `json:"test_items"`
	Result    *train.Result `json:"result"`
}

func runTrain(args []string, stdout io.Writer) error {
	fs := newFlags("train")
	modelPath := fs.String("model", "", "base model: a .gguf file or a Hugging Face folder (required)")
	taskName := fs.String("task", "", "task: "+strings.Join(append(task.Names(), task.SyntheticNames()...), ", ")+" (required)")
	dataDir := fs.String("data", defaultDataDir(), "folder holding the datasets")
	kind := fs.String("adapter", "kron", "adapter kind: kron or lora")
	rank := fs.Int("rank", 8, "rank r of B1·B2 (kron) or q (lora)")
	dA2 := fs.Int("dA2", 0, "rows of A (kron only; 0: the paper's default for the hidden size)")
	alpha := fs.Float64("alpha", 32, "scale numerator: ΔW is multiplied by alpha/rank")
	dropout := fs.Float64("dropout", 0.1, "adapter input dropout")
	epochs := fs.Int("epochs", 1, "training epochs")
	batch := fs.Int("batch", 8, "micro-batch size")
	lr := fs.Float64("lr", 3e-4, "AdamW learning rate (linear decay to 0)")
	maxLen := fs.Int("max-len", 128, "encoders: tokens per (context, choice) pair")
	trainLimit := fs.Int("train-limit", 0, "use only the first N training items (0: all)")
	evalLimit := fs.Int("eval-limit", 0, "use only the first N validation and test items (0: all)")
	seed := fs.Uint64("seed", 1, "seed of initialization, shuffling and dropout")
	out := fs.String("out", "adapter.safetensors", "adapter file to write (the best epoch's)")
	resultPath := fs.String("result", "", "JSON result file (default: next to --out with .json)")
	devFlags := addDeviceFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelPath == "" || *taskName == "" {
		return errors.New("train: --model and --task are required")
	}
	k, err := adapter.ParseKind(*kind)
	if err != nil {
		return fmt.Errorf("train: --adapter: %w", err)
	}
	if *epochs < 1 || *batch < 1 {
		return errors.New("train: --epochs and --batch must be ≥ 1")
	}
	engine, err := devFlags.open("train")
	if err != nil {
		return err
	}
	defer engine.Close()
	splits, err := train.LoadSplits(*taskName, *dataDir, *seed)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if splits.Validation == nil || len(splits.Validation.Items) == 0 {
		return fmt.Errorf("train: task %s has no validation split", *taskName)
	}
	m, err := train.LoadModel(*modelPath)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	ac := adapter.DefaultConfig(k)
	ac.Rank, ac.DA2, ac.Alpha, ac.Dropout = *rank, *dA2, float32(*alpha), float32(*dropout)
	if k == adapter.KindLoRA && *dA2 != 0 {
		return errors.New("train: --dA2 applies to kron adapters only")
	}
	if err := ac.Validate(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	set, err := train.NewAdapterSet(m, ac, *seed)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	ac = set.Config
	rng := rand.New(rand.NewPCG(*seed, 0x64726f70))
	l, err := engine.NewLearner(m, set, *maxLen, rng)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer l.Close()
	releaseFP32(m) // nothing here reads the fp32 base again
	trainItems := limit(splits.Train, *trainLimit)
	val, test := limit(splits.Validation, *evalLimit), limit(splits.Test, *evalLimit)
	fmt.Fprintf(os.Stderr, "training %s on %s: %s, %d trainable parameters; %d train / %d validation / %d test items\n",
		m.Name, *taskName, ac, set.NumParams(), len(trainItems), len(val), len(test))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bar := newProgressBar(os.Stderr)
	cfg := train.Config{Epochs: *epochs, BatchSize: *batch, Seed: *seed, Optim: train.DefaultAdamW()}
	cfg.Optim.LR = *lr
	res, err := train.Fit(ctx, l, trainItems, val, test, cfg, bar.update)
	bar.done()
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := set.WriteFile(*out, adapter.Float32); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	rep := trainReport{Model: m.Name, Task: *taskName, DataNote: splits.Note, Adapter: string(ac.Kind), Rank: ac.Rank, DA2: ac.DA2,
		Seed: *seed, TrainSize: len(trainItems), ValSize: len(val), TestSize: len(test), Result: res}
	if *resultPath == "" {
		*resultPath = strings.TrimSuffix(*out, filepath.Ext(*out)) + ".json"
	}
	js, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(*resultPath, append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	for _, e := range res.Epochs {
		if e.Val.Perplexity > 0 {
			fmt.Fprintf(stdout, "epoch %d: train loss %.4f, validation perplexity %.4g, exact match %.4f, %.1fs\n", e.Epoch, e.TrainLoss, e.Val.Perplexity, e.Val.Acc, e.Seconds)
			continue
		}
		fmt.Fprintf(stdout, "epoch %d: train loss %.4f, validation acc %.4f (acc_norm %.4f), %.1fs\n", e.Epoch, e.TrainLoss, e.Val.Acc, e.Val.AccNorm, e.Seconds)
	}
	fmt.Fprintf(stdout, "best epoch %d: validation acc %.4f", res.BestEpoch, res.BestVal.Acc)
	if res.Test != nil {
		fmt.Fprintf(stdout, ", test acc %.4f (acc_norm %.4f)", res.Test.Acc, res.Test.AccNorm)
	}
	fmt.Fprintf(stdout, "\n%.1f examples/s; adapter written to %s, result to %s\n", res.ExamplesPerSec, *out, *resultPath)
	return nil
}

func runEval(args []string, stdout io.Writer) error {
	fs := newFlags("eval")
	modelPath := fs.String("model", "", "base model: a .gguf file or a Hugging Face folder (required)")
	taskName := fs.String("task", "", "task name (required)")
	dataDir := fs.String("data", defaultDataDir(), "folder holding the datasets")
	adapterPath := fs.String("adapter", "", "adapter file (optional for decoders; encoders need one for their head)")
	split := fs.String("split", "validation", "split to score: train, validation or test")
	evalLimit := fs.Int("limit", 0, "score only the first N items (0: all)")
	maxLen := fs.Int("max-len", 128, "encoders: tokens per (context, choice) pair")
	seed := fs.Uint64("seed", 1, "seed of synthetic tasks")
	asJSON := fs.Bool("json", false, "print JSON")
	anyBase := fs.Bool("any-base", false, "score an adapter trained on another base model (refused by default: its factors mean nothing on this one)")
	devFlags := addDeviceFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelPath == "" || *taskName == "" {
		return errors.New("eval: --model and --task are required")
	}
	engine, err := devFlags.open("eval")
	if err != nil {
		return err
	}
	defer engine.Close()
	splits, err := train.LoadSplits(*taskName, *dataDir, *seed)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	var t *task.Task
	switch *split {
	case "train":
		t = splits.Train
	case "validation":
		t = splits.Validation
	case "test":
		t = splits.Test
	default:
		return fmt.Errorf("eval: --split %q: want train, validation or test", *split)
	}
	if t == nil || len(t.Items) == 0 {
		return fmt.Errorf("eval: task %s has no %s split (%s)", *taskName, *split, splits.Note)
	}
	m, err := train.LoadModel(*modelPath)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	var set *adapter.Set
	if *adapterPath != "" {
		if set, err = adapter.ReadFile(*adapterPath); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		if set.BaseModel != m.Name && !*anyBase {
			return fmt.Errorf("eval: %s was trained on %q, not on %q (%s); pass --any-base to score it anyway", *adapterPath, set.BaseModel, m.Name, *modelPath)
		}
	} else if m.BERT != nil {
		return errors.New("eval: encoders score with a trained multiple-choice head: pass --adapter")
	} else {
		set = &adapter.Set{Config: adapter.DefaultConfig(adapter.KindLoRA), BaseModel: m.Name}
	}
	l, err := engine.NewLearner(m, set, *maxLen, nil)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	defer l.Close()
	releaseFP32(m)
	acc, err := train.Evaluate(context.Background(), l, limit(t, *evalLimit), 8)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if *asJSON {
		js, _ := json.MarshalIndent(map[string]any{"model": m.Name, "task": *taskName, "split": *split, "adapter": *adapterPath, "accuracy": acc}, "", "  ")
		_, err := fmt.Fprintln(stdout, string(js))
		return err
	}
	if acc.Perplexity > 0 {
		fmt.Fprintf(stdout, "%s on %s/%s (%d completions): perplexity %.4g, exact match %.4f\n", m.Name, *taskName, *split, acc.N, acc.Perplexity, acc.Acc)
		return nil
	}
	fmt.Fprintf(stdout, "%s on %s/%s (%d items): acc %.4f, acc_norm %.4f\n", m.Name, *taskName, *split, acc.N, acc.Acc, acc.AccNorm)
	return nil
}

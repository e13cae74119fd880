package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/task"
	"github.com/kronfed/kronfed/train"
)

// runPretrain trains every weight of the built-in architecture from its
// initialization as a language model on the synthetic world's text (and a
// user's own text), and writes the result as a decoder file any --model
// flag takes. With --builtin it pretrains the built-in model with its
// recorded recipe and replaces the cached copy every program reads.
func runPretrain(args []string, stdout io.Writer) error {
	fs := newFlags("pretrain")
	d := train.DefaultPretrain()
	out := fs.String("out", "", "decoder file to write (.safetensors); required unless --builtin")
	builtin := fs.Bool("builtin", false, "pretrain the built-in model with its recorded recipe and replace the cached copy (train.BuiltinCachePath); other recipe flags are refused")
	steps := fs.Int("steps", d.Steps, "optimizer steps")
	batch := fs.Int("batch", d.Batch, "sequences per step")
	seqLen := fs.Int("seq-len", d.SeqLen, "tokens per sequence, BOS included")
	lr := fs.Float64("lr", d.LR, "peak learning rate (linear warm-up, cosine decay to --min-lr × lr)")
	warmup := fs.Int("warmup", d.Warmup, "warm-up steps")
	minLR := fs.Float64("min-lr", d.MinLR, "final learning rate as a fraction of --lr")
	wd := fs.Float64("weight-decay", d.WeightDecay, "AdamW weight decay of the linear layers' matrices")
	seed := fs.Uint64("seed", d.Seed, "seed of the initialization, the corpus and the sequences")
	sentences := fs.Int("sentences", train.BuiltinPretraining().Sentences, "sentences of synthetic world text to train on")
	textPath := fs.String("text", "", "a text file of your own (one sentence per line, words of the built-in vocabulary) added to the corpus")
	bf16 := fs.Bool("bf16", false, "store the weights as bfloat16 (half the size; --builtin always does)")
	evalItems := fs.Int("eval-items", 200, "test items per synthetic task for the zero-shot table at the end (0: skip it)")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := train.PretrainConfig{Steps: *steps, Batch: *batch, SeqLen: *seqLen, LR: *lr, Warmup: *warmup, MinLR: *minLR,
		WeightDecay: *wd, MaxGradNorm: d.MaxGradNorm, Seed: *seed, EvalEvery: d.EvalEvery, EvalSequences: d.EvalSequences}
	if *builtin {
		var changed []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "builtin", "eval-items", "json":
			default:
				changed = append(changed, "--"+f.Name)
			}
		})
		if len(changed) > 0 {
			return fmt.Errorf("pretrain: --builtin uses the recorded recipe; drop %s", strings.Join(changed, ", "))
		}
	} else {
		if *out == "" {
			return errors.New("pretrain: --out is required (or --builtin)")
		}
		if !strings.EqualFold(filepath.Ext(*out), ".safetensors") {
			return fmt.Errorf("pretrain: --out %s: want a .safetensors file name", *out)
		}
	}
	w := train.WorldPretraining{Recipe: cfg, Sentences: *sentences, BF16: *bf16}
	if *builtin {
		w = train.BuiltinPretraining()
	}
	if *textPath != "" {
		own, err := readSentences(*textPath)
		if err != nil {
			return fmt.Errorf("pretrain: --text: %w", err)
		}
		w.Text, w.TextName = own, filepath.Base(*textPath)
	}
	r := w.Recipe
	start := func(sentences, tokens int) {
		cfg := model.BuiltinConfig(task.Vocabulary())
		fmt.Fprintf(stdout, "pretrain %s (%d parameters) on %d sentences (%d tokens): %d steps × %d sequences × %d tokens, lr %g\n",
			model.BuiltinName, cfg.Vocab*cfg.Hidden+cfg.Layers*blockParams(cfg)+cfg.Hidden,
			sentences, tokens, r.Steps, r.Batch, r.SeqLen, r.LR)
	}
	data, res, err := train.PretrainWorld(context.Background(), w, start, func(p train.PretrainProgress) {
		if math.IsNaN(p.EvalLoss) {
			return
		}
		eta := time.Duration(float64(p.Elapsed) / float64(p.Step) * float64(p.Steps-p.Step))
		fmt.Fprintf(stdout, "step %5d/%d  loss %.4f  held-out %.4f  lr %.2e  %6.0f tok/s  elapsed %s  eta %s\n",
			p.Step, p.Steps, p.Loss, p.EvalLoss, p.LR, p.TokensPerS, p.Elapsed.Round(time.Second), eta.Round(time.Second))
	})
	if err != nil {
		return err
	}
	if *builtin {
		if *out, err = train.WriteBuiltinFile(data); err != nil {
			return fmt.Errorf("pretrain --builtin: %w", err)
		}
	} else if err := os.WriteFile(*out, data, 0o644); err != nil {
		return fmt.Errorf("pretrain: %w", err)
	}
	sum := sha256.Sum256(data)
	report := pretrainReport{Out: *out, SHA256: hex.EncodeToString(sum[:]), Bytes: len(data), Result: res}
	// The written file is what users get: score it, not the float32 weights.
	if *evalItems > 0 {
		saved, err := model.ParseDecoderFile(data)
		if err != nil {
			return fmt.Errorf("pretrain: read back %s: %w", *out, err)
		}
		if report.ZeroShot, err = zeroShot(saved, *evalItems); err != nil {
			return fmt.Errorf("pretrain: %w", err)
		}
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	fmt.Fprintf(stdout, "held-out loss %.4f → %.4f in %.0f s (%d tokens)\nwrote %s (%d bytes, sha256 %s)\n",
		res.FirstEvalLoss, res.EvalLoss, res.Seconds, res.Tokens, *out, len(data), report.SHA256)
	if len(report.ZeroShot) > 0 {
		fmt.Fprintf(stdout, "\nzero-shot accuracy of the written model (no adapter; chance in brackets):\n")
		for _, z := range report.ZeroShot {
			fmt.Fprintf(stdout, "  %-16s %.3f  (%.3f)\n", z.Task, z.Acc, z.Chance)
		}
	}
	return nil
}

type pretrainReport struct {
	Out      string                `json:"out"`
	SHA256   string                `json:"sha256"`
	Bytes    int                   `json:"bytes"`
	Result   *train.PretrainResult `json:"result"`
	ZeroShot []zeroShotRow         `json:"zero_shot,omitempty"`
}

type zeroShotRow struct {
	Task   string  `json:"task"`
	Acc    float64 `json:"acc"`
	Chance float64 `json:"chance"`
}

// zeroShot scores m without an adapter on n test items of every synthetic
// family: what the pretrained base knows before fine-tuning.
func zeroShot(m *model.Model, n int) ([]zeroShotRow, error) {
	var out []zeroShotRow
	for _, f := range task.SyntheticFamilies() {
		splits, err := train.LoadSplits(f.Name, "", 1)
		if err != nil {
			return nil, err
		}
		items := splits.Test.Items[:min(n, len(splits.Test.Items))]
		// A fresh Kron-LoRA set adds nothing (A = 0): the base alone.
		set, err := train.NewAdapterSet(m, adapter.DefaultConfig(adapter.KindKron), 1)
		if err != nil {
			return nil, err
		}
		l, err := train.NewLearner(m, set, 0, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			return nil, err
		}
		acc, err := train.Evaluate(context.Background(), l, items, 32)
		l.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, zeroShotRow{Task: f.Name, Acc: acc.Acc, Chance: 1 / float64(f.Choices)})
	}
	return out, nil
}

func blockParams(c *model.Config) int {
	qw, kw := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	return 2*c.Hidden + c.Hidden*(qw+2*kw) + qw*c.Hidden + 3*c.Hidden*c.Intermediate
}

// readSentences reads one sentence per non-empty line.
func readSentences(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no sentences", path)
	}
	return out, nil
}

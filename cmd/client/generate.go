package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/train"
)

func runGenerate(args []string, stdout io.Writer) error {
	fs := newFlags("generate")
	modelPath := fs.String("model", "", "model: a .gguf file or a Hugging Face folder (required)")
	prompt := fs.String("prompt", "", "text to continue (default: start from BOS)")
	maxTokens := fs.Int("max-tokens", 256, "tokens to generate")
	temperature := fs.Float64("temperature", 0, "sampling temperature; 0 is greedy (argmax)")
	seed := fs.Uint64("seed", 1, "sampling seed")
	adapterPath := fs.String("adapter", "", "adapter file to apply (optional)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelPath == "" {
		return errors.New("generate: --model is required")
	}
	if *maxTokens < 1 || *temperature < 0 {
		return fmt.Errorf("generate: --max-tokens must be ≥ 1 and --temperature ≥ 0")
	}
	m, err := train.LoadModel(*modelPath)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	var set *adapter.Set
	if *adapterPath != "" {
		if set, err = adapter.ReadFile(*adapterPath); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
	}
	rng := rand.New(rand.NewPCG(*seed, 0x67656e))
	_, err = m.Generate(*prompt, *maxTokens, *temperature, rng, set, func(piece string) {
		io.WriteString(stdout, piece)
	})
	fmt.Fprintln(stdout)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	return nil
}

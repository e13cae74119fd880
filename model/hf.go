package model

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kronfed/kronfed/model/tokenizer"
	"github.com/kronfed/kronfed/safetensors"
)

// LoadHF reads a Hugging Face model folder: config.json, the weights
// (model.safetensors, or model.safetensors.index.json with its shards) and
// tokenizer.json. Decoders use the rotate-half RoPE layout of Hugging Face
// checkpoints; encoders get the multiple-choice head from the adapter Set.
func LoadHF(dir string) (*Model, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	weights, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	defer weights.Close()
	tok, err := tokenizer.LoadJSON(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	if tok.VocabSize() > cfg.Vocab {
		return nil, fmt.Errorf("load %s: tokenizer.json has %d tokens but config.json's vocab_size is %d", dir, tok.VocabSize(), cfg.Vocab)
	}
	m := &Model{Name: filepath.Base(filepath.Clean(dir)), Path: dir, Cfg: cfg, Tok: tok}
	src := hfSource(weights)
	switch cfg.Family {
	case Decoder:
		m.Llama, err = NewLlama(cfg, RopeHalf, src)
	case Encoder:
		m.BERT, err = NewBERT(cfg, src)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	return m, nil
}

// hfSource serves tensors by Hugging Face name, checking shapes. It accepts
// the old BERT spelling of LayerNorm parameters (gamma/beta) and checkpoints
// saved from the bare model class, without the "bert."/"distilbert."/"model."
// prefix.
func hfSource(r safetensors.Reader) TensorSource {
	return func(name string, shape ...int) ([]float32, error) {
		for _, cand := range hfAliases(name) {
			info, ok := r.Tensor(cand)
			if !ok {
				continue
			}
			if !slices.Equal(info.Shape, shape) {
				return nil, fmt.Errorf("tensor %s has shape %v, config.json implies %v", cand, info.Shape, shape)
			}
			return r.Float32(cand)
		}
		return nil, fmt.Errorf("tensor %s missing", name)
	}
}

func hfAliases(name string) []string {
	out := []string{name}
	for _, p := range []string{"bert.", "distilbert.", "model."} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			out = append(out, rest)
		}
	}
	for _, n := range slices.Clone(out) {
		if s, ok := strings.CutSuffix(n, "LayerNorm.weight"); ok {
			out = append(out, s+"LayerNorm.gamma")
		}
		if s, ok := strings.CutSuffix(n, "LayerNorm.bias"); ok {
			out = append(out, s+"LayerNorm.beta")
		}
	}
	return out
}

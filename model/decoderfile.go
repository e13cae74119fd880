package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kronfed/kronfed/model/tokenizer"
	"github.com/kronfed/kronfed/safetensors"
)

// A decoder file is one safetensors file holding a whole word-level decoder
// (what `client pretrain` writes, and the built-in model): the weights under
// their Hugging Face names and, in the header's metadata, what a folder would
// keep beside them — the config (as JSON), the tokenizer's word list and the
// model's name. Any model flag takes it (--model tiny.safetensors).
const (
	decoderFormat     = "kronfed-decoder/1"
	metaFormat        = "kronfed.format"
	metaName          = "kronfed.name"
	metaConfig        = "kronfed.config"
	metaVocab         = "kronfed.vocab" // the Word tokenizer's words, one per line
	metaPretrainNotes = "kronfed.pretrain"
)

// DecoderFileOptions say how SaveDecoderFile writes the weights.
type DecoderFileOptions struct {
	// BF16 stores the weights as bfloat16 (half the size; the loaded model
	// computes in float32 either way), else float32.
	BF16 bool
	// Notes is free text kept in the metadata (the pretraining recipe).
	Notes string
}

// SaveDecoderFile writes m, a decoder with a word tokenizer (tokenizer.Word),
// to path as a decoder file. Tensors are written in a fixed order, so the
// same model gives the same bytes.
func SaveDecoderFile(path string, m *Model, opt DecoderFileOptions) error {
	data, err := EncodeDecoderFile(m, opt)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write decoder file: %w", err)
	}
	return nil
}

// EncodeDecoderFile is SaveDecoderFile's bytes.
func EncodeDecoderFile(m *Model, opt DecoderFileOptions) ([]byte, error) {
	if m.Llama == nil {
		return nil, fmt.Errorf("decoder file: %s is not a decoder", m.Name)
	}
	w, ok := m.Tok.(*tokenizer.Word)
	if !ok {
		return nil, fmt.Errorf("decoder file: %s has a %T tokenizer; only word-level tokenizers are kept in a decoder file", m.Name, m.Tok)
	}
	cfg, err := json.Marshal(m.Cfg)
	if err != nil {
		return nil, err
	}
	meta := map[string]string{
		metaFormat: decoderFormat, metaName: m.Name, metaConfig: string(cfg),
		metaVocab: strings.Join(w.Words(), "\n"),
	}
	if opt.Notes != "" {
		meta[metaPretrainNotes] = opt.Notes
	}
	var tensors []safetensors.Tensor
	for _, p := range m.Llama.Params(m.Llama.NewGrads()) {
		shape := []int{p.Rows, p.Cols}
		if p.Rows == 1 {
			shape = []int{p.Cols}
		}
		if opt.BF16 {
			tensors = append(tensors, safetensors.BF16Tensor(p.Name, shape, p.Data))
		} else {
			tensors = append(tensors, safetensors.F32Tensor(p.Name, shape, p.Data))
		}
	}
	var sb strings.Builder
	if err := safetensors.Write(&sb, meta, tensors); err != nil {
		return nil, fmt.Errorf("decoder file: %w", err)
	}
	return []byte(sb.String()), nil
}

// LoadDecoderFile reads a decoder file.
func LoadDecoderFile(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	m, err := ParseDecoderFile(data)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	m.Path = path
	if m.Name == "" {
		m.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return m, nil
}

// ParseDecoderFile reads a decoder file's bytes.
func ParseDecoderFile(data []byte) (*Model, error) {
	f, err := safetensors.Parse(data)
	if err != nil {
		return nil, err
	}
	meta := f.Metadata()
	if got := meta[metaFormat]; got != decoderFormat {
		if got == "" {
			return nil, fmt.Errorf("not a kronfed decoder file (no %s in the metadata); a Hugging Face model is a folder with config.json", metaFormat)
		}
		return nil, fmt.Errorf("decoder file format %q, this version reads %q", got, decoderFormat)
	}
	var cfg Config
	if err := json.Unmarshal([]byte(meta[metaConfig]), &cfg); err != nil {
		return nil, fmt.Errorf("decoder file: config: %w", err)
	}
	if cfg.Family != Decoder {
		return nil, fmt.Errorf("decoder file: config family %q, want %q", cfg.Family, Decoder)
	}
	if cfg.Hidden <= 0 || cfg.Layers <= 0 || cfg.Heads <= 0 || cfg.KVHeads <= 0 || cfg.HeadDim <= 0 ||
		cfg.Vocab <= 0 || cfg.MaxPositions <= 0 || cfg.Intermediate <= 0 || cfg.Heads%cfg.KVHeads != 0 {
		return nil, fmt.Errorf("decoder file: invalid config %+v", cfg)
	}
	words := strings.Split(meta[metaVocab], "\n")
	tok, err := tokenizer.NewWord(words)
	if err != nil {
		return nil, fmt.Errorf("decoder file: %w", err)
	}
	if tok.VocabSize() > cfg.Vocab {
		return nil, fmt.Errorf("decoder file: the tokenizer has %d tokens, the embedding %d rows", tok.VocabSize(), cfg.Vocab)
	}
	llama, err := NewLlama(&cfg, RopeHalf, hfSource(f))
	if err != nil {
		return nil, fmt.Errorf("decoder file: %w", err)
	}
	return &Model{Name: meta[metaName], Cfg: &cfg, Llama: llama, Tok: tok}, nil
}

// DecoderFileNotes returns the free text a decoder file keeps (its
// pretraining recipe), "" when it has none.
func DecoderFileNotes(data []byte) (string, error) {
	f, err := safetensors.Parse(data)
	if err != nil {
		return "", err
	}
	return f.Metadata()[metaPretrainNotes], nil
}

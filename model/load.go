package model

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/model/gguf"
	"github.com/kronfed/kronfed/model/tokenizer"
)

// Model is a loaded frozen base: its config, its weights as a decoder or an
// encoder, and its tokenizer. It is read-only and shared by every client.
type Model struct {
	Name  string // identity recorded in adapter files (general.name, or the folder name)
	Path  string
	Cfg   *Config
	Llama *Llama // decoders
	BERT  *BERT  // encoders
	Tok   tokenizer.Tokenizer

	bf16Mu   sync.Mutex // UseBF16
	bf16Done bool
	bf16Err  error
}

// Targets lists the layers adapters go on, as adapter.Targets.
func (m *Model) Targets() []adapter.Target { return m.Cfg.Targets() }

// Load opens a model: a .gguf file, a decoder file (.safetensors written by
// `client pretrain`, see SaveDecoderFile), or a Hugging Face folder
// (config.json, model.safetensors or a sharded index, tokenizer.json). The built-in model
// ("builtin", BuiltinPath) is built from the synthetic tasks' vocabulary,
// which this package does not know: train.LoadModel opens it, and every
// path Load opens. A folder of that name is reached as "./builtin".
func Load(path string) (*Model, error) {
	if path == BuiltinPath || path == BuiltinRandomPath {
		return nil, fmt.Errorf("load model: the built-in model is built from the synthetic tasks' vocabulary: open it with train.LoadModel (or model.Builtin)")
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	if st.IsDir() {
		return LoadHF(path)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".gguf":
		return LoadGGUF(path)
	case ".safetensors":
		return LoadDecoderFile(path)
	}
	return nil, fmt.Errorf("load model %s: want a .gguf file, a kronfed decoder file (.safetensors, from client pretrain) or a Hugging Face model folder", path)
}

// ggufNames maps Hugging Face tensor names of a Llama-family model to the
// names llama.cpp's converter gives them.
func ggufName(hf string) (string, bool) {
	switch hf {
	case "model.embed_tokens.weight":
		return "token_embd.weight", true
	case "model.norm.weight":
		return "output_norm.weight", true
	case "lm_head.weight":
		return "output.weight", true
	}
	var layer int
	var rest string
	if n, _ := fmt.Sscanf(hf, "model.layers.%d.%s", &layer, &rest); n != 2 {
		return "", false
	}
	suffix := map[string]string{
		"input_layernorm.weight":          "attn_norm.weight",
		"post_attention_layernorm.weight": "ffn_norm.weight",
		"self_attn.q_proj.weight":         "attn_q.weight",
		"self_attn.k_proj.weight":         "attn_k.weight",
		"self_attn.v_proj.weight":         "attn_v.weight",
		"self_attn.o_proj.weight":         "attn_output.weight",
		"mlp.gate_proj.weight":            "ffn_gate.weight",
		"mlp.up_proj.weight":              "ffn_up.weight",
		"mlp.down_proj.weight":            "ffn_down.weight",
	}[rest]
	if suffix == "" {
		return "", false
	}
	return fmt.Sprintf("blk.%d.%s", layer, suffix), true
}

// LoadGGUF reads a Llama-family GGUF file (versions 1–3; F32, F16, BF16 and
// Q8_0 tensors are decoded to float32) with its embedded SentencePiece
// tokenizer. llama.cpp stores Q/K in Meta's interleaved RoPE layout, so the
// model uses RopeInterleaved.
func LoadGGUF(path string) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := fromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	m.Path = path
	return m, nil
}

func fromGGUF(f *gguf.File) (*Model, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return nil, err
	}
	if arch != "llama" && arch != "mistral" {
		return nil, fmt.Errorf("general.architecture %q: only llama-family GGUF models are supported", arch)
	}
	u := func(key string) int {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = f.Uint(arch + "." + key)
		return int(v)
	}
	cfg := &Config{ModelType: arch, Family: Decoder, Activation: "silu"}
	cfg.Hidden = u("embedding_length")
	cfg.Layers = u("block_count")
	cfg.Intermediate = u("feed_forward_length")
	cfg.Heads = u("attention.head_count")
	cfg.MaxPositions = u("context_length")
	if err != nil {
		return nil, err
	}
	cfg.KVHeads = cfg.Heads
	if f.Has(arch + ".attention.head_count_kv") {
		cfg.KVHeads = u("attention.head_count_kv")
	}
	cfg.RMSNormEps, cfg.RopeTheta = 1e-5, 10000
	if f.Has(arch + ".attention.layer_norm_rms_epsilon") {
		if cfg.RMSNormEps, err = f.Float(arch + ".attention.layer_norm_rms_epsilon"); err != nil {
			return nil, err
		}
	}
	if f.Has(arch + ".rope.freq_base") {
		if cfg.RopeTheta, err = f.Float(arch + ".rope.freq_base"); err != nil {
			return nil, err
		}
	}
	if f.Has(arch + ".attention.sliding_window") {
		cfg.SlidingWindow = u("attention.sliding_window")
	}
	if cfg.Heads <= 0 || cfg.KVHeads <= 0 || cfg.Hidden%cfg.Heads != 0 || cfg.Heads%cfg.KVHeads != 0 {
		return nil, fmt.Errorf("inconsistent attention: hidden %d, %d heads, %d key/value heads", cfg.Hidden, cfg.Heads, cfg.KVHeads)
	}
	cfg.HeadDim = cfg.Hidden / cfg.Heads
	if f.Has(arch + ".rope.dimension_count") {
		if rd := u("rope.dimension_count"); rd != cfg.HeadDim {
			return nil, fmt.Errorf("%s.rope.dimension_count %d: partial rotary embeddings (head dim %d) are not supported", arch, rd, cfg.HeadDim)
		}
	}
	tok, err := sentencePieceFromGGUF(f)
	if err != nil {
		return nil, err
	}
	cfg.Vocab = tok.VocabSize()
	if _, ok := f.Tensor("output.weight"); !ok {
		cfg.TieWordEmbeddings = true // llama.cpp reuses token_embd when output is absent
	}
	src := func(name string, shape ...int) ([]float32, error) {
		gn, ok := ggufName(name)
		if !ok {
			return nil, fmt.Errorf("no GGUF name for tensor %s", name)
		}
		info, ok := f.Tensor(gn)
		if !ok {
			return nil, fmt.Errorf("tensor %s (%s) missing", gn, name)
		}
		if got := info.Shape(); !slices.Equal(got, shape) {
			return nil, fmt.Errorf("tensor %s has shape %v, the config implies %v", gn, got, shape)
		}
		return f.Float32(gn)
	}
	llama, err := NewLlama(cfg, RopeInterleaved, src)
	if err != nil {
		return nil, err
	}
	name, _ := f.String("general.name")
	if name == "" {
		name = arch
	}
	return &Model{Name: name, Cfg: cfg, Llama: llama, Tok: tok}, nil
}

func sentencePieceFromGGUF(f *gguf.File) (*tokenizer.SentencePiece, error) {
	if kind, err := f.String("tokenizer.ggml.model"); err != nil {
		return nil, err
	} else if kind != "llama" {
		return nil, fmt.Errorf("tokenizer.ggml.model %q: only SentencePiece (\"llama\") vocabularies are supported", kind)
	}
	tokens, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return nil, err
	}
	scores, err := f.Float32s("tokenizer.ggml.scores")
	if err != nil {
		return nil, err
	}
	types, err := f.Int32s("tokenizer.ggml.token_type")
	if err != nil {
		return nil, err
	}
	id := func(key string) (int, error) {
		if !f.Has(key) {
			return -1, nil
		}
		v, err := f.Uint(key)
		return int(v), err
	}
	opts := tokenizer.SentencePieceOptions{ByteFallback: true}
	for key, dst := range map[string]*int{
		"tokenizer.ggml.bos_token_id": &opts.BOS, "tokenizer.ggml.eos_token_id": &opts.EOS,
		"tokenizer.ggml.unknown_token_id": &opts.UNK, "tokenizer.ggml.padding_token_id": &opts.PAD,
	} {
		if *dst, err = id(key); err != nil {
			return nil, err
		}
	}
	if opts.UNK < 0 {
		opts.UNK = 0 // SentencePiece's <unk> is id 0 by convention, as llama.cpp assumes
	}
	if f.Has("tokenizer.ggml.add_space_prefix") {
		add, err := f.Bool("tokenizer.ggml.add_space_prefix")
		if err != nil {
			return nil, err
		}
		opts.NoSpacePrefix = !add
	}
	return tokenizer.NewSentencePiece(tokens, scores, types, opts)
}

// baseName names a model folder or file for adapter files.
func baseName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
}

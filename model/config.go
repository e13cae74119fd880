package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Family is the broad architecture of a model.
type Family string

const (
	Encoder Family = "encoder" // BERT, DistilBERT: bidirectional, scored by a multiple-choice head
	Decoder Family = "decoder" // Llama, Mistral: causal LM, scored by continuation log-likelihood
)

// Config is the part of a Hugging Face config.json that kronfed uses, with each
// family's key names mapped to one set of fields.
type Config struct {
	ModelType string // "distilbert", "bert", "llama", "mistral"
	// NameOrPath is config.json's _name_or_path: the Hugging Face id the
	// checkpoint was saved from, when it records one (PEFT exports name it).
	NameOrPath string
	Family     Family

	Hidden       int // d_model
	Intermediate int // feed-forward inner size
	Layers       int
	Heads        int
	KVHeads      int // grouped-query attention: heads sharing K/V (= Heads without GQA)
	HeadDim      int
	Vocab        int
	MaxPositions int

	// Decoders.
	RMSNormEps        float64
	RopeTheta         float64
	SlidingWindow     int // 0: full causal attention
	TieWordEmbeddings bool

	// Encoders.
	LayerNormEps float64
	TypeVocab    int    // BERT token types (0 for DistilBERT)
	Activation   string // "gelu", "silu", ...
	// Training-mode dropout of the frozen base (encoders): on hidden states,
	// on attention probabilities, and before the multiple-choice classifier.
	HiddenDropout, AttnDropout, ClassifierDropout float32
}

// rawConfig holds every key name the supported families use.
type rawConfig struct {
	ModelType  string `json:"model_type"`
	NameOrPath string `json:"_name_or_path"`

	// Llama / Mistral / BERT names.
	HiddenSize            *int     `json:"hidden_size"`
	IntermediateSize      *int     `json:"intermediate_size"`
	NumHiddenLayers       *int     `json:"num_hidden_layers"`
	NumAttentionHeads     *int     `json:"num_attention_heads"`
	NumKeyValueHeads      *int     `json:"num_key_value_heads"`
	HeadDim               *int     `json:"head_dim"`
	VocabSize             *int     `json:"vocab_size"`
	MaxPositionEmbeddings *int     `json:"max_position_embeddings"`
	RMSNormEps            *float64 `json:"rms_norm_eps"`
	RopeTheta             *float64 `json:"rope_theta"`
	SlidingWindow         *int     `json:"sliding_window"`
	TieWordEmbeddings     *bool    `json:"tie_word_embeddings"`
	HiddenAct             string   `json:"hidden_act"`
	LayerNormEps          *float64 `json:"layer_norm_eps"`
	TypeVocabSize         *int     `json:"type_vocab_size"`

	HiddenDropoutProb       *float64 `json:"hidden_dropout_prob"`
	AttentionProbsDropout   *float64 `json:"attention_probs_dropout_prob"`
	ClassifierDropoutBERT   *float64 `json:"classifier_dropout"`
	DropoutDistil           *float64 `json:"dropout"`
	AttentionDropoutDistil  *float64 `json:"attention_dropout"`
	SeqClassifDropoutDistil *float64 `json:"seq_classif_dropout"`

	// DistilBERT names.
	Dim        *int   `json:"dim"`
	HiddenDim  *int   `json:"hidden_dim"`
	NLayers    *int   `json:"n_layers"`
	NHeads     *int   `json:"n_heads"`
	Activation string `json:"activation"`
}

// LoadConfig reads a Hugging Face config.json.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("model config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes a config.json and checks that the sizes are consistent.
func ParseConfig(data []byte) (*Config, error) {
	var r rawConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	c := &Config{ModelType: r.ModelType, NameOrPath: r.NameOrPath}
	var err error
	req := func(name string, v *int) int {
		if err != nil {
			return 0
		}
		if v == nil {
			err = fmt.Errorf("model_type %q: missing %q", r.ModelType, name)
			return 0
		}
		if *v <= 0 {
			err = fmt.Errorf("model_type %q: %q = %d must be positive", r.ModelType, name, *v)
		}
		return *v
	}
	opt := func(v *int, def int) int {
		if v == nil {
			return def
		}
		return *v
	}
	optf := func(v *float64, def float64) float64 {
		if v == nil {
			return def
		}
		return *v
	}
	switch r.ModelType {
	case "distilbert":
		c.Family = Encoder
		c.Hidden = req("dim", r.Dim)
		c.Intermediate = req("hidden_dim", r.HiddenDim)
		c.Layers = req("n_layers", r.NLayers)
		c.Heads = req("n_heads", r.NHeads)
		c.Vocab = req("vocab_size", r.VocabSize)
		c.MaxPositions = opt(r.MaxPositionEmbeddings, 512)
		c.LayerNormEps = 1e-12 // DistilBERT hard-codes its LayerNorm eps
		c.HiddenDropout = float32(optf(r.DropoutDistil, 0.1))
		c.AttnDropout = float32(optf(r.AttentionDropoutDistil, 0.1))
		c.ClassifierDropout = float32(optf(r.SeqClassifDropoutDistil, 0.2))
		c.Activation = r.Activation
		if c.Activation == "" {
			c.Activation = "gelu"
		}
	case "bert":
		c.Family = Encoder
		c.Hidden = req("hidden_size", r.HiddenSize)
		c.Intermediate = req("intermediate_size", r.IntermediateSize)
		c.Layers = req("num_hidden_layers", r.NumHiddenLayers)
		c.Heads = req("num_attention_heads", r.NumAttentionHeads)
		c.Vocab = req("vocab_size", r.VocabSize)
		c.MaxPositions = opt(r.MaxPositionEmbeddings, 512)
		c.TypeVocab = opt(r.TypeVocabSize, 2)
		c.LayerNormEps = optf(r.LayerNormEps, 1e-12)
		c.HiddenDropout = float32(optf(r.HiddenDropoutProb, 0.1))
		c.AttnDropout = float32(optf(r.AttentionProbsDropout, 0.1))
		// BertForMultipleChoice: classifier_dropout, else hidden_dropout_prob.
		c.ClassifierDropout = float32(optf(r.ClassifierDropoutBERT, float64(c.HiddenDropout)))
		c.Activation = r.HiddenAct
		if c.Activation == "" {
			c.Activation = "gelu"
		}
	case "llama", "mistral":
		c.Family = Decoder
		c.Hidden = req("hidden_size", r.HiddenSize)
		c.Intermediate = req("intermediate_size", r.IntermediateSize)
		c.Layers = req("num_hidden_layers", r.NumHiddenLayers)
		c.Heads = req("num_attention_heads", r.NumAttentionHeads)
		c.Vocab = req("vocab_size", r.VocabSize)
		c.KVHeads = opt(r.NumKeyValueHeads, c.Heads)
		c.MaxPositions = opt(r.MaxPositionEmbeddings, 2048)
		c.RMSNormEps = optf(r.RMSNormEps, 1e-6)
		c.RopeTheta = optf(r.RopeTheta, 10000)
		c.SlidingWindow = opt(r.SlidingWindow, 0)
		c.TieWordEmbeddings = r.TieWordEmbeddings != nil && *r.TieWordEmbeddings
		c.Activation = r.HiddenAct
		if c.Activation == "" {
			c.Activation = "silu"
		}
	case "":
		return nil, fmt.Errorf("missing \"model_type\" (want distilbert, bert, llama or mistral)")
	default:
		return nil, fmt.Errorf("unsupported model_type %q (want distilbert, bert, llama or mistral)", r.ModelType)
	}
	if err != nil {
		return nil, err
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	c.HeadDim = opt(r.HeadDim, 0)
	if c.HeadDim == 0 {
		if c.Hidden%c.Heads != 0 {
			return nil, fmt.Errorf("model_type %q: hidden size %d is not divisible by %d heads", c.ModelType, c.Hidden, c.Heads)
		}
		c.HeadDim = c.Hidden / c.Heads
	}
	if c.KVHeads <= 0 || c.Heads%c.KVHeads != 0 {
		return nil, fmt.Errorf("model_type %q: %d attention heads are not a multiple of %d key/value heads", c.ModelType, c.Heads, c.KVHeads)
	}
	for _, p := range []float32{c.HiddenDropout, c.AttnDropout, c.ClassifierDropout} {
		if p < 0 || p >= 1 {
			return nil, fmt.Errorf("model_type %q: dropout probability %v must be in [0, 1)", c.ModelType, p)
		}
	}
	if c.SlidingWindow < 0 {
		return nil, fmt.Errorf("model_type %q: sliding_window %d is negative", c.ModelType, c.SlidingWindow)
	}
	return c, nil
}

// HubID resolves what an export records as base_model_name_or_path: a
// Hugging Face id is returned as given; the path of a model folder or of
// its config.json gives that config's _name_or_path (an error when it
// records none, so no export names a local path by accident).
func HubID(idOrPath string) (string, error) {
	st, err := os.Stat(idOrPath)
	if err != nil {
		return idOrPath, nil // not a local path: an id
	}
	path := idOrPath
	if st.IsDir() {
		path = filepath.Join(idOrPath, "config.json")
	}
	c, err := LoadConfig(path)
	if err != nil {
		return "", err
	}
	if c.NameOrPath == "" {
		return "", fmt.Errorf("%s records no _name_or_path: give the base model's Hugging Face id instead", path)
	}
	return c.NameOrPath, nil
}

package gguf

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/kronfed/kronfed/internal/sharedtest"
)

// TestStories260K reads karpathy's TinyStories 260K Llama, converted by an
// early llama.cpp: a version 1 file, all F32. The expected values were read
// from the file with an independent Python struct-based dump.
func TestStories260K(t *testing.T) {
	f, err := Open(sharedtest.Path(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Version != 1 || f.Alignment != 32 || f.DataOffset != 11456 {
		t.Fatalf("version %d, alignment %d, data offset %d", f.Version, f.Alignment, f.DataOffset)
	}

	wantKeys := []string{
		"general.architecture", "general.name", "llama.tensor_data_layout",
		"llama.context_length", "llama.embedding_length", "llama.block_count",
		"llama.feed_forward_length", "llama.rope.dimension_count",
		"llama.attention.head_count", "llama.attention.head_count_kv",
		"llama.attention.layer_norm_rms_epsilon", "tokenizer.ggml.model",
		"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
		"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
		"tokenizer.ggml.padding_token_id",
	}
	if got := f.Keys(); !slices.Equal(got, wantKeys) {
		t.Errorf("keys\n got %q\nwant %q", got, wantKeys)
	}
	for key, want := range map[string]string{
		"general.architecture":     "llama",
		"general.name":             "tinyllamas-stories-260k",
		"llama.tensor_data_layout": "Meta AI original pth",
		"tokenizer.ggml.model":     "llama",
	} {
		if got, err := f.String(key); got != want || err != nil {
			t.Errorf("%s = %q, %v; want %q", key, got, err, want)
		}
	}
	for key, want := range map[string]uint64{
		"llama.context_length":            512,
		"llama.embedding_length":          64,
		"llama.block_count":               5,
		"llama.feed_forward_length":       172,
		"llama.rope.dimension_count":      8,
		"llama.attention.head_count":      8,
		"llama.attention.head_count_kv":   4,
		"tokenizer.ggml.bos_token_id":     1,
		"tokenizer.ggml.eos_token_id":     2,
		"tokenizer.ggml.padding_token_id": 0,
	} {
		if got, err := f.Uint(key); got != want || err != nil {
			t.Errorf("%s = %d, %v; want %d", key, got, err, want)
		}
	}
	if eps, err := f.Float("llama.attention.layer_norm_rms_epsilon"); eps != float64(float32(1e-5)) || err != nil {
		t.Errorf("rms epsilon = %v, %v", eps, err)
	}

	tokens, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		t.Fatal(err)
	}
	scores, err := f.Float32s("tokenizer.ggml.scores")
	if err != nil {
		t.Fatal(err)
	}
	types, err := f.Int32s("tokenizer.ggml.token_type")
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 512 || len(scores) != 512 || len(types) != 512 {
		t.Fatalf("%d tokens, %d scores, %d types", len(tokens), len(scores), len(types))
	}
	// SentencePiece: <unk> (type 2, unknown), <s> and </s> (3, control),
	// 256 byte tokens <0x00>…<0xFF> (6, byte), then merges by score.
	for i, want := range map[int]struct {
		text  string
		score float32
		typ   int32
	}{
		0: {"<unk>", 0, 2}, 1: {"<s>", 0, 3}, 2: {"</s>", 0, 3},
		3: {"<0x00>", 0, 6}, 258: {"<0xFF>", 0, 6},
		259: {"▁t", 0, 1}, 260: {"he", -1, 1}, 300: {"▁ha", -41, 1}, 511: {"\u200a", -252, 1},
	} {
		if tokens[i] != want.text || scores[i] != want.score || types[i] != want.typ {
			t.Errorf("token %d = %q %v %d, want %q %v %d", i, tokens[i], scores[i], types[i], want.text, want.score, want.typ)
		}
	}

	infos := f.Tensors()
	if len(infos) != 2+9*5+1 {
		t.Fatalf("%d tensors", len(infos))
	}
	var names []string
	names = append(names, "token_embd.weight")
	for l := range 5 {
		for _, n := range []string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up", "attn_norm", "ffn_norm"} {
			names = append(names, fmt.Sprintf("blk.%d.%s.weight", l, n))
		}
	}
	names = append(names, "output_norm.weight", "output.weight")
	dims := map[string][]int{
		"token_embd": {64, 512}, "attn_q": {64, 64}, "attn_k": {64, 32}, "attn_v": {64, 32},
		"attn_output": {64, 64}, "ffn_gate": {64, 172}, "ffn_down": {172, 64}, "ffn_up": {64, 172},
		"attn_norm": {64}, "ffn_norm": {64}, "output_norm": {64}, "output": {64, 512},
	}
	var end int64
	for i, ti := range infos {
		if ti.Name != names[i] || ti.Type != F32 {
			t.Errorf("tensor %d is %s %s, want %s F32", i, ti.Name, ti.Type, names[i])
		}
		if want := dims[shortName(ti.Name)]; !slices.Equal(ti.Dims, want) {
			t.Errorf("%s dims %v, want %v", ti.Name, ti.Dims, want)
		}
		// The converter packed the tensors back to back in file order.
		if ti.Offset != end {
			t.Errorf("%s at offset %d, want %d", ti.Name, ti.Offset, end)
		}
		end = ti.Offset + ti.Size
	}
	if f.DataOffset+end != 1182656 {
		t.Errorf("data ends at %d, want the file size", f.DataOffset+end)
	}

	emb, err := f.Float32("token_embd.weight")
	if err != nil {
		t.Fatal(err)
	}
	if len(emb) != 512*64 {
		t.Fatalf("token_embd.weight has %d values", len(emb))
	}
	// Row 0 is token 0's embedding; row 1 starts at index 64.
	for i, want := range map[int]float32{0: -0.29474878, 1: 0.5618956, 3: 0.3405736, 64: -0.12708569, 65: -0.5240807, 512*64 - 1: -0.4240326} {
		if emb[i] != want {
			t.Errorf("token_embd.weight[%d] = %v, want %v", i, emb[i], want)
		}
	}
	var sum float64
	for _, x := range emb {
		sum += float64(x)
	}
	if math.Abs(sum-(-752.3677446640068)) > 1e-9 {
		t.Errorf("token_embd.weight sums to %v", sum)
	}
	// The classifier is tied: output.weight repeats the embedding.
	if out, _ := f.Float32("output.weight"); !slices.Equal(out, emb) {
		t.Error("output.weight differs from token_embd.weight")
	}
	if norm, _ := f.Float32("output_norm.weight"); norm[0] != 2.458309 || norm[2] != 1.7504382 {
		t.Errorf("output_norm.weight starts %v", norm[:3])
	}
}

// shortName maps "blk.3.attn_q.weight" to "attn_q" and "output.weight" to
// "output".
func shortName(name string) string {
	var l int
	if n, _ := fmt.Sscanf(name, "blk.%d.", &l); n == 1 {
		name = name[len(fmt.Sprintf("blk.%d.", l)):]
	}
	return name[:len(name)-len(".weight")]
}

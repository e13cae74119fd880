package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/internal/sharedtest"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/safetensors"
)

// writeTinyDistilBERT writes a random-weight DistilBERT folder in the
// published layout (config.json, model.safetensors with Hugging Face names,
// the real bert-base-uncased tokenizer.json).
func writeTinyDistilBERT(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	hfCfg := map[string]any{"model_type": "distilbert", "dim": 32, "hidden_dim": 64, "n_layers": 2, "n_heads": 4,
		"vocab_size": 30522, "max_position_embeddings": 64, "activation": "gelu"}
	raw, _ := json.Marshal(hfCfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := model.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	var tensors []safetensors.Tensor
	_, err = model.NewBERT(cfg, func(name string, shape ...int) ([]float32, error) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(rng.NormFloat64() * 0.1)
			if len(shape) == 1 && strings.Contains(name, "LayerNorm") || strings.HasSuffix(name, "layer_norm.weight") {
				w[i] += 1
			}
		}
		tensors = append(tensors, safetensors.F32Tensor(name, shape, w))
		return w, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), map[string]string{"format": "pt"}, tensors); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(sharedtest.Path(t, "models", "bert-base-uncased-tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	return dir
}

// TestTrainEvalEncoderCommand runs `client train` and `client eval` end to end
// on an encoder loaded from a Hugging Face folder and a synthetic task.
func TestTrainEvalEncoderCommand(t *testing.T) {
	modelDir := writeTinyDistilBERT(t)
	out := filepath.Join(t.TempDir(), "enc.safetensors")
	runOK(t, "train", "--model", modelDir, "--task", "word-category", "--adapter", "kron", "--dA2", "2",
		"--epochs", "1", "--train-limit", "24", "--eval-limit", "8", "--max-len", "32", "--out", out)
	var rep trainReport
	data, err := os.ReadFile(strings.TrimSuffix(out, ".safetensors") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Result == nil || len(rep.Result.Epochs) != 1 || rep.Result.Test == nil || rep.TrainSize != 24 || rep.Result.TrainableParams == 0 {
		t.Fatalf("result %s", data)
	}
	text := runOK(t, "eval", "--model", modelDir, "--task", "word-category", "--adapter", out, "--limit", "8", "--json")
	if !strings.Contains(text, `"n": 8`) {
		t.Fatalf("eval printed %s", text)
	}
}

// TestTrainOnOwnJSONL: a file of your own multiple-choice questions trains
// and evaluates like any task (the real stories260K decoder), and a bad
// line is refused with its file, line and field before training.
func TestTrainOnOwnJSONL(t *testing.T) {
	modelPath := sharedtest.Path(t, "models", "stories260K.gguf")
	dir := t.TempDir()
	var lines []string
	animals := []string{"cat", "dog", "bird", "fish", "frog", "duck"}
	for i := range 40 {
		a := animals[i%len(animals)]
		lines = append(lines, fmt.Sprintf(`{"question": "Tom saw a %s. What did Tom see?", "choices": ["a %s", "a %s"], "answer": %d}`,
			a, map[bool]string{true: a, false: "tree"}[i%2 == 0], map[bool]string{true: "tree", false: a}[i%2 == 0], i%2))
	}
	data := filepath.Join(dir, "animals.jsonl")
	if err := os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "a.safetensors")
	runOK(t, "train", "--model", modelPath, "--task", data, "--epochs", "1", "--out", out)
	var rep trainReport
	js, err := os.ReadFile(filepath.Join(dir, "a.json"))
	if err != nil || json.Unmarshal(js, &rep) != nil {
		t.Fatalf("result: %v %s", err, js)
	}
	if rep.TrainSize != 32 || rep.ValSize != 4 || rep.TestSize != 4 || !strings.Contains(rep.DataNote, "80/10/10") || rep.Result.Test == nil {
		t.Fatalf("result %s", js)
	}
	if text := runOK(t, "eval", "--model", modelPath, "--task", data, "--adapter", out, "--split", "test", "--json"); !strings.Contains(text, `"n": 4`) {
		t.Fatalf("eval printed %s", text)
	}
	// The adapter belongs to stories260K: scoring it on another base is refused.
	var sb strings.Builder
	if err := run([]string{"eval", "--model", "builtin", "--task", "word-category", "--adapter", out}, &sb); err == nil ||
		!strings.Contains(err.Error(), "was trained on") || !strings.Contains(err.Error(), "--any-base") {
		t.Errorf("eval on another base: %v", err)
	}
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(lines[0]+"\n"+`{"question": "q?", "choices": ["a", "b"], "answer": 5}`+"\n"), 0o644)
	var buf strings.Builder
	err = run([]string{"train", "--model", modelPath, "--task", bad, "--out", filepath.Join(dir, "b.safetensors")}, &buf)
	if err == nil || !strings.Contains(err.Error(), bad+":2:") || !strings.Contains(err.Error(), `field "answer" is 5`) {
		t.Fatalf("bad file: %v", err)
	}
}

// TestTrainOnCompletions: prompt/completion records fine-tune the real
// stories260K decoder on the completions' tokens; the run reports
// validation perplexity and exact match, and picks its best epoch by
// perplexity.
func TestTrainOnCompletions(t *testing.T) {
	modelPath := sharedtest.Path(t, "models", "stories260K.gguf")
	dir := t.TempDir()
	names := []string{"Lily", "Tom", "Sue", "Ben", "Max", "Amy", "Sam", "Mia"}
	var lines []string
	for i := range 40 {
		n := names[i%len(names)]
		lines = append(lines, fmt.Sprintf(`{"prompt": "%s went to the park. %s saw a", "completion": "big red ball."}`, n, n))
	}
	data := filepath.Join(dir, "park.jsonl")
	if err := os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "c.safetensors")
	runOK(t, "train", "--model", modelPath, "--task", data, "--epochs", "2", "--lr", "0.01", "--out", out)
	var rep trainReport
	js, err := os.ReadFile(filepath.Join(dir, "c.json"))
	if err != nil || json.Unmarshal(js, &rep) != nil {
		t.Fatalf("result: %v %s", err, js)
	}
	e := rep.Result.Epochs
	if len(e) != 2 || !(e[0].Val.Perplexity > 1) || !(e[1].Val.Perplexity < e[0].Val.Perplexity) || rep.Result.BestEpoch != 2 {
		t.Fatalf("epochs %+v, best %d: want perplexity falling and the second epoch kept", e, rep.Result.BestEpoch)
	}
	if text := runOK(t, "eval", "--model", modelPath, "--task", data, "--adapter", out, "--json"); !strings.Contains(text, `"perplexity"`) {
		t.Fatalf("eval printed %s", text)
	}
}

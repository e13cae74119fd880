package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/internal/sharedtest"
)

func sharedModels(t *testing.T) string { return sharedtest.Path(t, "models", "configs") }

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(args, &out); err != nil {
		t.Fatalf("client %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// TestParamsJSON runs the command as a user would and checks the paper's totals.
func TestParamsJSON(t *testing.T) {
	dir := sharedModels(t)
	for _, c := range []struct {
		config, kind, rank string
		want               int
	}{
		{"distilbert-base-uncased.json", "kron", "8", 840481},
		{"distilbert-base-uncased.json", "lora", "16", 1918465},
		{"mistral-7b-v0.1.json", "kron", "8", 5708448},
		{"mistral-7b-v0.1.json", "lora", "8", 21260288},
	} {
		out := runOK(t, "params", "--config", filepath.Join(dir, c.config), "--adapter", c.kind, "--rank", c.rank, "--json")
		var rep struct {
			TrainableParams int `json:"trainable_params"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.TrainableParams != c.want {
			t.Errorf("%s %s-%s: trainable_params %d, want %d", c.config, c.kind, c.rank, rep.TrainableParams, c.want)
		}
	}
	text := runOK(t, "params", "--config", filepath.Join(dir, "distilbert-base-uncased.json"), "--adapter", "kron")
	if !strings.Contains(text, "trainable params: 840481 (0.84 M)") {
		t.Errorf("text output lacks the total:\n%s", text)
	}
}

// TestAdapterCommands initializes a random adapter, reports its quantization
// error, and exports it every way, through the command-line entry point.
func TestAdapterCommands(t *testing.T) {
	dir := sharedModels(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "a.safetensors")
	runOK(t, "init", "--config", filepath.Join(dir, "distilbert-base-uncased.json"), "--adapter", "kron", "--init", "random", "--out", file)

	var rep quantReport
	if err := json.Unmarshal([]byte(runOK(t, "quant-report", "--adapter", file, "--bits", "8,4", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Modules) != 36 || len(rep.Total) != 2 {
		t.Fatalf("report has %d modules, %d totals", len(rep.Modules), len(rep.Total))
	}
	// Against a LoRA-8 of the same model, quantized alike: the ratio is the
	// two whole-adapter errors'.
	lora := filepath.Join(tmp, "lora8.safetensors")
	runOK(t, "init", "--config", filepath.Join(dir, "distilbert-base-uncased.json"), "--adapter", "lora", "--rank", "8", "--init", "random", "--out", lora)
	var cmp quantReport
	if err := json.Unmarshal([]byte(runOK(t, "quant-report", "--adapter", file, "--against", lora, "--bits", "8,4", "--json")), &cmp); err != nil {
		t.Fatal(err)
	}
	for i, c := range cmp.Compared {
		if c.AgainstKind != "lora" || !(c.AgainstRelFrobError > 0) || math.Abs(c.ErrorRatio-cmp.Total[i].RelFrobError/c.AgainstRelFrobError) > 1e-12 {
			t.Errorf("comparison at %d bits: %+v", c.Bits, c)
		}
	}
	// The paper's bound, in the error's units, bounds it: per module and in all.
	for _, m := range append([]quantRow{{Module: "total", Bits: rep.Total}}, rep.Modules...) {
		for _, b := range m.Bits {
			if !(b.RelFrobBound >= b.RelFrobError && b.RelFrobError > 0) {
				t.Errorf("%s at %d bits: error %g above its bound %g", m.Module, b.Bits, b.RelFrobError, b.RelFrobBound)
			}
		}
	}
	e8, e4 := rep.Total[0].RelFrobError, rep.Total[1].RelFrobError
	if !(e8 > 0 && e8 < 0.02 && e4 > e8 && e4 < 0.3) {
		t.Errorf("relative errors 8-bit %.4g, 4-bit %.4g out of the expected ranges", e8, e4)
	}

	var out bytes.Buffer
	err := run([]string{"export", "--adapter", file, "--out", filepath.Join(tmp, "lokr"), "--format", "lokr"}, &out)
	if err == nil || !strings.Contains(err.Error(), "--format lora") {
		t.Errorf("LoKr export of dA2 = 4 should fail pointing to --format lora, got %v", err)
	}
	// By default the export picks what PEFT can load: here (dA2 = 4, which no
	// single decompose_factor gives with dA1 = 2) the exact LoRA rewrite.
	if got := runOK(t, "export", "--adapter", file, "--out", filepath.Join(tmp, "auto")); !strings.Contains(got, "as lora") {
		t.Errorf("default export: %q", got)
	}
	if _, err := os.Stat(filepath.Join(tmp, "auto", "adapter_config.json")); err != nil {
		t.Error(err)
	}
	runOK(t, "export", "--adapter", file, "--out", filepath.Join(tmp, "lora"), "--format", "lora")
	runOK(t, "export", "--adapter", file, "--out", filepath.Join(tmp, "delta.safetensors"), "--format", "merged")
	for _, p := range []string{"lora/adapter_config.json", "lora/adapter_model.safetensors", "delta.safetensors"} {
		if _, err := os.Stat(filepath.Join(tmp, p)); err != nil {
			t.Error(err)
		}
	}
}

func TestBadInput(t *testing.T) {
	dir := sharedModels(t)
	cfg := filepath.Join(dir, "distilbert-base-uncased.json")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"nope"}, `unknown command "nope"`},
		{[]string{"params"}, "--config is required"},
		{[]string{"params", "--config", cfg, "--adapter", "loha"}, `unknown adapter kind "loha"`},
		{[]string{"params", "--config", cfg, "--dA2", "5"}, "dA2 = 5 does not divide d_out = 768"},
		{[]string{"params", "--config", cfg, "--adapter", "lora", "--dA2", "4"}, "--dA2 applies to kron adapters only"},
		{[]string{"params", "--config", "/nonexistent/config.json"}, "no such file"},
		{[]string{"params", "--config", cfg, "extra"}, `unexpected argument "extra"`},
		{[]string{"quant-report", "--adapter", cfg}, "load adapter"},
		{[]string{"quant-report", "--adapter", cfg, "--bits", "5"}, "unsupported bit width 5"},
		{[]string{"export", "--adapter", cfg, "--out", "x", "--format", "gguf"}, "load adapter"},
		{[]string{"bench", "gpus"}, "bench: want"},
	} {
		var out bytes.Buffer
		err := run(c.args, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("client %s: got %v, want error containing %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestGenerateCommand runs `client generate` on the real stories260K model:
// greedy decoding from BOS must start as llama2.c's reference story does.
func TestGenerateCommand(t *testing.T) {
	path := sharedtest.Path(t, "models", "stories260K.gguf")
	out := runOK(t, "generate", "--model", path, "--max-tokens", "30", "--temperature", "0")
	if want := "Once upon a time, there was a little girl named Lily. She loved to play outside in the park"; !strings.HasPrefix(out, want) {
		t.Fatalf("generate printed %q, want it to start with %q", out, want)
	}
	var buf bytes.Buffer
	if err := run([]string{"generate", "--model", path, "--max-tokens", "0"}, &buf); err == nil {
		t.Fatal("--max-tokens 0 accepted")
	}
}

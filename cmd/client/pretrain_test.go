package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/train"
)

// TestPretrainCommand pretrains a few steps into a decoder file, which every
// --model flag then takes (here eval and train's loader), and refuses bad
// input before any work.
func TestPretrainCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "tiny.safetensors")
	own := filepath.Join(dir, "own.txt")
	if err := os.WriteFile(own, []byte("apple is a kind of fruit\n\n7 plus 1 is 8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := run([]string{"pretrain", "--out", out, "--steps", "6", "--warmup", "1", "--sentences", "500", "--text", own,
		"--eval-items", "8", "--bf16"}, &sb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"on 502 sentences", "step     6/6", "held-out loss", "sha256", "zero-shot accuracy", "word-category"} {
		if !strings.Contains(sb.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, sb.String())
		}
	}
	m, err := train.LoadModel(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != model.BuiltinName || *m.Cfg != *model.BuiltinConfig(wordsOf(t, m)) {
		t.Fatalf("loaded %q %+v", m.Name, *m.Cfg)
	}
	sb.Reset()
	if err := run([]string{"eval", "--model", out, "--task", "word-category", "--limit", "8"}, &sb); err != nil {
		t.Fatalf("eval on the pretrained file: %v\n%s", err, sb.String())
	}

	foreign := filepath.Join(dir, "foreign.txt")
	if err := os.WriteFile(foreign, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 3000)), 0o644); err != nil {
		t.Fatal(err)
	}
	for want, args := range map[string][]string{
		"--out is required":                {},
		"want a .safetensors file name":    {"--out", filepath.Join(dir, "x.bin")},
		"--builtin uses the recorded":      {"--builtin", "--steps", "5"},
		"warm-up of 60 steps for 10 steps": {"--out", out, "--steps", "10"},
		"too small for sequences of 64":    {"--out", out, "--sentences", "3", "--warmup", "1", "--steps", "2"},
		"unknown words":                    {"--out", out, "--sentences", "10", "--text", foreign, "--warmup", "1", "--steps", "2"},
		"--text: open":                     {"--out", out, "--text", filepath.Join(dir, "missing.txt")},
	} {
		err := run(append([]string{"pretrain"}, args...), &sb)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("pretrain %v: %v, want it to mention %q", args, err, want)
		}
	}
}

func wordsOf(t *testing.T, m *model.Model) []string {
	t.Helper()
	w, ok := m.Tok.(interface{ Words() []string })
	if !ok {
		t.Fatalf("tokenizer %T", m.Tok)
	}
	return w.Words()
}

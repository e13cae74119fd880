package model

import (
	"testing"

	"github.com/kronfed/kronfed/internal/sharedtest"
)

// llama2cStories260K is what llama2.c's reference runner prints for
// stories260K at temperature 0 with 200 steps from an empty prompt
// (`./run stories260K.bin -z tok512.bin -t 0.0 -n 200`), as recorded in
// llama2.c's test_all.py (expected_stdout).
const llama2cStories260K = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n" +
	"Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. She said, \"I want to play with your ball, but I can't find it.\"\n" +
	"Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\n" +
	"Lily didn't want to help her mom, so she"

func TestGenerateMatchesLlama2c(t *testing.T) {
	m, err := LoadGGUF(sharedtest.Path(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Cfg.Hidden != 64 || m.Cfg.Layers != 5 || m.Cfg.KVHeads != 4 || m.Cfg.Vocab != 512 || !m.Cfg.TieWordEmbeddings && m.Llama.LMHead == nil {
		t.Fatalf("config %+v", m.Cfg)
	}
	got, err := m.Generate("", 200, 0, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got != llama2cStories260K {
		t.Fatalf("greedy story differs from llama2.c's\n got: %q\nwant: %q", got, llama2cStories260K)
	}
}

// TestGeneratorMatchesFullForward: the KV-cached decoder must give the same
// logits as the batch forward pass at every position.
func TestGeneratorMatchesFullForward(t *testing.T) {
	m, err := LoadGGUF(sharedtest.Path(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	tokens := m.Tok.Encode("Once upon a time, a cat sat.")
	tokens = append([]int{1}, tokens...)
	run, err := m.Llama.NewRun(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Forward(tokens, 1, len(tokens)); err != nil {
		t.Fatal(err)
	}
	g, err := m.Llama.NewGenerator(nil)
	if err != nil {
		t.Fatal(err)
	}
	V := m.Cfg.Vocab
	for p, tok := range tokens {
		logits, err := g.Next(tok)
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < V; j++ {
			if d := logits[j] - run.Logits[p*V+j]; d > 1e-3 || d < -1e-3 {
				t.Fatalf("position %d logit %d: cached %v, full %v", p, j, logits[j], run.Logits[p*V+j])
			}
		}
	}
}

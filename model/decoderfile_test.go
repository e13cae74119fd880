package model_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/safetensors"
	"github.com/kronfed/kronfed/task"
)

func TestDecoderFileRoundTrip(t *testing.T) {
	m, err := model.BuiltinInit(3, task.Vocabulary())
	if err != nil {
		t.Fatal(err)
	}
	for _, bf16 := range []bool{false, true} {
		data, err := model.EncodeDecoderFile(m, model.DecoderFileOptions{BF16: bf16, Notes: "recipe"})
		if err != nil {
			t.Fatal(err)
		}
		again, _ := model.EncodeDecoderFile(m, model.DecoderFileOptions{BF16: bf16, Notes: "recipe"})
		if !bytes.Equal(data, again) {
			t.Fatal("the same model encodes to different bytes")
		}
		path := filepath.Join(t.TempDir(), "tiny.safetensors")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := model.Load(path) // what every --model flag does
		if err != nil {
			t.Fatal(err)
		}
		if *got.Cfg != *m.Cfg || got.Name != model.BuiltinName || got.Path != path {
			t.Fatalf("config %+v name %q path %q", *got.Cfg, got.Name, got.Path)
		}
		if notes, err := model.DecoderFileNotes(data); err != nil || notes != "recipe" {
			t.Fatalf("notes %q, %v", notes, err)
		}
		if s := "question what is 7 plus 5"; !slices.Equal(got.Tok.Encode(s), m.Tok.Encode(s)) {
			t.Fatal("tokenizer differs after the round trip")
		}
		ta, tb := builtinTensors(m), builtinTensors(got)
		for i := range ta {
			for j := range ta[i] {
				want := ta[i][j]
				if bf16 {
					want = safetensors.BF16ToFloat32(safetensors.Float32ToBF16(want))
				}
				if tb[i][j] != want {
					t.Fatalf("bf16=%v: tensor %d element %d is %v, want %v", bf16, i, j, tb[i][j], want)
				}
			}
		}
		if &got.Llama.LMHead.W[0] != &got.Llama.Embed[0] {
			t.Error("lm_head is not tied to the embedding after loading")
		}
	}
}

func TestDecoderFileBadInput(t *testing.T) {
	m, err := model.BuiltinInit(3, task.Vocabulary())
	if err != nil {
		t.Fatal(err)
	}
	good, err := model.EncodeDecoderFile(m, model.DecoderFileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	rewrite := func(edit func(meta map[string]string, tensors []safetensors.Tensor) []safetensors.Tensor) []byte {
		meta := f.Metadata()
		var tensors []safetensors.Tensor
		for _, info := range f.Tensors() {
			b, _ := f.Bytes(info.Name)
			tensors = append(tensors, safetensors.Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: b})
		}
		tensors = edit(meta, tensors)
		var buf bytes.Buffer
		if err := safetensors.Write(&buf, meta, tensors); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", good[:len(good)/2], ""},
		{"no format", rewrite(func(meta map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			delete(meta, "kronfed.format")
			return ts
		}), "not a kronfed decoder file"},
		{"future format", rewrite(func(meta map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			meta["kronfed.format"] = "kronfed-decoder/9"
			return ts
		}), "this version reads"},
		{"bad config", rewrite(func(meta map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			meta["kronfed.config"] = `{"Family":"decoder","Hidden":-1}`
			return ts
		}), "invalid config"},
		{"duplicate word", rewrite(func(meta map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			meta["kronfed.vocab"] += "\napple"
			return ts
		}), "appears twice"},
		{"missing tensor", rewrite(func(meta map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			return slices.DeleteFunc(ts, func(x safetensors.Tensor) bool { return x.Name == "model.layers.2.mlp.up_proj.weight" })
		}), "up_proj"},
		{"NaN weight", rewrite(func(meta map[string]string, ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == "model.norm.weight" {
					copy(ts[i].Data[8:], []byte{0, 0, 0xc0, 0x7f})
				}
			}
			return ts
		}), "model.norm.weight: element 2 is NaN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := model.ParseDecoderFile(c.data)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	// A model with another tokenizer cannot be written as a decoder file.
	if _, err := model.EncodeDecoderFile(&model.Model{Name: "x", Llama: m.Llama}, model.DecoderFileOptions{}); err == nil ||
		!strings.Contains(err.Error(), "word-level") {
		t.Fatalf("encode without a word tokenizer: %v", err)
	}
}

// TestBuiltinPretrained pins the embedded pretrained model: its digest (a
// change of the file must be deliberate: `client pretrain --builtin`, then
// update the digest and BENCHMARKS.md), that it loads as the built-in model,
// and that re-encoding it gives its bytes back.
func TestBuiltinPretrained(t *testing.T) {
	const wantSHA256 = "765d2276c1581e92ee75671dfdfd9da8564a9766e117d4e1e8ffa49e435798fa"
	sum := sha256.Sum256(model.BuiltinFile())
	if got := hex.EncodeToString(sum[:]); got != wantSHA256 {
		t.Fatalf("%s has SHA-256 %s, pinned %s", model.BuiltinFilePath, got, wantSHA256)
	}
	m, err := model.Builtin(task.Vocabulary())
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != model.BuiltinName || m.Path != model.BuiltinPath || *m.Cfg != *model.BuiltinConfig(task.Vocabulary()) {
		t.Fatalf("name %q path %q config %+v", m.Name, m.Path, *m.Cfg)
	}
	notes, err := model.DecoderFileNotes(model.BuiltinFile())
	if err != nil || !strings.Contains(notes, "task.WorldText") {
		t.Fatalf("notes %q, %v", notes, err)
	}
	again, err := model.EncodeDecoderFile(m, model.DecoderFileOptions{BF16: true, Notes: notes})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, model.BuiltinFile()) {
		t.Fatal("re-encoding the built-in model does not give the embedded bytes")
	}
	// Pretrained, not random: the norm weights moved away from their
	// initial 1, and it differs from the random built-in model.
	moved := 0
	for _, x := range m.Llama.Norm {
		if x != 1 {
			moved++
		}
	}
	if moved < len(m.Llama.Norm)/2 {
		t.Errorf("only %d of %d final norm weights moved from 1", moved, len(m.Llama.Norm))
	}
	// Another word list is refused with the command that fixes it.
	if _, err := model.Builtin(append(task.Vocabulary(), "zebra")); err == nil || !strings.Contains(err.Error(), "pretrain --builtin") {
		t.Fatalf("another vocabulary: %v", err)
	}
}

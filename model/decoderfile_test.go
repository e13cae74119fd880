package model_test

import (
	"bytes"
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

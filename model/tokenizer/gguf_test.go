package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sync"
	"testing"

	"github.com/kronfed/kronfed/internal/sharedtest"
)

// This file holds a deliberately minimal GGUF metadata reader, just enough to
// pull the tokenizer arrays out of stories260K.gguf, so these tests do not
// depend on package model/gguf while it is being written. It reads GGUF v1
// (32-bit lengths and counts) and v2/v3 (64-bit).

type ggufReader struct {
	b    []byte
	off  int
	wide bool // v2+: 64-bit string lengths and array counts
	err  error
}

func (r *ggufReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || r.off+n > len(r.b) {
		r.err = fmt.Errorf("gguf: truncated at offset %d", r.off)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *ggufReader) u32() uint32 {
	p := r.take(4)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(p)
}

func (r *ggufReader) count() int {
	if r.wide {
		p := r.take(8)
		if p == nil {
			return 0
		}
		return int(binary.LittleEndian.Uint64(p))
	}
	return int(r.u32())
}

func (r *ggufReader) str() string { return string(r.take(r.count())) }

// value reads one value of GGUF type t.
func (r *ggufReader) value(t uint32) any {
	switch t {
	case 0, 1, 7: // u8, i8, bool
		p := r.take(1)
		if p == nil {
			return nil
		}
		return int64(p[0])
	case 2, 3: // u16, i16
		p := r.take(2)
		if p == nil {
			return nil
		}
		return int64(binary.LittleEndian.Uint16(p))
	case 4: // u32
		return int64(r.u32())
	case 5: // i32
		return int64(int32(r.u32()))
	case 6: // f32
		return math.Float32frombits(r.u32())
	case 8:
		return r.str()
	case 9:
		et := r.u32()
		n := r.count()
		out := make([]any, 0, min(n, 1<<20))
		for i := 0; i < n && r.err == nil; i++ {
			out = append(out, r.value(et))
		}
		return out
	case 10, 11, 12: // u64, i64, f64
		r.take(8)
		return nil
	}
	r.err = fmt.Errorf("gguf: unknown value type %d", t)
	return nil
}

// readGGUFMetadata returns the key/value pairs of a GGUF file.
func readGGUFMetadata(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &ggufReader{b: b}
	if string(r.take(4)) != "GGUF" {
		return nil, fmt.Errorf("gguf: bad magic")
	}
	version := r.u32()
	r.wide = version >= 2
	r.count() // tensors
	nkv := r.count()
	kv := map[string]any{}
	for i := 0; i < nkv && r.err == nil; i++ {
		k := r.str()
		kv[k] = r.value(r.u32())
	}
	return kv, r.err
}

var (
	storiesOnce sync.Once
	storiesSP   *SentencePiece
	storiesErr  error
)

// storiesTokenizer loads the SentencePiece vocabulary of stories260K.gguf
// (512 tokens: <unk>, <s>, </s>, the 256 byte tokens, then 253 merges).
func storiesTokenizer(t testing.TB) *SentencePiece {
	t.Helper()
	path := sharedtest.Path(t, "models", "stories260K.gguf")
	storiesOnce.Do(func() {
		kv, err := readGGUFMetadata(path)
		if err != nil {
			storiesErr = err
			return
		}
		toks, _ := kv["tokenizer.ggml.tokens"].([]any)
		scs, _ := kv["tokenizer.ggml.scores"].([]any)
		tys, _ := kv["tokenizer.ggml.token_type"].([]any)
		tokens := make([]string, len(toks))
		scores := make([]float32, len(scs))
		types := make([]int32, len(tys))
		for i, v := range toks {
			tokens[i] = v.(string)
		}
		for i, v := range scs {
			scores[i] = v.(float32)
		}
		for i, v := range tys {
			types[i] = int32(v.(int64))
		}
		bos, _ := kv["tokenizer.ggml.bos_token_id"].(int64)
		eos, _ := kv["tokenizer.ggml.eos_token_id"].(int64)
		pad, _ := kv["tokenizer.ggml.padding_token_id"].(int64)
		storiesSP, storiesErr = NewSentencePiece(tokens, scores, types, SentencePieceOptions{
			BOS: int(bos), EOS: int(eos), UNK: 0, PAD: int(pad), ByteFallback: true,
		})
	})
	if storiesErr != nil {
		t.Fatal(storiesErr)
	}
	return storiesSP
}

package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/compute"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/task"
)

// TestBuiltinPretrained checks the built-in model every program uses (it
// is pretrained on first use and cached, docs/builtin.md): on the AVX2
// path its digest is pinned (a change must be deliberate: bump the cache
// name, update the digest and BENCHMARKS.md); it loads as the built-in
// model, re-encoding gives its bytes back, and it is pretrained, not random.
func TestBuiltinPretrained(t *testing.T) {
	file, err := BuiltinFile()
	if err != nil {
		t.Fatal(err)
	}
	// The portable kernels round differently, so the pretraining's bytes
	// are pinned where the recorded run was made: the AVX2+FMA path.
	const wantSHA256 = "765d2276c1581e92ee75671dfdfd9da8564a9766e117d4e1e8ffa49e435798fa"
	sum := sha256.Sum256(file)
	if got := hex.EncodeToString(sum[:]); compute.SIMD() && got != wantSHA256 {
		path, _ := BuiltinCachePath()
		t.Fatalf("%s has SHA-256 %s, pinned %s (a stale cache? delete it)", path, got, wantSHA256)
	}
	m, err := model.Builtin(file, task.Vocabulary())
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != model.BuiltinName || m.Path != model.BuiltinPath || *m.Cfg != *model.BuiltinConfig(task.Vocabulary()) {
		t.Fatalf("name %q path %q config %+v", m.Name, m.Path, *m.Cfg)
	}
	notes, err := model.DecoderFileNotes(file)
	if err != nil || !strings.Contains(notes, "task.WorldText") {
		t.Fatalf("notes %q, %v", notes, err)
	}
	again, err := model.EncodeDecoderFile(m, model.DecoderFileOptions{BF16: true, Notes: notes})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, file) {
		t.Fatal("re-encoding the built-in model does not give its bytes")
	}
	// Pretrained, not random: the norm weights moved away from their
	// initial 1.
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
	if _, err := model.Builtin(file, append(task.Vocabulary(), "zebra")); err == nil || !strings.Contains(err.Error(), "pretrain --builtin") {
		t.Fatalf("another vocabulary: %v", err)
	}
}

package train

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/model"
)

// TestModelDigest: a file's digest is its SHA-256 (independently computed
// here), a folder's changes with any of its weight or config files, the
// built-in model's is its embedded file's, and the two built-in models
// differ.
func TestModelDigest(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "m.gguf")
	os.WriteFile(file, []byte("weights"), 0o644)
	sum := sha256.Sum256([]byte("weights"))
	if d, err := ModelDigest(file); err != nil || d != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("file digest %q, %v", d, err)
	}
	hf := filepath.Join(dir, "hf")
	os.Mkdir(hf, 0o755)
	os.WriteFile(filepath.Join(hf, "config.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(hf, "model.safetensors"), []byte("w1"), 0o644)
	os.WriteFile(filepath.Join(hf, "README.md"), []byte("not hashed"), 0o644)
	a, err := ModelDigest(hf)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(hf, "README.md"), []byte("changed, still not hashed"), 0o644)
	if b, _ := ModelDigest(hf); b != a {
		t.Error("a README changed the folder's digest")
	}
	os.WriteFile(filepath.Join(hf, "model.safetensors"), []byte("w2"), 0o644)
	if b, _ := ModelDigest(hf); b == a {
		t.Error("other weights kept the folder's digest")
	}
	builtinFile, err := BuiltinFile()
	if err != nil {
		t.Fatal(err)
	}
	builtinSum := sha256.Sum256(builtinFile)
	b1, _ := ModelDigest("builtin")
	b2, _ := ModelDigest(model.BuiltinName)
	r, _ := ModelDigest("builtin-random")
	if b1 != "sha256:"+hex.EncodeToString(builtinSum[:]) || b1 != b2 || r == b1 || !strings.HasPrefix(r, "sha256:") {
		t.Errorf("builtin %q %q, random %q", b1, b2, r)
	}
	if _, err := ModelDigest(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing model has a digest")
	}
	if _, err := ModelDigest(t.TempDir()); err == nil || !strings.Contains(err.Error(), "holds no config.json") {
		t.Errorf("empty folder: %v", err)
	}
}

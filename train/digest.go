package train

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kronfed/kronfed/model"
)

// ModelDigest is "sha256:HEX" of a base model's files, as LoadModel opens
// them: a .gguf or decoder .safetensors file is hashed whole; a Hugging Face
// folder by its config.json, tokenizer files and weights (each file's name
// and SHA-256, in name order); the built-in model by its cached file, and
// builtin-random by its name and seed. Clients send it at join and the
// coordinator refuses a different one: adapters trained on different
// weights cannot be aggregated. It reads every byte (a 7B model's 14 GB take
// tens of seconds), once per process.
func ModelDigest(path string) (string, error) {
	h := sha256.New()
	switch path {
	case model.BuiltinPath, model.BuiltinName:
		file, err := BuiltinFile()
		if err != nil {
			return "", err
		}
		h.Write(file)
		return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
	case model.BuiltinRandomPath, model.BuiltinRandomName:
		fmt.Fprintf(h, "%s seed %d", model.BuiltinRandomName, model.BuiltinSeed)
		return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("model digest: %w", err)
	}
	if !st.IsDir() {
		if err := hashFile(h, path); err != nil {
			return "", fmt.Errorf("model digest: %w", err)
		}
		return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return "", fmt.Errorf("model digest: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() && (n == "config.json" || strings.HasPrefix(n, "tokenizer") || strings.HasSuffix(n, ".safetensors") ||
			strings.HasSuffix(n, ".safetensors.index.json")) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "", fmt.Errorf("model digest: %s holds no config.json, tokenizer or .safetensors file", path)
	}
	for _, n := range names {
		fh := sha256.New()
		if err := hashFile(fh, filepath.Join(path, n)); err != nil {
			return "", fmt.Errorf("model digest: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%x\n", n, fh.Sum(nil))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(h io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(h, f)
	return err
}

package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/task"
)

// WorldPretraining is a pretraining of the built-in architecture from its
// initialization (seed Recipe.Seed) on Sentences sentences of
// task.WorldText plus Text (a user's own, named TextName in the notes).
type WorldPretraining struct {
	Recipe    PretrainConfig
	Sentences int
	Text      []string
	TextName  string
	BF16      bool // store the weights as bfloat16
}

// BuiltinPretraining is the recipe of the built-in model (docs/builtin.md).
func BuiltinPretraining() WorldPretraining {
	return WorldPretraining{Recipe: DefaultPretrain(), Sentences: 200_000, BF16: true}
}

// PretrainWorld runs w and returns the decoder file's bytes (deterministic:
// the notes hold the recipe and losses, no timing) and the run's result.
// start, when set, is told the corpus's sentences and tokens before the
// first step; progress is told every step.
func PretrainWorld(ctx context.Context, w WorldPretraining, start func(sentences, tokens int), progress func(PretrainProgress)) ([]byte, *PretrainResult, error) {
	cfg := w.Recipe.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if w.Sentences < 1 {
		return nil, nil, fmt.Errorf("pretrain: %d sentences, want ≥ 1", w.Sentences)
	}
	m, err := model.BuiltinInit(cfg.Seed, task.Vocabulary())
	if err != nil {
		return nil, nil, fmt.Errorf("pretrain: %w", err)
	}
	text, err := task.WorldText(w.Sentences, cfg.Seed)
	if err != nil {
		return nil, nil, fmt.Errorf("pretrain: %w", err)
	}
	text = append(text, w.Text...)
	trainCorpus, err := NewCorpus(m.Tok, text, cfg.SeqLen)
	if err != nil {
		return nil, nil, fmt.Errorf("pretrain: %w", err)
	}
	held, err := task.WorldText(max(200, w.Sentences/50), cfg.Seed+1_000_003)
	if err != nil {
		return nil, nil, fmt.Errorf("pretrain: %w", err)
	}
	evalCorpus, err := NewCorpus(m.Tok, held, cfg.SeqLen)
	if err != nil {
		return nil, nil, fmt.Errorf("pretrain: held-out text: %w", err)
	}
	if start != nil {
		start(len(text), trainCorpus.Tokens)
	}
	res, err := Pretrain(ctx, m, trainCorpus, evalCorpus, cfg, progress)
	if err != nil {
		return nil, nil, err
	}
	notes, _ := json.Marshal(map[string]any{"recipe": cfg, "sentences": w.Sentences, "text": w.TextName,
		"corpus": "task.WorldText", "first_eval_loss": res.FirstEvalLoss, "eval_loss": res.EvalLoss, "tokens": res.Tokens})
	data, err := model.EncodeDecoderFile(m, model.DecoderFileOptions{BF16: w.BF16, Notes: string(notes)})
	if err != nil {
		return nil, nil, fmt.Errorf("pretrain: %w", err)
	}
	return data, res, nil
}

// The built-in model is not kept in the repository: it is pretrained with
// BuiltinPretraining the first time a process needs it (about 90 s on two
// cores) and cached, so every later use, by any process, reads the file.

// builtinCacheName names the cached file after the recipe's version: a
// change of the recipe or the corpus must bump it.
const builtinCacheName = "kronfed-tiny-v1.safetensors"

// BuiltinCachePath is where the pretrained built-in model is cached:
// $KRONFED_CACHE, else the user's cache folder (~/.cache/kronfed).
func BuiltinCachePath() (string, error) {
	dir := os.Getenv("KRONFED_CACHE")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("built-in model cache: %w (set KRONFED_CACHE)", err)
		}
		dir = filepath.Join(base, "kronfed")
	}
	return filepath.Join(dir, builtinCacheName), nil
}

var builtinOnce struct {
	sync.Mutex
	data []byte
}

// BuiltinFile returns the pretrained built-in model's decoder file: from
// the cache, else pretrained now and cached (another process pretraining it
// at the same time is waited for, not repeated). It tells the user on
// stderr before the one-off pretraining starts.
func BuiltinFile() ([]byte, error) {
	builtinOnce.Lock()
	defer builtinOnce.Unlock()
	if builtinOnce.data != nil {
		return builtinOnce.data, nil
	}
	path, err := BuiltinCachePath()
	if err != nil {
		return nil, err
	}
	data, err := cachedOrBuild(path, func() ([]byte, error) {
		fmt.Fprintf(os.Stderr, "kronfed: pretraining the built-in model once (about 90 s on two cores); it is cached in %s\n", path)
		data, _, err := PretrainWorld(context.Background(), BuiltinPretraining(), nil, nil)
		return data, err
	})
	if err != nil {
		return nil, fmt.Errorf("built-in model: %w", err)
	}
	builtinOnce.data = data
	return data, nil
}

// cachedOrBuild returns path's contents, or builds them under a lock file
// (path.lock, created exclusively; a lock older than 15 minutes is a crashed
// builder's and is taken over) and writes them atomically. A process that
// finds the lock held waits for the file.
func cachedOrBuild(path string, build func() ([]byte, error)) ([]byte, error) {
	if data, err := os.ReadFile(path); err == nil {
		return data, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	lock := path + ".lock"
	for {
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			break
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		if st, err := os.Stat(lock); err == nil && time.Since(st.ModTime()) > 15*time.Minute {
			os.Remove(lock)
			continue
		}
		time.Sleep(500 * time.Millisecond)
		if data, err := os.ReadFile(path); err == nil {
			return data, nil
		}
	}
	defer os.Remove(lock)
	if data, err := os.ReadFile(path); err == nil { // built while we waited for the lock
		return data, nil
	}
	data, err := build()
	if err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return nil, err
	}
	return data, os.Rename(tmp, path)
}

// WriteBuiltinFile replaces the cached built-in model (client pretrain
// --builtin).
func WriteBuiltinFile(data []byte) (string, error) {
	path, err := BuiltinCachePath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return "", err
	}
	builtinOnce.Lock()
	builtinOnce.data = nil
	builtinOnce.Unlock()
	return path, os.Rename(tmp, path)
}

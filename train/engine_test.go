package train

import (
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/gpu"
	"github.com/kronfed/kronfed/gpu/cuda"
	"github.com/kronfed/kronfed/internal/sharedtest"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/task"
)

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]string{"": "cpu", "cpu": "cpu", " CPU ": "cpu", "cuda": "cuda", "cuda:1": "cuda:1", "gpu:0": "gpu:0"} {
		if got, err := ParseDevice(in); err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"tpu", "cuda0", "metal"} {
		if _, err := ParseDevice(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseDevice(%q): error %v should name the value", bad, err)
		}
	}
}

// TestOpenEngine: "cpu" is the CPU engine; "cuda" is either a working GPU
// engine that names its device or, where there is none (every CI machine),
// the discovery error, which names what is missing and the variable that
// points at it.
func TestOpenEngine(t *testing.T) {
	if cpu, err := OpenEngine("cpu", "fp32", gpu.Options{}); err != nil || cpu != CPU || cpu.Device() != "cpu" || cpu.GPU() != nil {
		t.Errorf("OpenEngine(cpu) = %v, %v", cpu, err)
	}
	if _, err := OpenEngine("tpu", "auto", gpu.Options{}); err == nil || !strings.Contains(err.Error(), "tpu") {
		t.Errorf("OpenEngine(tpu): %v", err)
	}
	e, err := OpenEngine("cuda", "auto", gpu.Options{KernelCache: t.TempDir()})
	if err == nil {
		defer e.Close()
		if e.GPU() == nil || !strings.Contains(e.Device(), "sm_") {
			t.Fatalf("OpenEngine(cuda) opened %q", e.Device())
		}
		t.Logf("GPU engine on %s", e.Device())
		return
	}
	if os.Getenv("KRONFED_REQUIRE_GPU") != "" {
		t.Fatalf("KRONFED_REQUIRE_GPU is set but: %v", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "gpu: ") {
		t.Errorf("error %q should say it is the GPU's", msg)
	}
	var missing *cuda.LoadError
	if errors.As(err, &missing) {
		for _, want := range []string{missing.Library, "KRONFED_CUDA_PATH"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q should contain %q", msg, want)
			}
		}
	}
}

// TestGPUFitMatchesCPU fine-tunes the built-in decoder for a few steps on
// both engines from the same initialization (fp32 frozen weights, no
// dropout, so both compute the same function): every epoch's loss and the
// final factors agree to float32 rounding. Needs a GPU; skips elsewhere.
func TestGPUFitMatchesCPU(t *testing.T) {
	e, err := OpenEngine("cuda", "fp32", gpu.Options{KernelCache: t.TempDir()})
	if err != nil {
		if os.Getenv("KRONFED_REQUIRE_GPU") != "" {
			t.Fatalf("KRONFED_REQUIRE_GPU is set but: %v", err)
		}
		t.Skipf("no GPU engine: %v", err)
	}
	defer e.Close()
	m, err := LoadModel(model.BuiltinPath)
	if err != nil {
		t.Fatal(err)
	}
	checkFitMatchesCPU(t, e, m, 32, 16, 2)
}

// checkFitMatchesCPU fine-tunes m on word-category from one initialization
// on the CPU and on e, whose learners train concurrently from `learners`
// goroutines (they take the engine's turns), and compares each with the
// CPU's losses, accuracies and factors (two epochs of nItems, validation on
// nVal).
func checkFitMatchesCPU(t *testing.T, e *Engine, m *model.Model, nItems, nVal, learners int) {
	t.Helper()
	splits, err := LoadSplits("word-category", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	ac := adapter.DefaultConfig(adapter.KindKron)
	ac.Dropout = 0
	items := splits.Train.Items[:nItems]
	val := splits.Validation.Items[:nVal]
	cfg := Config{Epochs: 2, Optim: DefaultAdamW(), Seed: 3}
	cfg.Optim.LR = 3e-3
	fit := func(eng *Engine) (*Result, *adapter.Set) {
		set, err := NewAdapterSet(m, ac, 7)
		if err != nil {
			t.Fatal(err)
		}
		l, err := eng.NewLearner(m, set, 0, nil)
		if err != nil {
			t.Error(err)
			return nil, nil
		}
		defer l.Close()
		res, err := Fit(context.Background(), l, items, val, nil, cfg, nil)
		if err != nil {
			t.Error(err)
			return nil, nil
		}
		return res, set
	}
	wantRes, wantSet := fit(CPU)
	var wg sync.WaitGroup
	for range learners {
		wg.Go(func() {
			if gotRes, gotSet := fit(e); gotRes != nil {
				compareFits(t, wantRes, gotRes, wantSet, gotSet)
			}
		})
	}
	wg.Wait()
}

func compareFits(t *testing.T, wantRes, gotRes *Result, wantSet, gotSet *adapter.Set) {
	t.Helper()
	for i := range wantRes.Epochs {
		w, g := wantRes.Epochs[i].TrainLoss, gotRes.Epochs[i].TrainLoss
		if math.Abs(w-g) > 1e-4*math.Abs(w) {
			t.Errorf("epoch %d train loss: GPU %v, CPU %v", i+1, g, w)
		}
		if wantRes.Epochs[i].Val.Acc != gotRes.Epochs[i].Val.Acc {
			t.Errorf("epoch %d validation acc: GPU %v, CPU %v", i+1, gotRes.Epochs[i].Val.Acc, wantRes.Epochs[i].Val.Acc)
		}
	}
	wp, gp := wantSet.Params(), gotSet.Params()
	for i := range wp {
		var num, den float64
		for j := range wp[i].Data {
			d := float64(gp[i].Data[j] - wp[i].Data[j])
			num += d * d
			den += float64(wp[i].Data[j]) * float64(wp[i].Data[j])
		}
		if den > 0 && math.Sqrt(num/den) > 1e-3 {
			t.Errorf("factor %d (%s) differs by %.3g relative after training", i, wp[i].Name, math.Sqrt(num/den))
		}
	}
}

// TestCompletionExactMatch: on the real stories260K decoder, a completion
// that is the model's own greedy continuation of its prompt scores as an
// exact match (teacher-forced argmax against the generator's cached greedy
// decoding), and the same with its last word changed does not; perplexity
// is exp of the mean negative log-likelihood per completion token.
func TestCompletionExactMatch(t *testing.T) {
	m, err := model.LoadGGUF(sharedtest.Path(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	prompt := "Once upon a time, there was a little girl named Lily."
	greedy, err := m.Generate(prompt, 12, 0, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Generate echoes the prompt; the rest is the continuation.
	cont := strings.TrimSpace(strings.TrimPrefix(greedy, prompt))
	if cont == "" {
		t.Fatalf("no continuation in %q", greedy)
	}
	words := strings.Fields(cont)
	changed := strings.Join(append(append([]string(nil), words[:len(words)-1]...), "banana"), " ")
	set := &adapter.Set{Config: adapter.DefaultConfig(adapter.KindLoRA), BaseModel: m.Name}
	l, err := NewDecoderLearner(m.Llama, m.Tok, set, nil)
	if err != nil {
		t.Fatal(err)
	}
	items := []task.Item{
		{ID: "own", Context: prompt, Choices: []string{cont}, Completion: true},
		{ID: "changed", Context: prompt, Choices: []string{changed}, Completion: true},
	}
	scores, err := l.Score(items)
	if err != nil {
		t.Fatal(err)
	}
	if !scores[0].Exact || scores[1].Exact {
		t.Fatalf("exact match: own continuation %v, changed %v (continuation %q)", scores[0].Exact, scores[1].Exact, cont)
	}
	acc, err := Evaluate(context.Background(), l, items, 8)
	if err != nil {
		t.Fatal(err)
	}
	want := math.Exp(-(scores[0].LogLik[0] + scores[1].LogLik[0]) / float64(scores[0].Tokens+scores[1].Tokens))
	if acc.Acc != 0.5 || math.Abs(acc.Perplexity-want) > 1e-9*want || !(acc.Perplexity > 1) {
		t.Fatalf("evaluation %+v, want exact match 0.5 and perplexity %v", acc, want)
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kronfed/kronfed/internal/cli"
	"github.com/kronfed/kronfed/internal/sharedtest"
	"github.com/kronfed/kronfed/simulate"
)

// resolve runs forgetting's settings resolution (defaults, preset, file,
// flags) and the pair parsing and scaling, without loading anything.
func resolve(t *testing.T, args ...string) (simConfig, []simulate.Pair) {
	t.Helper()
	cfg := defaultForgetting()
	if err := loadForgetting(args, &cfg); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	pairs, err := resolvePairs(cfg)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return cfg, pairs
}

// TestPaperPreset: the preset's pairs, adapters and schedules at scale 1
// (the paper's epochs as rounds, whole shards and test sets) and scaled
// down (rounded, at least one round, items capped); files and flags still
// override it.
func TestPaperPreset(t *testing.T) {
	t.Setenv("KRONFED_SHARED", "")
	cfg, pairs := resolve(t, "--preset", "paper")
	want := []simulate.Pair{
		{A: "arc-challenge", B: "arc-easy", RoundsA: 10, RoundsB: 10},
		{A: "arc-easy", B: "arc-challenge", RoundsA: 10, RoundsB: 10},
		{A: "hellaswag", B: "arc-easy", RoundsA: 5, RoundsB: 10},
		{A: "arc-easy", B: "hellaswag", RoundsA: 10, RoundsB: 5},
	}
	if !reflect.DeepEqual(pairs, want) {
		t.Fatalf("pairs %+v, want %+v", pairs, want)
	}
	if !reflect.DeepEqual(cfg.Adapters, []string{"kron:8", "lora:4", "lora:8", "lora:16"}) {
		t.Fatalf("adapters %v", cfg.Adapters)
	}
	if cfg.Model != filepath.Join("..", "shared", "models", "stories260K.gguf") || cfg.Data != cli.DefaultDataDir() ||
		cfg.Epochs != 1 || cfg.Fraction != 1 || cfg.Cohort != 0 || cfg.LR != 3e-4 || cfg.MaxItems != 0 || cfg.EvalItems != 0 || cfg.Scale != 1 {
		t.Fatalf("scale 1 settings: %+v", cfg)
	}

	cfg, pairs = resolve(t, "--preset", "paper", "--scale", "0.1")
	for _, p := range pairs {
		if p.RoundsA != 1 || p.RoundsB != 1 {
			t.Errorf("scale 0.1: %s %d+%d rounds, want 1+1", p.Name(), p.RoundsA, p.RoundsB)
		}
	}
	if cfg.MaxItems != 8 || cfg.EvalItems != 100 || cfg.Scale != 0.1 {
		t.Fatalf("scale 0.1 caps: max-items %d, eval-items %d, scale %v", cfg.MaxItems, cfg.EvalItems, cfg.Scale)
	}
	_, pairs = resolve(t, "--preset=paper", "--scale=0.3")
	if got := [2][2]int{{pairs[0].RoundsA, pairs[0].RoundsB}, {pairs[2].RoundsA, pairs[2].RoundsB}}; got != [2][2]int{{3, 3}, {2, 3}} {
		t.Fatalf("scale 0.3: %v, want 10·0.3 = 3 and 5·0.3 = 1.5 → 2", got)
	}

	// The file's keys override the preset, flags override the file, and the
	// shared folder follows KRONFED_SHARED.
	t.Setenv("KRONFED_SHARED", filepath.Join("x", "shared"))
	file := writeConfig(t, "preset = \"paper\"\nscale = 0.5\nadapters = [\"kron:8\"]\n")
	cfg, pairs = resolve(t, "--config", file, "--max-items", "3")
	if cfg.Preset != "paper" || !reflect.DeepEqual(cfg.Adapters, []string{"kron:8"}) || cfg.MaxItems != 3 || cfg.EvalItems != 500 ||
		pairs[2].RoundsA != 3 || cfg.Model != filepath.Join("x", "shared", "models", "stories260K.gguf") {
		t.Fatalf("file over preset, flag over file: %+v %+v", cfg, pairs)
	}
	// [[pair]] tables replace the preset's pairs; pairs without their own
	// schedule take the global rounds.
	file = writeConfig(t, "preset = \"paper\"\nrounds_a = 4\n[[pair]]\na = \"hellaswag\"\nb = \"piqa\"\nrounds_b = 7\n")
	_, pairs = resolve(t, "--config", file)
	e := simulate.Experiment{RoundsA: 4, RoundsB: 10}
	if len(pairs) != 1 || pairs[0].B != "piqa" {
		t.Fatalf("tables: %+v", pairs)
	}
	if a, b := e.Schedule(pairs[0]); a != 4 || b != 7 {
		t.Fatalf("table schedule %d+%d, want 4+7", a, b)
	}
	// A file with both: its pairs, then its tables.
	file = writeConfig(t, "preset = \"paper\"\npairs = [\"add-mod-10:larger\", \"larger:add-mod-10:2:2\"]\n[[pair]]\na = \"hellaswag\"\nb = \"piqa\"\n")
	if _, pairs = resolve(t, "--config", file); len(pairs) != 3 || pairs[0].B != "larger" || pairs[1].RoundsA != 2 || pairs[2].B != "piqa" {
		t.Fatalf("pairs and tables: %+v", pairs)
	}
}

// TestPairSchedules: per-pair phase lengths beside the old A:B and A:B:label
// forms, scaled with the rest.
func TestPairSchedules(t *testing.T) {
	_, pairs := resolve(t, "--pairs", "add-mod-10:word-category,add-mod-10:add-mod-10-alt:related,word-category:next-letter:6:2,larger:majority-color:x:3:5",
		"--rounds-a", "2", "--rounds-b", "4", "--scale", "0.5")
	want := []simulate.Pair{{A: "add-mod-10", B: "word-category"}, {A: "add-mod-10", B: "add-mod-10-alt", Label: "related"},
		{A: "word-category", B: "next-letter", RoundsA: 3, RoundsB: 1}, {A: "larger", B: "majority-color", Label: "x", RoundsA: 2, RoundsB: 3}}
	if !reflect.DeepEqual(pairs, want) {
		t.Fatalf("pairs %+v\nwant %+v", pairs, want)
	}
}

// TestBadPresetInputRefused: bad presets, scales and schedules fail with a
// message naming what is wrong, before any training.
func TestBadPresetInputRefused(t *testing.T) {
	cases := []struct {
		want string
		args []string
	}{
		{`unknown preset "papr"`, []string{"--preset", "papr"}},
		{`unknown preset "nope"`, []string{"--config", writeConfig(t, "preset = \"nope\"\n")}},
		{"scale 0: want 0 < scale ≤ 1", []string{"--scale", "0"}},
		{"scale 1.5: want", []string{"--preset", "paper", "--scale", "1.5"}},
		{"scale -0.2: want", []string{"--config", writeConfig(t, "scale = -0.2\n")}},
		{`--scale "half": not a number`, []string{"--scale", "half"}},
		{`rounds of phase B "x"`, []string{"--pairs", "add-mod-10:word-category:3:x"}},
		{`rounds of phase A "0"`, []string{"--pairs", "add-mod-10:word-category:0:3"}},
		{"needs both phase lengths", []string{"--pairs", "add-mod-10:word-category:3"}},
		{"want A:B, A:B:label", []string{"--pairs", "add-mod-10"}},
		{"empty field", []string{"--pairs", "add-mod-10::2:2"}},
		{"needs both a and b", []string{"--config", writeConfig(t, "[[pair]]\na = \"add-mod-10\"\n")}},
		{"rounds_a -1", []string{"--config", writeConfig(t, "[[pair]]\na = \"add-mod-10\"\nb = \"larger\"\nrounds_a = -1\n")}},
	}
	for _, c := range cases {
		var out bytes.Buffer
		err := program.Run(append([]string{"forgetting", "--out", t.TempDir()}, c.args...), &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to mention %q", c.args, err, c.want)
		}
		if strings.Contains(out.String(), "round") {
			t.Errorf("%v: work started before the error:\n%s", c.args, out.String())
		}
	}
	// The preset's shared files missing: named, with where they were sought.
	t.Setenv("KRONFED_SHARED", filepath.Join(t.TempDir(), "no-shared"))
	err := program.Run([]string{"forgetting", "--preset", "paper", "--out", t.TempDir()}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "stories260K.gguf not found") || !strings.Contains(err.Error(), "KRONFED_SHARED") {
		t.Errorf("missing shared files: %v", err)
	}
	// run has no presets: a file's preset is refused, not ignored.
	err = program.Run([]string{"run", "--config", writeConfig(t, "preset = \"paper\"\n"), "--out", t.TempDir()}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "forgetting only") {
		t.Errorf("run with a preset: %v", err)
	}
}

// TestPaperPresetTinyRun really runs the paper preset, cut to one pair, one
// adapter, two clients and a few items, on the real shared model and data:
// the schedule is printed first and config.toml records it.
func TestPaperPresetTinyRun(t *testing.T) {
	shared := sharedtest.Dir(t)
	t.Setenv("KRONFED_SHARED", shared)
	out := t.TempDir()
	var buf bytes.Buffer
	start := time.Now()
	err := program.Run([]string{"forgetting", "--preset", "paper", "--scale", "0.1", "--pairs", "arc-challenge:arc-easy:10:20",
		"--adapters", "kron:8", "--clients", "2", "--max-items", "4", "--eval-items", "8", "--out", out}, &buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	t.Logf("tiny paper-preset run: %s", time.Since(start).Round(time.Millisecond))
	s := buf.String()
	sched := strings.Index(s, "arc-challenge→arc-easy: phase A arc-challenge 1 round, phase B arc-easy 2 rounds (10 + 20 before scale 0.1)")
	if sched < 0 || sched > strings.Index(s, "round 1/3") || !strings.Contains(s, "round 3/3") || !strings.Contains(s, "epochs → rounds") {
		t.Fatalf("output:\n%s", s)
	}
	b, err := os.ReadFile(filepath.Join(out, "config.toml"))
	if err != nil || !strings.Contains(string(b), "# epochs → rounds: a phase of E paper epochs") || !strings.Contains(string(b), `preset = "paper"`) {
		t.Fatalf("config.toml: %v\n%s", err, b)
	}
	// The written config.toml is itself a valid config.
	cfg := defaultForgetting()
	if err := loadForgetting([]string{"--config", filepath.Join(out, "config.toml")}, &cfg); err != nil || cfg.MaxItems != 4 || cfg.Scale != 0.1 {
		t.Fatalf("config.toml reloaded: %v %+v", err, cfg)
	}
}

// TestAdapterTablesAndRates: [[adapter]] tables and "@lr" specs give each
// adapter its own rate and dA2; the lr axis of the resolved config keeps
// them; an adapter without one is left for the validation sweep.
func TestAdapterTablesAndRates(t *testing.T) {
	path := writeConfig(t, `adapters = ["lora:8@3e-3", "kron:4"]

[[adapter]]
kind = "kron"
rank = 8
dA2 = 4
lr = 1e-2
`)
	cfg := defaultForgetting()
	if err := loadForgetting([]string{"--config", path}, &cfg); err != nil {
		t.Fatal(err)
	}
	exp, err := buildExperiment(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := adapterSpecs(cfg); !slices.Equal(got, []string{"lora:8@3e-3", "kron:4", "kron:8:4@0.01"}) {
		t.Fatalf("specs %v", got)
	}
	a := exp.Adapters
	if len(a) != 3 || a[0].LR != 3e-3 || a[1].LR != 0 || a[2].LR != 1e-2 || a[2].Adapter.DA2 != 4 || a[1].Adapter.Rank != 4 {
		t.Fatalf("arms %+v", a)
	}
	if len(exp.Seeds) != 3 || exp.Seeds[0] != 1 || exp.Seeds[2] != 3 {
		t.Fatalf("seeds %v", exp.Seeds)
	}
}

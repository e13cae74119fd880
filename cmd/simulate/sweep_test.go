package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/aggregate/accountant"
	"github.com/kronfed/kronfed/simulate"
)

// tinySweep is a sweep small enough for a test: 4 clients, 2 a round, 2
// rounds of 8 items.
var tinySweep = []string{"--task", "word-category", "--rounds", "2", "--clients", "4", "--cohort", "2", "--max-items", "8",
	"--eval-items", "16", "--epochs", "1"}

// TestSweepCommand runs a real 2 adapters × (no DP + noise 0.5 × 2 clips)
// sweep and checks it against independent references: every DP point's ε
// is the accountant's for 2 rounds sampling 2 of 4 clients; the no-DP
// Kron-LoRA point reaches exactly what `simulate run` reaches with the
// same settings; every point has its own run folder and the summary files
// and plot exist; the written config.toml resolves to the same grid.
func TestSweepCommand(t *testing.T) {
	out := t.TempDir()
	var buf bytes.Buffer
	args := append([]string{"sweep", "--adapters", "kron:8,lora:8", "--sweep-noise", "0,0.5", "--sweep-clip", "0.1,1", "--out", out}, tinySweep...)
	if err := program.Run(args, &buf); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	points := readSweep(t, filepath.Join(out, "sweep.jsonl"))
	var names []string
	for _, p := range points {
		names = append(names, p.Name)
	}
	want := []string{"kron_8-b8-nodp", "kron_8-b8-z0.5-c0.1", "kron_8-b8-z0.5-c1", "lora_8-b8-nodp", "lora_8-b8-z0.5-c0.1", "lora_8-b8-z0.5-c1"}
	if !slices.Equal(names, want) {
		t.Fatalf("points %v, want %v\n%s", names, want, buf.String())
	}

	ref, err := accountant.NewAccountant(accountant.WithoutReplacement{Cohort: 2, Population: 4}, accountant.DefaultOrders())
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.Compose(0.5, 0.5, 2); err != nil {
		t.Fatal(err)
	}
	wantEps, _, err := ref.Epsilon(1e-5)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range points {
		if p.Rounds != 2 {
			t.Errorf("%s: %d rounds", p.Name, p.Rounds)
		}
		if p.DP() && math.Abs(p.Epsilon-wantEps) > 1e-9*wantEps {
			t.Errorf("%s: ε %v, the accountant says %v", p.Name, p.Epsilon, wantEps)
		}
		if !p.DP() && (p.Epsilon != 0 || p.Clip != 0) {
			t.Errorf("%s: no-DP point with ε %v, clip %v", p.Name, p.Epsilon, p.Clip)
		}
		if b, err := os.ReadFile(filepath.Join(out, p.Name, "rounds.jsonl")); err != nil || strings.Count(string(b), "\n") != 2 {
			t.Errorf("%s/rounds.jsonl: %v %q", p.Name, err, b)
		}
	}
	for _, f := range []string{"sweep.csv", "table.md", "config.toml", "accuracy_vs_epsilon.svg", "accuracy_vs_epsilon.png", "simulate.log"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if !strings.Contains(buf.String(), "∞ (no DP)") || !strings.Contains(buf.String(), "[6/6] lora_8-b8-z0.5-c1  round 2/2") {
		t.Errorf("output:\n%s", buf.String())
	}

	// The same settings through `simulate run`: the same accuracy.
	runOut := t.TempDir()
	buf.Reset()
	if err := program.Run(append([]string{"run", "--adapters", "kron:8", "--out", runOut}, tinySweep...), &buf); err != nil {
		t.Fatal(err)
	}
	recs := readLines[simulate.RoundRecord](t, filepath.Join(runOut, "rounds.jsonl"))
	if got := recs[len(recs)-1].AccA; got != points[0].FinalAcc {
		t.Errorf("simulate run reached %v, the sweep's no-DP Kron-LoRA point %v", got, points[0].FinalAcc)
	}

	// The written config.toml is a sweep config that resolves to the same
	// grid, without forgetting's keys.
	written, err := os.ReadFile(filepath.Join(out, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"pairs", "rounds_a", "rounds_b", "scale", "preset", "epochs → rounds"} {
		if strings.Contains(string(written), key) {
			t.Errorf("the sweep's config.toml carries forgetting's %q:\n%s", key, written)
		}
	}
	cfg := defaultSweep()
	if err := loadConfig("sweep", []string{"--config", filepath.Join(out, "config.toml")}, &cfg, nil); err != nil {
		t.Fatal(err)
	}
	again, err := sweepPoints(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range again {
		if i >= len(want) || p.Name != want[i] {
			t.Fatalf("config.toml resolves to point %d %s, want %v", i, p.Name, want)
		}
	}
}

func readSweep(t *testing.T, path string) []simulate.SweepPoint {
	return readLines[simulate.SweepPoint](t, path)
}

func readLines[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	return out
}

// TestSweepBadInputRefusedBeforeWork: a bad grid value anywhere fails with
// a message naming it, before the first point trains.
func TestSweepBadInputRefusedBeforeWork(t *testing.T) {
	cases := map[string][]string{
		"noise lists 0.5 twice":             {"--sweep-noise", "0.5,0.5"},
		"adapters lists kron:8 twice":       {"--adapters", "kron:8,kron:8"},
		"must be > 0 (or 0":                 {"--sweep-noise", "-1"},
		"not --dp-noise":                    {"--dp-noise", "1"},
		`"x" is not a number`:               {"--sweep-clip", "x"},
		"clipping norm 0 must be positive":  {"--sweep-noise", "1", "--sweep-clip", "0"},
		"point kron_8-b32-nodp: secure":     {"--secagg", "--clients", "4", "--sweep-bits", "8,32"},
		"upload bits 5":                     {"--sweep-bits", "5"},
		"rounds 0 < 1":                      {"--rounds", "0"},
		"unknown task":                      {"--task", "nope"},
		"give the task":                     {"--task", ""},
		"apply to simulate forgetting only": {"--config", writeConfig(t, "preset = \"paper\"\n")},
		"unknown keys: sweep.colour":        {"--config", writeConfig(t, "[sweep]\ncolour = 1\n")},
		"cohort 9 exceeds the 4 clients":    {"--clients", "4", "--cohort", "9"},
		"adapter \"dora:8\"":                {"--adapters", "dora:8"},
		"sweep noise lists 0.5 twice":       {"--config", writeConfig(t, "[sweep]\nnoise = [0.5, 0.5]\n")},
		"cannot be combined with it":        {"--rule", "median"},
		"secure aggregation needs cohorts":  {"--secagg", "--clients", "2", "--cohort", "0", "--fraction", "1"},
		"transport \"tcp\": want memory":    {"--transport", "tcp"},
		"sweep noise NaN: a noise multipli": {"--sweep-noise", "NaN"},
		"sweep lr 0":                        {"--sweep-lr", "0.001,0"},
		"sweep lr lists 0.001 twice":        {"--sweep-lr", "0.001,0.001"},
	}
	refusedBeforeWork(t, "sweep", cases)
	// A [sweep] table is refused by the other commands, not ignored.
	var out bytes.Buffer
	err := program.Run([]string{"run", "--config", writeConfig(t, "[sweep]\nnoise = [1]\n"), "--out", t.TempDir()}, &out)
	if err == nil || !strings.Contains(err.Error(), "[sweep] table applies to simulate sweep only") {
		t.Errorf("run with a [sweep] table: %v", err)
	}
}

// TestSweepLearningRateAxis: with several learning rates every adapter runs
// at each (folders name the rate), and each point's round config carries
// its own rate.
func TestSweepLearningRateAxis(t *testing.T) {
	cfg := defaultSweep()
	if err := loadConfig("sweep", []string{"--adapters", "kron:8,lora:8", "--config", writeConfig(t, "[sweep]\nlr = [0.001, 0.003]\nnoise = [0, 1]\n")}, &cfg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := sweepPoints(cfg); err == nil || !strings.Contains(err.Error(), "an axis of the grid is empty") {
		t.Fatalf("grid without bits and clip: %v", err)
	}
	fillGridDefaults(&cfg)
	points, err := sweepPoints(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range points {
		names = append(names, p.Name)
		if float64(p.set.train.LearningRate) != p.LR {
			t.Errorf("%s: round config lr %v, point lr %v", p.Name, p.set.train.LearningRate, p.LR)
		}
	}
	want := "kron_8-lr0.001-b8-nodp kron_8-lr0.001-b8-z1-c0.5 kron_8-lr0.003-b8-nodp kron_8-lr0.003-b8-z1-c0.5 " +
		"lora_8-lr0.001-b8-nodp lora_8-lr0.001-b8-z1-c0.5 lora_8-lr0.003-b8-nodp lora_8-lr0.003-b8-z1-c0.5"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("points\n%s\nwant\n%s", got, want)
	}
}

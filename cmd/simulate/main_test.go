package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate/accountant"
	"github.com/kronfed/kronfed/gpu"
	"github.com/kronfed/kronfed/internal/sharedtest"
	"github.com/kronfed/kronfed/simulate"
	"github.com/kronfed/kronfed/train"
)

// TestBadConfigRefusedBeforeWork: impossible settings fail with a message
// naming what is wrong, before any training.
func TestBadConfigRefusedBeforeWork(t *testing.T) {
	cases := map[string][]string{
		"unknown task":                        {"--pairs", "add-mod-10:nope"},
		"cohort 9 exceeds":                    {"--cohort", "9"},
		"upload bits 5":                       {"--bits", "5"},
		"partition":                           {"--partition", "skewed"},
		"adapter":                             {"--adapters", "dora:8"},
		"dA2 applies":                         {"--adapters", "lora:8:4"},
		"kron-exact needs":                    {"--adapters", "lora:8", "--rule", "kron-exact"},
		"rounds-a and rounds-b":               {"--rounds-a", "0"},
		"transport \"tcp\"":                   {"--transport", "tcp"},
		"dp: noise multiplier":                {"--dp-noise", "-1"},
		"secure aggregation sums integers":    {"--secagg", "--bits", "32"},
		"use fedavg":                          {"--secagg", "--rule", "median"},
		"key agreement \"rsa\"":               {"--secagg", "--secagg-key-agreement", "rsa"},
		"at least 3":                          {"--secagg", "--clients", "2"},
		"use central DP":                      {"--secagg", "--dp-noise", "1", "--dp-local"},
		"local DP uses a fixed clip":          {"--dp-noise", "1", "--dp-local", "--dp-adaptive"},
		"unknown keys: colour":                {"--config", writeConfig(t, "colour = 1\n")},
		"audit with secagg":                   {"--audit", "8", "--secagg"},
		"audit with dp_local":                 {"--audit", "8", "--dp-noise", "1", "--dp-local"},
		"audit with transport grpc":           {"--audit", "8", "--transport", "grpc"},
		"audit 1: want 0":                     {"--audit", "1"},
		"pld covers Poisson sampling":         {"--dp-noise", "1", "--dp-accountant", "pld"},
		"sampling \"stratified\"":             {"--sampling", "stratified"},
		"learning rate \"fast\"":              {"--adapters", "kron:8@fast"},
		"want kind[:rank[:dA2]][@lr]":         {"--adapters", "kron:8:2:3"},
		"lr -1: want > 0":                     {"--lr", "-1"},
		"every learning rate must be > 0":     {"--lr-grid", "0.1,0"},
		"seeds -2":                            {"--seeds", "-2"},
		"dA2 = 3 does not divide d_out = 128": {"--adapters", "kron:8:3"},
		"device: unknown device \"tpu\"":      {"--device", "tpu"},
		"bf16-lean is a CPU layout":           {"--device", "cuda:0", "--precision", "bf16-lean"},
		// z = 1 with every one of 8 clients in the round costs ε 10.72 per round.
		"dp_budget 10 cannot be met: one round already spends ε = 10.72": {"--dp-noise", "1", "--dp-clip", "0.5", "--dp-budget", "10", "--fraction", "1"},
	}
	refusedBeforeWork(t, "forgetting", cases)
}

// TestDeviceWithoutGPU: --device cuda where no GPU engine opens fails with
// the reason before the run folder is made (skips on a machine with one).
func TestDeviceWithoutGPU(t *testing.T) {
	if e, err := train.OpenEngine("cuda", "auto", gpu.Options{KernelCache: t.TempDir()}); err == nil {
		e.Close()
		t.Skip("this machine has a GPU")
	}
	for _, cmd := range []string{"forgetting", "run", "sweep"} {
		out := filepath.Join(t.TempDir(), "run")
		var stdout bytes.Buffer
		err := program.Run([]string{cmd, "--out", out, "--device", "cuda"}, &stdout)
		if err == nil || !strings.Contains(err.Error(), "device cuda: gpu: ") {
			t.Errorf("%s --device cuda: %v", cmd, err)
		}
		if _, statErr := os.Stat(out); statErr == nil || stdout.Len() > 0 {
			t.Errorf("%s --device cuda: work started before the error (%q)", cmd, stdout.String())
		}
	}
}

// refusedBeforeWork runs command with each case's arguments: each must fail
// with an error mentioning the case's key, before any round is printed.
func refusedBeforeWork(t *testing.T, command string, cases map[string][]string) {
	t.Helper()
	for want, args := range cases {
		var out bytes.Buffer
		err := program.Run(append([]string{command, "--out", t.TempDir()}, args...), &out)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s %v: error %v, want it to mention %q", command, args, err, want)
		}
		if strings.Contains(out.String(), "round") {
			t.Errorf("%s %v: work started before the error:\n%s", command, args, out.String())
		}
	}
}

func writeConfig(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAccountantCommand: the CLI's ε is the published-value checked
// per-step RDP composed over the rounds and converted at its best order;
// the inverse meets its target; bad input is refused.
func TestAccountantCommand(t *testing.T) {
	var out bytes.Buffer
	if err := program.Run([]string{"accountant", "--noise", "2.5", "--sample-rate", "0.01", "--steps", "50", "--delta", "1e-5", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var rep accountantReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	orders := accountant.DefaultOrders()
	rdp := make([]float64, len(orders))
	for i, a := range orders {
		r, err := accountant.PoissonRDP(0.01, 2.5, a)
		if err != nil {
			t.Fatal(err)
		}
		rdp[i] = 50 * r
	}
	eps, order, err := accountant.EpsilonFromRDP(orders, rdp, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	// The CLI's ε is the conversion of the composed RDP at the order it
	// reports (a fractional one: the order is optimized), at most the
	// figure on dp_accounting's grid and within 1% of it.
	r, err := accountant.PoissonRDP(0.01, 2.5, rep.Order)
	if err != nil {
		t.Fatal(err)
	}
	atOrder, _, err := accountant.EpsilonFromRDP([]float64{rep.Order}, []float64{50 * r}, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(rep.Epsilon-atOrder) > 1e-12*atOrder || !(rep.Epsilon <= eps) || rep.Epsilon < 0.99*eps || !(eps > 0) {
		t.Fatalf("CLI ε %v at order %v (%v there); on the grid %v at %v", rep.Epsilon, rep.Order, atOrder, eps, order)
	}
	out.Reset()
	if err := program.Run([]string{"accountant", "--epsilon", "1", "--sample-rate", "0.01", "--steps", "1000", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if !(rep.Epsilon <= 1 && rep.Epsilon > 0.999) {
		t.Fatalf("noise %v for ε = 1 gives ε = %v", rep.Noise, rep.Epsilon)
	}
	// --method pld: the PLD accountant's pessimistic ε with its bracket,
	// below RDP's; its inverse meets the target; fixed cohorts are refused.
	out.Reset()
	if err := program.Run([]string{"accountant", "--method", "pld", "--noise", "2.5", "--sample-rate", "0.01", "--steps", "50", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var pld accountantReport
	if err := json.Unmarshal(out.Bytes(), &pld); err != nil {
		t.Fatal(err)
	}
	a, _ := accountant.NewPLDAccountant(accountant.PLDOptions{})
	a.Compose(2.5, 0.01, 50)
	want, _ := a.Epsilon(1e-5)
	if pld.Method != "pld" || pld.Epsilon != want.Upper || pld.EpsilonLower != want.Lower || !(pld.Epsilon < eps) {
		t.Fatalf("--method pld: %+v; accountant %+v; RDP %v", pld, want, eps)
	}
	out.Reset()
	if err := program.Run([]string{"accountant", "--method", "pld", "--epsilon", "1", "--sample-rate", "0.01", "--steps", "10", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(out.Bytes(), &pld)
	if !(pld.Epsilon <= 1 && pld.Epsilon > 0.99) {
		t.Fatalf("--method pld --epsilon 1: noise %v gives ε %v", pld.Noise, pld.Epsilon)
	}
	for _, bad := range [][]string{{"--method", "pld", "--noise", "1", "--cohort", "10", "--population", "100", "--steps", "5"},
		{"--method", "moments", "--noise", "1", "--sample-rate", "0.1", "--steps", "5"},
		{"--method", "pld", "--noise", "0.05", "--sample-rate", "0.5", "--steps", "100000", "--pld-max-mib", "8"}} {
		if err := program.Run(append([]string{"accountant"}, bad...), &out); err == nil {
			t.Errorf("accountant %v: no error", bad)
		}
	}
	for _, bad := range [][]string{{"--noise", "0", "--sample-rate", "0.1", "--steps", "5"}, {"--noise", "1", "--sample-rate", "0.1", "--steps", "5", "--delta", "2"},
		{"--noise", "1", "--sample-rate", "1.5", "--steps", "5"}, {"--noise", "1", "--sample-rate", "0.1", "--steps", "-1"}} {
		if err := program.Run(append([]string{"accountant"}, bad...), &out); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	// What a first user types: required settings missing, or two that
	// contradict each other, are refused with the reason (no ε = 0).
	for want, args := range map[string][]string{
		"--steps (the rounds) is required":     {"--noise", "1.1"},
		"the sampling rate is required":        {"--noise", "1.1", "--steps", "10"},
		"not both":                             {"--noise", "1.1", "--epsilon", "2", "--sample-rate", "0.1", "--steps", "10"},
		"--noise (the noise multiplier z > 0)": {"--sample-rate", "0.1", "--steps", "10"},
	} {
		out.Reset()
		if err := program.Run(append([]string{"accountant"}, args...), &out); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want it to mention %q (output %q)", args, err, want, out.String())
		}
	}
	if err := program.Run([]string{"run", "--task", "word-categroy", "--out", t.TempDir()}, &out); err == nil || !strings.Contains(err.Error(), "--task: unknown task") {
		t.Errorf("run --task typo: %v", err)
	}
}

// TestRunCommand: a tiny real `simulate run` writes its results.
func TestRunCommand(t *testing.T) {
	out := t.TempDir()
	var buf bytes.Buffer
	err := program.Run([]string{"run", "--task", "word-category", "--rounds", "2", "--clients", "2", "--max-items", "8",
		"--eval-items", "16", "--epochs", "1", "--lr-grid", "1e-6,3e-3", "--out", out}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	// Without --lr the adapter's rate comes from the validation sweep: 1e-6
	// does not learn word-category, 3e-3 does.
	if !strings.Contains(buf.String(), "round 2/2") || !strings.Contains(buf.String(), "choosing the learning rate of kron:8 on word-category") ||
		!strings.Contains(buf.String(), "... 0.003") {
		t.Fatalf("output:\n%s", buf.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "rounds.jsonl"))
	if err != nil || strings.Count(string(b), "\n") != 2 {
		t.Fatalf("rounds.jsonl: %v\n%s", err, b)
	}
	if _, err := adapter.ReadFile(filepath.Join(out, "global-final.safetensors")); err != nil {
		t.Fatalf("the run's final global adapter: %v", err)
	}
	if err := program.Run([]string{"run", "--adapters", "kron:8,lora:8", "--out", t.TempDir()}, &buf); err == nil {
		t.Fatal("two adapters accepted by run")
	}
	// The run folder makes a results page; its config.toml reruns it.
	cfg, err := os.ReadFile(filepath.Join(out, "config.toml"))
	if err != nil || !strings.Contains(string(cfg), "# reproduce: go run ./cmd/simulate run --config "+filepath.Join(out, "config.toml")+" --task word-category --rounds 2") ||
		!strings.Contains(string(cfg), `adapters = ["kron:8@0.003"]`) {
		t.Fatalf("config.toml: %v\n%s", err, cfg)
	}
	page := t.TempDir()
	buf.Reset()
	if err := program.Run([]string{"report", "--out", page, out}, &buf); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(page, "report.md"))
	if err != nil || !strings.Contains(string(md), "Reproduce: `go run ./cmd/simulate run --config") || !strings.Contains(string(md), "Seeds: 1.") {
		t.Fatalf("report.md: %v\n%s", err, md)
	}
	for want, args := range map[string][]string{
		"give one or more run folders": {"report"},
		"flags go first":               {"report", out, "--out", page},
		"is not a run folder":          {"report", t.TempDir()},
	} {
		if err := program.Run(args, &buf); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want %q", args, err, want)
		}
	}
}

// TestRunOwnDataFolder: `simulate run --task-dir` gives every client its
// own file (three clients, three files of their own questions) instead of
// partitioning one task.
func TestRunOwnDataFolder(t *testing.T) {
	dir := t.TempDir()
	for c, words := range [][]string{{"cat", "dog"}, {"red", "blue"}, {"one", "two"}} {
		var lines []string
		for i := range 12 {
			split := "train"
			if i >= 10 {
				split = "validation"
			}
			lines = append(lines, fmt.Sprintf(`{"question": "Pick %s %d", "choices": [%q, %q], "answer": %d, "split": %q}`, words[i%2], i, words[0], words[1], i%2, split))
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("client-%d.jsonl", c)), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	}
	out := t.TempDir()
	var buf bytes.Buffer
	err := program.Run([]string{"run", "--task-dir", dir, "--model", sharedtest.Path(t, "models", "stories260K.gguf"), "--rounds", "1",
		"--epochs", "1", "--eval-items", "6", "--out", out}, &buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), "run: 3 clients") || !strings.Contains(buf.String(), "round 1/1") {
		t.Fatalf("output:\n%s", buf.String())
	}
	recs := readLines[simulate.RoundRecord](t, filepath.Join(out, "rounds.jsonl"))
	if len(recs) != 1 || recs[0].Clients != 3 {
		t.Fatalf("records %+v", recs)
	}
	if err := program.Run([]string{"run", "--task-dir", t.TempDir(), "--out", t.TempDir()}, &buf); err == nil || !strings.Contains(err.Error(), "no .jsonl files") {
		t.Errorf("empty folder: %v", err)
	}
}

// TestRunInstructionTuning: a federation fine-tunes the real stories260K
// decoder on Alpaca-style instruction records (completion loss only); the
// run reports test perplexity, which falls from round 1 to round 2.
func TestRunInstructionTuning(t *testing.T) {
	dir := t.TempDir()
	names := []string{"Lily", "Tom", "Sue", "Ben", "Max", "Amy", "Sam", "Mia"}
	var lines []string
	for i := range 48 {
		n := names[i%len(names)]
		lines = append(lines, fmt.Sprintf(`{"instruction": "Finish the story.", "input": "%s went to the park. %s saw a", "output": "big red ball."}`, n, n))
	}
	data := filepath.Join(dir, "instr.jsonl")
	os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	out := t.TempDir()
	var buf bytes.Buffer
	err := program.Run([]string{"run", "--task", data, "--model", sharedtest.Path(t, "models", "stories260K.gguf"), "--rounds", "2",
		"--clients", "4", "--epochs", "1", "--lr", "0.01", "--eval-items", "8", "--out", out}, &buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	recs := readLines[simulate.RoundRecord](t, filepath.Join(out, "rounds.jsonl"))
	if len(recs) != 2 || !(recs[0].PerplexityA > 1) || !(recs[1].PerplexityA < recs[0].PerplexityA) {
		t.Fatalf("records %+v", recs)
	}
	if !strings.Contains(buf.String(), "test perplexity") {
		t.Fatalf("table:\n%s", buf.String())
	}
}

// TestRunRanks: clients of ranks 2 and 4 in one federation whose global
// adapter is rank 4, summed exactly; every round reports the clients'
// re-fit error, and the published global keeps rank 4. Bad combinations
// are refused before any work.
func TestRunRanks(t *testing.T) {
	out := t.TempDir()
	var buf bytes.Buffer
	err := program.Run([]string{"run", "--task", "word-category", "--rounds", "2", "--clients", "3", "--max-items", "8",
		"--eval-items", "8", "--epochs", "1", "--lr", "1e-2", "--ranks", "2,4", "--out", out}, &buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), "clients of ranks 2,4 (cycled), global rank 4, exact aggregation (rule kron-exact)") ||
		!strings.Contains(buf.String(), "rank re-fit error") {
		t.Fatalf("output:\n%s", buf.String())
	}
	recs := readLines[simulate.RoundRecord](t, filepath.Join(out, "rounds.jsonl"))
	if len(recs) != 2 || !(recs[1].RefitErrorMax > 0) || recs[1].RefitErrorMax < recs[1].RefitError {
		t.Fatalf("records %+v", recs)
	}
	g, err := adapter.ReadFile(filepath.Join(out, "global-final.safetensors"))
	if err != nil || g.Config.Rank != 4 {
		t.Fatalf("global: %v %+v", err, g)
	}
	buf.Reset()
	if err := program.Run([]string{"run", "--task", "word-category", "--rounds", "1", "--clients", "2", "--max-items", "8",
		"--eval-items", "8", "--epochs", "1", "--lr", "1e-2", "--adapters", "lora:8", "--ranks", "2,4", "--out", t.TempDir()}, &buf); err != nil ||
		!strings.Contains(buf.String(), "global rank 4, exact aggregation (rule lora-exact)") {
		t.Fatalf("LoRA clients of ranks 2 and 4: %v\n%s", err, buf.String())
	}
	refusedBeforeWork(t, "run", map[string][]string{
		"every rank must be ≥ 1":        {"--ranks", "0,4"},
		"hetero \"mean\"":               {"--ranks", "2,4", "--hetero", "mean"},
		"--hetero applies with --ranks": {"--hetero", "zeropad"},
		"client rank 400 exceeds":       {"--ranks", "2,400"},
		"dA2 = 3 does not divide":       {"--da2s", "2,3"},
		"--da2s applies to kron":        {"--da2s", "2,4", "--adapters", "lora:8"},
		"can only be summed exactly":    {"--da2s", "2,4", "--hetero", "zeropad"},
		"not median":                    {"--ranks", "2,4", "--rule", "median"},
	})
	refusedBeforeWork(t, "forgetting", map[string][]string{"apply to simulate run only": {"--config", writeConfig(t, "ranks = [2, 4]\n")}})

	// Clients of different dA2 (and ranks) upload whole adapters, summed by
	// hetero-exact; the global keeps its shape.
	out = t.TempDir()
	buf.Reset()
	if err := program.Run([]string{"run", "--task", "word-category", "--rounds", "2", "--clients", "2", "--max-items", "8",
		"--eval-items", "8", "--epochs", "1", "--lr", "1e-2", "--da2s", "2,4", "--ranks", "2,4", "--out", out}, &buf); err != nil ||
		!strings.Contains(buf.String(), "clients of ranks 2,4 and dA2 2,4 (cycled), global rank 4, exact aggregation (rule hetero-exact)") {
		t.Fatalf("clients of dA2 2 and 4: %v\n%s", err, buf.String())
	}
	recs = readLines[simulate.RoundRecord](t, filepath.Join(out, "rounds.jsonl"))
	if g, err := adapter.ReadFile(filepath.Join(out, "global-final.safetensors")); err != nil || g.Config.Rank != 4 || len(recs) != 2 || !(recs[1].RefitErrorMax > 0) {
		t.Fatalf("global %v %v, records %+v", g, err, recs)
	}
}

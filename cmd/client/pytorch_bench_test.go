package main

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/compute"
)

// TestPyTorchBenchScript runs bench/pytorch_step.py at a tiny batch against
// a freshly built client: the script must time both systems for both
// adapters at the thread count asked and print the comparison as JSON. It
// needs a python3 with PyTorch (Debian: python3-torch, run as
// /usr/bin/python3) and skips where there is none.
func TestPyTorchBenchScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the client and starts PyTorch")
	}
	var py string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import torch").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		t.Skip("no python3 with PyTorch here (Debian: apt-get install python3-torch)")
	}
	bin := filepath.Join(t.TempDir(), "client")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(py, "../../bench/pytorch_step.py", "--client", bin, "--threads", "1", "--steps", "1",
		"--seqs", "4", "--tokens", "8", "--json")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pytorch_step.py: %v\n%s", err, out)
	}
	var rep struct {
		CPU  string `json:"cpu"`
		BLAS string `json:"pytorch_blas"`
		Rows []struct {
			Threads   int     `json:"threads"`
			Adapter   string  `json:"adapter"`
			System    string  `json:"system"`
			TokensSec float64 `json:"tokens_per_sec"`
			VsPyTorch float64 `json:"vs_pytorch"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, out)
	}
	want := map[string]bool{"kron/kronfed fp32": true, "lora8/kronfed fp32": true, "kron/PyTorch": true, "lora8/PyTorch": true}
	if compute.HasBF16() {
		want["kron/kronfed bf16"], want["lora8/kronfed bf16"] = true, true
	}
	for _, r := range rep.Rows {
		key := r.Adapter + "/" + strings.SplitN(r.System, " ", 2)[0]
		if strings.HasPrefix(r.System, "kronfed") {
			key = r.Adapter + "/" + r.System
		}
		if !want[key] || r.Threads != 1 || !(r.TokensSec > 0) || !(r.VsPyTorch > 0) {
			t.Errorf("unexpected row %+v", r)
		}
		delete(want, key)
	}
	if len(want) > 0 || !strings.Contains(rep.CPU, "family") || rep.BLAS == "" {
		t.Errorf("rows missing: %v; cpu %q, blas %q\n%s", want, rep.CPU, rep.BLAS, out)
	}
}

// TestPEFTBenchScriptKronfedHalf runs bench/peft_step.py's kronfed half
// (--skip-peft) on the CPU at a tiny Mistral shape against a freshly built
// client: both adapters' rows come back from the client's JSON. PEFT's half
// needs a GPU with transformers and peft (gpu/devcheck.sh runs it); a
// missing python3 skips.
func TestPEFTBenchScriptKronfedHalf(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the client and builds a Mistral layer")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 here")
	}
	bin := filepath.Join(t.TempDir(), "client")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(py, "../../bench/peft_step.py", "--client", bin, "--device", "cpu", "--skip-peft", "--precision", "fp32",
		"--layers", "1", "--seqs", "1", "--tokens", "8", "--steps", "1", "--json")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("peft_step.py: %v\n%s", err, out)
	}
	var rows []struct {
		System, Adapter string
		TokensSec       float64 `json:"tokens_per_sec"`
		ExamplesSec     float64 `json:"examples_per_sec"`
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("output is not the JSON rows: %v\n%s", err, out)
	}
	if len(rows) != 2 || rows[0].Adapter != "Kron-LoRA" || rows[1].Adapter != "LoRA-8" {
		t.Fatalf("rows: %+v", rows)
	}
	for _, r := range rows {
		// One sequence of 8 tokens: examples/s is tokens/s over 8.
		if r.System != "kronfed" || !(r.TokensSec > 0) || math.Abs(r.ExamplesSec*8-r.TokensSec) > 1e-6*r.TokensSec {
			t.Errorf("row %+v", r)
		}
	}
	if err := exec.Command(py, "../../bench/peft_step.py", "--client", bin, "--device", "cpu").Run(); err == nil {
		t.Error("--device cpu without --skip-peft was accepted")
	}
}

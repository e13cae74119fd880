package main

import (
	"encoding/json"
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

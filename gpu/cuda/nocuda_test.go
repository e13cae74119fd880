package cuda

import (
	"os/exec"
	"testing"
)

// TestNoCUDABuilds: the package still compiles with -tags nocuda (the
// static release coordinator's build), so the stubs cannot rot.
func TestNoCUDABuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the package again: skipped in -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain on PATH")
	}
	cmd := exec.Command(goBin, "vet", "-tags", "nocuda", ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet -tags nocuda: %v\n%s", err, out)
	}
}
